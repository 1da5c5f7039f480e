package server_test

import (
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// Stateful sessions through aws-sdk-go-v2: NEW_SESSION opens a session on
// the instance that answers it, every call with its id goes to that
// instance (of two) with the id in X-Amzn-SageMaker-Session-Id, and once
// the container closes it the id is refused.
func TestStatefulSessions(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "sess", modelEnv("sess"))
	createConfig(t, c, "sess", variantSpec{"AllTraffic", "sess", 2, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("sess"), EndpointConfigName: aws.String("sess")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "sess")

	call := func(session, body string) (*sagemakerruntime.InvokeEndpointOutput, report, error) {
		in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("sess"), ContentType: aws.String("application/json"), Body: []byte(body)}
		if session != "" {
			in.SessionId = aws.String(session)
		}
		out, err := c.rt.InvokeEndpoint(ctx, in)
		var r report
		if err == nil {
			if err := jsonUnmarshal(out.Body, &r); err != nil {
				t.Fatalf("answer %q: %v", out.Body, err)
			}
		}
		return out, r, err
	}
	out, opener, err := call("NEW_SESSION", `{"requestType":"NEW_SESSION"}`)
	if err != nil {
		t.Fatal(err)
	}
	newID := aws.ToString(out.NewSessionId)
	m := regexp.MustCompile(`^([0-9a-f]+); Expires=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).FindStringSubmatch(newID)
	if m == nil {
		t.Fatalf("NewSessionId %q", newID)
	}
	id := m[1]
	if got := opener.Headers["X-Amzn-Sagemaker-Session-Id"]; len(got) != 1 || got[0] != "NEW_SESSION" {
		t.Fatalf("the opening call reached the container with session header %v", got)
	}
	// Without a session, calls spread over both instances; with it, they
	// all reach the one that opened it.
	pids := map[int]bool{}
	for range 20 {
		_, r, err := call("", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		pids[r.PID] = true
	}
	if len(pids) != 2 {
		t.Fatalf("calls without a session reached %d instances, want 2", len(pids))
	}
	for range 20 {
		out, r, err := call(id, `{"n":1}`)
		if err != nil {
			t.Fatal(err)
		}
		if r.PID != opener.PID {
			t.Fatalf("a call in session %s reached instance pid %d, not the session's %d", id, r.PID, opener.PID)
		}
		if got := r.Headers["X-Amzn-Sagemaker-Session-Id"]; len(got) != 1 || got[0] != id {
			t.Fatalf("session header at the container: %v", got)
		}
		if out.NewSessionId != nil || out.ClosedSessionId != nil {
			t.Fatalf("a call in the session answered NewSessionId %v, ClosedSessionId %v", out.NewSessionId, out.ClosedSessionId)
		}
	}
	// Closing: the container's answer names the session, which is then
	// gone.
	out, r, err := call(id, `{"testmodel":{"close_session":true}}`)
	if err != nil || aws.ToString(out.ClosedSessionId) != id || r.PID != opener.PID {
		t.Fatalf("closing call: %v, ClosedSessionId %q, pid %d", err, aws.ToString(out.ClosedSessionId), r.PID)
	}
	_, _, err = call(id, `{}`)
	apiErr(t, err, "ValidationError", "Session "+id+" of endpoint sess of account 111111111111 does not exist")
	_, _, err = call("never-opened", `{}`)
	apiErr(t, err, "ValidationError", "does not exist")
	// A session id outside the API's pattern is refused before routing.
	_, _, err = call("bad_id", `{}`)
	apiErr(t, err, "ValidationError", "sessionId")
}
