// Command sagehost-bench measures sagehost's InvokeEndpoint path against
// the same echo model reached directly and through nginx, on one machine in
// one run. See BENCHMARKS.md at the root of the repository.
//
// Usage:
//
//	go run ./bench/cmd/sagehost-bench [flags]                 # the full matrix
//	go run ./bench/cmd/sagehost-bench -mode memory [flags]    # RSS over time
//	go run ./bench/cmd/sagehost-bench -inprocess -c 16 -sizes 1KB -targets sagehost -cpuprofile cpu.out
//
// Run with -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sagehost/sagehost/bench"
	"github.com/sagehost/sagehost/modelserver"
)

// pinnedEnv marks a harness that re-executed itself under taskset.
const pinnedEnv = "SAGEHOST_BENCH_PINNED"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	// In-process mode: sagehost runs built-in images ("sagehost/echo") as
	// `<this executable> model-server NAME serve`, so the harness serves
	// them too.
	if len(args) > 0 && args[0] == "model-server" {
		if len(args) < 2 {
			fmt.Fprintln(stderr, "usage: sagehost-bench model-server NAME serve")
			return 2
		}
		if err := modelserver.Run(args[1], args[2:]); err != nil {
			fmt.Fprintln(stderr, "sagehost-bench model-server:", err)
			return 2
		}
		return 0
	}

	fs := flag.NewFlagSet("sagehost-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "matrix", "matrix: every target on every (clients, payload) cell; memory: sagehost alone for -mem-duration, sampling its RSS")
	conc := fs.String("c", "1,16,64", "concurrent clients (closed-loop workers), comma-separated")
	sizes := fs.String("sizes", "1KB,100KB,5MB", "payload sizes, comma-separated (1KB = 1024 bytes; at most 6MB)")
	targets := fs.String("targets", strings.Join(bench.AllTargets, ","), "targets, comma-separated: direct (the model itself), nginx (nginx in front of it), sagehost (InvokeEndpoint through sagehost)")
	warmup := fs.Duration("warmup", time.Second, "warm-up of each leg, not measured")
	duration := fs.Duration("duration", 5*time.Second, "measured time of each leg")
	cpus := fs.String("cpus", "auto", "CPU placement: pin (taskset: load generator on -client-cpus, every server on -server-cpus), shared (the OS schedules everything everywhere), auto (pin when taskset exists and there are 2+ CPUs, except with -inprocess)")
	clientCPUs := fs.String("client-cpus", "0", "CPUs of the load generator when pinned (taskset list)")
	serverCPUs := fs.String("server-cpus", "1", "CPUs of the servers (model, nginx, sagehost) when pinned (taskset list)")
	inprocess := fs.Bool("inprocess", false, "run sagehost's server.Start inside the harness (the model stays a separate process), so -cpuprofile and -memprofile profile the gateway; the load generator shares the process")
	sagehostBin := fs.String("sagehost-bin", "", "use this sagehost binary instead of building ./cmd/sagehost")
	var sagehostEnv listFlag
	fs.Var(&sagehostEnv, "sagehost-env", "KEY=VALUE added to the sagehost process's environment (repeatable), e.g. GOMAXPROCS=1 or GODEBUG=gctrace=1; it does not reach its models")
	nginxBin := fs.String("nginx", "", "nginx binary (default: nginx in PATH, else /usr/sbin/nginx)")
	nginxWorkers := fs.Int("nginx-workers", 1, "nginx worker_processes")
	nginxStreaming := fs.Bool("nginx-streaming", false, "turn nginx's request and response buffering off")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the harness during each sagehost leg's measured window (with -inprocess: the gateway path); a .cN-SIZE suffix is added when several cells run")
	memProfile := fs.String("memprofile", "", "write a heap profile of the harness after each sagehost leg (with -inprocess: the gateway)")
	perfRecord := fs.String("perf-record", "", "run `perf record -g` on the sagehost process during each sagehost leg's measured window, writing this file")
	memDuration := fs.Duration("mem-duration", 5*time.Minute, "memory mode: how long to run")
	memInterval := fs.Duration("mem-interval", 5*time.Second, "memory mode: how often to read sagehost's VmRSS")
	memTolerance := fs.Float64("mem-tolerance", 0.10, "memory mode: growth of the last window's average RSS over the first's still called flat (0.10 = 10%)")
	memC := fs.Int("mem-c", 16, "memory mode: concurrent clients")
	memSize := fs.String("mem-size", "1KB", "memory mode: payload size")
	region := fs.String("region", "us-east-1", "region requests are signed for")
	tmpDir := fs.String("tmpdir", "", "directory for the binary, configs, data and logs (default: a new temp dir, removed at the end unless -keep)")
	keep := fs.Bool("keep", false, "keep the temp dir (logs, nginx.conf, sagehost data)")
	out := fs.String("out", "", "also write the markdown report to this file")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sagehost-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	usage := func(err error) int {
		fmt.Fprintln(stderr, "sagehost-bench:", err)
		return 2
	}

	cfg := bench.Config{
		Mode: *mode, Warmup: *warmup, Duration: *duration, Region: *region,
		InProcess: *inprocess, SagehostBin: *sagehostBin, SagehostEnv: sagehostEnv,
		NginxBin: *nginxBin, NginxWorkers: *nginxWorkers, NginxStreaming: *nginxStreaming,
		CPUProfile: *cpuProfile, MemProfile: *memProfile, PerfRecord: *perfRecord,
		MemDuration: *memDuration, MemInterval: *memInterval, MemTolerance: *memTolerance, MemConcurrency: *memC,
		TmpDir: *tmpDir, Keep: *keep,
		CommandLine: bench.ShellQuote(append([]string{"sagehost-bench"}, args...)),
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	var err error
	if cfg.Concurrency, err = parseInts(*conc); err != nil {
		return usage(err)
	}
	for _, s := range splitList(*sizes) {
		n, err := bench.ParseSize(s)
		if err != nil {
			return usage(err)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if cfg.MemSize, err = bench.ParseSize(*memSize); err != nil {
		return usage(err)
	}
	cfg.Targets = splitList(*targets)
	for _, kv := range sagehostEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return usage(fmt.Errorf("-sagehost-env %q: want KEY=VALUE", kv))
		}
	}
	if cfg.SagehostBin != "" {
		if cfg.SagehostBin, err = filepath.Abs(cfg.SagehostBin); err != nil {
			return usage(err)
		}
	}

	placement, err := choosePlacement(*cpus, *clientCPUs, *serverCPUs, *inprocess)
	if err != nil {
		return usage(err)
	}
	cfg.Placement = placement
	if placement.Pinned && os.Getenv(pinnedEnv) != placement.ClientCPUs {
		// Re-execute under taskset, so that the whole harness, and the Go
		// runtime's GOMAXPROCS from its first instruction, sees only the
		// client CPUs.
		return reexecPinned(placement.ClientCPUs, stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			stop() // a second Ctrl-C ends the harness at once (servers get SIGTERM through Pdeathsig)
			fmt.Fprintln(stderr, "\nsagehost-bench: interrupted, stopping every server (Ctrl-C again to quit at once)")
		case <-finished:
		}
	}()

	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "sagehost-bench:", err)
		return 1
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(stderr, "sagehost-bench: write report:", err)
			return 1
		}
	}
	if n := rep.ErrorCount(); n > 0 {
		fmt.Fprintf(stderr, "\nsagehost-bench: ERRORS: %d requests failed; the numbers of this run are not valid (see the report's Errors section)\n", n)
		return 1
	}
	if rep.Memory != nil && !rep.Memory.Flat {
		fmt.Fprintln(stderr, "\nsagehost-bench: sagehost's memory is NOT flat over this run")
	}
	return 0
}

// choosePlacement turns -cpus into a Placement.
func choosePlacement(mode, client, server string, inprocess bool) (bench.Placement, error) {
	pin := bench.Placement{Pinned: true, ClientCPUs: client, ServerCPUs: server}
	switch mode {
	case "shared":
		return bench.Placement{Why: "-cpus shared"}, nil
	case "pin":
		if inprocess {
			return bench.Placement{}, errors.New("-cpus pin does not go with -inprocess: the gateway runs in the load generator's process")
		}
		if bench.CPUListCount(client) == 0 || bench.CPUListCount(server) == 0 {
			return bench.Placement{}, fmt.Errorf("bad CPU lists -client-cpus %q -server-cpus %q", client, server)
		}
		if _, err := bench.FindTaskset(); err != nil {
			return bench.Placement{}, err
		}
		pin.Why = "-cpus pin"
		return pin, nil
	case "auto":
		if inprocess {
			return bench.Placement{Why: "in-process mode: the gateway runs in the load generator's process"}, nil
		}
		if runtime.NumCPU() < 2 && os.Getenv(pinnedEnv) == "" {
			return bench.Placement{Why: "only one CPU"}, nil
		}
		if _, err := bench.FindTaskset(); err != nil {
			return bench.Placement{Why: "taskset (util-linux) not found"}, nil
		}
		if bench.CPUListCount(client) == 0 || bench.CPUListCount(server) == 0 {
			return bench.Placement{}, fmt.Errorf("bad CPU lists -client-cpus %q -server-cpus %q", client, server)
		}
		pin.Why = "-cpus auto"
		return pin, nil
	}
	return bench.Placement{}, fmt.Errorf("-cpus %q: want auto, pin or shared", mode)
}

// reexecPinned replaces the process with itself under taskset -c cpus.
func reexecPinned(cpus string, stderr io.Writer) int {
	ts, err := bench.FindTaskset()
	if err != nil {
		fmt.Fprintln(stderr, "sagehost-bench:", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "sagehost-bench: find own executable:", err)
		return 1
	}
	argv := append([]string{ts, "-c", cpus, exe}, os.Args[1:]...)
	env := append(os.Environ(), pinnedEnv+"="+cpus)
	err = syscall.Exec(ts, argv, env)
	fmt.Fprintln(stderr, "sagehost-bench: re-exec under taskset:", err)
	return 1
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number of clients", p)
		}
		out = append(out, n)
	}
	return out, nil
}
