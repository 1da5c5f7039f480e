package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entry is one member of a test archive.
type entry struct {
	name string
	body string
	typ  byte // tar.TypeReg when 0
	link string
	mode int64
	size int64 // for a zero-filled body of this size instead of body
}

func file(name, body string) entry           { return entry{name: name, body: body} }
func dir(name string) entry                  { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry      { return entry{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) entry     { return entry{name: name, typ: tar.TypeLink, link: target} }
func execFile(name, body string) entry       { return entry{name: name, body: body, mode: 0o755} }
func zeros(name string, size int64) entry    { return entry{name: name, size: size} }
func special(name string, typ byte) entry    { return entry{name: name, typ: typ} }
func withMode(e entry, mode int64) entry     { e.mode = mode; return e }
func tarGz(t testing.TB, es ...entry) []byte { return gz(t, tarBytes(t, es...)) }

func tarBytes(t testing.TB, es ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1_700_000_000, 0)}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		var body io.Reader = strings.NewReader(e.body)
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
			if e.size > 0 {
				hdr.Size = e.size
				body = io.LimitReader(zeroReader{}, e.size)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, body); err != nil {
				t.Fatalf("tar body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newFetcher returns a Fetcher with a fresh cache directory.
func newFetcher(t testing.TB, mutate ...func(*Config)) *Fetcher {
	t.Helper()
	cfg := Config{CacheDir: filepath.Join(t.TempDir(), "cache"), Logger: quietLogger()}
	for _, m := range mutate {
		m(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		f.Close()
		// Model directories are read-only; make them removable for TempDir.
		removeTree(f.cacheDir)
	})
	return f
}

// writeFile writes data to a new file under t.TempDir() and returns its path.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readTree describes a directory: file contents, "dir" for directories,
// "-> target" for symbolic links.
func readTree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel] = "dir"
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(data)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", root, err)
	}
	return out
}

func wantTree(t testing.TB, dir string, want map[string]string) {
	t.Helper()
	got := readTree(t, dir)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q = %q, want %q", dir, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected entry %q (%q)", dir, k, got[k])
		}
	}
}

// assertCacheEmpty checks that no artifact and no staging leftover is in
// the cache.
func assertCacheEmpty(t testing.TB, f *Fetcher) {
	t.Helper()
	for _, sub := range []string{"sha256", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(f.cacheDir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("cache %s/ is not empty: %v", sub, names)
		}
	}
}

// cacheDirs returns the digest directories present in the cache.
func cacheDirs(t testing.TB, f *Fetcher) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.cacheDir, "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func wantErr(t testing.TB, err error, kind error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func wantStats(t testing.TB, f *Fetcher, fetches, hits int64) {
	t.Helper()
	if s := f.Stats(); s.Fetches != fetches || s.CacheHits != hits {
		t.Errorf("Stats = %+v, want Fetches=%d CacheHits=%d", s, fetches, hits)
	}
}
