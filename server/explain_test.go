package server_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

type clarifyResponse struct {
	Version     string `json:"version"`
	Predictions struct {
		ContentType string `json:"content_type"`
		Data        string `json:"data"`
	} `json:"predictions"`
	Explanations struct {
		KernelShap [][]struct {
			FeatureHeader string `json:"feature_header"`
			Attributions  []struct {
				Attribution []float64 `json:"attribution"`
			} `json:"attributions"`
		} `json:"kernel_shap"`
	} `json:"explanations"`
}

// TestOnlineExplanations: an XGBoost regression behind an explainer.
// Attributions satisfy SHAP's efficiency: per record they sum to the
// record's prediction minus the baseline's.
func TestOnlineExplanations(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	archive := filepath.Join(t.TempDir(), "model.tar.gz")
	os.WriteFile(archive, example.ModelTarGz, 0o644)
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("houses"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image: aws.String("sagehost/xgboost"), ModelDataUrl: aws.String("file://" + archive)}}); err != nil {
		t.Fatal(err)
	}
	const baseline = "100,2,30,10"
	explainer := func(name, enable string) {
		if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String(name),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("houses"), InitialInstanceCount: aws.Int32(2), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
			ExplainerConfig: &smtypes.ExplainerConfig{ClarifyExplainerConfig: &smtypes.ClarifyExplainerConfig{
				EnableExplanations: aws.String(enable),
				InferenceConfig:    &smtypes.ClarifyInferenceConfig{FeatureHeaders: []string{"area", "bedrooms", "age", "distance"}},
				ShapConfig: &smtypes.ClarifyShapConfig{
					ShapBaselineConfig: &smtypes.ClarifyShapBaselineConfig{MimeType: aws.String("text/csv"), ShapBaseline: aws.String(baseline)},
					NumberOfSamples:    aws.Int32(14), Seed: aws.Int32(7),
				},
			}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	explainer("explain", "[0]>`300`")
	explainer("badexpr", "[0]>>1")
	_, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("bad"), EndpointConfigName: aws.String("badexpr")})
	apiErr(t, err, "ValidationException", "EnableExplanations", "JMESPath")

	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("explained"), EndpointConfigName: aws.String("explain")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "explained")
	invoke := func(body, enable string) (clarifyResponse, []float64) {
		t.Helper()
		in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("explained"), Body: []byte(body), ContentType: aws.String("text/csv"), Accept: aws.String("text/csv")}
		if enable != "" {
			in.EnableExplanations = aws.String(enable)
		}
		out, err := c.rt.InvokeEndpoint(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ContentType) != "application/json" {
			t.Fatalf("content type %q", aws.ToString(out.ContentType))
		}
		var r clarifyResponse
		if err := json.Unmarshal(out.Body, &r); err != nil {
			t.Fatalf("%s: %v", out.Body, err)
		}
		var preds []float64
		for _, f := range strings.Fields(strings.ReplaceAll(r.Predictions.Data, ",", " ")) {
			v, _ := strconv.ParseFloat(f, 64)
			preds = append(preds, v)
		}
		return r, preds
	}
	// The baseline's own prediction, from an explanation-free call.
	_, base := invoke(baseline, "`false`")
	rows := example.SampleCSV + "40,1,80,25\n"
	r, preds := invoke(rows, "")
	if r.Version != "1.0" || len(preds) != 2 || len(r.Explanations.KernelShap) != 2 {
		t.Fatalf("response %+v", r)
	}
	for i, p := range preds {
		exp := r.Explanations.KernelShap[i]
		if (p > 300) != (exp != nil) {
			t.Fatalf("record %d (prediction %v) explained=%v, want by [0]>`300`", i, p, exp != nil)
		}
		if exp == nil {
			continue
		}
		sum := 0.0
		for j, f := range exp {
			if f.FeatureHeader != []string{"area", "bedrooms", "age", "distance"}[j] || len(f.Attributions) != 1 || len(f.Attributions[0].Attribution) != 1 {
				t.Fatalf("feature %d: %+v", j, f)
			}
			sum += f.Attributions[0].Attribution[0]
		}
		if math.Abs(sum-(p-base[0])) > 1e-3*math.Max(1, math.Abs(p)) {
			t.Fatalf("record %d: attributions sum to %v, prediction %v minus baseline %v = %v", i, sum, p, base[0], p-base[0])
		}
	}
	// The per-call override: `true` explains every record, `false` none.
	if r, _ := invoke(rows, "`true`"); r.Explanations.KernelShap[0] == nil || r.Explanations.KernelShap[1] == nil {
		t.Fatalf("`true` left a record unexplained")
	}
	// A content type the explainer cannot read is refused.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("explained"), Body: []byte("{}"), ContentType: aws.String("application/json")})
	apiErr(t, err, "ValidationError", "explanation")
	_, text := signedGet(t, srv.URL()+"/metrics", &keyA)
	if v, _ := metricValue(t, text, "sagehost_explanations_per_instance_total", `endpoint="explained"`); v <= 0 {
		t.Fatalf("sagehost_explanations_per_instance_total = %v", v)
	}
}
