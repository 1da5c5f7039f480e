package instfiles

import (
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
