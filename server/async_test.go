package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/internal/testutil/minio"
)

// InvokeEndpointAsync end to end, with aws-sdk-go-v2 and a real MinIO:
// inputs read from S3, answers and errors written where the response said,
// only asynchronous calls on an asynchronous endpoint, and a request cut
// short by a restart of sagehost run again after it.
func TestInvokeEndpointAsync(t *testing.T) {
	t.Parallel()
	m := minio.Start(t)
	s3c := m.S3Client(t)
	bg := context.Background()
	if _, err := s3c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("async")}); err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) string {
		t.Helper()
		if _, err := s3c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("async"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		return "s3://async/" + key
	}
	// get waits for an object to appear and returns it and its type.
	get := func(loc string) (string, string) {
		t.Helper()
		key := strings.TrimPrefix(loc, "s3://async/")
		var body, ctype string
		eventually(t, "object "+loc, func() bool {
			out, err := s3c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("async"), Key: aws.String(key)})
			if err != nil {
				return false
			}
			defer out.Body.Close()
			b, _ := io.ReadAll(out.Body)
			body, ctype = string(b), aws.ToString(out.ContentType)
			return true
		})
		return body, ctype
	}
	dir := t.TempDir()
	withS3 := func(cfg *serverConfig) {
		cfg.S3EndpointURL, cfg.S3Region, cfg.S3Credentials = m.Endpoint, m.Region, m.Credentials()
	}
	srv := startServer(t, dir, withS3)
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "asyncm", modelEnv("async-model"))
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("asyncc"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("asyncm"),
			InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
		AsyncInferenceConfig: &smtypes.AsyncInferenceConfig{
			OutputConfig: &smtypes.AsyncInferenceOutputConfig{S3OutputPath: aws.String("s3://async/out"), S3FailurePath: aws.String("s3://async/fail/")},
			ClientConfig: &smtypes.AsyncInferenceClientConfig{MaxConcurrentInvocationsPerInstance: aws.Int32(2)},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("asyncep"), EndpointConfigName: aws.String("asyncc")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "asyncep")

	// An answer goes to the output location the response named.
	out, err := c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"),
		InputLocation: aws.String(put("in/1.json", `{"hello":"async"}`)), ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
		CustomAttributes: aws.String("trace=7"), InferenceId: aws.String("inf-1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.InferenceId) != "inf-1" || aws.ToString(out.OutputLocation) != "s3://async/out/inf-1.out" ||
		aws.ToString(out.FailureLocation) != "s3://async/fail/inf-1-error.out" {
		t.Fatalf("InvokeEndpointAsync answered %q, %q, %q", aws.ToString(out.InferenceId), aws.ToString(out.OutputLocation), aws.ToString(out.FailureLocation))
	}
	body, ctype := get(aws.ToString(out.OutputLocation))
	var rep report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("output %q: %v", body, err)
	}
	if rep.Body != `{"hello":"async"}` || rep.ContentType != "application/json" || rep.Accept != "application/json" || ctype != "application/json" {
		t.Fatalf("the container got %q (%s, accept %s); output type %s", rep.Body, rep.ContentType, rep.Accept, ctype)
	}
	for name := range rep.Headers {
		switch strings.ToLower(name) {
		case "content-type", "accept", "content-length", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id":
		default:
			t.Errorf("the container received header %q, which the API does not define", name)
		}
	}

	// Without an inference id one is made; the extension and file name
	// place the output.
	out, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"),
		InputLocation: aws.String(put("in/2.json", `{"n":2}`)), ContentType: aws.String("application/json"),
		S3OutputPathExtension: aws.String("batch/7"), Filename: aws.String("result.json")})
	if err != nil {
		t.Fatal(err)
	}
	if len(aws.ToString(out.InferenceId)) != 36 || aws.ToString(out.OutputLocation) != "s3://async/out/batch/7/result.json" {
		t.Fatalf("generated id %q, output %q", aws.ToString(out.InferenceId), aws.ToString(out.OutputLocation))
	}
	if body, _ := get(aws.ToString(out.OutputLocation)); !strings.Contains(body, `"body":"{\"n\":2}"`) {
		t.Fatalf("output %q", body)
	}

	// A model error, and an input that is not there, go to the failure
	// location.
	out, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"),
		InputLocation: aws.String(put("in/3.json", `{"testmodel":{"status":500,"message":"async boom"}}`)), ContentType: aws.String("application/json"), InferenceId: aws.String("inf-3")})
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := get("s3://async/fail/inf-3-error.out"); !strings.Contains(body, `Received server error (500) from primary with message "async boom"`) {
		t.Fatalf("failure %q", body)
	}
	if _, err := c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"),
		InputLocation: aws.String("s3://async/in/missing.json"), InferenceId: aws.String("inf-4")}); err != nil {
		t.Fatal(err)
	}
	if body, _ := get("s3://async/fail/inf-4-error.out"); !strings.Contains(body, "Could not read the input s3://async/in/missing.json") {
		t.Fatalf("failure %q", body)
	}

	// Errors at the call: bad headers, unknown endpoints, synchronous calls
	// on the asynchronous endpoint.
	_, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"),
		InputLocation: aws.String("s3://async/in/1.json"), RequestTTLSeconds: aws.Int32(30)})
	apiErr(t, err, "ValidationError", "requestTTLSeconds")
	_, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("nope"), InputLocation: aws.String("s3://async/in/1.json")})
	apiErr(t, err, "ValidationError", "Endpoint nope of account 111111111111 not found.")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("asyncep"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "is an asynchronous endpoint")
	_, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"), InputLocation: aws.String("https://example.com/in.json")})
	apiErr(t, err, "ValidationError", "s3://")

	// (Counted once the result is written, just after it appears.)
	for name, want := range map[string]float64{
		"sagehost_async_invocations_processed_total":     2,
		"sagehost_async_invocation_failures_total":       1,
		"sagehost_async_request_download_failures_total": 1,
	} {
		eventually(t, name, func() bool { return metric(t, srv, name, `endpoint="asyncep"`) == want })
	}

	// A request still running when sagehost stops stays queued and runs
	// again once sagehost is back.
	if _, err := c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("asyncep"),
		InputLocation: aws.String(put("in/5.json", `{"testmodel":{"sleep":"2s"}}`)), ContentType: aws.String("application/json"), InferenceId: aws.String("inf-5")}); err != nil {
		t.Fatal(err)
	}
	closeServer(t, srv)
	if _, err := s3c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("async"), Key: aws.String("out/inf-5.out")}); err == nil {
		t.Fatal("the request finished before sagehost stopped: the test proves nothing")
	}
	srv2 := startServer(t, dir, withS3)
	if body, _ := get("s3://async/out/inf-5.out"); !strings.Contains(body, `"name":"async-model"`) {
		t.Fatalf("output after the restart %q", body)
	}
	_ = srv2

	// A synchronous endpoint takes no asynchronous calls.
	c2 := newClients(srv2, keyA)
	deploy(t, c2, "syncep", modelEnv("sync-model"))
	_, err = c2.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("syncep"), InputLocation: aws.String("s3://async/in/1.json")})
	var ae interface{ ErrorCode() string }
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "not an asynchronous endpoint") {
		t.Fatalf("async call on a synchronous endpoint: %v", err)
	}
}
