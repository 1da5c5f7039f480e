package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary bytes as a tar.gz through extraction and
// commit. It must never panic, write outside the cache, leave staging
// behind, or commit a tree with a link that leaves it. Input that does not
// start like gzip is gzipped first, so that the fuzzer also explores the
// tar layer (mutated gzip streams mostly fail their own checks).
func FuzzExtract(f *testing.F) {
	seeds := [][]entry{
		{file("a", "A"), dir("d"), file("d/b", "B"), execFile("run", "#!")},
		{symlink("l", "a"), file("a", "A"), hardlink("h", "a")},
		{file("../evil", "x")},
		{file("/abs", "x")},
		{symlink("d", "."), symlink("e", "d/.."), file("e/x", "x")},
		{symlink("s", "../../etc"), file("s/passwd", "x")},
		{hardlink("h", "../x")},
		{special("c", tar.TypeChar), special("p", tar.TypeFifo)},
		{zeros("z", 1<<20)},
		{dir("x"), file("x", "x"), file("x/y", "y")},
		{file("same", "1"), file("same", "2"), symlink("same", "x")},
	}
	for _, es := range seeds {
		f.Add(tarGz(f, es...))
		f.Add(tarBytes(f, es...))
	}
	f.Add(gz(f, []byte("not a tar")))

	// Every run writes files; on a slow disk writeback throttling, not the
	// code, sets the pace. Use a tmpfs when there is one.
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "sagehost-fuzz-"); err == nil {
			base = d
			f.Cleanup(func() { removeTree(base) })
		}
	}
	if base == "" {
		base = f.TempDir()
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		sandbox, err := os.MkdirTemp(base, "run-")
		if err != nil {
			t.Fatal(err)
		}
		defer removeTree(sandbox)
		outside := filepath.Join(sandbox, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		fe, err := New(Config{
			CacheDir:          filepath.Join(sandbox, "cache"),
			MaxArchiveBytes:   1 << 20,
			MaxExtractedBytes: 256 << 10,
			MaxFiles:          64,
			Logger:            quietLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer removeTree(fe.cacheDir)
		st, err := fe.newStage()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, gzipMagic) {
			data = gz(t, data)
		}
		digest, err := st.extractArchive(context.Background(), "fuzz", bytes.NewReader(data))
		var dir string
		if err == nil {
			dir, err = st.commit(digest)
		} else {
			st.discard()
		}
		if err != nil {
			var fe *fetchError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not classified: %v", err)
			}
		}

		// Nothing outside the cache, nothing left in staging.
		ents, _ := os.ReadDir(sandbox)
		for _, e := range ents {
			if e.Name() != "cache" && e.Name() != "outside" {
				t.Fatalf("wrote %q outside the cache", e.Name())
			}
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("wrote into a sibling directory: %v", ents)
		}
		if ents, _ := os.ReadDir(filepath.Join(fe.cacheDir, "tmp")); len(ents) != 0 {
			t.Fatalf("staging left behind: %v", ents)
		}
		digests, _ := os.ReadDir(filepath.Join(fe.cacheDir, "sha256"))
		if err != nil {
			if len(digests) != 0 {
				t.Fatalf("failed extraction committed %v", digests)
			}
			return
		}
		// Every link of a committed tree resolves inside it.
		root, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			if r, err := filepath.EvalSymlinks(p); err == nil && r != root && !strings.HasPrefix(r, root+string(filepath.Separator)) {
				t.Fatalf("link %s resolves to %s, outside %s", p, r, root)
			}
			return nil
		})
	})
}
