// Package echo is a minimal built-in model server: it answers every
// invocation with the request's body and content type. It costs almost
// nothing per call, which makes it the model of sagehost's benchmarks: what
// they measure is the gateway, not the model.
package echo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
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
// SIGTERM or SIGINT.
func Main() {
	port := os.Getenv("SAGEMAKER_BIND_TO_PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	fmt.Printf("echo: listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}
