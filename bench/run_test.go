package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sagehost/sagehost/modelserver"
)

func itoa(n int) string { return strconv.Itoa(n) }

// TestMain lets the test binary serve sagehost's built-in models: in
// in-process mode sagehost starts "sagehost/echo" as
// `<this executable> model-server echo serve`.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "model-server" {
		if err := modelserver.Run(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

// liveChildren returns this process's children that still run (not
// zombies).
func liveChildren() []string {
	var out []string
	for _, pid := range ChildPIDs(os.Getpid()) {
		st, err := ProcStatus(pid)
		if err == nil && !strings.HasPrefix(st["State"], "Z") {
			out = append(out, st["Name"]+" "+itoa(pid))
		}
	}
	return out
}

func checkNoChildren(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := liveChildren()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left running: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunInProcess(t *testing.T) {
	rep, err := Run(t.Context(), Config{
		Mode: "matrix", Concurrency: []int{2}, Sizes: []int{KB}, Targets: []string{SagehostT},
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, InProcess: true,
		TmpDir: t.TempDir(), CommandLine: "test", CPUProfile: filepath.Join(t.TempDir(), "cpu.out"),
	})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Cells[0].Results[SagehostT]
	if res == nil || res.Requests() == 0 || rep.ErrorCount() > 0 {
		t.Fatalf("in-process run: %+v\n%s", res, rep.Markdown())
	}
	md := rep.Markdown()
	for _, want := range []string{"in-process mode", "sagehost's echo model (sagehost leg)", "| 2 | 1 KB | sagehost |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	checkNoChildren(t)
}

func TestConfigValidate(t *testing.T) {
	good := Config{Mode: "matrix", Concurrency: []int{1}, Sizes: []int{KB}, Targets: AllTargets, Duration: time.Second}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"mode":        func(c *Config) { c.Mode = "x" },
		"target":      func(c *Config) { c.Targets = []string{"haproxy"} },
		"concurrency": func(c *Config) { c.Concurrency = []int{0} },
		"size":        func(c *Config) { c.Sizes = []int{7 * MB} },
		"duration":    func(c *Config) { c.Duration = 0 },
		"pin":         func(c *Config) { c.Placement = Placement{Pinned: true} },
		"memory in-process": func(c *Config) {
			c.Mode, c.InProcess, c.MemDuration, c.MemInterval, c.MemConcurrency, c.MemSize = "memory", true, time.Second, time.Second, 1, 1
		},
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: a bad config passed", name)
		}
	}
}

// TestRunBuiltBinary builds sagehost and runs every target and the memory
// mode briefly, as the command does.
func TestRunBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sagehost binary")
	}
	root, err := ModuleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "sagehost")
	if err := BuildSagehost(t.Context(), root, bin); err != nil {
		t.Fatal(err)
	}
	targets := []string{Direct, SagehostT}
	if _, err := FindNginx(""); err == nil {
		targets = AllTargets
	} else {
		t.Logf("nginx leg left out: %v", err)
	}
	placement := Placement{Why: "test"}
	if _, err := FindTaskset(); err == nil && runtime.NumCPU() >= 2 {
		// The servers are pinned; the test process itself is not.
		placement = Placement{Pinned: true, ClientCPUs: "0", ServerCPUs: "1"}
	}
	rep, err := Run(t.Context(), Config{
		Mode: "matrix", Concurrency: []int{2}, Sizes: []int{KB, 200 * KB}, Targets: targets,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, SagehostBin: bin,
		SagehostEnv: []string{"GOMAXPROCS=1"}, Placement: placement, TmpDir: t.TempDir(), CommandLine: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	if rep.ErrorCount() > 0 {
		t.Fatalf("errors:\n%s", md)
	}
	for _, c := range rep.Cells {
		for _, name := range targets {
			if r := c.Results[name]; r == nil || r.Requests() == 0 {
				t.Fatalf("no %s result in cell %d/%d:\n%s", name, c.Concurrency, c.PayloadSize, md)
			}
		}
		if _, ok := c.Compare(); !ok {
			t.Fatal("no comparison")
		}
	}
	for _, want := range []string{"| sagehost serve |", "1 (set by GOMAXPROCS)", "sagehost against direct"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	checkNoChildren(t)

	rep, err = Run(t.Context(), Config{
		Mode: "memory", Warmup: 50 * time.Millisecond, MemDuration: time.Second, MemInterval: 100 * time.Millisecond,
		MemTolerance: 0.5, MemConcurrency: 2, MemSize: KB, SagehostBin: bin, TmpDir: t.TempDir(), CommandLine: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Memory
	if m == nil || len(m.Samples) < 5 || m.Max <= 0 || m.Load.Requests() == 0 || rep.ErrorCount() > 0 {
		t.Fatalf("memory run:\n%s", rep.Markdown())
	}
	checkNoChildren(t)
}
