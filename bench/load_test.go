package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sagehost/sagehost/auth"
	"github.com/sagehost/sagehost/modelserver/echo"
)

// signedEcho is the echo model behind sagehost's own SigV4 verifier: it
// answers 403 to a request that is not signed right.
func signedEcho(t *testing.T, acct Account) *httptest.Server {
	t.Helper()
	keys, err := auth.NewKeyring(auth.Credential{AccessKeyID: acct.AccessKeyID, SecretAccessKey: acct.SecretAccessKey, Account: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Keys: keys}
	model := echo.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := v.Verify(r, body); err != nil {
			http.Error(w, "signature: "+err.Error(), http.StatusForbidden)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		model.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunLoadSignsAndVerifies(t *testing.T) {
	acct := NewAccount()
	srv := signedEcho(t, acct)
	var starts, ends atomic.Int32
	res, err := RunLoad(t.Context(), Target{Name: Direct, URL: srv.URL + "/invocations"}, Load{
		Concurrency: 4, Payload: MakePayload(3000), Warmup: 50 * time.Millisecond, Duration: 250 * time.Millisecond,
		Credentials: acct.Credentials(), Region: "eu-west-1",
		OnMeasureStart: func() { starts.Add(1) }, OnMeasureEnd: func() { ends.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorCount() != 0 {
		t.Fatalf("errors: %s %v", res.ErrorSummary(), res.ErrorSamples)
	}
	if res.Requests() == 0 || res.Throughput() <= 0 || res.Elapsed != 250*time.Millisecond {
		t.Fatalf("requests %d throughput %v elapsed %v", res.Requests(), res.Throughput(), res.Elapsed)
	}
	if res.Hist.Quantile(0.5) <= 0 || res.PayloadSize != 3000 || res.Concurrency != 4 {
		t.Fatalf("result %+v", res)
	}
	if starts.Load() != 1 || ends.Load() != 1 {
		t.Fatalf("hooks: %d starts, %d ends", starts.Load(), ends.Load())
	}

	// A wrong secret is refused by the verifier: every request is an error.
	bad := acct
	bad.SecretAccessKey = "wrong"
	res, err = RunLoad(t.Context(), Target{Name: Direct, URL: srv.URL + "/invocations"}, Load{
		Concurrency: 2, Payload: MakePayload(10), Duration: 50 * time.Millisecond, Credentials: bad.Credentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests() != 0 || res.Errors["status 403"] == 0 {
		t.Fatalf("badly signed requests: %d ok, errors %v", res.Requests(), res.Errors)
	}
}

func TestRunLoadCountsBadAnswers(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch n.Add(1) % 4 {
		case 0:
			http.Error(w, "model failed", http.StatusInternalServerError)
		case 1:
			w.Write(body[:len(body)-1]) // short
		case 2:
			body[len(body)/2] ^= 1 // corrupt
			w.Write(body)
		default:
			w.Write(body)
		}
	}))
	defer srv.Close()
	res, err := RunLoad(t.Context(), Target{Name: "x", URL: srv.URL}, Load{
		Concurrency: 3, Payload: MakePayload(100 << 10), Duration: 200 * time.Millisecond, Credentials: NewAccount().Credentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"status 500", "body length", "body content"} {
		if res.Errors[kind] == 0 {
			t.Errorf("no %q error counted: %v", kind, res.Errors)
		}
	}
	if res.Requests() == 0 {
		t.Error("the good answers were not measured")
	}
	if len(res.ErrorSamples) == 0 || len(res.ErrorSamples) > maxErrorSamples {
		t.Errorf("samples %v", res.ErrorSamples)
	}
	if s := res.ErrorSummary(); !strings.Contains(s, "status 500: ") {
		t.Errorf("summary %q", s)
	}

	// Nothing listening: transport errors, and the run still ends.
	srv.Close()
	res, err = RunLoad(t.Context(), Target{Name: "x", URL: srv.URL}, Load{
		Concurrency: 1, Payload: MakePayload(1), Duration: 30 * time.Millisecond, Credentials: NewAccount().Credentials(),
	})
	if err != nil || res.Errors["transport"] == 0 {
		t.Fatalf("dead target: %v %v", err, res.Errors)
	}
}

func TestRunLoadInterrupted(t *testing.T) {
	srv := httptest.NewServer(echo.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := RunLoad(ctx, Target{Name: Direct, URL: srv.URL + "/invocations"}, Load{
		Concurrency: 2, Payload: MakePayload(10), Duration: time.Hour, Credentials: NewAccount().Credentials(),
	})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("cancellation took too long")
	}
	if _, err := RunLoad(t.Context(), Target{}, Load{}); err == nil {
		t.Fatal("a load with no concurrency ran")
	}
}
