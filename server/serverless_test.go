package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// A serverless variant (ServerlessConfig instead of an instance type and
// count) is served by one instance, and described with its config.
func TestServerlessEndpoint(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "sl", modelEnv("sl"))
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("sl"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("sl"),
			ServerlessConfig: &smtypes.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(2048), MaxConcurrency: aws.Int32(2)}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("sl"), EndpointConfigName: aws.String("sl")}); err != nil {
		t.Fatal(err)
	}
	d := waitInService(t, c, "sl")
	if sc := d.ProductionVariants[0].CurrentServerlessConfig; sc == nil || aws.ToInt32(sc.MaxConcurrency) != 2 || aws.ToInt32(sc.MemorySizeInMB) != 2048 {
		t.Fatalf("CurrentServerlessConfig %+v", sc)
	}
	_, r := invokeName(t, c, "sl", nil)
	if r.Name != "sl" {
		t.Fatalf("answered by %q", r.Name)
	}
}
