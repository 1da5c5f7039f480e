package xgboost

import (
	"strconv"
	"testing"
)

// BenchmarkPredict100Trees predicts the golden 100-tree model (binary
// logistic, depth 6, 10 features) on its 1000 golden rows per operation;
// testdata/bench_xgboost.py times XGBoost itself on the same model and rows.
func BenchmarkPredict100Trees(b *testing.B) {
	m := goldenModel(b, "trees100")
	x := loadCase(b, "trees100").matrix()
	if x.Rows != 1000 || m.NumTrees() != 100 {
		b.Fatalf("%d rows, %d trees", x.Rows, m.NumTrees())
	}
	for _, threads := range []int{1, 0} {
		name := "threads=" + strconv.Itoa(threads)
		if threads == 0 {
			name = "threads=GOMAXPROCS"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Predict(x, PredictOptions{Threads: threads}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*float64(x.Rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkInvocationsCSV is a whole /invocations request for the same 1000
// rows: CSV parsing, prediction and the CSV answer.
func BenchmarkInvocationsCSV(b *testing.B) {
	m := goldenModel(b, "trees100")
	x := loadCase(b, "trees100").matrix()
	body := encodeRows(x)[mimeCSV]
	h := NewHandler(m)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if r := do(b, h, "POST", "/invocations", mimeCSV, mimeCSV, body); r.status != 200 {
			b.Fatal(r.status, r.body)
		}
	}
	b.ReportMetric(float64(b.N)*float64(x.Rows)/b.Elapsed().Seconds(), "rows/s")
}
