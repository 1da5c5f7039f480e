package xgboost

import (
	"math"
	"strings"
	"testing"
)

func TestPyFloatMatchesPythonRepr(t *testing.T) {
	// Python 3.11: repr(v) for each value.
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0.1, "0.1"},
		{1, "1.0"},
		{1e16, "1e+16"},
		{1e-5, "1e-05"},
		{0.0001, "0.0001"},
		{123456789012345678, "1.2345678901234568e+17"},
		{math.Copysign(0, -1), "-0.0"},
		{float64(float32(0.438619)), "0.4386189877986908"},
		{1e15, "1000000000000000.0"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{float64(float32(3.4e38)), "3.3999999521443642e+38"},
		{12345.678, "12345.678"},
		{float64(float32(1e-7)), "1.0000000116860974e-07"},
		{-2.5, "-2.5"},
		{math.NaN(), "nan"},
		{math.Inf(-1), "-inf"},
	} {
		if got := string(pyFloat(nil, c.v)); got != c.want {
			t.Errorf("pyFloat(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	if got := string(pyJSONFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("pyJSONFloat(NaN) = %q", got)
	}
}

func TestEncodePredictions(t *testing.T) {
	one := &Predictions{Rows: 2, Width: 1, Values: []float32{0.5, 0.25}}
	multi := &Predictions{Rows: 2, Width: 3, Values: []float32{0.1, 0.2, 0.7, 1, 0, 0}}
	for _, c := range []struct {
		p      *Predictions
		accept string
		batch  bool
		want   string
	}{
		{one, mimeCSV, false, "0.5\n0.25\n"},
		{one, mimeCSV, true, "0.5\n0.25\n"},
		{one, mimeJSON, false, `{"predictions": [{"score": 0.5}, {"score": 0.25}]}`},
		{one, mimeJSONLines, false, "{\"score\": 0.5}\n{\"score\": 0.25}\n"},
		{multi, mimeCSV, false, "0.10000000149011612,0.20000000298023224,0.699999988079071\n1.0,0.0,0.0\n"},
		{multi, mimeCSV, true, "[0.10000000149011612, 0.20000000298023224, 0.699999988079071]\n[1.0, 0.0, 0.0]\n"},
		{multi, mimeJSON, false, `{"predictions": [{"score": [0.10000000149011612, 0.20000000298023224, 0.699999988079071]}, {"score": [1.0, 0.0, 0.0]}]}`},
	} {
		if got := string(encodePredictions(c.p, c.accept, c.batch)); got != c.want {
			t.Errorf("%s batch=%v:\n got %q\nwant %q", c.accept, c.batch, got, c.want)
		}
	}
}

func TestSelectedOutputAsTheContainer(t *testing.T) {
	// Expected strings from the container's serve_utils functions
	// (get_selected_predictions, encode_selected_predictions) in Python.
	logistic, _ := lookupObjective("binary:logistic")
	keys := []string{"probabilities", "predicted_label", "labels", "probability"}
	p := newSelectPlan(logistic, keys)
	rows := [][]selected{p.selectPredictions(0, []float32{0.7})}
	if got, want := string(p.encodeSelected(rows, mimeJSON, false)),
		`{"predictions": [{"predicted_label": 1, "labels": [0, 1], "probability": 0.699999988079071, "probabilities": [0.30000001192092896, 0.699999988079071]}]}`; got != want {
		t.Errorf("json:\n got %s\nwant %s", got, want)
	}
	if got, want := string(p.encodeSelected(rows, mimeCSV, false)),
		`"[0.30000001192092896, 0.699999988079071]",1,"[0, 1]",0.699999988079071`; got != want {
		t.Errorf("csv:\n got %s\nwant %s", got, want)
	}

	softprob, _ := lookupObjective("multi:softprob")
	keys = []string{"predicted_label", "probability", "raw_scores", "predicted_score"}
	p = newSelectPlan(softprob, keys)
	rows = [][]selected{
		p.selectPredictions(3, []float32{0.25, 0.5, 0.25}),
		p.selectPredictions(3, []float32{0.5, 0.25, 0.25}),
	}
	// predicted_score does not apply to softprob: NaN, last.
	if got, want := string(p.encodeSelected(rows, mimeJSONLines, false)),
		"{\"predicted_label\": 1, \"probability\": 0.5, \"raw_scores\": [0.25, 0.5, 0.25], \"predicted_score\": NaN}\n"+
			"{\"predicted_label\": 0, \"probability\": 0.5, \"raw_scores\": [0.5, 0.25, 0.25], \"predicted_score\": NaN}\n"; got != want {
		t.Errorf("jsonlines:\n got %q\nwant %q", got, want)
	}
	if got, want := string(p.encodeSelected(rows, mimeCSV, true)),
		"1,0.5,\"[0.25, 0.5, 0.25]\",nan\n0,0.5,\"[0.5, 0.25, 0.25]\",nan\n"; got != want {
		t.Errorf("csv batch:\n got %q\nwant %q", got, want)
	}

	softmax, _ := lookupObjective("multi:softmax")
	keys = []string{"predicted_label", "labels", "raw_score"}
	p = newSelectPlan(softmax, keys)
	got := string(p.encodeSelected([][]selected{p.selectPredictions(4, []float32{2})}, mimeJSON, false))
	if want := `{"predictions": [{"predicted_label": 2.0, "labels": [0, 1, 2, 3], "raw_score": 2.0}]}`; got != want {
		t.Errorf("softmax:\n got %s\nwant %s", got, want)
	}
	reg, _ := lookupObjective("reg:squarederror")
	keys = []string{"predicted_score", "predicted_label"}
	p = newSelectPlan(reg, keys)
	got = string(p.encodeSelected([][]selected{p.selectPredictions(0, []float32{3.5})}, mimeCSV, false))
	if want := "3.5,nan"; got != want {
		t.Errorf("regression: got %q, want %q", got, want)
	}
	if !strings.Contains(string(p.encodeSelected([][]selected{p.selectPredictions(0, []float32{3.5})}, mimeJSON, false)), `"predicted_label": NaN`) {
		t.Error("unsupported key is not NaN in JSON")
	}
}

func TestSelectedRepeatedAndUnknownKeys(t *testing.T) {
	// A key asked twice is one value in JSON and a column each time in
	// CSV; unknown keys (and "") are NaN, after the supported ones, once.
	// Expected strings from the output before selectPlan worked out the
	// keys once per request.
	for _, c := range []struct {
		obj  string
		nc   int
		rows [][]float32
		keys []string
		want map[string]string
	}{
		{"binary:logistic", 0, [][]float32{{0.25}, {0.75}}, []string{"probability", "bogus", "probability", "", "bogus", "predicted_label", "labels"}, map[string]string{
			mimeCSV:       "0.25,nan,0.25,nan,nan,0,\"[0, 1]\"\n0.75,nan,0.75,nan,nan,1,\"[0, 1]\"\n",
			mimeJSON:      "{\"predictions\": [{\"predicted_label\": 0, \"labels\": [0, 1], \"probability\": 0.25, \"bogus\": NaN, \"\": NaN}, {\"predicted_label\": 1, \"labels\": [0, 1], \"probability\": 0.75, \"bogus\": NaN, \"\": NaN}]}",
			mimeJSONLines: "{\"predicted_label\": 0, \"labels\": [0, 1], \"probability\": 0.25, \"bogus\": NaN, \"\": NaN}\n{\"predicted_label\": 1, \"labels\": [0, 1], \"probability\": 0.75, \"bogus\": NaN, \"\": NaN}\n",
		}},
		{"multi:softprob", 3, [][]float32{{0.2, 0.3, 0.5}}, []string{"raw_score", "predicted_score", "labels", "raw_score", "predicted_score"}, map[string]string{
			mimeCSV:       "0.5,nan,\"[0, 1, 2]\",0.5,nan\n",
			mimeJSON:      "{\"predictions\": [{\"labels\": [0, 1, 2], \"raw_score\": 0.5, \"predicted_score\": NaN}]}",
			mimeJSONLines: "{\"labels\": [0, 1, 2], \"raw_score\": 0.5, \"predicted_score\": NaN}\n",
		}},
		{"reg:squarederror", 0, [][]float32{{1.5}}, []string{"labels", "predicted_score", "predicted_score"}, map[string]string{
			mimeCSV:       "nan,1.5,1.5\n",
			mimeJSON:      "{\"predictions\": [{\"predicted_score\": 1.5, \"labels\": NaN}]}",
			mimeJSONLines: "{\"predicted_score\": 1.5, \"labels\": NaN}\n",
		}},
		{"binary:logitraw", 0, [][]float32{{-0.5}}, []string{"raw_scores", "predicted_label"}, map[string]string{
			mimeCSV:       "\"[1.5, -0.5]\",0\n",
			mimeJSON:      "{\"predictions\": [{\"predicted_label\": 0, \"raw_scores\": [1.5, -0.5]}]}",
			mimeJSONLines: "{\"predicted_label\": 0, \"raw_scores\": [1.5, -0.5]}\n",
		}},
	} {
		obj, err := lookupObjective(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		p := newSelectPlan(obj, c.keys)
		var rows [][]selected
		for _, r := range c.rows {
			rows = append(rows, p.selectPredictions(c.nc, r))
		}
		for accept, want := range c.want {
			if got := string(p.encodeSelected(rows, accept, true)); got != want {
				t.Errorf("%s %v %s:\n got %q\nwant %q", c.obj, c.keys, accept, got, want)
			}
		}
	}
}
