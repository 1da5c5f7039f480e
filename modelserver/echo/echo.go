// Package echo is a minimal built-in model server: it answers every
// invocation with the request's body and content type. It costs almost
// nothing per call, which makes it the model of sagehost's benchmarks: what
// they measure is the gateway, not the model.
package echo

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sagehost/sagehost/modelserver/runner"
)

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Handler serves /ping and /invocations.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		b := bufs.Get().(*bytes.Buffer)
		b.Reset()
		defer bufs.Put(b)
		if _, err := b.ReadFrom(r.Body); err != nil {
			http.Error(w, "cannot read the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		if ca := r.Header.Get("X-Amzn-Sagemaker-Custom-Attributes"); ca != "" {
			w.Header().Set("X-Amzn-Sagemaker-Custom-Attributes", ca)
		}
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		w.Write(b.Bytes())
	})
	return mux
}

// Main serves on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (8080 by default) until
// SIGTERM or SIGINT, and returns once the server has shut down; it exits 1
// if it cannot start.
func Main() {
	port, err := runner.Port()
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	if code := runner.Serve(port, runner.Options{Handler: Handler(), ShutdownTimeout: 5 * time.Second, Log: logger{}}); code != 0 {
		os.Exit(code)
	}
}

// logger writes what the echo server always wrote: where it listens, and
// errors.
type logger struct{}

func (logger) Serving(addr string, ln net.Listener) { fmt.Printf("echo: listening on %s\n", ln.Addr()) }
func (logger) ShuttingDown(os.Signal)               {}
func (logger) Stopped()                             {}
func (logger) Failed(what string, err error)        { fmt.Fprintln(os.Stderr, "echo:", err) }
