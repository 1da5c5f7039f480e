package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Target names.
const (
	Direct    = "direct"
	Nginx     = "nginx"
	SagehostT = "sagehost"
)

// AllTargets lists the targets in the order each cell runs them.
var AllTargets = []string{Direct, Nginx, SagehostT}

// ProcInfo describes one process of a run.
type ProcInfo struct {
	Name string
	PID  int
	// CPUs is its Cpus_allowed_list.
	CPUs       string
	GOMAXPROCS string
}

// Placement says how the CPUs were shared.
type Placement struct {
	// Pinned: the load generator runs on ClientCPUs and every server on
	// ServerCPUs (taskset); otherwise the OS schedules everything on every
	// CPU.
	Pinned     bool
	ClientCPUs string
	ServerCPUs string
	// Why explains the choice (e.g. taskset missing, in-process mode).
	Why string
}

// String describes the placement in one sentence.
func (p Placement) String() string {
	if p.Pinned {
		s := fmt.Sprintf("pinned with taskset: load generator on CPU %s; servers (echo model, nginx, sagehost and its model process) on CPU %s", p.ClientCPUs, p.ServerCPUs)
		if p.Why != "" {
			s += " (" + p.Why + ")"
		}
		return s
	}
	s := "shared: no pinning, the OS schedules the load generator and every server on all CPUs"
	if p.Why != "" {
		s += " (" + p.Why + ")"
	}
	return s
}

// Cell is one (concurrency, payload size) point of the matrix.
type Cell struct {
	Concurrency int
	PayloadSize int
	// Results by target name.
	Results map[string]*Result
}

// Report is everything a run measured and the context to read it.
type Report struct {
	Started     time.Time
	CommandLine string
	// Mode is "matrix" or "memory".
	Mode      string
	InProcess bool
	// Sagehost says which sagehost ran (commit, how it was built).
	Sagehost     string
	Machine      Machine
	LoadStart    string
	LoadEnd      string
	Placement    Placement
	Procs        []ProcInfo
	NginxVersion string
	NginxSetup   string
	Warmup       time.Duration
	Duration     time.Duration
	Targets      []string
	Cells        []*Cell
	Memory       *MemoryResult
	Notes        []string
}

// ErrorCount is the number of failed requests over the whole run.
func (r *Report) ErrorCount() uint64 {
	var n uint64
	for _, c := range r.Cells {
		for _, res := range c.Results {
			n += res.ErrorCount()
		}
	}
	if r.Memory != nil && r.Memory.Load != nil {
		n += r.Memory.Load.ErrorCount()
	}
	return n
}

// Size units: the matrix's "1 KB" is 1024 bytes.
const (
	KB = 1024
	MB = 1024 * 1024
)

// FormatSize writes a payload size as the matrix names it: 1 KB, 5 MB.
func FormatSize(n int) string {
	switch {
	case n >= MB && n%MB == 0:
		return strconv.Itoa(n/MB) + " MB"
	case n >= KB && n%KB == 0:
		return strconv.Itoa(n/KB) + " KB"
	}
	return strconv.Itoa(n) + " B"
}

// ParseSize reads 1KB, 100k, 5MB, 5m or a plain number of bytes.
func ParseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "KB"), strings.HasSuffix(t, "K"):
		mult, t = KB, strings.TrimSuffix(strings.TrimSuffix(t, "B"), "K")
	case strings.HasSuffix(t, "MB"), strings.HasSuffix(t, "M"):
		mult, t = MB, strings.TrimSuffix(strings.TrimSuffix(t, "B"), "M")
	case strings.HasSuffix(t, "B"):
		t = strings.TrimSuffix(t, "B")
	}
	n, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("payload size %q: want e.g. 1KB, 100KB, 5MB or a number of bytes", s)
	}
	return n * mult, nil
}

// FormatDuration writes a latency in µs below 1 ms, in ms below 1 s.
func FormatDuration(d time.Duration) string {
	a := d
	if a < 0 {
		a = -a
	}
	switch {
	case a < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	case a < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// formatDelta writes an added latency with its sign.
func formatDelta(d time.Duration) string {
	if d >= 0 {
		return "+" + FormatDuration(d)
	}
	return FormatDuration(d)
}

func formatRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

// formatCPU writes CPU use in cores as a percentage of one CPU.
func formatCPU(x float64) string {
	if x < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

// formatCPUPerCall is the server's CPU time per answer.
func formatCPUPerCall(res *Result) string {
	if res.ServerCPU < 0 || res.Throughput() <= 0 {
		return "–"
	}
	return FormatDuration(time.Duration(res.ServerCPU / res.Throughput() * float64(time.Second)))
}

func formatRate(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// Quantiles the report shows.
var reportQuantiles = []struct {
	name string
	q    float64
}{{"p50", 0.50}, {"p99", 0.99}, {"p99.9", 0.999}}

// Comparison is sagehost against direct and nginx in one cell.
type Comparison struct {
	// Added is sagehost minus direct at p50, p99, p99.9.
	Added [3]time.Duration
	// HasDirect and HasNginx say which references ran.
	HasDirect, HasNginx bool
	// ThroughputVsDirect, ThroughputVsNginx are sagehost's req/s over theirs.
	ThroughputVsDirect, ThroughputVsNginx float64
	// P50VsDirect ... are sagehost's latency over theirs.
	P50VsDirect, P50VsNginx, P99VsDirect, P99VsNginx float64
}

// Compare computes the comparison of a cell; ok is false without a
// sagehost result.
func (c *Cell) Compare() (Comparison, bool) {
	s := c.Results[SagehostT]
	if s == nil || s.Hist.Count() == 0 {
		return Comparison{}, false
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return a / b
	}
	var cmp Comparison
	if d := c.Results[Direct]; d != nil && d.Hist.Count() > 0 {
		cmp.HasDirect = true
		for i, q := range reportQuantiles {
			cmp.Added[i] = s.Hist.Quantile(q.q) - d.Hist.Quantile(q.q)
		}
		cmp.ThroughputVsDirect = ratio(s.Throughput(), d.Throughput())
		cmp.P50VsDirect = ratio(float64(s.Hist.Quantile(.5)), float64(d.Hist.Quantile(.5)))
		cmp.P99VsDirect = ratio(float64(s.Hist.Quantile(.99)), float64(d.Hist.Quantile(.99)))
	}
	if n := c.Results[Nginx]; n != nil && n.Hist.Count() > 0 {
		cmp.HasNginx = true
		cmp.ThroughputVsNginx = ratio(s.Throughput(), n.Throughput())
		cmp.P50VsNginx = ratio(float64(s.Hist.Quantile(.5)), float64(n.Hist.Quantile(.5)))
		cmp.P99VsNginx = ratio(float64(s.Hist.Quantile(.99)), float64(n.Hist.Quantile(.99)))
	}
	return cmp, true
}

// lowSamples is the count below which p99.9 is marked as an estimate from
// too few requests.
const lowSamples = 1000

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	title := "sagehost benchmark"
	if r.Mode == "memory" {
		title = "sagehost memory check"
	}
	w("## %s, %s\n\n", title, r.Started.UTC().Format("2006-01-02 15:04 MST"))
	if n := r.ErrorCount(); n > 0 {
		w("> **ERRORS: %d requests failed during this run. Numbers from a run with errors are not valid; see \"Errors\" below.**\n\n", n)
	}
	w("- command: `%s`\n", r.CommandLine)
	if r.Sagehost != "" {
		w("- sagehost: %s\n", r.Sagehost)
	}
	m := r.Machine
	w("- machine: %d CPUs online (%s), %s; Linux %s; %s", m.NProc, m.CPUsOnline, m.CPUModel, m.Kernel, m.GoVersion)
	if m.CgroupCPULimit > 0 {
		w("; cgroup CPU limit %.2g CPUs", m.CgroupCPULimit)
	}
	w("\n")
	w("- load average (1, 5, 15 min) at start: %s; at end: %s\n", r.LoadStart, r.LoadEnd)
	w("- CPU placement: %s\n", r.Placement)
	if r.InProcess {
		w("- **in-process mode**: sagehost's gateway (server.Start) runs inside the harness process and shares its CPUs and GOMAXPROCS with the load generator; its model is a separate process\n")
	}
	if r.NginxVersion != "" {
		w("- nginx: %s, %s\n", r.NginxVersion, r.NginxSetup)
	}
	w("- load: closed loop, C workers each sending its next request when the previous answer is read, over keep-alive connections (one http.Transport per leg); warm-up %v, then %v measured per leg; every request of every target SigV4-signed with aws-sdk-go-v2's v4 signer (payload SHA-256 computed once per payload size, the body never changes); latency from after signing to the last byte of the answer; every answer checked (status 200, body equal to the payload)\n", r.Warmup, r.Duration)
	if len(r.Procs) > 0 {
		w("\n| process | pid | CPUs allowed | GOMAXPROCS |\n| --- | --- | --- | --- |\n")
		for _, p := range r.Procs {
			w("| %s | %d | %s | %s |\n", p.Name, p.PID, p.CPUs, p.GOMAXPROCS)
		}
	}
	for _, n := range r.Notes {
		w("\nNote: %s\n", n)
	}

	if len(r.Cells) > 0 {
		few := false
		w("\n### Results\n\nCPU columns: CPU time used during the measured window, in %% of one CPU, by the harness (client) and by the target's server processes (server: the model for direct; nginx and the model; sagehost and its model)")
		if r.InProcess {
			w("; in-process, the harness's CPU includes sagehost's gateway, and sagehost's server CPU is its model alone")
		}
		w(". Server CPU per call is the server processes' CPU time divided by the answers completed in the window.\n\n")
		w("| clients | payload | target | requests | req/s | p50 | p99 | p99.9 | max | client CPU | server CPU | server CPU per call | errors |\n| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, c := range r.Cells {
			for _, t := range r.Targets {
				res := c.Results[t]
				if res == nil {
					continue
				}
				h := res.Hist
				p999 := FormatDuration(h.Quantile(.999))
				if h.Count() < lowSamples {
					p999 += "\\*"
					few = true
				}
				errs := strconv.FormatUint(res.ErrorCount(), 10)
				if res.ErrorCount() > 0 {
					errs = "**" + errs + "**"
				}
				w("| %d | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Concurrency, FormatSize(c.PayloadSize), t,
					h.Count(), formatRate(res.Throughput()), FormatDuration(h.Quantile(.5)), FormatDuration(h.Quantile(.99)), p999,
					FormatDuration(h.Max()), formatCPU(res.ClientCPU), formatCPU(res.ServerCPU), formatCPUPerCall(res), errs)
			}
		}
		if few {
			w("\n\\* fewer than %d requests measured: p99.9 is close to the maximum and not a stable estimate.\n", lowSamples)
		}
		r.writeComparison(&b)
	}
	if r.Memory != nil {
		r.Memory.markdown(&b)
	}
	if r.ErrorCount() > 0 {
		w("\n### Errors\n\n")
		for _, c := range r.Cells {
			for _, t := range r.Targets {
				if res := c.Results[t]; res != nil && res.ErrorCount() > 0 {
					w("- c=%d %s %s: %d failed (%s)\n", c.Concurrency, FormatSize(c.PayloadSize), t, res.ErrorCount(), res.ErrorSummary())
					for _, s := range res.ErrorSamples {
						w("  - `%s`\n", oneLine(s))
					}
				}
			}
		}
		if r.Memory != nil && r.Memory.Load != nil && r.Memory.Load.ErrorCount() > 0 {
			res := r.Memory.Load
			w("- memory run: %d failed (%s)\n", res.ErrorCount(), res.ErrorSummary())
			for _, s := range res.ErrorSamples {
				w("  - `%s`\n", oneLine(s))
			}
		}
	}
	return b.String()
}

func (r *Report) writeComparison(b *strings.Builder) {
	var rows []string
	for _, c := range r.Cells {
		cmp, ok := c.Compare()
		if !ok || (!cmp.HasDirect && !cmp.HasNginx) {
			continue
		}
		dash := "–"
		added := [3]string{dash, dash, dash}
		tDirect, p50Direct, p99Direct := dash, dash, dash
		if cmp.HasDirect {
			for i := range added {
				added[i] = formatDelta(cmp.Added[i])
			}
			tDirect, p50Direct, p99Direct = formatRatio(cmp.ThroughputVsDirect), formatRatio(cmp.P50VsDirect), formatRatio(cmp.P99VsDirect)
		}
		tNginx, p50Nginx, p99Nginx := dash, dash, dash
		if cmp.HasNginx {
			tNginx, p50Nginx, p99Nginx = formatRatio(cmp.ThroughputVsNginx), formatRatio(cmp.P50VsNginx), formatRatio(cmp.P99VsNginx)
		}
		rows = append(rows, fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Concurrency, FormatSize(c.PayloadSize),
			added[0], added[1], added[2], tDirect, tNginx, p50Direct, p50Nginx, p99Direct, p99Nginx))
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n### sagehost against direct and nginx\n\nAdded latency is sagehost minus direct at each percentile. Ratios are sagehost over the reference: a req/s ratio of 1.0 or more means sagehost is at least as fast; a latency ratio under 1.0 means sagehost is quicker.\n\n")
	b.WriteString("| clients | payload | added p50 | added p99 | added p99.9 | req/s ÷ direct | req/s ÷ nginx | p50 ÷ direct | p50 ÷ nginx | p99 ÷ direct | p99 ÷ nginx |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range rows {
		b.WriteString(row)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// ShellQuote writes args as one shell command line.
func ShellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
