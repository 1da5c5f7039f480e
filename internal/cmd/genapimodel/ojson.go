package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// value is a JSON value that keeps the order of object keys, so that the
// generated files follow botocore's order and are reproducible byte for byte.
type value struct {
	kind byte     // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string // object keys, parallel to vals
	vals []*value // object values or array elements
	str  string   // string value, number text, "true"/"false"
}

// parseJSON decodes one JSON document, keeping key order.
func parseJSON(r io.Reader) (*value, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON document")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (*value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &value{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T", kt)
				}
				child, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, child)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		case '[':
			v := &value{kind: 'a'}
			for dec.More() {
				child, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				v.vals = append(v.vals, child)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	case string:
		return &value{kind: 's', str: t}, nil
	case json.Number:
		return &value{kind: 'n', str: string(t)}, nil
	case bool:
		if t {
			return &value{kind: 'b', str: "true"}, nil
		}
		return &value{kind: 'b', str: "false"}, nil
	case nil:
		return &value{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %T", tok)
}

// get returns the value of an object key, or nil.
func (v *value) get(key string) *value {
	if v == nil || v.kind != 'o' {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

// getString returns the string value of an object key, or "".
func (v *value) getString(key string) string {
	if c := v.get(key); c != nil && c.kind == 's' {
		return c.str
	}
	return ""
}

// del removes an object key.
func (v *value) del(key string) {
	for i, k := range v.keys {
		if k == key {
			v.keys = append(v.keys[:i], v.keys[i+1:]...)
			v.vals = append(v.vals[:i], v.vals[i+1:]...)
			return
		}
	}
}

// insertAfter adds key (or replaces its value) right after the key after.
func (v *value) insertAfter(after, key string, val *value) {
	v.del(key)
	at := len(v.keys)
	for i, k := range v.keys {
		if k == after {
			at = i + 1
			break
		}
	}
	v.keys = append(v.keys[:at], append([]string{key}, v.keys[at:]...)...)
	v.vals = append(v.vals[:at], append([]*value{val}, v.vals[at:]...)...)
}

// flat reports whether v holds no nested object or array, so that it is
// written on one line.
func (v *value) flat() bool {
	for _, c := range v.vals {
		if c.kind == 'o' || c.kind == 'a' {
			return false
		}
	}
	return true
}

// encode writes v: objects and arrays that contain only scalars on one line,
// others one entry a line, indented by two spaces. HTML characters are not
// escaped.
func (v *value) encode(b *bytes.Buffer, indent string) {
	switch v.kind {
	case 'o', 'a':
		open, close := byte('{'), byte('}')
		if v.kind == 'a' {
			open, close = '[', ']'
		}
		b.WriteByte(open)
		if len(v.vals) == 0 {
			b.WriteByte(close)
			return
		}
		flat := v.flat()
		inner := indent + "  "
		for i, c := range v.vals {
			if i > 0 {
				b.WriteByte(',')
				if flat {
					b.WriteByte(' ')
				}
			}
			if !flat {
				b.WriteByte('\n')
				b.WriteString(inner)
			}
			if v.kind == 'o' {
				writeString(b, v.keys[i])
				b.WriteString(": ")
			}
			c.encode(b, inner)
		}
		if !flat {
			b.WriteByte('\n')
			b.WriteString(indent)
		}
		b.WriteByte(close)
	case 's':
		writeString(b, v.str)
	case 'n', 'b':
		b.WriteString(v.str)
	default:
		b.WriteString("null")
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
