package server_test

import (
	"os"
	"os/exec"
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

// TestRealGPUAssignment runs where the host has an NVIDIA GPU: sagehost
// discovers the devices itself, an instance of a one-GPU type gets one of
// them, and CUDA (the driver's libcuda, through python3's ctypes) sees
// exactly that one device with the instance's environment, and none with a
// CPU instance's.
func TestRealGPUAssignment(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		t.Skip("no NVIDIA GPU on this host (/dev/nvidiactl is missing): the device assignment is checked on GPU machines")
	}
	srv := startServer(t, "") // GPUs discovered
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "real", modelEnv("real"))
	for name, typ := range map[string]smtypes.ProductionVariantInstanceType{"gpu": smtypes.ProductionVariantInstanceTypeMlG5Xlarge, "cpu": smtypes.ProductionVariantInstanceTypeMlM5Large} {
		if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(name),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("real"), InitialInstanceCount: aws.Int32(1), InstanceType: typ}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		waitInService(t, c, name)
	}
	_, g := invokeName(t, c, "gpu", nil)
	_, cpu := invokeName(t, c, "cpu", nil)
	if g.Env["CUDA_VISIBLE_DEVICES"] == "" || strings.Contains(g.Env["CUDA_VISIBLE_DEVICES"], ",") || cpu.Env["CUDA_VISIBLE_DEVICES"] != "" {
		t.Fatalf("CUDA_VISIBLE_DEVICES: gpu instance %q, cpu instance %q", g.Env["CUDA_VISIBLE_DEVICES"], cpu.Env["CUDA_VISIBLE_DEVICES"])
	}
	count := func(visible string) string {
		cmd := exec.Command("python3", "-c", `import ctypes
c = ctypes.CDLL("libcuda.so.1")
n = ctypes.c_int(0)
print(n.value if c.cuInit(0) != 0 else (c.cuDeviceGetCount(ctypes.byref(n)), n.value)[1])`)
		cmd.Env = append(os.Environ(), "CUDA_VISIBLE_DEVICES="+visible)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Skipf("cannot ask libcuda for the device count (python3 with ctypes and libcuda.so.1 needed): %v %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if n := count(g.Env["CUDA_VISIBLE_DEVICES"]); n != "1" {
		t.Fatalf("CUDA sees %s devices with the GPU instance's environment, want 1", n)
	}
	if n := count(cpu.Env["CUDA_VISIBLE_DEVICES"]); n != "0" {
		t.Fatalf("CUDA sees %s devices with the CPU instance's environment, want 0", n)
	}
}
