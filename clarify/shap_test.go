package clarify

import (
	"context"
	"math"
	"strings"
	"testing"
)

// interactions is a nonlinear model with interactions between features.
func interactions(x []float64) []float64 {
	y := 1.5*x[0]*x[1] - math.Sin(x[2])*x[0] + x[3]*x[3]
	if len(x) > 4 {
		y += math.Max(x[4], x[1]) * 0.7
	}
	if len(x) > 5 {
		y += math.Exp(0.3*x[5]) * x[2]
	}
	for i := 6; i < len(x); i++ {
		y += 0.1 * float64(i) * x[i] * x[i-1]
	}
	return []float64{y}
}

func sigmoidModel(x []float64) []float64 {
	return []float64{1 / (1 + math.Exp(-interactions(x)[0]*0.5))}
}

// threeLabels has three outputs: a softmax over three nonlinear scores.
func threeLabels(x []float64) []float64 {
	s := []float64{x[0] * x[1], math.Sin(x[2]) + x[3], 0.5 * x[0] * x[3]}
	mx := math.Max(s[0], math.Max(s[1], s[2]))
	sum := 0.0
	for i := range s {
		s[i] = math.Exp(s[i] - mx)
		sum += s[i]
	}
	for i := range s {
		s[i] /= sum
	}
	return s
}

var (
	testBase = [][]float64{{0.5, -1, 0.25, 2, -0.5, 1}, {-1.5, 0.75, 1, -0.25, 1.25, -2}}
	testRecs = [][]float64{{1.25, 2, -1.5, 0.5, 3, -0.75}, {-2, -0.5, 2.5, 1.75, -1, 0.5}, {0.3, 1.1, -0.7, -2.2, 0.9, 2.4}}
)

func cut(rows [][]float64, m int) [][]float64 {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = r[:m]
	}
	return out
}

// TestExactShapley: with every coalition enumerated, Kernel SHAP's
// attributions are the exact Shapley values.
func TestExactShapley(t *testing.T) {
	for _, m := range []int{4, 5, 6} {
		base, recs := cut(testBase, m), cut(testRecs, m)
		e := newExplainer(t, baselineConfig(csvRows(base), "", ""), nil)
		body, err := e.Explain(context.Background(), Request{
			Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
			Predictors: []Predictor{funcPredictor(interactions)},
		})
		if err != nil {
			t.Fatal(err)
		}
		d := decode(t, body)
		worst := 0.0
		for r, x := range recs {
			want := bruteShapley(interactions, x, base, ident)
			worst = math.Max(worst, comparePhi(t, "record", d.phis(r), want, 1e-9))
		}
		t.Logf("M=%d: worst relative error %.2g against brute-force Shapley values", m, worst)
	}
}

// TestEfficiency: attributions add up to f(x) − E[f(baseline)], also when
// the coalitions are sampled.
func TestEfficiency(t *testing.T) {
	models := map[string]model{
		"interactions": interactions,
		"linear": func(x []float64) []float64 {
			s := 0.0
			for i, v := range x {
				s += float64(i+1) * v
			}
			return []float64{s}
		},
		"products": func(x []float64) []float64 {
			p := 1.0
			for _, v := range x {
				p *= 1 + 0.1*v
			}
			return []float64{p}
		},
	}
	base := [][]float64{{0.5, -1, 0.25, 2, -0.5, 1, 0, 3, -2, 1, 0.5, 0.25}, {-1.5, 0.75, 1, -0.25, 1.25, -2, 1, 0, 2, -1, -0.5, 2}}
	x := []float64{1.25, 2, -1.5, 0.5, 3, -0.75, 2.5, -1, 0.5, 0.75, 1.5, -2}
	for name, f := range models {
		for _, tc := range []struct {
			m       int
			samples string
		}{{8, ""}, {8, `,"NumberOfSamples":60`}, {12, ""}, {12, `,"NumberOfSamples":300`}} {
			b := cut(base, tc.m)
			e := newExplainer(t, baselineConfig(csvRows(b), tc.samples+`,"Seed":7`, ""), nil)
			body, err := e.Explain(context.Background(), Request{
				Body: []byte(csvRows([][]float64{x[:tc.m]})), ContentType: "text/csv", Accept: "text/csv",
				Predictors: []Predictor{funcPredictor(f)},
			})
			if err != nil {
				t.Fatal(err)
			}
			phi := decode(t, body).phis(0)
			sum := 0.0
			for _, p := range phi {
				sum += p[0]
			}
			want := f(x[:tc.m])[0] - (f(b[0])[0]+f(b[1])[0])/2
			if math.Abs(sum-want) > 1e-6 {
				t.Errorf("%s M=%d%s: attributions add up to %.12g, want f(x)-E[f(b)] = %.12g", name, tc.m, tc.samples, sum, want)
			}
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	base := cut(testBase, 6)
	x := [][]float64{testRecs[0]}
	run := func(seed string) string {
		e := newExplainer(t, baselineConfig(csvRows(base), `,"NumberOfSamples":20`+seed, ""), nil)
		body, err := e.Explain(context.Background(), Request{
			Body: []byte(csvRows(x)), ContentType: "text/csv", Accept: "text/csv",
			Predictors: []Predictor{funcPredictor(interactions)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	a, b, c := run(`,"Seed":3`), run(`,"Seed":3`), run(`,"Seed":4`)
	if a != b {
		t.Errorf("the same Seed gave different explanations:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("Seeds 3 and 4 gave the same explanation: %s", a)
	}
}

// TestCoalitionsLikeShap checks the enumeration and sampling budget as
// KernelExplainer lays it out.
func TestCoalitionsLikeShap(t *testing.T) {
	// Full enumeration: every nonempty proper subset once, weights the
	// Shapley kernel's (normalised).
	for _, m := range []int{2, 3, 4, 5, 6, 9} {
		c := makeCoalitions(m, 0, newNumpyRand(1))
		if c.n != 1<<m-2 {
			t.Fatalf("M=%d: %d coalitions, want %d", m, c.n, 1<<m-2)
		}
		seen := map[string]bool{}
		ratio := 0.0
		for k := 0; k < c.n; k++ {
			key := string(c.mask(k))
			if seen[key] {
				t.Fatalf("M=%d: coalition %v twice", m, c.mask(k))
			}
			seen[key] = true
			s := strings.Count(key, "\x01")
			kernel := float64(m-1) / (binom(m, s) * float64(s) * float64(m-s))
			r := c.weights[k] / kernel
			if k == 0 {
				ratio = r
			} else if math.Abs(r-ratio) > 1e-12*ratio {
				t.Fatalf("M=%d: weight of %v is %g times the kernel, not %g", m, c.mask(k), r, ratio)
			}
		}
	}
	// The default budget: 2M + 2048 coalitions for M = 20, small sizes
	// enumerated first.
	c := makeCoalitions(20, 0, newNumpyRand(1))
	if c.n != 2088 {
		t.Errorf("M=20: %d coalitions, want 2088", c.n)
	}
	for k := 0; k < 40; k++ { // sizes 1 and 19, paired
		s := strings.Count(string(c.mask(k)), "\x01")
		if s != 1 && s != 19 {
			t.Fatalf("M=20: coalition %d has size %d; sizes 1 and 19 come first", k, s)
		}
	}
	if got := sampleSize(10, 0); got != 1022 {
		t.Errorf("n_samples for 10 features = %d, want 1022", got)
	}
	if got := sampleSize(10, 5000); got != 1022 {
		t.Errorf("n_samples for 10 features, NumberOfSamples 5000 = %d, want 1022", got)
	}
	if got := sampleSize(40, 100); got != 100 {
		t.Errorf("n_samples for 40 features, NumberOfSamples 100 = %d, want 100", got)
	}
}

func TestNonVaryingFeature(t *testing.T) {
	base := [][]float64{{1, 2, 3, 4}, {0, 2, 1, 4}}
	x := [][]float64{{5, 2, -1, 4}} // features 2 and 4 equal every baseline row
	e := newExplainer(t, baselineConfig(csvRows(base), "", ""), nil)
	body, err := e.Explain(context.Background(), Request{
		Body: []byte(csvRows(x)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{funcPredictor(interactions)},
	})
	if err != nil {
		t.Fatal(err)
	}
	phi := decode(t, body).phis(0)
	if phi[1][0] != 0 || phi[3][0] != 0 {
		t.Errorf("features equal to the baseline got %v and %v, want 0", phi[1][0], phi[3][0])
	}
	comparePhi(t, "record", phi, bruteShapley(interactions, x[0], base, ident), 1e-9)

	// One varying feature gets all of f(x) − E[f(b)].
	x = [][]float64{{1, 2, 3, 4}}
	body, err = newExplainer(t, baselineConfig("1,2,5,4\n", "", ""), nil).Explain(context.Background(), Request{
		Body: []byte(csvRows(x)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{funcPredictor(interactions)},
	})
	if err != nil {
		t.Fatal(err)
	}
	phi = decode(t, body).phis(0)
	want := interactions(x[0])[0] - interactions([]float64{1, 2, 5, 4})[0]
	if math.Abs(phi[2][0]-want) > 1e-12 || phi[0][0] != 0 {
		t.Errorf("single varying feature: %v, want feature 3 = %v", phi, want)
	}
}

func TestUseLogit(t *testing.T) {
	base, recs := cut(testBase, 5), cut(testRecs, 5)
	e := newExplainer(t, baselineConfig(csvRows(base), `,"UseLogit":true`, ""), nil)
	body, err := e.Explain(context.Background(), Request{
		Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{funcPredictor(sigmoidModel)},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, body)
	for r, x := range recs {
		want := bruteShapley(sigmoidModel, x, base, logit)
		comparePhi(t, "logit", d.phis(r), want, 1e-9)
		// Log-odds space: the sum is logit(f(x)) − logit(E[f(b)]).
		sum := 0.0
		for _, p := range d.phis(r) {
			sum += p[0]
		}
		fb := (sigmoidModel(base[0])[0] + sigmoidModel(base[1])[0]) / 2
		if w := logit(sigmoidModel(x)[0]) - logit(fb); math.Abs(sum-w) > 1e-9 {
			t.Errorf("record %d: sum %v, want %v", r, sum, w)
		}
	}

	// A score of 1 has no log-odds.
	one := func(x []float64) []float64 { return []float64{1} }
	_, err = e.Explain(context.Background(), Request{
		Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{funcPredictor(one)},
	})
	if KindOf(err) != KindModelOutput || !strings.Contains(err.Error(), "UseLogit") {
		t.Errorf("UseLogit on a score of 1: %v, want a model output error about UseLogit", err)
	}
}

func TestLinkNamesTheValueOnlyOnError(t *testing.T) {
	calls := 0
	what := func() string { calls++; return "the mean prediction of a coalition of record 3" }
	sc := scoring{d: 2, useLogit: true}
	if v, err := sc.link([]float64{0.5, 0.25}, what); err != nil || v[0] != 0 || calls != 0 {
		t.Errorf("link = %v, %v after %d calls of what", v, err, calls)
	}
	_, err := sc.link([]float64{0.5, 1}, what)
	if want := "UseLogit needs probabilities strictly between 0 and 1, but the mean prediction of a coalition of record 3 is 1"; err == nil ||
		KindOf(err) != KindModelOutput || !strings.Contains(err.Error(), want) || calls != 1 {
		t.Errorf("link of 1: %v after %d calls of what, want a model output error containing %q", err, calls, want)
	}
}

func TestMultiLabel(t *testing.T) {
	base, recs := cut(testBase, 4), cut(testRecs, 4)
	e := newExplainer(t, baselineConfig(csvRows(base), "", `,"InferenceConfig":{"LabelHeaders":["a","b","c"]}`), nil)
	body, err := e.Explain(context.Background(), Request{
		Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{funcPredictor(threeLabels)},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, body)
	if strings.Join(d.LabelHeaders, ",") != "a,b,c" {
		t.Errorf("label_headers %v", d.LabelHeaders)
	}
	for r, x := range recs {
		comparePhi(t, "three labels", d.phis(r), bruteShapley(threeLabels, x, base, ident), 1e-9)
	}
}
