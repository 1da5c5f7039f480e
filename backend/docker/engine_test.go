package docker

// Helpers for the tests that need a container engine: finding one, and the
// test image (the test model server and a probe, FROM scratch), built
// locally through the engine's build API, since no registry can be reached.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/backendtest"
)

var (
	engineOnce sync.Once
	engineSkip string // why the engine tests skip; "" when they run
	testImage  string // the test image's reference
)

// needEngine skips t unless a container engine is reachable, and builds
// the test image once.
func needEngine(t *testing.T) {
	t.Helper()
	engineOnce.Do(func() { engineSkip = setUpEngine() })
	if engineSkip != "" {
		if os.Getenv("SAGEHOST_REQUIRE_ENGINE") == "1" {
			t.Fatalf("SAGEHOST_REQUIRE_ENGINE=1 but: %s", engineSkip)
		}
		t.Skip(engineSkip)
	}
}

func setUpEngine() string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "sagehost-docker-test-")
	if err != nil {
		return err.Error()
	}
	defer os.RemoveAll(dir)
	b, err := New(ctx, Config{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		return err.Error()
	}
	defer b.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = b.Available(pctx)
	pcancel()
	if err != nil {
		return fmt.Sprintf("no container engine reachable (run `. .ci/podman.sh` or start Docker, or set DOCKER_HOST): %v", err)
	}
	ref, err := BuildExampleImage(ctx, b, dir)
	if err != nil {
		return "cannot build the test image: " + err.Error()
	}
	testImage = ref
	return ""
}

// newBackend returns a docker backend for t; called again in the same test
// it returns a new backend over the same state directory (a restart of
// sagehost). Each is closed when the test ends.
func newBackend(t *testing.T) *Backend {
	t.Helper()
	return newBackendAt(t, backendtest.StateDir(t))
}

func newBackendAt(t *testing.T, stateDir string) *Backend {
	t.Helper()
	b, err := New(context.Background(), Config{
		StateDir: stateDir,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { b.Close() }) })
	return b
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// killFirst kills the first container of an instance with SIGKILL behind
// the backend's back, as `docker kill` or `podman kill` does.
func killFirst(t *testing.T, h *sagehost.InstanceHandle) {
	t.Helper()
	st, err := decodeState(h.State)
	if err != nil {
		t.Fatal(err)
	}
	cli := testClient(t)
	if err := cli.ContainerKill(context.Background(), st.Containers[0].ContainerID, "KILL"); err != nil {
		t.Fatalf("kill: %v", err)
	}
}

// testClient returns an engine client for the test's own looks at the
// engine.
func testClient(t *testing.T) *client.Client {
	t.Helper()
	b, err := New(context.Background(), Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.cli
}

// execIn runs a command in a running container and returns its output.
func execIn(t *testing.T, cli *client.Client, id string, cmd ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec attach %v: %v", cmd, err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		t.Fatalf("exec output %v: %v", cmd, err)
	}
	code := -1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		in, err := cli.ContainerExecInspect(ctx, ex.ID)
		if err == nil && !in.Running {
			code = in.ExitCode
			break
		}
	}
	return out.String(), code
}

// harness adapts the docker backend to the conformance suite.
func harness() backendtest.Harness {
	return backendtest.Harness{
		New:   func(t *testing.T) sagehost.Backend { return newBackend(t) },
		Image: testImage,
		Kill:  killFirst,
	}
}
