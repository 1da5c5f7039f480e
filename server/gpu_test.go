package server_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

func TestGPUInstancesGetTheirOwnDevices(t *testing.T) {
	t.Parallel()
	// Two (pretend) GPUs: the process backend only passes their ids on.
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.GPUs = "0,1" })
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "g", modelEnv("g"))
	cfg := func(name string, typ smtypes.ProductionVariantInstanceType, count int32) {
		if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(name),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("g"),
				InitialInstanceCount: aws.Int32(count), InstanceType: typ}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg("two-g5", smtypes.ProductionVariantInstanceTypeMlG5Xlarge, 2)
	waitInService(t, c, "two-g5")
	devices := map[string]bool{}
	for i := 0; i < 40 && len(devices) < 2; i++ {
		_, r := invokeName(t, c, "two-g5", nil)
		devices[r.Env["CUDA_VISIBLE_DEVICES"]] = true
	}
	if !devices["0"] || !devices["1"] || len(devices) != 2 {
		t.Fatalf("the two instances saw CUDA_VISIBLE_DEVICES %v, want 0 and 1 once each", devices)
	}
	// No GPU is left for a third GPU instance: the endpoint fails and says why.
	cfg("no-room", smtypes.ProductionVariantInstanceTypeMlG4dnXlarge, 1)
	d := waitStatus(t, c, "no-room", smtypes.EndpointStatusFailed)
	if r := aws.ToString(d.FailureReason); !strings.Contains(r, "Unable to provision requested ML compute capacity") || !strings.Contains(r, "ml.g4dn.xlarge needs 1 GPUs and this host has 0 free of 2") {
		t.Fatalf("FailureReason %q", r)
	}
	// CPU instances see no GPU.
	cfg("cpu", smtypes.ProductionVariantInstanceTypeMlM5Large, 1)
	waitInService(t, c, "cpu")
	if _, r := invokeName(t, c, "cpu", nil); r.Env["CUDA_VISIBLE_DEVICES"] != "" {
		t.Fatalf("a CPU instance sees GPUs %q", r.Env["CUDA_VISIBLE_DEVICES"])
	}
	// Deleting the GPU endpoint frees its devices for the next one.
	if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("two-g5")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two-g5 deleted", func() bool {
		_, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("two-g5")})
		return err != nil
	})
	cfg("after", smtypes.ProductionVariantInstanceTypeMlG4dnXlarge, 1)
	waitInService(t, c, "after")
}
