package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/internal/testutil/minio"
)

type captureRecord struct {
	CaptureData struct {
		EndpointInput  *capturedPayload `json:"endpointInput"`
		EndpointOutput *capturedPayload `json:"endpointOutput"`
	} `json:"captureData"`
	EventMetadata struct {
		EventID       string `json:"eventId"`
		InferenceID   string `json:"inferenceId"`
		InferenceTime string `json:"inferenceTime"`
		TargetModel   string `json:"targetModel"`
	} `json:"eventMetadata"`
	EventVersion string `json:"eventVersion"`
}

type capturedPayload struct {
	ObservedContentType string `json:"observedContentType"`
	Mode                string `json:"mode"`
	Data                string `json:"data"`
	Encoding            string `json:"encoding"`
}

// captureConfig creates a config capturing at pct percent to dest.
func captureConfig(t *testing.T, c clients, name, model, dest string, pct int32, enable bool, mode smtypes.CaptureMode) {
	t.Helper()
	if _, err := c.sm.CreateEndpointConfig(ctxT(t), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(model), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
		DataCaptureConfig: &smtypes.DataCaptureConfig{
			EnableCapture: aws.Bool(enable), InitialSamplingPercentage: aws.Int32(pct), DestinationS3Uri: aws.String(dest),
			CaptureOptions:           []smtypes.CaptureOption{{CaptureMode: mode}},
			CaptureContentTypeHeader: &smtypes.CaptureContentTypeHeader{CsvContentTypes: []string{"text/csv"}, JsonContentTypes: []string{"application/json"}},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

// readCaptured reads every record under dir, checking the file layout.
func readCaptured(t *testing.T, dir string) []captureRecord {
	t.Helper()
	var out []captureRecord
	layout := regexp.MustCompile(`^AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$`)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !layout.MatchString(filepath.ToSlash(rel)) {
			t.Errorf("capture file %s is not named as SageMaker names them", rel)
		}
		b, _ := os.ReadFile(p)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			var r captureRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out
}

func TestDataCaptureToFiles(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "cap", modelEnv("cap"))
	captureConfig(t, c, "all", "cap", "file://"+dest, 100, true, smtypes.CaptureModeInputAndOutput)
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("cap"), EndpointConfigName: aws.String("all")}); err != nil {
		t.Fatal(err)
	}
	d := waitInService(t, c, "cap")
	if d.DataCaptureConfig == nil || !aws.ToBool(d.DataCaptureConfig.EnableCapture) || aws.ToInt32(d.DataCaptureConfig.CurrentSamplingPercentage) != 100 {
		t.Fatalf("DescribeEndpoint DataCaptureConfig %+v", d.DataCaptureConfig)
	}
	start := time.Now().UTC()
	for i := 0; i < 5; i++ {
		in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("cap"), Body: []byte("1,2,3"), ContentType: aws.String("text/csv")}
		if i%2 == 0 {
			in.InferenceId = aws.String("inference-" + string(rune('a'+i)))
		}
		if _, err := c.rt.InvokeEndpoint(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// Binary input is base64; a failed call is not captured.
	if _, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("cap"), Body: []byte{0, 1, 2, 255}, ContentType: aws.String("application/x-npy")}); err != nil {
		t.Fatal(err)
	}
	c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("cap"), ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"status":500}}`)})
	closeServer(t, srv) // a clean shutdown writes what is buffered

	recs := readCaptured(t, filepath.Join(dest, "cap"))
	if len(recs) != 6 {
		t.Fatalf("%d records captured, want 6", len(recs))
	}
	ids := map[string]bool{}
	for _, r := range recs {
		in, out := r.CaptureData.EndpointInput, r.CaptureData.EndpointOutput
		if r.EventVersion != "0" || r.EventMetadata.EventID == "" || in == nil || out == nil || in.Mode != "INPUT" || out.Mode != "OUTPUT" {
			t.Fatalf("record %+v", r)
		}
		at, err := time.Parse(time.RFC3339, r.EventMetadata.InferenceTime)
		if err != nil || !strings.HasSuffix(r.EventMetadata.InferenceTime, "Z") || at.Before(start.Truncate(time.Second)) || at.After(time.Now()) {
			t.Fatalf("inferenceTime %q", r.EventMetadata.InferenceTime)
		}
		switch in.ObservedContentType {
		case "text/csv":
			if in.Encoding != "CSV" || in.Data != "1,2,3" || out.Encoding != "JSON" || out.ObservedContentType != "application/json" {
				t.Fatalf("CSV record %+v %+v", in, out)
			}
			var rep report
			if err := json.Unmarshal([]byte(out.Data), &rep); err != nil || rep.Body != "1,2,3" {
				t.Fatalf("captured output %q: %v", out.Data, err)
			}
		case "application/x-npy":
			raw, err := base64.StdEncoding.DecodeString(in.Data)
			if in.Encoding != "BASE64" || err != nil || !bytes.Equal(raw, []byte{0, 1, 2, 255}) {
				t.Fatalf("binary record %+v", in)
			}
		default:
			t.Fatalf("unexpected record %+v", in)
		}
		ids[r.EventMetadata.InferenceID] = true
		if ids[r.EventMetadata.EventID] {
			t.Fatal("eventId repeated")
		}
	}
	for _, want := range []string{"inference-a", "inference-c", "inference-e", ""} {
		if !ids[want] {
			t.Errorf("no record with inferenceId %q (have %v)", want, ids)
		}
	}
}

func TestDataCaptureSamplingAndUpdates(t *testing.T) {
	t.Parallel()
	dest := t.TempDir()
	dir := t.TempDir()
	srv := startServer(t, dir)
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "samp", modelEnv("samp"))
	captureConfig(t, c, "half", "samp", dest, 50, true, smtypes.CaptureModeInput)
	captureConfig(t, c, "zero", "samp", dest, 0, true, smtypes.CaptureModeInput)
	captureConfig(t, c, "off", "samp", dest, 100, false, smtypes.CaptureModeInput)
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("samp"), EndpointConfigName: aws.String("half")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "samp")
	invokeN := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("samp"), Body: []byte("x"), ContentType: aws.String("text/csv")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	invokeN(400)
	// Turn capture off twice over (sampling 0, then EnableCapture false):
	// none of these calls may be captured.
	for _, cfg := range []string{"zero", "off"} {
		if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("samp"), EndpointConfigName: aws.String(cfg)}); err != nil {
			t.Fatal(err)
		}
		waitInService(t, c, "samp")
		invokeN(50)
	}
	closeServer(t, srv)
	recs := readCaptured(t, filepath.Join(dest, "samp"))
	// binomial(400, 0.5): sd 10; allow 5 sd.
	if math.Abs(float64(len(recs))-200) > 50 {
		t.Fatalf("%d of 400 calls captured at 50%%", len(recs))
	}
	for _, r := range recs {
		if r.CaptureData.EndpointInput == nil || r.CaptureData.EndpointOutput != nil {
			t.Fatalf("Input mode captured %+v", r.CaptureData)
		}
	}
}

func TestDataCaptureToS3AndWhenTheDestinationIsDown(t *testing.T) {
	t.Parallel()
	m := minio.Start(t)
	s3c := m.S3Client(t)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("capture")}); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(cfg *serverConfig) {
		cfg.S3EndpointURL, cfg.S3Region, cfg.S3Credentials = m.Endpoint, m.Region, m.Credentials()
	})
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "s3cap", modelEnv("s3cap"))
	captureConfig(t, c, "s3cap", "s3cap", "s3://capture/monitoring", 100, true, smtypes.CaptureModeInputAndOutput)
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("s3cap"), EndpointConfigName: aws.String("s3cap")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "s3cap")
	for i := 0; i < 3; i++ {
		invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("s3cap"), Body: []byte(`{"n":1}`), ContentType: aws.String("application/json"), InferenceId: aws.String("s3-id")})
	}
	closeServer(t, srv)
	l, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("capture"), Prefix: aws.String("monitoring/s3cap/AllTraffic/")})
	if err != nil || len(l.Contents) == 0 {
		t.Fatalf("no capture objects: %v", err)
	}
	n := 0
	for _, o := range l.Contents {
		obj, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("capture"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(obj.Body)
		for sc.Scan() {
			var r captureRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.EventMetadata.InferenceID != "s3-id" || r.CaptureData.EndpointInput.Data != `{"n":1}` || r.CaptureData.EndpointInput.Encoding != "JSON" {
				t.Fatalf("record %s: %v", sc.Bytes(), err)
			}
			n++
		}
		obj.Body.Close()
	}
	if n != 3 {
		t.Fatalf("%d records in S3, want 3", n)
	}

	// A destination that is down never fails or slows a call: the records
	// are dropped and counted.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	down := startServer(t, "", func(cfg *serverConfig) {
		cfg.S3EndpointURL, cfg.S3Region, cfg.S3Credentials = deadURL, m.Region, m.Credentials()
		cfg.CaptureFlushInterval = 200 * time.Millisecond
	})
	c2 := newClients(down, keyA)
	createModel(t, c2, "lost", modelEnv("lost"))
	captureConfig(t, c2, "lost", "lost", "s3://capture/lost", 100, true, smtypes.CaptureModeInputAndOutput)
	if _, err := c2.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("lost"), EndpointConfigName: aws.String("lost")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c2, "lost")
	for i := 0; i < 5; i++ {
		invokeJSON(t, c2, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("lost"), Body: []byte("{}"), ContentType: aws.String("application/json")})
	}
	eventually(t, "the lost records are counted", func() bool {
		return metric(t, down, "sagehost_data_capture_records_dropped_total", `endpoint="lost"`) == 5
	})
}

func TestDataCaptureOfMultiModelEndpoint(t *testing.T) {
	t.Parallel()
	dest, models := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(models, "a.tar.gz"), modelArchive(t, map[string]string{"which": "a"}), 0o644)
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("mmecap"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image: aws.String(modelImage(t)), Mode: smtypes.ContainerModeMultiModel, ModelDataUrl: aws.String(models), Environment: modelEnv("mmecap"),
	}}); err != nil {
		t.Fatal(err)
	}
	captureConfig(t, c, "mmecap", "mmecap", dest, 100, true, smtypes.CaptureModeInput)
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("mmecap"), EndpointConfigName: aws.String("mmecap")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "mmecap")
	invokeTarget(t, c, "mmecap", "a.tar.gz")
	closeServer(t, srv)
	recs := readCaptured(t, filepath.Join(dest, "mmecap"))
	if len(recs) != 1 || recs[0].EventMetadata.TargetModel != "a.tar.gz" {
		t.Fatalf("records %+v", recs)
	}
}
