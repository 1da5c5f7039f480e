package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// createComponent creates a component running the test model as name,
// reserving cores and MiB per copy.
func createComponent(t *testing.T, c clients, endpoint, name string, cores float32, mem int32, accel float32, copies int32) {
	t.Helper()
	req := &smtypes.InferenceComponentComputeResourceRequirements{NumberOfCpuCoresRequired: aws.Float32(cores), MinMemoryRequiredInMb: aws.Int32(mem)}
	if accel > 0 {
		req.NumberOfAcceleratorDevicesRequired = aws.Float32(accel)
	}
	if _, err := c.sm.CreateInferenceComponent(ctxT(t), &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String(name), EndpointName: aws.String(endpoint), VariantName: aws.String("AllTraffic"),
		Specification: &smtypes.InferenceComponentSpecification{
			Container:                   &smtypes.InferenceComponentContainerSpecification{Image: aws.String(modelImage(t)), Environment: modelEnv(name)},
			ComputeResourceRequirements: req,
		},
		RuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(copies)},
	}); err != nil {
		t.Fatalf("CreateInferenceComponent %s: %v", name, err)
	}
}

func waitComponent(t *testing.T, c clients, name string, want smtypes.InferenceComponentStatus) *sagemaker.DescribeInferenceComponentOutput {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := c.sm.DescribeInferenceComponent(ctxT(t), &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeInferenceComponent %s: %v", name, err)
		}
		if d.InferenceComponentStatus == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("component %s is %s, want %s (reason %q)", name, d.InferenceComponentStatus, want, aws.ToString(d.FailureReason))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// copiesAnswering invokes a component until n distinct copies answered.
func copiesAnswering(t *testing.T, c clients, endpoint, component string, n int) map[int]string {
	t.Helper()
	pids := map[int]string{}
	for i := 0; i < 40*n && len(pids) < n; i++ {
		_, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(endpoint), InferenceComponentName: aws.String(component),
			Body: []byte("{}"), ContentType: aws.String("application/json")})
		pids[r.PID] = r.Name
	}
	return pids
}

func TestInferenceComponentsRunCopies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir)
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	// Two ml.m5.xlarge hosts: 4 cores and 16 GiB each.
	createComponentEndpointN(t, c, "ics", "ml.m5.xlarge", 2)
	waitInService(t, c, "ics")

	createComponent(t, c, "ics", "llm", 1, 1024, 0, 1)
	d := waitComponent(t, c, "llm", smtypes.InferenceComponentStatusInService)
	if aws.ToInt32(d.RuntimeConfig.CurrentCopyCount) != 1 || aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != 1 {
		t.Fatalf("copies: %+v", d.RuntimeConfig)
	}
	out, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"), InferenceComponentName: aws.String("llm"),
		Body: []byte("{}"), ContentType: aws.String("application/json")})
	if r.Name != "llm" || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Fatalf("answered by %s on %s", r.Name, aws.ToString(out.InvokedProductionVariant))
	}
	// A response stream and a session reach the component's copy too.
	in := streamInput("ics", `{"testmodel":{"stream_chunks":2}}`)
	in.InferenceComponentName = aws.String("llm")
	_, parts, err := streamParts(t, c, in)
	if err != nil || !strings.Contains(string(joinParts(parts)), `"name":"llm","chunk":1`) {
		t.Fatalf("stream from the component: %v, %q", err, joinParts(parts))
	}
	opened, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"), InferenceComponentName: aws.String("llm"),
		SessionId: aws.String("NEW_SESSION"), Body: []byte("{}"), ContentType: aws.String("application/json")})
	if err != nil || opened.NewSessionId == nil {
		t.Fatalf("session on the component: %v", err)
	}
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"), InferenceComponentName: aws.String("llm"),
		SessionId: aws.String(strings.Split(aws.ToString(opened.NewSessionId), ";")[0]), Body: []byte("{}"), ContentType: aws.String("application/json")})
	if err != nil {
		t.Fatalf("call in the component's session: %v", err)
	}
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "Inference Component Name header is required")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"), InferenceComponentName: aws.String("nope"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "nope")

	// Three copies, live.
	if _, err := c.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
		InferenceComponentName: aws.String("llm"), DesiredRuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(3)},
	}); err != nil {
		t.Fatal(err)
	}
	d = waitComponent(t, c, "llm", smtypes.InferenceComponentStatusInService)
	if aws.ToInt32(d.RuntimeConfig.CurrentCopyCount) != 3 {
		t.Fatalf("copies after scaling to 3: %+v", d.RuntimeConfig)
	}
	if pids := copiesAnswering(t, c, "ics", "llm", 3); len(pids) != 3 {
		t.Fatalf("copies answering: %v", pids)
	}

	// A component that cannot be placed: no host has 8 cores.
	createComponent(t, c, "ics", "huge", 8, 1024, 0, 1)
	d = waitComponent(t, c, "huge", smtypes.InferenceComponentStatusFailed)
	if !strings.Contains(aws.ToString(d.FailureReason), "Unable to place") {
		t.Fatalf("FailureReason %q", aws.ToString(d.FailureReason))
	}
	// Capacity left: 8 cores minus the 3 of llm's copies = 5 whole cores;
	// three 2-core copies do not fit, two do: scaling to 3 stops at 2.
	createComponent(t, c, "ics", "mid", 2, 1024, 0, 1)
	waitComponent(t, c, "mid", smtypes.InferenceComponentStatusInService)
	if _, err := c.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
		InferenceComponentName: aws.String("mid"), DesiredRuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(3)},
	}); err != nil {
		t.Fatal(err)
	}
	d = waitComponent(t, c, "mid", smtypes.InferenceComponentStatusInService)
	if aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != 2 || aws.ToInt32(d.RuntimeConfig.CurrentCopyCount) != 2 || !strings.Contains(aws.ToString(d.FailureReason), "Unable to place") {
		t.Fatalf("mid after a scale-up beyond capacity: %+v %q", d.RuntimeConfig, aws.ToString(d.FailureReason))
	}

	// A new specification rolls the copies over.
	if _, err := c.sm.UpdateInferenceComponent(ctx, &sagemaker.UpdateInferenceComponentInput{
		InferenceComponentName: aws.String("llm"),
		Specification: &smtypes.InferenceComponentSpecification{
			Container:                   &smtypes.InferenceComponentContainerSpecification{Image: aws.String(modelImage(t)), Environment: modelEnv("llm-v2")},
			ComputeResourceRequirements: &smtypes.InferenceComponentComputeResourceRequirements{NumberOfCpuCoresRequired: aws.Float32(1), MinMemoryRequiredInMb: aws.Int32(1024)},
		},
		DeploymentConfig: &smtypes.InferenceComponentDeploymentConfig{RollingUpdatePolicy: &smtypes.InferenceComponentRollingUpdatePolicy{
			MaximumBatchSize:      &smtypes.InferenceComponentCapacitySize{Type: smtypes.InferenceComponentCapacitySizeTypeCopyCount, Value: aws.Int32(1)},
			WaitIntervalInSeconds: aws.Int32(0),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	waitComponent(t, c, "llm", smtypes.InferenceComponentStatusInService)
	for pid, name := range copiesAnswering(t, c, "ics", "llm", 3) {
		if name != "llm-v2" {
			t.Fatalf("copy %d still runs %s after the update", pid, name)
		}
	}

	// To zero copies: invocations find no copy.
	if _, err := c.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
		InferenceComponentName: aws.String("mid"), DesiredRuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(0)},
	}); err != nil {
		t.Fatal(err)
	}
	if d := waitComponent(t, c, "mid", smtypes.InferenceComponentStatusInService); aws.ToInt32(d.RuntimeConfig.CurrentCopyCount) != 0 {
		t.Fatalf("mid at 0: %+v", d.RuntimeConfig)
	}
	eventually(t, "mid has no copy to answer", func() bool {
		_, err := c.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"), InferenceComponentName: aws.String("mid"), Body: []byte("{}")})
		return err != nil && strings.Contains(err.Error(), "no healthy copy")
	})

	// Components come back after a restart of sagehost.
	closeServer(t, srv)
	srv2 := startServer(t, dir)
	c2 := newClients(srv2, keyA)
	eventually(t, "llm's three copies answer after the restart", func() bool {
		pids := map[int]bool{}
		for i := 0; i < 60 && len(pids) < 3; i++ {
			out, err := c2.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ics"),
				InferenceComponentName: aws.String("llm"), Body: []byte("{}"), ContentType: aws.String("application/json")})
			var r report
			if err != nil || jsonUnmarshal(out.Body, &r) != nil || r.Name != "llm-v2" {
				return false
			}
			pids[r.PID] = true
		}
		return len(pids) == 3
	})

	// Deleting: components first, then the endpoint.
	_, err = c2.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ics")})
	apiErr(t, err, "ValidationException", "hosts inference components")
	for _, n := range []string{"llm", "huge", "mid"} {
		if _, err := c2.sm.DeleteInferenceComponent(ctx, &sagemaker.DeleteInferenceComponentInput{InferenceComponentName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "components deleted", func() bool {
		l, err := c2.sm.ListInferenceComponents(ctx, &sagemaker.ListInferenceComponentsInput{})
		return err == nil && len(l.InferenceComponents) == 0
	})
	if _, err := c2.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ics")}); err != nil {
		t.Fatal(err)
	}
}

func TestInferenceComponentGPUsAreExclusive(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.GPUs = "0,1,2,3" })
	c := newClients(srv, keyA)
	createComponentEndpointN(t, c, "gpus", "ml.g5.12xlarge", 1) // 4 GPUs
	waitInService(t, c, "gpus")
	createComponent(t, c, "gpus", "vision", 1, 1024, 1, 4)
	waitComponent(t, c, "vision", smtypes.InferenceComponentStatusInService)
	seen := map[string]bool{}
	for _, name := range copiesAnswering(t, c, "gpus", "vision", 4) {
		_ = name
	}
	for i := 0; i < 200 && len(seen) < 4; i++ {
		_, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("gpus"), InferenceComponentName: aws.String("vision"),
			Body: []byte("{}"), ContentType: aws.String("application/json")})
		if seen[r.Env["CUDA_VISIBLE_DEVICES"]] && len(seen) < 4 {
			continue
		}
		seen[r.Env["CUDA_VISIBLE_DEVICES"]] = true
	}
	if len(seen) != 4 || seen[""] {
		t.Fatalf("the 4 copies saw GPUs %v, want one each", seen)
	}
	createComponent(t, c, "gpus", "more", 1, 1024, 1, 1)
	d := waitComponent(t, c, "more", smtypes.InferenceComponentStatusFailed)
	if !strings.Contains(aws.ToString(d.FailureReason), "Unable to place") {
		t.Fatalf("FailureReason %q", aws.ToString(d.FailureReason))
	}
}

// createComponentEndpointN creates an endpoint whose one variant,
// AllTraffic, is count hosts of an instance type for components.
func createComponentEndpointN(t *testing.T, c clients, name, instanceType string, count int32) {
	t.Helper()
	if _, err := c.sm.CreateEndpointConfig(ctxT(t), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name), ExecutionRoleArn: aws.String("arn:aws:iam::111111111111:role/SageMakerRole"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), InstanceType: smtypes.ProductionVariantInstanceType(instanceType), InitialInstanceCount: aws.Int32(count)}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func TestInferenceComponentFailedUpdateRollsBack(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createComponentEndpointN(t, c, "rb", "ml.m5.xlarge", 1)
	waitInService(t, c, "rb")
	createComponent(t, c, "rb", "steady", 1, 512, 0, 2)
	waitComponent(t, c, "steady", smtypes.InferenceComponentStatusInService)
	if _, err := c.sm.UpdateInferenceComponent(ctx, &sagemaker.UpdateInferenceComponentInput{
		InferenceComponentName: aws.String("steady"),
		Specification: &smtypes.InferenceComponentSpecification{
			Container:                   &smtypes.InferenceComponentContainerSpecification{Image: aws.String(modelImage(t)), Environment: modelEnv("broken", "TESTMODEL_EXIT_AT_START", "9")},
			ComputeResourceRequirements: &smtypes.InferenceComponentComputeResourceRequirements{NumberOfCpuCoresRequired: aws.Float32(1), MinMemoryRequiredInMb: aws.Int32(512)},
		},
	}); err != nil {
		t.Fatal(err)
	}
	var d *sagemaker.DescribeInferenceComponentOutput
	eventually(t, "the update is rolled back", func() bool {
		var err error
		d, err = c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("steady")})
		return err == nil && d.InferenceComponentStatus == smtypes.InferenceComponentStatusInService && aws.ToString(d.FailureReason) != ""
	})
	if r := aws.ToString(d.FailureReason); !strings.Contains(r, "rolled back") || !strings.Contains(r, "exit code 9") {
		t.Fatalf("FailureReason %q", r)
	}
	for pid, name := range copiesAnswering(t, c, "rb", "steady", 2) {
		if name != "steady" {
			t.Fatalf("copy %d runs %s after the rollback", pid, name)
		}
	}
}
