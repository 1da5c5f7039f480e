package server_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sagehost/sagehost/internal/testutil/testfile"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/sagehost/sagehost/internal/testutil/minio"
	"github.com/sagehost/sagehost/modelserver/xgboost"
	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

// deployMME deploys a multi-model endpoint whose models are under prefix.
func deployMME(t *testing.T, c clients, name, image, prefix string, env map[string]string, count int32, cache smtypes.ModelCacheSetting) {
	t.Helper()
	ctr := &smtypes.ContainerDefinition{Image: aws.String(image), Mode: smtypes.ContainerModeMultiModel, ModelDataUrl: aws.String(prefix), Environment: env}
	if cache != "" {
		ctr.MultiModelConfig = &smtypes.MultiModelConfig{ModelCacheSetting: cache}
	}
	if _, err := c.sm.CreateModel(ctxT(t), &sagemaker.CreateModelInput{ModelName: aws.String(name), PrimaryContainer: ctr}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, name, variantSpec{"AllTraffic", name, count, 1})
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, name)
}

func invokeTarget(t *testing.T, c clients, endpoint, target string) report {
	t.Helper()
	_, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(endpoint), TargetModel: aws.String(target),
		Body: []byte("{}"), ContentType: aws.String("application/json")})
	return r
}

func TestMultiModelEndpointFromFiles(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.ModelTimeout = 3 * time.Second })
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	dir := t.TempDir()
	for _, m := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(dir, m+".tar.gz"), modelArchive(t, map[string]string{"which": m}), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "team"), 0o755)
	os.WriteFile(filepath.Join(dir, "team", "d.tar.gz"), modelArchive(t, map[string]string{"which": "d"}), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.tar.gz"), modelArchive(t, map[string]string{"FAIL_LOAD": "weights are corrupt"}), 0o644)
	// Room for two models in the container at a time.
	deployMME(t, c, "mme", modelImage(t), "file://"+dir+"/", modelEnv("mme", "TESTMODEL_MAX_MODELS", "2"), 1, "")

	d, err := c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("mme")})
	if err != nil || d.PrimaryContainer.Mode != smtypes.ContainerModeMultiModel || aws.ToString(d.PrimaryContainer.ModelDataUrl) != "file://"+dir+"/" {
		t.Fatalf("DescribeModel: %+v %v", d, err)
	}
	ra := invokeTarget(t, c, "mme", "a.tar.gz")
	if ra.TargetModel != "a.tar.gz" || ra.ModelFileContents["which"] != "a" || ra.Loads != 1 || !slices.Equal(ra.LoadedModels, []string{ra.ModelName}) {
		t.Fatalf("a: %+v", ra)
	}
	if r := invokeTarget(t, c, "mme", "a.tar.gz"); r.Loads != 1 || r.ModelInvocations != 2 {
		t.Fatalf("a again was loaded again: %+v", r)
	}
	if r := invokeTarget(t, c, "mme", "team/d.tar.gz"); r.ModelFileContents["which"] != "d" || r.Loads != 2 {
		t.Fatalf("d: %+v", r)
	}
	invokeTarget(t, c, "mme", "a.tar.gz") // a is now the most recently used
	// A third model: the container is full (507), so sagehost unloads the
	// least recently used one (d), not a.
	rb := invokeTarget(t, c, "mme", "b.tar.gz")
	if rb.ModelFileContents["which"] != "b" || rb.Unloads != 1 || len(rb.LoadedModels) != 2 || !slices.Contains(rb.LoadedModels, ra.ModelName) {
		t.Fatalf("b: loaded %v, unloads %d, a=%s", rb.LoadedModels, rb.Unloads, ra.ModelName)
	}

	// Metrics: hits, misses, loads, unloads, loaded models.
	_, text := signedGet(t, srv.URL()+"/metrics", &keyA)
	l := []string{`endpoint="mme"`}
	for name, want := range map[string]float64{
		"sagehost_model_cache_hits_total":             2,
		"sagehost_model_loading_time_seconds_count":   3,
		"sagehost_model_unloading_time_seconds_count": 1,
		"sagehost_loaded_model_count":                 2,
	} {
		if got, _ := metricValue(t, text, name, l...); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("mme"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "is missing a target model header")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("mme"), Body: []byte("{}"), TargetModel: aws.String("nope.tar.gz")})
	apiErr(t, err, "ValidationError", "nope.tar.gz")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("mme"), Body: []byte("{}"), TargetModel: aws.String("../escape.tar.gz")})
	apiErr(t, err, "ValidationError", "prefix")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("mme"), Body: []byte("{}"), TargetModel: aws.String("broken.tar.gz")})
	var me *rttypes.ModelError
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 500 || !strings.Contains(me.ErrorMessage(), "while loading target model broken.tar.gz") {
		t.Fatalf("failed load: %v", err)
	}

	// A model with a load slower than the model timeout: ModelNotReady
	// (429), and the load goes on, so a retry finds it ready.
	deployMME(t, c, "slow", modelImage(t), "file://"+dir+"/", modelEnv("slow", "TESTMODEL_LOAD_DELAY", "4s"), 1, "")
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("slow"), Body: []byte("{}"), TargetModel: aws.String("a.tar.gz")})
	apiErr(t, err, "ModelNotReadyException", "still loading")
	eventually(t, "the slow model is loaded", func() bool {
		_, err := c.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("slow"), Body: []byte("{}"), ContentType: aws.String("application/json"), TargetModel: aws.String("a.tar.gz")})
		return err == nil
	})
}

func TestMultiModelAffinityAndDisabledCache(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	dir := t.TempDir()
	for _, m := range []string{"x", "y"} {
		os.WriteFile(filepath.Join(dir, m+".tar.gz"), modelArchive(t, map[string]string{"which": m}), 0o644)
	}
	deployMME(t, c, "two", modelImage(t), dir, modelEnv("two"), 2, "")
	first := invokeTarget(t, c, "two", "x.tar.gz")
	for i := 0; i < 10; i++ {
		if r := invokeTarget(t, c, "two", "x.tar.gz"); r.PID != first.PID || r.Loads != first.Loads {
			t.Fatalf("x went to pid %d (loads %d), where it is loaded: pid %d", r.PID, r.Loads, first.PID)
		}
	}
	// The other instance, idle, takes the next model.
	if r := invokeTarget(t, c, "two", "y.tar.gz"); r.PID == first.PID {
		t.Fatalf("y was loaded next to x instead of on the idle instance")
	}

	deployMME(t, c, "nocache", modelImage(t), dir, modelEnv("nocache"), 1, smtypes.ModelCacheSettingDisabled)
	invokeTarget(t, c, "nocache", "x.tar.gz")
	eventually(t, "x unloaded after the call", func() bool {
		r := invokeTarget(t, c, "nocache", "y.tar.gz")
		return r.Unloads >= 1 && slices.Equal(r.LoadedModels, []string{r.ModelName})
	})
}

func TestMultiModelEndpointFromS3(t *testing.T) {
	t.Parallel()
	m := minio.Start(t)
	s3c := m.S3Client(t)
	ctx := context.Background()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mme")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mme"), Key: aws.String("models/" + name + ".tar.gz"),
			Body: bytes.NewReader(modelArchive(t, map[string]string{"which": name}))}); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, "", func(cfg *serverConfig) {
		cfg.S3EndpointURL, cfg.S3Region, cfg.S3Credentials = m.Endpoint, m.Region, m.Credentials()
	})
	c := newClients(srv, keyA)
	deployMME(t, c, "s3mme", modelImage(t), "s3://mme/models/", modelEnv("s3mme"), 1, "")
	for _, name := range []string{"one", "two", "one"} {
		if r := invokeTarget(t, c, "s3mme", name+".tar.gz"); r.ModelFileContents["which"] != name {
			t.Fatalf("%s answered by %v", name, r.ModelFileContents)
		}
	}
	_, err := c.rt.InvokeEndpoint(ctxT(t), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("s3mme"), Body: []byte("{}"), TargetModel: aws.String("three.tar.gz")})
	apiErr(t, err, "ValidationError", "three.tar.gz")
}

// TestXGBoostMultiModelEndpoint is an MME of two XGBoost models under AWS's
// XGBoost image URI: each TargetModel answers its own predictions.
func TestXGBoostMultiModelEndpoint(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "houses.tar.gz"), example.ModelTarGz, 0o644)
	raw := testfile.Gunzip(t, "../modelserver/xgboost/testdata/golden/binary_logistic.json.gz")
	os.WriteFile(filepath.Join(dir, "churn.tar.gz"), modelArchive(t, map[string]string{"xgboost-model": string(raw)}), 0o644)
	deployMME(t, c, "xgbmme", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "file://"+dir+"/", nil, 1, "")

	predict := func(target, csv string) float64 {
		out, err := c.rt.InvokeEndpoint(ctxT(t), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("xgbmme"), TargetModel: aws.String(target),
			ContentType: aws.String("text/csv"), Body: []byte(csv)})
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(out.Body)), 64)
		if err != nil {
			t.Fatalf("%s answered %q", target, out.Body)
		}
		return v
	}
	want, _ := os.ReadFile("../modelserver/xgboost/example/expected.txt")
	if got := predict("houses.tar.gz", example.SampleCSV); strconv.FormatFloat(got, 'g', -1, 64) != strings.TrimSpace(string(want)) {
		t.Fatalf("houses: %v, want %s", got, want)
	}
	churn, err := xgboost.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, churn.NumFeature())
	var fields []string
	for i := range row {
		row[i] = float32(i+1) / 10
		fields = append(fields, strconv.FormatFloat(float64(row[i]), 'g', -1, 32))
	}
	p, err := churn.Predict(xgboost.NewMatrix([][]float32{row}), xgboost.PredictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := predict("churn.tar.gz", strings.Join(fields, ",")); math.Abs(got-float64(p.Values[0])) > 1e-7 {
		t.Fatalf("churn: %v, want %v", got, p.Values[0])
	}
}

// TestMultiModelBudgetUnloadsLeastRecentlyUsed: with room for one model in
// an instance's budget, loading a second unloads the first.
func TestMultiModelBudgetUnloadsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, m := range []string{"p", "q"} {
		os.WriteFile(filepath.Join(dir, m+".tar.gz"), modelArchive(t, map[string]string{"weights": strings.Repeat(m, 1000)}), 0o644)
	}
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.ModelCacheBytes = 1500 }) // one 1000-byte model fits, two do not
	c := newClients(srv, keyA)
	deployMME(t, c, "budget", modelImage(t), dir, modelEnv("budget"), 1, "")
	rp := invokeTarget(t, c, "budget", "p.tar.gz")
	rq := invokeTarget(t, c, "budget", "q.tar.gz")
	if rq.Unloads != 1 || !slices.Equal(rq.LoadedModels, []string{rq.ModelName}) || slices.Contains(rq.LoadedModels, rp.ModelName) {
		t.Fatalf("after q: loaded %v, unloads %d", rq.LoadedModels, rq.Unloads)
	}
}
