// Package runner runs a built-in model server as the whole process: it
// listens on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT, serves until SIGTERM or
// SIGINT, then shuts the server down gracefully.
package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const (
	// EnvBindToPort is the port SageMaker tells a container to listen on.
	EnvBindToPort = "SAGEMAKER_BIND_TO_PORT"
	// DefaultPort is the port of a container that gets no
	// SAGEMAKER_BIND_TO_PORT.
	DefaultPort = 8080
)

// Port is the port to listen on: SAGEMAKER_BIND_TO_PORT, or DefaultPort
// when it is unset or empty. Anything but a number from 1 to 65535 is an
// error.
func Port() (int, error) {
	v := os.Getenv(EnvBindToPort)
	if v == "" {
		return DefaultPort, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("invalid %s %q", EnvBindToPort, v)
	}
	return p, nil
}

// Logger hears what Serve does, to write it in the server's own words.
type Logger interface {
	// Serving: the server listens on addr (0.0.0.0:port; ln.Addr() is
	// the address the listener reports) and starts serving.
	Serving(addr string, ln net.Listener)
	// ShuttingDown: sig arrived and the server shuts down.
	ShuttingDown(sig os.Signal)
	// Stopped: the server has shut down.
	Stopped()
	// Failed: the server cannot listen (what is "cannot listen") or
	// serving failed ("serving failed").
	Failed(what string, err error)
}

// Options are what Serve needs besides the port.
type Options struct {
	Handler http.Handler
	// ShutdownTimeout bounds how long the shutdown after a signal waits
	// for the requests in flight.
	ShutdownTimeout time.Duration
	Log             Logger
	// IgnoreSIGTERM, when set, is called on each SIGTERM: true keeps the
	// server running (the hook says so in its own log line).
	IgnoreSIGTERM func() bool
}

// Serve serves opt.Handler on 0.0.0.0:port until SIGTERM or SIGINT, shuts
// it down, and returns the process's exit code: 0 once it has shut down,
// 1 if it cannot listen or serving fails.
func Serve(port int, opt Options) int {
	addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		opt.Log.Failed("cannot listen", err)
		return 1
	}
	srv := &http.Server{Handler: opt.Handler, ReadHeaderTimeout: 30 * time.Second}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sig := range sigs {
			if sig == syscall.SIGTERM && opt.IgnoreSIGTERM != nil && opt.IgnoreSIGTERM() {
				continue
			}
			opt.Log.ShuttingDown(sig)
			ctx, cancel := context.WithTimeout(context.Background(), opt.ShutdownTimeout)
			srv.Shutdown(ctx)
			cancel()
			return
		}
	}()

	opt.Log.Serving(addr, ln)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		opt.Log.Failed("serving failed", err)
		return 1
	}
	<-done
	opt.Log.Stopped()
	return 0
}
