package clarify

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
)

// BenchmarkExplain times one InvokeEndpoint with explanations for every
// record: 10 and 50 features, 1 and 10 records, one baseline row, the
// default NumberOfSamples (so 1022 and 2148 coalitions per record), against
// an in-process model (CSV in and out, a nonlinear function of the
// features; model=constant answers 0.5 per row without reading it, which
// leaves the explainer's own cost) on one instance. rows/op is the synthetic
// rows predicted.
//
//	go test ./clarify/ -run '^$' -bench BenchmarkExplain -benchtime 20x
func BenchmarkExplain(b *testing.B) {
	f := func(x []float64) []float64 {
		s := 0.0
		for i, v := range x {
			s += math.Sin(v) * float64(i%7+1)
			if i > 0 {
				s += 0.1 * v * x[i-1]
			}
		}
		return []float64{s}
	}
	constant := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		return bytes.Repeat([]byte("0.5\n"), bytes.Count(body, []byte("\n"))), "text/csv", nil
	}
	for _, mname := range []string{"func", "constant"} {
		for _, nf := range []int{10, 50} {
			for _, nr := range []int{1, 10} {
				b.Run(fmt.Sprintf("model=%s/features=%d/records=%d", mname, nf, nr), func(b *testing.B) {
					base := make([][]float64, 1)
					base[0] = make([]float64, nf)
					recs := make([][]float64, nr)
					for r := range recs {
						recs[r] = make([]float64, nf)
						for i := range recs[r] {
							base[0][i] = 0.1 * float64(i)
							recs[r][i] = math.Cos(float64(i*7+r*13)) * 3
						}
					}
					e := newExplainer(b, baselineConfig(csvRows(base), `,"Seed":1`, ""), nil)
					req := Request{Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
						Predictors: []Predictor{funcPredictor(f)}}
					if mname == "constant" {
						req.Predictors = []Predictor{constant}
					}
					rows := 0
					b.ResetTimer()
					for range b.N {
						res, err := e.ExplainResult(context.Background(), req)
						if err != nil {
							b.Fatal(err)
						}
						rows = res.SyntheticRows
					}
					b.ReportMetric(float64(rows), "rows/op")
				})
			}
		}
	}
}
