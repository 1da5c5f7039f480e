package server_test

import (
	"context"
	"math"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

func invokeName(t *testing.T, c clients, endpoint string, in *sagemakerruntime.InvokeEndpointInput) (variant string, r report) {
	t.Helper()
	if in == nil {
		in = &sagemakerruntime.InvokeEndpointInput{}
	}
	in.EndpointName, in.Body, in.ContentType = aws.String(endpoint), []byte("{}"), aws.String("application/json")
	out, r := invokeJSON(t, c, in)
	return aws.ToString(out.InvokedProductionVariant), r
}

func TestVariantWeightsSplitTrafficAndTargetVariantOverrides(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	createModel(t, c, "ma", modelEnv("model-a"))
	createModel(t, c, "mb", modelEnv("model-b"))
	createConfig(t, c, "ab", variantSpec{"A", "ma", 1, 3}, variantSpec{"B", "mb", 2, 1})
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{EndpointName: aws.String("ab"), EndpointConfigName: aws.String("ab")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "ab")

	const n = 400
	counts := map[string]int{}
	pidsB := map[int]bool{}
	for i := 0; i < n; i++ {
		v, r := invokeName(t, c, "ab", nil)
		if (v == "A") != (r.Name == "model-a") {
			t.Fatalf("variant %s answered by %s", v, r.Name)
		}
		counts[v]++
		if v == "B" {
			pidsB[r.PID] = true
		}
	}
	// Weights 3:1: A's share is binomial(400, 0.75), sd 0.0217; allow 5 sd.
	share := float64(counts["A"]) / n
	if math.Abs(share-0.75) > 5*0.0217 {
		t.Fatalf("A got %.3f of the traffic, want 0.75 (counts %v)", share, counts)
	}
	if len(pidsB) != 2 {
		t.Fatalf("variant B's two instances did not both serve: %v", pidsB)
	}
	for i := 0; i < 20; i++ {
		if v, _ := invokeName(t, c, "ab", &sagemakerruntime.InvokeEndpointInput{TargetVariant: aws.String("B")}); v != "B" {
			t.Fatalf("TargetVariant B went to %s", v)
		}
	}
}

func TestBlueGreenUpdateAndRollback(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	deploy(t, c, "bg", modelEnv("blue"))
	createModel(t, c, "green", modelEnv("green", "TESTMODEL_PING_DELAY", "1s"))
	createConfig(t, c, "green-config", variantSpec{"AllTraffic", "green", 1, 1})

	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("bg"), EndpointConfigName: aws.String("green-config")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("bg")})
	if err != nil {
		t.Fatal(err)
	}
	if d.EndpointStatus == smtypes.EndpointStatusUpdating {
		// While the green fleet starts, blue answers, and Describe shows the
		// pending deployment.
		if _, r := invokeName(t, c, "bg", nil); r.Name != "blue" {
			t.Fatalf("during the update %s answered", r.Name)
		}
		if d.PendingDeploymentSummary == nil || aws.ToString(d.PendingDeploymentSummary.EndpointConfigName) != "green-config" {
			t.Fatalf("no pending deployment summary: %+v", d)
		}
		_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("bg"), EndpointConfigName: aws.String("green-config")})
		apiErr(t, err, "ValidationException", "Cannot update in-progress endpoint")
	}
	d = waitInService(t, c, "bg")
	if aws.ToString(d.EndpointConfigName) != "green-config" || d.PendingDeploymentSummary != nil {
		t.Fatalf("after the update: %+v", d)
	}
	for i := 0; i < 5; i++ {
		if _, r := invokeName(t, c, "bg", nil); r.Name != "green" {
			t.Fatalf("after the update %s answered", r.Name)
		}
	}

	// An update whose containers fail rolls back and says why.
	createModel(t, c, "broken", modelEnv("broken", "TESTMODEL_EXIT_AT_START", "7"))
	createConfig(t, c, "broken-config", variantSpec{"AllTraffic", "broken", 1, 1})
	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("bg"), EndpointConfigName: aws.String("broken-config")}); err != nil {
		t.Fatal(err)
	}
	var reason string
	eventually(t, "rollback", func() bool {
		d, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("bg")})
		if err != nil {
			t.Fatal(err)
		}
		reason = aws.ToString(d.FailureReason)
		return d.EndpointStatus == smtypes.EndpointStatusInService && reason != ""
	})
	if !strings.Contains(reason, "broken-config") || !strings.Contains(reason, "exit code 7") || !strings.Contains(reason, "failing at start as asked") {
		t.Fatalf("FailureReason %q", reason)
	}
	d, _ = c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("bg")})
	if aws.ToString(d.EndpointConfigName) != "green-config" {
		t.Fatalf("after rollback config %s", aws.ToString(d.EndpointConfigName))
	}
	if _, r := invokeName(t, c, "bg", nil); r.Name != "green" {
		t.Fatalf("after rollback %s answered", r.Name)
	}
}

func TestCreateFailureSaysWhy(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "bad", modelEnv("bad", "TESTMODEL_EXIT_AT_START", "3"))
	createConfig(t, c, "bad", variantSpec{"AllTraffic", "bad", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("bad"), EndpointConfigName: aws.String("bad")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(c.sm)
	d := waitStatus(t, c, "bad", smtypes.EndpointStatusFailed)
	reason := aws.ToString(d.FailureReason)
	if !strings.Contains(reason, `variant "AllTraffic"`) || !strings.Contains(reason, "exit code 3") || !strings.Contains(reason, "testmodel: failing at start as asked") {
		t.Fatalf("FailureReason %q", reason)
	}
	_ = w
	_, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("bad"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "Failed")
	_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("bad"), EndpointConfigName: aws.String("bad")})
	apiErr(t, err, "ValidationException", "Failed")

	// A missing executable fails the same way.
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("noexec"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("/no/such/model-server")}}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, "noexec", variantSpec{"AllTraffic", "noexec", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("noexec"), EndpointConfigName: aws.String("noexec")}); err != nil {
		t.Fatal(err)
	}
	d = waitStatus(t, c, "noexec", smtypes.EndpointStatusFailed)
	if !strings.Contains(aws.ToString(d.FailureReason), "/no/such/model-server") {
		t.Fatalf("FailureReason %q", aws.ToString(d.FailureReason))
	}
	if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("noexec")}); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateWeightsAndCapacities(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "m", modelEnv("m"))
	createConfig(t, c, "cfg", variantSpec{"A", "m", 1, 1}, variantSpec{"B", "m", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("wc"), EndpointConfigName: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "wc")
	_, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("wc"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("Z"), DesiredWeight: aws.Float32(1)}},
	})
	apiErr(t, err, "ValidationException", `"Z" is/are not present within endpoint configuration "cfg"`)

	if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("wc"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{
			{VariantName: aws.String("A"), DesiredWeight: aws.Float32(0), DesiredInstanceCount: aws.Int32(1)},
			{VariantName: aws.String("B"), DesiredWeight: aws.Float32(2), DesiredInstanceCount: aws.Int32(3)},
		},
	}); err != nil {
		t.Fatal(err)
	}
	d := waitInService(t, c, "wc")
	for _, v := range d.ProductionVariants {
		if aws.ToString(v.VariantName) == "B" && (aws.ToInt32(v.CurrentInstanceCount) != 3 || aws.ToFloat32(v.CurrentWeight) != 2) {
			t.Fatalf("B after update: %+v", v)
		}
		if aws.ToString(v.VariantName) == "A" && aws.ToFloat32(v.CurrentWeight) != 0 {
			t.Fatalf("A after update: %+v", v)
		}
	}
	pids := map[int]bool{}
	for i := 0; i < 60; i++ {
		v, r := invokeName(t, c, "wc", nil)
		if v != "B" {
			t.Fatalf("weight-0 variant A got traffic")
		}
		pids[r.PID] = true
	}
	if len(pids) != 3 {
		t.Fatalf("B's 3 instances did not all serve: %v", pids)
	}
	// Scale in.
	if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("wc"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("B"), DesiredInstanceCount: aws.Int32(1)}},
	}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "wc")
	eventually(t, "scale in to 1", func() bool {
		pids := map[int]bool{}
		for i := 0; i < 20; i++ {
			_, r := invokeName(t, c, "wc", nil)
			pids[r.PID] = true
		}
		return len(pids) == 1
	})
}

func TestKilledInstanceIsReplaced(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	deploy(t, c, "phoenix", modelEnv("phoenix"))
	_, r := invokeName(t, c, "phoenix", nil)
	if err := syscall.Kill(r.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after report
	eventually(t, "a new process answers", func() bool {
		out, err := c.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String("phoenix"), Body: []byte("{}"), ContentType: aws.String("application/json"),
		})
		if err != nil {
			return false
		}
		return jsonUnmarshal(out.Body, &after) == nil && after.PID != r.PID
	})
	d, _ := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String("phoenix")})
	if d.EndpointStatus != smtypes.EndpointStatusInService {
		t.Fatalf("status %s", d.EndpointStatus)
	}
	// A model that crashes while answering is a ModelError, then it is
	// restarted.
	_, err := c.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("phoenix"), Body: []byte(`{"testmodel":{"crash":true}}`), ContentType: aws.String("application/json"),
	})
	apiErr(t, err, "ModelError", "primary")
	eventually(t, "restarted after crash", func() bool {
		_, err := c.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("phoenix"), Body: []byte("{}"), ContentType: aws.String("application/json")})
		return err == nil
	})
}

func TestEndpointsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir)
	c := newClients(srv, keyA)
	deploy(t, c, "durable", modelEnv("durable"))
	createModel(t, c, "extra", modelEnv("extra"))
	closeServer(t, srv)

	srv2 := startServer(t, dir)
	c2 := newClients(srv2, keyA)
	if _, err := c2.sm.DescribeModel(ctxT(t), &sagemaker.DescribeModelInput{ModelName: aws.String("extra")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.sm.DescribeEndpointConfig(ctxT(t), &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("durable-config")}); err != nil {
		t.Fatal(err)
	}
	// The endpoint comes back up without any call.
	eventually(t, "endpoint answers after restart", func() bool {
		_, err := c2.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("durable"), Body: []byte("{}"), ContentType: aws.String("application/json")})
		return err == nil
	})
	if _, r := invokeName(t, c2, "durable", nil); r.Name != "durable" {
		t.Fatalf("answered by %s", r.Name)
	}
}
