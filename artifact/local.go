package artifact

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

const localMissing = "there is a file or directory located at the URL and that sagehost can read it"

// fetchLocal fetches a local file (a tar.gz to extract, or one file) or a
// local directory (copied like an S3 prefix).
func (f *Fetcher) fetchLocal(ctx context.Context, loc *location) (string, error) {
	fi, err := os.Stat(loc.path)
	if err != nil {
		return "", localError(loc.uri, err)
	}
	if fi.IsDir() {
		return f.fetchLocalDir(ctx, loc)
	}
	if !fi.Mode().IsRegular() {
		return "", errorf(ErrInvalidSource, nil, "%q is not a regular file or a directory", loc.path)
	}
	if loc.dataType == DataTypeS3Prefix {
		return "", errorf(ErrInvalidSource, nil, "S3DataType S3Prefix needs a directory, but %q is a file; use S3Object", loc.path)
	}
	if fi.Size() > f.cfg.MaxArchiveBytes {
		return "", errorf(ErrTooLarge, nil, "model data file is %d bytes, more than the limit of %d", fi.Size(), f.cfg.MaxArchiveBytes)
	}
	fingerprint := "file " + statFingerprint(fi)
	if dir, ok := f.cached(loc, fingerprint); ok {
		return dir, nil
	}

	f.fetches.Add(1)
	f.log.Info("artifact: reading local model data", "url", loc.uri, "bytes", fi.Size())
	file, err := os.Open(loc.path)
	if err != nil {
		return "", localError(loc.uri, err)
	}
	defer file.Close()
	// Fingerprint the file we opened, which is what we read.
	if ofi, err := file.Stat(); err == nil {
		fingerprint = "file " + statFingerprint(ofi)
	}
	br := bufio.NewReader(file)
	extract := loc.compression == CompressionGzip
	if loc.compression == "" {
		extract = gzipped(br)
	}

	st, err := f.newStage()
	if err != nil {
		return "", err
	}
	var digest string
	if extract {
		digest, err = st.extractArchive(ctx, loc.uri, br)
	} else {
		digest, err = st.singleFile(ctx, filepath.Base(loc.path), br)
	}
	if err != nil {
		st.discard()
		return "", err
	}
	return f.publish(st, loc, fingerprint, digest)
}

func localError(uri string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return downloadError(ErrNotFound, uri, localMissing, err)
	case errors.Is(err, fs.ErrPermission):
		return downloadError(ErrAccessDenied, uri, localMissing, err)
	}
	return fmt.Errorf("read local model data: %w", err)
}

// statFingerprint identifies a file's state: size, modification and change
// times, inode and device.
func statFingerprint(fi os.FileInfo) string {
	s := fmt.Sprintf("size=%d mtime=%d mode=%o", fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s += fmt.Sprintf(" ino=%d dev=%d ctime=%d", st.Ino, st.Dev, ctimeNanos(st))
	}
	return s
}

// localEntry is one file or directory of a local model directory.
type localEntry struct {
	rel string // slash-separated, relative to the directory
	abs string
	fi  os.FileInfo // after following symbolic links
}

// walkLocal lists a local directory tree in lexical order, following
// symbolic links (their targets are copied, wherever they are).
func (f *Fetcher) walkLocal(ctx context.Context, loc *location) ([]localEntry, error) {
	type devIno struct{ dev, ino uint64 }
	var (
		out  []localEntry
		walk func(abs, rel string, parents map[devIno]bool) error
	)
	key := func(fi os.FileInfo) devIno {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			return devIno{uint64(st.Dev), st.Ino}
		}
		return devIno{}
	}
	walk = func(abs, rel string, parents map[devIno]bool) error {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		ents, err := os.ReadDir(abs)
		if err != nil {
			return localError(loc.uri, err)
		}
		for _, e := range ents {
			a, r := filepath.Join(abs, e.Name()), path.Join(rel, e.Name())
			fi, err := os.Stat(a)
			if err != nil {
				if _, lerr := os.Lstat(a); lerr == nil && errors.Is(err, fs.ErrNotExist) {
					return errorf(ErrInvalidSource, nil, "model data directory %q holds the broken symbolic link %q; remove it", loc.path, r)
				}
				return localError(loc.uri, err)
			}
			switch {
			case fi.IsDir():
				k := key(fi)
				if parents[k] {
					return errorf(ErrInvalidSource, nil, "model data directory %q holds a symbolic link loop at %q; remove it", loc.path, r)
				}
				out = append(out, localEntry{rel: r, abs: a, fi: fi})
				if len(out) > f.cfg.MaxFiles {
					return nil
				}
				parents[k] = true
				err := walk(a, r, parents)
				delete(parents, k)
				if err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				out = append(out, localEntry{rel: r, abs: a, fi: fi})
			default:
				return errorf(ErrInvalidSource, nil, "model data directory %q holds %q, which is not a regular file or directory; remove it", loc.path, r)
			}
			if len(out) > f.cfg.MaxFiles {
				return nil
			}
		}
		return nil
	}
	top, err := os.Stat(loc.path)
	if err != nil {
		return nil, localError(loc.uri, err)
	}
	if err := walk(loc.path, "", map[devIno]bool{key(top): true}); err != nil {
		return nil, err
	}
	if len(out) > f.cfg.MaxFiles {
		return nil, errorf(ErrTooLarge, nil, "model data directory %q holds more than %d files and directories (the limit)", loc.path, f.cfg.MaxFiles)
	}
	return out, nil
}

// fetchLocalDir copies a local directory.
func (f *Fetcher) fetchLocalDir(ctx context.Context, loc *location) (string, error) {
	ents, err := f.walkLocal(ctx, loc)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var total int64
	for _, e := range ents {
		fmt.Fprintf(h, "%q %s\n", e.rel, statFingerprint(e.fi))
		if !e.fi.IsDir() {
			total += e.fi.Size()
		}
	}
	if total > f.cfg.MaxExtractedBytes {
		return "", errorf(ErrTooLarge, nil, "model data directory %q holds %d bytes, more than the limit of %d", loc.path, total, f.cfg.MaxExtractedBytes)
	}
	fingerprint := fmt.Sprintf("dir %x", h.Sum(nil))
	if dir, ok := f.cached(loc, fingerprint); ok {
		return dir, nil
	}

	f.fetches.Add(1)
	f.log.Info("artifact: copying local model data directory", "url", loc.uri, "entries", len(ents), "bytes", total)
	st, err := f.newStage()
	if err != nil {
		return "", err
	}
	if err := st.copyLocal(ctx, loc, ents); err != nil {
		st.discard()
		return "", err
	}
	digest := st.digest()
	return f.publish(st, loc, fingerprint, digest)
}

func (s *stage) copyLocal(ctx context.Context, loc *location, ents []localEntry) error {
	for _, e := range ents {
		if err := s.addEntry(); err != nil {
			return err
		}
		if e.fi.IsDir() {
			if err := s.root.MkdirAll(e.rel, 0o755); err != nil {
				return fmt.Errorf("copy directory %q: %w", e.rel, err)
			}
			s.manifest = append(s.manifest, manifestEntry{rel: e.rel, dir: true})
			continue
		}
		exec := e.fi.Mode()&0o100 != 0
		sum, err := s.copyFile(ctx, loc, e, exec)
		if err != nil {
			return err
		}
		s.manifest = append(s.manifest, manifestEntry{rel: e.rel, exec: exec, sum: sum})
	}
	return nil
}

func (s *stage) copyFile(ctx context.Context, loc *location, e localEntry, exec bool) ([sha256.Size]byte, error) {
	in, err := os.Open(e.abs)
	if err != nil {
		return [sha256.Size]byte{}, localError(loc.uri, err)
	}
	defer in.Close()
	sum, err := s.writeFile(ctx, e.rel, io.Reader(in), exec)
	if err != nil {
		return sum, fmt.Errorf("copy %q: %w", e.rel, err)
	}
	return sum, nil
}
