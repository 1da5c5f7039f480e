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
	rows := [][]selected{selectPredictions(logistic, 0, []float32{0.7}, keys)}
	if got, want := string(encodeSelected(rows, keys, mimeJSON, false)),
		`{"predictions": [{"predicted_label": 1, "labels": [0, 1], "probability": 0.699999988079071, "probabilities": [0.30000001192092896, 0.699999988079071]}]}`; got != want {
		t.Errorf("json:\n got %s\nwant %s", got, want)
	}
	if got, want := string(encodeSelected(rows, keys, mimeCSV, false)),
		`"[0.30000001192092896, 0.699999988079071]",1,"[0, 1]",0.699999988079071`; got != want {
		t.Errorf("csv:\n got %s\nwant %s", got, want)
	}

	softprob, _ := lookupObjective("multi:softprob")
	keys = []string{"predicted_label", "probability", "raw_scores", "predicted_score"}
	rows = [][]selected{
		selectPredictions(softprob, 3, []float32{0.25, 0.5, 0.25}, keys),
		selectPredictions(softprob, 3, []float32{0.5, 0.25, 0.25}, keys),
	}
	// predicted_score does not apply to softprob: NaN, last.
	if got, want := string(encodeSelected(rows, keys, mimeJSONLines, false)),
		"{\"predicted_label\": 1, \"probability\": 0.5, \"raw_scores\": [0.25, 0.5, 0.25], \"predicted_score\": NaN}\n"+
			"{\"predicted_label\": 0, \"probability\": 0.5, \"raw_scores\": [0.5, 0.25, 0.25], \"predicted_score\": NaN}\n"; got != want {
		t.Errorf("jsonlines:\n got %q\nwant %q", got, want)
	}
	if got, want := string(encodeSelected(rows, keys, mimeCSV, true)),
		"1,0.5,\"[0.25, 0.5, 0.25]\",nan\n0,0.5,\"[0.5, 0.25, 0.25]\",nan\n"; got != want {
		t.Errorf("csv batch:\n got %q\nwant %q", got, want)
	}

	softmax, _ := lookupObjective("multi:softmax")
	keys = []string{"predicted_label", "labels", "raw_score"}
	got := string(encodeSelected([][]selected{selectPredictions(softmax, 4, []float32{2}, keys)}, keys, mimeJSON, false))
	if want := `{"predictions": [{"predicted_label": 2.0, "labels": [0, 1, 2, 3], "raw_score": 2.0}]}`; got != want {
		t.Errorf("softmax:\n got %s\nwant %s", got, want)
	}
	reg, _ := lookupObjective("reg:squarederror")
	keys = []string{"predicted_score", "predicted_label"}
	got = string(encodeSelected([][]selected{selectPredictions(reg, 0, []float32{3.5}, keys)}, keys, mimeCSV, false))
	if want := "3.5,nan"; got != want {
		t.Errorf("regression: got %q, want %q", got, want)
	}
	if !strings.Contains(string(encodeSelected([][]selected{selectPredictions(reg, 0, []float32{3.5}, keys)}, keys, mimeJSON, false)), `"predicted_label": NaN`) {
		t.Error("unsupported key is not NaN in JSON")
	}
}
