package clarify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func linear2(x []float64) []float64 { return []float64{2*x[0] + 3*x[1]} }

// TestResponseLayout pins the whole answer for a small case (spec 7.4).
func TestResponseLayout(t *testing.T) {
	e := newExplainer(t, baselineConfig("0,0\n", "", `,"InferenceConfig":{"FeatureHeaders":["f1","f2"],"LabelHeaders":["y"]}`), nil)
	res, err := e.ExplainResult(context.Background(), Request{
		Body: []byte("1,1\n0.5,-1\n"), ContentType: "text/csv", Accept: "text/csv",
		EnableExplanations: "[0]>`1`",
		Predictors:         []Predictor{funcPredictor(linear2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"1.0","predictions":{"content_type":"text/csv; charset=utf-8","data":"5\n-2\n"},"label_headers":["y"],` +
		`"explanations":{"kernel_shap":[[{"feature_header":"f1","attributions":[{"attribution":[2]}]},{"feature_header":"f2","attributions":[{"attribution":[3]}]}],null]}}`
	if string(res.Body) != want {
		t.Errorf("response\n%s\nwant\n%s", res.Body, want)
	}
	if res.Records != 2 || res.Explained != 1 || res.SyntheticRows != 3 {
		t.Errorf("counts %+v, want 2 records, 1 explained, 3 rows (1 baseline + 2 coalitions)", res)
	}

	// Nothing explained: "explanations":{}.
	body, err := e.Explain(context.Background(), Request{
		Body: []byte("1,1\n"), ContentType: "text/csv", Accept: "text/csv", EnableExplanations: "`false`",
		Predictors: []Predictor{funcPredictor(linear2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"version":"1.0","predictions":{"content_type":"text/csv; charset=utf-8","data":"5\n"},"label_headers":["y"],"explanations":{}}`
	if string(body) != want {
		t.Errorf("response\n%s\nwant\n%s", body, want)
	}
}

func TestEnableExplanations(t *testing.T) {
	// The model's CSV output is "label,probability".
	labelProb := func(x []float64) []float64 {
		p := 1 / (1 + math.Exp(-(x[0] - x[1])))
		l := 0.0
		if p > 0.5 {
			l = 1
		}
		return []float64{l, p}
	}
	recs := "2,0\n0,2\n1,0.5\n-1,-3\n" // p > 0.5 for records 1, 3, 4
	cfg := baselineConfig("0,0\n", "", `,"InferenceConfig":{"ProbabilityIndex":1}`)
	for _, tc := range []struct {
		config, override string
		want             []bool
	}{
		{"", "", []bool{true, true, true, true}},
		{"`true`", "", []bool{true, true, true, true}},
		{"`false`", "", []bool{false, false, false, false}},
		{"[1]>`0.5`", "", []bool{true, false, true, true}},
		{"`false`", "[1]>`0.5`", []bool{true, false, true, true}},
		{"[1]>`0.5`", "[0]==`0`", []bool{false, true, false, false}},
	} {
		c := cfg
		if tc.config != "" {
			c = strings.Replace(cfg, `{"ShapConfig"`, `{"EnableExplanations":"`+tc.config+`","ShapConfig"`, 1)
		}
		e := newExplainer(t, c, nil)
		res, err := e.ExplainResult(context.Background(), Request{
			Body: []byte(recs), ContentType: "text/csv", Accept: "text/csv", EnableExplanations: tc.override,
			Predictors: []Predictor{funcPredictor(labelProb)},
		})
		if err != nil {
			t.Fatalf("%q/%q: %v", tc.config, tc.override, err)
		}
		d := decode(t, res.Body)
		n := 0
		for r, want := range tc.want {
			if got := d.phis(r) != nil; got != want {
				t.Errorf("%q/%q: record %d explained %v, want %v", tc.config, tc.override, r+1, got, want)
			}
			if want {
				n++
				// ProbabilityIndex 1: the probability is explained, one label.
				if p := d.phis(r); len(p[0]) != 1 {
					t.Errorf("record %d: %d labels, want 1", r+1, len(p[0]))
				}
			}
		}
		if res.Explained != n {
			t.Errorf("%q/%q: Explained %d, want %d", tc.config, tc.override, res.Explained, n)
		}
		if n == 0 && (d.Explanations.KernelSHAP != nil || !strings.Contains(string(res.Body), `"explanations":{}`)) {
			t.Errorf("nothing explained: %s", res.Body)
		}
	}

	e := newExplainer(t, cfg, nil)
	for _, tc := range []struct{ expr, want string }{
		{"[1]", "gives 0.8807970779778823 on record 1's model output [1,0.8807970779778823], not true or false"},
		{"foo", "gives null"},
		{"[1]>>`0`", "not a valid JMESPath expression"},
	} {
		_, err := e.Explain(context.Background(), Request{
			Body: []byte(recs), ContentType: "text/csv", Accept: "text/csv", EnableExplanations: tc.expr,
			Predictors: []Predictor{funcPredictor(labelProb)},
		})
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EnableExplanations %q: %v, want a bad request containing %q", tc.expr, err, tc.want)
		}
	}
}

// jsonModel answers {"predicted_label":l,"probability":p} lines for
// {"features":[...]} records.
func jsonModel(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
	rows, err := parseTestRows(body, mimeJSONLines)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	for _, x := range rows {
		p := sigmoidModel(x)[0]
		l := 0
		if p > 0.5 {
			l = 1
		}
		fmt.Fprintf(&b, "{\"predicted_label\":%d,\"probability\":%v}\n", l, p)
	}
	return []byte(b.String()), "application/jsonlines", nil
}

func TestJSONLines(t *testing.T) {
	base, recs := cut(testBase, 5), append(cut(testRecs, 5), []float64{2, -2, 0, 0, -3})
	var baseline strings.Builder
	for _, b := range base {
		fmt.Fprintf(&baseline, "{\"features\":%s}\n", strings.ReplaceAll("["+strings.TrimSpace(csvRows([][]float64{b}))+"]", " ", ""))
	}
	var body strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&body, "{\"id\":1,\"features\":[%s]}\n", strings.TrimSpace(csvRows([][]float64{r})))
	}
	q, _ := jsonQuote(baseline.String())
	cfg := `{"EnableExplanations":"probability>` + "`0.5`" + `",
		"InferenceConfig":{"FeaturesAttribute":"features","ContentTemplate":"{\"features\":$features}","ProbabilityAttribute":"probability","FeatureHeaders":["a","b","c","d","e"]},
		"ShapConfig":{"ShapBaselineConfig":{"MimeType":"application/jsonlines","ShapBaseline":` + q + `}}}`
	e := newExplainer(t, cfg, nil)
	var seen atomic.Value
	model := func(ctx context.Context, b []byte, ct, accept string) ([]byte, string, error) {
		seen.Store(string(b))
		return jsonModel(ctx, b, ct, accept)
	}
	res, err := e.ExplainResult(context.Background(), Request{
		Body: []byte(body.String()), ContentType: "application/jsonlines", Accept: "application/jsonlines",
		Predictors: []Predictor{model},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, res.Body)
	if d.Predictions.ContentType != "application/jsonlines" || !strings.Contains(d.Predictions.Data, `"probability"`) {
		t.Errorf("predictions %+v", d.Predictions)
	}
	if !strings.HasPrefix(seen.Load().(string), `{"features":[`) {
		t.Errorf("synthetic records were not built with ContentTemplate: %.80s", seen.Load())
	}
	for r, x := range recs {
		explain := sigmoidModel(x)[0] > 0.5
		if got := d.phis(r) != nil; got != explain {
			t.Errorf("record %d: explained %v, want %v (probability %v)", r+1, got, explain, sigmoidModel(x)[0])
			continue
		}
		if explain {
			comparePhi(t, "JSON Lines", d.phis(r), bruteShapley(sigmoidModel, x, base, ident), 1e-9)
			if h := d.Explanations.KernelSHAP[r][2].FeatureHeader; h != "c" {
				t.Errorf("feature_header %q, want c", h)
			}
		}
	}
	if res.Explained == 0 || res.Explained == len(recs) {
		t.Errorf("the threshold explained %d of %d records; the test wants some of each", res.Explained, len(recs))
	}
}

func jsonQuote(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// TestCSVListOutput: label headers and probabilities as list-valued CSV
// columns, LabelIndex and ProbabilityIndex picking them.
func TestCSVListOutput(t *testing.T) {
	model := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		rows, err := parseTestRows(body, mimeCSV)
		if err != nil {
			return nil, "", err
		}
		var b strings.Builder
		for _, x := range rows {
			p := threeLabels(x)
			fmt.Fprintf(&b, "\"['cat','dog','fish']\",\"[%v,%v,%v]\"\n", p[0], p[1], p[2])
		}
		return []byte(b.String()), "text/csv", nil
	}
	base, recs := cut(testBase, 4), cut(testRecs, 4)
	e := newExplainer(t, baselineConfig(csvRows(base), "",
		`,"EnableExplanations":"!contains([1][:-1], max([1]))","InferenceConfig":{"LabelIndex":0,"ProbabilityIndex":1}`), nil)
	body, err := e.Explain(context.Background(), Request{
		Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{model},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, body)
	if strings.Join(d.LabelHeaders, ",") != "cat,dog,fish" {
		t.Errorf("label_headers %v, want those of LabelIndex", d.LabelHeaders)
	}
	for r, x := range recs {
		p := threeLabels(x)
		fishWon := p[2] > p[0] && p[2] > p[1]
		if got := d.phis(r) != nil; got != fishWon {
			t.Errorf("record %d: explained %v, want %v (last class won)", r+1, got, fishWon)
			continue
		}
		if fishWon {
			comparePhi(t, "list output", d.phis(r), bruteShapley(threeLabels, x, base, ident), 1e-9)
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newExplainer(t, baselineConfig("0,0\n", "", ""), nil)
	p := []Predictor{funcPredictor(linear2)}
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Body: []byte("1,1"), ContentType: "application/json", Accept: "text/csv"}, `ContentType "application/json" is not supported`},
		{Request{Body: []byte("1,1"), ContentType: "text/csv", Accept: "application/json"}, `Accept "application/json" is not supported`},
		{Request{Body: []byte("1,1"), ContentType: "text/csv"}, `Accept "" is not supported`},
		{Request{Body: []byte("1,1,1"), ContentType: "text/csv", Accept: "text/csv"}, `record 1 has 3 features, but the SHAP baseline has 2`},
		{Request{Body: []byte(""), ContentType: "text/csv", Accept: "text/csv"}, `no records`},
		{Request{Body: []byte(`{"a":[1,2]}`), ContentType: "application/jsonlines", Accept: "application/jsonlines"}, `no FeaturesAttribute`},
		{Request{Body: []byte("[1,2]\n{oops"), ContentType: "application/jsonlines", Accept: "application/jsonlines"}, `record 2 is not JSON`},
	} {
		tc.req.Predictors = p
		_, err := e.Explain(context.Background(), tc.req)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q (%s): %v, want a bad request containing %q", tc.req.Body, tc.req.ContentType, err, tc.want)
		}
	}

	// A model whose answer has the wrong number of rows.
	short := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		return []byte("1\n"), "text/csv", nil
	}
	_, err := e.Explain(context.Background(), Request{Body: []byte("1,1\n2,2\n"), ContentType: "text/csv", Accept: "text/csv", Predictors: []Predictor{short}})
	if !errors.Is(err, ErrModelOutput) || !strings.Contains(err.Error(), "1 rows for the 2 records") {
		t.Errorf("short answer: %v", err)
	}
	words := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		return []byte("yes\n"), "text/csv", nil
	}
	_, err = e.Explain(context.Background(), Request{Body: []byte("1,1\n"), ContentType: "text/csv", Accept: "text/csv", Predictors: []Predictor{words}})
	if !errors.Is(err, ErrModelOutput) || !strings.Contains(err.Error(), `"yes" is not a number`) {
		t.Errorf("non-numeric answer: %v", err)
	}
}

func TestBatching(t *testing.T) {
	base := cut(testBase, 6)
	recs := cut(testRecs, 6)
	const perRecord = 1<<6 - 2
	total := len(base) + len(recs)*perRecord*len(base)

	// MaxRecordCount: every request holds at most that many records.
	rec := &recorder{}
	e := newExplainer(t, baselineConfig(csvRows(base), "", `,"InferenceConfig":{"MaxRecordCount":7}`), nil)
	res, err := e.ExplainResult(context.Background(), Request{
		Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{rec.wrap(funcPredictor(interactions))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SyntheticRows != total {
		t.Errorf("%d synthetic rows, want %d", res.SyntheticRows, total)
	}
	sum := 0
	for _, n := range rec.records[1:] { // the first call is the client's request
		if n > 7 {
			t.Errorf("a request of %d records with MaxRecordCount 7", n)
		}
		sum += n
	}
	if want := 1 + (total+6)/7; rec.calls != want || sum != total {
		t.Errorf("%d calls with %d rows, want %d calls with %d rows", rec.calls, sum, want, total)
	}

	// MaxPayloadInMB: wide rows, 1 MiB per request at most.
	wide := make([]float64, 200)
	wideBase := make([]float64, 200)
	for i := range wide {
		wide[i] = 1.0 / float64(i+3)
		wideBase[i] = -1.0 / float64(i+7)
	}
	rec = &recorder{}
	e = newExplainer(t, baselineConfig(csvRows([][]float64{wideBase}), "", `,"InferenceConfig":{"MaxPayloadInMB":1}`), nil)
	res, err = e.ExplainResult(context.Background(), Request{
		Body: []byte(csvRows([][]float64{wide})), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{rec.wrap(funcPredictor(interactions))},
	})
	if err != nil {
		t.Fatal(err)
	}
	bytes := 0
	for _, n := range rec.bytes[1:] {
		if n > 1<<20 {
			t.Errorf("a request of %d bytes with MaxPayloadInMB 1", n)
		}
		bytes += n
	}
	if min := 1 + (bytes+1<<20-1)/(1<<20); rec.calls < min || rec.calls > min+1 {
		t.Errorf("%d calls for %d bytes, want the fewest that fit (%d)", rec.calls, bytes, min)
	}
	if res.SyntheticRows != 1+2*200+2048 {
		t.Errorf("%d synthetic rows, want 1 + 2M+2048", res.SyntheticRows)
	}

	// Several instances: all of them get batches. Each call takes a
	// little time, as a real model's does, so that one worker cannot
	// drain the queue before the others start.
	slow := func(p Predictor) Predictor {
		return func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
			time.Sleep(2 * time.Millisecond)
			return p(ctx, body, ct, accept)
		}
	}
	recs3 := []*recorder{{}, {}, {}}
	e = newExplainer(t, baselineConfig(csvRows(base), "", `,"InferenceConfig":{"MaxRecordCount":10}`), nil)
	_, err = e.Explain(context.Background(), Request{
		Body: []byte(csvRows(recs)), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{recs3[0].wrap(slow(funcPredictor(interactions))), recs3[1].wrap(slow(funcPredictor(interactions))), recs3[2].wrap(slow(funcPredictor(interactions)))},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs3 {
		if r.calls < 2 {
			t.Errorf("instance %d got %d calls; the batches should spread over every instance", i, r.calls)
		}
	}

	// A synthetic record larger than MaxPayloadInMB.
	big := strings.Repeat("a", 700000)
	e = newExplainer(t, baselineConfig("b,"+big+"\n", "", `,"InferenceConfig":{"MaxPayloadInMB":1}`), nil)
	_, err = e.Explain(context.Background(), Request{Body: []byte(big + ",c\n"), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
			return []byte("1\n"), "text/csv", nil
		}}})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "MaxPayloadInMB") {
		t.Errorf("oversized synthetic record: %v", err)
	}
}

func TestTimeBudget(t *testing.T) {
	slow := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
		return funcPredictor(interactions)(ctx, body, ct, accept)
	}
	e := newExplainer(t, baselineConfig(csvRows(cut(testBase, 6)), "", `,"InferenceConfig":{"MaxRecordCount":5}`), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := e.Explain(ctx, Request{
		Body: []byte(csvRows(cut(testRecs, 6))), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{slow},
	})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a time-limit error", err)
	}
	msg := err.Error()
	var done, total int
	if _, serr := fmt.Sscanf(msg[strings.Index(msg, ": ")+2:], "%d of %d synthetic rows predicted", &done, &total); serr != nil ||
		!strings.HasPrefix(msg, "the explanation did not finish within the time limit: ") ||
		!strings.Contains(msg, "lower NumberOfSamples or raise MaxRecordCount") || done >= total || total != 2+3*62*2 {
		t.Errorf("message %q", msg)
	}
}

type modelError struct{ status int }

func (e *modelError) Error() string { return fmt.Sprintf("model answered %d", e.status) }

func TestPredictorErrorPassesThrough(t *testing.T) {
	want := &modelError{status: 500}
	e := newExplainer(t, baselineConfig(csvRows(cut(testBase, 4)), "", `,"InferenceConfig":{"MaxRecordCount":3}`), nil)
	for _, failAt := range []int32{1, 2, 5} {
		var calls atomic.Int32
		p := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
			if calls.Add(1) == failAt {
				return nil, "", want
			}
			return funcPredictor(interactions)(ctx, body, ct, accept)
		}
		_, err := e.Explain(context.Background(), Request{
			Body: []byte(csvRows(cut(testRecs, 4))), ContentType: "text/csv", Accept: "text/csv",
			Predictors: []Predictor{p},
		})
		if err != want {
			t.Errorf("failing call %d: got %v (%T), want the Predictor's error unchanged", failAt, err, err)
		}
		if KindOf(err) != 0 {
			t.Errorf("KindOf(Predictor error) = %v", KindOf(err))
		}
	}
}

func TestShapBaselineUri(t *testing.T) {
	var fetches atomic.Int32
	fetch := func(ctx context.Context, uri string) ([]byte, error) {
		fetches.Add(1)
		if uri != "s3://bucket/baseline.csv" {
			return nil, fmt.Errorf("no such object %s", uri)
		}
		return []byte(csvRows(cut(testBase, 4))), nil
	}
	cfg := `{"ShapConfig":{"ShapBaselineConfig":{"ShapBaselineUri":"s3://bucket/baseline.csv"}}}`
	e := newExplainer(t, cfg, fetch)
	if err := e.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		body, err := e.Explain(context.Background(), Request{
			Body: []byte(csvRows(cut(testRecs, 4))), ContentType: "text/csv", Accept: "text/csv",
			Predictors: []Predictor{funcPredictor(interactions)},
		})
		if err != nil {
			t.Fatal(err)
		}
		comparePhi(t, "fetched baseline", decode(t, body).phis(0), bruteShapley(interactions, testRecs[0][:4], cut(testBase, 4), ident), 1e-9)
	}
	if fetches.Load() != 1 {
		t.Errorf("%d fetches, want 1", fetches.Load())
	}

	e = newExplainer(t, strings.Replace(cfg, "baseline.csv", "missing.csv", 1), fetch)
	if err := e.Prepare(context.Background()); !errors.Is(err, ErrBaseline) || !strings.Contains(err.Error(), "no such object") {
		t.Errorf("missing baseline: %v", err)
	}
	if _, err := New(&Config{ShapConfig: &ShapConfig{ShapBaselineConfig: &ShapBaselineConfig{ShapBaselineUri: "s3://b/k"}}}, nil); err == nil {
		t.Error("New without a Fetch for ShapBaselineUri succeeded")
	}
}

// TestCategorical: string features pass through to the model unchanged.
func TestCategorical(t *testing.T) {
	colors := map[string]float64{"red": 1, "green": 2, "blue, dark": 3}
	model := func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		rows, err := parseRecords(body, mimeCSV, nil)
		if err != nil {
			return nil, "", err
		}
		var b strings.Builder
		for _, r := range rows {
			c, ok := colors[r[1].str]
			if !ok {
				return nil, "", fmt.Errorf("unknown color %q", r[1].str)
			}
			fmt.Fprintf(&b, "%v\n", r[0].num*c+r[2].num)
		}
		return []byte(b.String()), "text/csv", nil
	}
	e := newExplainer(t, baselineConfig("1,green,0\n", "", ""), nil)
	body, err := e.Explain(context.Background(), Request{
		Body: []byte("2,\"blue, dark\",1\n"), ContentType: "text/csv", Accept: "text/csv", Predictors: []Predictor{model},
	})
	if err != nil {
		t.Fatal(err)
	}
	// v({}) = 2, v(0) = 4, v(1) = 3, v(2) = 3, v(01) = 6, v(02) = 5, v(12) = 4, v(012) = 7.
	comparePhi(t, "categorical", decode(t, body).phis(0), [][]float64{{2.5}, {1.5}, {1}}, 1e-12)
}

// TestWorkBound: a request whose explanations would need more synthetic
// rows than one request may ask for is refused before anything is
// allocated or sent to the model, whatever NumberOfSamples allows.
func TestWorkBound(t *testing.T) {
	x, b1, b2 := make([]float64, 25), make([]float64, 25), make([]float64, 25)
	for i := range x {
		x[i], b2[i] = float64(i+1), 1
	}
	e := newExplainer(t, baselineConfig(csvRows([][]float64{b1, b2}), `,"NumberOfSamples":3000000`, ""), nil)
	rec := &recorder{}
	_, err := e.Explain(context.Background(), Request{
		Body: []byte(csvRows([][]float64{x})), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{rec.wrap(funcPredictor(func(x []float64) []float64 { return []float64{x[0]} }))},
	})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "synthetic rows") {
		t.Fatalf("6 million synthetic rows: %v", err)
	}
	if rec.calls != 1 {
		t.Errorf("%d calls to the model, want only the client's records'", rec.calls)
	}

	// The same request with a sample budget that fits is explained.
	e = newExplainer(t, baselineConfig(csvRows([][]float64{b1, b2}), `,"NumberOfSamples":3000`, ""), nil)
	if _, err := e.Explain(context.Background(), Request{
		Body: []byte(csvRows([][]float64{x})), ContentType: "text/csv", Accept: "text/csv",
		Predictors: []Predictor{funcPredictor(func(x []float64) []float64 { return []float64{x[0]} })},
	}); err != nil {
		t.Fatal(err)
	}
}
