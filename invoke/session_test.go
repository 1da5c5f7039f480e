package invoke

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
)

// A session lives on its instance until it expires; an unhealthy instance
// makes its calls wait (503), a removed one ends it; a container answer
// that does not name a session well opens none.
func TestSessionLifetime(t *testing.T) {
	expires := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	answer := "s1; Expires=" + expires
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderSessionID) == NewSession {
			w.Header().Set(HeaderSessionID, answer)
		}
	}))
	defer model.Close()
	r := NewRouter(0, nil)
	defer r.Close()
	addr := strings.TrimPrefix(model.URL, "http://")
	a, b := NewInstance("a", "v", addr), NewInstance("b", "v", addr)
	a.SetHealthy(true)
	b.SetHealthy(true)
	publish := func(ins ...*Instance) {
		r.Publish(&Table{Key: streamKey, Status: sagehost.StatusInService, Variants: []*Variant{{Name: "v", Weight: 1, Instances: ins}}})
	}
	publish(a, b)
	call := func(session string) (http.Header, error) {
		req := streamRequest("x")
		req.SessionID = session
		w := httptest.NewRecorder()
		err := r.Invoke(w, httptest.NewRequest("POST", "/", nil), req)
		return w.Header(), err
	}
	h, err := call(NewSession)
	if err != nil || h.Get(HeaderNewSessionID) != answer {
		t.Fatalf("NEW_SESSION: %v, NewSessionId %q", err, h.Get(HeaderNewSessionID))
	}
	ss, _ := r.sessions.get(sessionKey{streamKey, "s1"}, time.Now())
	holder := map[string]*Instance{"a": a, "b": b}[ss.instance]
	if holder == nil {
		t.Fatalf("session on instance %q", ss.instance)
	}
	if _, err := call("s1"); err != nil {
		t.Fatal(err)
	}

	holder.SetHealthy(false)
	if _, err := call("s1"); sagehost.ErrorCode(err) != sagehost.CodeServiceUnavailable {
		t.Fatalf("session instance unhealthy: %v", err)
	}
	holder.SetHealthy(true)
	other := a
	if holder == a {
		other = b
	}
	publish(other) // the session's instance is gone
	if _, err := call("s1"); sagehost.ErrorCode(err) != sagehost.CodeValidationError || !strings.Contains(err.Error(), "the instance that held it is gone") {
		t.Fatalf("session instance gone: %v", err)
	}
	publish(a, b) // back: the session ended with it
	if _, err := call("s1"); sagehost.ErrorCode(err) != sagehost.CodeValidationError || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("ended session: %v", err)
	}

	// Expiry.
	answer = "s2; Expires=" + time.Now().Add(-time.Second).UTC().Format("2006-01-02T15:04:05Z")
	if h, err := call(NewSession); err != nil || h.Get(HeaderNewSessionID) != answer {
		t.Fatalf("NEW_SESSION: %v", err)
	}
	if _, err := call("s2"); sagehost.ErrorCode(err) != sagehost.CodeValidationError {
		t.Fatalf("expired session: %v", err)
	}
	// A malformed answer opens nothing.
	answer = "s3"
	if h, err := call(NewSession); err != nil || h.Get(HeaderNewSessionID) != "" {
		t.Fatalf("malformed session answer: %v, NewSessionId %q", err, h.Get(HeaderNewSessionID))
	}
	if _, err := call("s3"); sagehost.ErrorCode(err) != sagehost.CodeValidationError {
		t.Fatalf("session of a malformed answer: %v", err)
	}
}
