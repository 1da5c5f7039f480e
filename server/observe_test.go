package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/sagehost/sagehost/server"
)

// signedGet sends a SigV4-signed GET (or an unsigned one when a is nil).
func signedGet(t *testing.T, url string, a *account) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(newSignedGet(t, url, a))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// newSignedGet returns a GET of url, SigV4-signed with a's key (unsigned
// for a nil a).
func newSignedGet(t *testing.T, url string, a *account) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if a != nil {
		empty := sha256.Sum256(nil)
		creds := aws.Credentials{AccessKeyID: a.ak, SecretAccessKey: a.sk}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(empty[:]), "sagemaker", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

// metricValue returns the value of the series whose name and labels match.
func metricValue(t *testing.T, text, name string, labels ...string) (float64, bool) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if ok {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("bad metric line %q", line)
			}
			return v, true
		}
	}
	return 0, false
}

// metric reads one series of srv's /metrics as account A sees it (0 when
// absent).
func metric(t *testing.T, srv *server.Server, name string, labels ...string) float64 {
	t.Helper()
	_, text := signedGet(t, srv.URL()+"/metrics", &keyA)
	v, _ := metricValue(t, text, name, labels...)
	return v
}

func TestMetricsCountInvocationsAndErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.ModelTimeout = 2 * time.Second })
	c := newClients(srv, keyA)
	deploy(t, c, "counted", modelEnv("counted"))
	ctx := ctxT(t)
	for i := 0; i < 5; i++ {
		invokeName(t, c, "counted", nil)
	}
	for _, knob := range []string{`{"status":500}`, `{"status":503}`, `{"status":404}`, `{"sleep":"4s"}`} {
		_, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("counted"),
			ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":` + knob + `}`)})
		apiErr(t, err, "ModelError")
	}
	l := []string{`account="111111111111"`, `endpoint="counted"`, `region="us-east-1"`, `variant="AllTraffic"`}
	st, text := signedGet(t, srv.URL()+"/metrics", &keyA)
	if st != 200 {
		t.Fatalf("/metrics: %d %s", st, text)
	}
	for name, want := range map[string]float64{
		"sagehost_invocations_total":              9,
		"sagehost_invocation_5xx_errors_total":    2,
		"sagehost_invocation_4xx_errors_total":    1,
		"sagehost_invocation_model_errors_total":  4,
		"sagehost_invocations_per_instance_total": 9,
		"sagehost_model_latency_seconds_count":    9,
		"sagehost_overhead_latency_seconds_count": 9,
		"sagehost_instance_healthy":               1,
		"sagehost_model_setup_time_seconds_count": 1,
	} {
		if got, ok := metricValue(t, text, name, l...); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", name, got, ok, want)
		}
	}
	// The timed-out call's model latency reached the 2 s timeout.
	if v, _ := metricValue(t, text, "sagehost_model_latency_seconds_bucket", append(l, `le="1.6384"`)...); v != 8 {
		t.Errorf("model latency: %v calls under 1.6 s, want 8", v)
	}
	// Another account sees none of these series; unsigned requests are refused.
	if _, text := signedGet(t, srv.URL()+"/metrics", &keyB); strings.Contains(text, "111111111111") {
		t.Errorf("account B sees account A's metrics")
	}
	if st, _ := signedGet(t, srv.URL()+"/metrics", nil); st != 403 {
		t.Errorf("unsigned /metrics: %d", st)
	}

	public := startServer(t, "", func(cfg *serverConfig) { cfg.PublicMetrics = true })
	if st, text := signedGet(t, public.URL()+"/metrics", nil); st != 200 || !strings.Contains(text, "go_goroutines") {
		t.Errorf("public /metrics: %d", st)
	}
}

func TestModelErrorLogStreamResolvesToTheContainerOutput(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	deploy(t, c, "logged", modelEnv("logged"))
	_, err := c.rt.InvokeEndpoint(ctxT(t), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("logged"),
		ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"status":500,"message":"kaput"}}`)})
	var me *rttypes.ModelError
	if !errors.As(err, &me) {
		t.Fatalf("want ModelError, got %v", err)
	}
	arn := aws.ToString(me.LogStreamArn)
	stream := arn[strings.Index(arn, ":log-stream:")+len(":log-stream:"):]
	if !strings.HasPrefix(stream, "AllTraffic/i-") {
		t.Fatalf("stream %q from %s", stream, arn)
	}
	st, text := signedGet(t, srv.URL()+"/logs/logged?stream="+stream, &keyA)
	if st != 200 || !strings.Contains(text, stream+" ") || !strings.Contains(text, "POST /invocations") || !strings.Contains(text, `"logged" listening`) {
		t.Fatalf("/logs: %d %q", st, text)
	}
	if st, text := signedGet(t, srv.URL()+"/logs/logged?tail=1", &keyA); st != 200 || strings.Count(text, "\n") != 1 {
		t.Fatalf("tail=1: %d %q", st, text)
	}
	// follow=true streams new lines as the container writes them, the
	// response still open.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(newSignedGet(t, srv.URL()+"/logs/logged?tail=0&follow=true", &keyA).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if _, err := c.rt.InvokeEndpoint(ctxT(t), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("logged"),
		ContentType: aws.String("application/json"), Body: []byte(`{"followed":true}`)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.After(15 * time.Second); ; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the followed log ended")
			}
			if !strings.Contains(line, "POST /invocations") {
				continue
			}
		case <-deadline:
			t.Fatal("no new line reached the follower")
		}
		break
	}
	cancel()
	if st, _ := signedGet(t, srv.URL()+"/logs/logged", &keyB); st != 400 {
		t.Fatalf("account B reads A's logs: %d", st)
	}
	if st, _ := signedGet(t, srv.URL()+"/logs/logged", nil); st != 403 {
		t.Fatalf("unsigned logs: %d", st)
	}
}
