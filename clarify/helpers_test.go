package clarify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sagehost/sagehost/internal/mediatype"
)

// model is an in-process model: features in, scores out.
type model func(x []float64) []float64

// funcPredictor serves a model as a container would: CSV rows or JSON Lines
// records (feature arrays, or objects holding them under "features") in;
// CSV rows or {"scores":[...]} / {"score":s} lines out, per Accept.
func funcPredictor(f model) Predictor {
	return func(ctx context.Context, body []byte, contentType, accept string) ([]byte, string, error) {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		rows, err := parseTestRows(body, mediatype.Base(contentType))
		if err != nil {
			return nil, "", err
		}
		var out bytes.Buffer
		jsonOut := mediatype.Base(accept) == mimeJSONLines
		for _, x := range rows {
			s := f(x)
			if jsonOut {
				if len(s) == 1 {
					fmt.Fprintf(&out, "{\"score\":%s}\n", strconv.FormatFloat(s[0], 'g', -1, 64))
				} else {
					b, _ := json.Marshal(map[string]any{"scores": s})
					out.Write(b)
					out.WriteByte('\n')
				}
				continue
			}
			for i, v := range s {
				if i > 0 {
					out.WriteByte(',')
				}
				out.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
			out.WriteByte('\n')
		}
		if jsonOut {
			return out.Bytes(), mimeJSONLines, nil
		}
		return out.Bytes(), "text/csv; charset=utf-8", nil
	}
}

func parseTestRows(body []byte, ct string) ([][]float64, error) {
	var rows [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var x []float64
		if ct == mimeJSONLines {
			var obj struct {
				Features []float64 `json:"features"`
			}
			if strings.HasPrefix(line, "[") {
				if err := json.Unmarshal([]byte(line), &x); err != nil {
					return nil, err
				}
			} else if err := json.Unmarshal([]byte(line), &obj); err != nil {
				return nil, err
			} else {
				x = obj.Features
			}
		} else {
			for _, f := range strings.Split(line, ",") {
				v, err := strconv.ParseFloat(f, 64)
				if err != nil {
					return nil, fmt.Errorf("model: %v", err)
				}
				x = append(x, v)
			}
		}
		rows = append(rows, x)
	}
	return rows, nil
}

// recorder counts a Predictor's calls and their sizes.
type recorder struct {
	mu      sync.Mutex
	calls   int
	records []int
	bytes   []int
}

func (r *recorder) wrap(p Predictor) Predictor {
	return func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		r.mu.Lock()
		r.calls++
		r.records = append(r.records, bytes.Count(body, []byte("\n")))
		r.bytes = append(r.bytes, len(body))
		r.mu.Unlock()
		return p(ctx, body, ct, accept)
	}
}

// bruteShapley computes exact Shapley values of v(S) = link(mean over
// baseline rows b of f(x on S, b elsewhere)) over every subset S, by the
// subset formula.
func bruteShapley(f model, x []float64, base [][]float64, lk func(float64) float64) [][]float64 {
	m := len(x)
	d := len(f(x))
	v := make([][]float64, 1<<m)
	z := make([]float64, m)
	for s := range v {
		acc := make([]float64, d)
		for _, b := range base {
			for i := range z {
				if s>>i&1 == 1 {
					z[i] = x[i]
				} else {
					z[i] = b[i]
				}
			}
			for c, y := range f(z) {
				acc[c] += y / float64(len(base))
			}
		}
		for c := range acc {
			acc[c] = lk(acc[c])
		}
		v[s] = acc
	}
	fact := func(n int) float64 {
		r := 1.0
		for i := 2; i <= n; i++ {
			r *= float64(i)
		}
		return r
	}
	phi := make([][]float64, m)
	for i := range phi {
		phi[i] = make([]float64, d)
		for s := range v {
			if s>>i&1 == 1 {
				continue
			}
			k := popcount(s)
			w := fact(k) * fact(m-k-1) / fact(m)
			for c := range d {
				phi[i][c] += w * (v[s|1<<i][c] - v[s][c])
			}
		}
	}
	return phi
}

func ident(p float64) float64 { return p }

func popcount(s int) int {
	n := 0
	for ; s > 0; s &= s - 1 {
		n++
	}
	return n
}

// csvRows renders rows of numbers as CSV.
func csvRows(rows [][]float64) string {
	var b strings.Builder
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// decoded is the response as tests read it.
type decoded struct {
	Version     string `json:"version"`
	Predictions struct {
		ContentType string `json:"content_type"`
		Data        string `json:"data"`
	} `json:"predictions"`
	LabelHeaders []string `json:"label_headers"`
	Explanations struct {
		KernelSHAP [][]struct {
			FeatureHeader string `json:"feature_header"`
			Attributions  []struct {
				Attribution []float64 `json:"attribution"`
			} `json:"attributions"`
		} `json:"kernel_shap"`
	} `json:"explanations"`
}

func decode(t *testing.T, body []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	if d.Version != "1.0" {
		t.Fatalf("version %q", d.Version)
	}
	return d
}

// phis returns record r's attributions (features × labels), nil if it was
// not explained.
func (d decoded) phis(r int) [][]float64 {
	if r >= len(d.Explanations.KernelSHAP) || d.Explanations.KernelSHAP[r] == nil {
		return nil
	}
	var out [][]float64
	for _, f := range d.Explanations.KernelSHAP[r] {
		out = append(out, f.Attributions[0].Attribution)
	}
	return out
}

// newExplainer builds an Explainer from config JSON.
func newExplainer(t testing.TB, cfgJSON string, fetch Fetch) *Explainer {
	t.Helper()
	cfg, err := ParseConfig(json.RawMessage(cfgJSON))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	e, err := New(cfg, fetch)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// baselineConfig is a config with an inline CSV baseline and extra
// ShapConfig and top-level members.
func baselineConfig(baseline string, shapExtra, extra string) string {
	b, _ := json.Marshal(baseline)
	cfg := `{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":` + string(b) + `}` + shapExtra + `}` + extra + `}`
	return cfg
}

// closeTo compares within tol relative to scale (at least 1).
func closeTo(got, want, tol, scale float64) bool {
	return math.Abs(got-want) <= tol*math.Max(scale, 1)
}

func maxAbs(m [][]float64) float64 {
	s := 0.0
	for _, r := range m {
		for _, v := range r {
			s = math.Max(s, math.Abs(v))
		}
	}
	return s
}

// comparePhi checks attributions against expected values within tol
// relative to the largest, returning the worst relative error.
func comparePhi(t *testing.T, what string, got, want [][]float64, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d features, want %d", what, len(got), len(want))
	}
	scale := math.Max(maxAbs(want), 1e-300)
	worst := 0.0
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: feature %d has %d labels, want %d", what, i, len(got[i]), len(want[i]))
		}
		for c := range want[i] {
			e := math.Abs(got[i][c]-want[i][c]) / scale
			worst = math.Max(worst, e)
			if e > tol {
				t.Errorf("%s: feature %d label %d = %.17g, want %.17g (relative error %.3g)", what, i, c, got[i][c], want[i][c], e)
			}
		}
	}
	return worst
}
