package apimodel

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sagehost/sagehost"
)

// MaxDepth is how deeply a request body may nest JSON objects and arrays;
// deeper bodies are rejected with a SerializationException.
const MaxDepth = 64

// Violation is one failed constraint, rendered the way SageMaker (Coral)
// words it: "Value 'abc_' at 'endpointName' failed to satisfy constraint:
// Member must satisfy regular expression pattern: ...".
type Violation struct {
	// Path names the member: member names with the first letter lower-cased,
	// joined by '.', list elements as "name.1.member" (1-based).
	Path string
	// Value is the offending value as AWS renders it (Java toString style);
	// unused when Null or Hidden.
	Value string
	// Null marks a missing value: "Value null at ...".
	Null bool
	// Hidden marks a sensitive value, left out: "Value at ...".
	Hidden bool
	// Constraint is the constraint text, e.g. "Member must not be null".
	Constraint string
}

func (v Violation) String() string {
	switch {
	case v.Null:
		return "Value null at '" + v.Path + "' failed to satisfy constraint: " + v.Constraint
	case v.Hidden:
		return "Value at '" + v.Path + "' failed to satisfy constraint: " + v.Constraint
	}
	return "Value '" + v.Value + "' at '" + v.Path + "' failed to satisfy constraint: " + v.Constraint
}

// ValidationError returns the error that reports vs with the given code
// (sagehost.CodeValidationException for the control plane,
// sagehost.CodeValidationError for the runtime):
// "2 validation errors detected: ...; ...".
func ValidationError(code string, vs []Violation) *sagehost.Error {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(vs)))
	if len(vs) == 1 {
		b.WriteString(" validation error detected: ")
	} else {
		b.WriteString(" validation errors detected: ")
	}
	for i, v := range vs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return &sagehost.Error{Code: code, Message: b.String()}
}

// DecodeInput parses an awsJson1_1 request body for the operation and
// validates it against the operation's input shape. An empty body, "{}" and
// "null" are an empty structure. It returns the normalised JSON: members not
// in the model dropped, structure members in model order, map keys sorted,
// numbers in canonical form, timestamps as epoch seconds (millisecond
// precision), blobs as padded standard base64.
//
// Errors are *sagehost.Error: SerializationException for a body that is not
// JSON, nests deeper than MaxDepth, or holds a value of the wrong JSON type
// (or a fractional or out-of-range integer, a bad timestamp or base64 blob);
// ValidationException listing every constraint violation; an
// UnknownOperationException for an operation not in the model.
func (s *Service) DecodeInput(op string, body []byte) (json.RawMessage, error) {
	o, ok := s.operations[op]
	if !ok {
		return nil, sagehost.Errorf(sagehost.CodeUnknownOperation, "Operation %s is not supported.", op)
	}
	in, serr := decodeBody(body)
	if serr != nil {
		return nil, serr
	}
	if in == nil {
		in = map[string]any{}
	}
	if o.Input == "" {
		if _, ok := in.(map[string]any); !ok {
			return nil, mismatch("", "structure", in)
		}
		return json.RawMessage("{}"), nil
	}
	w := &walker{}
	out, serr := w.walk(s.shapes[o.Input], in, "", 0)
	if serr != nil {
		return nil, serr
	}
	if len(w.vs) > 0 {
		return nil, ValidationError(sagehost.CodeValidationException, w.vs)
	}
	var b bytes.Buffer
	writeNode(&b, out)
	return json.RawMessage(b.Bytes()), nil
}

// decodeBody parses a JSON body into encoding/json's generic values, with
// numbers as json.Number.
func decodeBody(body []byte) (any, *sagehost.Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	if d := nesting(body); d > MaxDepth {
		return nil, sagehost.Errorf(sagehost.CodeSerializationException,
			"Request body nests JSON objects and arrays more than %d levels deep.", MaxDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the JSON value")
		}
		return nil, syntaxError(err)
	}
	return v, nil
}

func syntaxError(err error) *sagehost.Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return sagehost.Errorf(sagehost.CodeSerializationException, "Request body is not valid JSON: %s (at offset %d).", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return sagehost.Errorf(sagehost.CodeSerializationException, "Request body is not valid JSON: unexpected end of input.")
	}
	return sagehost.Errorf(sagehost.CodeSerializationException, "Request body is not valid JSON: %s.", err.Error())
}

// nesting returns the deepest nesting of objects and arrays in a JSON text,
// stopping early once past MaxDepth. It ignores brackets inside strings and
// does not otherwise check the syntax.
func nesting(b []byte) int {
	depth, max := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				max = depth
				if max > MaxDepth {
					return max
				}
			}
		case '}', ']':
			depth--
		}
	}
	return max
}

// ValidateValue validates an already-decoded value (as encoding/json
// produces: map[string]any, []any, string, float64 or json.Number, bool,
// nil; Go integers are accepted too) against the named shape and returns the
// violations, with paths starting at path (e.g. "endpointName"). A value of
// the wrong type gives a SerializationException *sagehost.Error; an unknown
// shape a plain error. A nil value has no violations.
func (s *Service) ValidateValue(shape, path string, v any) ([]Violation, error) {
	sh, ok := s.shapes[shape]
	if !ok {
		return nil, fmt.Errorf("apimodel: no shape %s in %s", shape, s.Metadata.ServiceID)
	}
	if v == nil {
		return nil, nil
	}
	w := &walker{}
	if _, serr := w.walk(sh, v, path, 0); serr != nil {
		return nil, serr
	}
	return w.vs, nil
}

// ValidateMembers validates the rest-json members that a request carries as
// strings (URI labels, headers, query strings), keyed by member name (e.g.
// "EndpointName", "CustomAttributes"), against the structure shape: each
// present member against its shape (length, pattern, enum; numbers, booleans,
// timestamps and base64 blobs must parse), and every required member bound
// to a URI, header or query string must be present. Violations come back as
// one ValidationError *sagehost.Error (the runtime's code); a member name not
// in the shape is a programming error, returned as a plain error.
func (s *Service) ValidateMembers(shape string, members map[string]string) error {
	sh, ok := s.shapes[shape]
	if !ok || sh.Type != "structure" {
		return fmt.Errorf("apimodel: no structure shape %s in %s", shape, s.Metadata.ServiceID)
	}
	for name := range members {
		if _, ok := sh.members[name]; !ok {
			return fmt.Errorf("apimodel: shape %s has no member %s", shape, name)
		}
	}
	w := &walker{}
	for _, mem := range sh.Members {
		path := child("", mem.Name)
		val, ok := members[mem.Name]
		if !ok {
			if sh.required[mem.Name] && mem.Location != "" {
				w.null(path)
			}
			continue
		}
		w.stringMember(mem, val, path)
	}
	if len(w.vs) > 0 {
		return ValidationError(sagehost.CodeValidationError, w.vs)
	}
	return nil
}

// stringMember validates one member given as a string.
func (w *walker) stringMember(mem *Member, val, path string) {
	t := mem.target
	bad := func(constraint string) {
		w.vs = append(w.vs, Violation{Path: path, Value: val, Hidden: t.Sensitive, Constraint: constraint})
	}
	switch t.Type {
	case "string":
		w.walk(t, val, path, 0)
	case "integer", "long":
		i, problem := parseInteger(val, intBits(t.Type))
		if problem != "" {
			bad("Member must be a valid " + map[string]string{"integer": "integer", "long": "long integer"}[t.Type])
			return
		}
		w.walk(t, json.Number(strconv.FormatInt(i, 10)), path, 0)
	case "float", "double":
		if !isJSONNumber(val) {
			bad("Member must be a valid number")
			return
		}
		if _, serr := w.walk(t, json.Number(val), path, 0); serr != nil {
			bad("Member must be a valid number")
		}
	case "boolean":
		if val != "true" && val != "false" {
			bad("Member must be true or false")
		}
	case "timestamp":
		if _, ok := parseTimestamp(val); !ok {
			bad("Member must be a valid timestamp")
		}
	case "blob":
		if mem.Location == "" {
			w.checkLength(t, len(val), path, val)
			return
		}
		if _, serr := w.walk(t, val, path, 0); serr != nil {
			bad("Member must be valid base64")
		}
	}
}

// walker validates and normalises one value tree, collecting violations.
type walker struct {
	vs []Violation
}

// Normalised values: obj (structures and maps), []any, string, num, bool.
type (
	obj   []field
	field struct {
		name string
		val  any
	}
	num string
)

func (w *walker) null(path string) {
	w.vs = append(w.vs, Violation{Path: path, Null: true, Constraint: "Member must not be null"})
}

func (w *walker) violate(sh *Shape, v any, path, constraint string) {
	vi := Violation{Path: path, Constraint: constraint}
	if hidden(sh) {
		vi.Hidden = true
	} else {
		vi.Value = render(sh, v)
	}
	w.vs = append(w.vs, vi)
}

// hidden reports whether a value of sh is left out of messages.
func hidden(sh *Shape) bool {
	if sh.Sensitive {
		return true
	}
	switch sh.Type {
	case "list":
		return sh.Element.target.Sensitive
	case "map":
		return sh.Key.target.Sensitive || sh.Value.target.Sensitive
	}
	return false
}

// child returns the path of a structure member.
func child(path, name string) string {
	if name != "" {
		r, size := utf8.DecodeRuneInString(name)
		if r < utf8.RuneSelf {
			name = string(rune(unicode.ToLower(r))) + name[size:]
		} else if l := unicode.ToLower(r); l != r {
			name = string(l) + name[size:]
		}
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// walk validates v against sh and returns its normalised form. It returns a
// SerializationException for a value of the wrong type; constraint
// violations go to w.vs.
func (w *walker) walk(sh *Shape, v any, path string, depth int) (any, *sagehost.Error) {
	if depth > MaxDepth {
		return nil, sagehost.Errorf(sagehost.CodeSerializationException,
			"Cannot deserialize %s: nested more than %d levels deep.", where(path), MaxDepth)
	}
	switch sh.Type {
	case "structure":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		out := obj{}
		for _, mem := range sh.Members {
			mv := m[mem.Name]
			cp := child(path, mem.Name)
			if mv == nil {
				if sh.required[mem.Name] {
					w.null(cp)
				}
				continue
			}
			n, serr := w.walk(mem.target, mv, cp, depth+1)
			if serr != nil {
				return nil, serr
			}
			out = append(out, field{mem.Name, n})
		}
		return out, nil

	case "list":
		a, ok := v.([]any)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		w.checkLength(sh, len(a), path, v)
		out := make([]any, 0, len(a))
		for i, e := range a {
			cp := strconv.Itoa(i+1) + ".member"
			if path != "" {
				cp = path + "." + cp
			}
			if e == nil {
				w.null(cp)
				continue
			}
			n, serr := w.walk(sh.Element.target, e, cp, depth+1)
			if serr != nil {
				return nil, serr
			}
			out = append(out, n)
		}
		return out, nil

	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		w.checkLength(sh, len(m), path, v)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		kt, vt := sh.Key.target, sh.Value.target
		scalarValues := isScalar(vt.Type)
		keyBad, valBad, valNull := false, false, false
		out := make(obj, 0, len(m))
		for _, k := range keys {
			sub := &walker{}
			if _, serr := sub.walk(kt, k, path, depth+1); serr != nil {
				return nil, serr
			}
			keyBad = keyBad || len(sub.vs) > 0
			val := m[k]
			if val == nil {
				valNull = true
				continue
			}
			// Map entries are named by their key, as it is.
			var n any
			var serr *sagehost.Error
			if scalarValues {
				sub = &walker{}
				n, serr = sub.walk(vt, val, path+"."+k, depth+1)
				valBad = valBad || len(sub.vs) > 0
			} else {
				n, serr = w.walk(vt, val, path+"."+k, depth+1)
			}
			if serr != nil {
				return nil, serr
			}
			out = append(out, field{k, n})
		}
		if keyBad {
			w.violate(sh, v, path, "Map keys must satisfy constraint: ["+strings.Join(constraints(kt), ", ")+"]")
		}
		if valBad || valNull {
			cs := constraints(vt)
			if valNull {
				cs = append([]string{"Member must not be null"}, cs...)
			}
			w.violate(sh, v, path, "Map value must satisfy constraint: ["+strings.Join(cs, ", ")+"]")
		}
		return out, nil

	case "string":
		str, ok := v.(string)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		w.checkLength(sh, utf8.RuneCountInString(str), path, v)
		if sh.re != nil && !sh.re.MatchString(str) {
			w.violate(sh, v, path, "Member must satisfy regular expression pattern: "+sh.Pattern)
		}
		if len(sh.Enum) > 0 && !slices.Contains(sh.Enum, str) {
			w.violate(sh, v, path, "Member must satisfy enum value set: ["+strings.Join(sh.Enum, ", ")+"]")
		}
		return str, nil

	case "integer", "long":
		text, ok := numberText(v)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		i, problem := parseInteger(text, intBits(sh.Type))
		if problem != "" {
			return nil, sagehost.Errorf(sagehost.CodeSerializationException,
				"Cannot deserialize %s: %s %s.", where(path), clip(text), problem)
		}
		if sh.max.set && (sh.max.int && i > sh.max.i || !sh.max.int && float64(i) > sh.max.f) {
			w.violate(sh, v, path, "Member must have value less than or equal to "+sh.Max)
		}
		if sh.min.set && (sh.min.int && i < sh.min.i || !sh.min.int && float64(i) < sh.min.f) {
			w.violate(sh, v, path, "Member must have value greater than or equal to "+sh.Min)
		}
		return num(strconv.FormatInt(i, 10)), nil

	case "float", "double":
		text, ok := numberText(v)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		bits := floatBits(sh.Type)
		f, err := strconv.ParseFloat(text, bits)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, sagehost.Errorf(sagehost.CodeSerializationException,
				"Cannot deserialize %s: %s is out of range for a %s.", where(path), clip(text), sh.Type)
		}
		if sh.max.set && f > sh.max.f {
			w.violate(sh, v, path, "Member must have value less than or equal to "+sh.Max)
		}
		if sh.min.set && f < sh.min.f {
			w.violate(sh, v, path, "Member must have value greater than or equal to "+sh.Min)
		}
		return num(strconv.FormatFloat(f, 'g', -1, bits)), nil

	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		return b, nil

	case "timestamp":
		var ms int64
		ok := false
		switch t := v.(type) {
		case string:
			ms, ok = parseTimestamp(t)
			if !ok {
				return nil, sagehost.Errorf(sagehost.CodeSerializationException,
					"Cannot deserialize %s: '%s' is not a timestamp (epoch seconds or ISO-8601).", where(path), clip(t))
			}
		default:
			text, isNum := numberText(v)
			if !isNum {
				return nil, mismatch(path, sh.Type, v)
			}
			if ms, ok = epochMillis(text); !ok {
				return nil, sagehost.Errorf(sagehost.CodeSerializationException,
					"Cannot deserialize %s: %s is out of range for a timestamp.", where(path), clip(text))
			}
		}
		return num(formatMillis(ms)), nil

	case "blob":
		str, ok := v.(string)
		if !ok {
			return nil, mismatch(path, sh.Type, v)
		}
		data, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			if data, err = base64.RawStdEncoding.DecodeString(str); err != nil {
				return nil, sagehost.Errorf(sagehost.CodeSerializationException,
					"Cannot deserialize %s: the value is not valid base64.", where(path))
			}
		}
		w.checkLength(sh, len(data), path, v)
		return base64.StdEncoding.EncodeToString(data), nil
	}
	// Shapes without validation (document): passed through.
	return v, nil
}

// checkLength checks a length against the shape's min and max.
func (w *walker) checkLength(sh *Shape, n int, path string, v any) {
	if sh.max.set && float64(n) > sh.max.f {
		w.violate(sh, v, path, "Member must have length less than or equal to "+sh.Max)
	}
	if sh.min.set && float64(n) < sh.min.f {
		w.violate(sh, v, path, "Member must have length greater than or equal to "+sh.Min)
	}
}

// constraints lists a shape's constraints, as map key and value messages show
// them. A minimum length of 0 constrains nothing and is left out.
func constraints(sh *Shape) []string {
	var cs []string
	switch sh.Type {
	case "string", "blob", "list", "map":
		if sh.max.set {
			cs = append(cs, "Member must have length less than or equal to "+sh.Max)
		}
		if sh.min.set && sh.min.f > 0 {
			cs = append(cs, "Member must have length greater than or equal to "+sh.Min)
		}
	case "integer", "long", "float", "double":
		if sh.max.set {
			cs = append(cs, "Member must have value less than or equal to "+sh.Max)
		}
		if sh.min.set {
			cs = append(cs, "Member must have value greater than or equal to "+sh.Min)
		}
	}
	if sh.re != nil {
		cs = append(cs, "Member must satisfy regular expression pattern: "+sh.Pattern)
	}
	if len(sh.Enum) > 0 {
		cs = append(cs, "Member must satisfy enum value set: ["+strings.Join(sh.Enum, ", ")+"]")
	}
	return cs
}

func isScalar(typ string) bool {
	switch typ {
	case "structure", "list", "map":
		return false
	}
	return true
}

func intBits(typ string) int {
	if typ == "long" {
		return 64
	}
	return 32
}

func floatBits(typ string) int {
	if typ == "float" {
		return 32
	}
	return 64
}

// where names a path in serialization messages.
func where(path string) string {
	if path == "" {
		return "the request body"
	}
	return "member '" + path + "'"
}

// mismatch is the SerializationException for a value of the wrong JSON type.
func mismatch(path, typ string, v any) *sagehost.Error {
	want := map[string]string{
		"structure": "a structure (JSON object)",
		"list":      "a list (JSON array)",
		"map":       "a map (JSON object)",
		"string":    "a string",
		"integer":   "an integer",
		"long":      "a long integer",
		"float":     "a number",
		"double":    "a number",
		"boolean":   "a boolean",
		"timestamp": "a timestamp (epoch seconds or an ISO-8601 string)",
		"blob":      "a base64-encoded string",
	}[typ]
	return sagehost.Errorf(sagehost.CodeSerializationException,
		"Cannot deserialize %s: expected %s, found %s.", where(path), want, describe(v))
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		if _, ok := numberText(t); ok {
			return "a number"
		}
		return fmt.Sprintf("a %T", v)
	}
}

// clip shortens a value echoed in a message.
func clip(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "..."
}

// numberText returns the decimal text of a number value.
func numberText(v any) (string, bool) {
	switch t := v.(type) {
	case json.Number:
		s := string(t)
		return s, isJSONNumber(s)
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return "", false
		}
		return strconv.FormatFloat(t, 'g', -1, 64), true
	case float32:
		f := float64(t)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return "", false
		}
		return strconv.FormatFloat(f, 'g', -1, 32), true
	case int:
		return strconv.FormatInt(int64(t), 10), true
	case int8:
		return strconv.FormatInt(int64(t), 10), true
	case int16:
		return strconv.FormatInt(int64(t), 10), true
	case int32:
		return strconv.FormatInt(int64(t), 10), true
	case int64:
		return strconv.FormatInt(t, 10), true
	case uint:
		return strconv.FormatUint(uint64(t), 10), true
	case uint8:
		return strconv.FormatUint(uint64(t), 10), true
	case uint16:
		return strconv.FormatUint(uint64(t), 10), true
	case uint32:
		return strconv.FormatUint(uint64(t), 10), true
	case uint64:
		return strconv.FormatUint(t, 10), true
	}
	return "", false
}

// writeNode writes a normalised value as JSON.
func writeNode(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case obj:
		b.WriteByte('{')
		for i, f := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, f.name)
			b.WriteByte(':')
			writeNode(b, f.val)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNode(b, e)
		}
		b.WriteByte(']')
	case string:
		writeString(b, t)
	case num:
		b.WriteString(string(t))
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	default:
		// Pass-through values (documents) as decoded by encoding/json.
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(t); err != nil {
			b.WriteString("null")
			return
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
}

// writeString writes s as a JSON string literal (no HTML escaping; invalid
// UTF-8 becomes U+FFFD, U+2028 and U+2029 are escaped).
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}
