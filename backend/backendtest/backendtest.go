// Package backendtest is the conformance suite that every sagehost.Backend
// runs: the process backend always, the container backends where their
// runtime is available. It drives the backend with real instances of the
// test model (internal/testmodel) and checks the Backend contract: start,
// reach /ping and /invocations, logs, Stop, Destroy, Wait on exits and
// crashes, bad images, port separation, and adoption after a restart of
// sagehost.
//
// Beyond the interface's doc comments the suite holds backends to two
// points that sagehost relies on: the model does not inherit sagehost's
// environment, and Destroy also removes an instance that List returns but
// that the backend does not track (how orphans are reaped after a crash).
package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/internal/testmodel"
)

// Harness adapts a backend to the suite.
type Harness struct {
	// New returns a fresh backend. Called twice in one test it must give
	// backends over the same state (the same state directory, the same
	// container runtime labels), which is how the suite plays a restart
	// of sagehost.
	New func(t *testing.T) sagehost.Backend
	// Image is the image that runs internal/testmodel (for the process
	// backend: the test binary itself).
	Image string
	// Env is extra environment every container needs (e.g. to make the test
	// binary act as the model).
	Env map[string]string
	// Kill, if set, kills the first container of an instance with SIGKILL
	// behind the backend's back. Without it the crash subtests only use the
	// model's crash knob.
	Kill func(t *testing.T, h *sagehost.InstanceHandle)
}

// Deadlines: generous, as the suite must pass on a loaded machine. The suite
// never asserts how long something took.
const (
	startDeadline = 60 * time.Second
	exitDeadline  = 60 * time.Second
	stopTimeout   = 20 * time.Second
)

// CanaryEnv is set in the test process during the suite; no model may see it.
const CanaryEnv = "SAGEHOST_SECRET_CANARY"

// Run runs the conformance suite against the harness's backend.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Image == "" {
		t.Fatal("backendtest: Harness needs New and Image")
	}
	s := &suite{h: h}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"StartPingInvoke", s.testStartPingInvoke},
		{"Logs", s.testLogs},
		{"StopGraceful", s.testStopGraceful},
		{"StopKillsAfterTimeout", s.testStopKillsAfterTimeout},
		{"Destroy", s.testDestroy},
		{"ExitAtStart", s.testExitAtStart},
		{"BadImage", s.testBadImage},
		{"TwoInstancesDifferentPorts", s.testTwoInstances},
		{"MultiContainer", s.testMultiContainer},
		{"UnknownInstance", s.testUnknownInstance},
		{"WaitContext", s.testWaitContext},
		{"Crash", s.testCrash},
		{"Kill9", s.testKill9},
		{"RestartRecover", s.testRestartRecover},
		{"RecoverKilled", s.testRecoverKilled},
		{"DestroyUntracked", s.testDestroyUntracked},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	h Harness
}

var stateDirs sync.Map // *testing.T -> state directory

// StateDir returns a state directory for t: a new temporary directory the
// first time, the same one when called again in the same test, so that a
// second backend over it plays a restart of sagehost.
func StateDir(t *testing.T) string {
	t.Helper()
	if dir, ok := stateDirs.Load(t); ok {
		return dir.(string)
	}
	dir := t.TempDir()
	stateDirs.Store(t, dir)
	t.Cleanup(func() { stateDirs.Delete(t) })
	return dir
}

// NewID returns a fresh instance id like "i-0a1b2c3d4e5f60718".
func NewID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "i-" + hex.EncodeToString(b)[:17]
}

// spec returns a one-container instance spec of the test model named name,
// with extra environment env.
func (s *suite) spec(t *testing.T, name string, env map[string]string) sagehost.InstanceSpec {
	id := NewID()
	return sagehost.InstanceSpec{
		ID: id,
		Labels: map[string]string{
			sagehost.LabelAccount:    "123456789012",
			sagehost.LabelRegion:     "us-east-1",
			sagehost.LabelEndpoint:   "ep-" + name,
			sagehost.LabelVariant:    "AllTraffic",
			sagehost.LabelDeployment: "d-1",
			sagehost.LabelInstance:   id,
		},
		InstanceType: "ml.m5.large",
		Containers:   []sagehost.ContainerSpec{s.container(t, id, name, env)},
	}
}

func (s *suite) container(t *testing.T, id, name string, env map[string]string) sagehost.ContainerSpec {
	e := map[string]string{testmodel.EnvName: name}
	for k, v := range s.h.Env {
		e[k] = v
	}
	for k, v := range env {
		e[k] = v
	}
	return sagehost.ContainerSpec{
		Image:       s.h.Image,
		Environment: e,
		// A directory that does not exist yet: the backend creates it.
		LogPath: filepath.Join(t.TempDir(), "logs", id, name+".log"),
	}
}

// start starts spec on b and destroys it when the test ends.
func (s *suite) start(t *testing.T, b sagehost.Backend, spec sagehost.InstanceSpec) *sagehost.InstanceHandle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	h, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start(%s): %v", spec.ID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
		defer cancel()
		if err := b.Destroy(ctx, spec.ID); err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
			t.Errorf("cleanup: Destroy(%s): %v", spec.ID, err)
		}
	})
	if h == nil || h.ID != spec.ID || h.Backend != b.Name() {
		t.Fatalf("Start returned handle %+v, want ID %s and Backend %s", h, spec.ID, b.Name())
	}
	if len(h.Addrs) != len(spec.Containers) {
		t.Fatalf("handle has %d addrs, want one per container (%d)", len(h.Addrs), len(spec.Containers))
	}
	for _, a := range h.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			t.Fatalf("handle addr %q: %v", a, err)
		}
	}
	if !reflect.DeepEqual(h.Labels, spec.Labels) {
		t.Errorf("handle labels = %v, want %v", h.Labels, spec.Labels)
	}
	return h
}

var client = &http.Client{Timeout: 30 * time.Second}

// WaitPing polls GET /ping on addr until it answers 200, failing t when it
// has not after a minute; the failure shows the log at logPath, if not "".
func WaitPing(t *testing.T, addr, logPath string) {
	t.Helper()
	deadline := time.Now().Add(startDeadline)
	var last string
	for {
		resp, err := client.Get("http://" + addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			if logPath == "" {
				t.Fatalf("%s never answered /ping with 200 (last: %s)", addr, last)
			}
			t.Fatalf("%s never answered /ping with 200 (last: %s); log:\n%s", addr, last, readLog(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// invoke posts body to /invocations on addr.
func invoke(t *testing.T, addr, contentType, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/invocations", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s/invocations: %v", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s/invocations: reading answer: %v", addr, err)
	}
	return resp, b
}

// Report invokes the test model on addr and decodes its report, failing t
// unless it answers 200.
func Report(t *testing.T, addr string) testmodel.Report {
	t.Helper()
	resp, body := invoke(t, addr, "application/json", `{"x":1}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s/invocations = %s: %s", addr, resp.Status, body)
	}
	var rep testmodel.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decoding report %q: %v", body, err)
	}
	return rep
}

// crash asks the model on addr to exit(3) without answering.
func crash(t *testing.T, addr string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/invocations", strings.NewReader(`{"testmodel":{"crash":true}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("crash knob: the model answered %s", resp.Status)
	}
}

// waitExit waits for the instance to exit.
func waitExit(t *testing.T, b sagehost.Backend, id string) sagehost.ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	es, err := b.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait(%s): %v", id, err)
	}
	return es
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// waitLog polls the log file until it contains every one of want.
func waitLog(t *testing.T, path string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(exitDeadline)
	for {
		log := readLog(path)
		missing := ""
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s lacks %q; it holds:\n%s", path, missing, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func listed(t *testing.T, b sagehost.Backend, id string) *sagehost.InstanceHandle {
	t.Helper()
	hs, err := b.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, h := range hs {
		if h.ID == id {
			return h
		}
	}
	return nil
}

func isKilled(es sagehost.ExitStatus) bool {
	return es.Signal == "killed" || es.ExitCode == 137
}

func (s *suite) testStartPingInvoke(t *testing.T) {
	t.Setenv(CanaryEnv, "must-not-leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
	b := s.h.New(t)
	modelDir := t.TempDir()
	os.MkdirAll(filepath.Join(modelDir, "code"), 0o755)
	os.WriteFile(filepath.Join(modelDir, "model.txt"), []byte("weights v1"), 0o644)
	os.WriteFile(filepath.Join(modelDir, "code", "inference.py"), []byte("print('hi')\n"), 0o644)

	spec := s.spec(t, "alpha", map[string]string{"TESTMODEL_COLOR": "blue"})
	spec.Containers[0].ModelDir = modelDir
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)

	resp, body := invoke(t, h.Addrs[0], "text/csv", "1,2,3", map[string]string{
		"Accept":                         "application/json",
		testmodel.HeaderCustomAttributes: "trace=1",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke = %s: %s", resp.Status, body)
	}
	if got := resp.Header.Get(testmodel.HeaderCustomAttributes); got != "echo:trace=1" {
		t.Errorf("custom attributes answer = %q, want echo:trace=1", got)
	}
	var rep testmodel.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	if rep.Name != "alpha" || rep.Body != "1,2,3" || rep.ContentType != "text/csv" {
		t.Errorf("report name/body/content type = %q %q %q", rep.Name, rep.Body, rep.ContentType)
	}
	if rep.Env["TESTMODEL_COLOR"] != "blue" {
		t.Errorf("model environment did not arrive: %v", rep.Env)
	}
	if got := rep.Env["SAGEMAKER_BIND_TO_PORT"]; got != strconv.Itoa(rep.Port) || got == "" {
		t.Errorf("SAGEMAKER_BIND_TO_PORT = %q, model listens on %d", got, rep.Port)
	}
	if got := rep.Env["SAGEMAKER_SAFE_PORT_RANGE"]; !regexp.MustCompile(`^\d+-\d+$`).MatchString(got) {
		t.Errorf("SAGEMAKER_SAFE_PORT_RANGE = %q", got)
	}
	if rep.Env["SM_MODEL_DIR"] == "" {
		t.Errorf("SM_MODEL_DIR not set: %v", rep.Env)
	}
	if want := []string{"code/inference.py", "model.txt"}; !reflect.DeepEqual(rep.ModelFiles, want) {
		t.Errorf("model files = %v, want %v", rep.ModelFiles, want)
	}
	if got := rep.ModelFileContents["model.txt"]; got != "weights v1" {
		t.Errorf("model.txt = %q", got)
	}
	for _, name := range []string{CanaryEnv, "AWS_SECRET_ACCESS_KEY"} {
		if slices.Contains(rep.EnvNames, name) {
			t.Errorf("the model inherited %s from sagehost's environment", name)
		}
	}
	if l := listed(t, b, h.ID); l == nil {
		t.Errorf("List lacks %s", h.ID)
	} else if !reflect.DeepEqual(l.Labels, spec.Labels) || !reflect.DeepEqual(l.Addrs, h.Addrs) {
		t.Errorf("List has %+v, want labels %v and addrs %v", l, spec.Labels, h.Addrs)
	}
}

func (s *suite) testLogs(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "logger", nil)
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	Report(t, h.Addrs[0])
	waitLog(t, spec.Containers[0].LogPath, `"logger" listening`, "POST /invocations 200")
}

func (s *suite) testStopGraceful(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "stopper", nil)
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)

	// Several waiters are all released.
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	type result struct {
		es  sagehost.ExitStatus
		err error
	}
	results := make(chan result, 3)
	for range 3 {
		go func() {
			es, err := b.Wait(ctx, h.ID)
			results <- result{es, err}
		}()
	}
	if err := b.Stop(ctx, h.ID, stopTimeout); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Fatalf("Wait: %v", r.err)
		}
		if r.es.ExitCode != 0 || r.es.Signal != "" {
			t.Errorf("after SIGTERM the model exited with %+v, want code 0", r.es)
		}
	}
	waitLog(t, spec.Containers[0].LogPath, "testmodel: stopped")
	// Wait on an exited instance returns at once; Stop again is harmless.
	waitExit(t, b, h.ID)
	if err := b.Stop(ctx, h.ID, stopTimeout); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func (s *suite) testStopKillsAfterTimeout(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "stubborn", map[string]string{testmodel.EnvIgnoreSIGTERM: "1"})
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	if err := b.Stop(ctx, h.ID, 200*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if es := waitExit(t, b, h.ID); !isKilled(es) {
		t.Errorf("exit = %+v, want killed", es)
	}
	waitLog(t, spec.Containers[0].LogPath, "ignoring SIGTERM")
}

func (s *suite) testDestroy(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "doomed", nil)
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	waited := make(chan error, 1)
	go func() {
		_, err := b.Wait(ctx, h.ID)
		waited <- err
	}()
	if err := b.Destroy(ctx, h.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := <-waited; err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Wait during Destroy: %v", err)
	}
	if listed(t, b, h.ID) != nil {
		t.Errorf("List still has %s after Destroy", h.ID)
	}
	if _, err := b.Wait(ctx, h.ID); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Wait after Destroy: %v, want ErrInstanceNotFound", err)
	}
	if err := b.Destroy(ctx, h.ID); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("second Destroy: %v, want ErrInstanceNotFound", err)
	}
	if _, err := os.Stat(spec.Containers[0].LogPath); err != nil {
		t.Errorf("Destroy removed the log: %v", err)
	}
	if _, err := client.Get("http://" + h.Addrs[0] + "/ping"); err == nil {
		t.Errorf("%s still answers after Destroy", h.Addrs[0])
	}
}

func (s *suite) testExitAtStart(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "quitter", map[string]string{testmodel.EnvExitAtStart: "7"})
	h := s.start(t, b, spec)
	if es := waitExit(t, b, h.ID); es.ExitCode != 7 {
		t.Errorf("exit = %+v, want code 7", es)
	}
	waitLog(t, spec.Containers[0].LogPath, testmodel.ExitAtStartLine)
}

func (s *suite) testBadImage(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "ghost", nil)
	image := "/nonexistent/sagehost-no-such-image-" + NewID()
	spec.Containers[0].Image = image
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	h, err := b.Start(ctx, spec)
	if err == nil {
		b.Destroy(ctx, spec.ID)
		t.Fatalf("Start with image %s returned %+v", image, h)
	}
	if !strings.Contains(err.Error(), image) {
		t.Errorf("error %q does not name the image %s", err, image)
	}
	if listed(t, b, spec.ID) != nil {
		t.Errorf("a failed Start left %s in List", spec.ID)
	}
	if _, err := b.Wait(ctx, spec.ID); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Wait after failed Start: %v, want ErrInstanceNotFound", err)
	}
	// The id can be used again.
	spec.Containers[0].Image = s.h.Image
	h = s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
}

func (s *suite) testTwoInstances(t *testing.T) {
	b := s.h.New(t)
	s1, s2 := s.spec(t, "one", nil), s.spec(t, "two", nil)
	h1, h2 := s.start(t, b, s1), s.start(t, b, s2)
	if h1.Addrs[0] == h2.Addrs[0] {
		t.Fatalf("both instances got %s", h1.Addrs[0])
	}
	WaitPing(t, h1.Addrs[0], s1.Containers[0].LogPath)
	WaitPing(t, h2.Addrs[0], s2.Containers[0].LogPath)
	if r := Report(t, h1.Addrs[0]); r.Name != "one" {
		t.Errorf("%s answered as %q, want one", h1.Addrs[0], r.Name)
	}
	if r := Report(t, h2.Addrs[0]); r.Name != "two" {
		t.Errorf("%s answered as %q, want two", h2.Addrs[0], r.Name)
	}
	// Starting an id twice fails.
	if _, err := b.Start(context.Background(), s1); err == nil {
		t.Errorf("second Start of %s succeeded", s1.ID)
	}
}

func (s *suite) testMultiContainer(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "first", nil)
	spec.Containers[0].Hostname = "first"
	second := s.container(t, spec.ID, "second", nil)
	second.Hostname = "second"
	spec.Containers = append(spec.Containers, second)
	h := s.start(t, b, spec)
	if h.Addrs[0] == h.Addrs[1] {
		t.Fatalf("both containers got %s", h.Addrs[0])
	}
	for i, name := range []string{"first", "second"} {
		WaitPing(t, h.Addrs[i], spec.Containers[i].LogPath)
		if r := Report(t, h.Addrs[i]); r.Name != name {
			t.Errorf("container %d answered as %q, want %s", i, r.Name, name)
		}
	}
	// The instance has exited when one of its containers has.
	crash(t, h.Addrs[1])
	if es := waitExit(t, b, h.ID); es.ExitCode != testmodel.CrashExitCode {
		t.Errorf("exit = %+v, want code %d", es, testmodel.CrashExitCode)
	}
}

func (s *suite) testUnknownInstance(t *testing.T) {
	b := s.h.New(t)
	ctx := context.Background()
	id := NewID()
	if _, err := b.Wait(ctx, id); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Wait: %v, want ErrInstanceNotFound", err)
	}
	if err := b.Stop(ctx, id, time.Second); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Stop: %v, want ErrInstanceNotFound", err)
	}
	if err := b.Destroy(ctx, id); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Destroy: %v, want ErrInstanceNotFound", err)
	}
	if err := b.Recover(ctx, &sagehost.InstanceHandle{ID: id, Backend: b.Name()}); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Errorf("Recover: %v, want ErrInstanceNotFound", err)
	}
}

func (s *suite) testWaitContext(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "patient", nil)
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if es, err := b.Wait(ctx, h.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on a running instance = %+v, %v; want the context's error", es, err)
	}
}

func (s *suite) testCrash(t *testing.T) {
	b := s.h.New(t)
	spec := s.spec(t, "crasher", nil)
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	crash(t, h.Addrs[0])
	if es := waitExit(t, b, h.ID); es.ExitCode != testmodel.CrashExitCode {
		t.Errorf("exit = %+v, want code %d", es, testmodel.CrashExitCode)
	}
	waitLog(t, spec.Containers[0].LogPath, "crashing as asked")
}

func (s *suite) testKill9(t *testing.T) {
	if s.h.Kill == nil {
		t.Skip("the harness has no Kill")
	}
	b := s.h.New(t)
	spec := s.spec(t, "victim", nil)
	h := s.start(t, b, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	s.h.Kill(t, h)
	if es := waitExit(t, b, h.ID); !isKilled(es) {
		t.Errorf("exit = %+v, want killed", es)
	}
}

func (s *suite) testRestartRecover(t *testing.T) {
	b1 := s.h.New(t)
	spec := s.spec(t, "survivor", nil)
	h := s.start(t, b1, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)

	b2 := s.h.New(t) // sagehost restarted
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	found := listed(t, b2, h.ID)
	if found == nil {
		t.Fatalf("the new backend does not list %s", h.ID)
	}
	if !reflect.DeepEqual(found.Labels, spec.Labels) || !reflect.DeepEqual(found.Addrs, h.Addrs) || found.Backend != b2.Name() {
		t.Errorf("List after restart has %+v, want labels %v, addrs %v", found, spec.Labels, h.Addrs)
	}
	if err := b2.Recover(ctx, found); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if err := b2.Recover(ctx, found); err != nil {
		t.Fatalf("second Recover (a no-op): %v", err)
	}
	if r := Report(t, found.Addrs[0]); r.Name != "survivor" {
		t.Errorf("adopted instance answered as %q", r.Name)
	}

	waited := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := b2.Wait(ctx, h.ID)
			waited <- err
		}()
	}
	if err := b2.Stop(ctx, h.ID, stopTimeout); err != nil {
		t.Fatalf("Stop of the adopted instance: %v", err)
	}
	for range 2 {
		if err := <-waited; err != nil {
			t.Errorf("Wait on the adopted instance: %v", err)
		}
	}
	if err := b2.Destroy(ctx, h.ID); err != nil {
		t.Fatalf("Destroy of the adopted instance: %v", err)
	}
	if listed(t, b2, h.ID) != nil || listed(t, b1, h.ID) != nil {
		t.Errorf("%s still listed after Destroy", h.ID)
	}
}

func (s *suite) testRecoverKilled(t *testing.T) {
	b1 := s.h.New(t)
	spec := s.spec(t, "lost", nil)
	h := s.start(t, b1, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)
	if s.h.Kill != nil {
		s.h.Kill(t, h)
	} else {
		crash(t, h.Addrs[0])
	}
	waitExit(t, b1, h.ID)

	b2 := s.h.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	if err := b2.Recover(ctx, h); !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Fatalf("Recover of a dead instance: %v, want ErrInstanceNotFound", err)
	}
	if found := listed(t, b2, h.ID); found != nil {
		if err := b2.Recover(ctx, found); !errors.Is(err, sagehost.ErrInstanceNotFound) {
			t.Errorf("Recover of the listed dead instance: %v, want ErrInstanceNotFound", err)
		}
	}
	if err := b2.Destroy(ctx, h.ID); err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
		t.Fatalf("Destroy of the dead instance: %v", err)
	}
	if listed(t, b2, h.ID) != nil {
		t.Errorf("dead instance %s still listed after Destroy", h.ID)
	}
}

func (s *suite) testDestroyUntracked(t *testing.T) {
	b1 := s.h.New(t)
	spec := s.spec(t, "orphan", nil)
	h := s.start(t, b1, spec)
	WaitPing(t, h.Addrs[0], spec.Containers[0].LogPath)

	b2 := s.h.New(t) // a restarted sagehost reaps what it does not want
	ctx, cancel := context.WithTimeout(context.Background(), exitDeadline)
	defer cancel()
	if err := b2.Destroy(ctx, h.ID); err != nil {
		t.Fatalf("Destroy of an untracked instance: %v", err)
	}
	waitExit(t, b1, h.ID) // its process is gone
	if listed(t, b2, h.ID) != nil {
		t.Errorf("%s still listed after Destroy", h.ID)
	}
	if _, err := client.Get("http://" + h.Addrs[0] + "/ping"); err == nil {
		t.Errorf("%s still answers after Destroy", h.Addrs[0])
	}
}
