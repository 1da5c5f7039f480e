package server_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
)

func createMultiContainer(t *testing.T, c clients, name string, mode smtypes.InferenceExecutionMode, hostnames ...string) {
	t.Helper()
	in := &sagemaker.CreateModelInput{ModelName: aws.String(name), InferenceExecutionConfig: &smtypes.InferenceExecutionConfig{Mode: mode}}
	for _, h := range hostnames {
		in.Containers = append(in.Containers, smtypes.ContainerDefinition{
			ContainerHostname: aws.String(h), Image: aws.String(modelImage(t)), Environment: modelEnv(h),
		})
	}
	if _, err := c.sm.CreateModel(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, name, variantSpec{"AllTraffic", name, 1, 1})
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, name)
}

func TestDirectMultiContainerEndpoint(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createMultiContainer(t, c, "direct", smtypes.InferenceExecutionModeDirect, "alpha", "beta", "gamma")
	ports := map[string]bool{}
	for _, h := range []string{"alpha", "beta", "gamma"} {
		_, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("direct"), TargetContainerHostname: aws.String(h),
			Body: []byte("{}"), ContentType: aws.String("application/json")})
		if r.Name != h {
			t.Fatalf("TargetContainerHostname %s answered by %s", h, r.Name)
		}
		ports[r.Env["SAGEMAKER_BIND_TO_PORT"]] = true
	}
	if len(ports) != 3 {
		t.Fatalf("containers share ports: %v", ports)
	}
	_, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("direct"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "TargetContainerHostname")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("direct"), Body: []byte("{}"), TargetContainerHostname: aws.String("delta")})
	apiErr(t, err, "ValidationError", "no container with the hostname delta")
	// A container's error names it, and its log stream is its own.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("direct"), TargetContainerHostname: aws.String("beta"),
		ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"status":500,"message":"beta broke"}}`)})
	var me *rttypes.ModelError
	if !errors.As(err, &me) || !strings.Contains(me.ErrorMessage(), "from beta") || !strings.HasSuffix(aws.ToString(me.LogStreamArn), "/beta") {
		t.Fatalf("ModelError %v (stream %s)", err, aws.ToString(me.LogStreamArn))
	}
	arn := aws.ToString(me.LogStreamArn)
	stream := arn[strings.Index(arn, ":log-stream:")+len(":log-stream:"):]
	if st, text := signedGet(t, srv.URL()+"/logs/direct?stream="+stream, &keyA); st != 200 || !strings.Contains(text, `"beta" listening`) {
		t.Fatalf("log of beta: %d %q", st, text)
	}
}

func TestSerialInferencePipeline(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createMultiContainer(t, c, "pipe", smtypes.InferenceExecutionModeSerial, "first", "second", "third")
	out, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("pipe"),
		Body: []byte("1,2,3"), ContentType: aws.String("text/csv"), Accept: aws.String("application/json")})
	// Each step's answer was the next step's request, in order.
	if r.Name != "third" || r.Accept != "application/json" || r.ContentType != "application/json" {
		t.Fatalf("last step: %+v", r)
	}
	var second, first report
	if err := json.Unmarshal([]byte(r.Body), &second); err != nil || second.Name != "second" || second.Accept != "" {
		t.Fatalf("second step: %v %+v", err, second)
	}
	if err := json.Unmarshal([]byte(second.Body), &first); err != nil || first.Name != "first" || first.Body != "1,2,3" || first.ContentType != "text/csv" {
		t.Fatalf("first step: %v %+v", err, first)
	}
	if aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Fatalf("variant %q", aws.ToString(out.InvokedProductionVariant))
	}
	_, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("pipe"), Body: []byte("{}"), TargetContainerHostname: aws.String("first")})
	apiErr(t, err, "ValidationError", "TargetContainerHostname")
	// The first step passes on a request that makes the second one fail:
	// the ModelError names the second container.
	step2 := `{"testmodel":{"status":502,"message":"step two failed"}}`
	knob, _ := json.Marshal(map[string]any{"testmodel": map[string]any{"message": step2, "content_type": "application/json"}})
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("pipe"), Body: knob, ContentType: aws.String("application/json")})
	var me *rttypes.ModelError
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 502 || !strings.Contains(me.ErrorMessage(), "from second") ||
		aws.ToString(me.OriginalMessage) != "step two failed" || !strings.HasSuffix(aws.ToString(me.LogStreamArn), "/second") {
		t.Fatalf("want the second step's ModelError, got %v", err)
	}
}
