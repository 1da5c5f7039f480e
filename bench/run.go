package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EndpointName is the endpoint the harness creates in sagehost.
const EndpointName = "bench"

// Config is one harness run.
type Config struct {
	// Mode is "matrix" (every target on every cell) or "memory" (sagehost
	// only, one long run, RSS sampled).
	Mode        string
	Concurrency []int
	Sizes       []int
	// Targets is a subset of AllTargets.
	Targets  []string
	Warmup   time.Duration
	Duration time.Duration
	Region   string

	Placement Placement
	// InProcess runs sagehost's server.Start in this process.
	InProcess bool
	// SagehostBin is a sagehost binary to use; empty builds one.
	SagehostBin string
	// SagehostEnv is added to the sagehost process's environment.
	SagehostEnv []string
	// NginxBin is the nginx to run; empty finds one.
	NginxBin       string
	NginxWorkers   int
	NginxStreaming bool

	// CPUProfile and MemProfile are written around each sagehost leg (a
	// cell suffix is added when the matrix has more than one cell).
	CPUProfile, MemProfile string
	// PerfRecord runs `perf record -g` on sagehost during each sagehost leg.
	PerfRecord string

	MemDuration    time.Duration
	MemInterval    time.Duration
	MemTolerance   float64
	MemConcurrency int
	MemSize        int

	// TmpDir holds binaries, configs, data and logs; empty makes one,
	// which is removed at the end unless Keep.
	TmpDir string
	Keep   bool
	// CommandLine is shown in the report.
	CommandLine string
	// Progress receives one line per leg (nil for none).
	Progress io.Writer
}

func (c *Config) has(target string) bool { return slices.Contains(c.Targets, target) }

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch c.Mode {
	case "matrix":
		if len(c.Concurrency) == 0 || len(c.Sizes) == 0 || len(c.Targets) == 0 {
			return errors.New("matrix mode needs at least one concurrency, payload size and target")
		}
		for _, t := range c.Targets {
			if !slices.Contains(AllTargets, t) {
				return fmt.Errorf("unknown target %q: want %s", t, strings.Join(AllTargets, ", "))
			}
		}
		for _, n := range c.Concurrency {
			if n < 1 {
				return fmt.Errorf("concurrency %d: want at least 1", n)
			}
		}
		for _, s := range c.Sizes {
			if s < 1 || s > 6*MB {
				return fmt.Errorf("payload size %d: want 1 byte to 6 MB (InvokeEndpoint's limit)", s)
			}
		}
		if c.Duration <= 0 {
			return errors.New("duration must be more than 0")
		}
	case "memory":
		if c.InProcess {
			return errors.New("memory mode measures the sagehost process's RSS: it does not run with -inprocess")
		}
		if c.MemDuration <= 0 || c.MemInterval <= 0 || c.MemConcurrency < 1 || c.MemSize < 1 {
			return errors.New("memory mode needs a positive duration, interval, concurrency and payload size")
		}
	default:
		return fmt.Errorf("mode %q: want matrix or memory", c.Mode)
	}
	if c.Warmup < 0 {
		return errors.New("warm-up must not be negative")
	}
	if c.Placement.Pinned && (c.Placement.ClientCPUs == "" || c.Placement.ServerCPUs == "") {
		return errors.New("pinned placement needs client and server CPU lists")
	}
	return nil
}

// run holds what one Run started.
type run struct {
	cfg      Config
	report   *Report
	dir      string
	cleanups []func()
	bin      string
	targets  map[string]Target
	sagehost *Sagehost
	acct     Account
	// serverPIDs are the processes that serve each target (for CPU use).
	serverPIDs map[string][]int
}

func (r *run) onExit(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

// Run performs a harness run and returns its report. Every process it
// starts is stopped before it returns, also when ctx is cancelled (Ctrl-C).
// A report is returned with a nil error even when requests failed: check
// Report.ErrorCount.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.NginxWorkers <= 0 {
		cfg.NginxWorkers = 1
	}
	if cfg.Mode == "memory" {
		cfg.Targets = []string{SagehostT}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, targets: map[string]Target{}, acct: NewAccount(), serverPIDs: map[string][]int{}}
	r.report = &Report{
		Started: time.Now(), CommandLine: cfg.CommandLine, Mode: cfg.Mode, InProcess: cfg.InProcess,
		Machine: DescribeMachine(), LoadStart: LoadAvg(), Placement: cfg.Placement,
		Warmup: cfg.Warmup, Duration: cfg.Duration, Targets: cfg.Targets,
	}
	defer func() {
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i]()
		}
	}()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case "matrix":
		err = r.matrix(ctx)
	case "memory":
		err = r.memory(ctx)
	}
	r.report.LoadEnd = LoadAvg()
	return r.report, err
}

// setup builds sagehost and starts the servers the targets need.
func (r *run) setup(ctx context.Context) error {
	cfg := r.cfg
	r.dir = cfg.TmpDir
	if r.dir == "" {
		d, err := os.MkdirTemp("", "sagehost-bench-")
		if err != nil {
			return fmt.Errorf("temp dir: %w", err)
		}
		r.dir = d
		if !cfg.Keep {
			r.onExit(func() { os.RemoveAll(d) })
		}
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if cfg.Keep {
		r.onExit(func() { r.progress("kept %s (binaries, configs, data, logs)", r.dir) })
	}
	serverCPUs := ""
	if cfg.Placement.Pinned {
		serverCPUs = cfg.Placement.ServerCPUs
	}

	root, rootErr := ModuleRoot(ctx)
	needBin := cfg.has(Direct) || cfg.has(Nginx) || (cfg.has(SagehostT) && !cfg.InProcess)
	switch {
	case !needBin:
	case cfg.SagehostBin != "":
		r.bin = cfg.SagehostBin
		r.report.Sagehost = "binary " + cfg.SagehostBin + " (given with -sagehost-bin)"
	default:
		if rootErr != nil {
			return rootErr
		}
		r.bin = filepath.Join(r.dir, "bin", "sagehost")
		r.progress("building %s from %s", r.bin, root)
		if err := BuildSagehost(ctx, root, r.bin); err != nil {
			return err
		}
		r.report.Sagehost = "built by the harness (go build -o TMP/bin/sagehost ./cmd/sagehost)"
	}
	if rootErr == nil {
		if rev := GitDescribe(ctx, root); rev != "" {
			if r.report.Sagehost == "" {
				r.report.Sagehost = "in-process"
			}
			r.report.Sagehost = "commit " + rev + ", " + r.report.Sagehost
		}
	}
	if cfg.InProcess {
		r.report.Sagehost += "; gateway in-process (server.Start in the harness)"
	}

	self := ProcInfo{Name: "harness (load generator)", PID: os.Getpid(), GOMAXPROCS: strconv.Itoa(runtime.GOMAXPROCS(0))}
	if cfg.InProcess {
		self.Name = "harness (load generator + sagehost gateway)"
	}
	if st, err := ProcStatus(os.Getpid()); err == nil {
		self.CPUs = st["Cpus_allowed_list"]
	}
	r.report.Procs = append(r.report.Procs, self)
	addProc := func(name string, p *Proc) {
		info := ProcInfo{Name: name, PID: p.PID(), GOMAXPROCS: GoMaxProcsOf(p.PID(), p.Env)}
		if st, err := ProcStatus(p.PID()); err == nil {
			info.CPUs = st["Cpus_allowed_list"]
		}
		r.report.Procs = append(r.report.Procs, info)
	}

	var echoAddr string
	if cfg.has(Direct) || cfg.has(Nginx) {
		p, addr, err := StartEcho(ctx, r.bin, r.dir, serverCPUs)
		if err != nil {
			return err
		}
		r.onExit(func() {
			if err := p.Stop(10 * time.Second); err != nil {
				r.progress("warning: %v", err)
			}
		})
		echoAddr = addr
		addProc("echo model (direct and nginx legs)", p)
		r.serverPIDs[Direct] = []int{p.PID()}
		r.serverPIDs[Nginx] = []int{p.PID()}
		r.targets[Direct] = Target{Name: Direct, URL: "http://" + addr + "/invocations"}
	}
	if cfg.has(Nginx) {
		bin, err := FindNginx(cfg.NginxBin)
		if err != nil {
			return err
		}
		port, err := FreePort()
		if err != nil {
			return err
		}
		nc := NginxConfig{
			Prefix: filepath.Join(r.dir, "nginx"), Listen: "127.0.0.1:" + strconv.Itoa(port), Upstream: echoAddr,
			WorkerProcesses: cfg.NginxWorkers, Streaming: cfg.NginxStreaming,
		}
		p, err := StartNginx(ctx, bin, nc, serverCPUs)
		if err != nil {
			return err
		}
		r.onExit(func() {
			if err := p.Stop(10 * time.Second); err != nil {
				r.progress("warning: %v", err)
			}
		})
		buffering := "request body read into memory first, response buffered up to 1 MiB in memory"
		if cfg.NginxStreaming {
			buffering = "request and response buffering off (streaming)"
		}
		r.report.NginxVersion = NginxVersion(ctx, bin)
		r.report.NginxSetup = fmt.Sprintf("worker_processes %d, upstream keepalive pool of 128, HTTP/1.1 to the model, %s, access_log off (config: Config.Render in bench/nginx.go)", cfg.NginxWorkers, buffering)
		r.report.Procs = append(r.report.Procs, ProcInfo{Name: "nginx master", PID: p.PID(), CPUs: cpusOf(p.PID()), GOMAXPROCS: "n/a (C)"})
		r.serverPIDs[Nginx] = append(r.serverPIDs[Nginx], p.PID())
		for _, w := range ChildPIDs(p.PID()) {
			r.report.Procs = append(r.report.Procs, ProcInfo{Name: "nginx worker", PID: w, CPUs: cpusOf(w), GOMAXPROCS: "n/a (C)"})
			r.serverPIDs[Nginx] = append(r.serverPIDs[Nginx], w)
		}
		r.targets[Nginx] = Target{Name: Nginx, URL: "http://" + nc.Listen + "/invocations"}
	}
	if cfg.has(SagehostT) {
		dir := filepath.Join(r.dir, "sagehost")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sagehost dir: %w", err)
		}
		var s *Sagehost
		var err error
		if cfg.InProcess {
			if len(cfg.SagehostEnv) > 0 {
				r.report.Notes = append(r.report.Notes, "-sagehost-env is ignored in in-process mode (there is no sagehost process)")
			}
			s, err = StartSagehostInProcess(ctx, dir, r.acct)
		} else {
			s, err = StartSagehostProc(ctx, r.bin, dir, r.acct, serverCPUs, cfg.SagehostEnv)
		}
		if err != nil {
			return err
		}
		r.sagehost = s
		r.onExit(func() {
			if err := s.Close(); err != nil {
				r.progress("warning: stopping sagehost: %v", err)
			}
		})
		r.progress("sagehost at %s: deploying endpoint %s (Image %s)", s.URL, EndpointName, EchoImage)
		if err := DeployEcho(ctx, s.URL, r.acct, cfg.Region, EndpointName); err != nil {
			if s.Proc != nil {
				err = fmt.Errorf("%w; sagehost's log ends with:\n%s", err, s.Proc.LogTail())
			}
			return err
		}
		parent := os.Getpid()
		if s.Proc != nil {
			addProc("sagehost serve", s.Proc)
			parent = s.Proc.PID()
			r.serverPIDs[SagehostT] = []int{parent}
		}
		for _, pid := range ChildPIDs(parent) {
			if r.isOwnServer(pid) {
				continue
			}
			info := ProcInfo{Name: "sagehost's echo model (sagehost leg)", PID: pid, CPUs: cpusOf(pid), GOMAXPROCS: GoMaxProcsOf(pid, nil)}
			r.report.Procs = append(r.report.Procs, info)
			r.serverPIDs[SagehostT] = append(r.serverPIDs[SagehostT], pid)
		}
		r.targets[SagehostT] = Target{Name: SagehostT, URL: s.URL + "/endpoints/" + EndpointName + "/invocations"}
	}
	return nil
}

// isOwnServer reports whether pid is a process the harness started itself
// (so not sagehost's model in in-process mode).
func (r *run) isOwnServer(pid int) bool {
	for _, p := range r.report.Procs {
		if p.PID == pid {
			return true
		}
	}
	return false
}

func cpusOf(pid int) string {
	if st, err := ProcStatus(pid); err == nil {
		return st["Cpus_allowed_list"]
	}
	return "?"
}

// profilePath names a per-cell profile file: base itself for a one-cell
// run, else base with ".c16-1KB" before its extension.
func profilePath(base string, cells int, c, size int) string {
	if cells <= 1 {
		return base
	}
	ext := filepath.Ext(base)
	tag := fmt.Sprintf(".c%d-%s", c, strings.ReplaceAll(FormatSize(size), " ", ""))
	return strings.TrimSuffix(base, ext) + tag + ext
}

// matrix runs every target on every cell.
func (r *run) matrix(ctx context.Context) error {
	cfg := r.cfg
	cells := len(cfg.Concurrency) * len(cfg.Sizes)
	legs, leg := cells*len(cfg.Targets), 0
	for _, c := range cfg.Concurrency {
		for _, size := range cfg.Sizes {
			cell := &Cell{Concurrency: c, PayloadSize: size, Results: map[string]*Result{}}
			r.report.Cells = append(r.report.Cells, cell)
			payload := MakePayload(size)
			for _, name := range AllTargets {
				if !cfg.has(name) {
					continue
				}
				leg++
				l := r.load(c, payload, cfg.Warmup, cfg.Duration)
				if name == SagehostT {
					r.hookProfiles(&l, cells, c, size)
				}
				usage := r.accountCPU(&l, name)
				res, err := RunLoad(ctx, r.targets[name], l)
				if err != nil {
					return err
				}
				res.ClientCPU, res.ServerCPU = usage()
				cell.Results[name] = res
				if name == SagehostT && cfg.MemProfile != "" {
					r.writeHeapProfile(profilePath(cfg.MemProfile, cells, c, size))
				}
				r.progress("[%d/%d] c=%-3d %-6s %-8s %8s req/s  p50 %-10s p99 %-10s p99.9 %-10s CPU client %s server %s  errors %d",
					leg, legs, c, FormatSize(size), name, formatRate(res.Throughput()), FormatDuration(res.Hist.Quantile(.5)),
					FormatDuration(res.Hist.Quantile(.99)), FormatDuration(res.Hist.Quantile(.999)),
					formatCPU(res.ClientCPU), formatCPU(res.ServerCPU), res.ErrorCount())
				if res.ErrorCount() > 0 {
					r.progress("    ERRORS: %s; first: %s", res.ErrorSummary(), strings.Join(res.ErrorSamples, " | "))
				}
				settle(ctx)
			}
		}
	}
	return nil
}

// accountCPU chains hooks onto l that read the CPU time of the harness and
// of the target's server processes over the measured window; the returned
// function gives both in cores (1.0 = one CPU busy all the time).
func (r *run) accountCPU(l *Load, target string) func() (client, server float64) {
	pids := r.serverPIDs[target]
	var c0, c1, s0, s1 time.Duration
	var t0, t1 time.Time
	start, end := l.OnMeasureStart, l.OnMeasureEnd
	l.OnMeasureStart = func() {
		t0, c0, s0 = time.Now(), CPUTime(os.Getpid()), cpuTimeOf(pids)
		if start != nil {
			start()
		}
	}
	l.OnMeasureEnd = func() {
		t1, c1, s1 = time.Now(), CPUTime(os.Getpid()), cpuTimeOf(pids)
		if end != nil {
			end()
		}
	}
	return func() (float64, float64) {
		wall := t1.Sub(t0).Seconds()
		if wall <= 0 {
			return -1, -1
		}
		server := -1.0
		if len(pids) > 0 {
			server = (s1 - s0).Seconds() / wall
		}
		return (c1 - c0).Seconds() / wall, server
	}
}

func cpuTimeOf(pids []int) time.Duration {
	var t time.Duration
	for _, pid := range pids {
		t += CPUTime(pid)
	}
	return t
}

// settle lets the previous leg's connections close and garbage go before
// the next leg.
func settle(ctx context.Context) {
	runtime.GC()
	sleepUntil(ctx, time.Now().Add(300*time.Millisecond))
}

func (r *run) load(c int, payload []byte, warmup, d time.Duration) Load {
	return Load{Concurrency: c, Payload: payload, Warmup: warmup, Duration: d, Credentials: r.acct.Credentials(), Region: r.cfg.Region}
}

// hookProfiles starts the CPU profile and perf on the measured window of a
// sagehost leg.
func (r *run) hookProfiles(l *Load, cells, c, size int) {
	cfg := r.cfg
	var starts, ends []func()
	if cfg.CPUProfile != "" {
		path := profilePath(cfg.CPUProfile, cells, c, size)
		var f *os.File
		starts = append(starts, func() {
			var err error
			if f, err = os.Create(path); err != nil {
				r.progress("warning: cpu profile: %v", err)
				return
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				r.progress("warning: cpu profile: %v", err)
				f.Close()
				f = nil
			}
		})
		ends = append(ends, func() {
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				r.progress("wrote CPU profile %s", path)
			}
		})
		if !cfg.InProcess {
			r.noteOnce("-cpuprofile without -inprocess profiles the harness, that is the load generator only; use -inprocess to profile the gateway, or -perf-record")
		}
	}
	if cfg.PerfRecord != "" && r.sagehost != nil {
		path := profilePath(cfg.PerfRecord, cells, c, size)
		pid := os.Getpid()
		if r.sagehost.Proc != nil {
			pid = r.sagehost.Proc.PID()
		}
		var cmd *exec.Cmd
		starts = append(starts, func() {
			cmd = exec.Command("perf", "record", "-g", "-F", "999", "-p", strconv.Itoa(pid), "-o", path)
			cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
			if err := cmd.Start(); err != nil {
				r.progress("warning: perf record: %v (install perf: apt-get install -y linux-perf)", err)
				cmd = nil
			}
		})
		ends = append(ends, func() {
			if cmd != nil {
				cmd.Process.Signal(syscall.SIGINT)
				err := cmd.Wait()
				var exit *exec.ExitError
				if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT {
					err = nil // perf record ends on SIGINT by re-raising it, after writing its file
				}
				if err != nil {
					r.progress("warning: perf record: %v", err)
				} else {
					r.progress("wrote perf profile %s (perf report -i %s)", path, path)
				}
			}
		})
	}
	l.OnMeasureStart = func() {
		for _, f := range starts {
			f()
		}
	}
	l.OnMeasureEnd = func() {
		for _, f := range ends {
			f()
		}
	}
}

func (r *run) noteOnce(note string) {
	if !slices.Contains(r.report.Notes, note) {
		r.report.Notes = append(r.report.Notes, note)
	}
}

func (r *run) writeHeapProfile(path string) {
	if !r.cfg.InProcess {
		r.noteOnce("-memprofile without -inprocess profiles the harness, that is the load generator only; use -inprocess to profile the gateway")
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		r.progress("warning: heap profile: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		r.progress("warning: heap profile: %v", err)
		return
	}
	r.progress("wrote heap profile %s", path)
}

// memory runs sagehost alone for MemDuration and samples its RSS.
func (r *run) memory(ctx context.Context) error {
	cfg := r.cfg
	pid := r.sagehost.Proc.PID()
	m := &MemoryResult{PID: pid, Interval: cfg.MemInterval, Tolerance: cfg.MemTolerance}
	l := r.load(cfg.MemConcurrency, MakePayload(cfg.MemSize), cfg.Warmup, cfg.MemDuration)
	var stop func() ([]MemSample, error)
	l.OnMeasureStart = func() { stop = SampleRSS(ctx, pid, cfg.MemInterval) }
	var sampleErr error
	l.OnMeasureEnd = func() { m.Samples, sampleErr = stop() }
	r.progress("memory check: sagehost pid %d, %d clients, %s bodies, %v (RSS every %v)", pid, cfg.MemConcurrency, FormatSize(cfg.MemSize), cfg.MemDuration, cfg.MemInterval)
	res, err := RunLoad(ctx, r.targets[SagehostT], l)
	if err != nil {
		return err
	}
	if sampleErr != nil {
		return fmt.Errorf("sample sagehost's RSS: %w", sampleErr)
	}
	m.Load = res
	m.AnalyzeMemory()
	r.report.Memory = m
	r.report.Duration = cfg.MemDuration
	r.progress("memory: first %v avg %s, last %v avg %s, max %s, flat: %v", m.Window, mib(m.FirstAvg), m.Window, mib(m.LastAvg), mib(m.Max), m.Flat)
	return nil
}
