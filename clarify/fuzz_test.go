package clarify

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// fuzzPredictor answers the client's records (the first call) with the
// fuzzed output, and every synthetic batch with one well-formed score per
// row, so that the fuzzer reaches both the output parsing and the
// explanation of whatever it made selectable.
func fuzzPredictor(first []byte, jsonOut bool) Predictor {
	calls := 0
	return func(ctx context.Context, body []byte, ct, accept string) ([]byte, string, error) {
		calls++
		if calls == 1 {
			return first, accept, nil
		}
		n := bytes.Count(body, []byte("\n"))
		line := "0.25\n"
		if jsonOut {
			line = `{"score":0.25}` + "\n"
		}
		return []byte(strings.Repeat(line, n)), accept, nil
	}
}

// checkFuzzError fails on an error the invoke path could not map to an API
// error: everything the client or the model sends must come back as a
// classified *Error, never a panic or an unclassified failure.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) || (e.Kind != KindBadRequest && e.Kind != KindModelOutput) {
		t.Fatalf("unclassified error: %v", err)
	}
}

// FuzzExplainCSV feeds arbitrary CSV records, EnableExplanations
// expressions and model answers to an explainer of three CSV features.
func FuzzExplainCSV(f *testing.F) {
	f.Add([]byte("1,2,3\n"), "", []byte("0.5\n"))
	f.Add([]byte("1,2,3\n4,5,6\n"), "[0]>`0.3`", []byte("0.5\n0.2\n"))
	f.Add([]byte("\"a,b\",2,3\n"), "true", []byte("0.5,0.5\n"))
	f.Add([]byte("1,2\n"), "false", []byte("x\n"))
	f.Add([]byte("1,2,3"), "[", []byte("[0.1,0.9]\n"))
	e := newExplainer(f, baselineConfig("0,0,0\n", "", `,"InferenceConfig":{"MaxRecordCount":4}`), nil)
	f.Fuzz(func(t *testing.T, body []byte, enable string, output []byte) {
		res, err := e.ExplainResult(context.Background(), Request{
			Body: body, ContentType: "text/csv", Accept: "text/csv",
			EnableExplanations: enable,
			Predictors:         []Predictor{fuzzPredictor(output, false)},
		})
		checkFuzzError(t, err)
		if err == nil && res.Explained > res.Records {
			t.Fatalf("%d records explained of %d", res.Explained, res.Records)
		}
	})
}

// FuzzExplainJSONLines does the same for JSON Lines records whose features
// are found by FeaturesAttribute and whose scores by ProbabilityAttribute.
func FuzzExplainJSONLines(f *testing.F) {
	f.Add([]byte(`{"features":[1,2,3]}`+"\n"), "", []byte(`{"score":0.5}`+"\n"))
	f.Add([]byte(`{"features":[1,"a",3]}`+"\n"), "score>`0.1`", []byte(`{"score":0.5}`+"\n"))
	f.Add([]byte(`{"features":[1,2]}`+"\n"), "score", []byte(`{"score":"x"}`+"\n"))
	f.Add([]byte(`[1,2,3]`+"\n"), "", []byte(`0.5`+"\n"))
	f.Add([]byte(`{"features":{"a":1}}`), "`true`", []byte(`{"score":[0.1,0.9]}`))
	e := newExplainer(f, baselineConfig(`{"features":[0,0,0]}`+"\n",
		`,"MimeType":"application/jsonlines"`,
		`,"InferenceConfig":{"FeaturesAttribute":"features","ContentTemplate":"{\"features\":$features}","ProbabilityAttribute":"score"}`), nil)
	f.Fuzz(func(t *testing.T, body []byte, enable string, output []byte) {
		res, err := e.ExplainResult(context.Background(), Request{
			Body: body, ContentType: "application/jsonlines", Accept: "application/jsonlines",
			EnableExplanations: enable,
			Predictors:         []Predictor{fuzzPredictor(output, true)},
		})
		checkFuzzError(t, err)
		if err == nil && res.Explained > res.Records {
			t.Fatalf("%d records explained of %d", res.Explained, res.Records)
		}
	})
}
