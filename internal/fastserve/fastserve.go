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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"golang.org/x/net/http/httpguts"
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
	// base is the parent context of streamed requests; Shutdown ends it.
	base       context.Context
	cancelBase context.CancelFunc
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.streaming = fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(s.serveStreamed))
	s.fast = &fasthttp.Server{
		Handler:                      s.serve,
		ErrorHandler:                 s.serveError,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               cfg.MaxHeaderBytes,
		MaxRequestBodySize:           cfg.MaxBodyBytes,
		StreamRequestBody:            true, // read by serve, into a buffer of the declared size
		ReadTimeout:                  cfg.ReadTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Logger:                       logger{cfg.Logger},
		CloseOnShutdown:              true,
	}
	return s
}

// Serve serves connections from ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.fast.Serve(ln) }

// Shutdown stops accepting connections and waits, until ctx ends, for
// those open to finish their requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancelBase() // streamed responses (followed logs) end
	return s.fast.ShutdownWithContext(ctx)
}

// serve answers one request.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	r, err := newRequest(ctx)
	if err != nil {
		ctx.Error("400 Bad Request: "+err.Error(), fasthttp.StatusBadRequest)
		ctx.SetConnectionClose()
		return
	}
	handle := s.run
	streaming := s.cfg.Streaming != nil && s.cfg.Streaming(ctx.Method(), ctx.Path())
	if streaming {
		handle = s.stream
	}
	max := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > max {
		// Read and drop what a client may reasonably send, so that it
		// reads the answer rather than a reset while still writing.
		if r.ContentLength > maxDrain || s.drain(ctx) != nil {
			ctx.SetConnectionClose()
		}
		handle(ctx, r)
		return
	}
	if r.ContentLength == 0 {
		handle(ctx, r)
		return
	}
	var bp *[]byte
	if !streaming { // a streaming handler may run on after serve returns
		bp = bodyBufs.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= maxPooledBody {
				bodyBufs.Put(bp)
			}
		}()
	}
	var buf []byte
	if bp != nil {
		buf = (*bp)[:0]
	}
	body, err := readBody(ctx, buf, r.ContentLength, max)
	if bp != nil {
		*bp = body[:0]
	}
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
		if r.ContentLength < 0 {
			addTrailer(r, ctx.Request.Header.TrailerHeader())
		}
	}
	handle(ctx, r)
}

// stream runs the handler on r through fasthttpadaptor, which sends the
// response as the handler flushes it.
func (s *Server) stream(ctx *fasthttp.RequestCtx, r *http.Request) {
	// The adaptor takes the body from ctx: give it the one read (none
	// past MaxBodyBytes), not the rest of the stream, which it would read
	// whole, however long.
	var body []byte
	if b, ok := r.Body.(*Body); ok {
		body = b.b
	}
	ctx.Request.SetBodyRaw(body)
	ctx.SetUserValue(requestKey{}, r)
	defer func() {
		// fasthttpadaptor logs a handler's panic before it flushed and
		// panics again, which nothing in fasthttp would recover: cut the
		// response short, as run does.
		if v := recover(); v != nil {
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(net.Conn) {})
		}
	}()
	s.streaming(ctx)
}

// requestKey keys the request serve built in the ctx given to the adaptor.
type requestKey struct{}

// serveStreamed is the handler fasthttpadaptor runs: cfg.Handler, on the
// request serve built rather than the adaptor's (which differs from
// net/http's: Host in the header map, repeated Content-Type and
// User-Agent lines and Cookie lines merged, a chunked body's length).
//
// The handler gets a context of its own, not the adaptor's: that one is
// fasthttp's RequestCtx, which fasthttp reuses for the connection's next
// request once the response ends, and a streaming handler can run on after
// that (its client gone, until its next write fails). Shutdown ends it.
func (s *Server) serveStreamed(w http.ResponseWriter, ar *http.Request) {
	r, ok := ar.Context().Value(requestKey{}).(*http.Request)
	if !ok {
		r = ar
	}
	ctx, cancel := context.WithCancel(s.base)
	defer cancel()
	s.cfg.Handler.ServeHTTP(w, r.WithContext(ctx))
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
		w.drop() // (after a panic)
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
	w.finish()
}

// serveError answers a request fasthttp could not read. (A body over the
// limit is not one of them: with StreamRequestBody fasthttp hands it to
// serve, which answers it through the handler.)
func (s *Server) serveError(ctx *fasthttp.RequestCtx, err error) {
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

// newRequest builds the net/http form of ctx's request, without its body,
// as net/http's server would give it to the handler for the same bytes.
func newRequest(ctx *fasthttp.RequestCtx) (*http.Request, error) {
	uri := string(ctx.RequestURI())
	h := &ctx.Request.Header
	method := string(h.Method())
	// A CONNECT request names an authority (host:port), which net/http
	// parses into URL.Host.
	authority := method == http.MethodConnect && !strings.HasPrefix(uri, "/")
	rawURL := uri
	if authority {
		rawURL = "http://" + uri
	}
	u, err := url.ParseRequestURI(rawURL)
	if err != nil {
		return nil, err
	}
	if authority {
		u.Scheme = ""
	}
	proto := "HTTP/1.1"
	if !h.IsHTTP11() {
		proto = string(h.Protocol())
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok || major != 1 {
		return nil, fmt.Errorf("unsupported protocol %q", proto)
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     make(http.Header, 12),
		Body:       http.NoBody,
		RequestURI: uri,
		RemoteAddr: ctx.RemoteAddr().String(),
	}
	if raw := h.RawHeaders(); bytes.Contains(raw, []byte("\n ")) || bytes.Contains(raw, []byte("\n\t")) {
		// An obs-fold: fasthttp's AllInOrder, which parses the lines
		// again, drops fields after one in some blocks (bare LF line
		// ends). Read the rare block as net/http does.
		mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
		if err != nil {
			return nil, err
		}
		r.Header = http.Header(mh)
	} else {
		// Values are cut from one copy of the header block, and headers
		// seen once share one backing array: a few allocations per
		// request rather than three per header.
		raw := h.RawHeaders()
		block := string(raw)
		var backing [16]string
		vals := backing[:0:0]
		for k, v := range h.AllInOrder() {
			key := internKey(k)
			value := ""
			if off := cap(raw) - cap(v); len(v) > 0 && off >= 0 && off+len(v) <= len(raw) && &raw[off] == &v[0] {
				value = block[off : off+len(v)]
			} else if len(v) > 0 {
				value = string(v)
			}
			if old, ok := r.Header[key]; ok {
				r.Header[key] = append(old, value)
				continue
			}
			if len(vals) == cap(vals) {
				vals = make([]string, 0, 16)
			}
			vals = append(vals, value)
			r.Header[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	// As net/http: the Host line, or the host of an absolute request URI,
	// goes to r.Host; Transfer-Encoding (chunked: fasthttp refuses other
	// codings but identity, and any in HTTP/1.0) to r.TransferEncoding,
	// and with it the Content-Length and Trailer lines go, the declared
	// and received trailers being in r.Trailer.
	r.Host = u.Host
	if hosts := r.Header["Host"]; r.Host == "" && len(hosts) > 0 {
		r.Host = hosts[0]
	}
	delete(r.Header, "Host")
	conn := r.Header["Connection"]
	// (the token test net/http itself makes)
	r.Close = httpguts.HeaderValuesContainsToken(conn, "close") || (minor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive"))
	delete(r.Header, "Transfer-Encoding")
	switch n := h.ContentLength(); {
	case n == -1: // chunked
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		delete(r.Header, "Content-Length")
		if declared, ok := r.Header["Trailer"]; ok {
			delete(r.Header, "Trailer")
			r.Trailer = declaredTrailer(declared)
		}
	case n >= 0:
		r.ContentLength = int64(n)
	default: // no body (-2: identity without a length, which a request cannot have)
		r.ContentLength = 0
	}
	return r, nil
}

// internKey returns a header name as a string, without allocating for the
// names AWS clients send.
func internKey(k []byte) string {
	switch string(k) {
	case "Host":
		return "Host"
	case "Content-Type":
		return "Content-Type"
	case "Content-Length":
		return "Content-Length"
	case "Authorization":
		return "Authorization"
	case "X-Amz-Date":
		return "X-Amz-Date"
	case "X-Amz-Content-Sha256":
		return "X-Amz-Content-Sha256"
	case "X-Amz-Security-Token":
		return "X-Amz-Security-Token"
	case "X-Amz-Target":
		return "X-Amz-Target"
	case "User-Agent":
		return "User-Agent"
	case "X-Amz-User-Agent":
		return "X-Amz-User-Agent"
	case "Accept":
		return "Accept"
	case "Accept-Encoding":
		return "Accept-Encoding"
	case "Amz-Sdk-Invocation-Id":
		return "Amz-Sdk-Invocation-Id"
	case "Amz-Sdk-Request":
		return "Amz-Sdk-Request"
	case "Connection":
		return "Connection"
	case "Expect":
		return "Expect"
	case "X-Amzn-Sagemaker-Custom-Attributes":
		return "X-Amzn-Sagemaker-Custom-Attributes"
	case "X-Amzn-Sagemaker-Target-Model":
		return "X-Amzn-Sagemaker-Target-Model"
	case "X-Amzn-Sagemaker-Target-Variant":
		return "X-Amzn-Sagemaker-Target-Variant"
	case "X-Amzn-Sagemaker-Inference-Id":
		return "X-Amzn-Sagemaker-Inference-Id"
	}
	return string(k)
}

// declaredTrailer returns the names a Trailer header announces, with nil
// values, as net/http gives them before the body is read.
func declaredTrailer(declared []string) http.Header {
	t := make(http.Header)
	for _, v := range declared {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.Trim(k, " \t"); k != "" {
				t[http.CanonicalHeaderKey(k)] = nil
			}
		}
	}
	if len(t) == 0 {
		return nil
	}
	return t
}

// addTrailer adds to r.Trailer the fields received after a chunked body,
// section being fasthttp's "Name: value\r\n" lines of them.
func addTrailer(r *http.Request, section []byte) {
	for line := range strings.SplitSeq(string(section), "\r\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			if r.Trailer == nil {
				r.Trailer = make(http.Header)
			}
			r.Trailer[k] = append(r.Trailer[k], v)
		}
	}
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
	// big holds the body of a response that announced a length past
	// bigBody, allocated once at that length (fasthttp's own buffer would
	// grow by doubling, copying the body several times).
	big *[]byte
}

// bigBody is the declared length past which a response body goes to a
// buffer of its own.
const bigBody = 64 << 10

var bigBufs sync.Pool

// finish hands a big body to fasthttp, to be sent after the handler
// returns; the buffer goes back to the pool when the request ends
// (fasthttp closes io.Closer user values then, the response written).
func (w *responseWriter) finish() {
	if w.big == nil || len(*w.big) == 0 { // nothing written (HEAD): keep the declared length
		w.drop()
		return
	}
	w.ctx.Response.SetBodyRaw(*w.big)
	w.ctx.SetUserValue(bigBodyKey{}, bigBodyRelease{w.big})
	w.big = nil
}

// drop returns an unsent big body's buffer to the pool.
func (w *responseWriter) drop() {
	if w.big != nil {
		bigBufs.Put(w.big)
		w.big = nil
	}
}

type bigBodyKey struct{}

type bigBodyRelease struct{ b *[]byte }

func (r bigBodyRelease) Close() error {
	*r.b = (*r.b)[:0]
	bigBufs.Put(r.b)
	return nil
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
		if len(vs) == 0 {
			continue
		}
		if k == "Content-Length" {
			// Sent only with no body written (the answer to HEAD): else
			// fasthttp sets the length of what was written.
			resp.Header.Set(k, vs[0])
			if n, err := strconv.Atoi(vs[0]); err == nil && n > bigBody && n <= maxPooledBody {
				bp, _ := bigBufs.Get().(*[]byte)
				if bp == nil {
					bp = new([]byte)
				}
				*bp = slices.Grow((*bp)[:0], n)
				w.big = bp
			}
			continue
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
	if w.big != nil {
		*w.big = append(*w.big, p...)
		return len(p), nil
	}
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
