package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// MemSample is one reading of sagehost's resident set size.
type MemSample struct {
	// At is the time since the measured window opened.
	At  time.Duration
	RSS int64
}

// MemoryResult is the outcome of the memory check.
type MemoryResult struct {
	PID      int
	Interval time.Duration
	Samples  []MemSample
	// Window is the length of the first and last windows compared (one
	// minute, or a third of the run when it is shorter than 3 minutes).
	Window time.Duration
	// FirstAvg and LastAvg are the average RSS of the first and last window.
	FirstAvg, LastAvg int64
	Min, Max          int64
	// SlopePerMin is the least-squares growth in bytes per minute.
	SlopePerMin float64
	// Tolerance is the growth of LastAvg over FirstAvg still called flat.
	Tolerance float64
	Flat      bool
	// Load is the load that ran meanwhile.
	Load *Result
}

// AnalyzeMemory fills in the windows, extremes, slope and verdict from
// m.Samples and m.Tolerance.
func (m *MemoryResult) AnalyzeMemory() {
	s := m.Samples
	if len(s) == 0 {
		return
	}
	total := s[len(s)-1].At
	m.Window = min(time.Minute, total/3).Round(time.Second)
	var fSum, lSum, fN, lN int64
	m.Min, m.Max = s[0].RSS, s[0].RSS
	var sx, sy, sxx, sxy float64
	for _, x := range s {
		if x.At <= m.Window {
			fSum += x.RSS
			fN++
		}
		if x.At >= total-m.Window {
			lSum += x.RSS
			lN++
		}
		m.Min, m.Max = min(m.Min, x.RSS), max(m.Max, x.RSS)
		t := x.At.Minutes()
		sx += t
		sy += float64(x.RSS)
		sxx += t * t
		sxy += t * float64(x.RSS)
	}
	m.FirstAvg, m.LastAvg = fSum/max(fN, 1), lSum/max(lN, 1)
	n := float64(len(s))
	if d := n*sxx - sx*sx; d > 0 {
		m.SlopePerMin = (n*sxy - sx*sy) / d
	}
	m.Flat = float64(m.LastAvg) <= float64(m.FirstAvg)*(1+m.Tolerance)
}

// SampleRSS reads pid's RSS every interval until ctx ends; the returned
// function stops it and returns the samples, times relative to the call.
func SampleRSS(ctx context.Context, pid int, interval time.Duration) (stop func() ([]MemSample, error)) {
	ctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	var (
		mu      sync.Mutex
		samples []MemSample
		firstEr error
		done    = make(chan struct{})
	)
	take := func() {
		rss, err := RSS(pid)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstEr == nil {
				firstEr = err
			}
			return
		}
		samples = append(samples, MemSample{At: time.Since(start), RSS: rss})
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		take()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				take()
			}
		}
	}()
	return func() ([]MemSample, error) {
		cancel()
		<-done
		take()
		mu.Lock()
		defer mu.Unlock()
		return samples, firstEr
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (m *MemoryResult) markdown(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("\n### Memory\n\n")
	if m.Load != nil {
		h := m.Load.Hist
		w("sagehost (pid %d) under %d clients with %s bodies for %v: %d requests, %s req/s, p50 %s, p99 %s, %d errors.\n\n",
			m.PID, m.Load.Concurrency, FormatSize(m.Load.PayloadSize), m.Load.Elapsed, h.Count(), formatRate(m.Load.Throughput()),
			FormatDuration(h.Quantile(.5)), FormatDuration(h.Quantile(.99)), m.Load.ErrorCount())
	}
	verdict := "**flat**"
	if !m.Flat {
		verdict = "**NOT flat**"
	}
	w("| RSS, first %v avg | RSS, last %v avg | min | max | trend | verdict (last ≤ first × %.2f) |\n| ---: | ---: | ---: | ---: | ---: | --- |\n",
		m.Window, m.Window, 1+m.Tolerance)
	w("| %s | %s | %s | %s | %+.2f MiB/min | %s |\n", mib(m.FirstAvg), mib(m.LastAvg), mib(m.Min), mib(m.Max), m.SlopePerMin/(1<<20), verdict)
	w("\nVmRSS every %v, in MiB:\n\n```", m.Interval)
	for i, s := range m.Samples {
		if i%12 == 0 {
			w("\n%7s ", s.At.Round(time.Second))
		}
		w(" %6.1f", float64(s.RSS)/(1<<20))
	}
	w("\n```\n")
}
