package invoke

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sagehost/sagehost"
)

// An answer that breaks off is an error for InvokeQueued, whose writer is
// no client connection to cut (relay panics for those).
func TestInvokeQueuedBrokenAnswer(t *testing.T) {
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
	r.Publish(&Table{Key: streamKey, Status: sagehost.StatusInService, Async: &sagehost.AsyncInferenceConfig{},
		Variants: []*Variant{{Name: "v", Weight: 1, Instances: []*Instance{in}}}})
	err := r.InvokeQueued(context.Background(), discard{http.Header{}}, streamRequest("x"))
	if !errors.Is(err, errAnswerBroken) {
		t.Fatalf("broken answer: %v", err)
	}
}
