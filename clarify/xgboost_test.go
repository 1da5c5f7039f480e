package clarify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagehost/sagehost/internal/testutil/testfile"

	"github.com/sagehost/sagehost/modelserver/xgboost"
)

// xgbPredictor serves an XGBoost model in-process through the built-in
// server's handler, as an instance would.
func xgbPredictor(h http.Handler) Predictor {
	return func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/invocations", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return nil, "", fmt.Errorf("model answered %d: %s", rec.Code, rec.Body)
		}
		return rec.Body.Bytes(), rec.Header().Get("Content-Type"), nil
	}
}

func loadXGBoost(t *testing.T, name string) http.Handler {
	t.Helper()
	b := testfile.Gunzip(t, filepath.Join("testdata", "xgb_"+name+".json.gz"))
	m, err := xgboost.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return xgboost.NewHandler(m)
}

type xgbCase struct {
	Features            int                      `json:"features"`
	Baseline            [][]float64              `json:"baseline"`
	Records             [][]float64              `json:"records"`
	Predictions         [][]float64              `json:"predictions"`
	BaselinePredictions [][]float64              `json:"baseline_predictions"`
	Explanations        map[string][][][]float64 `json:"explanations"`
}

// loadXGBCases reads testdata/xgb_golden.json: the golden cases by name.
func loadXGBCases(t *testing.T) map[string]xgbCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "xgb_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]xgbCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestXGBoostGolden explains real XGBoost models (a regression, a binary
// and a 3-class classifier, served by the built-in server) and compares
// with the exact Shapley values testdata/make_golden.py computed with
// XGBoost itself.
func TestXGBoostGolden(t *testing.T) {
	cases := loadXGBCases(t)
	for _, name := range []string{"regression", "binary", "multiclass"} {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no golden case %s", name)
		}
		h := loadXGBoost(t, name)
		for _, lk := range []string{"identity", "logit"} {
			want, ok := c.Explanations[lk]
			if !ok {
				continue
			}
			t.Run(name+"/"+lk, func(t *testing.T) {
				shap := ""
				if lk == "logit" {
					shap = `,"UseLogit":true`
				}
				e := newExplainer(t, baselineConfig(csvRows(c.Baseline), shap, ""), nil)
				rec := &recorder{}
				res, err := e.ExplainResult(context.Background(), Request{
					Body: []byte(csvRows(c.Records)), ContentType: "text/csv", Accept: "text/csv",
					Predictors: []Predictor{rec.wrap(xgbPredictor(h))},
				})
				if err != nil {
					t.Fatal(err)
				}
				d := decode(t, res.Body)
				// The predictions are XGBoost's, as the container wrote them.
				lines := strings.Split(strings.TrimSpace(d.Predictions.Data), "\n")
				for r, line := range lines {
					for k, f := range strings.Split(line, ",") {
						var v float64
						fmt.Sscan(f, &v)
						if v != c.Predictions[r][k] {
							t.Errorf("prediction %d/%d = %v, XGBoost %v", r, k, v, c.Predictions[r][k])
						}
					}
				}
				worst := 0.0
				for r := range c.Records {
					worst = math.Max(worst, comparePhi(t, fmt.Sprintf("record %d", r+1), d.phis(r), want[r], 1e-9))
				}
				// The first record's last feature equals every baseline
				// row's: it is left out of the coalitions.
				if p := d.phis(0)[c.Features-1]; maxAbs([][]float64{p}) != 0 {
					t.Errorf("non-varying feature got %v", p)
				}
				t.Logf("%d records, %d synthetic rows in %d model calls; worst relative error %.2g", len(c.Records), res.SyntheticRows, rec.calls, worst)
			})
		}
	}
}

// TestXGBoostJSONLines explains the binary classifier through JSON Lines:
// records {"features":[...]}, FeaturesAttribute and ContentTemplate, the
// server's {"score":p} lines read by ProbabilityAttribute, and
// EnableExplanations "score>`0.5`".
func TestXGBoostJSONLines(t *testing.T) {
	cases := loadXGBCases(t)
	c := cases["binary"]
	var body strings.Builder
	for _, r := range c.Records {
		fmt.Fprintf(&body, "{\"id\":\"x\",\"features\":[%s]}\n", strings.TrimSpace(csvRows([][]float64{r})))
	}
	baseline, _ := json.Marshal(csvRows(c.Baseline))
	cfg := `{"EnableExplanations":"score>` + "`0.5`" + `",
		"InferenceConfig":{"FeaturesAttribute":"features","ContentTemplate":"{\"features\":$features}","ProbabilityAttribute":"score"},
		"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":` + string(baseline) + `}}}`
	e := newExplainer(t, cfg, nil)
	res, err := e.ExplainResult(context.Background(), Request{
		Body: []byte(body.String()), ContentType: "application/jsonlines", Accept: "application/jsonlines",
		Predictors: []Predictor{xgbPredictor(loadXGBoost(t, "binary"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, res.Body)
	explained := 0
	for r := range c.Records {
		want := c.Predictions[r][0] > 0.5
		if got := d.phis(r) != nil; got != want {
			t.Errorf("record %d (score %v): explained %v, want %v", r+1, c.Predictions[r][0], got, want)
			continue
		}
		if want {
			explained++
			comparePhi(t, fmt.Sprintf("record %d", r+1), d.phis(r), c.Explanations["identity"][r], 1e-9)
		}
	}
	if explained == 0 || explained == len(c.Records) {
		t.Errorf("%d of %d records explained; the golden records should have scores on both sides of 0.5", explained, len(c.Records))
	}
}
