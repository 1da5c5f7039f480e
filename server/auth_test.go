package server_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	ctx := ctxT(t)

	_, err := newClients(srv, account{ak: "AKIDUNKNOWN", sk: "x", id: "333333333333"}).sm.ListModels(ctx, &sagemaker.ListModelsInput{})
	apiErr(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	_, err = newClients(srv, account{ak: keyA.ak, sk: "wrong", id: keyA.id}).sm.ListModels(ctx, &sagemaker.ListModelsInput{})
	apiErr(t, err, "InvalidSignatureException", "The request signature we calculated does not match")
	_, err = newClients(srv, account{ak: keyA.ak, sk: "wrong", id: keyA.id}).rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("x"), Body: []byte("x")})
	apiErr(t, err, "InvalidSignatureException", "does not match")

	// Unsigned requests, on both protocols.
	for _, tc := range []struct{ path, target string }{{"/", "SageMaker.ListModels"}, {"/endpoints/x/invocations", ""}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+tc.path, strings.NewReader("{}"))
		if tc.target != "" {
			req.Header.Set("X-Amz-Target", tc.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), "MissingAuthenticationTokenException") || !bytes.Contains(b, []byte("Missing Authentication Token")) {
			t.Errorf("%s unsigned: %d %s %s", tc.path, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
		}
	}

	// Clock skew over 5 minutes, both ways.
	for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
		body := []byte("{}")
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		signRequest(t, req, body, keyA, time.Now().Add(skew))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !bytes.Contains(b, []byte("InvalidSignatureException")) || !bytes.Contains(b, []byte("Signature ")) {
			t.Errorf("skew %s: %d %s", skew, resp.StatusCode, b)
		}
		if resp.Header.Get("Date") == "" {
			t.Errorf("no Date header for clients to correct their clock")
		}
	}
	// A tampered body fails even with a valid signature of the original.
	body := []byte(`{"MaxResults": 1}`)
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
	signRequest(t, req, body, keyA, time.Now())
	req.Body = io.NopCloser(strings.NewReader(`{"MaxResults": 2}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
		t.Errorf("tampered body: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

func TestCredentialsFileReloadAddsAndRevokesKeys(t *testing.T) {
	t.Parallel()
	credFile := writeCredentials(t, keyA)
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.CredentialsFile = credFile })
	ctx := ctxT(t)
	cb := newClients(srv, keyB)
	if _, err := cb.sm.ListModels(ctx, &sagemaker.ListModelsInput{}); err == nil {
		t.Fatal("key B works before it is added")
	}
	rewrite := func(accts ...account) {
		tmp := writeCredentials(t, accts...)
		if err := os.Rename(tmp, credFile); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(keyA, keyB)
	eventually(t, "key B accepted", func() bool { _, err := cb.sm.ListModels(ctx, &sagemaker.ListModelsInput{}); return err == nil })
	rewrite(keyB)
	ca := newClients(srv, keyA)
	eventually(t, "key A revoked", func() bool {
		_, err := ca.sm.ListModels(ctx, &sagemaker.ListModelsInput{})
		return err != nil && strings.Contains(err.Error(), "UnrecognizedClientException")
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAccountIsolation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	a, b := newClients(srv, keyA), newClients(srv, keyB)
	ctx := ctxT(t)
	deploy(t, a, "shared-name", modelEnv("a-model"))

	// B sees nothing of A's.
	if l, err := b.sm.ListModels(ctx, &sagemaker.ListModelsInput{}); err != nil || len(l.Models) != 0 {
		t.Fatalf("B lists A's models: %+v %v", l, err)
	}
	if l, err := b.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{}); err != nil || len(l.Endpoints) != 0 {
		t.Fatalf("B lists A's endpoints: %+v %v", l, err)
	}
	_, err := b.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("shared-name")})
	apiErr(t, err, "ValidationException", "222222222222")
	_, err = b.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("shared-name")})
	apiErr(t, err, "ValidationException", "Could not find endpoint")
	_, err = b.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("shared-name"), EndpointConfigName: aws.String("shared-name-config")})
	apiErr(t, err, "ValidationException", "Could not find endpoint")
	_, err = b.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("shared-name"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "Endpoint shared-name of account 222222222222 not found.")
	_, err = b.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:111111111111:endpoint/shared-name")})
	apiErr(t, err, "ValidationException", "Could not find resource")
	_, err = b.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:111111111111:model/shared-name-model"), Tags: []smtypes.Tag{{Key: aws.String("x"), Value: aws.String("y")}}})
	apiErr(t, err, "ValidationException", "Could not find resource")

	// B can use the same names for its own resources.
	deploy(t, b, "shared-name", modelEnv("b-model"))
	_, ra := invokeJSON(t, a, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("shared-name"), Body: []byte("{}"), ContentType: aws.String("application/json")})
	_, rb := invokeJSON(t, b, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("shared-name"), Body: []byte("{}"), ContentType: aws.String("application/json")})
	if ra.Name != "a-model" || rb.Name != "b-model" {
		t.Fatalf("A reached %q, B reached %q", ra.Name, rb.Name)
	}
	// Regions are separate too.
	west := newClientsIn(srv, keyA, "us-west-2")
	_, err = west.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("shared-name"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "not found")
}
