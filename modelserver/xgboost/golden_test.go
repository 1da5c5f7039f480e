package xgboost

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sagehost/sagehost/internal/testutil/testfile"
)

// The golden cases come from testdata/make_golden.py (XGBoost 1.7.4): each
// model saved as JSON, UBJSON and (where XGBoost can) the legacy binary
// format, with prediction rows and XGBoost's own predictions.

type goldenManifest struct {
	XGBoostVersion string `json:"xgboost_version"`
	Cases          []struct {
		Name           string   `json:"name"`
		Formats        []string `json:"formats"`
		Objective      string   `json:"objective"`
		Booster        string   `json:"booster"`
		Rows           int      `json:"rows"`
		BestNTreeLimit int      `json:"best_ntree_limit"`
	} `json:"cases"`
}

type goldenCase struct {
	Name           string       `json:"name"`
	Objective      string       `json:"objective"`
	Booster        string       `json:"booster"`
	BestNTreeLimit int          `json:"best_ntree_limit"`
	Rows           [][]*float64 `json:"rows"`
	Margin         []*float64   `json:"margin"`
	Pred           []*float64   `json:"pred"`
	MarginAll      []*float64   `json:"margin_all_trees"`
	PredAll        []*float64   `json:"pred_all_trees"`
}

func loadManifest(t testing.TB) goldenManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m goldenManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	return m
}

func loadCase(t testing.TB, name string) *goldenCase {
	t.Helper()
	var c goldenCase
	if err := json.Unmarshal(readGz(t, name+".cases.json.gz"), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func f32s(v []*float64) []float32 {
	out := make([]float32, len(v))
	for i, p := range v {
		if p == nil {
			out[i] = nan32
		} else {
			out[i] = float32(*p)
		}
	}
	return out
}

func (c *goldenCase) matrix() Matrix {
	rows := make([][]float32, len(c.Rows))
	for i, r := range c.Rows {
		rows[i] = f32s(r)
	}
	return NewMatrix(rows)
}

// sameFloat32 is bit-for-bit equality, NaN equal to NaN.
func sameFloat32(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func ulps(a, b float32) int64 {
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia < 0x80000000 != (ib < 0x80000000) {
		return math.MaxInt32
	}
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

func compareExact(t *testing.T, what string, got *Predictions, want []*float64) {
	t.Helper()
	w := f32s(want)
	if len(got.Values) != len(w) {
		t.Fatalf("%s: %d values, want %d", what, len(got.Values), len(w))
	}
	bad := 0
	for i := range w {
		if !sameFloat32(got.Values[i], w[i]) {
			if bad < 5 {
				t.Errorf("%s: value %d (row %d) = %v (%#x), XGBoost %v (%#x), %d ulp", what, i, i/max(got.Width, 1),
					got.Values[i], math.Float32bits(got.Values[i]), w[i], math.Float32bits(w[i]), ulps(got.Values[i], w[i]))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ from XGBoost", what, bad, len(w))
	}
}

func TestGoldenPredictions(t *testing.T) {
	man := loadManifest(t)
	if len(man.Cases) < 25 {
		t.Fatalf("only %d golden cases", len(man.Cases))
	}
	for _, mc := range man.Cases {
		c := loadCase(t, mc.Name)
		x := c.matrix()
		for _, format := range mc.Formats {
			t.Run(mc.Name+"/"+format, func(t *testing.T) {
				m, err := Parse(readGz(t, mc.Name+"."+format+".gz"))
				if err != nil {
					t.Fatal(err)
				}
				wantFormat := map[string]string{"json": "json", "ubj": "ubjson", "bin": "binary"}[format]
				if m.Format() != wantFormat || m.Objective() != c.Objective || m.Booster() != c.Booster {
					t.Fatalf("format %s objective %s booster %s, want %s %s %s", m.Format(), m.Objective(), m.Booster(), wantFormat, c.Objective, c.Booster)
				}
				if m.BestNTreeLimit() != c.BestNTreeLimit {
					t.Errorf("best_ntree_limit %d, want %d", m.BestNTreeLimit(), c.BestNTreeLimit)
				}
				// One row at a time (the walk's remainder path), and
				// batches split across goroutines.
				single := &Predictions{Width: m.NumGroups()}
				for r := 0; r < x.Rows; r++ {
					p, err := m.Predict(Matrix{Rows: 1, Cols: x.Cols, Values: x.Values[r*x.Cols : (r+1)*x.Cols]}, PredictOptions{OutputMargin: true})
					if err != nil {
						t.Fatal(err)
					}
					single.Values = append(single.Values, p.Values...)
				}
				compareExact(t, "margin (row by row)", single, c.Margin)
				for _, threads := range []int{1, 3} {
					margin, err := m.Predict(x, PredictOptions{OutputMargin: true, Threads: threads})
					if err != nil {
						t.Fatal(err)
					}
					compareExact(t, "margin", margin, c.Margin)
					pred, err := m.Predict(x, PredictOptions{Threads: threads})
					if err != nil {
						t.Fatal(err)
					}
					compareExact(t, "prediction", pred, c.Pred)
					marginAll, err := m.Predict(x, PredictOptions{OutputMargin: true, AllTrees: true, Threads: threads})
					if err != nil {
						t.Fatal(err)
					}
					compareExact(t, "margin (all trees)", marginAll, c.MarginAll)
					predAll, err := m.Predict(x, PredictOptions{AllTrees: true, Threads: threads})
					if err != nil {
						t.Fatal(err)
					}
					compareExact(t, "prediction (all trees)", predAll, c.PredAll)
				}
			})
		}
	}
}

func TestGoldenEarlyStoppingUsesBestNTreeLimit(t *testing.T) {
	c := loadCase(t, "early_stopping")
	m, err := Parse(readGz(t, "early_stopping.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if m.DefaultTrees() >= m.NumTrees() || m.DefaultTrees() != c.BestNTreeLimit {
		t.Fatalf("default trees %d of %d, best_ntree_limit %d: the case does not exercise early stopping",
			m.DefaultTrees(), m.NumTrees(), c.BestNTreeLimit)
	}
	same := true
	for i := range c.Margin {
		if *c.Margin[i] != *c.MarginAll[i] {
			same = false
		}
	}
	if same {
		t.Fatal("best_ntree_limit and all trees predict the same: the case proves nothing")
	}
}

func TestGoldenShortRowsAreMissing(t *testing.T) {
	// XGBoost treats the features a narrower matrix lacks as missing: the
	// golden rows with trailing NaNs cut off must predict the same.
	c := loadCase(t, "missing_values")
	m, err := Parse(readGz(t, "missing_values.ubj.gz"))
	if err != nil {
		t.Fatal(err)
	}
	full := c.matrix()
	want, err := m.Predict(full, PredictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	narrow := Matrix{Rows: full.Rows, Cols: full.Cols - 1}
	var rows []int
	for r := 0; r < full.Rows; r++ {
		if v := full.Values[r*full.Cols+full.Cols-1]; v != v {
			narrow.Values = append(narrow.Values, full.Values[r*full.Cols:r*full.Cols+full.Cols-1]...)
			rows = append(rows, r)
		}
	}
	narrow.Rows = len(rows)
	if len(rows) < 3 {
		t.Fatalf("only %d rows with the last feature missing", len(rows))
	}
	got, err := m.Predict(narrow, PredictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if !sameFloat32(got.Values[i], want.Values[r]) {
			t.Errorf("row %d: narrow %v, full %v", r, got.Values[i], want.Values[r])
		}
	}
}

func TestGoldenFormatsAgree(t *testing.T) {
	// The three encodings of a model flatten to the same nodes.
	for _, name := range []string{"trees100", "dart_binary", "multi_softprob_parallel_tree"} {
		var models []*Model
		for _, f := range []string{"json", "ubj", "bin"} {
			m, err := Parse(readGz(t, name+"."+f+".gz"))
			if err != nil {
				t.Fatal(err)
			}
			models = append(models, m)
		}
		for _, m := range models[1:] {
			if len(m.nodes) != len(models[0].nodes) || len(m.trees) != len(models[0].trees) {
				t.Fatalf("%s: %s has %d nodes in %d trees, json %d in %d", name, m.Format(), len(m.nodes), len(m.trees), len(models[0].nodes), len(models[0].trees))
			}
			for i := range m.nodes {
				a, b := m.nodes[i], models[0].nodes[i]
				if math.Float32bits(a.cond) != math.Float32bits(b.cond) || a.info != b.info || a.left != b.left ||
					math.Float32bits(m.leafValue[i]) != math.Float32bits(models[0].leafValue[i]) {
					t.Fatalf("%s: %s node %d = %+v, json %+v", name, m.Format(), i, m.nodes[i], models[0].nodes[i])
				}
			}
		}
	}
}

func TestGoldenUBJSONTranscodesToTheJSONModel(t *testing.T) {
	// Decoding the UBJSON model and the JSON model must give equal documents.
	j, err := ubjsonToJSON(readGz(t, "categorical.ubj.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(j, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jsonNonFinite(readGz(t, "categorical.json.gz")), &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("transcoded UBJSON differs from the JSON model:\n%.300s\n%.300s", ja, jb)
	}
}

func readGz(t testing.TB, name string) []byte {
	return testfile.Gunzip(t, filepath.Join("testdata", "golden", name))
}
