package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	vals := []int64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 123456789, 1<<histMaxBits - 1}
	for range 2000 {
		vals = append(vals, rand.Int64N(1<<40))
	}
	for _, v := range vals {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v >= hi {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, lo, hi)
		}
		if w := hi - lo; v >= histSub && float64(w)/float64(lo) > 1.0/histHalf+1e-9 {
			t.Fatalf("bucket %d of %d is %d wide: over 1/%d of its value", i, v, w, histHalf)
		}
	}
	if i := bucketOf(1 << 50); i != histBuckets-1 {
		t.Fatalf("huge value in bucket %d, want the last (%d)", i, histBuckets-1)
	}
	if i := bucketOf(-5); i != 0 {
		t.Fatalf("negative value in bucket %d, want 0", i)
	}
}

func TestQuantilesMatchExactOnes(t *testing.T) {
	h := NewHistogram()
	var exact []time.Duration
	for range 100000 {
		// Log-normal-ish latencies from 20 µs to tens of ms.
		d := time.Duration(20_000 * (1 + rand.ExpFloat64()*rand.ExpFloat64()*10))
		h.Record(d)
		exact = append(exact, d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := exact[int(q*float64(len(exact)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%.3f = %v, exact %v (%.2f%% off)", q, got, want, diff*100)
		}
	}
	if h.Quantile(1) != exact[len(exact)-1] || h.Max() != exact[len(exact)-1] || h.Min() != exact[0] {
		t.Errorf("max/min: q1 %v max %v min %v, want %v and %v", h.Quantile(1), h.Max(), h.Min(), exact[len(exact)-1], exact[0])
	}
	if h.Count() != 100000 {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramSmallAndMerge(t *testing.T) {
	empty := NewHistogram()
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 || empty.Min() != 0 || empty.Max() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	a, b := NewHistogram(), NewHistogram()
	for i := 1; i <= 50; i++ {
		a.Record(time.Duration(i) * time.Microsecond)
		b.Record(time.Duration(i+50) * time.Microsecond)
	}
	a.Merge(b)
	a.Merge(nil)
	a.Merge(empty)
	if a.Count() != 100 {
		t.Fatalf("count %d, want 100", a.Count())
	}
	if got := a.Quantile(0.5); got < 49*time.Microsecond || got > 51*time.Microsecond {
		t.Errorf("p50 %v, want about 50µs", got)
	}
	if a.Min() != time.Microsecond || a.Max() != 100*time.Microsecond {
		t.Errorf("min %v max %v", a.Min(), a.Max())
	}
	if a.Mean() != 50500*time.Nanosecond {
		t.Errorf("mean %v, want 50.5µs", a.Mean())
	}
	one := NewHistogram()
	one.Record(7 * time.Millisecond)
	for _, q := range []float64{0.001, 0.5, 0.999, 1} {
		if one.Quantile(q) != 7*time.Millisecond {
			t.Errorf("single value: q%v = %v", q, one.Quantile(q))
		}
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i%5_000_000) * 100)
	}
}
