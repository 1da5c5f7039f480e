package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/sagehost/sagehost/internal/testmodel"
	"github.com/sagehost/sagehost/internal/testutil/asmodel"
	"github.com/sagehost/sagehost/server"
)

// TestMain lets the test binary act as a model container: sagehost starts
// it with the argument "serve" and TESTMODEL_AS_TEST_BINARY=1.
func TestMain(m *testing.M) { asmodel.Main(m) }

// Two accounts, as a credentials file.
var (
	keyA = account{ak: "AKIDACCOUNTA", sk: "secret-a", id: "111111111111"}
	keyB = account{ak: "AKIDACCOUNTB", sk: "secret-b", id: "222222222222"}
)

type account struct{ ak, sk, id string }

func writeCredentials(t testing.TB, accts ...account) string {
	t.Helper()
	var b strings.Builder
	for i, a := range accts {
		fmt.Fprintf(&b, "[profile%d]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_account_id = %s\n\n", i, a.ak, a.sk, a.id)
	}
	p := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var portBase atomic.Int32

// startServer starts sagehost on 127.0.0.1:0 with its own data dir (or
// dataDir, to restart over an existing one) and its own port range.
func startServer(t *testing.T, dataDir string, mod ...func(*server.Config)) *server.Server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	// Blocks of 200 between 21000 and 29999: below the kernel's ephemeral
	// ports (32768 up), which loopback clients hold by the thousand and
	// which a model could then not bind; reused after 45 servers (a shared
	// range only means sharing its free blocks).
	base := 21000 + int(portBase.Add(1)%45)*200
	cfg := server.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         dataDir,
		CredentialsFile: writeCredentials(t, keyA, keyB),
		StartupTimeout:  20 * time.Second,
		ModelTimeout:    10 * time.Second,
		PortMin:         base,
		PortMax:         base + 199,
		Logger:          testLogger(t),
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeServer(t, srv) })
	return srv
}

func closeServer(t *testing.T, srv *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Errorf("close server: %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SAGEHOST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type clients struct {
	sm *sagemaker.Client
	rt *sagemakerruntime.Client
}

func awsConfig(a account, region string) aws.Config {
	return aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(a.ak, a.sk, ""),
		RetryMaxAttempts: 1,
	}
}

func newClients(srv *server.Server, a account) clients {
	return newClientsIn(srv, a, "us-east-1")
}

func newClientsIn(srv *server.Server, a account, region string) clients {
	cfg := awsConfig(a, region)
	return clients{
		sm: sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(srv.URL()) }),
		rt: sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(srv.URL()) }),
	}
}

// apiErr asserts that err is an AWS API error with the code, and that its
// message contains each of parts.
func apiErr(t *testing.T, err error, code string, parts ...string) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want error code %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	for _, p := range parts {
		if !strings.Contains(ae.ErrorMessage(), p) {
			t.Fatalf("error message %q does not contain %q", ae.ErrorMessage(), p)
		}
	}
	return ae
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// modelImage is the test binary itself, which acts as the model.
func modelImage(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// modelEnv is the Environment that makes the test binary a model server.
func modelEnv(name string, extra ...string) map[string]string {
	env := map[string]string{"TESTMODEL_AS_TEST_BINARY": "1", "TESTMODEL_NAME": name}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

func createModel(t *testing.T, c clients, name string, env map[string]string) {
	t.Helper()
	_, err := c.sm.CreateModel(ctxT(t), &sagemaker.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String("arn:aws:iam::111111111111:role/SageMakerRole"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(modelImage(t)), Environment: env},
	})
	if err != nil {
		t.Fatalf("CreateModel %s: %v", name, err)
	}
}

type variantSpec struct {
	name, model string
	count       int32
	weight      float32
}

func createConfig(t *testing.T, c clients, name string, variants ...variantSpec) {
	t.Helper()
	in := &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(name)}
	for _, v := range variants {
		in.ProductionVariants = append(in.ProductionVariants, smtypes.ProductionVariant{
			VariantName:          aws.String(v.name),
			ModelName:            aws.String(v.model),
			InitialInstanceCount: aws.Int32(v.count),
			InstanceType:         smtypes.ProductionVariantInstanceTypeMlM5Large,
			InitialVariantWeight: aws.Float32(v.weight),
		})
	}
	if _, err := c.sm.CreateEndpointConfig(ctxT(t), in); err != nil {
		t.Fatalf("CreateEndpointConfig %s: %v", name, err)
	}
}

func waitInService(t *testing.T, c clients, name string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(c.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	})
	out, err := w.WaitForOutput(ctxT(t), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 90*time.Second)
	if err != nil {
		d, derr := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if derr == nil {
			t.Fatalf("endpoint %s not InService: %v (status %s, reason %q)", name, err, d.EndpointStatus, aws.ToString(d.FailureReason))
		}
		t.Fatalf("endpoint %s not InService: %v", name, err)
	}
	return out
}

// waitStatus polls DescribeEndpoint until the status is want.
func waitStatus(t *testing.T, c clients, name string, want smtypes.EndpointStatus) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := c.sm.DescribeEndpoint(ctxT(t), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeEndpoint %s: %v", name, err)
		}
		if d.EndpointStatus == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s: status %s, want %s (reason %q)", name, d.EndpointStatus, want, aws.ToString(d.FailureReason))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deploy creates a model, a one-variant config and an endpoint, and waits
// until it is InService.
func deploy(t *testing.T, c clients, name string, env map[string]string) {
	t.Helper()
	createModel(t, c, name+"-model", env)
	createConfig(t, c, name+"-config", variantSpec{"AllTraffic", name + "-model", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{
		EndpointName: aws.String(name), EndpointConfigName: aws.String(name + "-config"),
	}); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	waitInService(t, c, name)
}

// report is what the test model answers.
type report = testmodel.Report

func invokeJSON(t *testing.T, c clients, in *sagemakerruntime.InvokeEndpointInput) (*sagemakerruntime.InvokeEndpointOutput, report) {
	t.Helper()
	out, err := c.rt.InvokeEndpoint(ctxT(t), in)
	if err != nil {
		t.Fatalf("InvokeEndpoint: %v", err)
	}
	var r report
	if err := json.Unmarshal(out.Body, &r); err != nil {
		t.Fatalf("decode model answer %q: %v", out.Body, err)
	}
	return out, r
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
