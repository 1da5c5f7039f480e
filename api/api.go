// Package api frames sagehost's HTTP interface: both AWS protocols on one
// listener. It reads each request once, authenticates it (SigV4, before any
// dispatch), then dispatches the control plane (awsJson 1.1, POST / with
// X-Amz-Target: SageMaker.<Operation>) to the control package and the
// runtime (rest-json, /endpoints/{EndpointName}/...) to the invoke package,
// and writes every error in the shape and with the status AWS uses.
package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/async"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/metrics"
)

// Authenticator verifies a request's signature and names its caller.
type Authenticator interface {
	Verify(r *http.Request, body []byte) (sagehost.Caller, error)
}

// MaxControlBodyBytes bounds a control-plane request body.
const MaxControlBodyBytes = 8 << 20

// Handler serves the whole HTTP interface.
type Handler struct {
	Auth    Authenticator
	Control *control.Service
	Router  *invoke.Router
	// Async queues InvokeEndpointAsync requests (nil: not served).
	Async  *async.Manager
	Logger *slog.Logger
	// Metrics are served at /metrics: to any SigV4-signed GET, restricted
	// to the caller's account, or to anyone when PublicMetrics is set.
	Metrics       *metrics.Metrics
	PublicMetrics bool
	// LogDir is the root of the container logs served at
	// /logs/{EndpointName} to signed GETs ("" serves none).
	LogDir string

	bufs sync.Pool
	// validated remembers header values that passed validation.
	validMu   sync.RWMutex
	validated map[validValue]struct{}
}

// ServeHTTP dispatches a request by its protocol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["X-Amzn-Requestid"] = []string{newRequestID()}
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/endpoints/"):
		h.guard(w, runtime, func() { h.serveRuntime(w, r) })
	case path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	case strings.HasPrefix(path, "/logs/") && h.LogDir != "" && r.Method == http.MethodGet:
		h.guard(w, runtime, func() { h.serveLogs(w, r) })
	case path == "/metrics" && h.Metrics != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		h.guard(w, runtime, func() { h.serveMetrics(w, r) })
	case path == "/" || r.Header.Get("X-Amz-Target") != "":
		h.guard(w, controlPlane, func() { h.serveControl(w, r) })
	default:
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeUnknownOperation,
			"No SageMaker operation is served at %s %s.", r.Method, path))
	}
}

// guard turns a panic into an InternalFailure answer instead of a dropped
// connection, so that nothing a client sends can crash the server.
func (h *Handler) guard(w http.ResponseWriter, p protocol, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.Logger.Error("panic serving request", "panic", v)
			err := fmt.Errorf("panic: %v", v)
			if p == controlPlane {
				writeControlError(w, h.Logger, err)
			} else {
				writeRuntimeError(w, h.Logger, err)
			}
		}
	}()
	fn()
}

// serveMetrics serves Prometheus metrics: all of them when public, else the
// signed caller's account's.
func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if h.PublicMetrics {
		h.Metrics.Handler().ServeHTTP(w, r)
		return
	}
	caller, err := h.Auth.Verify(r, nil)
	if err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	h.Metrics.AccountHandler(caller.Account).ServeHTTP(w, r)
}

// bufferedBody is a request body the HTTP server has already read whole
// (internal/fastserve's): readBody uses it as it is.
type bufferedBody interface{ BufferedBody() []byte }

// errTooLarge is returned by readBody for a body over its limit.
var errTooLarge = errors.New("request body too large")

// readBody reads a request body of at most limit bytes into a pooled
// buffer; release returns the buffer once the body is no longer used.
func (h *Handler) readBody(r *http.Request, limit int64) (body []byte, release func(), err error) {
	if r.ContentLength > limit {
		return nil, func() {}, errTooLarge
	}
	if b, ok := r.Body.(bufferedBody); ok { // read whole by the server: no copy
		if body := b.BufferedBody(); int64(len(body)) <= limit {
			return body, func() {}, nil
		}
		return nil, func() {}, errTooLarge
	}
	buf, _ := h.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	release = func() {
		if buf.Cap() <= 2*invoke.MaxPayloadBytes {
			h.bufs.Put(buf)
		}
	}
	if r.ContentLength > 0 {
		// ReadFrom wants MinRead bytes free before it sees EOF; without
		// them a fresh buffer would grow (and copy the body) once more.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	src := r.Body
	if r.ContentLength < 0 { // unknown length (chunked): stop one byte past the limit
		src = io.NopCloser(io.LimitReader(r.Body, limit+1))
	}
	n, err := buf.ReadFrom(src)
	if err != nil {
		release()
		return nil, func() {}, fmt.Errorf("read request body: %w", err)
	}
	if n > limit {
		release()
		return nil, func() {}, errTooLarge
	}
	return buf.Bytes(), release, nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func itoa(n int) string { return strconv.Itoa(n) }
