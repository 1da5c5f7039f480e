package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
)

func TestInvokeEndpointPassesBodyAndAPIHeaders(t *testing.T) {
	onEachHTTPServer(t, testInvokeEndpointPassesBodyAndAPIHeaders)
}

func testInvokeEndpointPassesBodyAndAPIHeaders(t *testing.T, withServer func(*serverConfig)) {
	srv := startServer(t, "", withServer)
	c := newClients(srv, keyA)
	deploy(t, c, "echo", modelEnv("echo-model"))

	out, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{
		EndpointName:     aws.String("echo"),
		Body:             []byte(`{"instances":[1,2,3]}`),
		ContentType:      aws.String("application/json"),
		Accept:           aws.String("application/json"),
		CustomAttributes: aws.String("trace-id=abc; c000-1"),
		InferenceId:      aws.String("inference-1"),
	})
	if r.Body != `{"instances":[1,2,3]}` || r.ContentType != "application/json" || r.Accept != "application/json" {
		t.Fatalf("the container got body %q, content type %q, accept %q", r.Body, r.ContentType, r.Accept)
	}
	if got := aws.ToString(out.CustomAttributes); got != "echo:trace-id=abc; c000-1" {
		t.Fatalf("custom attributes back: %q", got)
	}
	if aws.ToString(out.InvokedProductionVariant) != "AllTraffic" || aws.ToString(out.ContentType) != "application/json" {
		t.Fatalf("variant %q content type %q", aws.ToString(out.InvokedProductionVariant), aws.ToString(out.ContentType))
	}
	// Only the API's headers reach the container: no Authorization, no
	// X-Amz-*, no User-Agent, no SDK headers.
	for name := range r.Headers {
		switch strings.ToLower(name) {
		case "content-type", "accept", "content-length", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id":
		default:
			t.Errorf("the container received header %q, which the API does not define", name)
		}
	}
	// The platform variables arrived, sagehost's own environment did not.
	if r.Env["SAGEMAKER_BIND_TO_PORT"] == "" || r.Env["SAGEMAKER_SAFE_PORT_RANGE"] == "" {
		t.Fatalf("platform environment missing: %v", r.Env)
	}
	for _, n := range r.EnvNames {
		if strings.HasPrefix(n, "AWS_") || strings.HasPrefix(n, "SAGEHOST_") || n == "GOFLAGS" {
			t.Errorf("the model inherited %s from sagehost", n)
		}
	}

	// A container that sets no custom attributes returns none.
	out, _ = invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("echo"), Body: []byte("x"), ContentType: aws.String("text/plain")})
	if out.CustomAttributes != nil {
		t.Fatalf("custom attributes without any sent: %q", *out.CustomAttributes)
	}
}

func TestInvokeStripsHeadersOutsideTheAPI(t *testing.T) {
	onEachHTTPServer(t, testInvokeStripsHeadersOutsideTheAPI)
}

func testInvokeStripsHeadersOutsideTheAPI(t *testing.T, withServer func(*serverConfig)) {
	srv := startServer(t, "", withServer)
	c := newClients(srv, keyA)
	deploy(t, c, "strip", modelEnv("strip"))

	// A hand-signed request with headers the API does not define.
	body := []byte("1,2,3")
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/endpoints/strip/invocations", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("X-Custom-Thing", "leak")
	req.Header.Set("X-Amz-Meta-Secret", "leak")
	req.Header.Set("Cookie", "session=leak")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	signRequest(t, req, body, keyA, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var r report
	json.Unmarshal(b, &r)
	for name, v := range r.Headers {
		if strings.Contains(strings.Join(v, ","), "leak") || strings.EqualFold(name, "authorization") || strings.EqualFold(name, "x-forwarded-for") {
			t.Errorf("header %s: %v reached the container", name, v)
		}
	}
	if r.Body != "1,2,3" || r.ContentType != "text/csv" {
		t.Fatalf("body %q content type %q", r.Body, r.ContentType)
	}
}

// onEachHTTPServer runs test in parallel subtests, once on each HTTP server
// implementation (the default and the one --http-server net/http selects),
// withServer selecting it in the server's config.
func onEachHTTPServer(t *testing.T, test func(t *testing.T, withServer func(*serverConfig))) {
	t.Parallel()
	for _, hs := range []string{serverHTTPFast, serverHTTPNet} {
		t.Run(hs, func(t *testing.T) {
			t.Parallel()
			test(t, func(cfg *serverConfig) { cfg.HTTPServer = hs })
		})
	}
}

func signRequest(t *testing.T, req *http.Request, body []byte, a account, at time.Time) {
	t.Helper()
	cfg := awsConfig(a, "us-east-1")
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex(body), "sagemaker", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeErrors(t *testing.T) { onEachHTTPServer(t, testInvokeErrors) }

func testInvokeErrors(t *testing.T, withServer func(*serverConfig)) {
	srv := startServer(t, "", withServer, func(cfg *serverConfig) { cfg.ModelTimeout = 2 * time.Second })
	c := newClients(srv, keyA)
	deploy(t, c, "errs", modelEnv("errs"))
	ctx := ctxT(t)

	_, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("nope"), Body: []byte("x")})
	apiErr(t, err, "ValidationError", "Endpoint nope of account 111111111111 not found.")

	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("errs"), Body: []byte("x"), TargetVariant: aws.String("Other")})
	apiErr(t, err, "ValidationError", "Other")

	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("errs"), Body: []byte("x"), TargetModel: aws.String("m.tar.gz")})
	apiErr(t, err, "ValidationError", "is not a multi-model endpoint")

	// A container error is a ModelError with the original status and body
	// and the instance's log stream.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("errs"), ContentType: aws.String("application/json"),
		Body: []byte(`{"testmodel":{"status":503,"message":"model is sad"}}`),
	})
	var me *rttypes.ModelError
	if !errors.As(err, &me) {
		t.Fatalf("want ModelError, got %v", err)
	}
	if aws.ToInt32(me.OriginalStatusCode) != 503 || aws.ToString(me.OriginalMessage) != "model is sad" ||
		!strings.Contains(me.ErrorMessage(), "Received server error (503) from primary with message \"model is sad\"") ||
		!strings.Contains(aws.ToString(me.LogStreamArn), "arn:aws:logs:us-east-1:111111111111:log-group:/aws/sagemaker/Endpoints/errs:log-stream:AllTraffic/i-") {
		t.Fatalf("ModelError %+v: %s", me, me.ErrorMessage())
	}
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("errs"), ContentType: aws.String("application/json"),
		Body: []byte(`{"testmodel":{"status":400,"message":"bad row"}}`),
	})
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 400 || !strings.Contains(me.ErrorMessage(), "Received client error (400)") {
		t.Fatalf("want client ModelError, got %v", err)
	}

	// A container slower than the model timeout.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("errs"), ContentType: aws.String("application/json"),
		Body: []byte(`{"testmodel":{"sleep":"5s"}}`),
	})
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 0 || !strings.Contains(me.ErrorMessage(), "timed out while waiting for a response from container") {
		t.Fatalf("want timeout ModelError, got %v", err)
	}

	// Bodies over 6 MB are refused with 413.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("errs"), Body: make([]byte, 6291457)})
	ae := apiErr(t, err, "ValidationError", "6291456")
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() != 413 {
		t.Fatalf("oversize body status %d, want 413 (%v)", re.HTTPStatusCode(), ae)
	}
	// Past what the HTTP server reads at all (8 MiB): the same answer.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("errs"), Body: make([]byte, 9<<20)})
	ae = apiErr(t, err, "ValidationError", "6291456")
	if errors.As(err, &re) && re.HTTPStatusCode() != 413 {
		t.Fatalf("9 MiB body status %d, want 413 (%v)", re.HTTPStatusCode(), ae)
	}
	// Exactly 6 MiB passes.
	prefix, suffix := `{"testmodel":{"bytes":10},"pad":"`, `"}`
	full := prefix + strings.Repeat("a", 6291456-len(prefix)-len(suffix)) + suffix
	out, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("errs"), Body: []byte(full), ContentType: aws.String("application/json")})
	if err != nil || string(out.Body) != "xxxxxxxxxx" {
		t.Fatalf("6 MiB body: %v", err)
	}
	// A response over 6 MB is a ModelError, not a truncated answer.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("errs"), ContentType: aws.String("application/json"),
		Body: []byte(`{"testmodel":{"bytes":6291457}}`),
	})
	if !errors.As(err, &me) || !strings.Contains(me.ErrorMessage(), "could not load the entire response body") {
		t.Fatalf("want oversize-response ModelError, got %v", err)
	}
	// Custom attributes over 1024 characters are refused.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("errs"), Body: []byte("x"), CustomAttributes: aws.String(strings.Repeat("a", 1025))})
	apiErr(t, err, "ValidationError", "customAttributes")
	// A synchronous endpoint takes no asynchronous calls.
	_, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("errs"), InputLocation: aws.String("s3://b/k")})
	apiErr(t, err, "ValidationError", "is not an asynchronous endpoint")
}

func TestSlowEndpointDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	deploy(t, c, "slow", modelEnv("slow"))
	deploy(t, c, "fast", modelEnv("fast"))
	slowDone := make(chan error, 1)
	go func() {
		_, err := c.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String("slow"), ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"sleep":"4s"}}`),
		})
		slowDone <- err
	}()
	// While the slow call is in flight, the other endpoint answers.
	for i := 0; i < 5; i++ {
		if _, r := invokeName(t, c, "fast", nil); r.Name != "fast" {
			t.Fatalf("answered by %s", r.Name)
		}
		select {
		case err := <-slowDone:
			t.Fatalf("the slow call finished before the fast ones: %v", err)
		default:
		}
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("slow call: %v", err)
	}
}

// Long answers: relayed whole on both HTTP servers (fasthttp's from a
// pooled buffer of the announced length), and a model that dies halfway
// through one never gives a client a short answer that looks complete.
func TestInvokeLongAnswers(t *testing.T) {
	onEachHTTPServer(t, func(t *testing.T, withServer func(*serverConfig)) {
		srv := startServer(t, "", withServer)
		c := newClients(srv, keyA)
		deploy(t, c, "long", modelEnv("long"))
		for _, n := range []int{64<<10 + 1, 1 << 20, 6 << 20} {
			out, err := c.rt.InvokeEndpoint(ctxT(t), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("long"),
				ContentType: aws.String("application/json"), Body: []byte(fmt.Sprintf(`{"testmodel":{"bytes":%d}}`, n))})
			if err != nil {
				t.Fatalf("%d-byte answer: %v", n, err)
			}
			if len(out.Body) != n || strings.Trim(string(out.Body), "x") != "" {
				t.Fatalf("%d-byte answer: %d bytes", n, len(out.Body))
			}
		}
		// Without retries, so that the one broken answer is what the
		// client sees.
		rt := sagemakerruntime.NewFromConfig(awsConfig(keyA, "us-east-1"), func(o *sagemakerruntime.Options) {
			o.BaseEndpoint = aws.String(srv.URL())
			o.RetryMaxAttempts = 1
		})
		out, err := rt.InvokeEndpoint(ctxT(t), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("long"),
			ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"bytes":1048576,"crash_after":300000}}`)})
		if err == nil {
			t.Fatalf("a model dying mid-answer gave a successful %d-byte answer", len(out.Body))
		}
	})
}
