package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

// TestAWSXGBoostImageRunsOnTheBuiltInServer deploys a model exactly as a
// SageMaker Python SDK script would: AWS's XGBoost image URI and a
// model.tar.gz holding xgboost-model. It answers with XGBoost's own
// prediction.
func TestAWSXGBoostImageRunsOnTheBuiltInServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	archive := filepath.Join(t.TempDir(), "model.tar.gz")
	if err := os.WriteFile(archive, example.ModelTarGz, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("xgb"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image:        aws.String("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
		ModelDataUrl: aws.String("file://" + archive),
	}, ExecutionRoleArn: aws.String("arn:aws:iam::111111111111:role/SageMakerRole")}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, "xgb", variantSpec{"AllTraffic", "xgb", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("xgb"), EndpointConfigName: aws.String("xgb")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "xgb")
	want, _ := os.ReadFile("../modelserver/xgboost/example/expected.txt")
	out, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("xgb"),
		ContentType: aws.String("text/csv"), Body: []byte(example.SampleCSV)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out.Body)); got != strings.TrimSpace(string(want)) {
		t.Fatalf("prediction %q, want XGBoost's %q", got, strings.TrimSpace(string(want)))
	}
	// A row with the wrong number of features is the container's 400,
	// relayed as ModelError.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("xgb"),
		ContentType: aws.String("text/csv"), Body: []byte("1,2,3,4,5,6")})
	apiErr(t, err, "ModelError", "Received client error (400)", "Feature size")
}
