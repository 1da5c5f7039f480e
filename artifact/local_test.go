package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
)

var ctx = context.Background()

func TestFetchTarGzLocalForms(t *testing.T) {
	archive := tarGz(t,
		dir("./"),
		file("model.bin", "weights"),
		dir("code"),
		execFile("code/serve", "#!/bin/sh\n"),
		withMode(file("code/suid", "x"), 0o4755),
		file("code/inference.py", "print(1)"),
		symlink("current", "code/inference.py"),
		file("blobs/abc", "blob"),
		symlink("snapshots/v1/model.safetensors", "../../blobs/abc"),
		hardlink("copy.bin", "model.bin"),
	)
	want := map[string]string{
		"model.bin":                      "weights",
		"code":                           "dir",
		"code/serve":                     "#!/bin/sh\n",
		"code/suid":                      "x",
		"code/inference.py":              "print(1)",
		"current":                        "-> code/inference.py",
		"blobs":                          "dir",
		"blobs/abc":                      "blob",
		"snapshots":                      "dir",
		"snapshots/v1":                   "dir",
		"snapshots/v1/model.safetensors": "-> ../../blobs/abc",
		"copy.bin":                       "weights",
	}
	p := writeTemp(t, "model.tar.gz", archive)
	f := newFetcher(t)

	d1, err := f.Fetch(ctx, Source{URI: "file://" + p, DataType: DataTypeS3Object, Compression: CompressionGzip})
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, d1, want)
	if !strings.HasPrefix(d1, filepath.Join(f.cacheDir, "sha256")+"/") {
		t.Errorf("dir %s is not under the cache", d1)
	}

	// Permissions: read-only, exec kept, setuid dropped.
	for rel, perm := range map[string]os.FileMode{".": 0o555, "model.bin": 0o444, "code": 0o555, "code/serve": 0o555, "code/suid": 0o555, "code/inference.py": 0o444} {
		fi, err := os.Stat(filepath.Join(d1, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm || fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), perm)
		}
	}

	// The plain path and a relative path name the same content: same directory.
	d2, err := f.Fetch(ctx, Source{URI: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(p))
	d3, err := f.Fetch(ctx, Source{URI: "model.tar.gz", Compression: CompressionGzip})
	if err != nil {
		t.Fatal(err)
	}
	if d2 != d1 || d3 != d1 {
		t.Errorf("dirs differ: %s %s %s", d1, d2, d3)
	}
	if got := cacheDirs(t, f); len(got) != 1 {
		t.Errorf("cache holds %v, want one directory", got)
	}
}

func TestFetchLocalSingleFile(t *testing.T) {
	f := newFetcher(t)
	p := writeTemp(t, "weights.bin", []byte("raw weights"))
	d, err := f.Fetch(ctx, Source{URI: p, DataType: DataTypeS3Object, Compression: CompressionNone})
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, d, map[string]string{"weights.bin": "raw weights"})

	// No compression given: a non-gzip file is placed as is...
	d2, err := f.Fetch(ctx, Source{URI: p})
	if err != nil {
		t.Fatal(err)
	}
	if d2 != d {
		t.Errorf("auto-detected single file in %s, want %s", d2, d)
	}
	// ...and a gzip file is extracted; with None it is placed as is.
	gzPath := writeTemp(t, "m.tar.gz", tarGz(t, file("a", "A")))
	d3, err := f.Fetch(ctx, Source{URI: gzPath})
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, d3, map[string]string{"a": "A"})
	d4, err := f.Fetch(ctx, Source{URI: gzPath, Compression: CompressionNone})
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, d4); len(got) != 1 || got["m.tar.gz"] == "" {
		t.Errorf("None: tree %v, want the archive as one file", got)
	}
}

func TestFetchNotGzip(t *testing.T) {
	f := newFetcher(t)
	for name, data := range map[string][]byte{
		"plain.tar":  tarBytes(t, file("a", "A")),
		"text.txt":   []byte("hello"),
		"empty":      nil,
		"gz-not-tar": gz(t, []byte(strings.Repeat("not a tar header ", 100))),
		"truncated":  truncate(tarGz(t, file("a", strings.Repeat("x", 10000)))),
	} {
		t.Run(name, func(t *testing.T) {
			p := writeTemp(t, name, data)
			_, err := f.Fetch(ctx, Source{URI: "file://" + p, DataType: DataTypeS3Object, Compression: CompressionGzip})
			wantErr(t, err, ErrBadArchive, "is not a gzip-compressed tar archive", "file://"+p)
			assertCacheEmpty(t, f)
		})
	}
}

func truncate(b []byte) []byte { return b[:len(b)/2] }

func TestFetchLocalDir(t *testing.T) {
	src := t.TempDir()
	outside := writeTemp(t, "outside.txt", []byte("outside"))
	mk := func(rel, body string, mode os.FileMode) {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("config.json", "{}", 0o644)
	mk("sub/deep/w.bin", "w", 0o600)
	mk("code/run.sh", "#!/bin/sh", 0o755)
	os.MkdirAll(filepath.Join(src, "empty"), 0o755)
	if err := os.Symlink(outside, filepath.Join(src, "linked.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(src, "sublink")); err != nil {
		t.Fatal(err)
	}

	f := newFetcher(t)
	s, ok := SourceFromContainer(sagehost.ContainerDefinition{ModelDataUrl: src})
	if !ok || s.DataType != DataTypeS3Prefix {
		t.Fatalf("SourceFromContainer(local dir) = %+v, %v; want an S3Prefix", s, ok)
	}
	d, err := f.Fetch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, d, map[string]string{
		"config.json":        "{}",
		"sub":                "dir",
		"sub/deep":           "dir",
		"sub/deep/w.bin":     "w",
		"code":               "dir",
		"code/run.sh":        "#!/bin/sh",
		"empty":              "dir",
		"linked.txt":         "outside", // links are copied as what they point to
		"sublink":            "dir",
		"sublink/deep":       "dir",
		"sublink/deep/w.bin": "w",
	})
	if fi, _ := os.Stat(filepath.Join(d, "code/run.sh")); fi.Mode().Perm() != 0o555 {
		t.Errorf("run.sh mode %v, want 0555", fi.Mode())
	}
	// Unchanged: a cache hit. Changed: copied again.
	if d2, err := f.Fetch(ctx, Source{URI: "file://" + src + "/"}); err != nil || d2 != d {
		t.Errorf("refetch = %s, %v; want %s", d2, err, d)
	}
	wantStats(t, f, 1, 1)
	mk("config.json", `{"v":2}`, 0o644)
	d3, err := f.Fetch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if d3 == d || readTree(t, d3)["config.json"] != `{"v":2}` {
		t.Errorf("changed directory not refetched: %s", d3)
	}
	wantStats(t, f, 2, 1)

	// A loop is reported, not followed forever.
	if err := os.Symlink("..", filepath.Join(src, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(ctx, s)
	wantErr(t, err, ErrInvalidSource, "symbolic link loop")
}

func TestCacheHitAndRestart(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	p := writeTemp(t, "model.tar.gz", tarGz(t, file("a", "v1")))
	src := Source{URI: p, DataType: DataTypeS3Object, Compression: CompressionGzip}

	f := newFetcher(t, func(c *Config) { c.CacheDir = cache })
	d1, err := f.Fetch(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := f.Fetch(ctx, src)
	if err != nil || d2 != d1 {
		t.Fatalf("second fetch = %s, %v", d2, err)
	}
	wantStats(t, f, 1, 1)
	f.Close()

	// A new Fetcher on the same cache finds the index.
	f2, err := New(Config{CacheDir: cache, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	d3, err := f2.Fetch(ctx, src)
	if err != nil || d3 != d1 {
		t.Fatalf("fetch after restart = %s, %v", d3, err)
	}
	wantStats(t, f2, 0, 1)

	// Rewriting the file (new size/mtime/inode) fetches again.
	time.Sleep(10 * time.Millisecond)
	os.Remove(p)
	if err := os.WriteFile(p, tarGz(t, file("a", "v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	d4, err := f2.Fetch(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if d4 == d1 || readTree(t, d4)["a"] != "v2" {
		t.Errorf("rewritten file not refetched: %s %v", d4, readTree(t, d4))
	}
	wantStats(t, f2, 1, 1)

	// A cached directory removed by hand is fetched again.
	removeTree(d4)
	d5, err := f2.Fetch(ctx, src)
	if err != nil || d5 != d4 || readTree(t, d5)["a"] != "v2" {
		t.Errorf("fetch after removal = %s, %v", d5, err)
	}
	wantStats(t, f2, 2, 1)
}

func TestIdenticalContentSharesDir(t *testing.T) {
	f := newFetcher(t)
	data := tarGz(t, file("a", "same"))
	a := writeTemp(t, "a/model.tar.gz", data)
	b := writeTemp(t, "b/other.tar.gz", data)
	da, err := f.Fetch(ctx, Source{URI: a})
	if err != nil {
		t.Fatal(err)
	}
	db, err := f.Fetch(ctx, Source{URI: "file://" + b})
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Errorf("identical content in %s and %s", da, db)
	}
	wantStats(t, f, 2, 0)
	if got := cacheDirs(t, f); len(got) != 1 {
		t.Errorf("cache holds %v", got)
	}
	assertNoStaging(t, f)
}

func assertNoStaging(t *testing.T, f *Fetcher) {
	t.Helper()
	if ents, _ := os.ReadDir(filepath.Join(f.cacheDir, "tmp")); len(ents) != 0 {
		t.Errorf("staging leftovers: %v", ents)
	}
}

func TestUnsafeArchives(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
		kind    error
		msg     string
	}{
		{"dotdot", []entry{file("ok", "x"), file("../evil", "x")}, ErrUnsafeArchive, `"../evil" points outside`},
		{"nested dotdot", []entry{file("a/../../evil", "x")}, ErrUnsafeArchive, "points outside"},
		{"absolute", []entry{file("/tmp/sagehost-evil", "x")}, ErrUnsafeArchive, "absolute path"},
		{"symlink absolute", []entry{symlink("passwd", "/etc/passwd")}, ErrUnsafeArchive, "absolute path"},
		{"symlink dotdot", []entry{symlink("a/up", "../../outside")}, ErrUnsafeArchive, "outside the model directory"},
		{"symlink through symlink", []entry{symlink("d", "."), symlink("e", "d/..")}, ErrUnsafeArchive, `"e" -> "d/.." points outside`},
		{"write through symlink", []entry{symlink("d", "."), symlink("e", "d/.."), file("e/evil", "x")}, ErrUnsafeArchive, "outside the model directory"},
		{"hardlink dotdot", []entry{hardlink("h", "../outside")}, ErrUnsafeArchive, "hard link"},
		{"hardlink absolute", []entry{hardlink("h", "/etc/passwd")}, ErrUnsafeArchive, "hard link"},
		{"hardlink missing", []entry{hardlink("h", "nothing")}, ErrUnsafeArchive, "not a regular file earlier"},
		{"char device", []entry{special("dev", tar.TypeChar)}, ErrUnsafeArchive, "device file"},
		{"block device", []entry{special("blk", tar.TypeBlock)}, ErrUnsafeArchive, "device file"},
		{"fifo", []entry{special("fifo", tar.TypeFifo)}, ErrUnsafeArchive, "FIFO"},
		{"file over dir", []entry{dir("x"), file("x", "x")}, ErrUnsafeArchive, "directory"},
		{"gzip bomb", []entry{zeros("bomb", 64<<20)}, ErrTooLarge, "more than 1048576 bytes"},
		{"bomb over many files", []entry{zeros("a", 600<<10), zeros("b", 600<<10)}, ErrTooLarge, "more than 1048576 bytes"},
		{"too many files", manyFiles(11), ErrTooLarge, "more than 10 entries"},
		{"too many replacements", slices.Repeat([]entry{file("same", "x")}, 11), ErrTooLarge, "more than 10 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFetcher(t, func(c *Config) { c.MaxExtractedBytes = 1 << 20; c.MaxFiles = 10 })
			sandbox := t.TempDir()
			p := writeTemp(t, "model.tar.gz", tarGz(t, tc.entries...))
			_, err := f.Fetch(ctx, Source{URI: p})
			wantErr(t, err, tc.kind, tc.msg, p)
			assertCacheEmpty(t, f)
			if _, err := os.Lstat("/tmp/sagehost-evil"); err == nil {
				t.Errorf("/tmp/sagehost-evil was written")
			}
			if ents, _ := os.ReadDir(sandbox); len(ents) != 0 {
				t.Errorf("sandbox written: %v", ents)
			}
			if _, ok := f.idx.get((&location{local: true, path: p, dataType: DataTypeS3Object}).identity()); ok {
				t.Errorf("index records a failed fetch")
			}
		})
	}
}

func manyFiles(n int) []entry {
	var es []entry
	for i := range n {
		es = append(es, file(strings.Repeat("f", i+1), "x"))
	}
	return es
}

func TestArchiveLimit(t *testing.T) {
	f := newFetcher(t, func(c *Config) { c.MaxArchiveBytes = 100 })
	p := writeTemp(t, "model.tar.gz", tarGz(t, file("a", strings.Repeat("random-ish", 100))))
	_, err := f.Fetch(ctx, Source{URI: p})
	wantErr(t, err, ErrTooLarge, "more than the limit of 100")
	assertCacheEmpty(t, f)
}

func TestMissingLocal(t *testing.T) {
	f := newFetcher(t)
	p := filepath.Join(t.TempDir(), "nope.tar.gz")
	_, err := f.Fetch(ctx, Source{URI: "file://" + p})
	wantErr(t, err, ErrNotFound, `Failed to download model data from URL: "file://`+p+`". Please ensure that there is a file or directory located at the URL`, "no such file or directory")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
	assertCacheEmpty(t, f)

	// A file given as a prefix.
	_, err = f.Fetch(ctx, Source{URI: writeTemp(t, "x", []byte("x")), DataType: DataTypeS3Prefix})
	wantErr(t, err, ErrInvalidSource, "needs a directory")
}

func TestConcurrentFetchLocal(t *testing.T) {
	f := newFetcher(t)
	var es []entry
	for i := range 50 {
		es = append(es, file("f"+strings.Repeat("x", i), strings.Repeat("data", 10000)))
	}
	p := writeTemp(t, "model.tar.gz", tarGz(t, es...))
	var wg sync.WaitGroup
	dirs := make([]string, 16)
	errs := make([]error, 16)
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = f.Fetch(ctx, Source{URI: p}) })
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("fetch %d = %s, %v", i, dirs[i], errs[i])
		}
	}
	s := f.Stats()
	if s.Fetches != 1 || s.Shared+s.CacheHits != 15 {
		t.Errorf("Stats = %+v, want one fetch and 15 shared or cached", s)
	}
}

func TestCancel(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		f := newFetcher(t)
		p := writeTemp(t, "m.tar.gz", tarGz(t, file("a", "A")))
		c, cancel := context.WithCancel(ctx)
		cancel()
		_, err := f.Fetch(c, Source{URI: p})
		wantErr(t, err, context.Canceled, p)
		assertCacheEmpty(t, f)
	})

	t.Run("during extraction", func(t *testing.T) {
		// 64 MiB, stored (gzip level 0) so that building it is quick.
		chunk := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{1}).Read(chunk)
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
		tw := tar.NewWriter(zw)
		for i := range 64 {
			tw.WriteHeader(&tar.Header{Name: "part" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Mode: 0o644, Size: int64(len(chunk)), Typeflag: tar.TypeReg})
			tw.Write(chunk)
		}
		tw.Close()
		zw.Close()
		p := writeTemp(t, "big.tar.gz", buf.Bytes())
		buf = bytes.Buffer{}

		f := newFetcher(t)
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			// Cancel once extraction has written something.
			for {
				ms, _ := filepath.Glob(filepath.Join(f.cacheDir, "tmp", "stage-*", "*"))
				if len(ms) > 0 {
					cancel()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		start := time.Now()
		_, err := f.Fetch(c, Source{URI: p})
		if err == nil {
			t.Skip("extraction finished before it could be cancelled")
		}
		wantErr(t, err, context.Canceled, p)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Fetch returned %v after start", d)
		}
		f.Close() // waits for the cancelled work to clean up
		assertCacheEmpty(t, f)
		if s := f.Stats(); s.Fetches != 1 {
			t.Errorf("Stats = %+v", s)
		}
		// A later fetch still works, and when one of two callers sharing a
		// fetch leaves, the other still gets the result.
		f2 := newFetcher(t, func(cfg *Config) { cfg.CacheDir = f.cacheDir })
		c2, cancel2 := context.WithCancel(ctx)
		defer cancel2()
		left := make(chan error, 1)
		go func() {
			_, err := f2.Fetch(c2, Source{URI: p})
			left <- err
		}()
		go func() {
			// Leave once the second caller has joined and data is flowing.
			for {
				ms, _ := filepath.Glob(filepath.Join(f2.cacheDir, "tmp", "stage-*", "*"))
				if len(ms) > 0 && f2.Stats().Shared > 0 {
					cancel2()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		for {
			// Join the first caller's fetch.
			f2.mu.Lock()
			n := len(f2.inflight)
			f2.mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		d, err := f2.Fetch(ctx, Source{URI: p})
		if err != nil {
			t.Fatal(err)
		}
		if got := readTree(t, d); len(got) != 64 {
			t.Errorf("extracted %d entries, want 64", len(got))
		}
		if err := <-left; err == nil {
			t.Log("first caller finished before leaving")
		} else {
			wantErr(t, err, context.Canceled)
		}
		if s := f2.Stats(); s.Fetches != 1 {
			t.Errorf("Stats = %+v, want one fetch", s)
		}
	})

	t.Run("extraction stops while blocked reading", func(t *testing.T) {
		// Extract from a pipe that the test feeds, so the fetch is in flight
		// for as long as the test wants.
		f := newFetcher(t)
		pr, pw := io.Pipe()
		st, err := f.newStage()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		c, cancel := context.WithCancel(ctx)
		go func() {
			_, err := st.extractArchive(c, "pipe", pr)
			st.discard()
			done <- err
		}()
		data := tarGz(t, file("a", strings.Repeat("x", 100000)), file("b", "y"))
		pw.Write(data[:len(data)/2])
		cancel()
		go pw.Write(data[len(data)/2:]) // unblocks the pending read
		select {
		case err := <-done:
			wantErr(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Fatal("extraction did not stop on cancel")
		}
		pw.Close()
		assertCacheEmpty(t, f)
	})
}

func TestSourceFromContainer(t *testing.T) {
	localDir := t.TempDir()
	localFile := writeTemp(t, "m.tar.gz", []byte("x"))
	cases := []struct {
		c    sagehost.ContainerDefinition
		want Source
		ok   bool
	}{
		{sagehost.ContainerDefinition{}, Source{}, false},
		{sagehost.ContainerDefinition{ModelDataUrl: "s3://b/m.tar.gz"}, Source{"s3://b/m.tar.gz", DataTypeS3Object, CompressionGzip}, true},
		{sagehost.ContainerDefinition{ModelDataUrl: "s3://b/models/"}, Source{"s3://b/models/", DataTypeS3Prefix, CompressionNone}, true},
		{sagehost.ContainerDefinition{ModelDataUrl: localDir}, Source{localDir, DataTypeS3Prefix, CompressionNone}, true},
		{sagehost.ContainerDefinition{ModelDataUrl: "file://" + localDir}, Source{"file://" + localDir, DataTypeS3Prefix, CompressionNone}, true},
		{sagehost.ContainerDefinition{ModelDataUrl: localFile}, Source{localFile, DataTypeS3Object, CompressionGzip}, true},
		{sagehost.ContainerDefinition{ModelDataUrl: "s3://b/models/", Mode: "MultiModel"}, Source{}, false},
		{sagehost.ContainerDefinition{ModelDataSource: &sagehost.ModelDataSource{S3DataSource: &sagehost.S3DataSource{S3Uri: "s3://b/w.bin", S3DataType: "S3Object", CompressionType: "None"}}},
			Source{"s3://b/w.bin", DataTypeS3Object, CompressionNone}, true},
	}
	for _, tc := range cases {
		got, ok := SourceFromContainer(tc.c)
		if got != tc.want || ok != tc.ok {
			t.Errorf("SourceFromContainer(%+v) = %+v, %v; want %+v, %v", tc.c, got, ok, tc.want, tc.ok)
		}
	}
}

func TestInvalidSources(t *testing.T) {
	f := newFetcher(t)
	cases := []struct {
		src Source
		msg string
	}{
		{Source{}, "URL is empty"},
		{Source{URI: "https://b.s3.us-east-1.amazonaws.com/m.tar.gz"}, "http(s) URLs are not supported"},
		{Source{URI: "gs://b/m.tar.gz"}, `scheme "gs" is not supported`},
		{Source{URI: "s3:///key"}, "has no bucket"},
		{Source{URI: "s3://b/prefix", DataType: DataTypeS3Prefix}, `must end with "/"`},
		{Source{URI: "s3://b/prefix/", DataType: DataTypeS3Object}, "does not name an object"},
		{Source{URI: "s3://b/p/", DataType: DataTypeS3Prefix, Compression: CompressionGzip}, "must be None when S3DataType is S3Prefix"},
		{Source{URI: "s3://b/k", DataType: "Manifest"}, `S3DataType "Manifest" is not valid`},
		{Source{URI: "s3://b/k", Compression: "Zstd"}, `CompressionType "Zstd" is not valid`},
		{Source{URI: "file://host/x"}, "file:///abs/path"},
		{Source{URI: "file:relative"}, "file:///abs/path"},
	}
	for _, tc := range cases {
		_, err := f.Fetch(ctx, tc.src)
		wantErr(t, err, ErrInvalidSource, tc.msg)
	}
}

func TestCheckPrefixEntries(t *testing.T) {
	ok := []s3Entry{{key: "p/a", rel: "a"}, {key: "p/sub/b", rel: "sub/b"}, {key: "p/sub/deep/c", rel: "sub/deep/c"}}
	if err := checkPrefixEntries(ok, 1<<20); err != nil {
		t.Errorf("valid listing: %v", err)
	}
	long := strings.Repeat("n", 256)
	cases := []struct {
		objs []s3Entry
		msg  string
	}{
		{[]s3Entry{{key: "p/dir/", rel: "dir/"}}, "folder object"},
		{[]s3Entry{{key: "p/a//b", rel: "a//b"}}, "empty path segment"},
		{[]s3Entry{{key: "p//b", rel: "/b"}}, "empty path segment"},
		{[]s3Entry{{key: "p/./b", rel: "./b"}}, `"." path segment`},
		{[]s3Entry{{key: "p/../b", rel: "../b"}}, `".." path segment`},
		{[]s3Entry{{key: "p/a\x00b", rel: "a\x00b"}}, "NUL byte"},
		{[]s3Entry{{key: "p/" + long, rel: long}}, "longer than 255 bytes"},
		{[]s3Entry{{key: "p/weights", rel: "weights"}, {key: "p/weights/part1", rel: "weights/part1"}}, `"p/weights" is both a file and, through key "p/weights/part1", a directory`},
	}
	for _, tc := range cases {
		wantErr(t, checkPrefixEntries(tc.objs, 1<<20), ErrInvalidSource, tc.msg)
	}
	wantErr(t, checkPrefixEntries([]s3Entry{{key: "p/a", rel: "a", size: 10}, {key: "p/b", rel: "b", size: 10}}, 15), ErrTooLarge, "total 20 bytes")
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without CacheDir succeeded")
	}
	if _, err := New(Config{CacheDir: t.TempDir(), MaxFiles: -1}); err == nil {
		t.Error("New with negative limit succeeded")
	}
	// Staging leftovers of a crash are removed; complete directories stay.
	cache := t.TempDir()
	os.MkdirAll(filepath.Join(cache, "tmp", "stage-123", "half"), 0o555)
	f, err := New(Config{CacheDir: cache, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	assertCacheEmpty(t, f)
}

func TestTargetSourceStaysUnderThePrefix(t *testing.T) {
	for _, tc := range []struct{ prefix, target, want string }{
		{"s3://b/models/", "a.tar.gz", "s3://b/models/a.tar.gz"},
		{"s3://b/models", "team/a.tar.gz", "s3://b/models/team/a.tar.gz"},
		{"file:///srv/m/", "x.tar.gz", "file:///srv/m/x.tar.gz"},
	} {
		src, err := TargetSource(tc.prefix, tc.target)
		if err != nil || src.URI != tc.want || src.DataType != DataTypeS3Object || src.Compression != CompressionGzip {
			t.Errorf("%s + %s: %+v %v", tc.prefix, tc.target, src, err)
		}
	}
	for _, target := range []string{"", "/etc/passwd", "../x.tar.gz", "a/../../x.tar.gz", "a/./b"} {
		if _, err := TargetSource("file:///srv/m/", target); !errors.Is(err, ErrInvalidSource) {
			t.Errorf("target %q: %v", target, err)
		}
	}
}
