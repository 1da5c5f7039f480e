package xgboost

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sagehost/sagehost/internal/testutil/syncbuf"
	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

// The process tests run this test binary as the model server: with
// XGBOOST_TEST_MAIN set, TestMainProcess calls Main.
const envTestMain = "XGBOOST_TEST_MAIN"

func startMain(t *testing.T, env ...string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), envTestMain+"=1")
	cmd.Env = append(cmd.Env, env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out
}

// waitPing waits up to 20 s for the server at base to answer /ping with
// 200; out is its output, for the failure message.
func waitPing(t *testing.T, base string, out *syncbuf.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ping answer: %v\n%s", err, out.String())
		}
	}
}

// stopMain sends the server SIGTERM and waits up to 15 s for it to exit 0.
func stopMain(t *testing.T, cmd *exec.Cmd, out *syncbuf.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after SIGTERM\n%s", out.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func extractExample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	zr, err := gzip.NewReader(bytes.NewReader(example.ModelTarGz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		writeFile(t, dir, filepath.Base(hdr.Name), b)
	}
}

func TestMainProcess(t *testing.T) {
	if os.Getenv(envTestMain) != "" {
		Main()
		return
	}
	port := freePort(t)
	cmd, out := startMain(t, EnvModelDir+"="+extractExample(t), EnvBindToPort+"="+port)
	base := "http://127.0.0.1:" + port
	waitPing(t, base, out)
	resp, err := http.Post(base+"/invocations", "text/csv", strings.NewReader(example.SampleCSV))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(filepath.Join("example", "expected.txt"))
	if resp.StatusCode != 200 || string(body) != string(want) {
		t.Fatalf("invocation: %d %q, want %q", resp.StatusCode, body, want)
	}
	stopMain(t, cmd, out)
	log := out.String()
	for _, s := range []string{"msg=serving", "objective=reg:squarederror", "format=ubjson", "addr=0.0.0.0:" + port,
		"msg=request", "path=/invocations", "status=200", "rows=1", "msg=\"shutting down\"", "signal=terminated", "msg=stopped"} {
		if !strings.Contains(log, s) {
			t.Errorf("the log lacks %q:\n%s", s, log)
		}
	}
}

func TestMainProcessFailsWithoutAModel(t *testing.T) {
	cmd, out := startMain(t, EnvModelDir+"="+t.TempDir(), EnvBindToPort+"="+freePort(t))
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "cannot load the model") || !strings.Contains(out.String(), "no XGBoost model in") {
		t.Errorf("output:\n%s", out.String())
	}
}
