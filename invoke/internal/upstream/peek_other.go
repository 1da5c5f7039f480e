//go:build !linux

package upstream

import "net"

// peeker cannot peek here: a pooled connection the server closed fails on
// its next use (and the write, if that is what fails, is retried).
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (p *peeker) stillOpen() bool { return true }
