// Command sagehost runs self-hosted Amazon SageMaker model hosting: one
// binary that answers the SageMaker control plane and SageMaker Runtime APIs
// to unchanged AWS clients and runs the models on this machine.
//
// Usage:
//
//	sagehost serve [--listen HOST:PORT] [--data-dir DIR] [--credentials FILE] [flags]
//	sagehost logs ENDPOINT [--variant V] [--stream VARIANT/INSTANCE-ID] [--tail N] [--follow]
//	sagehost version
//
// Run `sagehost serve -h` for every flag and the environment variable that
// also sets it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sagehost/sagehost/hosting"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/modelserver"
	"github.com/sagehost/sagehost/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "logs":
		return logs(args[1:], stdout, stderr)
	case "model-server":
		// Hidden: how the process backend runs a built-in model server.
		if len(args) < 2 {
			fmt.Fprintln(stderr, "usage: sagehost model-server NAME serve")
			return 2
		}
		if err := modelserver.Run(args[1], args[2:]); err != nil {
			fmt.Fprintln(stderr, "sagehost model-server:", err)
			return 2
		}
		return 0
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "sagehost", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "sagehost: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `sagehost: self-hosted Amazon SageMaker model hosting.

Commands:
  serve     serve the SageMaker and SageMaker Runtime APIs and run endpoints
  logs      print an endpoint's container logs (sagehost logs ENDPOINT [--variant V] [--follow])
  version   print the version

Run 'sagehost serve -h' for the flags of serve.
`)
}

// envOr returns the environment variable's value, or def.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg server.Config
	fs.StringVar(&cfg.Listen, "listen", envOr("SAGEHOST_LISTEN", server.DefaultListen), "HOST:PORT to listen on (env SAGEHOST_LISTEN)")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("SAGEHOST_DATA_DIR", server.DefaultDataDir()), "directory for state, model data, instances and logs (env SAGEHOST_DATA_DIR)")
	fs.StringVar(&cfg.CredentialsFile, "credentials", envOr("SAGEHOST_CREDENTIALS", ""), "AWS shared-credentials file of accepted keys, one profile per key with aws_access_key_id, aws_secret_access_key and aws_account_id; re-read when it changes (env SAGEHOST_CREDENTIALS). Without it, sagehost accepts the development key pair sagehost/sagehost (account 000000000000) on a loopback address only")
	fs.DurationVar(&cfg.ModelTimeout, "model-timeout", envDuration("SAGEHOST_MODEL_TIMEOUT", invoke.DefaultModelTimeout), "how long a model container has to answer an invocation (env SAGEHOST_MODEL_TIMEOUT)")
	fs.DurationVar(&cfg.StartupTimeout, "startup-timeout", envDuration("SAGEHOST_STARTUP_TIMEOUT", hosting.DefaultStartupTimeout), "how long a new container has to pass its /ping health check, unless the variant sets ContainerStartupHealthCheckTimeoutInSeconds (env SAGEHOST_STARTUP_TIMEOUT)")
	fs.StringVar(&cfg.S3EndpointURL, "s3-endpoint-url", envOr("SAGEHOST_S3_ENDPOINT_URL", ""), "S3-compatible endpoint for s3:// model data, e.g. a MinIO URL (env SAGEHOST_S3_ENDPOINT_URL); S3 credentials come from the usual AWS_* variables or shared config")
	fs.StringVar(&cfg.S3Region, "s3-region", envOr("SAGEHOST_S3_REGION", "us-east-1"), "region of the S3 client (env SAGEHOST_S3_REGION)")
	fs.IntVar(&cfg.PortMin, "port-min", envInt("SAGEHOST_PORT_MIN", 20000), "lowest port given to model processes (env SAGEHOST_PORT_MIN)")
	fs.IntVar(&cfg.PortMax, "port-max", envInt("SAGEHOST_PORT_MAX", 29999), "highest port given to model processes (env SAGEHOST_PORT_MAX)")
	fs.StringVar(&cfg.DockerHost, "docker-host", envOr("SAGEHOST_DOCKER_HOST", ""), "container engine for models whose Image is a container image: Docker or Podman's Docker-compatible API, e.g. unix:///run/podman/podman.sock (env SAGEHOST_DOCKER_HOST; default DOCKER_HOST, else the usual Docker and Podman sockets)")
	fs.Int64Var(&cfg.ModelCacheBytes, "mme-cache-bytes", int64(envInt("SAGEHOST_MME_CACHE_BYTES", 0)), "bytes of models one instance of a multi-model endpoint keeps loaded before unloading the least recently used (env SAGEHOST_MME_CACHE_BYTES; 0: 90% of the instance type's memory)")
	fs.DurationVar(&cfg.CaptureFlushInterval, "capture-flush-interval", envDuration("SAGEHOST_CAPTURE_FLUSH_INTERVAL", 30*time.Second), "how long captured records wait for more before their file is written (env SAGEHOST_CAPTURE_FLUSH_INTERVAL; at most 1m)")
	fs.StringVar(&cfg.GPUs, "gpus", envOr("SAGEHOST_GPUS", ""), "GPU devices for instances of GPU instance types: empty discovers the NVIDIA GPUs, \"none\" uses none, \"0,1\" names them (env SAGEHOST_GPUS); each instance gets as many as its type has, for itself alone")
	fs.StringVar(&cfg.HTTPServer, "http-server", envOr("SAGEHOST_HTTP_SERVER", server.HTTPServerFast), "HTTP/1.1 server implementation: fasthttp (the cheaper per request) or net/http (env SAGEHOST_HTTP_SERVER)")
	fs.BoolVar(&cfg.PublicMetrics, "public-metrics", os.Getenv("SAGEHOST_PUBLIC_METRICS") == "true", "serve Prometheus metrics at /metrics without authentication (env SAGEHOST_PUBLIC_METRICS=true); otherwise /metrics answers SigV4-signed GETs with the caller's account's series only")
	fs.BoolVar(&cfg.Example, "example", false, "deploy an example XGBoost model (house prices) on the built-in XGBoost server as endpoint \"example\" (region us-east-1) and print the AWS CLI command that invokes it")
	logFormat := fs.String("log-format", envOr("SAGEHOST_LOG_FORMAT", "text"), "log format: text or json (env SAGEHOST_LOG_FORMAT)")
	logLevel := fs.String("log-level", envOr("SAGEHOST_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env SAGEHOST_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sagehost serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "sagehost serve:", err)
		return 2
	}
	cfg.Logger = logger
	cfg.Announce = stdout
	if os.Getenv("GOGC") == "" {
		// sagehost's live heap is small (tens of MB) while every call
		// allocates: collecting less often saves CPU on the invoke path
		// for a few MB more memory. GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down: stopping every model instance")
	case err := <-waitErr(srv):
		if err != nil {
			logger.Error("server stopped", "err", err)
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := srv.Close(cctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func waitErr(srv *server.Server) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- srv.Wait() }()
	return ch
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}
