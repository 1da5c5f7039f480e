package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/backendtest"
	"github.com/sagehost/sagehost/internal/testmodel"
)

// The tests in this file need a container engine (Docker, or Podman's
// service: `. .ci/podman.sh`); they skip without one, unless
// SAGEHOST_REQUIRE_ENGINE=1.

func TestConformance(t *testing.T) {
	needEngine(t)
	backendtest.Run(t, harness())
}

// spec returns a one-container instance spec of the test model.
func spec(t *testing.T, name string, env map[string]string) sagehost.InstanceSpec {
	e := map[string]string{testmodel.EnvName: name}
	for k, v := range env {
		e[k] = v
	}
	id := backendtest.NewID()
	return sagehost.InstanceSpec{
		ID: id,
		Labels: map[string]string{
			sagehost.LabelEndpoint: "ep-" + name,
			sagehost.LabelVariant:  "AllTraffic",
			sagehost.LabelInstance: id,
		},
		InstanceType: "ml.m5.large",
		Containers: []sagehost.ContainerSpec{{
			Image:       testImage,
			Environment: e,
			LogPath:     filepath.Join(t.TempDir(), name+".log"),
		}},
	}
}

func start(t *testing.T, b *Backend, sp sagehost.InstanceSpec) *sagehost.InstanceHandle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := b.Start(ctx, sp)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { destroyAll(t, sp.ID) })
	return h
}

// destroyAll removes the instance's containers whatever backend has it.
func destroyAll(t *testing.T, id string) {
	cli := testClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", labelInstance+"="+id))})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, c := range list {
		cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}

func containerID(t *testing.T, h *sagehost.InstanceHandle, i int) string {
	t.Helper()
	st, err := decodeState(h.State)
	if err != nil {
		t.Fatal(err)
	}
	return st.Containers[i].ContainerID
}

func inspect(t *testing.T, cli *client.Client, id string) container.InspectResponse {
	t.Helper()
	info, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return info
}

// waitLogCount polls a log file until line occurs n times, and fails if it
// occurs more often.
func waitLogCount(t *testing.T, path, line string, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		got := strings.Count(string(b), line)
		if got > n {
			t.Fatalf("log has %q %d times, want %d:\n%s", line, got, n, b)
		}
		if got == n {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has %q %d times, want %d:\n%s", line, got, n, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestModelDirReadOnly(t *testing.T) {
	needEngine(t)
	b := newBackend(t)
	modelDir := t.TempDir()
	os.WriteFile(filepath.Join(modelDir, "weights.bin"), []byte("w1"), 0o644)
	sp := spec(t, "reader", nil)
	sp.Containers[0].ModelDir = modelDir
	h := start(t, b, sp)
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)
	rep := backendtest.Report(t, h.Addrs[0])
	if rep.Env["SM_MODEL_DIR"] != "/opt/ml/model" || rep.ModelFileContents["weights.bin"] != "w1" {
		t.Errorf("model sees SM_MODEL_DIR %q and files %v", rep.Env["SM_MODEL_DIR"], rep.ModelFileContents)
	}
	if rep.Env["SAGEMAKER_BIND_TO_PORT"] != "8080" || rep.Env["SAGEMAKER_SAFE_PORT_RANGE"] != "23000-23999" {
		t.Errorf("platform variables: %v", rep.Env)
	}

	cli := testClient(t)
	id := containerID(t, h, 0)
	out, code := execIn(t, cli, id, "/probe", "write", "/opt/ml/model/new.txt")
	if code == 0 || !strings.Contains(out, "read-only file system") {
		t.Errorf("writing /opt/ml/model inside the container: exit %d, %q; want a read-only file system error", code, out)
	}
	out, code = execIn(t, cli, id, "/probe", "ls", "/opt/ml/model")
	if code != 0 || strings.TrimSpace(out) != "weights.bin" {
		t.Errorf("ls /opt/ml/model: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(modelDir, "new.txt")); err == nil {
		t.Error("the container wrote into the host's model directory")
	}
	var found bool
	for _, m := range inspect(t, cli, id).Mounts {
		if m.Destination == "/opt/ml/model" {
			found = true
			if m.RW {
				t.Errorf("mount %+v is read-write", m)
			}
		}
	}
	if !found {
		t.Error("no mount at /opt/ml/model")
	}
}

func TestLimitsOfInstanceType(t *testing.T) {
	needEngine(t)
	b := newBackend(t)
	h := start(t, b, spec(t, "limited", nil))
	eng, err := b.engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	info := inspect(t, testClient(t), containerID(t, h, 0))
	wantCPUs := int64(2)
	if eng.ncpu > 0 && eng.ncpu < 2 {
		wantCPUs = int64(eng.ncpu)
	}
	if info.HostConfig.NanoCPUs != wantCPUs*1e9 {
		// Podman may report the limit as a CFS quota instead.
		if q, p := info.HostConfig.CPUQuota, info.HostConfig.CPUPeriod; p == 0 || q*1e9/p != wantCPUs*1e9 {
			t.Errorf("NanoCPUs = %d, CPUQuota/CPUPeriod = %d/%d; want %d CPUs", info.HostConfig.NanoCPUs, q, p, wantCPUs)
		}
	}
	if info.HostConfig.Memory != 8<<30 {
		t.Errorf("Memory = %d, want 8 GiB", info.HostConfig.Memory)
	}

	sp := spec(t, "oddtype", nil)
	sp.InstanceType = "ml.nope.large"
	if _, err := b.Start(context.Background(), sp); err == nil || !strings.Contains(err.Error(), "ml.nope.large") {
		t.Errorf("Start with an unknown instance type: %v", err)
	}
}

func TestLabelsAndListFilter(t *testing.T) {
	needEngine(t)
	b := newBackend(t)
	sp := spec(t, "labelled", nil)
	sp.Labels[sagehost.LabelGPUs] = ""
	h := start(t, b, sp)
	if !reflect.DeepEqual(h.Labels, sp.Labels) {
		t.Errorf("handle labels %v, want %v", h.Labels, sp.Labels)
	}
	info := inspect(t, testClient(t), containerID(t, h, 0))
	for k, v := range sp.Labels {
		if info.Config.Labels[k] != v {
			t.Errorf("container label %s = %q, want %q", k, info.Config.Labels[k], v)
		}
	}
	if info.Config.Labels[LabelBackend] != "docker" || info.Config.Labels[LabelDataDir] != b.dataDir || b.dataDir == "" {
		t.Errorf("labels %v lack the backend's", info.Config.Labels)
	}
	hs, err := b.List(context.Background())
	if err != nil || len(hs) != 1 || hs[0].ID != sp.ID || !reflect.DeepEqual(hs[0].Labels, sp.Labels) {
		t.Errorf("List = %+v, %v; want only %s with its labels", hs, err, sp.ID)
	}
	// Another sagehost (another state directory) on the same engine sees
	// none of it.
	other := newBackendAt(t, t.TempDir())
	if hs, err := other.List(context.Background()); err != nil || len(hs) != 0 {
		t.Errorf("another sagehost lists %+v, %v", hs, err)
	}
	if err := other.Destroy(context.Background(), sp.ID); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("another sagehost's Destroy: %v, want ErrInstanceNotFound", err)
	}
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)

	// Reserved labels are refused.
	bad := spec(t, "reserved", nil)
	bad.Labels[LabelBackend] = "mine"
	if _, err := b.Start(context.Background(), bad); err == nil {
		t.Error("Start accepted a reserved label")
	}
}

func TestForeignContainersUntouched(t *testing.T) {
	needEngine(t)
	cli := testClient(t)
	ctx := context.Background()
	name := "sagehost-test-foreign-" + backendtest.NewID()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: testImage, Cmd: []string{"serve"},
		Labels: map[string]string{"sagehost.instance": "i-foreign"}}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	b := newBackend(t)
	hs, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if err := b.Destroy(ctx, h.ID); err != nil {
			t.Errorf("Destroy(%s): %v", h.ID, err)
		}
	}
	for _, id := range []string{"i-foreign", name, resp.ID} {
		if err := b.Destroy(ctx, id); !errors.Is(err, sagehost.ErrInstanceNotFound) {
			t.Errorf("Destroy(%s) of a foreign container: %v, want ErrInstanceNotFound", id, err)
		}
		if err := b.Recover(ctx, &sagehost.InstanceHandle{ID: id}); !errors.Is(err, sagehost.ErrInstanceNotFound) {
			t.Errorf("Recover(%s) of a foreign container: %v, want ErrInstanceNotFound", id, err)
		}
	}
	if info := inspect(t, cli, resp.ID); info.State == nil || !info.State.Running {
		t.Errorf("the foreign container was stopped: %+v", info.State)
	}
}

func TestRestartAdoptionAndLogs(t *testing.T) {
	needEngine(t)
	b1 := newBackend(t)
	sp := spec(t, "phoenix", nil)
	logPath := sp.Containers[0].LogPath
	h := start(t, b1, sp)
	backendtest.WaitPing(t, h.Addrs[0], logPath)
	backendtest.Report(t, h.Addrs[0])
	waitLogCount(t, logPath, `"phoenix" listening`, 1)
	waitLogCount(t, logPath, "POST /invocations 200", 1)
	if err := b1.Close(); err != nil { // sagehost crashed
		t.Fatalf("Close: %v", err)
	}
	backendtest.Report(t, h.Addrs[0]) // logged while no sagehost runs

	b2 := newBackend(t)
	hs, err := b2.List(context.Background())
	if err != nil || len(hs) != 1 || hs[0].ID != sp.ID || !reflect.DeepEqual(hs[0].Addrs, h.Addrs) {
		t.Fatalf("List after restart = %+v, %v", hs, err)
	}
	if err := b2.Recover(context.Background(), hs[0]); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if r := backendtest.Report(t, hs[0].Addrs[0]); r.Name != "phoenix" {
		t.Errorf("adopted instance answered as %q", r.Name)
	}
	// Every line once: the ones before the restart are not repeated, the
	// one logged meanwhile and the one after arrive.
	waitLogCount(t, logPath, "POST /invocations 200", 3)
	waitLogCount(t, logPath, `"phoenix" listening`, 1)

	// A third sagehost adopts it again, after the second stops cleanly.
	b2.Close()
	b3 := newBackend(t)
	if err := b3.Recover(context.Background(), hs[0]); err != nil {
		t.Fatalf("second Recover: %v", err)
	}
	backendtest.Report(t, hs[0].Addrs[0])
	waitLogCount(t, logPath, "POST /invocations 200", 4)
	if err := b3.Stop(context.Background(), sp.ID, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	log := waitLogCount(t, logPath, "testmodel: stopped", 1)
	if n := strings.Count(log, `"phoenix" listening`); n != 1 {
		t.Errorf("the start line is in the log %d times:\n%s", n, log)
	}
	if err := b3.Destroy(context.Background(), sp.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
}

func TestOrphansDestroyedAfterList(t *testing.T) {
	needEngine(t)
	b1 := newBackend(t)
	var ids []string
	for _, name := range []string{"orphan-a", "orphan-b"} {
		h := start(t, b1, spec(t, name, nil))
		ids = append(ids, h.ID)
	}
	b1.Close()

	b2 := newBackend(t)
	ctx := context.Background()
	hs, err := b2.List(ctx)
	if err != nil || len(hs) != 2 {
		t.Fatalf("List = %+v, %v; want the two orphans", hs, err)
	}
	for _, h := range hs {
		if err := b2.Destroy(ctx, h.ID); err != nil {
			t.Fatalf("Destroy(%s): %v", h.ID, err)
		}
	}
	for _, id := range ids {
		if cs, err := b2.containersOf(ctx, id); err != nil || len(cs) != 0 {
			t.Errorf("containers of %s after Destroy: %v, %v", id, cs, err)
		}
	}
	if hs, err := b2.List(ctx); err != nil || len(hs) != 0 {
		t.Errorf("List after Destroy = %+v, %v", hs, err)
	}
}

func TestMissingImage(t *testing.T) {
	needEngine(t)
	b := newBackend(t)
	sp := spec(t, "absent", nil)
	const image = "localhost/does-not-exist:1"
	sp.Containers[0].Image = image
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := b.Start(ctx, sp)
	if err == nil {
		t.Fatal("Start of a missing image succeeded")
	}
	t.Logf("Start: %v", err)
	if !strings.Contains(err.Error(), image) || !strings.Contains(err.Error(), "pull") {
		t.Errorf("error %q does not name the image and the pull", err)
	}
	if cs, _ := b.containersOf(ctx, sp.ID); len(cs) != 0 {
		t.Errorf("a failed Start left containers: %v", cs)
	}
	if log, _ := os.ReadFile(sp.Containers[0].LogPath); !strings.Contains(string(log), "sagehost: ") {
		t.Errorf("the failure is not in the log: %q", log)
	}
}

func TestMultiContainerPortsAndHostnames(t *testing.T) {
	needEngine(t)
	b := newBackend(t)
	sp := spec(t, "first", nil)
	sp.Containers[0].Hostname = "first"
	second := spec(t, "second", nil).Containers[0]
	second.Hostname = "second"
	sp.Containers = append(sp.Containers, second)
	h := start(t, b, sp)
	for i, want := range []struct{ name, port, safe string }{
		{"first", "8080", "23000-23999"},
		{"second", "8090", "24000-24999"},
	} {
		backendtest.WaitPing(t, h.Addrs[i], sp.Containers[i].LogPath)
		r := backendtest.Report(t, h.Addrs[i])
		if r.Name != want.name || r.Hostname != want.name || r.Env["SAGEMAKER_BIND_TO_PORT"] != want.port ||
			r.Env["SAGEMAKER_SAFE_PORT_RANGE"] != want.safe {
			t.Errorf("container %d: name %q hostname %q env %v; want %+v", i, r.Name, r.Hostname, r.Env, want)
		}
	}
}

func TestGPUAssignment(t *testing.T) {
	needEngine(t)
	if _, err := os.Stat("/dev/nvidia0"); err != nil {
		t.Skip("no NVIDIA GPU here (/dev/nvidia0 is missing): GPU assignment is only tested where one exists")
	}
	b := newBackend(t)
	sp := spec(t, "gpu", nil)
	sp.InstanceType = "ml.g5.xlarge"
	sp.GPUs = []string{"0"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := b.Start(ctx, sp)
	if err != nil {
		t.Fatalf("Start with GPU 0 (needs the NVIDIA Container Toolkit, and its CDI spec for Podman): %v", err)
	}
	t.Cleanup(func() { destroyAll(t, sp.ID) })
	backendtest.WaitPing(t, h.Addrs[0], sp.Containers[0].LogPath)
	out, code := execIn(t, testClient(t), containerID(t, h, 0), "/probe", "ls", "/dev")
	if code != 0 || !strings.Contains(out, "nvidia0") {
		t.Errorf("/dev in the container (exit %d): %s; want nvidia0", code, out)
	}
}
