package fastserve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reqView is what a handler can see of a request, in comparable form.
type reqView struct {
	Method                                    string
	Path, RawPath, RawQuery, EscapedPath, URL string
	Host                                      string
	Header                                    http.Header
	ContentLength                             int64
	TransferEncoding                          []string
	Proto                                     string
	ProtoMajor, ProtoMinor                    int
	Close                                     bool
	RequestURI                                string
	Body                                      string
	Trailer                                   http.Header

	bodyErr     error  // reading the body failed
	buffered    string // BufferedBody, where the body has one
	hasBuffered bool
}

// viewOf reads r's body and records what the handler sees.
func viewOf(r *http.Request) reqView {
	v := reqView{
		Method:           r.Method,
		Path:             r.URL.Path,
		RawPath:          r.URL.RawPath,
		RawQuery:         r.URL.RawQuery,
		EscapedPath:      r.URL.EscapedPath(),
		URL:              r.URL.String(),
		Host:             r.Host,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Proto:            r.Proto,
		ProtoMajor:       r.ProtoMajor,
		ProtoMinor:       r.ProtoMinor,
		Close:            r.Close,
		RequestURI:       r.RequestURI,
	}
	if bb, ok := r.Body.(interface{ BufferedBody() []byte }); ok {
		v.hasBuffered, v.buffered = true, string(bb.BufferedBody())
	}
	body, err := io.ReadAll(r.Body)
	v.Body, v.bodyErr = string(body), err
	v.Trailer = r.Trailer.Clone()
	if len(v.Header) == 0 {
		v.Header = nil
	}
	if len(v.Trailer) == 0 {
		v.Trailer = nil
	}
	return v
}

// diff lists the fields in which got (fastserve) differs from want
// (net/http).
func diff(got, want reqView) []string {
	var d []string
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		f := g.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			d = append(d, fmt.Sprintf("%s: fastserve %#v, net/http %#v", f.Name, g.Field(i).Interface(), w.Field(i).Interface()))
		}
	}
	if got.hasBuffered && got.buffered != got.Body {
		d = append(d, fmt.Sprintf("BufferedBody %q, read %q", got.buffered, got.Body))
	}
	return d
}

// normalizeIntended removes, from want (net/http's view), the differences
// from net/http that fastserve keeps on purpose:
//
//   - net/http adds "Cache-Control: no-cache" to a request that has
//     "Pragma: no-cache" and no Cache-Control (an HTTP/1.0 compatibility
//     rewrite, net/http's fixPragmaCacheControl); fastserve passes the
//     headers as received.
//   - A trailer field name with spaces before its colon: net/http keeps
//     them (and the name as sent), fasthttp drops them and canonicalizes
//     the name. Trailers are out of the header map, and so of anything a
//     signature covers.
//   - A CONNECT request whose target starts with "?": fasthttp puts a "/"
//     before it, which newRequest cannot tell from one sent. (No other
//     method reaches the handler with such a target.)
//
// It reports false where the requests cannot be compared.
func normalizeIntended(got *reqView, want *reqView) bool {
	if want.Method == http.MethodConnect && strings.HasPrefix(want.RequestURI, "?") {
		return false
	}
	for _, v := range []*reqView{got, want} {
		if v.Trailer == nil {
			continue
		}
		t := make(http.Header, len(v.Trailer))
		for k, vs := range v.Trailer {
			k = http.CanonicalHeaderKey(strings.TrimRight(k, " \t"))
			if vs == nil {
				if _, ok := t[k]; !ok {
					t[k] = nil
				}
				continue
			}
			t[k] = append(t[k], vs...)
		}
		v.Trailer = t
	}
	if p := want.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" && got.Header["Cache-Control"] == nil {
		if cc := want.Header["Cache-Control"]; len(cc) == 1 && cc[0] == "no-cache" {
			delete(want.Header, "Cache-Control")
			if len(want.Header) == 0 {
				want.Header = nil
			}
		}
	}
	return true
}

// recorder is a handler that records the first request each client
// address makes, and answers "ok".
type recorder struct {
	mu   sync.Mutex
	seen map[string]reqView
}

func newRecorder() *recorder { return &recorder{seen: make(map[string]reqView)} }

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := viewOf(r)
	rec.mu.Lock()
	if _, ok := rec.seen[r.RemoteAddr]; !ok {
		rec.seen[r.RemoteAddr] = v
	}
	rec.mu.Unlock()
	w.Write([]byte("ok"))
}

// take returns and forgets the request recorded for addr.
func (rec *recorder) take(addr string) (reqView, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	v, ok := rec.seen[addr]
	delete(rec.seen, addr)
	return v, ok
}

// quietLogger discards what it is given.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startFast serves cfg on a loopback listener until the test ends, and
// checks that Shutdown and Serve return.
func startFast(t testing.TB, cfg Config) (addr string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return ln.Addr().String()
}

// exchangeTCP sends raw to addr, half-closes, and returns what came back
// and the client address the server saw.
func exchangeTCP(t testing.TB, addr string, raw []byte) (resp []byte, client string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	resp, err = io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading the response: %v", err)
	}
	return resp, c.LocalAddr().String()
}

// isReset reports whether err is the peer's reset of the connection (which
// a close with unread data sends).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// request builds a raw request from its head lines and body.
func request(head []string, body string) string {
	return strings.Join(head, "\r\n") + "\r\n\r\n" + body
}

// seedRequests are requests both servers accept.
var seedRequests = []struct{ name, raw string }{
	{"post-content-length", request([]string{
		"POST /endpoints/e1/invocations HTTP/1.1",
		"Host: localhost:8080",
		"Content-Type: application/json",
		"Content-Length: 12",
	}, `{"a": "b c"}`)},
	{"chunked", request([]string{
		"POST /endpoints/e1/invocations HTTP/1.1",
		"Host: h",
		"Transfer-Encoding: chunked",
	}, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")},
	{"chunked-empty", request([]string{
		"POST /x HTTP/1.1",
		"Host: h",
		"Transfer-Encoding: chunked",
	}, "0\r\n\r\n")},
	{"chunked-extension-and-case", request([]string{
		"POST /x HTTP/1.1",
		"Host: h",
		"Transfer-Encoding: Chunked",
	}, "3;ext=1\r\nabc\r\n0\r\n\r\n")},
	{"chunked-trailer", request([]string{
		"POST /x HTTP/1.1",
		"Host: h",
		"Trailer: X-Checksum",
		"Transfer-Encoding: chunked",
	}, "3\r\nabc\r\n0\r\nX-Checksum: 123\r\n\r\n")},
	{"escaped-path-query", request([]string{
		"GET /endpoints/a%2Fb/invocations?x=1&y=%20 HTTP/1.1",
		"Host: h",
	}, "")},
	{"repeated-headers", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"X-Foo: a",
		"X-Foo: b",
		"Accept: text/plain",
		"Accept: application/json",
	}, "")},
	{"repeated-special-headers", request([]string{
		"POST / HTTP/1.1",
		"Host: h",
		"User-Agent: one",
		"User-Agent: two",
		"Content-Type: text/plain",
		"Content-Type: application/json",
		"Cookie: a=1",
		"Cookie: b=2",
		"Content-Length: 1",
	}, "x")},
	{"lower-case-names", request([]string{
		"POST /endpoints/e1/invocations HTTP/1.1",
		"host: h",
		"content-type: text/csv",
		"x-amz-date: 20240101T000000Z",
		"x-amz-content-sha256: UNSIGNED-PAYLOAD",
		"authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"content-length: 3",
	}, "1,2")},
	{"value-spaces", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"X-Pad:    padded  value   ",
		"X-Tab:\tv\t",
		"X-Empty:",
		"X-Only-Spaces:    ",
	}, "")},
	{"obs-fold", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"X-Fold: a",
		"  b",
		"\tc",
		"X-After: 1",
	}, "")},
	{"obs-fold-bare-lf", "GET / HTTP/1.1\nHost: h\nX-Fold: a\n b\nX-After: 1\n\r\n\r\n"},
	{"http10", request([]string{"GET /old HTTP/1.0"}, "")},
	{"http10-keep-alive", request([]string{
		"GET /old HTTP/1.0",
		"Host: h",
		"Connection: keep-alive",
	}, "")},
	{"http10-body", request([]string{
		"POST /old HTTP/1.0",
		"Content-Length: 2",
	}, "hi")},
	{"connection-close", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"Connection: close",
	}, "")},
	{"connection-tokens", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"Connection: Upgrade, Close",
	}, "")},
	{"expect-continue", request([]string{
		"POST /e HTTP/1.1",
		"Host: h",
		"Expect: 100-continue",
		"Content-Length: 4",
	}, "body")},
	{"empty-body-post", request([]string{
		"POST /empty HTTP/1.1",
		"Host: h",
		"Content-Length: 0",
	}, "")},
	{"post-no-length", request([]string{
		"POST /empty HTTP/1.1",
		"Host: h",
	}, "")},
	{"host-with-port", request([]string{
		"GET /ping HTTP/1.1",
		"Host: example.com:8443",
	}, "")},
	{"absolute-uri", request([]string{
		"GET http://example.com:81/x?y=1 HTTP/1.1",
		"Host: other",
	}, "")},
	{"pragma", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"Pragma: no-cache",
	}, "")},
	{"odd-names", request([]string{
		"GET / HTTP/1.1",
		"Host: h",
		"x_under_score: 1",
		"X-AMZ-META-UPPER: 2",
		"content-MD5: 3",
	}, "")},
}

// fuzzSeeds are further requests for FuzzNewRequest, which either server
// may refuse.
var fuzzSeeds = []string{
	request([]string{"GET / HTTP/1.1", "Host: h", "X-Fold: a", " b", "\tc"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: h", "X-Bin: caf\xc3\xa9 \x80\xff"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: h", "X-Ctl: a\x01b"}, ""),
	request([]string{"CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"}, ""),
	request([]string{"CONNECT /rpc HTTP/1.1", "Host: h"}, ""),
	request([]string{"GET /a?b#frag HTTP/1.1", "Host: h"}, ""),
	request([]string{"GET http:///x HTTP/1.1", "Host: h"}, ""),
	request([]string{"GET http://user:pw@example.com/x HTTP/1.1", "Host: h"}, ""),
	request([]string{"GET //double/slash HTTP/1.1", "Host: h"}, ""),
	request([]string{"get /lower HTTP/1.1", "Host: h"}, ""),
	request([]string{"GET / HTTP/1.2", "Host: h", "Connection: close"}, ""),
	request([]string{"GET / HTTP/2.0", "Host: h"}, ""),
	request([]string{"GET / HTTP/0.9"}, ""),
	request([]string{"GET /", "Host: h"}, ""),
	request([]string{"GET / HTTP/1.1"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: a", "Host: b"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: bad host"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: h", "Connection: keep-alive, Upgrade"}, ""),
	request([]string{"GET / HTTP/1.0", "Connection: close"}, ""),
	request([]string{"GET / HTTP/1.0", "Connection: Keep-Alive"}, ""),
	request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: 003"}, "abc"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: +3"}, "abc"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: 3", "Content-Length: 4"}, "abcd"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: 3", "Transfer-Encoding: chunked"}, "3\r\nabc\r\n0\r\n\r\n"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Transfer-Encoding: identity", "Content-Length: 3"}, "abc"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Transfer-Encoding: gzip, chunked"}, "3\r\nabc\r\n0\r\n\r\n"),
	request([]string{"POST / HTTP/1.0", "Transfer-Encoding: chunked", "Content-Length: 3"}, "abc"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Trailer: X-A, X-B", "Transfer-Encoding: chunked"}, "1\r\na\r\n0\r\nX-A: 1\r\nX-C: 3\r\n\r\n"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Trailer: X-A", "Content-Length: 1"}, "a"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, "1\r\na\r\n0\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: 5"}, "ab"),
	request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: 2"}, "abGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	"GET / HTTP/1.1\nHost: h\nX-Bare: lf\n\n",
	"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	request([]string{"GET / HTTP/1.1", "Host: h", "X Space: 1", "X-Trail : 2"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: h", "Cookie: a=1; b=2", "cookie: c=3"}, ""),
	request([]string{"GET / HTTP/1.1", "Host: h", "Pragma: no-cache", "Cache-Control: max-age=0"}, ""),
	request([]string{"OPTIONS * HTTP/1.1", "Host: h"}, ""),
	request([]string{"GET * HTTP/1.1", "Host: h"}, ""),
}

// TestRequestMatchesNetHTTP sends the same bytes to fastserve and to a
// net/http server and compares what one handler sees through each, on the
// buffered path and on the one Streaming selects (through fasthttpadaptor).
func TestRequestMatchesNetHTTP(t *testing.T) {
	fastRec, streamRec, netRec := newRecorder(), newRecorder(), newRecorder()
	fastAddr := startFast(t, Config{Handler: fastRec, MaxBodyBytes: 1 << 20})
	streamAddr := startFast(t, Config{Handler: streamRec, MaxBodyBytes: 1 << 20, Streaming: func(method, path []byte) bool { return true }})
	ns := httptest.NewServer(netRec)
	defer ns.Close()
	netAddr := ns.Listener.Addr().String()

	for _, tc := range seedRequests {
		t.Run(tc.name, func(t *testing.T) {
			nresp, nclient := exchangeTCP(t, netAddr, []byte(tc.raw))
			want, nok := netRec.take(nclient)
			if !nok || want.bodyErr != nil {
				t.Fatalf("net/http rejected the request (%v): %q", want.bodyErr, nresp)
			}
			for _, fast := range []struct {
				name string
				addr string
				rec  *recorder
			}{{"buffered", fastAddr, fastRec}, {"streaming", streamAddr, streamRec}} {
				fresp, fclient := exchangeTCP(t, fast.addr, []byte(tc.raw))
				got, fok := fast.rec.take(fclient)
				if !fok || got.bodyErr != nil {
					t.Fatalf("%s: fastserve rejected the request (%v): %q", fast.name, got.bodyErr, fresp)
				}
				if !got.hasBuffered && got.Body != "" {
					t.Errorf("%s: a body of %d bytes is not a *Body", fast.name, len(got.Body))
				}
				if !strings.HasPrefix(strings.TrimPrefix(string(fresp), "HTTP/1.1 100 Continue\r\n\r\n"), "HTTP/1.1 200 OK\r\n") {
					t.Errorf("%s: fastserve answered %q", fast.name, fresp)
				}
				want := want
				want.Header = want.Header.Clone()
				if !normalizeIntended(&got, &want) {
					t.Fatalf("%s: not comparable", fast.name)
				}
				for _, d := range diff(got, want) {
					t.Errorf("%s: %s", fast.name, d)
				}
			}
		})
	}
}

// memConn is a connection whose peer has sent in and half-closed; what the
// server writes is kept, and done is closed when it closes the connection.
type memConn struct {
	mu     sync.Mutex
	in     []byte
	out    bytes.Buffer
	remote net.Addr
	done   chan struct{}
	once   sync.Once
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *memConn) RemoteAddr() net.Addr             { return c.remote }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// memListener hands out the memConns sent on conns.
type memListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

var memPort atomic.Int64

// exchangeMem serves raw on l as one connection and returns what the
// server wrote and the client address it saw.
func exchangeMem(t testing.TB, l *memListener, raw []byte) (out []byte, client string) {
	c := &memConn{
		in:     raw,
		remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: int(memPort.Add(1))},
		done:   make(chan struct{}),
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case l.conns <- c:
	case <-timer.C:
		t.Fatal("the server does not accept")
	}
	select {
	case <-c.done:
	case <-timer.C:
		t.Fatalf("the server did not close the connection for %q", raw)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Bytes(), c.remote.String()
}

// FuzzNewRequest feeds the same bytes to fastserve and to net/http's
// server; where both pass the first request to the handler (and net/http
// reads its body without error), the handler must see the same request.
func FuzzNewRequest(f *testing.F) {
	for _, tc := range seedRequests {
		f.Add([]byte(tc.raw))
	}
	for _, raw := range fuzzSeeds {
		f.Add([]byte(raw))
	}
	fastRec, streamRec, netRec := newRecorder(), newRecorder(), newRecorder()
	fastLn, streamLn, netLn := newMemListener(), newMemListener(), newMemListener()
	fs := New(Config{Handler: fastRec, MaxBodyBytes: 1 << 20, Logger: quietLogger()})
	ss := New(Config{Handler: streamRec, MaxBodyBytes: 1 << 20, Logger: quietLogger(), Streaming: func(method, path []byte) bool { return true }})
	ns := &http.Server{Handler: netRec, ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 3)
	go func() { served <- fs.Serve(fastLn) }()
	go func() { served <- ss.Serve(streamLn) }()
	go func() { served <- ns.Serve(netLn) }()
	f.Cleanup(func() {
		fastLn.Close()
		streamLn.Close()
		netLn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs.Shutdown(ctx)
		ss.Shutdown(ctx)
		ns.Shutdown(ctx)
		for range 3 {
			<-served
		}
	})

	f.Fuzz(func(t *testing.T, raw []byte) {
		_, nclient := exchangeMem(t, netLn, raw)
		want, nok := netRec.take(nclient)
		for _, fast := range []struct {
			ln  *memListener
			rec *recorder
		}{{fastLn, fastRec}, {streamLn, streamRec}} {
			_, fclient := exchangeMem(t, fast.ln, raw)
			got, fok := fast.rec.take(fclient)
			if got.hasBuffered && got.buffered != got.Body {
				t.Fatalf("BufferedBody %q, read %q", got.buffered, got.Body)
			}
			if !fok || !nok || want.bodyErr != nil || got.bodyErr != nil {
				continue
			}
			want := want
			want.Header = want.Header.Clone()
			if !normalizeIntended(&got, &want) {
				continue
			}
			if d := diff(got, want); len(d) > 0 {
				t.Fatalf("for %q (streaming %v):\n%s", raw, fast.ln == streamLn, strings.Join(d, "\n"))
			}
		}
	})
}

// TestAcceptanceDifferences records the requests that only one of the two
// servers passes to the handler. These differences are intended (or
// fasthttp's and harmless): none is a request that a client of this
// server sends, and neither server misframes the connection on them.
func TestAcceptanceDifferences(t *testing.T) {
	fastRec, netRec := newRecorder(), newRecorder()
	fastAddr := startFast(t, Config{Handler: fastRec, MaxBodyBytes: 1 << 20})
	ns := httptest.NewServer(netRec)
	defer ns.Close()
	netAddr := ns.Listener.Addr().String()

	for _, tc := range []struct {
		name, raw       string
		fast, nethttp   bool // whether the handler is reached
		fastStatus      int  // fastserve's answer when it is not
		netStatusPrefix string
	}{
		// fasthttp refuses a second Content-Length even with the same
		// value; net/http folds equal ones.
		{"duplicate-content-length", request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: 2", "Content-Length: 2"}, "hi"), false, true, 400, ""},
		// RFC 9112 6.1: HTTP/1.0 with Transfer-Encoding has faulty framing;
		// fasthttp refuses it, net/http ignores the Transfer-Encoding.
		{"http10-transfer-encoding", request([]string{"POST / HTTP/1.0", "Transfer-Encoding: chunked", "Content-Length: 3"}, "abc"), false, true, 400, ""},
		// net/http refuses "identity" (501); fasthttp ignores it and frames
		// the body by its Content-Length.
		{"transfer-encoding-identity", request([]string{"POST / HTTP/1.1", "Host: h", "Transfer-Encoding: identity", "Content-Length: 3"}, "abc"), true, false, 0, "HTTP/1.1 501 "},
		// fasthttp refuses trailer fields that could be mistaken for
		// headers (X-Forwarded-For, Authorization, ...).
		{"forbidden-trailer", request([]string{"POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, "1\r\na\r\n0\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"), false, true, 400, ""},
		// fasthttp wants CRLF line ends; net/http takes bare LF.
		{"bare-lf", "GET / HTTP/1.1\nHost: h\n\n", false, true, 400, ""},
		// fasthttp skips empty lines before a request line; net/http only
		// after a POST on the same connection.
		{"leading-crlf", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", true, false, 0, "HTTP/1.1 400 "},
		// net/http answers OPTIONS * itself; fastserve passes it on.
		{"options-star", request([]string{"OPTIONS * HTTP/1.1", "Host: h"}, ""), true, false, 0, "HTTP/1.1 200 "},
		// fasthttp takes "*" only with OPTIONS.
		{"get-star", request([]string{"GET * HTTP/1.1", "Host: h"}, ""), false, true, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresp, fclient := exchangeTCP(t, fastAddr, []byte(tc.raw))
			nresp, nclient := exchangeTCP(t, netAddr, []byte(tc.raw))
			_, fok := fastRec.take(fclient)
			_, nok := netRec.take(nclient)
			if fok != tc.fast || nok != tc.nethttp {
				t.Fatalf("handler reached: fastserve %v (%q), net/http %v (%q); want %v, %v", fok, fresp, nok, nresp, tc.fast, tc.nethttp)
			}
			if !tc.fast {
				if want := fmt.Sprintf("HTTP/1.1 %d ", tc.fastStatus); !strings.HasPrefix(string(fresp), want) {
					t.Errorf("fastserve answered %q, want %q...", fresp, want)
				}
				if !bytes.Contains(fresp, []byte("\r\nConnection: close\r\n")) {
					t.Errorf("fastserve answered %q without closing", fresp)
				}
			}
			if !tc.nethttp && !strings.HasPrefix(string(nresp), tc.netStatusPrefix) {
				t.Errorf("net/http answered %q, want %q...", nresp, tc.netStatusPrefix)
			}
		})
	}
}

// roundTrip writes raw on c and reads one response from br, with its body.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, raw, method string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, br, method)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, string(body)
}

// expectClosed checks that the server closes c with nothing more to read.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(br)
	if len(b) > 0 || (err != nil && !isReset(err)) {
		t.Errorf("after the answer: read %q, %v; want the connection closed", b, err)
	}
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// responseHandler answers by path, in ways the response tests compare.
func responseHandler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/headers":
		h := w.Header()
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		h.Set("X-One", "1")
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2; Path=/")
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.Write([]byte(`{"ok":true}`))
	case "/no-content-type":
		w.Header()["Content-Type"] = nil
		w.Write([]byte("<html><body>not sniffed</body></html>"))
	case "/nothing":
	case "/204":
		w.Header().Set("X-After", "204")
		w.WriteHeader(http.StatusNoContent)
		w.Write([]byte("not sent"))
	case "/404":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("no such thing"))
	case "/pieces":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "11")
		w.Write([]byte("hello"))
		w.Write([]byte(" "))
		w.Write([]byte("world"))
	case "/status-twice":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-Late", "ignored") // after WriteHeader: not sent
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("accepted"))
	case "/head-length":
		// What a handler may answer to HEAD: the length of the body it
		// would send.
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "11")
	case "/big":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(bytes.Repeat([]byte("0123456789"), 20000))
	default:
		http.NotFound(w, r)
	}
}

// TestResponse checks what a client receives of what the handler writes,
// against net/http for the same handler.
func TestResponse(t *testing.T) {
	fastAddr := startFast(t, Config{Handler: http.HandlerFunc(responseHandler), MaxBodyBytes: 1 << 20})
	ns := httptest.NewUnstartedServer(http.HandlerFunc(responseHandler))
	ns.Config.ErrorLog = log.New(io.Discard, "", 0) // the superfluous WriteHeader
	ns.Start()
	defer ns.Close()
	netAddr := ns.Listener.Addr().String()
	fc, fbr := dial(t, fastAddr)
	nc, nbr := dial(t, netAddr)

	type answer struct {
		Status        int
		Header        http.Header
		ContentLength int64
		Body          string
	}
	get := func(c net.Conn, br *bufio.Reader, method, path string) answer {
		// One keep-alive connection for all: a body sent where none
		// belongs, or a wrong length, breaks the next response.
		resp, body := roundTrip(t, c, br, request([]string{method + " " + path + " HTTP/1.1", "Host: h"}, ""), method)
		h := resp.Header.Clone()
		delete(h, "Date")
		if len(h) == 0 {
			h = nil
		}
		return answer{resp.StatusCode, h, resp.ContentLength, body}
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/headers"},
		{"GET", "/no-content-type"},
		{"GET", "/nothing"},
		{"GET", "/204"},
		{"GET", "/404"},
		{"GET", "/pieces"},
		{"GET", "/status-twice"},
		{"GET", "/big"},
		{"HEAD", "/headers"},
		{"HEAD", "/pieces"},
		{"HEAD", "/nothing"},
		{"HEAD", "/404"},
		{"HEAD", "/head-length"},
		{"GET", "/headers"},
	} {
		got := get(fc, fbr, tc.method, tc.path)
		want := get(nc, nbr, tc.method, tc.path)
		if want.ContentLength == -1 && tc.method == "GET" {
			// Intended: net/http sends a body of more than 2 KiB with no
			// declared length chunked; fastserve holds the whole response
			// and sends its length.
			want.ContentLength = int64(len(want.Body))
			want.Header.Set("Content-Length", strconv.Itoa(len(want.Body)))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s:\nfastserve %d %v %d %.80q\nnet/http  %d %v %d %.80q", tc.method, tc.path,
				got.Status, got.Header, got.ContentLength, got.Body, want.Status, want.Header, want.ContentLength, want.Body)
		}
	}

	// The same, spelled out.
	a := get(fc, fbr, "GET", "/headers")
	if !reflect.DeepEqual(a.Header["X-Multi"], []string{"a", "b"}) || !reflect.DeepEqual(a.Header["Set-Cookie"], []string{"a=1", "b=2; Path=/"}) ||
		a.Header.Get("Content-Type") != "application/json" || a.ContentLength != int64(len(a.Body)) || a.Body != `{"ok":true}` {
		t.Errorf("/headers: %+v", a)
	}
	if a := get(fc, fbr, "GET", "/no-content-type"); a.Header["Content-Type"] != nil {
		t.Errorf("/no-content-type: Content-Type %q", a.Header["Content-Type"])
	}
	if a := get(fc, fbr, "GET", "/nothing"); a.Status != 200 || a.Body != "" || a.ContentLength != 0 {
		t.Errorf("/nothing: %+v", a)
	}
	if a := get(fc, fbr, "GET", "/204"); a.Status != 204 || a.Body != "" || a.Header.Get("X-After") != "204" {
		t.Errorf("/204: %+v", a)
	}
	if a := get(fc, fbr, "GET", "/404"); a.Status != 404 || a.Body != "no such thing" {
		t.Errorf("/404: %+v", a)
	}
	if a := get(fc, fbr, "HEAD", "/pieces"); a.Status != 200 || a.Body != "" || a.ContentLength != 11 {
		t.Errorf("HEAD /pieces: %+v", a)
	}
}

// TestBodyOverMax checks that a body over MaxBodyBytes reaches the handler
// empty, with ContentLength past the bound, and that its answer is what the
// client reads.
func TestBodyOverMax(t *testing.T) {
	const max = 1024
	seenc := make(chan bodySeen, 1)
	addr := startFast(t, Config{
		MaxBodyBytes: max,
		// The bound holds on the streaming path too (where
		// fasthttpadaptor alone would read any body whole).
		Streaming: func(method, path []byte) bool { return bytes.HasPrefix(path, []byte("/logs/")) },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			seenc <- bodySeen{r.ContentLength, string(body)}
			if r.ContentLength > max {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				w.Write([]byte(`{"message":"too large"}`))
				return
			}
			w.Write([]byte("got " + strconv.Itoa(len(body))))
		}),
	})
	chunked := func(n int) string {
		var b strings.Builder
		for n > 0 {
			k := min(n, 300)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", k, strings.Repeat("c", k))
			n -= k
		}
		return b.String() + "0\r\n\r\n"
	}
	for _, path := range []string{"/invocations", "/logs/x"} {
		testBodyOverMax(t, addr, path, seenc, chunked)
	}
}

// bodySeen is what TestBodyOverMax's handler saw.
type bodySeen struct {
	contentLength int64
	body          string
}

func testBodyOverMax(t *testing.T, addr, path string, seenc chan bodySeen, chunked func(int) string) {
	const max = 1024
	post := func(framing, body string) string {
		return request([]string{"POST " + path + " HTTP/1.1", "Host: h", framing}, body)
	}
	for _, tc := range []struct {
		name          string
		raw           string
		contentLength int64 // what the handler sees
		body          int   // bytes of body it reads
		closed        bool  // whether the connection ends after the answer
	}{
		{"declared-at-max", post("Content-Length: 1024", strings.Repeat("d", max)), max, max, false},
		{"chunked-at-max", post("Transfer-Encoding: chunked", chunked(max)), -1, max, false},
		// A declared body up to 64 MiB is read and dropped: the connection
		// stays usable.
		{"declared-over", post("Content-Length: 4096", strings.Repeat("d", 4096)), 4096, 0, false},
		// Past 64 MiB it is not read, and the connection ends. (fasthttp
		// reads up to min(MaxBodyBytes, 8 KiB) of it first.)
		{"declared-far-over", post("Content-Length: 100000000", strings.Repeat("d", 2*max)), 100000000, 0, true},
		// Chunked: read up to the bound, and the connection ends.
		{"chunked-over", post("Transfer-Encoding: chunked", chunked(2048)), max + 1, 0, true},
	} {
		t.Run(path+"/"+tc.name, func(t *testing.T) {
			c, br := dial(t, addr)
			resp, body := roundTrip(t, c, br, tc.raw, "POST")
			var s bodySeen
			select {
			case s = <-seenc:
			default:
				t.Fatalf("the handler was not called; the client got %d %q", resp.StatusCode, body)
			}
			if s.contentLength != tc.contentLength || len(s.body) != tc.body {
				t.Errorf("the handler saw ContentLength %d and a body of %d bytes, want %d and %d", s.contentLength, len(s.body), tc.contentLength, tc.body)
			}
			if s.contentLength > max {
				if resp.StatusCode != 413 || body != `{"message":"too large"}` || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("the client got %d %v %q, want the handler's 413", resp.StatusCode, resp.Header, body)
				}
			} else if resp.StatusCode != 200 || body != "got 1024" {
				t.Errorf("the client got %d %q", resp.StatusCode, body)
			}
			if tc.closed {
				if !resp.Close {
					t.Errorf("the answer does not say Connection: close")
				}
				expectClosed(t, c, br)
				return
			}
			// The connection is still in step: the next request is answered.
			resp, body = roundTrip(t, c, br, post("Content-Length: 2", "ok"), "POST")
			<-seenc
			if resp.StatusCode != 200 || body != "got 2" {
				t.Errorf("the next request on the connection got %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestBadRequests checks the answers to requests the handler never sees.
func TestBadRequests(t *testing.T) {
	var calls atomic.Int32
	addr := startFast(t, Config{
		MaxHeaderBytes: 4096,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Write([]byte("ok"))
		}),
	})
	for _, tc := range []struct {
		name   string
		raw    string
		status int
	}{
		{"header-over-max", request([]string{"GET / HTTP/1.1", "Host: h", "X-Big: " + strings.Repeat("b", 8000)}, ""), 431},
		{"many-headers-over-max", request(append([]string{"GET / HTTP/1.1", "Host: h"}, slicesRepeat("X-Many: "+strings.Repeat("m", 100), 60)...), ""), 431},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400},
		{"no-version", "GET /\r\n\r\n", 400},
		{"bad-header-line", request([]string{"GET / HTTP/1.1", "Host: h", "no colon here"}, ""), 400},
		{"bad-content-length", request([]string{"POST / HTTP/1.1", "Host: h", "Content-Length: ten"}, "0123456789"), 400},
		{"bad-chunk", request([]string{"POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, "zz\r\nabc\r\n0\r\n\r\n"), 400},
		{"http2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := dial(t, addr)
			resp, _ := roundTrip(t, c, br, tc.raw, "GET")
			if resp.StatusCode != tc.status {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.status)
			}
			expectClosed(t, c, br)
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times", n)
	}
	// A header block just under the bound is served.
	c, br := dial(t, addr)
	if resp, body := roundTrip(t, c, br, request([]string{"GET / HTTP/1.1", "Host: h", "X-Big: " + strings.Repeat("b", 3500)}, ""), "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("a 3.5 KiB header block got %d %q", resp.StatusCode, body)
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestPanic checks that a handler that panics leaves its client with no
// answer, and the server serving.
func TestPanic(t *testing.T) {
	var logs syncBuffer
	addr := startFast(t, Config{
		MaxBodyBytes: 1024,
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		Streaming: func(method, path []byte) bool {
			return bytes.HasPrefix(path, []byte("/logs/"))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch strings.TrimPrefix(r.URL.Path, "/logs") {
			case "/abort":
				panic(http.ErrAbortHandler)
			case "/boom":
				panic("boom at " + r.URL.Path)
			case "/boom-after-write":
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte("partial"))
				panic("boom after write at " + r.URL.Path)
			case "/boom-after-flush":
				w.Write([]byte("line 1\n"))
				w.(http.Flusher).Flush()
				panic("boom after flush")
			}
			w.Write([]byte("ok"))
		}),
	})
	for _, tc := range []struct{ name, raw string }{
		{"abort", request([]string{"GET /abort HTTP/1.1", "Host: h"}, "")},
		{"boom", request([]string{"GET /boom HTTP/1.1", "Host: h"}, "")},
		{"boom-after-write", request([]string{"GET /boom-after-write HTTP/1.1", "Host: h"}, "")},
		{"boom-with-body", request([]string{"POST /boom HTTP/1.1", "Host: h", "Content-Length: 3"}, "abc")},
		{"boom-body-over-max", request([]string{"POST /boom HTTP/1.1", "Host: h", "Content-Length: 2000"}, strings.Repeat("x", 2000))},
		{"boom-chunked-over-max", request([]string{"POST /boom HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, "800\r\n"+strings.Repeat("x", 2048)+"\r\n0\r\n\r\n")},
		{"streaming-abort", request([]string{"GET /logs/abort HTTP/1.1", "Host: h"}, "")},
		{"streaming-boom", request([]string{"GET /logs/boom HTTP/1.1", "Host: h"}, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := dial(t, addr)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.raw)
			b, err := io.ReadAll(br)
			if len(b) > 0 || (err != nil && !isReset(err)) {
				t.Errorf("the client read %q, %v; want the connection closed with no answer", b, err)
			}
		})
	}
	t.Run("streaming-boom-after-flush", func(t *testing.T) {
		// The head is out: the body ends short, which the client sees.
		resp, err := http.Get("http://" + addr + "/logs/boom-after-flush")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Errorf("the client read %q to its end; want an error", body)
		}
	})
	// The server still serves, on new connections and old ones.
	for range 3 {
		c, br := dial(t, addr)
		if resp, body := roundTrip(t, c, br, request([]string{"GET /fine HTTP/1.1", "Host: h"}, ""), "GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after the panics: %d %q", resp.StatusCode, body)
		}
	}
	out := logs.String()
	for _, want := range []string{"boom at /boom", "boom after write at /boom-after-write", "boom at /logs/boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, http.ErrAbortHandler.Error()) {
		t.Errorf("http.ErrAbortHandler was logged:\n%s", out)
	}
}

// TestStreaming checks that a request Streaming selects gets what the
// handler flushed while the handler still runs.
func TestStreaming(t *testing.T) {
	firstRead := make(chan struct{})
	handlerDone := make(chan error, 1)
	addr := startFast(t, Config{
		Streaming: func(method, path []byte) bool {
			return string(method) == "GET" && bytes.HasPrefix(path, []byte("/logs/"))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/logs/follow" {
				w.(http.Flusher).Flush() // does nothing here
				w.Write([]byte("not streamed"))
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("line 1\n"))
			w.(http.Flusher).Flush()
			select {
			case <-firstRead:
				w.Write([]byte("line 2\n"))
				handlerDone <- nil
			case <-time.After(5 * time.Second):
				handlerDone <- errors.New("the client did not get the first line while the handler ran")
			}
		}),
	})
	resp, err := http.Get("http://" + addr + "/logs/follow?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "line 1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(firstRead)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "line 2\n" {
		t.Errorf("rest %q, %v", rest, err)
	}
	if err := <-handlerDone; err != nil {
		t.Error(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q", ct)
	}
	// Paths Streaming does not select are served whole.
	resp, err = http.Get("http://" + addr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "not streamed" || resp.ContentLength != int64(len(body)) {
		t.Errorf("/other: %q, ContentLength %d", body, resp.ContentLength)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestKeepAliveBufferedBody checks several requests on one connection,
// sequential and pipelined, and that the body is the BufferedBody and an
// io.Reader of the same bytes.
func TestKeepAliveBufferedBody(t *testing.T) {
	addr := startFast(t, Config{
		MaxBodyBytes: 1 << 20,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var buffered []byte
			bb, ok := r.Body.(interface{ BufferedBody() []byte })
			if ok {
				buffered = bytes.Clone(bb.BufferedBody())
			}
			read, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if again, _ := io.ReadAll(r.Body); len(again) != 0 {
				http.Error(w, "read twice", 500)
				return
			}
			w.Header().Set("X-Buffered", strconv.FormatBool(ok))
			w.Header().Set("X-Same", strconv.FormatBool(bytes.Equal(buffered, read)))
			w.Header().Set("X-Remote", r.RemoteAddr)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(read)
		}),
	})
	c, br := dial(t, addr)
	big := strings.Repeat("0123456789abcdef", 10000) // past the 64 KiB read buffer
	bodies := []string{"first", "", "third body", big}
	var remote string
	check := func(resp *http.Response, body, want string) {
		t.Helper()
		if resp.StatusCode != 200 || body != want {
			t.Errorf("got %d %.40q (%d bytes), want %.40q (%d bytes)", resp.StatusCode, body, len(body), want, len(want))
		}
		if want != "" && (resp.Header.Get("X-Buffered") != "true" || resp.Header.Get("X-Same") != "true") {
			t.Errorf("body of %d bytes: X-Buffered %s, X-Same %s", len(want), resp.Header.Get("X-Buffered"), resp.Header.Get("X-Same"))
		}
		if remote == "" {
			remote = resp.Header.Get("X-Remote")
		} else if got := resp.Header.Get("X-Remote"); got != remote {
			t.Errorf("served from %s, then %s: not one connection", remote, got)
		}
	}
	for _, b := range bodies {
		resp, body := roundTrip(t, c, br, request([]string{"POST /echo HTTP/1.1", "Host: h", "Content-Length: " + strconv.Itoa(len(b))}, b), "POST")
		check(resp, body, b)
	}
	// Chunked, in pieces of all sizes.
	var ch strings.Builder
	for i, n := 0, 1; i < len(big); n *= 3 {
		k := min(n, len(big)-i)
		fmt.Fprintf(&ch, "%x\r\n%s\r\n", k, big[i:i+k])
		i += k
	}
	ch.WriteString("0\r\n\r\n")
	resp, body := roundTrip(t, c, br, request([]string{"POST /echo HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, ch.String()), "POST")
	check(resp, body, big)
	// Pipelined: all written at once, answered in order.
	var all strings.Builder
	for _, b := range bodies {
		all.WriteString(request([]string{"POST /echo HTTP/1.1", "Host: h", "Content-Length: " + strconv.Itoa(len(b))}, b))
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, all.String()); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		resp, body := readResponse(t, br, "POST")
		check(resp, body, b)
	}
	// And with net/http's client, which keeps the connection.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	var remotes []string
	for i := range 3 {
		resp, err := client.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", i*1000)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != i*1000 {
			t.Errorf("echo of %d bytes: %d", i*1000, len(body))
		}
		remotes = append(remotes, resp.Header.Get("X-Remote"))
	}
	if remotes[0] != remotes[1] || remotes[1] != remotes[2] {
		t.Errorf("net/http's client used several connections: %v", remotes)
	}
}

// TestShutdown checks that Shutdown lets a request in flight finish,
// closes idle connections, and that Serve then returns.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := New(Config{
		Logger: quietLogger(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				started <- struct{}{}
				<-release
			}
			w.Write([]byte("done"))
		}),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle, idleBr := dial(t, addr)
	roundTrip(t, idle, idleBr, request([]string{"GET / HTTP/1.1", "Host: h"}, ""), "GET")
	busy, busyBr := dial(t, addr)
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(busy, request([]string{"GET /slow HTTP/1.1", "Host: h"}, ""))
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	expectClosed(t, idle, idleBr) // closed while /slow still runs
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	resp, body := readResponse(t, busyBr, "GET")
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Errorf("the request in flight got %d %q, Close %v", resp.StatusCode, body, resp.Close)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts")
	}
}

// A response that declares a length past bigBody goes out of a buffer of
// its own, taken from a pool: each answer carries exactly its own bytes,
// however the handler writes them, and a HEAD answer keeps the length.
func TestBigResponses(t *testing.T) {
	const n = 3*bigBody + 7
	addr := startFast(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fill := r.URL.Query().Get("fill")[0]
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodHead {
			return
		}
		chunk := bytes.Repeat([]byte{fill}, 1000)
		for left := n; left > 0; left -= len(chunk) {
			w.Write(chunk[:min(left, len(chunk))])
		}
	}), MaxBodyBytes: 1 << 20})
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for _, fill := range "abcab" {
		resp, err := client.Get("http://" + addr + "/?fill=" + string(fill))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(body) != n || resp.ContentLength != n || !bytes.Equal(body, bytes.Repeat([]byte{byte(fill)}, n)) {
			t.Fatalf("fill %c: %d bytes (Content-Length %d), %v", fill, len(body), resp.ContentLength, err)
		}
	}
	resp, err := client.Head("http://" + addr + "/?fill=h")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != n {
		t.Fatalf("HEAD: Content-Length %d, want %d", resp.ContentLength, n)
	}
}

// A streaming handler whose client hung up gets an error from its next
// writes (and so stops), rather than writing into nothing or blocking.
func TestStreamingClientGone(t *testing.T) {
	stopped := make(chan error, 1)
	addr := startFast(t, Config{
		Streaming: func(method, path []byte) bool { return true },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := 0; ; i++ {
				_, err := fmt.Fprintf(w, "line %d\n", i)
				if err == nil {
					w.(http.Flusher).Flush()
				}
				if err != nil || i > 2000 { // 2000 lines: ~10 s
					stopped <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}),
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /logs/x HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "line") || strings.Contains(line, "line 0") {
			break
		}
	}
	c.Close()
	select {
	case err := <-stopped:
		if err == nil {
			t.Fatal("the handler wrote 2000 lines to a client that had gone")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the handler neither stopped nor finished: blocked writing to a client that had gone")
	}
}
