// Package fastserve serves a net/http Handler with fasthttp's HTTP/1.1
// server, which costs less CPU per request than net/http's (measured in
// BENCHMARKS.md): it reads requests into reused buffers and runs the handler
// on the connection's goroutine, with no background read per request.
//
// The handler sees an ordinary *http.Request built from the request as
// received (headers in the form net/http gives them: Host promoted to
// r.Host, Transfer-Encoding to r.TransferEncoding, names canonical) and
// writes to a ResponseWriter whose body goes to fasthttp's response buffer,
// sent when the handler returns. The request body is read whole before the
// handler runs (at most MaxBodyBytes), into a pooled buffer grown once to
// the declared length, and handed over without a copy (BufferedBody). Requests that Streaming selects (responses written as they
// are flushed, such as followed logs) run through fasthttpadaptor instead.
package fastserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Config configures a Server.
type Config struct {
	Handler http.Handler
	// Streaming selects the requests whose responses must reach the
	// client as the handler flushes them.
	Streaming func(method, path []byte) bool
	// MaxBodyBytes bounds a request body. A longer one is not kept: the
	// handler gets the request with an empty body and ContentLength set
	// past the bound (the declared length, or MaxBodyBytes+1 when it was
	// chunked), so that it answers as it does to any body over its limit.
	// A declared length up to 64 MiB is read and dropped first, so that
	// the client, still writing, gets that answer.
	MaxBodyBytes int
	// MaxHeaderBytes bounds the request line and headers (64 KiB if 0).
	MaxHeaderBytes int
	// ReadTimeout bounds reading one request; IdleTimeout the wait for
	// the next on a keep-alive connection.
	ReadTimeout, IdleTimeout time.Duration
	Logger                   *slog.Logger
}

// Server is an HTTP/1.1 server for a net/http Handler.
type Server struct {
	cfg       Config
	fast      *fasthttp.Server
	streaming fasthttp.RequestHandler
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, streaming: fasthttpadaptor.NewFastHTTPHandler(cfg.Handler)}
	s.fast = &fasthttp.Server{
		Handler:                       s.serve,
		ErrorHandler:                  s.serveError,
		Name:                          "",
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		DisablePreParseMultipartForm:  true,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		StreamRequestBody:             true, // read by serve, into a buffer of the declared size
		ReadTimeout:                   cfg.ReadTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		Logger:                        logger{cfg.Logger},
		CloseOnShutdown:               true,
	}
	return s
}

// Serve serves connections from ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.fast.Serve(ln) }

// Shutdown stops accepting connections and waits, until ctx ends, for
// those open to finish their requests.
func (s *Server) Shutdown(ctx context.Context) error { return s.fast.ShutdownWithContext(ctx) }

// serve answers one request.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	if s.cfg.Streaming != nil && s.cfg.Streaming(ctx.Method(), ctx.Path()) {
		s.streaming(ctx)
		return
	}
	r, err := newRequest(ctx)
	if err != nil {
		ctx.Error("400 Bad Request: "+err.Error(), fasthttp.StatusBadRequest)
		ctx.SetConnectionClose()
		return
	}
	max := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > max {
		// Read and drop what a client may reasonably send, so that it
		// reads the answer rather than a reset while still writing.
		if r.ContentLength > maxDrain || s.drain(ctx) != nil {
			ctx.SetConnectionClose()
		}
		s.run(ctx, r)
		return
	}
	if r.ContentLength == 0 {
		s.run(ctx, r)
		return
	}
	bp := bodyBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBody {
			bodyBufs.Put(bp)
		}
	}()
	body, err := readBody(ctx, (*bp)[:0], r.ContentLength, max)
	*bp = body[:0]
	switch {
	case errors.Is(err, errTooLong): // chunked, past the bound
		r.ContentLength = max + 1
		ctx.SetConnectionClose()
	case err != nil:
		ctx.Error("400 Bad Request: reading the body: "+err.Error(), fasthttp.StatusBadRequest)
		ctx.SetConnectionClose()
		return
	default:
		r.Body = &Body{b: body}
	}
	s.run(ctx, r)
}

// maxDrain bounds the body of a request over MaxBodyBytes that is read (and
// dropped) before the answer; past it the connection is closed unread.
const maxDrain = 64 << 20

// maxPooledBody bounds the body buffers kept for reuse.
const maxPooledBody = 16 << 20

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

var errTooLong = errors.New("request body too long")

// readBody reads a request body of length n (-1: chunked, up to max) into
// buf, growing it once to the declared length.
func readBody(ctx *fasthttp.RequestCtx, buf []byte, n, max int64) ([]byte, error) {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return append(buf, ctx.Request.Body()...), nil
	}
	if n >= 0 {
		buf = slices.Grow(buf, int(n))[:n]
		_, err := io.ReadFull(stream, buf)
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 32<<10)
		}
		k, err := stream.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if int64(len(buf)) > max {
			return buf, errTooLong
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// drain reads and drops the request's body.
func (s *Server) drain(ctx *fasthttp.RequestCtx) error {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return nil
	}
	_, err := io.Copy(io.Discard, io.LimitReader(stream, maxDrain))
	return err
}

// run runs the handler on r and turns what it wrote into ctx's response.
func (s *Server) run(ctx *fasthttp.RequestCtx, r *http.Request) {
	w := writers.Get().(*responseWriter)
	w.ctx = ctx
	defer func() {
		clear(w.header)
		w.ctx, w.status = nil, 0
		writers.Put(w)
	}()
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.cfg.Logger.Error("panic serving request", "panic", v, "path", r.URL.Path)
			}
			// Cut the response short: no answer, the connection closed.
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(net.Conn) {})
		}
	}()
	s.cfg.Handler.ServeHTTP(w, r)
	w.WriteHeader(http.StatusOK) // if the handler never did
}

// serveError answers a request fasthttp could not read.
func (s *Server) serveError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		r, rerr := newRequest(ctx)
		if rerr == nil {
			if r.ContentLength <= int64(s.cfg.MaxBodyBytes) {
				r.ContentLength = int64(s.cfg.MaxBodyBytes) + 1
			}
			ctx.SetConnectionClose() // the rest of the body was never read
			s.run(ctx, r)
			return
		}
	}
	var netErr net.Error
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		ctx.Error("408 Request Timeout", fasthttp.StatusRequestTimeout)
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		ctx.Error("431 Request Header Fields Too Large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	default:
		ctx.Error("400 Bad Request", fasthttp.StatusBadRequest)
	}
	ctx.SetConnectionClose()
}

// newRequest builds the net/http form of ctx's request, without its body.
func newRequest(ctx *fasthttp.RequestCtx) (*http.Request, error) {
	uri := string(ctx.RequestURI())
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, err
	}
	h := &ctx.Request.Header
	r := &http.Request{
		Method:     string(h.Method()),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 12),
		Body:       http.NoBody,
		Host:       string(h.Host()),
		RequestURI: uri,
		RemoteAddr: ctx.RemoteAddr().String(),
	}
	if h.IsHTTP11() {
		r.Close = h.ConnectionClose()
	} else {
		r.Proto, r.ProtoMinor, r.Close = "HTTP/1.0", 0, !h.ConnectionClose() && !bytes.EqualFold(h.Peek("Connection"), []byte("keep-alive"))
	}
	for k, v := range h.AllInOrder() {
		switch key := string(k); key {
		case "Host":
		case "Transfer-Encoding":
			r.TransferEncoding = append(r.TransferEncoding, string(v))
		default:
			r.Header[key] = append(r.Header[key], string(v))
		}
	}
	switch n := h.ContentLength(); {
	case n >= 0:
		r.ContentLength = int64(n)
	case n == -1: // chunked
		r.ContentLength = -1
	default: // no body (-2: identity without a length, which a request cannot have)
		r.ContentLength = 0
	}
	return r, nil
}

// Body is a request body the server has read whole.
type Body struct {
	b   []byte
	off int
}

// BufferedBody returns the whole body; it stays valid until the handler
// returns.
func (b *Body) BufferedBody() []byte { return b.b }

func (b *Body) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	return n, nil
}

// Close does nothing.
func (b *Body) Close() error { return nil }

// responseWriter is the handler's http.ResponseWriter: headers in a map
// until the status is written, the body into fasthttp's response.
type responseWriter struct {
	ctx    *fasthttp.RequestCtx
	header http.Header
	status int
}

var writers = sync.Pool{New: func() any { return &responseWriter{header: make(http.Header, 8)} }}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	if status < 100 || status > 999 {
		panic("fastserve: invalid status " + strconv.Itoa(status))
	}
	w.status = status
	resp := &w.ctx.Response
	resp.SetStatusCode(status)
	for k, vs := range w.header {
		if k == "Content-Length" || len(vs) == 0 {
			continue // fasthttp sets the length of what was written
		}
		if k == "Content-Type" {
			resp.Header.SetContentType(vs[0])
			continue
		}
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.ctx.Write(p)
}

// Flush does nothing: the response is sent when the handler returns
// (handlers that stream are served through fasthttpadaptor).
func (w *responseWriter) Flush() {}

// logger sends fasthttp's messages to slog.
type logger struct{ l *slog.Logger }

func (l logger) Printf(format string, args ...any) {
	l.l.Warn("http server", "msg", fmt.Sprintf(format, args...))
}
