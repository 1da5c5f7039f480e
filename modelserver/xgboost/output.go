package xgboost

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Answers are encoded as SageMaker's XGBoost container encodes them, and
// numbers are written as Python writes them there: each float32
// prediction becomes a Python float and is printed with repr(), e.g.
// 0.43861907720565796 for the float32 nearest 0.438619.

// Accept types the server can answer with.
const (
	mimeCSV       = "text/csv"
	mimeJSON      = "application/json"
	mimeJSONLines = "application/jsonlines"
)

// Selectable inference output keys (SAGEMAKER_INFERENCE_OUTPUT).
const (
	keyPredictedLabel = "predicted_label"
	keyLabels         = "labels"
	keyProbability    = "probability"
	keyProbabilities  = "probabilities"
	keyRawScore       = "raw_score"
	keyRawScores      = "raw_scores"
	keyPredictedScore = "predicted_score"
)

// keyOrder is the order the container builds each selected prediction in
// (its JSON objects list keys in this order).
var keyOrder = []string{keyPredictedLabel, keyLabels, keyProbability, keyProbabilities, keyRawScore, keyRawScores, keyPredictedScore}

// pyFloat appends v as Python's repr(float) writes it: the shortest string
// that reads back as v, positional for exponents -4 to 15 with at least one
// digit after the point, scientific otherwise with a two-digit exponent.
func pyFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "nan"...)
	case math.IsInf(v, 1):
		return append(b, "inf"...)
	case math.IsInf(v, -1):
		return append(b, "-inf"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], v, 'e', -1, 64) // d.ddde±XX
	i := strings.LastIndexByte(string(e), 'e')
	exp, _ := strconv.Atoi(string(e[i+1:]))
	if exp >= -4 && exp < 16 {
		start := len(b)
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
		if !strings.ContainsRune(string(b[start:]), '.') {
			b = append(b, ".0"...)
		}
		return b
	}
	b = append(b, e[:i]...)
	b = append(b, 'e')
	if exp < 0 {
		b = append(b, '-')
		exp = -exp
	} else {
		b = append(b, '+')
	}
	if exp < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(exp), 10)
}

// pyJSONFloat is Python's json.dumps of a float: repr, with NaN and
// infinities as the (non-standard) literals Python writes.
func pyJSONFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "Infinity"...)
	case math.IsInf(v, -1):
		return append(b, "-Infinity"...)
	}
	return pyFloat(b, v)
}

// pyList appends a list of floats as Python's str(list) or json.dumps
// writes it: "[0.1, 0.2]".
func pyList(b []byte, vs []float32, json bool) []byte {
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ", "...)
		}
		if json {
			b = pyJSONFloat(b, float64(v))
		} else {
			b = pyFloat(b, float64(v))
		}
	}
	return append(b, ']')
}

// encodePredictions writes the plain answer (no selectable output).
//
//   - text/csv: one line per row, the row's values separated by commas
//     (the container's CSV encoder); with SAGEMAKER_BATCH, a row of several
//     values is written as a Python list, "[0.1, 0.2, 0.7]", as the
//     container does for batch transform.
//   - application/json: {"predictions": [{"score": 0.5}, {"score": [0.1, 0.9]}]}
//   - application/jsonlines: one {"score": ...} object per line.
func encodePredictions(p *Predictions, accept string, batch bool) []byte {
	b := make([]byte, 0, p.Rows*p.Width*22+32)
	switch accept {
	case mimeJSON, mimeJSONLines:
		return appendJSONRows(b, accept, p.Rows, func(b []byte, r int) []byte { return appendScore(b, p.Row(r)) })
	default: // text/csv
		for r := 0; r < p.Rows; r++ {
			row := p.Row(r)
			switch {
			case batch && len(row) > 1:
				b = pyList(b, row, false)
			default:
				for i, v := range row {
					if i > 0 {
						b = append(b, ',')
					}
					b = pyFloat(b, float64(v))
				}
			}
			b = append(b, '\n')
		}
	}
	return b
}

// appendJSONRows frames n rows, each written by row, as the container's
// application/json answer, {"predictions": [ROW, ROW]}, or its
// application/jsonlines one, a ROW per line.
func appendJSONRows(b []byte, accept string, n int, row func(b []byte, i int) []byte) []byte {
	if accept == mimeJSONLines {
		for i := range n {
			b = row(b, i)
			b = append(b, '\n')
		}
		return b
	}
	b = append(b, `{"predictions": [`...)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = row(b, i)
	}
	return append(b, "]}"...)
}

func appendScore(b []byte, row []float32) []byte {
	b = append(b, `{"score": `...)
	if len(row) == 1 {
		b = pyJSONFloat(b, float64(row[0]))
	} else {
		b = pyList(b, row, true)
	}
	return append(b, '}')
}

// selected is one value of a selectable-output prediction.
type selected struct {
	key    string
	isInt  bool // predicted_label of logistic/logitraw/softprob, labels
	num    float64
	list   []float64
	isList bool
}

// selectPlan is what a request's selectable inference output keys ask of
// a model's objective, worked out once per request: the keys each row's
// output holds, in the container's order, and where each asked key's value
// lies among them.
type selectPlan struct {
	obj *objective
	// keys are the output's keys: the asked keys the objective supports,
	// in keyOrder, then the others (NaN), once each, as first asked.
	keys []string
	// supported counts the supported keys at the start of keys.
	supported int
	// asked[j] is the index in keys of the j-th asked key (the CSV
	// columns).
	asked []int
}

func newSelectPlan(obj *objective, keys []string) *selectPlan {
	p := &selectPlan{obj: obj}
	for _, k := range keyOrder {
		if slices.Contains(keys, k) && slices.Contains(obj.selectable, k) {
			p.keys = append(p.keys, k)
		}
	}
	p.supported = len(p.keys)
	for _, k := range keys {
		if !slices.Contains(obj.selectable, k) && !slices.Contains(p.keys[p.supported:], k) {
			p.keys = append(p.keys, k)
		}
	}
	for _, k := range keys {
		p.asked = append(p.asked, slices.Index(p.keys, k))
	}
	return p
}

// selectPredictions builds the container's selectable inference output for
// one row (the transformed prediction): the keys the objective supports,
// computed as the container computes them, and NaN for the others; the
// values are in the order of p.keys.
func (p *selectPlan) selectPredictions(numClass int, row []float32) []selected {
	out := make([]selected, len(p.keys))
	for i, k := range p.keys {
		if i < p.supported {
			out[i] = selectValue(p.obj.name, numClass, row, k)
		} else {
			out[i] = selected{key: k, num: math.NaN()}
		}
	}
	return out
}

// selectValue computes supported key k for one row of objective name.
func selectValue(name string, numClass int, row []float32, k string) selected {
	x := float64(row[0])
	switch k {
	case keyPredictedLabel:
		switch name {
		case "binary:hinge", "multi:softmax":
			return selected{key: k, num: x}
		case "binary:logistic":
			return selected{key: k, isInt: true, num: b2f(x > 0.5)}
		case "binary:logitraw":
			return selected{key: k, isInt: true, num: b2f(x > 0)}
		case "multi:softprob":
			return selected{key: k, isInt: true, num: float64(argmax(row))}
		}
	case keyLabels:
		switch {
		case strings.HasPrefix(name, "binary:"):
			return selected{key: k, isInt: true, isList: true, list: []float64{0, 1}}
		case numClass > 0:
			l := make([]float64, numClass)
			for i := range l {
				l[i] = float64(i)
			}
			return selected{key: k, isInt: true, isList: true, list: l}
		}
	case keyProbability, keyRawScore:
		if name == "multi:softprob" {
			return selected{key: k, num: float64(row[argmax(row)])}
		}
		return selected{key: k, num: x}
	case keyProbabilities, keyRawScores:
		if name == "multi:softprob" {
			return selected{key: k, isList: true, list: widen(row)}
		}
		return selected{key: k, isList: true, list: []float64{1 - x, x}}
	case keyPredictedScore:
		return selected{key: k, num: x}
	}
	// labels of an objective without classes; predicted_label of no
	// objective that supports it (objectives lists none).
	return selected{key: k, num: math.NaN()}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func argmax(row []float32) int {
	best := 0
	for i := range row {
		if row[i] > row[best] {
			best = i
		}
	}
	return best
}

func widen(row []float32) []float64 {
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = float64(v)
	}
	return out
}

func (s selected) appendValue(b []byte, json bool) []byte {
	num := func(b []byte, v float64) []byte {
		if s.isInt {
			return strconv.AppendInt(b, int64(v), 10)
		}
		if json {
			return pyJSONFloat(b, v)
		}
		return pyFloat(b, v)
	}
	if !s.isList {
		return num(b, s.num)
	}
	b = append(b, '[')
	for i, v := range s.list {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = num(b, v)
	}
	return append(b, ']')
}

// encodeSelected writes selectable inference output as the container does:
// JSON {"predictions": [{...}]}, JSON Lines of the objects, or CSV with the
// values in the order the keys were asked for and lists as quoted Python
// lists.
func (p *selectPlan) encodeSelected(rows [][]selected, accept string, batch bool) []byte {
	var b []byte
	if accept == mimeJSON || accept == mimeJSONLines {
		return appendJSONRows(b, accept, len(rows), func(b []byte, r int) []byte {
			b = append(b, '{')
			for i, s := range rows[r] {
				if i > 0 {
					b = append(b, ", "...)
				}
				b = strconv.AppendQuote(b, s.key)
				b = append(b, ": "...)
				b = s.appendValue(b, true)
			}
			return append(b, '}')
		})
	}
	for i, row := range rows {
		if i > 0 {
			b = append(b, '\n')
		}
		for j, i := range p.asked {
			if j > 0 {
				b = append(b, ',')
			}
			s := row[i]
			if s.isList {
				b = append(b, '"')
				b = s.appendValue(b, false)
				b = append(b, '"')
			} else {
				b = s.appendValue(b, false)
			}
		}
	}
	if batch {
		b = append(b, '\n')
	}
	return b
}
