package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// stage is a staging directory under CacheDir/tmp where one artifact is
// built before it is renamed into CacheDir/sha256/<digest>. All writes go
// through an os.Root, so nothing is ever written outside it, whatever the
// archive holds.
type stage struct {
	f        *Fetcher
	dir      string
	root     *os.Root
	files    int   // entries created
	bytes    int64 // bytes written
	manifest []manifestEntry
}

type manifestEntry struct {
	rel  string
	dir  bool
	exec bool
	sum  [sha256.Size]byte
}

func (f *Fetcher) newStage() (*stage, error) {
	dir, err := os.MkdirTemp(filepath.Join(f.cacheDir, "tmp"), "stage-")
	if err != nil {
		return nil, fmt.Errorf("create staging directory in cache: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("open staging directory: %w", err)
	}
	return &stage{f: f, dir: dir, root: root}, nil
}

// discard removes the staging directory.
func (s *stage) discard() {
	if s.root != nil {
		s.root.Close()
		s.root = nil
	}
	if err := removeTree(s.dir); err != nil {
		s.f.log.Warn("artifact: cannot remove staging directory", "path", s.dir, "err", err)
	}
}

// addEntry counts one more entry against MaxFiles.
func (s *stage) addEntry() error {
	s.files++
	if s.files > s.f.cfg.MaxFiles {
		return errorf(ErrTooLarge, nil, "model data has more than %d entries (files, directories and links; the limit); reduce the number of files or raise the limit", s.f.cfg.MaxFiles)
	}
	return nil
}

// tooLarge is the error for exceeding MaxExtractedBytes.
func (s *stage) tooLarge() error {
	return errorf(ErrTooLarge, nil, "model data extracts to more than %d bytes (the limit); use smaller model data or raise the limit", s.f.cfg.MaxExtractedBytes)
}

// writeFile creates the regular file rel (which must not exist) with the
// content of r, counting its size against MaxExtractedBytes, and returns
// the SHA-256 of the content. Parent directories are created. The caller
// counts the entry (addEntry).
func (s *stage) writeFile(ctx context.Context, rel string, r io.Reader, exec bool) ([sha256.Size]byte, error) {
	remaining := s.f.cfg.MaxExtractedBytes - s.bytes
	sum, n, err := s.createFile(ctx, rel, io.LimitReader(r, remaining+1), exec)
	s.bytes += n
	if err != nil {
		return sum, err
	}
	if n > remaining {
		return sum, s.tooLarge()
	}
	return sum, nil
}

func (s *stage) createFile(ctx context.Context, rel string, r io.Reader, exec bool) ([sha256.Size]byte, int64, error) {
	var sum [sha256.Size]byte
	if dir := path.Dir(rel); dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return sum, 0, fmt.Errorf("create directory for %q: %w", rel, err)
		}
	}
	mode := os.FileMode(0o644)
	if exec {
		mode = 0o755
	}
	out, err := s.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return sum, 0, fmt.Errorf("create %q: %w", rel, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, r})
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %q: %w", rel, cerr)
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

// digest returns the SHA-256 of the stage's manifest: every path, sorted,
// with its kind and the SHA-256 of its content.
func (s *stage) digest() string {
	sort.Slice(s.manifest, func(i, j int) bool { return s.manifest[i].rel < s.manifest[j].rel })
	h := sha256.New()
	io.WriteString(h, "sagehost-tree-v1\n")
	for _, e := range s.manifest {
		switch {
		case e.dir:
			fmt.Fprintf(h, "dir %s\n", e.rel)
		case e.exec:
			fmt.Fprintf(h, "exe %x %s\n", e.sum, e.rel)
		default:
			fmt.Fprintf(h, "file %x %s\n", e.sum, e.rel)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// commit makes the staged tree read-only, checks its symbolic links and
// renames it to CacheDir/sha256/<digest>. When that digest is already
// present, the stage is discarded and the present directory returned. The
// stage is gone after commit, whatever the outcome.
func (s *stage) commit(digest string) (string, error) {
	if dir, ok := s.f.digestDir(digest); ok {
		s.discard()
		return dir, nil
	}
	s.root.Close()
	s.root = nil
	if err := finalizeTree(s.dir); err != nil {
		s.discard()
		return "", err
	}
	final := filepath.Join(s.f.cacheDir, "sha256", digest)
	if err := os.Rename(s.dir, final); err != nil {
		s.discard()
		if dir, ok := s.f.digestDir(digest); ok {
			return dir, nil // another fetch of the same content won the race
		}
		return "", fmt.Errorf("move model data into cache: %w", err)
	}
	if err := os.Chmod(final, 0o555); err != nil {
		return "", fmt.Errorf("make model directory read-only: %w", err)
	}
	return final, nil
}

// finalizeTree sets the permissions of a finished tree below its top
// directory: regular files 0444, or 0555 when the owner could execute
// them (setuid, setgid and sticky bits dropped), directories 0555. It
// fails if a symbolic link resolves outside the tree or anything else than
// a file, directory or symbolic link is present.
func finalizeTree(top string) error {
	var dirs []string
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(top, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return checkSymlink(top, rel)
		case d.IsDir():
			if p != top {
				dirs = append(dirs, p)
			}
			return nil
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := os.FileMode(0o444)
			if fi.Mode()&0o100 != 0 {
				mode = 0o555
			}
			return os.Chmod(p, mode)
		default:
			return errorf(ErrUnsafeArchive, nil, "model data holds %q, which is not a regular file, directory or symbolic link", rel)
		}
	})
	if err != nil {
		return err
	}
	// Directories last, deepest first, so the walk could read them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// checkSymlink resolves the symbolic link rel inside top the way the kernel
// would, following further links, and fails if resolution ever leaves top.
// A link whose target is missing is fine: the kernel fails to resolve it
// too, and the tree is read-only, so it can never come to exist.
func checkSymlink(top, rel string) error {
	escape := func(target string) error {
		return errorf(ErrUnsafeArchive, nil, "symbolic link %q -> %q points outside the model directory; links in model data must stay inside it", rel, target)
	}
	first, err := os.Readlink(filepath.Join(top, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	// stack holds the resolved, real directories from top to the current
	// position; todo the components still to resolve.
	stack := splitPath(path.Dir(rel))
	todo := splitPath(first)
	if path.IsAbs(first) {
		return escape(first)
	}
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(stack) == 0 {
				return escape(first)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		p := filepath.Join(top, filepath.FromSlash(path.Join(append(stack, c)...)))
		fi, err := os.Lstat(p)
		if err != nil {
			return nil // missing or not a directory: the kernel stops here too
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			hops++
			if hops > 255 {
				return nil // a loop: the kernel gives up with ELOOP
			}
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if path.IsAbs(t) {
				return escape(first)
			}
			todo = append(splitPath(t), todo...)
			continue
		}
		if !fi.IsDir() && len(todo) > 0 {
			return nil // ENOTDIR
		}
		stack = append(stack, c)
	}
	return nil
}

// splitPath splits a slash-separated path into its non-empty components.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	if len(out) == 1 && out[0] == "." {
		return nil
	}
	return out
}

// removeTree removes a directory tree, first making its directories
// writable (model directories are read-only).
func removeTree(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, context.Cause(r.ctx)
	}
	return r.r.Read(p)
}

// hashingReader hashes and counts what passes through it and fails once
// more than limit bytes were read.
type hashingReader struct {
	r     io.Reader
	h     interface{ Write([]byte) (int, error) }
	n     int64
	limit int64
	err   error // returned once the limit is passed
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.n > r.limit {
		return n, r.err
	}
	return n, err
}
