package invoke

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/sagehost/sagehost"
)

// decodeStream reads the event stream messages of a response body.
func decodeStream(t *testing.T, body []byte) []eventstream.Message {
	t.Helper()
	dec := eventstream.NewDecoder()
	r := bytes.NewReader(body)
	var msgs []eventstream.Message
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatalf("message %d: %v", len(msgs), err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func header(m eventstream.Message, name string) string {
	if v := m.Headers.Get(name); v != nil {
		return v.String()
	}
	return ""
}

var streamKey = sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "ep"}

func streamRequest(body string) *Request {
	return &Request{Caller: sagehost.Caller{Account: streamKey.Account, Region: streamKey.Region}, EndpointName: streamKey.Name,
		Body: []byte(body), ContentType: "text/plain", Accept: "text/csv"}
}

// An inference pipeline streams its last container's answer; the steps
// before it are called as InvokeEndpoint calls them.
func TestStreamPipelineLastContainer(t *testing.T) {
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/x-step")
		w.Write(append([]byte("step1("), append(b, ')')...))
	}))
	defer first.Close()
	var lastGot, lastType, lastAccept string
	last := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastGot, lastType, lastAccept = string(b), r.Header.Get("Content-Type"), r.Header.Get("Accept")
		w.Header().Set("Content-Type", "text/csv")
		for _, part := range []string{"a,", "b,", "c"} {
			io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	}))
	defer last.Close()

	r := NewRouter(0, nil)
	defer r.Close()
	in := NewInstance("i-1", "v", strings.TrimPrefix(first.URL, "http://"))
	in.Containers = append(in.Containers, NewContainer("second", strings.TrimPrefix(last.URL, "http://"), "v/i-1/second"))
	in.SetHealthy(true)
	r.Publish(&Table{Key: streamKey, Status: sagehost.StatusInService, Variants: []*Variant{{Name: "v", Weight: 1, Mode: "Serial", Instances: []*Instance{in}}}})

	w := httptest.NewRecorder()
	if err := r.InvokeStream(w, httptest.NewRequest("POST", "/", nil), streamRequest("x")); err != nil {
		t.Fatal(err)
	}
	if lastGot != "step1(x)" || lastType != "application/x-step" || lastAccept != "text/csv" {
		t.Fatalf("the last container got %q (%s, accept %s)", lastGot, lastType, lastAccept)
	}
	if ct, sct := w.Header().Get("Content-Type"), w.Header().Get(HeaderStreamContentType); ct != ContentTypeEventStream || sct != "text/csv" {
		t.Fatalf("Content-Type %q, %s %q", ct, HeaderStreamContentType, sct)
	}
	var got []byte
	for _, m := range decodeStream(t, w.Body.Bytes()) {
		if header(m, ":message-type") != "event" || header(m, ":event-type") != "PayloadPart" {
			t.Fatalf("message %v", m.Headers)
		}
		got = append(got, m.Payload...)
	}
	if string(got) != "a,b,c" {
		t.Fatalf("payload %q", got)
	}
}

// A broken connection mid-answer ends the stream with a ModelStreamError
// event after the parts sent; a multi-model endpoint is refused before
// anything is written.
func TestStreamErrors(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "half")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes, 96 bytes short
	}))
	defer model.Close()
	r := NewRouter(0, nil)
	defer r.Close()
	in := NewInstance("i-1", "v", strings.TrimPrefix(model.URL, "http://"))
	in.SetHealthy(true)
	r.Publish(&Table{Key: streamKey, Status: sagehost.StatusInService, Variants: []*Variant{{Name: "v", Weight: 1, Instances: []*Instance{in}}}})
	w := httptest.NewRecorder()
	if err := r.InvokeStream(w, httptest.NewRequest("POST", "/", nil), streamRequest("x")); err != nil {
		t.Fatal(err)
	}
	msgs := decodeStream(t, w.Body.Bytes())
	if len(msgs) != 2 || string(msgs[0].Payload) != "half" {
		t.Fatalf("%d messages, first %q", len(msgs), msgs[0].Payload)
	}
	ex := msgs[1]
	if header(ex, ":message-type") != "exception" || header(ex, ":exception-type") != "ModelStreamError" ||
		!strings.Contains(string(ex.Payload), `"ErrorCode":"StreamBroken"`) {
		t.Fatalf("last message %v %s", ex.Headers, ex.Payload)
	}

	in.EnableMultiModel(nil)
	r.Publish(&Table{Key: streamKey, Status: sagehost.StatusInService, Variants: []*Variant{{Name: "v", Weight: 1, Instances: []*Instance{in}, MultiModel: &MultiModel{}}}})
	w = httptest.NewRecorder()
	err := r.InvokeStream(w, httptest.NewRequest("POST", "/", nil), streamRequest("x"))
	if sagehost.ErrorCode(err) != sagehost.CodeValidationError || !strings.Contains(err.Error(), "multi-model endpoint") || w.Body.Len() != 0 {
		t.Fatalf("multi-model stream: %v, %d bytes written", err, w.Body.Len())
	}
}
