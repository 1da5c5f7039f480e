package xgboost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// UBJSON (https://ubjson.org, draft 12) is the binary JSON encoding XGBoost
// writes for *.ubj models (and by default from 2.1 on). It has the same
// schema as the JSON model, so ubjsonToJSON transcodes it to JSON text and
// one decoder serves both. Integers and floats are big-endian; XGBoost
// writes objects with 'L'-length keys and numeric arrays as strongly typed
// containers ([$d#L<count> followed by raw float32s), which the transcoder
// turns into JSON arrays without per-element markers to parse.

const (
	ubjMaxDepth = 128
	// ubjMaxEmpty bounds the element count of a typed container whose
	// elements take no bytes (null, true, false, no-op), so that a tiny
	// corrupt file cannot ask for an unbounded amount of output.
	ubjMaxEmpty = 1 << 16
)

var errUBJTruncated = errors.New("unexpected end of data")

type ubjDecoder struct {
	b   []byte
	pos int
	out []byte
}

// ubjsonToJSON transcodes one UBJSON value (with nothing after it but
// no-op markers) to JSON text.
func ubjsonToJSON(b []byte) ([]byte, error) {
	d := &ubjDecoder{b: b, out: make([]byte, 0, len(b)*2)}
	if err := d.value(0); err != nil {
		return nil, fmt.Errorf("ubjson: at byte %d: %w", d.pos, err)
	}
	for d.pos < len(d.b) && d.b[d.pos] == 'N' {
		d.pos++
	}
	if d.pos != len(d.b) {
		return nil, fmt.Errorf("ubjson: %d bytes of trailing data after the document", len(d.b)-d.pos)
	}
	return d.out, nil
}

func (d *ubjDecoder) byte1() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, errUBJTruncated
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

func (d *ubjDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.pos {
		return nil, errUBJTruncated
	}
	s := d.b[d.pos : d.pos+n]
	d.pos += n
	return s, nil
}

// marker returns the next type marker, skipping no-op markers.
func (d *ubjDecoder) marker() (byte, error) {
	for {
		c, err := d.byte1()
		if err != nil || c != 'N' {
			return c, err
		}
	}
}

func ubjSize(marker byte) int {
	switch marker {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	case 'Z', 'T', 'F', 'N':
		return 0
	}
	return -1 // variable or invalid
}

// integer reads an integer payload of the given marker.
func (d *ubjDecoder) integer(marker byte) (int64, error) {
	n := ubjSize(marker)
	if n <= 0 || marker == 'd' || marker == 'D' || marker == 'C' {
		return 0, fmt.Errorf("marker %q is not an integer type", marker)
	}
	p, err := d.take(n)
	if err != nil {
		return 0, err
	}
	switch marker {
	case 'i':
		return int64(int8(p[0])), nil
	case 'U':
		return int64(p[0]), nil
	case 'I':
		return int64(int16(binary.BigEndian.Uint16(p))), nil
	case 'l':
		return int64(int32(binary.BigEndian.Uint32(p))), nil
	default:
		return int64(binary.BigEndian.Uint64(p)), nil
	}
}

// length reads a length or count: an integer with its own marker.
func (d *ubjDecoder) length() (int, error) {
	m, err := d.marker()
	if err != nil {
		return 0, err
	}
	n, err := d.integer(m)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("invalid length %d", n)
	}
	return int(n), nil
}

// counted reads a length and then that many bytes: the payload of a string
// or high-precision number, or an object key.
func (d *ubjDecoder) counted() ([]byte, error) {
	n, err := d.length()
	if err != nil {
		return nil, err
	}
	return d.take(n)
}

func (d *ubjDecoder) value(depth int) error {
	m, err := d.marker()
	if err != nil {
		return err
	}
	return d.payload(m, depth)
}

// payload transcodes the payload of a value whose marker was read.
func (d *ubjDecoder) payload(m byte, depth int) error {
	switch m {
	case 'Z':
		d.out = append(d.out, "null"...)
	case 'T':
		d.out = append(d.out, "true"...)
	case 'F':
		d.out = append(d.out, "false"...)
	case 'i', 'U', 'I', 'l', 'L':
		n, err := d.integer(m)
		if err != nil {
			return err
		}
		d.out = strconv.AppendInt(d.out, n, 10)
	case 'd':
		p, err := d.take(4)
		if err != nil {
			return err
		}
		d.appendFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(p))), 32)
	case 'D':
		p, err := d.take(8)
		if err != nil {
			return err
		}
		d.appendFloat(math.Float64frombits(binary.BigEndian.Uint64(p)), 64)
	case 'H':
		p, err := d.counted()
		if err != nil {
			return err
		}
		if _, err := strconv.ParseFloat(string(p), 64); err != nil || !jsonNumberSyntax(p) {
			return fmt.Errorf("invalid high-precision number %q", p)
		}
		d.out = append(d.out, p...)
	case 'C':
		p, err := d.take(1)
		if err != nil {
			return err
		}
		d.out = appendJSONString(d.out, p)
	case 'S':
		p, err := d.counted()
		if err != nil {
			return err
		}
		d.out = appendJSONString(d.out, p)
	case '[':
		return d.container(depth, false)
	case '{':
		return d.container(depth, true)
	default:
		return fmt.Errorf("invalid type marker %q", m)
	}
	return nil
}

// container transcodes an array or object after its opening marker,
// in any of UBJSON's three forms: open-ended, counted, or typed and counted.
func (d *ubjDecoder) container(depth int, object bool) error {
	if depth >= ubjMaxDepth {
		return errors.New("nesting too deep")
	}
	open, close := byte('['), byte(']')
	if object {
		open, close = '{', '}'
	}
	d.out = append(d.out, open)
	var elemType byte
	count := -1
	if d.pos < len(d.b) && d.b[d.pos] == '$' {
		d.pos++
		t, err := d.byte1()
		if err != nil {
			return err
		}
		if t == '[' || t == '{' || t == 'N' || (ubjSize(t) < 0 && t != 'S' && t != 'H') {
			return fmt.Errorf("invalid container element type %q", t)
		}
		elemType = t
		if d.pos >= len(d.b) || d.b[d.pos] != '#' {
			return errors.New("typed container without a count")
		}
	}
	if d.pos < len(d.b) && d.b[d.pos] == '#' {
		d.pos++
		n, err := d.length()
		if err != nil {
			return err
		}
		count = n
		// Each element takes at least its fixed size (or one byte for a
		// marker or a length); refuse counts the remaining data cannot hold.
		min := 1
		if elemType != 0 {
			min = ubjSize(elemType)
		}
		if object {
			min++ // a key takes at least its length marker
		}
		if min > 0 && count > (len(d.b)-d.pos)/min {
			return fmt.Errorf("container count %d exceeds the remaining data", count)
		}
		if min == 0 && count > ubjMaxEmpty {
			return fmt.Errorf("container count %d of empty elements is too large", count)
		}
	}
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			m, err := d.marker()
			if err != nil {
				return err
			}
			if m == close {
				break
			}
			d.pos-- // not the end: reread as the key's length marker or the value's marker
		}
		if i > 0 {
			d.out = append(d.out, ',')
		}
		if object {
			k, err := d.counted()
			if err != nil {
				return err
			}
			d.out = appendJSONString(d.out, k)
			d.out = append(d.out, ':')
		}
		var err error
		if elemType != 0 {
			err = d.payload(elemType, depth+1)
		} else {
			err = d.value(depth + 1)
		}
		if err != nil {
			return err
		}
	}
	d.out = append(d.out, close)
	return nil
}

// appendFloat writes a float so that parsing it back at the same width
// gives the same value; JSON has no NaN or infinities, so those (which
// XGBoost does not put in model fields that prediction reads) become null.
func (d *ubjDecoder) appendFloat(f float64, bits int) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.out = append(d.out, "null"...)
		return
	}
	d.out = strconv.AppendFloat(d.out, f, 'g', -1, bits)
}

// appendJSONString appends s as a JSON string literal; invalid UTF-8 bytes
// become U+FFFD, as encoding/json would decode them.
func appendJSONString(out, s []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				out = append(out, '\\', c)
			case c < 0x20:
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\ufffd"...)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return append(out, '"')
}

// jsonNumberSyntax reports whether p is a number in JSON's grammar.
func jsonNumberSyntax(p []byte) bool {
	i := 0
	if i < len(p) && p[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		return i - s
	}
	if i < len(p) && p[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(p) && p[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(p)
}
