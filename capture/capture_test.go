package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counts records the hooks' calls.
type counts struct {
	mu               sync.Mutex
	written, dropped map[Key]int
	files            int
}

func (c *counts) hook(cfg *Config) {
	c.mu.Lock()
	c.written, c.dropped = map[Key]int{}, map[Key]int{}
	c.mu.Unlock()
	cfg.OnWritten = func(k Key, n int) {
		c.mu.Lock()
		c.written[k] += n
		c.files++
		c.mu.Unlock()
	}
	cfg.OnDropped = func(k Key, n int) {
		c.mu.Lock()
		c.dropped[k] += n
		c.mu.Unlock()
	}
}

func (c *counts) totals() (written, dropped, files int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.written {
		written += n
	}
	for _, n := range c.dropped {
		dropped += n
	}
	return written, dropped, c.files
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(ioDiscard{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// start returns a Writer of cfg (defaults filled in) whose hooks count
// into the returned counts; it is closed at the end of the test.
func start(t *testing.T, cfg Config, opts testOptions) (*Writer, *counts) {
	t.Helper()
	c := &counts{}
	c.hook(&cfg)
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	cfg, err := withDefaults(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(cfg, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w, c
}

func closeWriter(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

var fileNameRE = regexp.MustCompile(`^(\d{2})-(\d{2})-(\d{3})-([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\.jsonl$`)

// capturedFile is one .jsonl file read back.
type capturedFile struct {
	rel     string // "/"-separated, below the destination
	records []map[string]any
}

// parseLines parses a whole capture file: complete lines, each a JSON
// object.
func parseLines(data []byte) ([]map[string]any, error) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("file does not end with a newline (%d bytes)", len(data))
	}
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("line %d: %w", len(recs)+1, err)
		}
		recs = append(recs, m)
	}
	return recs, sc.Err()
}

// readDir reads every capture file under dir; any other file fails the
// test.
func readDir(t *testing.T, dir string) []capturedFile {
	t.Helper()
	var files []capturedFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !fileNameRE.MatchString(d.Name()) {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		recs, err := parseLines(data)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		files = append(files, capturedFile{rel: filepath.ToSlash(rel), records: recs})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

func eventID(rec map[string]any) string {
	m, _ := rec["eventMetadata"].(map[string]any)
	s, _ := m["eventId"].(string)
	return s
}

func csvRecord(dest, endpoint, variant string, tm time.Time, data string) Record {
	return Record{
		Destination: dest, Account: "000000000000", Region: "us-east-1",
		Endpoint: endpoint, Variant: variant, Time: tm,
		Input:  &Payload{ContentType: "text/csv", Data: []byte(data), Encoding: EncodingCSV},
		Output: &Payload{ContentType: "text/csv; charset=utf-8", Data: []byte("0.5"), Encoding: EncodingCSV},
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFileLayout checks paths, names and contents of file:// destinations.
func TestFileLayout(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2024, 3, 11, 12, 32, 18, 648_900_000, time.UTC)
	w, c := start(t, Config{Now: func() time.Time { return now }}, testOptions{})

	dest := "file://" + root + "/capture/"
	plain := filepath.Join(root, "plain")
	recs := []Record{
		csvRecord(dest, "ep", "AllTraffic", time.Time{}, "a"), // Now
		csvRecord(dest, "ep", "AllTraffic", time.Date(2024, 3, 11, 12, 59, 59, 999_000_000, time.UTC), "b"),
		csvRecord(dest, "ep", "AllTraffic", time.Date(2024, 3, 11, 13, 0, 0, 1_000_000, time.UTC), "c"),
		// 23:30:05.007 at UTC-5 is 04:30:05.007 UTC the next day.
		csvRecord(dest, "ep", "AllTraffic", time.Date(2024, 3, 11, 23, 30, 5, 7_000_000, time.FixedZone("EST", -5*3600)), "d"),
		csvRecord(dest, "ep", "Canary", now, "e"),
		csvRecord(plain, "other-ep", "v1", now, "f"),
	}
	recs[1].EventID = "given-event-id"
	recs[1].InferenceID = "given-inference-id"
	for _, r := range recs {
		if !w.Capture(r) {
			t.Fatal("Capture = false")
		}
	}
	closeWriter(t, w)

	got := map[string][]string{} // path without uuid -> data of records
	for _, f := range readDir(t, root) {
		m := fileNameRE.FindStringSubmatch(filepath.Base(f.rel))
		key := strings.TrimSuffix(f.rel, m[4]+".jsonl")
		for _, rec := range f.records {
			in := rec["captureData"].(map[string]any)["endpointInput"].(map[string]any)
			got[key] = append(got[key], in["data"].(string))
			if id := eventID(rec); id != "given-event-id" && !uuidRE.MatchString(id) {
				t.Errorf("eventId %q is not a UUID", id)
			}
		}
	}
	want := map[string][]string{
		"capture/ep/AllTraffic/2024/03/11/12/32-18-648-": {"a", "b"},
		"capture/ep/AllTraffic/2024/03/11/13/00-00-001-": {"c"},
		"capture/ep/AllTraffic/2024/03/12/04/30-05-007-": {"d"},
		"capture/ep/Canary/2024/03/11/12/32-18-648-":     {"e"},
		"plain/other-ep/v1/2024/03/11/12/32-18-648-":     {"f"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files:\n got %v\nwant %v", got, want)
	}
	written, dropped, files := c.totals()
	if written != 6 || dropped != 0 || files != 5 {
		t.Errorf("written %d, dropped %d, files %d; want 6, 0, 5", written, dropped, files)
	}
	k := Key{"000000000000", "us-east-1", "ep", "AllTraffic"}
	if c.written[k] != 4 {
		t.Errorf("written for %v = %d, want 4", k, c.written[k])
	}

	// The record with given ids keeps them.
	for _, f := range readDir(t, root) {
		for _, rec := range f.records {
			if eventID(rec) == "given-event-id" {
				if id := rec["eventMetadata"].(map[string]any)["inferenceId"]; id != "given-inference-id" {
					t.Errorf("inferenceId = %v", id)
				}
				return
			}
		}
	}
	t.Error("record with the given eventId not found")
}

// lineLen returns the encoded length of r.
func lineLen(t *testing.T, r Record) int {
	t.Helper()
	r.EventID = newUUID()
	var buf bytes.Buffer
	if err := appendRecord(&buf, &r); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

func TestFlushBySize(t *testing.T) {
	dir := t.TempDir()
	r := csvRecord(dir, "ep", "v", time.Now(), strings.Repeat("1,", 100))
	n := lineLen(t, r)
	w, c := start(t, Config{FlushBytes: 3 * n, FlushInterval: time.Minute}, testOptions{})
	for range 7 {
		w.Capture(r)
	}
	waitFor(t, 10*time.Second, "two files", func() bool { _, _, files := c.totals(); return files == 2 })
	files := readDir(t, dir)
	if len(files) != 2 || len(files[0].records) != 3 || len(files[1].records) != 3 {
		t.Fatalf("before Close: %d files %v", len(files), files)
	}
	closeWriter(t, w)
	if files := readDir(t, dir); len(files) != 3 {
		t.Errorf("after Close: %d files, want 3", len(files))
	}
	if written, dropped, _ := c.totals(); written != 7 || dropped != 0 {
		t.Errorf("written %d, dropped %d", written, dropped)
	}
}

func TestFlushByTime(t *testing.T) {
	dir := t.TempDir()
	const interval = 200 * time.Millisecond
	w, c := start(t, Config{FlushInterval: interval}, testOptions{})
	began := time.Now()
	w.Capture(csvRecord(dir, "ep", "v", time.Now(), "1"))
	waitFor(t, 10*time.Second, "a file", func() bool { written, _, _ := c.totals(); return written == 1 })
	elapsed := time.Since(began)
	if elapsed < interval {
		t.Errorf("file written after %v, before FlushInterval %v", elapsed, interval)
	}
	t.Logf("FlushInterval %v: file written after %v", interval, elapsed)
	if files := readDir(t, dir); len(files) != 1 || len(files[0].records) != 1 {
		t.Errorf("files: %v", files)
	}
	// A later record opens a new batch with its own age.
	w.Capture(csvRecord(dir, "ep", "v", time.Now(), "2"))
	waitFor(t, 10*time.Second, "a second file", func() bool { written, _, _ := c.totals(); return written == 2 })
}

func TestFlushIntervalCapped(t *testing.T) {
	cfg, err := withDefaults(Config{FlushInterval: time.Hour})
	if err != nil || cfg.FlushInterval != MaxFlushInterval {
		t.Errorf("FlushInterval = %v, %v", cfg.FlushInterval, err)
	}
	if _, err := New(Config{QueueSize: -1}); err == nil {
		t.Error("negative QueueSize accepted")
	}
}

func TestCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	w, c := start(t, Config{FlushInterval: time.Minute}, testOptions{})
	const n = 500
	for i := range n {
		if !w.Capture(csvRecord(dir, "ep", fmt.Sprintf("v%d", i%3), time.Now(), fmt.Sprint(i))) {
			t.Fatal("Capture = false")
		}
	}
	time.Sleep(20 * time.Millisecond)
	if files := readDir(t, dir); len(files) != 0 {
		t.Fatalf("%d files before Close", len(files))
	}
	closeWriter(t, w)
	total := 0
	for _, f := range readDir(t, dir) {
		total += len(f.records)
	}
	if written, dropped, files := c.totals(); total != n || written != n || dropped != 0 || files != 3 {
		t.Errorf("records %d, written %d, dropped %d, files %d; want %d, %d, 0, 3", total, written, dropped, files, n, n)
	}
	if w.Capture(csvRecord(dir, "ep", "v", time.Now(), "late")) {
		t.Error("Capture after Close = true")
	}
	if _, dropped, _ := c.totals(); dropped != 1 {
		t.Errorf("dropped after Close = %d, want 1", dropped)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNoHalfWrittenFiles reads the destination while files are being
// written: every .jsonl file seen is complete, and nothing else is left.
func TestNoHalfWrittenFiles(t *testing.T) {
	dir := t.TempDir()
	w, c := start(t, Config{FlushBytes: 64 << 10, FlushInterval: 10 * time.Millisecond}, testOptions{})
	stop := make(chan struct{})
	var scans, seen atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(p, ".jsonl") {
					return nil
				}
				data, err := os.ReadFile(p)
				if err != nil {
					t.Errorf("read %s: %v", p, err)
					return nil
				}
				if _, err := parseLines(data); err != nil {
					t.Errorf("%s: %v", p, err)
				}
				seen.Add(1)
				return nil
			})
			scans.Add(1)
		}
	}()
	big := strings.Repeat("9,", 20_000)
	for i := range 200 {
		w.Capture(csvRecord(dir, "ep", "v", time.Now(), big))
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	closeWriter(t, w)
	close(stop)
	wg.Wait()
	total := 0
	for _, f := range readDir(t, dir) { // fails on any non-.jsonl name
		total += len(f.records)
	}
	written, _, files := c.totals()
	if total != 200 || written != 200 {
		t.Errorf("records %d, written %d; want 200", total, written)
	}
	t.Logf("%d files, %d scans, %d files read while writing", files, scans.Load(), seen.Load())
}

// TestQueueFull blocks the Writer and checks that Capture drops and counts
// without blocking, by count and by bytes.
func TestQueueFull(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		accept int // records accepted while the Writer holds one
	}{
		{"count", Config{QueueSize: 3}, 3},
		{"bytes", Config{QueueBytes: 5000}, 2}, // records of about 2 KB
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			entered, release := make(chan struct{}, 1000), make(chan struct{})
			w, c := start(t, tc.cfg, testOptions{beforeAdd: func() {
				entered <- struct{}{}
				<-release
			}})
			r := csvRecord(dir, "ep", "v", time.Now(), strings.Repeat("x", 1500))
			if !w.Capture(r) {
				t.Fatal("first Capture = false")
			}
			<-entered // the Writer holds the first record
			for i := range tc.accept {
				if !w.Capture(r) {
					t.Fatalf("Capture %d = false", i)
				}
			}
			const extra = 1000
			began := time.Now()
			var slowest time.Duration
			for range extra {
				t0 := time.Now()
				if w.Capture(r) {
					t.Fatal("Capture into a full queue = true")
				}
				slowest = max(slowest, time.Since(t0))
			}
			t.Logf("%d Captures into a full queue: %v (slowest %v)", extra, time.Since(began), slowest)
			if slowest > 500*time.Millisecond {
				t.Errorf("a Capture into a full queue took %v", slowest)
			}
			if _, dropped, _ := c.totals(); dropped != extra {
				t.Errorf("dropped %d, want %d", dropped, extra)
			}
			close(release)
			closeWriter(t, w)
			if written, _, _ := c.totals(); written != 1+tc.accept {
				t.Errorf("written %d, want %d", written, 1+tc.accept)
			}
		})
	}
}

// TestInvalidRecords: an unusable destination or name drops the record.
func TestInvalidRecords(t *testing.T) {
	dir := t.TempDir()
	w, c := start(t, Config{}, testOptions{})
	bad := []Record{
		csvRecord("ftp://host/x", "ep", "v", time.Now(), "1"),
		csvRecord("relative", "ep", "v", time.Now(), "1"),
		csvRecord(dir, "..", "v", time.Now(), "1"),
		csvRecord(dir, "ep", "a/b", time.Now(), "1"),
		csvRecord(dir, "", "v", time.Now(), "1"),
	}
	for _, r := range bad {
		w.Capture(r)
	}
	w.Capture(csvRecord(dir, "ep", "v", time.Now(), "ok"))
	closeWriter(t, w)
	if written, dropped, _ := c.totals(); written != 1 || dropped != len(bad) {
		t.Errorf("written %d, dropped %d; want 1, %d", written, dropped, len(bad))
	}
	if files := readDir(t, dir); len(files) != 1 {
		t.Errorf("%d files", len(files))
	}
	if files := readDir(t, filepath.Dir(dir)); len(files) != 1 {
		t.Errorf("%d files next to the destination", len(files))
	}
}

// TestFileDestinationFails: a directory that cannot be created (its parent
// is a regular file, which stops root too) drops and counts after retries.
func TestFileDestinationFails(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs safeBuffer
	w, c := start(t, Config{
		FlushBytes: 1, UploadAttempts: 2,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, testOptions{retryBase: -1})
	dest := filepath.Join(root, "file", "capture")
	const n = 50
	for range n {
		w.Capture(csvRecord(dest, "ep", "v", time.Now(), "1"))
	}
	closeWriter(t, w)
	if written, dropped, _ := c.totals(); written != 0 || dropped != n {
		t.Errorf("written %d, dropped %d; want 0, %d", written, dropped, n)
	}
	// Rate-limited: one log per cause, not one per file.
	if got := strings.Count(logs.String(), "cannot write capture file"); got != 1 {
		t.Errorf("%d logs of the failure, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "not a directory") {
		t.Errorf("log does not give the cause:\n%s", logs.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestConcurrentCapture captures from many goroutines, then checks that
// every accepted record was written once.
func TestConcurrentCapture(t *testing.T) {
	dir := t.TempDir()
	w, c := start(t, Config{FlushBytes: 16 << 10, FlushInterval: 20 * time.Millisecond}, testOptions{})
	const goroutines, each = 16, 300
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := csvRecord(dir, "ep", fmt.Sprintf("v%d", g%4), time.Now(), fmt.Sprintf("%d,%d", g, i))
				r.EventID = fmt.Sprintf("%d-%d", g, i)
				if w.Capture(r) {
					accepted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	closeWriter(t, w)
	seen := map[string]int{}
	for _, f := range readDir(t, dir) {
		for _, rec := range f.records {
			seen[eventID(rec)]++
		}
	}
	written, dropped, _ := c.totals()
	if int64(written) != accepted.Load() || written+dropped != goroutines*each || len(seen) != written {
		t.Errorf("accepted %d, written %d, dropped %d, distinct ids in files %d", accepted.Load(), written, dropped, len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s written %d times", id, n)
		}
	}
}

// TestCaptureDuringClose: records accepted while Close runs are written;
// the others are counted as dropped.
func TestCaptureDuringClose(t *testing.T) {
	dir := t.TempDir()
	w, c := start(t, Config{FlushBytes: 4 << 10}, testOptions{})
	var wg sync.WaitGroup
	var accepted, attempts atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				attempts.Add(1)
				if w.Capture(csvRecord(dir, "ep", "v", time.Now(), "1")) {
					accepted.Add(1)
				} else if i > 100 {
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	closeWriter(t, w)
	wg.Wait()
	total := 0
	for _, f := range readDir(t, dir) {
		total += len(f.records)
	}
	written, dropped, _ := c.totals()
	if int64(written) != accepted.Load() || int64(total) != accepted.Load() || int64(written+dropped) != attempts.Load() {
		t.Errorf("attempts %d, accepted %d, written %d, in files %d, dropped %d",
			attempts.Load(), accepted.Load(), written, total, dropped)
	}
}

// BenchmarkCapture measures Capture with records of 1 KB going to a file
// destination, and reports how many were dropped.
func BenchmarkCapture(b *testing.B) {
	dir := b.TempDir()
	var written, dropped atomic.Int64
	w, err := New(Config{
		Logger:    quietLogger(),
		OnWritten: func(_ Key, n int) { written.Add(int64(n)) },
		OnDropped: func(_ Key, n int) { dropped.Add(int64(n)) },
	})
	if err != nil {
		b.Fatal(err)
	}
	r := csvRecord(dir, "ep", "v", time.Time{}, strings.Repeat("1,", 512))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Capture(r)
		}
	})
	b.StopTimer()
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(dropped.Load())/float64(b.N), "dropped/op")
	if written.Load()+dropped.Load() != int64(b.N) {
		b.Errorf("written %d + dropped %d != %d", written.Load(), dropped.Load(), b.N)
	}
}
