package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---- helpers -------------------------------------------------------------

// countingListener counts the connections accepted. Accepts happen one at a
// time in the server's accept loop, so the count is exact once a later
// connection was served.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// httpServer is a net/http server on loopback that counts connections
// accepted, connections closed and requests handled.
type httpServer struct {
	srv      *httptest.Server
	addr     string
	ln       *countingListener
	requests atomic.Int64
	closed   atomic.Int64
	stop     chan struct{} // closed at the end of the test: blocked handlers return
}

func newHTTPServer(t *testing.T, h http.HandlerFunc, config func(*http.Server)) *httpServer {
	t.Helper()
	s := &httpServer{stop: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	s.ln = &countingListener{Listener: s.srv.Listener}
	s.srv.Listener = s.ln
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			s.closed.Add(1)
		}
	}
	if config != nil {
		config(s.srv.Config)
	}
	s.srv.Start()
	s.addr = s.srv.Listener.Addr().String()
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.stop) }) // runs before srv.Close
	return s
}

// block waits until the client went away or the test ended.
func (s *httpServer) block(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.stop:
	}
}

// waitClosed waits until the server saw n connections closed.
func (s *httpServer) waitClosed(t *testing.T, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("server to see %d connection(s) closed", n), func() bool { return s.closed.Load() >= n })
	if got := s.closed.Load(); got != n {
		t.Fatalf("server saw %d connections closed, want %d", got, n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rawServer is a loopback TCP server whose connections are served by a
// function of the test's, for exact bytes on the wire.
type rawServer struct {
	ln       net.Listener
	addr     string
	accepts  atomic.Int64
	requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	closed   atomic.Int64  // connections closed by the server
	stop     chan struct{} // closed at the end of the test
}

func newRawServer(t *testing.T, serve func(s *rawServer, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, addr: ln.Addr().String(), stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				serve(s, c, bufio.NewReader(c))
				c.Close()
				s.closed.Add(1)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.stop)
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// readRequest reads one request and its body, counting it.
func (s *rawServer) readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, err
	}
	s.requests.Add(1)
	return req, body, nil
}

// readBody reads resp's body to the end and closes it.
func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("closing body: %v", err)
	}
	return string(b)
}

func newClient(t *testing.T) *Client {
	c := New(8, time.Minute, time.Second)
	t.Cleanup(c.Close)
	return c
}

// call does a request expected to succeed and returns its status and body.
func call(t *testing.T, c *Client, addr string, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, time.Time{}, http.MethodPost, addr, "/invocations", nil, []byte(body))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// doAsync runs Do in a goroutine, so that a call that hangs fails the test
// instead of the run.
func doAsync(ctx context.Context, c *Client, addr string, body []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(ctx, time.Time{}, http.MethodPost, addr, "/invocations", nil, body)
		if err == nil {
			resp.Body.Close()
			err = errors.New("Do succeeded")
		}
		done <- err
	}()
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(3 * time.Second):
		t.Fatal("Do did not return")
		return nil
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// ---- 1. the request on the wire -------------------------------------------

func TestRequestFields(t *testing.T) {
	type seen struct {
		method, uri, host string
		contentLength     int64
		header            http.Header
		body              string
	}
	got := make(chan seen, 1)
	s := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Host, r.ContentLength, r.Header.Clone(), string(b)}
		w.Header().Set("X-Answer", "yes")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "answer body")
	}, nil)
	c := newClient(t)

	header := []Field{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "X-Amzn-SageMaker-Custom-Attributes", Value: "a=1; b=2"},
		{Name: "X-Empty", Value: ""},
	}
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/invocations?a=1&b=%2F", header, []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("status %d, want 201", resp.StatusCode)
	}
	if v := resp.Header.Get("X-Answer"); v != "yes" {
		t.Errorf("X-Answer %q, want yes", v)
	}
	if v := resp.Header.Get("Content-Type"); v != "text/plain" {
		t.Errorf("Content-Type %q, want text/plain", v)
	}
	if b := readBody(t, resp); b != "answer body" {
		t.Errorf("body %q", b)
	}

	r := <-got
	if r.method != "POST" || r.uri != "/invocations?a=1&b=%2F" || r.host != s.addr {
		t.Errorf("request line/host: %q %q host %q, want POST /invocations?a=1&b=%%2F host %q", r.method, r.uri, r.host, s.addr)
	}
	if r.contentLength != 7 || r.body != `{"x":1}` {
		t.Errorf("Content-Length %d body %q", r.contentLength, r.body)
	}
	for _, f := range header {
		if v, ok := r.header[http.CanonicalHeaderKey(f.Name)]; !ok || len(v) != 1 || v[0] != f.Value {
			t.Errorf("header %s = %q, want [%q]", f.Name, v, f.Value)
		}
	}
	for k := range r.header {
		switch k {
		case "Content-Type", "X-Amzn-Sagemaker-Custom-Attributes", "X-Empty", "Content-Length":
		default:
			t.Errorf("unexpected header %s: %q", k, r.header[k])
		}
	}
	if _, ok := r.header["User-Agent"]; ok {
		t.Error("User-Agent sent")
	}
	if _, ok := r.header["Accept-Encoding"]; ok {
		t.Error("Accept-Encoding sent")
	}
}

// TestRequestBytes checks the exact bytes sent, Content-Length included
// or left out by method and body.
func TestRequestBytes(t *testing.T) {
	wire := make(chan string, 1)
	s := newRawServer(t, func(s *rawServer, c net.Conn, _ *bufio.Reader) {
		var rec bytes.Buffer
		br := bufio.NewReader(io.TeeReader(c, &rec))
		for {
			rec.Reset()
			if _, _, err := s.readRequest(br); err != nil {
				return
			}
			wire <- rec.String()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t)
	host := "Host: " + s.addr + "\r\n"
	for _, tc := range []struct {
		method string
		header []Field
		body   string
		want   string
	}{
		{"POST", []Field{{"Content-Type", "application/json"}, {"x-lower", "a b"}}, "hello",
			"POST /p?q=1 HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Type: application/json\r\nx-lower: a b\r\n\r\nhello"},
		{"POST", nil, "", "POST /p?q=1 HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n"},
		{"PUT", nil, "", "PUT /p?q=1 HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n"},
		{"GET", nil, "", "GET /p?q=1 HTTP/1.1\r\n" + host + "\r\n"},
		{"DELETE", []Field{{"Accept", "*/*"}}, "", "DELETE /p?q=1 HTTP/1.1\r\n" + host + "Accept: */*\r\n\r\n"},
		{"DELETE", nil, "x", "DELETE /p?q=1 HTTP/1.1\r\n" + host + "Content-Length: 1\r\n\r\nx"},
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		resp, err := c.Do(context.Background(), time.Time{}, tc.method, s.addr, "/p?q=1", tc.header, body)
		if err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		if b := readBody(t, resp); b != "ok" {
			t.Errorf("%s: body %q", tc.method, b)
		}
		if got := <-wire; got != tc.want {
			t.Errorf("%s %q: sent\n%q\nwant\n%q", tc.method, tc.body, got, tc.want)
		}
	}
	if n := s.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// ---- 2. keep-alive ---------------------------------------------------------

func TestKeepAliveReuse(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	if n := c.Idle(s.addr); n != 0 {
		t.Fatalf("Idle %d before any call", n)
	}
	for i := range 5 {
		want := fmt.Sprintf("call %d", i)
		if status, b := call(t, c, s.addr, want); status != 200 || b != want {
			t.Fatalf("call %d: %d %q", i, status, b)
		}
		if n := c.Idle(s.addr); n != 1 {
			t.Fatalf("after call %d: Idle %d, want 1", i, n)
		}
	}
	if n := s.ln.n.Load(); n != 1 {
		t.Errorf("%d server connections, want 1", n)
	}
	if n := s.requests.Load(); n != 5 {
		t.Errorf("%d requests, want 5", n)
	}
}

// A pooled connection keeps the deadline of its last call; the next call,
// without a deadline, must not inherit it.
func TestReuseAfterDeadlinePassedWhileIdle(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	resp, err := c.Do(ctx, time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); b != "a" {
		t.Fatalf("body %q", b)
	}
	cancel()
	time.Sleep(80 * time.Millisecond) // the first call's deadline is past
	resp, err = c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); b != "b" {
		t.Fatalf("body %q", b)
	}
	if n := s.ln.n.Load(); n != 1 {
		t.Errorf("%d server connections, want 1", n)
	}
}

// ---- 3. the server closes idle connections --------------------------------

func TestServerClosesIdleConnection(t *testing.T) {
	s := newHTTPServer(t, echo, func(srv *http.Server) { srv.IdleTimeout = 30 * time.Millisecond })
	c := newClient(t)
	for i := range 3 {
		want := fmt.Sprintf("call %d", i)
		if status, b := call(t, c, s.addr, want); status != 200 || b != want {
			t.Fatalf("call %d: %d %q", i, status, b)
		}
		if n := s.requests.Load(); n != int64(i+1) {
			t.Fatalf("after call %d: handler ran %d times, want %d", i, n, i+1)
		}
		// The server closes the connection while it is in the pool.
		s.waitClosed(t, int64(i+1))
		if n := c.Idle(s.addr); n != 1 {
			t.Fatalf("Idle %d, want 1 (the stale connection)", n)
		}
	}
	if n := s.ln.n.Load(); n != 3 {
		t.Errorf("%d server connections, want 3", n)
	}
}

// A server that closes after each answer without saying Connection: close.
func TestRawServerClosesAfterAnswer(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		_, body, err := s.readRequest(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	c := newClient(t)
	for i := range 4 {
		want := fmt.Sprintf("call %d", i)
		if status, b := call(t, c, s.addr, want); status != 200 || b != want {
			t.Fatalf("call %d: %d %q", i, status, b)
		}
		if n := s.requests.Load(); n != int64(i+1) {
			t.Fatalf("after call %d: %d requests, want %d", i, n, i+1)
		}
		waitFor(t, "the server to close", func() bool { return s.closed.Load() == int64(i+1) })
		if n := c.Idle(s.addr); n != 1 {
			t.Fatalf("Idle %d, want 1 (the closed connection)", n)
		}
	}
	if n := s.accepts.Load(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
}

// A request whose write fails on a reused connection is sent once more, on
// a new one. The pooled connection is made to fail writes only (shut down
// for writing here, the server keeping its side open), so that it passes
// the check before reuse.
func TestRetryAfterWriteFailure(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			_, body, err := s.readRequest(br)
			if err != nil {
				<-s.stop // keep the connection open
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	c := newClient(t)
	if _, b := call(t, c, s.addr, "first"); b != "first" {
		t.Fatalf("body %q", b)
	}
	c.mu.Lock()
	pooled := c.idle[s.addr]
	if len(pooled) != 1 {
		c.mu.Unlock()
		t.Fatalf("%d pooled connections, want 1", len(pooled))
	}
	err := pooled[0].Conn.(*net.TCPConn).CloseWrite()
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if status, b := call(t, c, s.addr, "second"); status != 200 || b != "second" {
		t.Fatalf("second call: %d %q", status, b)
	}
	if n, r := s.accepts.Load(), s.requests.Load(); n != 2 || r != 2 {
		t.Errorf("%d connections, %d requests; want 2, 2", n, r)
	}
	wantIdle(t, c, s.addr, 1)
}

// A write that fails on a fresh connection is not retried: the server is
// not one that closed an idle connection. Here it reads nothing and resets
// the connection while the (large) request is still being written.
func TestNoRetryOnFreshWriteFailure(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-s.stop:
		}
		c.(*net.TCPConn).SetLinger(0) // close with a reset
	})
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := waitErr(t, doAsync(ctx, c, s.addr, make([]byte, 64<<20)))
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("error %v, want a reset", err)
	}
	if n := s.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (no retry)", n)
	}
}

// A pooled connection that looks open but that the server closes once the
// next request came, without an answer (a container dying as it got the
// call): the request was written, so it is not sent again.
func TestNoRetryAfterWrite(t *testing.T) {
	var handled atomic.Int64
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if _, body, err := s.readRequest(br); err == nil {
			handled.Add(1)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
		s.readRequest(br) // the next one: dropped, closing
	})
	c := newClient(t)
	if status, b := call(t, c, s.addr, "first"); status != 200 || b != "first" {
		t.Fatalf("first call: %d %q", status, b)
	}
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("second"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a call without an answer succeeded")
	}
	if n, r := s.accepts.Load(), s.requests.Load(); n != 1 || r != 2 {
		t.Errorf("%d connections, %d requests; want 1, 2 (no second send)", n, r)
	}
	wantIdle(t, c, s.addr, 0)
	// The next call gets a new connection.
	if status, b := call(t, c, s.addr, "third"); status != 200 || b != "third" {
		t.Fatalf("third call: %d %q", status, b)
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("handled %d, want 2", n)
	}
}

// A server that writes stray bytes on an idle connection (an unsolicited
// 408, say): they must not be taken for the next call's answer.
func TestStrayBytesOnIdleConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle connections are peeked on Linux only")
	}
	stray := make(chan struct{})
	var conns atomic.Int64
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		first := conns.Add(1) == 1
		for {
			if _, _, err := s.readRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if first {
				first = false
				io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
				close(stray)
			}
		}
	})
	c := newClient(t)
	if _, b := call(t, c, s.addr, "x"); b != "ok" {
		t.Fatalf("body %q", b)
	}
	<-stray
	time.Sleep(20 * time.Millisecond) // for the bytes to cross loopback
	if status, b := call(t, c, s.addr, "y"); status != 200 || b != "ok" {
		t.Fatalf("second call: %d %q, want 200 ok", status, b)
	}
	if n := s.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A reused connection that fails after part of an answer came is not
// retried: the server got the request.
func TestNoRetryAfterPartialAnswer(t *testing.T) {
	var conns atomic.Int64
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		first := conns.Add(1) == 1
		for i := 0; ; i++ {
			if _, _, err := s.readRequest(br); err != nil {
				return
			}
			if first && i == 1 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le") // then close
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t)
	if _, b := call(t, c, s.addr, "x"); b != "ok" {
		t.Fatalf("body %q", b)
	}
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("y"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a cut answer succeeded")
	}
	if n := s.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (no retry)", n)
	}
	wantIdle(t, c, s.addr, 0)
}

// ---- 4. deadlines ----------------------------------------------------------

func TestDeadlineWaitingForAnswer(t *testing.T) {
	var s *httpServer
	s = newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // then the server notices the client going away
		s.block(r)
	}, nil)
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := waitErr(t, doAsync(ctx, c, s.addr, []byte("x")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want one wrapping context.DeadlineExceeded", err)
	}
	wantIdle(t, c, s.addr, 0)
	s.waitClosed(t, 1) // the client closed it
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestDeadlineReadingBody(t *testing.T) {
	var s *httpServer
	s = newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "12345")
		w.(http.Flusher).Flush()
		s.block(r)
	}, nil)
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	resp, err := c.Do(ctx, time.Time{}, http.MethodPost, s.addr, "/", nil, nil)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read error %v, want one wrapping context.DeadlineExceeded", err)
	}
	if string(b) != "12345" {
		t.Errorf("read %q before the deadline, want 12345", b)
	}
	resp.Body.Close()
	wantIdle(t, c, s.addr, 0)
	s.waitClosed(t, 1)
}

// The deadline argument bounds the call when ctx has none, and wins over
// a later one of ctx.
func TestDeadlineArgument(t *testing.T) {
	var s *httpServer
	s = newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if r.URL.Path == "/part" {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
		}
		s.block(r)
	}, nil)
	c := newClient(t)
	later, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), later} {
		done := make(chan error, 1)
		go func() {
			resp, err := c.Do(ctx, time.Now().Add(100*time.Millisecond), http.MethodPost, s.addr, "/", nil, []byte("x"))
			if err == nil {
				resp.Body.Close()
				err = errors.New("Do succeeded")
			}
			done <- err
		}()
		if err := waitErr(t, done); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want one wrapping context.DeadlineExceeded", err)
		}
		if ctx.Err() != nil {
			t.Fatal("ctx ended")
		}

		resp, err := c.Do(ctx, time.Now().Add(150*time.Millisecond), http.MethodPost, s.addr, "/part", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = readAllWithin(t, resp.Body, "the deadline")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read error %v, want one wrapping context.DeadlineExceeded", err)
		}
		resp.Body.Close()
		wantIdle(t, c, s.addr, 0)
	}
}

// ---- 5. cancellation -------------------------------------------------------

func TestCancelWaitingForAnswer(t *testing.T) {
	var s *httpServer
	arrived := make(chan struct{}, 1)
	s = newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		arrived <- struct{}{}
		s.block(r)
	}, nil)
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := doAsync(ctx, c, s.addr, []byte("x"))
	<-arrived
	cancel()
	err := waitErr(t, done)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	wantIdle(t, c, s.addr, 0)
	s.waitClosed(t, 1)
}

func TestCancelReadingBody(t *testing.T) {
	var s *httpServer
	s = newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part")
		w.(http.Flusher).Flush() // chunked
		s.block(r)
	}, nil)
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := c.Do(ctx, time.Time{}, http.MethodPost, s.addr, "/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part" {
		t.Fatalf("read %q, %v", buf, err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	err = readAllWithin(t, resp.Body, "cancel")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Read error %v, want context.Canceled", err)
	}
	resp.Body.Close()
	wantIdle(t, c, s.addr, 0)
}

// A server that takes the connection but never reads: the request's write
// blocks once the socket buffers are full, and a deadline or a cancel must
// still end the call.
func TestContextEndsBlockedWrite(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		<-s.stop // read nothing
	})
	body := make([]byte, 64<<20)
	c := newClient(t)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		err := waitErr(t, doAsync(ctx, c, s.addr, body))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want one wrapping context.DeadlineExceeded", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(150*time.Millisecond, cancel)
		err := waitErr(t, doAsync(ctx, c, s.addr, body))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	wantIdle(t, c, s.addr, 0)
}

func TestAlreadyCancelled(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	call(t, c, s.addr, "warm") // one pooled connection
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := waitErr(t, doAsync(ctx, c, s.addr, []byte("x")))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	wantIdle(t, c, s.addr, 0)
	// A fresh one: the dial itself is cancelled.
	err = waitErr(t, doAsync(ctx, c, s.addr, []byte("x")))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// ---- 6. refused ------------------------------------------------------------

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t)
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, addr, "/", nil, []byte("x"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("Do succeeded against a closed port")
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("error %#v (%v), want a *net.OpError with Op dial", err, err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v, want ECONNREFUSED", err)
	}
	if n := c.Idle(addr); n != 0 {
		t.Errorf("Idle %d, want 0", n)
	}
}

// ---- 7. framing of answers -------------------------------------------------

func TestChunkedAnswer(t *testing.T) {
	s := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "chunk%d;", i)
			w.(http.Flusher).Flush()
		}
	}, nil)
	c := newClient(t)
	for range 2 {
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("TransferEncoding %q, want chunked", resp.TransferEncoding)
		}
		if b := readBody(t, resp); b != "chunk0;chunk1;chunk2;chunk3;chunk4;" {
			t.Errorf("body %q", b)
		}
		wantIdle(t, c, s.addr, 1)
	}
	if n := s.ln.n.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestConnectionCloseAnswer(t *testing.T) {
	s := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}, nil)
	c := newClient(t)
	for range 2 {
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Close {
			t.Error("resp.Close false")
		}
		if b := readBody(t, resp); b != "bye" {
			t.Errorf("body %q", b)
		}
		wantIdle(t, c, s.addr, 0)
	}
	if n := s.ln.n.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// An answer without length, ended by the server closing the connection.
func TestAnswerUntilClose(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if _, _, err := s.readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil close")
	})
	c := newClient(t)
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodGet, s.addr, "/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); b != "until close" {
		t.Errorf("body %q", b)
	}
	wantIdle(t, c, s.addr, 0)
}

// Answers without a body (204, Content-Length: 0) are pooled at once.
func TestEmptyAnswers(t *testing.T) {
	s := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "0")
	}, nil)
	c := newClient(t)
	for _, p := range []string{"/204", "/empty", "/204"} {
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, p, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b := readBody(t, resp); b != "" {
			t.Errorf("%s: body %q", p, b)
		}
		if n := c.Idle(s.addr); n != 1 {
			t.Errorf("%s: Idle %d, want 1", p, n)
		}
	}
	if n := s.ln.n.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// ---- 8. a body closed early -----------------------------------------------

func TestBodyClosedEarly(t *testing.T) {
	big := strings.Repeat("z", 100<<10)
	s := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		io.WriteString(w, big)
	}, nil)
	c := newClient(t)
	for i, n := range []int{0, 10, len(big)} { // unread, partly read, read all but EOF not seen
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodGet, s.addr, "/", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if n < len(big) {
			resp.Body.Close()
			if k := c.Idle(s.addr); k != 0 {
				t.Errorf("after reading %d bytes: Idle %d, want 0", n, k)
			}
			s.waitClosed(t, int64(i+1))
		} else {
			// Everything read, though EOF not yet returned: closing may keep it or not,
			// but the next call must work and must not see stale bytes.
			resp.Body.Close()
		}
	}
	if _, b := call(t, c, s.addr, ""); b != big {
		t.Errorf("body of %d bytes, want %d", len(b), len(big))
	}
}

// Reading after Close must not read another call's answer.
func TestReadAfterClose(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, resp); b != "first" {
		t.Fatalf("body %q", b)
	}
	resp2, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := resp.Body.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after Close: %d, %v; want 0, EOF", n, err)
	}
	if b := readBody(t, resp2); b != "second" {
		t.Errorf("second body %q", b)
	}
	if err := resp.Body.Close(); err != nil { // twice: harmless
		t.Error(err)
	}
	wantIdle(t, c, s.addr, 1)
}

// ---- 9. large bodies -------------------------------------------------------

func TestLargeBodies(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{inlineBody - 1, inlineBody, inlineBody + 1, 1 << 20, 3<<20 + 7} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, body)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if b := readBody(t, resp); !bytes.Equal([]byte(b), body) {
			t.Fatalf("%d bytes: echo of %d bytes differs", size, len(b))
		}
		if n := c.Idle(s.addr); n != 1 {
			t.Errorf("%d bytes: Idle %d, want 1", size, n)
		}
	}
	if n := s.ln.n.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// ---- 10. invalid header fields ---------------------------------------------

func TestInvalidFields(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	for _, f := range []Field{
		{"X-Bad", "a\r\nX-Injected: 1"},
		{"X-Bad", "a\rb"},
		{"X-Bad", "a\nb"},
		{"X-Bad", "a\x00b"},
		{"", "v"},
		{"Bad Name", "v"},
		{"Bad:Name", "v"},
		{"Bad\r\nName", "v"},
		{"Bad\tName", "v"},
		{"Bäd", "v"},
	} {
		header := []Field{{"Content-Type", "text/plain"}, f}
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", header, []byte("x"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("field %q: %q accepted", f.Name, f.Value)
		}
	}
	// A valid call: had any of the above dialed, its connection would have
	// been accepted before this one.
	if _, b := call(t, c, s.addr, "ok"); b != "ok" {
		t.Fatalf("body %q", b)
	}
	if n := s.ln.n.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	// And on a pooled connection: nothing is written on it either.
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", []Field{{"X-Bad", "a\nb"}}, []byte("x"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("invalid field accepted")
	}
	if _, b := call(t, c, s.addr, "ok2"); b != "ok2" {
		t.Fatalf("body %q", b)
	}
	if n, r := s.ln.n.Load(), s.requests.Load(); n != 1 || r != 2 {
		t.Errorf("%d connections, %d requests; want 1, 2", n, r)
	}
}

// ---- 11. informational answers ---------------------------------------------

func TestInformationalAnswers(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := s.readRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 5\r\n\r\nfinal")
		}
	})
	c := newClient(t)
	for range 2 {
		resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Final") != "1" || resp.Header.Get("Link") != "" {
			t.Errorf("answer %d %v, want the 200 alone", resp.StatusCode, resp.Header)
		}
		if b := readBody(t, resp); b != "final" {
			t.Errorf("body %q", b)
		}
		wantIdle(t, c, s.addr, 1)
	}
	if n := s.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// ---- 12. garbage -----------------------------------------------------------

func TestGarbageAnswer(t *testing.T) {
	var garbageFrom atomic.Int64 // the request count from which answers are garbage
	garbageFrom.Store(1)
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := s.readRequest(br); err != nil {
				return
			}
			if s.requests.Load() >= garbageFrom.Load() {
				io.WriteString(c, "SPLAT garbage\r\n\r\n")
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t)

	// On a fresh connection the server closes without answering: an error,
	// not a retry.
	closer := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		s.readRequest(br)
	})
	resp, err := c.Do(context.Background(), time.Time{}, http.MethodPost, closer.addr, "/", nil, []byte("x"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("no answer accepted")
	}
	if n, r := closer.accepts.Load(), closer.requests.Load(); n != 1 || r != 1 {
		t.Errorf("%d connections, %d requests; want 1, 1 (no retry)", n, r)
	}

	// Garbage on a fresh connection.
	resp, err = c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("x"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("garbage accepted")
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (no retry)", n)
	}
	wantIdle(t, c, s.addr, 0)

	// On a reused one.
	garbageFrom.Store(3)
	if _, b := call(t, c, s.addr, "x"); b != "ok" {
		t.Fatalf("body %q", b)
	}
	resp, err = c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("x"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("garbage accepted")
	}
	if n := s.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (no retry)", n)
	}
	if n := s.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// ---- 13. the pool's bound, Close, CloseIdle, idle timeout -------------------

func TestPoolBound(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := New(1, time.Minute, time.Second)
	defer c.Close()
	r1, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.Do(context.Background(), time.Time{}, http.MethodPost, s.addr, "/", nil, []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(t, r1); b != "one" {
		t.Errorf("body %q", b)
	}
	if b := readBody(t, r2); b != "two" {
		t.Errorf("body %q", b)
	}
	if n := c.Idle(s.addr); n != 1 {
		t.Fatalf("Idle %d, want 1", n)
	}
	s.waitClosed(t, 1) // the one over the bound

	c.Close()
	if n := c.Idle(s.addr); n != 0 {
		t.Fatalf("after Close: Idle %d, want 0", n)
	}
	s.waitClosed(t, 2)
	if _, b := call(t, c, s.addr, "after"); b != "after" {
		t.Errorf("body %q", b)
	}
	if n := c.Idle(s.addr); n != 0 {
		t.Errorf("after Close and a call: Idle %d, want 0", n)
	}
	s.waitClosed(t, 3)
}

func TestCloseIdle(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := newClient(t)
	call(t, c, s.addr, "a")
	c.CloseIdle()
	if n := c.Idle(s.addr); n != 0 {
		t.Fatalf("Idle %d, want 0", n)
	}
	s.waitClosed(t, 1)
	// Unlike Close, it keeps pooling.
	call(t, c, s.addr, "b")
	if n := c.Idle(s.addr); n != 1 {
		t.Fatalf("Idle %d, want 1", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	other := newHTTPServer(t, echo, nil)
	c := New(4, 40*time.Millisecond, time.Second)
	defer c.Close()
	call(t, c, s.addr, "a")
	call(t, c, other.addr, "a")
	if n := c.Idle(s.addr); n != 1 {
		t.Fatalf("Idle %d, want 1", n)
	}
	// The sweep closes them.
	waitFor(t, "the sweep", func() bool { return c.Idle(s.addr) == 0 && c.Idle(other.addr) == 0 })
	s.waitClosed(t, 1)
	other.waitClosed(t, 1)
	// And the pool keeps working, sweeping again.
	call(t, c, s.addr, "b")
	if n := c.Idle(s.addr); n != 1 {
		t.Fatalf("Idle %d, want 1", n)
	}
	waitFor(t, "the second sweep", func() bool { return c.Idle(s.addr) == 0 })
	s.waitClosed(t, 2)
	if n := s.ln.n.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// ---- 14. concurrency -------------------------------------------------------

func TestConcurrent(t *testing.T) {
	s := newHTTPServer(t, echo, nil)
	c := New(16, time.Minute, time.Second)
	defer c.Close()
	const goroutines, calls = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range calls {
				n := rng.IntN(256)
				if i%50 == 0 {
					n = inlineBody + rng.IntN(4096) // some written with writev
				}
				body := []byte(fmt.Sprintf("g%d-i%d-%s", g, i, strings.Repeat(string(rune('a'+g)), n)))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := c.Do(ctx, time.Time{}, http.MethodPost, s.addr, "/", []Field{{"X-Call", strconv.Itoa(i)}}, body)
				if err != nil {
					cancel()
					errs <- fmt.Errorf("g%d call %d: %w", g, i, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("g%d call %d: status %d, err %v, body of %d bytes differs", g, i, resp.StatusCode, err, len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.Idle(s.addr); n < 1 || n > 16 {
		t.Errorf("Idle %d, want 1..16", n)
	}
	if n := s.ln.n.Load(); n > 16 {
		t.Errorf("%d connections for 16 callers", n)
	}
	if n := s.requests.Load(); n != goroutines*calls {
		t.Errorf("%d requests, want %d", n, goroutines*calls)
	}
}

// readAllWithin reads body to its end, failing the test if that takes more
// than 3 s (after what, which should have ended it).
func readAllWithin(t *testing.T, body io.Reader, after string) error {
	t.Helper()
	readErr := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(body)
		readErr <- err
	}()
	select {
	case err := <-readErr:
		return err
	case <-time.After(3 * time.Second):
		t.Fatal("Read did not return after " + after)
		return nil
	}
}

// wantIdle checks that c keeps want idle connections to addr.
func wantIdle(t *testing.T, c *Client, addr string, want int) {
	t.Helper()
	if n := c.Idle(addr); n != want {
		t.Errorf("Idle %d, want %d", n, want)
	}
}
