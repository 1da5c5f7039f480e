package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/internal/testutil/minio"
)

// modelArchive returns a model.tar.gz holding the given files.
func modelArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func deployWithModelData(t *testing.T, c clients, name string, container smtypes.ContainerDefinition) {
	t.Helper()
	container.Image = aws.String(modelImage(t))
	container.Environment = modelEnv(name)
	if _, err := c.sm.CreateModel(ctxT(t), &sagemaker.CreateModelInput{ModelName: aws.String(name), PrimaryContainer: &container}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, name, variantSpec{"AllTraffic", name, 1, 1})
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func TestModelDataFromLocalFiles(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	dir := t.TempDir()
	archive := filepath.Join(dir, "model.tar.gz")
	if err := os.WriteFile(archive, modelArchive(t, map[string]string{"weights.bin": "w1", "code/inference.py": "print(1)"}), 0o644); err != nil {
		t.Fatal(err)
	}
	deployWithModelData(t, c, "fromfile", smtypes.ContainerDefinition{ModelDataUrl: aws.String("file://" + archive)})
	waitInService(t, c, "fromfile")
	_, r := invokeName(t, c, "fromfile", nil)
	if !slices.Equal(r.ModelFiles, []string{"code/inference.py", "weights.bin"}) || r.ModelFileContents["weights.bin"] != "w1" {
		t.Fatalf("model files %v %v", r.ModelFiles, r.ModelFileContents)
	}
	// The model directory is read-only (root ignores modes, so check them).
	st, err := os.Stat(r.Env["SM_MODEL_DIR"])
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("model dir %s: %v %v", r.Env["SM_MODEL_DIR"], st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(r.Env["SM_MODEL_DIR"], "weights.bin")); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("model file mode %v %v", st.Mode(), err)
	}

	// An uncompressed directory (S3Prefix-style) given as a plain path.
	plain := filepath.Join(dir, "plain")
	os.MkdirAll(filepath.Join(plain, "sub"), 0o755)
	os.WriteFile(filepath.Join(plain, "sub", "config.json"), []byte(`{}`), 0o644)
	deployWithModelData(t, c, "fromdir", smtypes.ContainerDefinition{ModelDataSource: &smtypes.ModelDataSource{S3DataSource: &smtypes.S3ModelDataSource{
		S3Uri: aws.String(plain + "/"), S3DataType: smtypes.S3ModelDataTypeS3Prefix, CompressionType: smtypes.ModelCompressionTypeNone,
	}}})
	waitInService(t, c, "fromdir")
	if _, r := invokeName(t, c, "fromdir", nil); !slices.Equal(r.ModelFiles, []string{"sub/config.json"}) {
		t.Fatalf("model files %v", r.ModelFiles)
	}

	// Missing model data fails the endpoint with SageMaker's kind of reason.
	deployWithModelData(t, c, "nodata", smtypes.ContainerDefinition{ModelDataUrl: aws.String("file://" + filepath.Join(dir, "missing.tar.gz"))})
	d := waitStatus(t, c, "nodata", smtypes.EndpointStatusFailed)
	if reason := aws.ToString(d.FailureReason); !strings.Contains(reason, "Failed to download model data for container \"primary\"") || !strings.Contains(reason, "missing.tar.gz") {
		t.Fatalf("FailureReason %q", reason)
	}
	// An unsafe archive too.
	evil := filepath.Join(dir, "evil.tar.gz")
	os.WriteFile(evil, modelArchive(t, map[string]string{"../../escape": "x"}), 0o644)
	deployWithModelData(t, c, "evil", smtypes.ContainerDefinition{ModelDataUrl: aws.String(evil)})
	d = waitStatus(t, c, "evil", smtypes.EndpointStatusFailed)
	if reason := aws.ToString(d.FailureReason); !strings.Contains(reason, "evil.tar.gz") {
		t.Fatalf("FailureReason %q", reason)
	}
}

func TestModelDataFromS3OnMinIO(t *testing.T) {
	t.Parallel()
	m := minio.Start(t)
	s3c := m.S3Client(t)
	ctx := context.Background()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("xgb/model.tar.gz"),
		Body: bytes.NewReader(modelArchive(t, map[string]string{"xgboost-model": "trees"}))}); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(cfg *serverConfig) {
		cfg.S3EndpointURL, cfg.S3Region, cfg.S3Credentials = m.Endpoint, m.Region, m.Credentials()
	})
	c := newClients(srv, keyA)
	deployWithModelData(t, c, "froms3", smtypes.ContainerDefinition{ModelDataUrl: aws.String("s3://models/xgb/model.tar.gz")})
	waitInService(t, c, "froms3")
	out, r := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("froms3"), Body: []byte("{}"), ContentType: aws.String("application/json")})
	if r.ModelFileContents["xgboost-model"] != "trees" || out == nil {
		t.Fatalf("model files %v", r.ModelFileContents)
	}
	deployWithModelData(t, c, "s3missing", smtypes.ContainerDefinition{ModelDataUrl: aws.String("s3://models/nope/model.tar.gz")})
	d := waitStatus(t, c, "s3missing", smtypes.EndpointStatusFailed)
	if reason := aws.ToString(d.FailureReason); !strings.Contains(reason, `s3://models/nope/model.tar.gz`) || !strings.Contains(reason, "Please ensure that there is an object located at the URL") {
		t.Fatalf("FailureReason %q", reason)
	}
}
