package invoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/invoke/internal/upstream"
)

// send makes one HTTP call to a container, POST to path ("": its
// /invocations), to be answered by deadline (zero: ctx's): only the headers
// the API defines reach it. The caller closes the answer's body.
func (r *Router) send(ctx context.Context, deadline time.Time, c *Container, path string, body []byte, contentType, accept string, req *Request, targetModel string) (*http.Response, error) {
	if path == "" {
		path = "/invocations"
	}
	var fields [6]upstream.Field
	h := fields[:0]
	if contentType != "" {
		h = append(h, upstream.Field{Name: "Content-Type", Value: contentType})
	}
	if accept != "" {
		h = append(h, upstream.Field{Name: "Accept", Value: accept})
	}
	if req.CustomAttributes != "" {
		h = append(h, upstream.Field{Name: HeaderCustomAttributes, Value: req.CustomAttributes})
	}
	if req.InferenceID != "" {
		h = append(h, upstream.Field{Name: HeaderInferenceID, Value: req.InferenceID})
	}
	if targetModel != "" {
		h = append(h, upstream.Field{Name: HeaderTargetModel, Value: targetModel})
	}
	if req.SessionID != "" {
		h = append(h, upstream.Field{Name: HeaderSessionID, Value: req.SessionID})
	}
	return r.upstream.Do(ctx, deadline, http.MethodPost, c.Addr, path, h, body)
}

// relay turns a container's answer into the client's: a non-2xx status is
// a ModelError; a 2xx answer is relayed with its content type and custom
// attributes, never more than the payload limit.
func (r *Router) relay(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, in *Instance, c *Container, resp *http.Response, req *Request) (res outcome) {
	if req.stream {
		return r.relayStream(w, ctx, t, v, in, c, resp, req)
	}
	res.status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = r.modelError(t, c, resp)
		return res
	}
	wh := w.Header()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		wh["Content-Type"] = []string{ct}
	} else {
		wh["Content-Type"] = nil // no sniffing: the model said nothing
	}
	if ca, ok := resp.Header[HeaderCustomAttributes]; ok {
		wh[HeaderCustomAttributes] = ca
	}
	wh[HeaderInvokedVariant] = v.invoked
	r.noteSession(wh, t, v, in, resp, req)
	if resp.ContentLength >= 0 {
		if resp.ContentLength > req.maxAnswer() {
			res.err = r.oversizeError(t, c, resp.StatusCode, req.maxAnswer())
			return res
		}
		wh["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
		w.WriteHeader(http.StatusOK)
		var dst io.Writer = writerOnly{w}
		if req.captured != nil { // keep a copy of the answer for data capture
			req.captured.contentType = resp.Header.Get("Content-Type")
			req.captured.data = bytes.NewBuffer(make([]byte, 0, resp.ContentLength))
			dst = io.MultiWriter(dst, req.captured.data)
		}
		// Copy through a plain writer: letting the ResponseWriter's ReadFrom
		// write straight to the client connection made aws-sdk-go-v2
		// clients on loopback see "use of closed network connection"
		// mid-body now and then (seen in TestInvoke* with go1.26).
		buf := copyBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(dst, resp.Body, *buf)
		copyBufs.Put(buf)
		if err != nil {
			r.Logger.Warn("relaying model response failed", "endpoint", t.Key.Name, "instance", in.ID, "err", err)
			panic(http.ErrAbortHandler) // cut the response short so the client sees a broken body
		}
		return res
	}
	// Unknown length: buffer up to the limit to know whether it fits.
	buf := r.getBuf()
	defer r.putBuf(buf)
	if err := r.readAnswer(ctx, t, c, resp, buf, req.maxAnswer()); err != nil {
		res.err = err
		return res
	}
	wh["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	if req.captured != nil {
		req.captured.contentType = resp.Header.Get("Content-Type")
		req.captured.data = bytes.NewBuffer(bytes.Clone(buf.Bytes()))
	}
	return res
}

// readAnswer reads a container's answer into buf, refusing one over limit
// bytes.
func (r *Router) readAnswer(ctx context.Context, t *Table, c *Container, resp *http.Response, buf *bytes.Buffer, limit int64) error {
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return r.transportError(ctx, t, c, err)
	}
	if n > limit {
		return r.oversizeError(t, c, resp.StatusCode, limit)
	}
	return nil
}

// LogStreamARN returns the ARN of a log stream of an endpoint.
func LogStreamARN(key sagehost.EndpointKey, stream string) string {
	return key.LogGroupARN() + ":log-stream:" + stream
}

func logHint(t *Table, c *Container) string {
	return fmt.Sprintf("See the log stream %s of log group %s in account %s (sagehost logs %s) for more information.",
		c.LogStream, t.Key.LogGroup(), t.Key.Account, t.Key.Name)
}

func (r *Router) newModelError(t *Table, c *Container, status int, original, message, code string) *sagehost.Error {
	return &sagehost.Error{
		Code:               sagehost.CodeModelError,
		ErrorCode:          code,
		Message:            truncate(message, 2048),
		OriginalStatusCode: &status,
		OriginalMessage:    truncate(original, 2048),
		LogStreamArn:       LogStreamARN(t.Key, c.LogStream),
	}
}

// modelError turns a container's non-2xx answer into SageMaker's ModelError.
func (r *Router) modelError(t *Table, c *Container, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	kind, code := "client", "CLIENT_ERROR_FROM_MODEL"
	if resp.StatusCode >= 500 {
		kind, code = "server", "SERVER_ERROR_FROM_MODEL"
	}
	msg := fmt.Sprintf("Received %s error (%d) from %s with message %q. %s", kind, resp.StatusCode, c.Name, string(body), logHint(t, c))
	return r.newModelError(t, c, resp.StatusCode, string(body), msg, code)
}

func (r *Router) oversizeError(t *Table, c *Container, status int, limit int64) error {
	msg := fmt.Sprintf("Received server error (%d) from %s and could not load the entire response body: it is larger than %d bytes. %s",
		status, c.Name, limit, logHint(t, c))
	return r.newModelError(t, c, status, "", msg, "SERVER_ERROR_FROM_MODEL")
}

// transportError maps a failed exchange with a container to an error.
func (r *Router) transportError(ctx context.Context, t *Table, c *Container, err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return &dialError{err: err}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		msg := fmt.Sprintf("Received server error (0) from %s with message \"Your invocation timed out while waiting for a response from container %s. Review the latency metrics for each container, resolve the issue, and try again.\". %s",
			c.Name, c.Name, logHint(t, c))
		return r.newModelError(t, c, 0, "", msg, "")
	}
	if ctx.Err() != nil {
		return ctx.Err() // the client went away
	}
	msg := fmt.Sprintf("Received server error (0) from %s with message \"The connection to the container was lost before it answered: %s\". %s",
		c.Name, strings.TrimSpace(err.Error()), logHint(t, c))
	return r.newModelError(t, c, 0, "", msg, "")
}

// forwardPipeline runs an inference pipeline: the body goes through the
// containers in order, each answer (with its content type) the next
// request; the client's Accept goes to the last container, whose answer is
// relayed. A failing step is a ModelError naming its container.
func (r *Router) forwardPipeline(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, in *Instance, req *Request) outcome {
	ctx, cancel := context.WithTimeout(ctx, r.timeout(req))
	defer cancel()
	body, contentType := req.Body, req.ContentType
	buf := r.getBuf()
	defer r.putBuf(buf)
	next := r.getBuf()
	defer r.putBuf(next)
	last := len(in.Containers) - 1
	for i := range in.Containers {
		c := &in.Containers[i]
		accept := ""
		if i == last {
			accept = req.Accept
		}
		resp, err := r.send(ctx, time.Time{}, c, "", body, contentType, accept, req, "")
		if err != nil {
			err = r.transportError(ctx, t, c, err)
			if i > 0 {
				var dialErr *dialError
				if errors.As(err, &dialErr) { // mid-pipeline: nothing to retry
					err = r.newModelError(t, c, 0, "", fmt.Sprintf("Received server error (0) from %s: the container refused the connection. %s", c.Name, logHint(t, c)), "")
				}
			}
			return outcome{err: err}
		}
		if i == last {
			res := r.relay(w, ctx, t, v, in, c, resp, req)
			resp.Body.Close()
			return res
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			err := r.modelError(t, c, resp)
			resp.Body.Close()
			return outcome{status: resp.StatusCode, err: err}
		}
		next.Reset()
		err = r.readAnswer(ctx, t, c, resp, next, req.maxAnswer())
		contentType = resp.Header.Get("Content-Type")
		resp.Body.Close()
		if err != nil {
			return outcome{status: resp.StatusCode, err: err}
		}
		buf, next = next, buf
		body = buf.Bytes()
	}
	return outcome{}
}
