package bench

import (
	"os"
	"testing"
	"time"
)

func samples(f func(i int) int64, n int, every time.Duration) []MemSample {
	out := make([]MemSample, n)
	for i := range out {
		out[i] = MemSample{At: time.Duration(i) * every, RSS: f(i)}
	}
	return out
}

func TestAnalyzeMemory(t *testing.T) {
	// 5 minutes every 5 s: flat with noise.
	flat := &MemoryResult{Tolerance: 0.10, Samples: samples(func(i int) int64 { return 30<<20 + int64(i%3)<<18 }, 61, 5*time.Second)}
	flat.AnalyzeMemory()
	if !flat.Flat || flat.Window != time.Minute {
		t.Fatalf("flat run: flat=%v window=%v first=%d last=%d", flat.Flat, flat.Window, flat.FirstAvg, flat.LastAvg)
	}
	if flat.Max != 30<<20+2<<18 || flat.Min != 30<<20 {
		t.Fatalf("min/max %d %d", flat.Min, flat.Max)
	}
	// Growing 1 MiB a sample: 60 MiB over 5 minutes.
	grow := &MemoryResult{Tolerance: 0.10, Samples: samples(func(i int) int64 { return 30<<20 + int64(i)<<20 }, 61, 5*time.Second)}
	grow.AnalyzeMemory()
	if grow.Flat {
		t.Fatalf("growing run called flat: first %d last %d", grow.FirstAvg, grow.LastAvg)
	}
	if s := grow.SlopePerMin / (1 << 20); s < 11.9 || s > 12.1 {
		t.Fatalf("slope %.2f MiB/min, want 12", s)
	}
	// A 60 s run compares its first and last 20 s.
	short := &MemoryResult{Tolerance: 0.10, Samples: samples(func(int) int64 { return 1 << 20 }, 13, 5*time.Second)}
	short.AnalyzeMemory()
	if short.Window != 20*time.Second || !short.Flat {
		t.Fatalf("short run: window %v flat %v", short.Window, short.Flat)
	}
	(&MemoryResult{}).AnalyzeMemory() // no samples: no panic
}

func TestSampleRSS(t *testing.T) {
	stop := SampleRSS(t.Context(), os.Getpid(), 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	s, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) < 3 || s[0].RSS <= 0 {
		t.Fatalf("samples %v", s)
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Fatal("RSS of a missing pid should fail")
	}
}
