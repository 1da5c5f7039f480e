package xgboost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// application/x-recordio-protobuf is SageMaker's RecordIO-wrapped protobuf
// format (sagemaker_containers._recordio and the AIAlgorithms Record
// message): a sequence of
//
//	magic 0xced7230a (uint32 LE), length (uint32 LE), Record bytes, padding to 4 bytes
//
// where each Record's features map holds, under "values", one row as a
// Float32Tensor, Float64Tensor or Int32Tensor: dense (values only), or
// sparse (keys are the feature indexes, shape[0] the number of features).
// Labels are ignored.

const recordIOMagic = 0xced7230a

// parseRecordIO reads an application/x-recordio-protobuf body.
func parseRecordIO(body []byte) (*rowBatch, error) {
	fail := func(err error) (*rowBatch, error) {
		return nil, &bodyError{format: "recordio-protobuf", err: err}
	}
	var tensors []*tensor
	sparse := false
	for pos, rec := 0, 0; pos < len(body); rec++ {
		if len(body)-pos < 8 {
			return fail(fmt.Errorf("record %d: truncated header", rec))
		}
		if binary.LittleEndian.Uint32(body[pos:]) != recordIOMagic {
			return fail(fmt.Errorf("record %d: bad RecordIO magic number", rec))
		}
		lrec := binary.LittleEndian.Uint32(body[pos+4:])
		if lrec>>29 != 0 {
			return fail(fmt.Errorf("record %d: multi-part records are not supported", rec))
		}
		n := int(lrec)
		pos += 8
		if n > len(body)-pos {
			return fail(fmt.Errorf("record %d: length %d exceeds the body", rec, n))
		}
		t, err := recordFeatures(body[pos : pos+n])
		if err != nil {
			return fail(fmt.Errorf("record %d: %w", rec, err))
		}
		pos = min(pos+(n+3)&^3, len(body))
		sparse = sparse || t.sparse()
		tensors = append(tensors, t)
	}
	if len(tensors) == 0 {
		return fail(errors.New("the body holds no records"))
	}
	b := &rowBatch{off: []int{0}}
	if sparse {
		b.idx = []int32{}
	}
	for i, t := range tensors {
		if err := b.addTensor(t, sparse); err != nil {
			return fail(fmt.Errorf("record %d: %w", i, err))
		}
	}
	return b, nil
}

type tensor struct {
	values []float32
	keys   []uint64
	shape  []uint64
}

// sparse tells a sparse tensor (feature indexes in keys; a row with no
// values has only a shape) from a dense one.
func (t *tensor) sparse() bool {
	return t.keys != nil || (len(t.values) == 0 && len(t.shape) > 0)
}

// addTensor adds a tensor as one row; in a sparse batch, a dense tensor's
// keys are 0, 1, 2, ....
func (b *rowBatch) addTensor(t *tensor, sparse bool) error {
	if !sparse {
		for _, v := range t.values {
			if math.IsInf(float64(v), 0) {
				return errInf
			}
		}
		b.vals = append(b.vals, t.values...)
		b.width = max(b.width, len(t.values))
		b.off = append(b.off, len(b.vals))
		return nil
	}
	keys := t.keys
	if !t.sparse() {
		keys = make([]uint64, len(t.values))
		for i := range keys {
			keys[i] = uint64(i)
		}
	}
	if len(keys) != len(t.values) {
		return fmt.Errorf("%d keys for %d values", len(keys), len(t.values))
	}
	width := 0
	if len(t.shape) > 0 {
		if t.shape[0] > math.MaxInt32 {
			return fmt.Errorf("shape %d is too large", t.shape[0])
		}
		width = int(t.shape[0])
	}
	seen := map[uint64]bool{}
	for i, k := range keys {
		if k >= math.MaxInt32 || (len(t.shape) > 0 && k >= t.shape[0]) {
			return fmt.Errorf("key %d is outside the shape %v", k, t.shape)
		}
		if seen[k] {
			return fmt.Errorf("key %d appears twice", k)
		}
		seen[k] = true
		width = max(width, int(k)+1)
		v := t.values[i]
		if math.IsInf(float64(v), 0) {
			return errInf
		}
		if v == v {
			b.vals = append(b.vals, v)
			b.idx = append(b.idx, int32(k))
		}
	}
	b.width = max(b.width, width)
	b.off = append(b.off, len(b.vals))
	return nil
}

// recordFeatures decodes a Record message and returns features["values"].
func recordFeatures(p []byte) (*tensor, error) {
	var found *tensor
	err := protoFields(p, func(num int, wire int, v uint64, data []byte) error {
		if num != 1 || wire != 2 { // features map entries
			return nil
		}
		var key string
		var value []byte
		if err := protoFields(data, func(num int, wire int, _ uint64, data []byte) error {
			switch {
			case num == 1 && wire == 2:
				key = string(data)
			case num == 2 && wire == 2:
				value = data
			}
			return nil
		}); err != nil {
			return err
		}
		if key != "values" {
			return nil
		}
		t, err := decodeValue(value)
		if err != nil {
			return fmt.Errorf("features[\"values\"]: %w", err)
		}
		found = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, errors.New(`no features["values"] tensor`)
	}
	return found, nil
}

// decodeValue decodes a Value message holding a numeric tensor.
func decodeValue(p []byte) (*tensor, error) {
	var t *tensor
	err := protoFields(p, func(num int, wire int, _ uint64, data []byte) error {
		if wire != 2 {
			return nil
		}
		var kind int
		switch num {
		case 2:
			kind = 32 // Float32Tensor
		case 3:
			kind = 64 // Float64Tensor
		case 7:
			kind = -32 // Int32Tensor
		case 9:
			return errors.New("a Bytes value, not a numeric tensor")
		default:
			return nil
		}
		var err error
		t, err = decodeTensor(data, kind)
		return err
	})
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errors.New("no numeric tensor")
	}
	return t, nil
}

func decodeTensor(p []byte, kind int) (*tensor, error) {
	t := &tensor{values: []float32{}}
	err := protoFields(p, func(num int, wire int, v uint64, data []byte) error {
		switch num {
		case 1:
			return t.addValues(kind, wire, v, data)
		case 2:
			if t.keys == nil {
				t.keys = []uint64{}
			}
			return appendVarints(&t.keys, wire, v, data)
		case 3:
			return appendVarints(&t.shape, wire, v, data)
		}
		return nil
	})
	return t, err
}

// addValues appends tensor values, packed (wire type 2) or one at a time.
func (t *tensor) addValues(kind, wire int, v uint64, data []byte) error {
	switch {
	case kind == 32 && wire == 5:
		t.values = append(t.values, math.Float32frombits(uint32(v)))
	case kind == 64 && wire == 1:
		t.values = append(t.values, float32(math.Float64frombits(v)))
	case kind == -32 && wire == 0:
		t.values = append(t.values, float32(int32(v)))
	case wire == 2 && kind == 32:
		if len(data)%4 != 0 {
			return errors.New("packed float values of a length not a multiple of 4")
		}
		for i := 0; i < len(data); i += 4 {
			t.values = append(t.values, math.Float32frombits(binary.LittleEndian.Uint32(data[i:])))
		}
	case wire == 2 && kind == 64:
		if len(data)%8 != 0 {
			return errors.New("packed double values of a length not a multiple of 8")
		}
		for i := 0; i < len(data); i += 8 {
			t.values = append(t.values, float32(math.Float64frombits(binary.LittleEndian.Uint64(data[i:]))))
		}
	case wire == 2 && kind == -32:
		for len(data) > 0 {
			x, n := binary.Uvarint(data)
			if n <= 0 {
				return errors.New("bad varint in packed int32 values")
			}
			t.values = append(t.values, float32(int32(x)))
			data = data[n:]
		}
	default:
		return fmt.Errorf("tensor values with wire type %d", wire)
	}
	return nil
}

func appendVarints(dst *[]uint64, wire int, v uint64, data []byte) error {
	switch wire {
	case 0:
		*dst = append(*dst, v)
	case 2:
		for len(data) > 0 {
			x, n := binary.Uvarint(data)
			if n <= 0 {
				return errors.New("bad packed varint")
			}
			*dst = append(*dst, x)
			data = data[n:]
		}
	default:
		return fmt.Errorf("keys or shape with wire type %d", wire)
	}
	return nil
}

// protoFields calls f for each field of a protobuf message: v holds
// varint and fixed-width values, data length-delimited ones.
func protoFields(p []byte, f func(num int, wire int, v uint64, data []byte) error) error {
	for len(p) > 0 {
		key, n := binary.Uvarint(p)
		if n <= 0 {
			return errors.New("bad protobuf field key")
		}
		p = p[n:]
		num, wire := int(key>>3), int(key&7)
		if num == 0 {
			return errors.New("protobuf field number 0")
		}
		var v uint64
		var data []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(p)
			if n <= 0 {
				return errors.New("bad protobuf varint")
			}
			p = p[n:]
		case 1:
			if len(p) < 8 {
				return errors.New("truncated protobuf fixed64")
			}
			v, p = binary.LittleEndian.Uint64(p), p[8:]
		case 2:
			l, n := binary.Uvarint(p)
			if n <= 0 || l > uint64(len(p)-n) {
				return errors.New("bad protobuf length")
			}
			data, p = p[n:n+int(l)], p[n+int(l):]
		case 5:
			if len(p) < 4 {
				return errors.New("truncated protobuf fixed32")
			}
			v, p = uint64(binary.LittleEndian.Uint32(p)), p[4:]
		default:
			return fmt.Errorf("unsupported protobuf wire type %d", wire)
		}
		if err := f(num, wire, v, data); err != nil {
			return err
		}
	}
	return nil
}
