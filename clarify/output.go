package clarify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/sagehost/sagehost/internal/mediatype"
)

// outputFormat reduces a model answer's Content-Type to text/csv or
// application/jsonlines; fallback (the Accept that was sent) decides when
// the answer's type is neither.
func outputFormat(contentType, fallback string) string {
	switch mediatype.Base(contentType) {
	case mimeCSV:
		return mimeCSV
	case mimeJSONLines, "application/json-lines", "application/x-jsonlines", "application/jsonl":
		return mimeJSONLines
	}
	return mediatype.Base(fallback)
}

// outputReader reads the model's answers as the config says.
type outputReader struct {
	probIndex, labelIndex *int
	probAttr, labelAttr   jmespath.JMESPath
}

func newOutputReader(ic *InferenceConfig) (*outputReader, error) {
	r := &outputReader{probIndex: ic.ProbabilityIndex, labelIndex: ic.LabelIndex}
	var err error
	if ic.ProbabilityAttribute != "" {
		if r.probAttr, err = compileJMESPath("ProbabilityAttribute", ic.ProbabilityAttribute); err != nil {
			return nil, err
		}
	}
	if ic.LabelAttribute != "" {
		if r.labelAttr, err = compileJMESPath("LabelAttribute", ic.LabelAttribute); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// outputRows splits an answer into rows: CSV fields, or decoded JSON Lines
// values.
func outputRows(body []byte, format string) ([]any, error) {
	switch format {
	case mimeCSV:
		recs, err := readCSV(body)
		if err != nil {
			return nil, fmt.Errorf("the model's CSV answer does not parse at row %d: %v", len(recs)+1, err)
		}
		var rows []any
		for _, fields := range recs {
			rows = append(rows, fields)
		}
		return rows, nil
	case mimeJSONLines:
		lines := jsonLines(body)
		rows := make([]any, len(lines))
		for i, line := range lines {
			if err := json.Unmarshal(line, &rows[i]); err != nil {
				return nil, fmt.Errorf("line %d of the model's JSON Lines answer is not JSON: %v", i+1, err)
			}
		}
		return rows, nil
	}
	return nil, fmt.Errorf("the model answered %q, which the explainer cannot read: it needs text/csv or application/jsonlines", format)
}

// enableData is a row as EnableExplanations sees it: a CSV row as a JSON
// array (numbers as numbers, list-looking fields as lists), a JSON Lines
// row as it is.
func enableData(row any) any {
	if fields, ok := row.([]string); ok {
		return fieldValues(fields)
	}
	return row
}

// fieldValues reads each field of a CSV output row (fieldValue).
func fieldValues(fields []string) []any {
	out := make([]any, len(fields))
	for i, f := range fields {
		out[i] = fieldValue(f)
	}
	return out
}

// fieldValue reads a CSV output field: a number, a list ("[0.1,0.9]" or
// "['cat','dog']"), or a string.
func fieldValue(f string) any {
	t := strings.TrimSpace(f)
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		return n
	}
	if strings.HasPrefix(t, "[") {
		if l, ok := parseListLiteral(t); ok {
			return l
		}
	}
	return f
}

// scores extracts a row's scores: one per label.
func (r *outputReader) scores(row any) ([]float64, error) {
	var x any
	switch row := row.(type) {
	case []string:
		switch {
		case r.probIndex != nil:
			i := *r.probIndex
			if i >= len(row) {
				return nil, fmt.Errorf("ProbabilityIndex %d is past the %d columns of the model's CSV output %q", i, len(row), strings.Join(row, ","))
			}
			x = fieldValue(row[i])
		case len(row) == 1:
			x = fieldValue(row[0])
		default:
			x = fieldValues(row)
		}
	default:
		x = row
		if r.probAttr != nil {
			var err error
			if x, err = search(r.probAttr, row); err != nil {
				return nil, fmt.Errorf("ProbabilityAttribute on the model's output %s: %v", describe(row), err)
			}
		} else if m, ok := row.(map[string]any); ok && len(m) == 1 {
			for _, v := range m { // e.g. {"score": 0.3}
				x = v
			}
		}
	}
	s, err := numbers(x)
	if err != nil {
		where := "the model's output"
		switch {
		case r.probIndex != nil:
			where = fmt.Sprintf("column %d (ProbabilityIndex) of the model's output", *r.probIndex)
		case r.probAttr != nil:
			where = "ProbabilityAttribute's result on the model's output"
		}
		if _, isCSV := row.([]string); !isCSV && r.probAttr == nil {
			return nil, fmt.Errorf("%s %s is not a score or list of scores: set ProbabilityAttribute to the JMESPath of the score", where, describe(x))
		}
		return nil, fmt.Errorf("%s %s is not a score or list of scores: %v", where, describe(x), err)
	}
	return s, nil
}

// numbers reads a number or a non-empty list of numbers (numeric strings
// count).
func numbers(x any) ([]float64, error) {
	one := func(x any) (float64, error) {
		switch x := x.(type) {
		case float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		}
		return 0, fmt.Errorf("%s is not a number", describe(x))
	}
	if l, ok := x.([]any); ok {
		if len(l) == 0 {
			return nil, errors.New("the list is empty")
		}
		out := make([]float64, len(l))
		for i, e := range l {
			f, err := one(e)
			if err != nil {
				return nil, err
			}
			out[i] = f
		}
		return out, nil
	}
	f, err := one(x)
	if err != nil {
		return nil, err
	}
	return []float64{f}, nil
}

// labels extracts the label headers a row carries (LabelIndex or
// LabelAttribute), nil when the config names none.
func (r *outputReader) labels(row any) ([]string, error) {
	var x any
	switch row := row.(type) {
	case []string:
		if r.labelIndex == nil {
			return nil, nil
		}
		i := *r.labelIndex
		if i >= len(row) {
			return nil, fmt.Errorf("LabelIndex %d is past the %d columns of the model's CSV output %q", i, len(row), strings.Join(row, ","))
		}
		x = fieldValue(row[i])
	default:
		if r.labelAttr == nil {
			return nil, nil
		}
		var err error
		if x, err = search(r.labelAttr, row); err != nil {
			return nil, fmt.Errorf("LabelAttribute on the model's output %s: %v", describe(row), err)
		}
	}
	l, ok := x.([]any)
	if !ok {
		l = []any{x}
	}
	out := make([]string, len(l))
	for i, e := range l {
		switch e := e.(type) {
		case string:
			out[i] = e
		case float64:
			out[i] = strconv.FormatFloat(e, 'g', -1, 64)
		case nil:
			return nil, errors.New("LabelIndex or LabelAttribute finds no label in the model's output")
		default:
			out[i] = describe(e)
		}
	}
	return out, nil
}

// parseListLiteral reads a list written as JSON or as Python prints it
// (single-quoted strings, True/False/None), as CSV fields of Clarify's
// examples hold them: "['cat','dog','fish']", "[0.1,0.6,0.3]".
func parseListLiteral(s string) ([]any, bool) {
	var l []any
	if json.Unmarshal([]byte(s), &l) == nil {
		return l, true
	}
	p := &litParser{s: s}
	v, ok := p.value()
	p.space()
	if !ok || p.i != len(p.s) {
		return nil, false
	}
	l, ok = v.([]any)
	return l, ok
}

type litParser struct {
	s string
	i int
}

func (p *litParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *litParser) value() (any, bool) {
	p.space()
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '[' || c == '(':
		closer := byte(']')
		if c == '(' {
			closer = ')'
		}
		p.i++
		list := []any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == closer {
				p.i++
				return list, true
			}
			v, ok := p.value()
			if !ok {
				return nil, false
			}
			list = append(list, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == closer {
				p.i++
				return list, true
			}
			return nil, false
		}
	case c == '\'' || c == '"':
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			ch := p.s[p.i]
			switch {
			case ch == '\\' && p.i+1 < len(p.s):
				b.WriteByte(p.s[p.i+1])
				p.i += 2
			case ch == c:
				p.i++
				return b.String(), true
			default:
				b.WriteByte(ch)
				p.i++
			}
		}
		return nil, false
	default:
		j := p.i
		for j < len(p.s) && strings.IndexByte(",])", p.s[j]) < 0 {
			j++
		}
		tok := strings.TrimSpace(p.s[p.i:j])
		p.i = j
		switch tok {
		case "True":
			return true, true
		case "False":
			return false, true
		case "None":
			return nil, true
		case "nan":
			return math.NaN(), true
		}
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			return nil, false
		}
		return f, true
	}
}
