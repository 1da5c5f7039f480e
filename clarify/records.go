package clarify

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	jmespath "github.com/jmespath-community/go-jmespath"
)

// value is one feature value of a record or baseline row, kept as given so
// that the synthetic rows carry it to the model unchanged.
type value struct {
	str   string  // the text: a CSV field, a JSON string's content, or other JSON as text
	js    string  // the value as JSON
	num   float64 // the number, when isNum
	isNum bool
}

// csvValue reads a CSV field.
func csvValue(field string) value {
	v := value{str: field}
	t := strings.TrimSpace(field)
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		v.num, v.isNum = f, true
	}
	switch {
	case t == "":
		v.js = "null" // a missing value
	case v.isNum && !math.IsNaN(v.num) && !math.IsInf(v.num, 0):
		if isJSONNumber(t) {
			v.js = t
		} else {
			v.js = strconv.FormatFloat(v.num, 'g', -1, 64)
		}
	case v.isNum:
		v.js = "null" // NaN and infinities have no JSON form
	default:
		b, _ := json.Marshal(field)
		v.js = string(b)
	}
	return v
}

// jsonValue reads a JSON value decoded with UseNumber.
func jsonValue(x any) value {
	switch x := x.(type) {
	case json.Number:
		f, err := x.Float64()
		return value{str: string(x), js: string(x), num: f, isNum: err == nil}
	case string:
		b, _ := json.Marshal(x)
		return value{str: x, js: string(b)}
	default:
		b, _ := json.Marshal(x)
		return value{str: string(b), js: string(b)}
	}
}

func isJSONNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && n.String() == s
}

// csvField is v as a CSV field, quoted where needed.
func (v value) csvField() string {
	if !strings.ContainsAny(v.str, ",\"\r\n") {
		return v.str
	}
	return `"` + strings.ReplaceAll(v.str, `"`, `""`) + `"`
}

// same tells whether a record's value equals a baseline value, as shap's
// KernelExplainer decides which features vary: numbers with numpy's
// isclose (rtol 1e-5, atol 1e-8, NaN equal to NaN), anything else exactly.
func same(x, b value) bool {
	if x.isNum && b.isNum {
		if math.IsNaN(x.num) || math.IsNaN(b.num) {
			return math.IsNaN(x.num) && math.IsNaN(b.num)
		}
		if math.IsInf(x.num, 0) || math.IsInf(b.num, 0) {
			return x.num == b.num
		}
		return math.Abs(x.num-b.num) <= 1e-8+1e-5*math.Abs(b.num)
	}
	if x.isNum != b.isNum {
		return false
	}
	return x.str == b.str
}

// parseRecords reads a CSV or JSON Lines body into records of feature
// values. A JSON Lines record is a JSON array of features, or an object
// from which features (FeaturesAttribute) extracts them.
func parseRecords(body []byte, contentType string, features jmespath.JMESPath) ([][]value, error) {
	switch contentType {
	case mimeCSV:
		return parseCSVRecords(body)
	case mimeJSONLines:
		return parseJSONLinesRecords(body, features)
	}
	return nil, fmt.Errorf("content type %q is not text/csv or application/jsonlines", contentType)
}

func parseCSVRecords(body []byte) ([][]value, error) {
	recs, err := readCSV(body)
	if err != nil {
		return nil, fmt.Errorf("reading CSV record %d: %v", len(recs)+1, err)
	}
	if len(recs) == 0 {
		return nil, errors.New("no records")
	}
	out := make([][]value, len(recs))
	for r, fields := range recs {
		out[r] = make([]value, len(fields))
		for i, f := range fields {
			out[r][i] = csvValue(f)
		}
	}
	return out, nil
}

// readCSV reads a CSV body's records, leniently: records may have any
// number of fields, and quotes need not be balanced. On a parse error it
// returns the records before the bad one with the error.
func readCSV(body []byte) ([][]string, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var recs [][]string
	for {
		fields, err := r.Read()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, fields)
	}
}

// jsonLines splits a JSON Lines body into its non-blank lines.
func jsonLines(body []byte) [][]byte {
	var out [][]byte
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	return x, nil
}

func parseJSONLinesRecords(body []byte, features jmespath.JMESPath) ([][]value, error) {
	var out [][]value
	for i, line := range jsonLines(body) {
		x, err := decodeNumbers(line)
		if err != nil {
			return nil, fmt.Errorf("JSON Lines record %d is not JSON: %v", i+1, err)
		}
		list, ok := x.([]any)
		if !ok {
			if features == nil {
				return nil, fmt.Errorf("JSON Lines record %d is not a JSON array of features, and no FeaturesAttribute says where its features are", i+1)
			}
			found, err := search(features, x)
			if err != nil {
				return nil, fmt.Errorf("JSON Lines record %d: FeaturesAttribute: %v", i+1, err)
			}
			if list, ok = found.([]any); !ok {
				return nil, fmt.Errorf("JSON Lines record %d: FeaturesAttribute does not find a list of features in it (it finds %s)", i+1, describe(found))
			}
		}
		row := make([]value, len(list))
		for j, e := range list {
			row[j] = jsonValue(e)
		}
		out = append(out, row)
	}
	if len(out) == 0 {
		return nil, errors.New("no records")
	}
	return out, nil
}

// checkBaseline checks that the baseline rows agree on their width (and
// with FeatureHeaders).
func checkBaseline(rows [][]value, ic *InferenceConfig) error {
	w := len(rows[0])
	if w == 0 {
		return errors.New("its first record has no features")
	}
	for i, r := range rows {
		if len(r) != w {
			return fmt.Errorf("record %d has %d features, but record 1 has %d", i+1, len(r), w)
		}
	}
	if h := len(ic.FeatureHeaders); h > 0 && h != w {
		return fmt.Errorf("its records have %d features, but FeatureHeaders names %d", w, h)
	}
	if w > maxFeatures {
		return fmt.Errorf("its records have %d features, more than the %d the explainer takes", w, maxFeatures)
	}
	return nil
}

// describe renders a JMESPath result for an error message.
func describe(x any) string {
	if x == nil {
		return "null"
	}
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprint(x)
	}
	const max = 120
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
