package bench

import (
	"strings"
	"testing"
	"time"
)

func TestSizes(t *testing.T) {
	for in, want := range map[string]int{"1KB": 1024, "100kb": 102400, "5MB": 5 << 20, "5m": 5 << 20, "100k": 102400, "512": 512, "512B": 512} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "KB", "-1", "1GB", "x"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for n, want := range map[int]string{1024: "1 KB", 102400: "100 KB", 5 << 20: "5 MB", 1000: "1000 B", 1536: "1536 B"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		85300 * time.Nanosecond:  "85.3 µs",
		-4 * time.Microsecond:    "-4.0 µs",
		1500 * time.Microsecond:  "1.50 ms",
		2500 * time.Millisecond:  "2.500 s",
		999999 * time.Nanosecond: "1000.0 µs",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if formatDelta(3*time.Microsecond) != "+3.0 µs" || formatDelta(-3*time.Microsecond) != "-3.0 µs" {
		t.Error("formatDelta signs")
	}
}

func TestShellQuote(t *testing.T) {
	got := ShellQuote([]string{"sagehost-bench", "-c", "1,16", "-sagehost-env", "GODEBUG=gctrace=1", "it's", "", "a b"})
	want := `sagehost-bench -c 1,16 -sagehost-env GODEBUG=gctrace=1 'it'\''s' '' 'a b'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func fixedResult(target string, c, size int, n int, lat time.Duration, elapsed time.Duration) *Result {
	h := NewHistogram()
	for range n {
		h.Record(lat)
	}
	return &Result{Target: target, Concurrency: c, PayloadSize: size, Elapsed: elapsed, Hist: h, Errors: map[string]uint64{}, ClientCPU: -1, ServerCPU: 0.5}
}

func TestCompare(t *testing.T) {
	cell := &Cell{Concurrency: 16, PayloadSize: KB, Results: map[string]*Result{
		Direct:    fixedResult(Direct, 16, KB, 4000, 100*time.Microsecond, time.Second),
		Nginx:     fixedResult(Nginx, 16, KB, 2000, 200*time.Microsecond, time.Second),
		SagehostT: fixedResult(SagehostT, 16, KB, 3000, 150*time.Microsecond, time.Second),
	}}
	cmp, ok := cell.Compare()
	if !ok || !cmp.HasDirect || !cmp.HasNginx {
		t.Fatalf("compare: %+v %v", cmp, ok)
	}
	if cmp.Added[0] != 50*time.Microsecond || cmp.Added[1] != 50*time.Microsecond {
		t.Errorf("added %v", cmp.Added)
	}
	if cmp.ThroughputVsDirect != 0.75 || cmp.ThroughputVsNginx != 1.5 || cmp.P50VsDirect != 1.5 || cmp.P50VsNginx != 0.75 {
		t.Errorf("ratios %+v", cmp)
	}
	delete(cell.Results, Nginx)
	cmp, ok = cell.Compare()
	if !ok || cmp.HasNginx || !cmp.HasDirect {
		t.Errorf("without nginx: %+v", cmp)
	}
	delete(cell.Results, SagehostT)
	if _, ok := cell.Compare(); ok {
		t.Error("a cell without sagehost compared")
	}
}

func testReport() *Report {
	cell := &Cell{Concurrency: 16, PayloadSize: KB, Results: map[string]*Result{
		Direct:    fixedResult(Direct, 16, KB, 4000, 100*time.Microsecond, time.Second),
		Nginx:     fixedResult(Nginx, 16, KB, 2000, 200*time.Microsecond, time.Second),
		SagehostT: fixedResult(SagehostT, 16, KB, 500, 150*time.Microsecond, time.Second),
	}}
	return &Report{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), CommandLine: "sagehost-bench -c 16", Mode: "matrix",
		Sagehost: "commit abc", Machine: Machine{CPUsOnline: "0-1", NProc: 2, CPUModel: "Test CPU", Kernel: "6.1", GoVersion: "go1.26"},
		LoadStart: "0.1 0.2 0.3", LoadEnd: "1 2 3",
		Placement: Placement{Pinned: true, ClientCPUs: "0", ServerCPUs: "1"},
		Procs:     []ProcInfo{{Name: "harness (load generator)", PID: 42, CPUs: "0", GOMAXPROCS: "1"}},
		Warmup:    time.Second, Duration: 5 * time.Second, Targets: AllTargets, Cells: []*Cell{cell},
	}
}

func TestMarkdown(t *testing.T) {
	r := testReport()
	md := r.Markdown()
	for _, want := range []string{
		"`sagehost-bench -c 16`",
		"2 CPUs online (0-1), Test CPU; Linux 6.1; go1.26",
		"load generator on CPU 0; servers (echo model, nginx, sagehost and its model process) on CPU 1",
		"| harness (load generator) | 42 | 0 | 1 |",
		"| 16 | 1 KB | direct | 4000 | 4000 | 100.0 µs | 100.0 µs | 100.0 µs | 100.0 µs | – | 50% | 125.0 µs | 0 |", // 0.5 CPU / 4000 per s
		"| 16 | 1 KB | sagehost | 500 | 500 |",
		"150.0 µs\\*", // p99.9 from 500 requests is marked
		"| 16 | 1 KB | +50.0 µs | +50.0 µs | +50.0 µs | 0.12 | 0.25 | 1.50 | 0.75 | 1.50 | 0.75 |",
		"SigV4-signed",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "ERRORS") {
		t.Error("a clean run reports errors")
	}

	r.Cells[0].Results[SagehostT].Errors["status 500"] = 3
	r.Cells[0].Results[SagehostT].ErrorSamples = []string{"status 500: \"boom\""}
	r.InProcess = true
	md = r.Markdown()
	for _, want := range []string{"**ERRORS: 3 requests failed", "### Errors", "sagehost: 3 failed (status 500: 3)", "`status 500: \"boom\"`", "| **3** |", "in-process mode"} {
		if !strings.Contains(md, want) {
			t.Errorf("report with errors lacks %q:\n%s", want, md)
		}
	}
	if r.ErrorCount() != 3 {
		t.Errorf("ErrorCount %d", r.ErrorCount())
	}
}

func TestMarkdownMemory(t *testing.T) {
	m := &MemoryResult{PID: 7, Interval: 5 * time.Second, Tolerance: 0.1,
		Samples: samples(func(int) int64 { return 20 << 20 }, 13, 5*time.Second),
		Load:    fixedResult(SagehostT, 16, KB, 100, time.Millisecond, time.Minute)}
	m.AnalyzeMemory()
	r := testReport()
	r.Mode, r.Cells, r.Memory = "memory", nil, m
	md := r.Markdown()
	for _, want := range []string{"memory check", "| 20.0 MiB | 20.0 MiB | 20.0 MiB | 20.0 MiB | +0.00 MiB/min | **flat** |", "sagehost (pid 7) under 16 clients with 1 KB bodies"} {
		if !strings.Contains(md, want) {
			t.Errorf("memory report lacks %q:\n%s", want, md)
		}
	}
}

func TestPlacementString(t *testing.T) {
	if s := (Placement{Why: "-cpus shared"}).String(); !strings.HasPrefix(s, "shared:") || !strings.Contains(s, "-cpus shared") {
		t.Error(s)
	}
}

func TestProfilePath(t *testing.T) {
	if p := profilePath("cpu.out", 1, 16, KB); p != "cpu.out" {
		t.Error(p)
	}
	if p := profilePath("/x/cpu.out", 9, 16, 5*MB); p != "/x/cpu.c16-5MB.out" {
		t.Error(p)
	}
	if p := profilePath("prof", 2, 1, 100*KB); p != "prof.c1-100KB" {
		t.Error(p)
	}
}

func TestCPUListCount(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-1": 2, "0-3,6": 5, "1,3,5-7\n": 5, "": 0, "x": 0, "3-1": 0} {
		if got := CPUListCount(in); got != want {
			t.Errorf("CPUListCount(%q) = %d, want %d", in, got, want)
		}
	}
}
