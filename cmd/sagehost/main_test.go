package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/internal/testmodel"
	"github.com/sagehost/sagehost/internal/testutil/asmodel"
	"github.com/sagehost/sagehost/server"
)

// TestMain lets the test binary act as the model container.
func TestMain(m *testing.M) { asmodel.Main(m) }

func TestCommandLine(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "sagehost ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"bogus"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("bogus: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"serve", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "refusing to listen on 0.0.0.0:0 without --credentials") {
		t.Fatalf("non-loopback without credentials: %d %q", code, errb.String())
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sagehostProc is `sagehost serve` running as its own process.
type sagehostProc struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
}

func startSagehost(t *testing.T, bin, dataDir, creds, addr string) *sagehostProc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dataDir, "..", "sagehost.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", dataDir, "--credentials", creds, "--port-min", "31000", "--port-max", "31999")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sagehostProc{cmd: cmd, addr: addr, log: logf}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("sagehost did not come up: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestCrashAndRestartAdoptsModelProcesses kills sagehost with SIGKILL: its
// model processes keep running, and the next sagehost adopts them (the same
// process answers). A clean SIGTERM then stops every model process.
func TestCrashAndRestartAdoptsModelProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sagehost binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sagehost")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(tmp, "data")
	creds := filepath.Join(tmp, "credentials")
	os.WriteFile(creds, []byte("[a]\naws_access_key_id = AKIDCRASH\naws_secret_access_key = s\naws_account_id = 123456789012\n"), 0o600)
	addr := freePort(t)
	p := startSagehost(t, bin, dataDir, creds, addr)

	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDCRASH", "s", ""), RetryMaxAttempts: 1}
	sm := sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	rt := sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exe, _ := os.Executable()
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image: aws.String(exe), Environment: map[string]string{"TESTMODEL_AS_TEST_BINARY": "1", "TESTMODEL_NAME": "survivor"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("c"), ProductionVariants: []smtypes.ProductionVariant{{
		VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large,
	}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ep")}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	pidOf := func() (int, error) {
		out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("{}"), ContentType: aws.String("application/json")})
		if err != nil {
			return 0, err
		}
		var r testmodel.Report
		if err := json.Unmarshal(out.Body, &r); err != nil {
			return 0, err
		}
		return r.PID, nil
	}
	pid, err := pidOf()
	if err != nil {
		t.Fatal(err)
	}

	// Crash: the model process outlives sagehost.
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	if !alive(pid) {
		t.Fatalf("model process %d died with sagehost", pid)
	}

	// Restart: the same model process answers, without any call.
	p = startSagehost(t, bin, dataDir, creds, addr)
	var again int
	deadline := time.Now().Add(time.Minute)
	for {
		if again, err = pidOf(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint not back after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if again != pid {
		t.Fatalf("after restart pid %d answered, want the adopted %d", again, pid)
	}

	// A clean shutdown stops every model process.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("sagehost exit: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for alive(pid) && !isZombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("model process %d still running after sagehost stopped", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isZombie reports whether pid has exited but not been reaped (it was
// re-parented to an init that may reap late).
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestLogsCommand(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	var announce strings.Builder
	srv, err := server.Start(context.Background(), server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Example: true,
		PortMin: 30000, PortMax: 30999, Announce: &syncWriter{b: &announce}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	var out, errb strings.Builder
	deadline := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		errb.Reset()
		code := run([]string{"logs", "example", "--endpoint-url", srv.URL()}, &out, &errb)
		if code == 0 && strings.Contains(out.String(), "AllTraffic/i-") && strings.Contains(out.String(), "msg=serving server=xgboost") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sagehost logs: %q %q", out.String(), errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out.Reset()
	if code := run([]string{"logs", "example", "--endpoint-url", srv.URL(), "--tail", "1"}, &out, &errb); code != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("logs --tail 1: %d %q", code, out.String())
	}
	if code := run([]string{"logs", "nope", "--endpoint-url", srv.URL()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "has no log streams") {
		t.Fatalf("logs of a missing endpoint: %d %q", code, errb.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
