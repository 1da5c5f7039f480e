package clarify

import (
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sagehost/sagehost/internal/testutil/testfile"
)

// TestNumpyRandom checks the generator against NumPy's own draws
// (testdata/make_golden.py): bit for bit, so that a Seed samples the
// coalitions shap samples after np.random.seed(Seed).
func TestNumpyRandom(t *testing.T) {
	raw := testfile.Gunzip(t, filepath.Join("testdata", "numpy_random.json.gz"))
	var g struct {
		P     []float64 `json:"p"`
		Draws []struct {
			Seed          uint32    `json:"seed"`
			RandomSample  []float64 `json:"random_sample"`
			Choice        []int     `json:"choice"`
			Permutations  [][]int   `json:"permutations"`
			Choice2       []int     `json:"choice2"`
			Permutations2 [][]int   `json:"permutations2"`
		} `json:"draws"`
		Sums []struct {
			Values []float64 `json:"values"`
			Sum    float64   `json:"sum"`
		} `json:"sums"`
		Coalitions []struct {
			M        int       `json:"m"`
			NSamples int       `json:"nsamples"`
			Seed     uint32    `json:"seed"`
			Masks    []string  `json:"masks"`
			Weights  []float64 `json:"weights"`
		} `json:"coalitions"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	for _, d := range g.Draws {
		r := newNumpyRand(d.Seed)
		for i, want := range d.RandomSample {
			if got := r.float64(); got != want {
				t.Fatalf("seed %d: random_sample[%d] = %v, numpy %v", d.Seed, i, got, want)
			}
		}
		if got := r.choice(g.P, len(d.Choice)); !slices.Equal(got, d.Choice) {
			t.Fatalf("seed %d: choice = %v, numpy %v", d.Seed, got, d.Choice)
		}
		for _, want := range d.Permutations {
			if got := r.permutation(len(want)); !slices.Equal(got, want) {
				t.Fatalf("seed %d: permutation(%d) = %v, numpy %v", d.Seed, len(want), got, want)
			}
		}
		if got := r.choice([]float64{0.5, 0.3, 0.2}, len(d.Choice2)); !slices.Equal(got, d.Choice2) {
			t.Fatalf("seed %d: second choice = %v, numpy %v", d.Seed, got, d.Choice2)
		}
		for _, want := range d.Permutations2 {
			if got := r.permutation(len(want)); !slices.Equal(got, want) {
				t.Fatalf("seed %d: permutation(%d) = %v, numpy %v", d.Seed, len(want), got, want)
			}
		}
	}
	for _, s := range g.Sums {
		if got := pairwiseSum(s.Values); got != s.Sum {
			t.Errorf("sum of %d values = %v, numpy %v (%g apart)", len(s.Values), got, s.Sum, math.Abs(got-s.Sum))
		}
	}

	// KernelExplainer's coalitions, as NumPy computes and draws them.
	for _, want := range g.Coalitions {
		c := makeCoalitions(want.M, want.NSamples, newNumpyRand(want.Seed))
		if c.n != len(want.Masks) {
			t.Errorf("M=%d n=%d seed %d: %d coalitions, want %d", want.M, want.NSamples, want.Seed, c.n, len(want.Masks))
			continue
		}
		worst := 0.0
		for k, m := range want.Masks {
			got := make([]byte, c.m)
			for i, v := range c.mask(k) {
				got[i] = '0' + v
			}
			if string(got) != m {
				t.Fatalf("M=%d n=%d seed %d: coalition %d = %s, want %s", want.M, want.NSamples, want.Seed, k, got, m)
			}
			worst = math.Max(worst, math.Abs(c.weights[k]-want.Weights[k])/want.Weights[k])
		}
		if worst > 1e-14 {
			t.Errorf("M=%d n=%d seed %d: kernel weights differ by up to %.2g relative", want.M, want.NSamples, want.Seed, worst)
		}
		t.Logf("M=%d n=%d seed %d: %d coalitions as NumPy draws them, weights within %.2g", want.M, want.NSamples, want.Seed, c.n, worst)
	}
}

func TestLinalg(t *testing.T) {
	// A well-conditioned SPD system: Cholesky.
	a := []float64{4, 1, 2, 1, 3, 0, 2, 0, 5}
	want := []float64{1, -2, 0.5, 3, 2, -1}
	b := make([]float64, 6)
	for i := 0; i < 3; i++ {
		for c := 0; c < 2; c++ {
			for k := 0; k < 3; k++ {
				b[i*2+c] += a[i*3+k] * want[k*2+c]
			}
		}
	}
	for _, solve := range []func([]float64, int, []float64, int) []float64{solveSPD, pinvSolve} {
		x := solve(a, 3, b, 2)
		for i := range want {
			if math.Abs(x[i]-want[i]) > 1e-12 {
				t.Errorf("x = %v, want %v", x, want)
				break
			}
		}
	}
	// A singular system: the minimum-norm solution, as np.linalg.pinv.
	a = []float64{1, 1, 1, 1}
	x := solveSPD(a, 2, []float64{2, 2}, 1)
	if math.Abs(x[0]-1) > 1e-12 || math.Abs(x[1]-1) > 1e-12 {
		t.Errorf("singular: x = %v, want [1 1]", x)
	}
	// Too few coalitions for the features still gives attributions that
	// add up (the pseudo-inverse's).
	c := makeCoalitions(8, 3, newNumpyRand(9))
	if c.n != 3 {
		t.Fatalf("%d coalitions, want 3", c.n)
	}
	ey := [][]float64{{1}, {2}, {3}}
	phi := solveKernelSHAP(c, ey, []float64{5}, []float64{0})
	s := 0.0
	for _, p := range phi {
		if math.IsNaN(p[0]) {
			t.Fatalf("NaN attribution: %v", phi)
		}
		s += p[0]
	}
	if math.Abs(s-5) > 1e-9 {
		t.Errorf("sum %v, want 5", s)
	}
}
