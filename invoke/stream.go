package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/smithy-go/eventstream"

	"github.com/sagehost/sagehost"
)

// Response streaming (InvokeEndpointWithResponseStream).
const (
	// ContentTypeEventStream is the content type of a response stream.
	ContentTypeEventStream = "application/vnd.amazon.eventstream"
	// HeaderStreamAccept is InvokeEndpointWithResponseStream's Accept.
	HeaderStreamAccept = "X-Amzn-Sagemaker-Accept"
	// HeaderStreamContentType carries the container's content type on a
	// response stream (whose own Content-Type is the event stream's).
	HeaderStreamContentType = "X-Amzn-Sagemaker-Content-Type"

	// Error codes of a ModelStreamError event.
	StreamErrorTimeout = "ModelInvocationTimeExceeded"
	StreamErrorBroken  = "StreamBroken"
)

// InvokeStream serves one InvokeEndpointWithResponseStream call. It is
// routed as Invoke routes, and an error before the container starts its
// answer is returned the same way (nothing written: a ModelError for a
// non-2xx status, say). A 2xx answer is relayed as an event stream: a
// PayloadPart event for each piece read from the container as it arrives,
// so that a container writing its answer in chunks (Transfer-Encoding:
// chunked) reaches the client chunk by chunk. The whole stream must end
// within the model timeout; a container that does not finish in time, or
// whose connection breaks, ends the stream with a ModelStreamError event
// (ModelInvocationTimeExceeded or StreamBroken) after the parts already
// sent. Multi-model endpoints cannot be invoked this way (the operation has
// no TargetModel), and an explainer variant's model answers without an
// explanation (nor EnableExplanations).
func (r *Router) InvokeStream(w http.ResponseWriter, httpReq *http.Request, req *Request) error {
	req.stream = true
	return r.Invoke(w, httpReq, req)
}

// relayStream is relay for a response stream.
func (r *Router) relayStream(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, in *Instance, c *Container, resp *http.Response, req *Request) (res outcome) {
	res.status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = r.modelError(t, c, resp)
		return res
	}
	ct := resp.Header.Get("Content-Type")
	wh := w.Header()
	wh["Content-Type"] = []string{ContentTypeEventStream}
	if ct != "" {
		wh[HeaderStreamContentType] = []string{ct}
	}
	if ca, ok := resp.Header[HeaderCustomAttributes]; ok {
		wh[HeaderCustomAttributes] = ca
	}
	wh[HeaderInvokedVariant] = v.invoked
	r.noteSession(nil, t, v, in, resp, req) // (a stream's answer has no session headers)
	w.WriteHeader(http.StatusOK)
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	flush()

	var captured *bytes.Buffer // a copy of the answer for data capture, while it fits
	if req.captured != nil {
		captured = new(bytes.Buffer)
	}
	enc := eventstream.NewEncoder()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for {
		n, err := resp.Body.Read(*bp)
		if n > 0 {
			if werr := enc.Encode(w, payloadPart((*bp)[:n])); werr != nil {
				// The client went away: stop reading; closing the
				// unfinished answer closes the container connection.
				r.Logger.Info("response stream client went away", "endpoint", t.Key.Name, "instance", in.ID, "err", werr)
				return res
			}
			flush()
			if captured != nil {
				if captured.Len()+n > MaxPayloadBytes {
					captured = nil // too long to capture
				} else {
					captured.Write((*bp)[:n])
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
				return res // the client went away
			}
			code, msg := StreamErrorBroken, fmt.Sprintf("The connection to container %s was closed or reset before it finished sending the inference response. %s", c.Name, logHint(t, c))
			if errors.Is(err, context.DeadlineExceeded) {
				code, msg = StreamErrorTimeout, fmt.Sprintf("Your model %s did not complete sending the inference response in the allotted time. %s", c.Name, logHint(t, c))
			}
			r.Logger.Warn("response stream broken", "endpoint", t.Key.Name, "instance", in.ID, "code", code, "err", err)
			res.midStream = true
			if werr := enc.Encode(w, streamError(code, msg)); werr == nil {
				flush()
			}
			return res
		}
	}
	if captured != nil {
		req.captured.contentType = ct
		req.captured.data = captured
	}
	return res
}

// payloadPart is the PayloadPart event carrying p.
func payloadPart(p []byte) eventstream.Message {
	return message(eventstream.EventMessageType, eventstream.EventTypeHeader, "PayloadPart", "application/octet-stream", p)
}

// streamError is the ModelStreamError exception event.
func streamError(code, msg string) eventstream.Message {
	payload, _ := json.Marshal(struct {
		Message   string `json:"Message"`
		ErrorCode string `json:"ErrorCode"`
	}{msg, code})
	return message(eventstream.ExceptionMessageType, eventstream.ExceptionTypeHeader, "ModelStreamError", "application/json", payload)
}

// message is an event stream message of a type (event or exception) whose
// kind header (:event-type or :exception-type) says kind.
func message(typ, kindHeader, kind, contentType string, payload []byte) eventstream.Message {
	return eventstream.Message{
		Headers: eventstream.Headers{
			{Name: eventstream.MessageTypeHeader, Value: eventstream.StringValue(typ)},
			{Name: kindHeader, Value: eventstream.StringValue(kind)},
			{Name: eventstream.ContentTypeHeader, Value: eventstream.StringValue(contentType)},
		},
		Payload: payload,
	}
}

// errStreamMultiModel refuses a response stream from a multi-model variant.
func errStreamMultiModel(req *Request) error {
	return sagehost.Errorf(sagehost.CodeValidationError,
		"Endpoint %s of account %s is a multi-model endpoint: InvokeEndpointWithResponseStream cannot name a target model. Use InvokeEndpoint with TargetModel.", req.EndpointName, req.Caller.Account)
}
