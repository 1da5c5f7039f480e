package xgboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Request bodies become batches of rows here. The formats follow SageMaker's
// XGBoost container, where the body is stripped of surrounding whitespace
// and:
//
//   - text/csv: one row per line, no header, no label; an empty field is a
//     missing value (the container reads it as NaN); every line must have
//     as many fields as the first. The delimiter is ',' unless the first
//     line has none and has a tab, ';', '|' or space.
//   - text/libsvm, text/x-libsvm: one row per line of index:value tokens;
//     tokens without ':' (a leading label) are ignored; the index is the
//     feature's column, 0-based, as in XGBoost's own libsvm reader and the
//     container; absent features are missing.
//   - application/json (not accepted by the container; SageMaker's common
//     inference format): {"instances": [ROW, ...]}, {"features": [...]},
//     a list of ROWs, or one row as a bare list of numbers, where a ROW is
//     a list of numbers or {"features": [...]}; null is a missing value.
//   - application/jsonlines: one ROW per line.
//
// NaN given as a value is missing too; infinities are refused, as XGBoost
// refuses them. Numbers are read as float64 and rounded to float32, as the
// container's NumPy arrays are.

// maxCells bounds rows × features of a parsed batch.
const maxCells = 1 << 26

// bodyError is a body that cannot be read as its content type claims: the
// container's 415.
type bodyError struct {
	format string
	err    error
}

func (e *bodyError) Error() string {
	return fmt.Sprintf("Loading %s data failed with Exception, please ensure data is in %s format: %v", e.format, e.format, e.err)
}

func (e *bodyError) Unwrap() error { return e.err }

// errInf is XGBoost's message for an infinite value.
var errInf = errors.New("Input data contains `inf` or a value too large, while `missing` is not set to `inf`")

// rowBatch holds parsed rows: row r's values are vals[off[r]:off[r+1]], at
// the feature indexes idx[off[r]:off[r+1]] when idx is set (sparse rows),
// else at features 0, 1, 2, ... (rows possibly shorter than the model's
// features). width is the largest feature index + 1.
type rowBatch struct {
	off   []int
	vals  []float32
	idx   []int32
	width int
}

func (b *rowBatch) numRows() int { return len(b.off) - 1 }

func (b *rowBatch) fill(r int, scratch []float32) {
	lo, hi := b.off[r], b.off[r+1]
	if b.idx == nil {
		copy(scratch, b.vals[lo:hi])
		return
	}
	for j := lo; j < hi; j++ {
		scratch[b.idx[j]] = b.vals[j]
	}
}

func (b *rowBatch) reset(r int, scratch []float32) {
	lo, hi := b.off[r], b.off[r+1]
	if b.idx == nil {
		fillNaN(scratch[:hi-lo])
		return
	}
	for j := lo; j < hi; j++ {
		scratch[b.idx[j]] = nan32
	}
}

// parseNumber reads a value as Python's float() does (less digit-group
// underscores): surrounding whitespace, nan, inf and infinity in any case.
// An empty field is missing (NaN).
func parseNumber(s string) (float32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nan32, nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			unsigned := s
			if s[0] == '+' || s[0] == '-' {
				unsigned = s[1:]
			}
			switch strings.ToLower(unsigned) {
			case "nan":
				return nan32, nil
			case "inf", "infinity":
				return 0, errInf
			}
			return 0, fmt.Errorf("could not convert string to float: %q", s)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("could not convert string to float: %q", s)
	}
	v := float32(f)
	if math.IsInf(float64(v), 0) {
		return 0, errInf
	}
	return v, nil
}

// parseCSV reads a text/csv body.
func parseCSV(body []byte) (Matrix, error) {
	fail := func(err error) (Matrix, error) { return Matrix{}, &bodyError{format: "csv", err: err} }
	s := strings.TrimSpace(string(body))
	if s == "" {
		return fail(errors.New("the body holds no rows"))
	}
	first, _, _ := strings.Cut(s, "\n")
	delim := csvDelimiter(first)
	cols := strings.Count(strings.TrimSuffix(first, "\r"), delim) + 1
	lines := strings.Count(s, "\n") + 1
	if lines*cols > maxCells {
		return fail(fmt.Errorf("%d rows of %d values are more than %d values", lines, cols, maxCells))
	}
	x := Matrix{Rows: lines, Cols: cols, Values: make([]float32, 0, lines*cols)}
	for ln := 1; s != ""; ln++ {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		line = strings.TrimSuffix(line, "\r")
		n := 0
		for {
			field, rest, more := strings.Cut(line, delim)
			n++
			if n > cols {
				return fail(fmt.Errorf("line %d has more than %d fields, the number on line 1", ln, cols))
			}
			v, err := parseNumber(field)
			if err != nil {
				return fail(fmt.Errorf("line %d, field %d: %w", ln, n, err))
			}
			x.Values = append(x.Values, v)
			if !more {
				break
			}
			line = rest
		}
		if n != cols {
			return fail(fmt.Errorf("line %d has %d fields, but line 1 has %d", ln, n, cols))
		}
	}
	return x, nil
}

// csvDelimiter picks the delimiter from the first line, as the container's
// csv.Sniffer does for the usual cases.
func csvDelimiter(first string) string {
	if strings.Contains(first, ",") {
		return ","
	}
	for _, d := range []string{"\t", ";", "|", " "} {
		if strings.Contains(strings.TrimSpace(first), d) {
			return d
		}
	}
	return ","
}

// parseLibSVM reads a text/libsvm body into sparse rows.
func parseLibSVM(body []byte) (*rowBatch, error) {
	fail := func(err error) (*rowBatch, error) { return nil, &bodyError{format: "libsvm", err: err} }
	s := strings.TrimSpace(string(body))
	if s == "" {
		return fail(errors.New("the body holds no rows"))
	}
	b := &rowBatch{off: []int{0}}
	// seen[f] is the line that last set feature f (to find repeats).
	seen := map[int32]int{}
	for ln := 1; s != ""; ln++ {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		for tok := range strings.FieldsSeq(line) {
			k, v, ok := strings.Cut(tok, ":")
			if !ok {
				continue // the label
			}
			idx, err := strconv.ParseUint(k, 10, 31)
			if err != nil {
				return fail(fmt.Errorf("line %d: %q: the feature index %q is not a non-negative integer", ln, tok, k))
			}
			if strings.Contains(v, ":") {
				return fail(fmt.Errorf("line %d: %q is not index:value", ln, tok))
			}
			if strings.TrimSpace(v) == "" {
				return fail(fmt.Errorf("line %d: %q has no value", ln, tok))
			}
			val, err := parseNumber(v)
			if err != nil {
				return fail(fmt.Errorf("line %d: %w", ln, err))
			}
			f := int32(idx)
			if last, dup := seen[f]; dup && last == ln {
				return fail(fmt.Errorf("line %d: feature %d appears twice", ln, f))
			}
			seen[f] = ln
			b.width = max(b.width, int(f)+1)
			if val == val {
				b.vals = append(b.vals, val)
				b.idx = append(b.idx, f)
			}
		}
		b.off = append(b.off, len(b.vals))
	}
	if b.idx == nil {
		b.idx = []int32{} // sparse, even when no row has a value
	}
	return b, nil
}

// parseJSON reads an application/json body.
func parseJSON(body []byte) (*rowBatch, error) {
	fail := func(err error) (*rowBatch, error) { return nil, &bodyError{format: "json", err: err} }
	t := bytes.TrimSpace(body)
	b := &rowBatch{off: []int{0}}
	switch {
	case len(t) > 0 && t[0] == '{':
		var doc struct {
			Instances *[]json.RawMessage `json:"instances"`
			Features  *[]jsonNumber      `json:"features"`
		}
		if err := json.Unmarshal(t, &doc); err != nil {
			return fail(err)
		}
		switch {
		case doc.Instances != nil && doc.Features != nil:
			return fail(errors.New(`an object with both "instances" and "features"`))
		case doc.Instances != nil:
			for i, inst := range *doc.Instances {
				if err := b.addJSONRow(inst); err != nil {
					return fail(fmt.Errorf("instance %d: %w", i, err))
				}
			}
		case doc.Features != nil:
			b.addRow(*doc.Features)
		default:
			return fail(errors.New(`expected {"instances": [...]} or {"features": [...]}`))
		}
	case len(t) > 0 && t[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(t, &list); err != nil {
			return fail(err)
		}
		if len(list) > 0 && !isJSONContainer(list[0]) {
			// One row as a bare list of numbers.
			var row []jsonNumber
			if err := json.Unmarshal(t, &row); err != nil {
				return fail(err)
			}
			b.addRow(row)
			break
		}
		for i, inst := range list {
			if err := b.addJSONRow(inst); err != nil {
				return fail(fmt.Errorf("row %d: %w", i, err))
			}
		}
	default:
		return fail(errors.New(`expected a list of rows, {"instances": [...]} or {"features": [...]}`))
	}
	if b.numRows() == 0 {
		return fail(errors.New("the body holds no rows"))
	}
	return b, nil
}

// parseJSONLines reads an application/jsonlines body: one row per line.
func parseJSONLines(body []byte) (*rowBatch, error) {
	b := &rowBatch{off: []int{0}}
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := b.addJSONRow(line); err != nil {
			return nil, &bodyError{format: "jsonlines", err: fmt.Errorf("line %d: %w", i+1, err)}
		}
	}
	if b.numRows() == 0 {
		return nil, &bodyError{format: "jsonlines", err: errors.New("the body holds no rows")}
	}
	return b, nil
}

func isJSONContainer(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) > 0 && (t[0] == '[' || t[0] == '{')
}

// addJSONRow adds a row given as [numbers] or {"features": [numbers]}.
func (b *rowBatch) addJSONRow(v json.RawMessage) error {
	t := bytes.TrimSpace(v)
	var row []jsonNumber
	switch {
	case len(t) > 0 && t[0] == '[':
		if err := json.Unmarshal(t, &row); err != nil {
			return err
		}
	case len(t) > 0 && t[0] == '{':
		var obj struct {
			Features *[]jsonNumber `json:"features"`
		}
		if err := json.Unmarshal(t, &obj); err != nil {
			return err
		}
		if obj.Features == nil {
			return errors.New(`an object without "features"`)
		}
		row = *obj.Features
	default:
		return fmt.Errorf("a row must be a list of numbers or {\"features\": [...]}, not %.40s", t)
	}
	b.addRow(row)
	return nil
}

func (b *rowBatch) addRow(row []jsonNumber) {
	for _, v := range row {
		b.vals = append(b.vals, float32(v))
	}
	b.width = max(b.width, len(row))
	b.off = append(b.off, len(b.vals))
}

// jsonNumber is one feature value in a JSON body: a number, or null for a
// missing value.
type jsonNumber float32

func (n *jsonNumber) UnmarshalJSON(p []byte) error {
	if string(p) == "null" {
		*n = jsonNumber(nan32)
		return nil
	}
	if len(p) == 0 || (p[0] != '-' && (p[0] < '0' || p[0] > '9')) {
		return fmt.Errorf("a feature value must be a number or null, not %.40s", p)
	}
	f, err := strconv.ParseFloat(string(p), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("invalid number %.40s", p)
	}
	v := float32(f)
	if math.IsInf(float64(v), 0) {
		return errInf
	}
	*n = jsonNumber(v)
	return nil
}
