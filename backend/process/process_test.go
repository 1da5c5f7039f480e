package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/backendtest"
	"github.com/sagehost/sagehost/internal/testmodel"
	"github.com/sagehost/sagehost/internal/testutil/asmodel"
)

const envAsModel = asmodel.EnvAsModel

func TestMain(m *testing.M) { asmodel.Main(m) }

// testImage is the test binary itself.
func testImage(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// newBackend returns a backend; called again in the same test it returns a
// new backend over the same state directory (a restart of sagehost).
func newBackend(t *testing.T, cfg Config) *Backend {
	t.Helper()
	cfg.StateDir = backendtest.StateDir(t)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func harness(t *testing.T) backendtest.Harness {
	return backendtest.Harness{
		New:   func(t *testing.T) sagehost.Backend { return newBackend(t, Config{}) },
		Image: testImage(t),
		Env:   map[string]string{envAsModel: "1"},
		Kill: func(t *testing.T, h *sagehost.InstanceHandle) {
			st := decode(t, h)
			if err := syscall.Kill(st.Containers[0].PID, syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
		},
	}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, harness(t))
}

func decode(t *testing.T, h *sagehost.InstanceHandle) *state {
	t.Helper()
	st, err := decodeState(h.State)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func spec(t *testing.T, name string, env map[string]string) sagehost.InstanceSpec {
	e := map[string]string{envAsModel: "1", testmodel.EnvName: name}
	for k, v := range env {
		e[k] = v
	}
	return sagehost.InstanceSpec{
		ID:     backendtest.NewID(),
		Labels: map[string]string{sagehost.LabelEndpoint: "ep"},
		Containers: []sagehost.ContainerSpec{{
			Image:       testImage(t),
			Environment: e,
			LogPath:     filepath.Join(t.TempDir(), name+".log"),
		}},
	}
}

func start(t *testing.T, b *Backend, sp sagehost.InstanceSpec) *sagehost.InstanceHandle {
	t.Helper()
	h, err := b.Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Destroy(context.Background(), sp.ID) })
	return h
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEnvironmentFromScratch(t *testing.T) {
	b := newBackend(t, Config{})
	sp := spec(t, "env", map[string]string{"SAGEMAKER_BIND_TO_PORT": "1", "SM_MODEL_DIR": "/mine"})
	h := start(t, b, sp)
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)
	rep := backendtest.Report(t, h.Addrs[0])

	want := []string{"CUDA_VISIBLE_DEVICES", "HOME", "LANG", "NVIDIA_VISIBLE_DEVICES", "PATH", "SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_SAFE_PORT_RANGE",
		"SM_MODEL_DIR", "TESTMODEL_AS_TEST_BINARY", "TESTMODEL_NAME", "TMPDIR"}
	if !reflect.DeepEqual(rep.EnvNames, want) {
		t.Errorf("environment names = %v, want %v", rep.EnvNames, want)
	}
	_, port, _ := net.SplitHostPort(h.Addrs[0])
	p, _ := strconv.Atoi(port)
	if rep.Port != p || rep.Env["SAGEMAKER_BIND_TO_PORT"] != port {
		t.Errorf("model listens on %d (env %s), handle says %s", rep.Port, rep.Env["SAGEMAKER_BIND_TO_PORT"], h.Addrs[0])
	}
	if got, want := rep.Env["SAGEMAKER_SAFE_PORT_RANGE"], fmt.Sprintf("%d-%d", p+1, p+9); got != want {
		t.Errorf("SAGEMAKER_SAFE_PORT_RANGE = %s, want %s", got, want)
	}
	if rep.Env["SM_MODEL_DIR"] != "/mine" {
		t.Errorf("without model data the model's own SM_MODEL_DIR stays: got %q", rep.Env["SM_MODEL_DIR"])
	}
	work := filepath.Join(b.cfg.StateDir, sp.ID, "primary", "work")
	if rep.Cwd != work {
		t.Errorf("working directory = %s, want %s", rep.Cwd, work)
	}
	if fi, err := os.Stat(filepath.Join(work, "tmp")); err != nil || !fi.IsDir() {
		t.Errorf("no TMPDIR: %v", err)
	}
}

func TestStateFile(t *testing.T) {
	b := newBackend(t, Config{})
	sp := spec(t, "state", nil)
	sp.InstanceType = "ml.g5.xlarge"
	h := start(t, b, sp)
	path := filepath.Join(b.cfg.StateDir, sp.ID, stateFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600 (it holds the model's environment)", fi.Mode().Perm())
	}
	st, raw, err := readState(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(h.State) || h.Version != stateVersion || h.Backend != Name {
		t.Errorf("handle %+v does not carry the state file", h)
	}
	c := st.Containers[0]
	if st.ID != sp.ID || st.InstanceType != "ml.g5.xlarge" || !reflect.DeepEqual(st.Labels, sp.Labels) ||
		c.PID <= 0 || c.StartTime == 0 || c.Image != sp.Containers[0].Image || c.Name != "primary" ||
		h.Addrs[0] != "127.0.0.1:"+strconv.Itoa(c.Port) || c.Environment[testmodel.EnvName] != "state" {
		t.Errorf("state = %+v", st)
	}
	if !alive(c.PID, c.StartTime) || alive(c.PID, c.StartTime+1) {
		t.Errorf("alive check does not tell the process by its start time")
	}
}

func TestBadImages(t *testing.T) {
	b := newBackend(t, Config{})
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not a program\n"), 0o755)

	for _, image := range []string{"relative/model", notExec, dir, garbage} {
		sp := spec(t, "bad", nil)
		sp.Containers[0].Image = image
		_, err := b.Start(context.Background(), sp)
		if err == nil {
			t.Errorf("Start with image %s succeeded", image)
			continue
		}
		if !strings.Contains(err.Error(), image) {
			t.Errorf("error %q does not name image %s", err, image)
		}
		if _, err := os.Stat(filepath.Join(b.cfg.StateDir, sp.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("failed Start left its state directory: %v", err)
		}
		if image == garbage {
			if log, _ := os.ReadFile(sp.Containers[0].LogPath); !strings.Contains(string(log), "sagehost: cannot run image") {
				t.Errorf("log of an image that cannot run = %q", log)
			}
		} else if log, _ := os.ReadFile(sp.Containers[0].LogPath); !strings.Contains(string(log), "sagehost: ") ||
			!strings.Contains(string(log), image) {
			t.Errorf("log of image %s = %q, want the reason", image, log)
		}
	}
	// A two-container instance whose second image cannot run leaves the
	// first one's process behind neither.
	sp := spec(t, "half", nil)
	second := sp.Containers[0]
	second.Image = garbage
	sp.Containers = append(sp.Containers, second)
	if _, err := b.Start(context.Background(), sp); err == nil {
		t.Fatal("Start with a bad second image succeeded")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ports) != 0 || len(b.insts) != 0 || len(b.starting) != 0 {
		t.Errorf("failed Starts left ports %v, instances %v, starting %v", b.ports, b.insts, b.starting)
	}
}

func TestInvalidSpecs(t *testing.T) {
	b := newBackend(t, Config{})
	for name, mutate := range map[string]func(*sagehost.InstanceSpec){
		"bad id":        func(s *sagehost.InstanceSpec) { s.ID = "../escape" },
		"no containers": func(s *sagehost.InstanceSpec) { s.Containers = nil },
		"bad env":       func(s *sagehost.InstanceSpec) { s.Containers[0].Environment["A=B"] = "x" },
	} {
		sp := spec(t, "invalid", nil)
		mutate(&sp)
		if _, err := b.Start(context.Background(), sp); err == nil {
			t.Errorf("%s: Start succeeded", name)
		}
	}
	if hs, _ := b.List(context.Background()); len(hs) != 0 {
		t.Errorf("invalid specs left %d instances", len(hs))
	}
}

// A bad variable of a later container is found before any container
// starts.
func TestInvalidEnvSecondContainer(t *testing.T) {
	b := newBackend(t, Config{})
	sp := spec(t, "first", nil)
	second := sp.Containers[0]
	second.Hostname = "second"
	second.Environment = map[string]string{"A=B": "x"}
	second.LogPath = filepath.Join(t.TempDir(), "second.log")
	sp.Containers[0].Hostname = "first"
	sp.Containers = append(sp.Containers, second)
	_, err := b.Start(context.Background(), sp)
	if err == nil || !strings.Contains(err.Error(), "invalid environment variable") {
		t.Fatalf("Start with a bad variable in the second container: %v", err)
	}
	if _, err := os.Stat(sp.Containers[0].LogPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the first container was started (its log exists): %v", err)
	}
}

// A recorded pid that now belongs to another process (its start time
// differs) is not adopted, and not killed either.
func TestRecoverPIDReused(t *testing.T) {
	b1 := newBackend(t, Config{})
	h := start(t, b1, spec(t, "reused", nil))
	backendtest.WaitPing(t, h.Addrs[0], "")

	st := decode(t, h)
	st.Containers[0].StartTime++
	forged := *h
	forged.State, _ = json.Marshal(st)
	b2 := newBackend(t, Config{})
	if err := b2.Recover(context.Background(), &forged); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Fatalf("Recover with a reused pid: %v, want ErrInstanceNotFound", err)
	}
	if r := backendtest.Report(t, h.Addrs[0]); r.Name != "reused" {
		t.Errorf("the process was disturbed: %+v", r)
	}
}

// Recovering an instance with one dead container kills the others.
func TestRecoverKillsTheRest(t *testing.T) {
	b1 := newBackend(t, Config{})
	sp := spec(t, "pair", nil)
	second := sp.Containers[0]
	second.Hostname = "second"
	second.LogPath = filepath.Join(t.TempDir(), "second.log")
	sp.Containers = append(sp.Containers, second)
	h := start(t, b1, sp)
	st := decode(t, h)
	if st.Containers[0].Name != "container-1" || st.Containers[1].Name != "second" {
		t.Errorf("container names = %s, %s", st.Containers[0].Name, st.Containers[1].Name)
	}
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)
	syscall.Kill(st.Containers[1].PID, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b1.Wait(ctx, h.ID)

	b2 := newBackend(t, Config{})
	if err := b2.Recover(ctx, h); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Fatalf("Recover: %v, want ErrInstanceNotFound", err)
	}
	c := st.Containers[0]
	eventually(t, "the surviving container is killed", func() bool { return !alive(c.PID, c.StartTime) })
}

// When a container's main process exits, the rest of its process group is
// killed, as a container runtime would.
func TestProcessGroupDiesWithContainer(t *testing.T) {
	b := newBackend(t, Config{})
	script := filepath.Join(t.TempDir(), "model.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 600 &\necho $! > sleep.pid\nexec \"$MODEL_BINARY\" serve\n"), 0o755)
	sp := spec(t, "group", map[string]string{"MODEL_BINARY": testImage(t)})
	sp.Containers[0].Image = script
	h := start(t, b, sp)
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)
	raw, err := os.ReadFile(filepath.Join(b.cfg.StateDir, sp.ID, "primary", "work", "sleep.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	_, sleepStart, err := procStat(pid)
	if err != nil {
		t.Fatalf("the model's child is not running: %v", err)
	}
	resp, err := http.Post("http://"+h.Addrs[0]+"/invocations", "application/json", strings.NewReader(`{"testmodel":{"crash":true}}`))
	if err == nil {
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if es, err := b.Wait(ctx, h.ID); err != nil || es.ExitCode != testmodel.CrashExitCode {
		t.Fatalf("Wait = %+v, %v", es, err)
	}
	eventually(t, "the model's child is killed", func() bool { return !alive(pid, sleepStart) })
}

func TestAdoptedExitStatus(t *testing.T) {
	b1 := newBackend(t, Config{})
	h := start(t, b1, spec(t, "adoptee", nil))
	backendtest.WaitPing(t, h.Addrs[0], "")
	b2 := newBackend(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b2.Recover(ctx, h); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(decode(t, h).Containers[0].PID, syscall.SIGKILL)
	es, err := b2.Wait(ctx, h.ID)
	if err != nil || es.ExitCode != -1 || !errors.Is(es.Err, ErrExitStatusUnknown) {
		t.Errorf("Wait on an adopted instance = %+v, %v", es, err)
	}
}

func TestPortAllocation(t *testing.T) {
	// Occupy a port and give the backend a range of two blocks, the first of
	// which holds it.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	if busy < 10 || busy > 65535-20 {
		t.Skipf("port %d is too close to the ends of the range", busy)
	}
	b := newBackend(t, Config{PortMin: busy - 3, PortMax: busy + 16})
	b.mu.Lock()
	got, err := b.allocatePorts("i-1", 1)
	b.mu.Unlock()
	if err == nil && got[0] != busy+7 {
		t.Errorf("got block %d, want %d (the block of %d is busy)", got[0], busy+7, busy)
	}
	if err != nil && !strings.Contains(err.Error(), "no free block") {
		t.Errorf("allocation error: %v", err)
	}
	b.mu.Lock()
	_, err = b.allocatePorts("i-2", 1)
	b.mu.Unlock()
	if err == nil {
		t.Error("a third block was allocated from a range with one free block")
	}

	// Start fails cleanly when the range is used up.
	sp := spec(t, "noports", nil)
	if _, err := b.Start(context.Background(), sp); err == nil {
		b.Destroy(context.Background(), sp.ID)
		t.Error("Start succeeded without free ports")
	}
	b.mu.Lock()
	b.releasePorts("i-1")
	left := len(b.ports)
	b.mu.Unlock()
	if left != 0 {
		t.Errorf("ports still reserved: %d", left)
	}
}

// A restarted backend does not hand out the ports of instances it has not
// recovered yet.
func TestPortsOfUnrecoveredInstances(t *testing.T) {
	b1 := newBackend(t, Config{PortMin: DefaultPortMin, PortMax: DefaultPortMax})
	h := start(t, b1, spec(t, "holder", nil))
	b2 := newBackend(t, Config{})
	h2 := start(t, b2, spec(t, "newcomer", nil))
	if h.Addrs[0] == h2.Addrs[0] {
		t.Errorf("both instances got %s", h.Addrs[0])
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a state directory succeeded")
	}
	if _, err := New(Config{StateDir: t.TempDir(), PortMin: 100, PortMax: 105}); err == nil {
		t.Error("New with a range smaller than a block succeeded")
	}
	b, err := New(Config{StateDir: filepath.Join(t.TempDir(), "a", "b")})
	if err != nil {
		t.Fatal(err)
	}
	if b.cfg.PortMin != DefaultPortMin || b.cfg.PortMax != DefaultPortMax || b.Name() != "process" {
		t.Errorf("config = %+v", b.cfg)
	}
}

func TestProcStat(t *testing.T) {
	st, start, err := procStat(os.Getpid())
	if err != nil || start == 0 || st == 0 {
		t.Fatalf("procStat(self) = %c, %d, %v", st, start, err)
	}
	if _, _, err := procStat(1 << 30); err == nil {
		t.Error("procStat of a missing pid succeeded")
	}
}

func TestGPUsAreTheInstancesOwn(t *testing.T) {
	b := newBackend(t, Config{})
	sp := spec(t, "gpu", nil)
	sp.GPUs = []string{"1", "3"}
	h := start(t, b, sp)
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)
	if env := backendtest.Report(t, h.Addrs[0]).Env; env["CUDA_VISIBLE_DEVICES"] != "1,3" || env["NVIDIA_VISIBLE_DEVICES"] != "1,3" {
		t.Fatalf("GPU instance environment: %v", env)
	}
	// An instance without GPUs sees none.
	cpu := start(t, b, spec(t, "cpu", nil))
	backendtest.WaitPing(t, cpu.Addrs[0], "")
	if env := backendtest.Report(t, cpu.Addrs[0]).Env; env["CUDA_VISIBLE_DEVICES"] != "" || env["NVIDIA_VISIBLE_DEVICES"] != "void" {
		t.Fatalf("CPU instance environment: %v", env)
	}
}
