// Package fsutil holds small file-system helpers shared by sagehost's
// packages.
package fsutil

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file at path with data, so that a reader,
// or the file after a crash, has the old content or the new, never a part:
// it writes a temporary file in path's directory (named
// .<base of path>-*.tmp), gives it mode perm (exactly, not masked by the
// umask), syncs it, renames it to path and syncs the directory, best effort.
// The directory must exist. On error the temporary file is removed and path
// is left as it was.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
