// Package upstream is the HTTP/1.1 client the invoke path calls model
// containers with. It is synchronous: the calling goroutine writes the
// request (one write, or one writev for large bodies) and reads the answer
// itself, from a pool of keep-alive connections per container address, so
// a call costs no goroutine hand-offs (net/http.Transport runs a read and
// a write goroutine per connection and passes every request and answer
// between them). Answers are parsed by net/http (http.ReadResponse).
//
// A connection is reused only after its answer was read to the end, so
// nothing of one call leaks into the next, and only if it is still open:
// before reuse a non-blocking peek (one recv syscall, on Linux) finds those
// the container closed while they were idle. A request whose write fails on
// a reused connection is sent again once on a new one; a request that was
// written is never sent twice (a container that dies while answering gets
// no second call).
package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Field is one request header.
type Field struct{ Name, Value string }

// Client calls HTTP/1.1 servers over pooled keep-alive connections. The
// zero value is not usable: use New.
type Client struct {
	dialer net.Dialer
	// maxIdle bounds the idle connections kept per address.
	maxIdle int
	// idleTimeout closes connections idle for longer.
	idleTimeout time.Duration

	mu       sync.Mutex
	idle     map[string][]*conn
	sweeping bool
	closed   bool
}

// New returns a client that keeps at most maxIdle idle connections per
// address, each for at most idleTimeout, and dials with dialTimeout.
func New(maxIdle int, idleTimeout, dialTimeout time.Duration) *Client {
	return &Client{
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:     maxIdle,
		idleTimeout: idleTimeout,
		idle:        map[string][]*conn{},
	}
}

// conn is one connection to a server.
type conn struct {
	net.Conn
	addr string
	br   *bufio.Reader
	peek *peeker   // nil where connections cannot be peeked at
	used time.Time // when it last went idle
}

// writeBufs holds request heads (and small bodies) while they are written.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// inlineBody is the largest body written in the same buffer as the head.
const inlineBody = 16 << 10

// Do sends a request to the server at addr (host:port) for uri (path and
// query, already escaped) and returns its answer, whose body the caller
// must close (after reading it to the end, for the connection to be
// reused). Content-Length is set from body when the method is POST or PUT
// or body is not empty. deadline (zero: ctx's deadline, if any) bounds the
// whole call, reading the body included: past it the error wraps
// context.DeadlineExceeded. Cancelling ctx ends the call too, with
// ctx.Err(). A failure to connect is a *net.OpError with Op "dial".
func (c *Client) Do(ctx context.Context, deadline time.Time, method, addr, uri string, header []Field, body []byte) (*http.Response, error) {
	if deadline.IsZero() {
		deadline, _ = ctx.Deadline()
	}
	for _, f := range header {
		if !validField(f) {
			return nil, fmt.Errorf("upstream: invalid header %q", f.Name)
		}
	}
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(ctx, deadline, addr)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, deadline, cn, method, uri, header, body)
		if err == nil {
			return resp, nil
		}
		cn.Close()
		var we *writeError
		if reused && attempt == 0 && errors.As(err, &we) && ctx.Err() == nil && closedByPeer(err) {
			continue // closed under us before the request went out: once more, on a new one
		}
		return nil, ctxError(ctx, deadline, err)
	}
}

// writeError is a failure to send a request.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write request: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// closedByPeer says whether a write failed because the other side had
// closed or reset the connection (as opposed to a timeout or a local
// failure).
func closedByPeer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// ctxError explains err by the call's end: its deadline passed or the
// caller gave up.
func ctxError(ctx context.Context, deadline time.Time, err error) error {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func (c *Client) roundTrip(ctx context.Context, deadline time.Time, cn *conn, method, uri string, header []Field, body []byte) (*http.Response, error) {
	if err := cn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	bp := writeBufs.Get().(*[]byte)
	b := append((*bp)[:0], method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, cn.addr...)
	b = append(b, "\r\n"...)
	if len(body) > 0 || method == http.MethodPost || method == http.MethodPut {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	for _, f := range header {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	// Cancelling ctx interrupts a write or a read in progress; such a
	// connection is never reused.
	stop := neverStopped
	if ctx.Done() != nil { // (a context that can end)
		stop = context.AfterFunc(ctx, func() { cn.SetDeadline(time.Unix(1, 0)) })
	}
	var err error
	if len(body) <= inlineBody {
		b = append(b, body...)
		_, err = cn.Write(b)
	} else {
		bufs := net.Buffers{b, body}
		_, err = bufs.WriteTo(cn.Conn)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		writeBufs.Put(bp)
	}
	if err != nil {
		stop()
		return nil, &writeError{err}
	}

	resp, err := readResponse(cn.br)
	if err != nil {
		stop()
		return nil, err
	}
	rb := &answerBody{rc: resp.Body, cn: cn, client: c, ctx: ctx, deadline: deadline, stop: stop, reusable: !resp.Close}
	if resp.Body == http.NoBody {
		rb.eof = true
	}
	resp.Body = rb
	return resp, nil
}

// neverStopped is the stop function of a call whose context cannot end.
func neverStopped() bool { return true }

// readResponse reads an answer, skipping informational (1xx) ones.
func readResponse(br *bufio.Reader) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

// answerBody is an answer's body: closed after being read to its end, it puts
// the connection back in the pool.
type answerBody struct {
	rc       io.ReadCloser
	cn       *conn
	client   *Client
	ctx      context.Context
	deadline time.Time
	stop     func() bool
	eof      bool
	reusable bool
	closed   bool
}

func (b *answerBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		err = ctxError(b.ctx, b.deadline, err)
	}
	return n, err
}

func (b *answerBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	interrupted := !b.stop()
	if b.eof && b.reusable && !interrupted && b.cn.br.Buffered() == 0 {
		b.client.put(b.cn)
	} else {
		b.cn.Close()
	}
	return nil
}

// get returns an idle connection to addr (reused true) or a new one.
func (c *Client) get(ctx context.Context, deadline time.Time, addr string) (*conn, bool, error) {
	c.mu.Lock()
	for list := c.idle[addr]; len(list) > 0; list = c.idle[addr] {
		cn := list[len(list)-1]
		list[len(list)-1] = nil
		c.idle[addr] = list[:len(list)-1]
		if time.Since(cn.used) > c.idleTimeout {
			cn.Close()
			continue
		}
		c.mu.Unlock()
		if !cn.peek.stillOpen() {
			cn.Close()
			c.mu.Lock()
			continue
		}
		return cn, true, nil
	}
	c.mu.Unlock()
	d := c.dialer
	if !deadline.IsZero() {
		d.Deadline = deadline
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	cn := &conn{Conn: nc, addr: addr}
	cn.br = bufio.NewReaderSize(nc, 32<<10)
	cn.peek = newPeeker(nc)
	return cn, false, nil
}

// put makes a connection idle, or closes it when the pool is full.
func (c *Client) put(cn *conn) {
	// An idle connection keeps no deadline: one of its last call's, passed
	// while it waited, would fail the peek (stillOpen) on its next use.
	cn.SetDeadline(time.Time{})
	cn.used = time.Now()
	c.mu.Lock()
	list := c.idle[cn.addr]
	if c.closed || len(list) >= c.maxIdle {
		c.mu.Unlock()
		cn.Close()
		return
	}
	c.idle[cn.addr] = append(list, cn)
	if !c.sweeping {
		c.sweeping = true
		time.AfterFunc(c.idleTimeout, c.sweep)
	}
	c.mu.Unlock()
}

// sweep closes connections idle for longer than the idle timeout (those
// to containers that are gone, mostly), and runs again while any remain.
func (c *Client) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, list := range c.idle {
		kept := list[:0]
		for _, cn := range list {
			if time.Since(cn.used) > c.idleTimeout {
				cn.Close()
			} else {
				kept = append(kept, cn)
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(c.idle, addr)
		} else {
			c.idle[addr] = kept
		}
	}
	if len(c.idle) > 0 && !c.closed {
		time.AfterFunc(c.idleTimeout, c.sweep)
	} else {
		c.sweeping = false
	}
}

// CloseIdle closes every idle connection.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, list := range c.idle {
		for _, cn := range list {
			cn.Close()
		}
		delete(c.idle, addr)
	}
}

// Close closes every idle connection and keeps none from now on.
func (c *Client) Close() {
	c.CloseIdle()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// Idle returns the number of idle connections to addr.
func (c *Client) Idle(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle[addr])
}

// validField refuses header names and values that would break the
// request's framing.
func validField(f Field) bool {
	if f.Name == "" {
		return false
	}
	for i := 0; i < len(f.Name); i++ {
		if c := f.Name[i]; c <= ' ' || c == ':' || c >= 0x7f {
			return false
		}
	}
	for i := 0; i < len(f.Value); i++ {
		if c := f.Value[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}
