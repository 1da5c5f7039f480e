package server_test

import "github.com/sagehost/sagehost/server"

type serverConfig = server.Config

const (
	serverHTTPFast = server.HTTPServerFast
	serverHTTPNet  = server.HTTPServerNet
)
