// Package minio runs a real MinIO server for tests that need S3: a
// throwaway `minio server` on a free loopback port with a temporary data
// directory, stopped when the test ends. Tests skip when no minio binary is
// installed.
package minio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sagehost/sagehost/internal/testutil/syncbuf"
)

// Server is a running MinIO server.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
}

const installHint = "install it with `go install github.com/minio/minio@latest` (puts it in $(go env GOPATH)/bin) or point $MINIO_BIN at a minio binary"

// Binary returns the path of the minio binary: $MINIO_BIN, else minio on
// PATH, else $(go env GOPATH)/bin/minio; "" when none is found.
func Binary() string {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if isExecutable(p) {
			return p
		}
		return ""
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	for _, dir := range gopaths() {
		if p := filepath.Join(dir, "bin", "minio"); isExecutable(p) {
			return p
		}
	}
	return ""
}

func gopaths() []string {
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go"))
	}
	return dirs
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start runs a MinIO server for the test and stops it at t.Cleanup. It
// calls t.Skip when no minio binary is installed, or t.Fatal when
// SAGEHOST_REQUIRE_MINIO=1 (as CI sets).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		skip := t.Skipf
		if os.Getenv("SAGEHOST_REQUIRE_MINIO") == "1" {
			skip = t.Fatalf
		}
		if p := os.Getenv("MINIO_BIN"); p != "" {
			skip("MINIO_BIN=%q is not an executable file; %s", p, installHint)
		}
		skip("minio binary not found ($MINIO_BIN, PATH, $(go env GOPATH)/bin); %s", installHint)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err // most likely the port was taken between probe and bind
	}
	t.Fatalf("minio: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	s := &Server{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKey: "sagehost-test",
		SecretKey: "sagehost-test-secret",
		Region:    "us-east-1",
	}
	cmd := exec.Command(bin, "server",
		"--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--certs-dir", filepath.Join(dir, "certs"),
		filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+s.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"HOME="+dir,
	)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitReady(ctx, s.Endpoint, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w\nminio output:\n%s", err, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("minio output:\n%s", out.String())
		}
	})
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls MinIO's liveness endpoint until it answers 200.
func waitReady(ctx context.Context, endpoint string, exited <-chan error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/minio/health/live", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("minio server exited before it was ready: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("minio server not ready at %s: %w", endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

// Credentials returns a static credentials provider for the server.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// S3Client returns a path-style S3 client for the server, for the test to
// create buckets and upload objects.
func (s *Server) S3Client(t testing.TB) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.Credentials(),

		DisableLogOutputChecksumValidationSkipped: true,
	})
}
