package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFileAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "two" {
		t.Errorf("content %q, want two", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// The mode is perm, whatever the umask.
	other := filepath.Join(dir, "other")
	if err := WriteFileAtomic(other, nil, 0o664); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(other); err != nil || fi.Mode().Perm() != 0o664 {
		t.Errorf("mode %v, %v; want 0664", fi.Mode().Perm(), err)
	}
	// No temporary file is left.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("directory holds %d files, want 2", len(ents))
	}
	// A missing directory fails, leaving nothing.
	if err := WriteFileAtomic(filepath.Join(dir, "no", "such"), []byte("x"), 0o600); err == nil {
		t.Error("wrote into a missing directory")
	}
	// A failed rename (path is a non-empty directory) removes the
	// temporary file and leaves path alone.
	sub := filepath.Join(dir, "sub")
	os.MkdirAll(filepath.Join(sub, "x"), 0o755)
	if err := WriteFileAtomic(sub, []byte("x"), 0o600); err == nil {
		t.Error("renamed over a directory")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("after a failed rename the directory holds %d files, want 3", len(ents))
	}
}
