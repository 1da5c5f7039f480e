package instfiles

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sagehost/sagehost"
)

func TestContainerNames(t *testing.T) {
	got := ContainerNames([]sagehost.ContainerSpec{{Hostname: "pre"}, {Hostname: "pre"}, {Hostname: "bad_name"}, {}})
	want := []string{"pre", "container-2", "container-3", "container-4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerNames = %v, want %v", got, want)
	}
	// A hostname that is a later container's generated name.
	got = ContainerNames([]sagehost.ContainerSpec{{Hostname: "container-2"}, {}, {Hostname: "container-3"}})
	want = []string{"container-2", "container-3", "container-4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerNames = %v, want %v", got, want)
	}
	if got := ContainerNames([]sagehost.ContainerSpec{{}}); got[0] != "primary" {
		t.Errorf("lone container: %v", got)
	}
}

func TestRemoveAllReadOnlyTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inst")
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o444)
	os.Chmod(filepath.Join(dir, "a", "b"), 0o555)
	os.Chmod(filepath.Join(dir, "a"), 0o555)
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{"i-0a1b2c3d4e5f60718": true, "": false, "../x": false, "a/b": false, ".hidden": false} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}

func TestCheckSpec(t *testing.T) {
	ok := sagehost.InstanceSpec{ID: "i-1", Containers: []sagehost.ContainerSpec{
		{Environment: map[string]string{"A": "b=c"}}, {Environment: map[string]string{"B": ""}}}}
	if err := CheckSpec(ok); err != nil {
		t.Errorf("a good spec: %v", err)
	}
	for name, mutate := range map[string]func(*sagehost.InstanceSpec){
		"bad id":         func(s *sagehost.InstanceSpec) { s.ID = "../x" },
		"no containers":  func(s *sagehost.InstanceSpec) { s.Containers = nil },
		"empty env name": func(s *sagehost.InstanceSpec) { s.Containers[1].Environment = map[string]string{"": "1"} },
		"= in env name":  func(s *sagehost.InstanceSpec) { s.Containers[1].Environment = map[string]string{"A=B": "1"} },
		"NUL in name":    func(s *sagehost.InstanceSpec) { s.Containers[1].Environment = map[string]string{"A\x00": "1"} },
		"NUL in value":   func(s *sagehost.InstanceSpec) { s.Containers[1].Environment = map[string]string{"A": "1\x002"} },
	} {
		s := ok
		s.Containers = append([]sagehost.ContainerSpec(nil), ok.Containers...)
		mutate(&s)
		if err := CheckSpec(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAppendLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "a", "primary.log")
	if err := AppendLine(path, "one"); err != nil {
		t.Fatal(err)
	}
	f, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if err := AppendLine(path, "three"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one\ntwo\nthree\n" {
		t.Errorf("log = %q", got)
	}
}

func TestExitLatch(t *testing.T) {
	l := NewExitLatch(2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Wait(ctx); err != context.Canceled {
		t.Errorf("Wait before any exit, ctx canceled: %v", err)
	}
	l.Exited(sagehost.ExitStatus{ExitCode: 3})
	select {
	case <-l.All():
		t.Fatal("All closed with a container still running")
	default:
	}
	l.Exited(sagehost.ExitStatus{ExitCode: 137, Signal: "killed"})
	<-l.All()
	// The first exit is the instance's.
	if es, err := l.Wait(context.Background()); err != nil || es.ExitCode != 3 {
		t.Errorf("Wait = %+v, %v; want code 3", es, err)
	}
}

func TestCheckHandle(t *testing.T) {
	for _, tc := range []struct {
		h    *sagehost.InstanceHandle
		want string
	}{
		{&sagehost.InstanceHandle{ID: "i-1", Backend: "process"}, ""},
		{&sagehost.InstanceHandle{ID: "i-1"}, ""},
		{nil, "process backend: recover: no instance handle"},
		{&sagehost.InstanceHandle{Backend: "process"}, "process backend: recover: no instance handle"},
		{&sagehost.InstanceHandle{ID: "i-1", Backend: "docker"}, `process backend: cannot recover instance i-1 of backend "docker"`},
	} {
		err := CheckHandle("process", tc.h)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("CheckHandle(%+v) = %v, want %q", tc.h, err, tc.want)
		}
	}
}
