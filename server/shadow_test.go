package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// A shadow variant runs its own instances and gets a copy of the production
// variant's requests (all of them at equal weights, about half at half the
// weight); its answers, here all failures, never reach the client and are
// counted in its own metrics.
func TestShadowVariant(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "prod", modelEnv("prod"))
	createModel(t, c, "shadow", modelEnv("shadow", "TESTMODEL_FAIL_STATUS", "503")) // every answer a 503
	variant := func(name, model string, weight float32) smtypes.ProductionVariant {
		return smtypes.ProductionVariant{VariantName: aws.String(name), ModelName: aws.String(model), InitialInstanceCount: aws.Int32(1),
			InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large, InitialVariantWeight: aws.Float32(weight)}
	}
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("shadowed"),
		ProductionVariants:       []smtypes.ProductionVariant{variant("Prod", "prod", 1)},
		ShadowProductionVariants: []smtypes.ProductionVariant{variant("Shadow", "shadow", 1)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("shadowed"), EndpointConfigName: aws.String("shadowed")}); err != nil {
		t.Fatal(err)
	}
	d := waitInService(t, c, "shadowed")
	if len(d.ProductionVariants) != 1 || aws.ToString(d.ProductionVariants[0].VariantName) != "Prod" ||
		len(d.ShadowProductionVariants) != 1 || aws.ToString(d.ShadowProductionVariants[0].VariantName) != "Shadow" ||
		aws.ToInt32(d.ShadowProductionVariants[0].CurrentInstanceCount) != 1 {
		t.Fatalf("described variants %+v, shadows %+v", d.ProductionVariants, d.ShadowProductionVariants)
	}
	for range 10 {
		variant, r := invokeName(t, c, "shadowed", nil)
		if variant != "Prod" || r.Name != "prod" {
			t.Fatalf("answered by %s (%s)", variant, r.Name)
		}
	}
	out, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("shadowed"),
		ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"message":"fine"}}`)})
	if err != nil || string(out.Body) != "fine" {
		t.Fatalf("%v %q", err, out.Body)
	}
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("shadowed"),
		TargetVariant: aws.String("Shadow"), ContentType: aws.String("application/json"), Body: []byte(`{}`)})
	apiErr(t, err, "ValidationError", "Shadow")

	count := func(variant string) float64 {
		return metric(t, srv, "sagehost_invocations_total", `endpoint="shadowed"`, `variant="`+variant+`"`)
	}
	eventually(t, "every call copied to the shadow", func() bool { return count("Shadow") == 11 })
	if n := count("Prod"); n != 11 {
		t.Fatalf("production variant counted %v calls, want 11", n)
	}
	// (An invocation is counted when it starts, its error when it ends.)
	eventually(t, "the shadow's 503s counted", func() bool {
		return metric(t, srv, "sagehost_invocation_5xx_errors_total", `endpoint="shadowed"`, `variant="Shadow"`) == 11
	})
	if n := metric(t, srv, "sagehost_invocation_5xx_errors_total", `endpoint="shadowed"`, `variant="Prod"`); n != 0 {
		t.Fatalf("production 5xx errors %v, want 0", n)
	}

	// At half the production weight, about half the calls are copied.
	if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("shadowed"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("Shadow"), DesiredWeight: aws.Float32(0.5)}}}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "shadowed")
	eventually(t, "the new weight applies", func() bool {
		d, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("shadowed")})
		return err == nil && aws.ToFloat32(d.ShadowProductionVariants[0].CurrentWeight) == 0.5
	})
	before := count("Shadow")
	for range 200 {
		invokeName(t, c, "shadowed", nil)
	}
	eventually(t, "the production calls counted", func() bool { return count("Prod") == 211 })
	var copied float64
	eventually(t, "the copies settle", func() bool {
		n := count("Shadow")
		settled := n == copied
		copied = n
		return settled
	})
	if got := copied - before; got < 60 || got > 140 {
		t.Fatalf("%v of 200 calls copied at half the weight, want about 100", got)
	}
}
