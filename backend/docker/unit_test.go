package docker

// Tests that need no container engine.

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/registry"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/internal/instfiles"
	"github.com/sagehost/sagehost/instancetype"
)

func TestGPURequests(t *testing.T) {
	if got := gpuRequests(nil, false); got != nil {
		t.Errorf("no GPUs: %+v", got)
	}
	docker := gpuRequests([]string{"0", "3"}, false)
	want := []container.DeviceRequest{{Driver: "nvidia", DeviceIDs: []string{"0", "3"}, Capabilities: [][]string{{"gpu"}}}}
	if !reflect.DeepEqual(docker, want) {
		t.Errorf("Docker: %+v, want %+v", docker, want)
	}
	podman := gpuRequests([]string{"0", "3"}, true)
	want = []container.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"nvidia.com/gpu=0", "nvidia.com/gpu=3"}}}
	if !reflect.DeepEqual(podman, want) {
		t.Errorf("Podman: %+v, want %+v", podman, want)
	}
}

func TestResources(t *testing.T) {
	b := &Backend{cfg: Config{InstanceTypes: instancetype.Lookup}}
	docker := &engineInfo{version: "28.5.2", ncpu: 2}
	sp := sagehost.InstanceSpec{InstanceType: "ml.m5.large"}
	r, err := b.resources(sp, docker)
	if err != nil || r.NanoCPUs != 2e9 || r.Memory != 8<<30 || r.DeviceRequests != nil {
		t.Errorf("ml.m5.large: %+v, %v", r, err)
	}
	// More vCPUs than the host has: capped, as Docker refuses more.
	sp.InstanceType = "ml.m5.4xlarge"
	if r, _ := b.resources(sp, docker); r.NanoCPUs != 2e9 || r.Memory != 64<<30 {
		t.Errorf("ml.m5.4xlarge on 2 CPUs: %+v", r)
	}
	if r, _ := b.resources(sp, &engineInfo{}); r.NanoCPUs != 16e9 {
		t.Errorf("ml.m5.4xlarge, host CPUs unknown: %+v", r)
	}
	sp.InstanceType = ""
	if r, err := b.resources(sp, docker); err != nil || r.NanoCPUs != 0 || r.Memory != 0 {
		t.Errorf("no instance type: %+v, %v", r, err)
	}
	sp.InstanceType = "ml.m99.large"
	if _, err := b.resources(sp, docker); err == nil || !strings.Contains(err.Error(), `unknown instance type "ml.m99.large"`) {
		t.Errorf("unknown type: %v", err)
	}

	sp = sagehost.InstanceSpec{InstanceType: "ml.g5.xlarge", GPUs: []string{"1"}}
	if r, err := b.resources(sp, docker); err != nil || len(r.DeviceRequests) != 1 || r.DeviceRequests[0].Driver != "nvidia" {
		t.Errorf("GPU on Docker: %+v, %v", r, err)
	}
	if r, err := b.resources(sp, &engineInfo{podman: true, version: "5.4.0"}); err != nil ||
		len(r.DeviceRequests) != 1 || !reflect.DeepEqual(r.DeviceRequests[0].DeviceIDs, []string{"nvidia.com/gpu=1"}) {
		t.Errorf("GPU on Podman 5.4: %+v, %v", r, err)
	}
	if _, err := b.resources(sp, &engineInfo{podman: true, version: "4.3.1"}); err == nil || !strings.Contains(err.Error(), "Podman 5.4") {
		t.Errorf("GPU on Podman 4.3: %v, want a refusal", err)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"5.4.0", true}, {"5.4", true}, {"5.10.1", true}, {"6.0.0", true}, {"v5.4.2-rc1", true},
		{"5.3.2", false}, {"4.9.4", false}, {"", false}, {"dev", false},
	} {
		if got := versionAtLeast(tc.v, 5, 4); got != tc.want {
			t.Errorf("versionAtLeast(%q, 5, 4) = %v", tc.v, got)
		}
	}
}

func TestEnviron(t *testing.T) {
	c := sagehost.ContainerSpec{Environment: map[string]string{
		"A":                      "1",
		"SAGEMAKER_BIND_TO_PORT": "9999", // the platform's value wins
	}}
	want := []string{"A=1", "SAGEMAKER_BIND_TO_PORT=8080", "SAGEMAKER_SAFE_PORT_RANGE=23000-23999"}
	if got := environ(c, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("environ = %v, want %v", got, want)
	}
	c.ModelDir = "/somewhere"
	want = []string{"A=1", "SAGEMAKER_BIND_TO_PORT=8090", "SAGEMAKER_SAFE_PORT_RANGE=24000-24999", "SM_MODEL_DIR=/opt/ml/model"}
	if got := environ(c, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("environ of the second container = %v, want %v", got, want)
	}
}

func TestExitStatusOf(t *testing.T) {
	for code, want := range map[int]sagehost.ExitStatus{
		0:   {ExitCode: 0},
		3:   {ExitCode: 3},
		128: {ExitCode: 128},
		137: {ExitCode: 137, Signal: "killed"},
		143: {ExitCode: 143, Signal: "terminated"},
		255: {ExitCode: 255},
	} {
		if got := exitStatusOf(code); got != want {
			t.Errorf("exitStatusOf(%d) = %+v, want %+v", code, got, want)
		}
	}
}

func TestCheckSpec(t *testing.T) {
	b := &Backend{}
	ok := sagehost.InstanceSpec{ID: "i-1", Labels: map[string]string{sagehost.LabelInstance: "i-1"},
		Containers: []sagehost.ContainerSpec{{Image: "example.com/model:1", Environment: map[string]string{"A": "b=c"}}}}
	if err := b.checkSpec(ok); err != nil {
		t.Errorf("a good spec: %v", err)
	}
	for name, mutate := range map[string]func(*sagehost.InstanceSpec){
		"bad id":         func(s *sagehost.InstanceSpec) { s.ID = "../x" },
		"no containers":  func(s *sagehost.InstanceSpec) { s.Containers = nil },
		"no image":       func(s *sagehost.InstanceSpec) { s.Containers[0].Image = " " },
		"reserved label": func(s *sagehost.InstanceSpec) { s.Labels = map[string]string{"sagehost.docker.state": "x"} },
		"datadir label":  func(s *sagehost.InstanceSpec) { s.Labels = map[string]string{LabelDataDir: "x"} },
		"bad env name":   func(s *sagehost.InstanceSpec) { s.Containers[0].Environment = map[string]string{"A=B": "1"} },
		"missing data":   func(s *sagehost.InstanceSpec) { s.Containers[0].ModelDir = "/nonexistent/sagehost-model" },
	} {
		s := ok
		s.Containers = append([]sagehost.ContainerSpec(nil), ok.Containers...)
		mutate(&s)
		if err := b.checkSpec(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := &state{StateHeader: instfiles.StateHeader{Version: stateVersion, Backend: Name, ID: "i-1", Labels: map[string]string{"k": "v"},
		InstanceType: "ml.m5.large", Created: time.Unix(1, 0).UTC()},
		Containers: []containerState{{Name: "primary", Image: "img", Port: 8080, HostPort: 30001, ContainerID: "abc"}}}
	h := st.handle()
	if h.ID != "i-1" || h.Backend != "docker" || !reflect.DeepEqual(h.Addrs, []string{"127.0.0.1:30001"}) || h.Labels["k"] != "v" {
		t.Errorf("handle = %+v", h)
	}
	back, err := decodeState(h.State)
	if err != nil || !reflect.DeepEqual(back, st) {
		t.Errorf("decoded %+v, %v; want %+v", back, err, st)
	}
	lv, err := st.labelValue()
	if err != nil || strings.Contains(lv, "abc") {
		t.Errorf("label value %q, %v: must not hold container ids", lv, err)
	}
	if st.Containers[0].ContainerID != "abc" {
		t.Error("labelValue changed the state")
	}
	if _, err := decodeState([]byte(`{"Version":1,"Backend":"process","ID":"x","Containers":[{}]}`)); err == nil {
		t.Error("decoded another backend's state")
	}
	// Containers labelled by a sagehost that still kept the GPUs in the
	// state are adopted all the same.
	if _, err := decodeState([]byte(`{"Version":1,"Backend":"docker","ID":"x","GPUs":["0"],"Containers":[{}]}`)); err != nil {
		t.Errorf("state with GPUs: %v", err)
	}
}

// logLines formats engine log lines.
func logLines(lines ...string) []byte {
	return []byte(strings.Join(lines, "\n") + "\n")
}

func TestLogWriterResumesWithoutDuplicates(t *testing.T) {
	dir := t.TempDir()
	logPath, posPath := filepath.Join(dir, "logs", "c.log"), filepath.Join(dir, "state", "c.logpos")
	const t1, t2, t3 = "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.5Z", "2026-01-02T03:04:06Z"

	lw, err := openLogWriter(logPath, posPath)
	if err != nil {
		t.Fatal(err)
	}
	if !lw.since().IsZero() {
		t.Fatalf("a new log starts at %v", lw.since())
	}
	lw.resume()
	out, errw := lw.stream(), lw.stream()
	out.Write(logLines(t1+" one", t1+" two"))
	errw.Write([]byte(t2 + " thr"))
	errw.Write([]byte("ee\n" + t2 + " \n")) // "three", then an empty line
	out.Write([]byte(t2 + " four-partial"))
	lw.flush()
	lw.close()

	// A new sagehost: the engine replays from t2 on (inclusive), with the
	// partial line completed by then, and goes on.
	lw, err = openLogWriter(logPath, posPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := lw.since().Format(time.RFC3339Nano); got != t2 {
		t.Fatalf("resumes at %s, want %s", got, t2)
	}
	lw.resume()
	out = lw.stream()
	out.Write(logLines(t2+" three", t2+" ", t2+" four-partial", t2+" five", t3+" six"))
	lw.close()

	// And once more, replaying whole seconds as Podman does.
	lw, _ = openLogWriter(logPath, posPath)
	lw.resume()
	lw.stream().Write(logLines(t1+" one", t1+" two", t2+" three", t2+" ", t2+" four-partial", t2+" five", t3+" six", t3+" seven"))
	lw.close()

	// A long line in two pieces, each with its timestamp.
	lw, _ = openLogWriter(logPath, posPath)
	lw.resume()
	s := lw.stream()
	s.Write(logLines(t3+" six", t3+" seven"))
	s.Write([]byte(t3 + " long-"))
	s.Write([]byte("2026-01-02T03:04:07Z line\n"))
	lw.close()

	got, _ := os.ReadFile(logPath)
	want := "one\ntwo\nthree\n\nfour-partialfive\nsix\nseven\nlong-line\n"
	if string(got) != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestSplitTimestamp(t *testing.T) {
	for _, tc := range []struct {
		line, text string
		ok         bool
	}{
		{"2026-01-02T03:04:05.123456789Z hello world\n", "hello world\n", true},
		{"2026-01-02T03:04:05Z \n", "\n", true},
		{"2026-01-02T03:04:05Z\n", "\n", true},
		{"not a timestamp\n", "not a timestamp\n", false},
	} {
		_, text, ok := splitTimestamp([]byte(tc.line))
		if string(text) != tc.text || ok != tc.ok {
			t.Errorf("splitTimestamp(%q) = %q, %v", tc.line, text, ok)
		}
	}
	if _, ok := decodePosition(logPosition{ts: time.Unix(5, 7), n: 3}.encode()); !ok {
		t.Error("position does not round-trip")
	}
	if len(logPosition{ts: time.Now(), n: 1 << 30}.encode()) != posRecordSize {
		t.Error("position record is not of fixed size")
	}
}

func TestRegistryAuth(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	ctx := context.Background()
	if a, err := registryAuth(ctx, "registry.example.com/team/model:1"); a != nil || err != nil {
		t.Errorf("without a config: %+v, %v", a, err)
	}
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfg := `{"auths": {
		"registry.example.com": {"auth": "` + enc("alice:s3cret:with:colons") + `"},
		"https://index.docker.io/v1/": {"auth": "` + enc("bob:hub") + `"},
		"token.example.com": {"identitytoken": "tok"}
	}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]*registry.AuthConfig{
		"registry.example.com/team/model:1": {Username: "alice", Password: "s3cret:with:colons", ServerAddress: "registry.example.com"},
		"ubuntu:22.04":                      {Username: "bob", Password: "hub", ServerAddress: "docker.io"},
		"token.example.com/m":               {IdentityToken: "tok", ServerAddress: "token.example.com"},
		"other.example.com/m":               nil,
		"localhost/sagehost-testmodel:1":    nil,
	} {
		got, err := registryAuth(ctx, ref)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("registryAuth(%s) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	// A credential helper that is missing is an error, reported (the pull
	// then goes on anonymously).
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore": "sagehost-test-missing-helper"}`), 0o600)
	if _, err := registryAuth(ctx, "registry.example.com/m"); err == nil {
		t.Error("a missing credential helper went unnoticed")
	}
}

func TestNoEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := New(ctx, Config{Host: "unix:///nonexistent/sagehost-test.sock", StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("New without an engine: %v", err)
	}
	defer b.Close()
	if err := b.Available(ctx); err == nil || !strings.Contains(err.Error(), "cannot reach the container engine at unix:///nonexistent/sagehost-test.sock") {
		t.Errorf("Available: %v", err)
	}
	sp := sagehost.InstanceSpec{ID: "i-1", InstanceType: "ml.m5.large",
		Containers: []sagehost.ContainerSpec{{Image: "example.com/model:1", LogPath: filepath.Join(t.TempDir(), "c.log")}}}
	if _, err := b.Start(ctx, sp); err == nil || !strings.Contains(err.Error(), "cannot reach the container engine") {
		t.Errorf("Start: %v", err)
	}
	if log, _ := os.ReadFile(sp.Containers[0].LogPath); !strings.Contains(string(log), "cannot reach the container engine") {
		t.Errorf("the log does not say why the start failed: %q", log)
	}
	if _, err := b.List(ctx); err == nil {
		t.Error("List without an engine succeeded")
	}
	if _, err := New(ctx, Config{}); err == nil {
		t.Error("New without a state directory succeeded")
	}
	if _, err := New(ctx, Config{StateDir: t.TempDir(), PortMin: 5, PortMax: 4}); err == nil {
		t.Error("New with a bad port range succeeded")
	}
}
