package apimodel

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseInteger parses a JSON number as an integer of the given size. It
// accepts exact integers written with a fraction or exponent (1.0, 1e3). On
// failure it says why: "is not a number", "is not an integer" or "is out of
// range for ...".
func parseInteger(s string, bits int) (int64, string) {
	if !isJSONNumber(s) {
		return 0, "is not a number"
	}
	if n, err := strconv.ParseInt(s, 10, bits); err == nil {
		return n, ""
	}
	rangeErr := "is out of range for an integer"
	if bits == 64 {
		rangeErr = "is out of range for a long integer"
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil { // an exponent beyond int: clamp, keeping the sign
			e = 1 << 30
			if s[i+1] == '-' {
				e = -e
			}
		}
		exp = max(min(e, 1<<30), -(1 << 30))
	}
	digits := mant
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= len(mant) - i - 1
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, ""
	}
	t := strings.TrimRight(digits, "0")
	exp += len(digits) - len(t)
	digits = t
	if exp < 0 {
		return 0, "is not an integer"
	}
	if len(digits)+exp > 19 {
		return 0, rangeErr
	}
	text := digits + strings.Repeat("0", exp)
	if neg {
		text = "-" + text
	}
	n, err := strconv.ParseInt(text, 10, bits)
	if err != nil {
		return 0, rangeErr
	}
	return n, ""
}

// Timestamps must fall within years 1 to 9999.
const (
	minEpoch = -62135596800 // 0001-01-01T00:00:00Z
	maxEpoch = 253402300799 // 9999-12-31T23:59:59Z
)

// epochMillis converts epoch seconds (a JSON number) to milliseconds.
func epochMillis(text string) (int64, bool) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || f < minEpoch || f >= maxEpoch+1 {
		return 0, false
	}
	return int64(math.Round(f * 1000)), true
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999", // no zone: UTC
	"2006-01-02",
	"Mon, 02 Jan 2006 15:04:05 GMT", // HTTP date (rest-json headers)
}

// parseTimestamp parses an ISO-8601 date-time (or date, or HTTP date), or
// epoch seconds written as a string, into epoch milliseconds.
func parseTimestamp(s string) (int64, bool) {
	if isJSONNumber(s) {
		return epochMillis(s)
	}
	for _, layout := range timestampLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		sec := t.Unix()
		if sec < minEpoch || sec > maxEpoch {
			return 0, false
		}
		return sec*1000 + int64((t.Nanosecond()+500000)/1000000), true
	}
	return 0, false
}

// formatMillis writes epoch milliseconds as epoch seconds.
func formatMillis(ms int64) string {
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10)
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}

// render writes a value the way AWS's messages show it (Java's toString):
// strings bare, lists "[a, b]", maps and structures "{k=v, k2=v2}".
func render(sh *Shape, v any) string {
	var b strings.Builder
	renderTo(&b, sh, v, 0)
	return b.String()
}

func renderTo(b *strings.Builder, sh *Shape, v any, depth int) {
	if v == nil {
		b.WriteString("null")
		return
	}
	if depth > MaxDepth {
		b.WriteString("...")
		return
	}
	switch sh.Type {
	case "structure":
		if m, ok := v.(map[string]any); ok {
			b.WriteByte('{')
			first := true
			for _, mem := range sh.Members {
				mv, ok := m[mem.Name]
				if !ok || mv == nil {
					continue
				}
				if !first {
					b.WriteString(", ")
				}
				first = false
				b.WriteString(mem.Name)
				b.WriteByte('=')
				if mem.target.Sensitive {
					b.WriteString("***Sensitive Data Redacted***")
				} else {
					renderTo(b, mem.target, mv, depth+1)
				}
			}
			b.WriteByte('}')
			return
		}
	case "list":
		if a, ok := v.([]any); ok {
			b.WriteByte('[')
			for i, e := range a {
				if i > 0 {
					b.WriteString(", ")
				}
				renderTo(b, sh.Element.target, e, depth+1)
			}
			b.WriteByte(']')
			return
		}
	case "map":
		if m, ok := v.(map[string]any); ok {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(k)
				b.WriteByte('=')
				renderTo(b, sh.Value.target, m[k], depth+1)
			}
			b.WriteByte('}')
			return
		}
	case "integer", "long":
		if text, ok := numberText(v); ok {
			if i, problem := parseInteger(text, intBits(sh.Type)); problem == "" {
				b.WriteString(strconv.FormatInt(i, 10))
				return
			}
		}
	case "float", "double":
		if text, ok := numberText(v); ok {
			bits := floatBits(sh.Type)
			if f, err := strconv.ParseFloat(text, bits); err == nil {
				b.WriteString(javaFloat(f, bits))
				return
			}
		}
	case "timestamp":
		if text, ok := numberText(v); ok {
			if ms, ok := epochMillis(text); ok {
				b.WriteString(formatMillis(ms))
				return
			}
		}
	}
	// Strings, booleans, and values of an unexpected type.
	switch t := v.(type) {
	case string:
		b.WriteString(t)
	case bool:
		b.WriteString(strconv.FormatBool(t))
	default:
		if text, ok := numberText(t); ok {
			b.WriteString(text)
			return
		}
		raw, err := json.Marshal(t)
		if err != nil {
			b.WriteString("?")
			return
		}
		b.Write(raw)
	}
}

// javaFloat formats f like Java's Float/Double.toString.
func javaFloat(f float64, bits int) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, bits)
	}
	if a := math.Abs(f); a == 0 || a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, bits)
	i := strings.IndexByte(s, 'E')
	mant, exp := s[:i], s[i+1:]
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}
