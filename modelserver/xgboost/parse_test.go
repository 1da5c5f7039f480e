package xgboost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// dense reads any parsed batch back as rows of width values.
func dense(t testing.TB, src rowSource, width int) [][]float32 {
	t.Helper()
	scratch := make([]float32, width)
	fillNaN(scratch)
	var out [][]float32
	for r := 0; r < src.numRows(); r++ {
		src.fill(r, scratch)
		out = append(out, append([]float32(nil), scratch...))
		src.reset(r, scratch)
		for i, v := range scratch {
			if v == v {
				t.Fatalf("row %d: scratch[%d] = %v after reset", r, i, v)
			}
		}
	}
	return out
}

func sameRows(a, b [][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if !sameFloat32(a[i][j], b[i][j]) {
				return false
			}
		}
	}
	return true
}

var N = nan32

func TestParseCSV(t *testing.T) {
	for _, c := range []struct {
		body string
		want [][]float32
	}{
		{"1,2,3", [][]float32{{1, 2, 3}}},
		{"\n 1,2,3\r\n4,5,6\r\n\n", [][]float32{{1, 2, 3}, {4, 5, 6}}},
		{"1,,3\n,2,", [][]float32{{1, N, 3}, {N, 2, N}}},
		{"nan, NaN ,-nan", [][]float32{{N, N, N}}},
		{"1e3,-2.5E-1,+.5", [][]float32{{1000, -0.25, 0.5}}},
		{"1\t2\t3", [][]float32{{1, 2, 3}}},
		{"1;2", [][]float32{{1, 2}}},
		{"7", [][]float32{{7}}},
		{"0.1", [][]float32{{float32(0.1)}}},
		// float64 first, then float32, as NumPy: just above 1+2^-24, this
		// rounds to 1+2^-23 directly, but to the tie 1+2^-24 as a float64
		// and from there to 1 (ties to even).
		{"1.0000000596046447753906251", [][]float32{{1}}},
	} {
		x, err := parseCSV([]byte(c.body))
		if err != nil {
			t.Errorf("%q: %v", c.body, err)
			continue
		}
		if got := dense(t, x, x.Cols); !sameRows(got, c.want) {
			t.Errorf("%q: %v, want %v", c.body, got, c.want)
		}
	}
	for _, c := range []struct{ body, msg string }{
		{"", "no rows"},
		{" \n ", "no rows"},
		{"1,2\n3", "line 2 has 1 fields, but line 1 has 2"},
		{"1,2\n3,4,5", "line 2 has more than 2 fields"},
		{"1,abc", `line 1, field 2: could not convert string to float: "abc"`},
		{"1,inf", "Input data contains `inf`"},
		{"1e39", "Input data contains `inf`"},
		{"0x10", "could not convert"},
		{"--inf", "could not convert"},
		{`"1",2`, "could not convert"},
	} {
		_, err := parseCSV([]byte(c.body))
		var be *bodyError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "Loading csv data failed with Exception, please ensure data is in csv format: ") {
			t.Errorf("%q: error %v, want a csv body error with %q", c.body, err, c.msg)
		}
	}
}

func TestParseLibSVM(t *testing.T) {
	b, err := parseLibSVM([]byte("1 0:1.5 3:2\n0 2:-1\t1:nan\n\n5:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b.width != 6 || b.numRows() != 4 {
		t.Fatalf("width %d rows %d, want 6 and 4", b.width, b.numRows())
	}
	want := [][]float32{
		{1.5, N, N, 2, N, N},
		{N, N, -1, N, N, N},
		{N, N, N, N, N, N},
		{N, N, N, N, N, 0},
	}
	if got := dense(t, b, 6); !sameRows(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, c := range []struct{ body, msg string }{
		{"   ", "no rows"},
		{"1 qid:3 1:2", `the feature index "qid"`},
		{"1 -1:2", `the feature index "-1"`},
		{"1 1:2:3", "is not index:value"},
		{"1 1:", "has no value"},
		{"1 1:x", "could not convert"},
		{"1 1:inf", "Input data contains `inf`"},
		{"1:1 1:2", "feature 1 appears twice"},
		{"1 99999999999:1", "not a non-negative integer"},
	} {
		_, err := parseLibSVM([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "Loading libsvm data failed") {
			t.Errorf("%q: error %v, want one with %q", c.body, err, c.msg)
		}
	}
}

func TestParseJSON(t *testing.T) {
	want := [][]float32{{1, 2, N}, {4, N, N}}
	for _, body := range []string{
		`{"instances": [[1, 2, null], [4]]}`,
		`{"instances": [{"features": [1, 2, null]}, {"features": [4]}]}`,
		`{"instances": [[1, 2, null], {"features": [4]}]}`,
		`[[1, 2, null], [4]]`,
		` [{"features": [1, 2, null]}, [4, null]] `,
	} {
		b, err := parseJSON([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if got := dense(t, b, 3); !sameRows(got, want) || b.width > 3 {
			t.Errorf("%s: %v (width %d), want %v", body, got, b.width, want)
		}
	}
	for _, body := range []string{`{"features": [1, 2, null]}`, `[1, 2, null]`} {
		b, err := parseJSON([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got := dense(t, b, 3); !sameRows(got, [][]float32{{1, 2, N}}) {
			t.Errorf("%s: %v", body, got)
		}
	}
	for _, c := range []struct{ body, msg string }{
		{`{}`, `expected {"instances"`},
		{`[]`, "no rows"},
		{`{"instances": []}`, "no rows"},
		{`"x"`, "expected a list of rows"},
		{`{"instances": [["1"]]}`, "must be a number or null"},
		{`{"instances": [1, 2]}`, "a row must be a list"},
		{`{"instances": [{"values": [1]}]}`, `without "features"`},
		{`[[1e39]]`, "Input data contains `inf`"},
		{`[[1, 2]`, "unexpected end"},
		{`{"instances": [[1]], "features": [1]}`, "both"},
	} {
		_, err := parseJSON([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "Loading json data failed") {
			t.Errorf("%s: error %v, want one with %q", c.body, err, c.msg)
		}
	}
}

func TestParseJSONLines(t *testing.T) {
	b, err := parseJSONLines([]byte("{\"features\": [1, null]}\n\n[3, 4]\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := dense(t, b, 2); !sameRows(got, [][]float32{{1, N}, {3, 4}}) {
		t.Fatalf("got %v", got)
	}
	for _, body := range []string{"[1]\n{", "\n\n", "[1]\n3"} {
		if _, err := parseJSONLines([]byte(body)); err == nil || !strings.HasPrefix(err.Error(), "Loading jsonlines data failed") {
			t.Errorf("%q: error %v", body, err)
		}
	}
}

// recordIO encodes records as SageMaker's encoders do: each a Record
// whose features["values"] is a Float32Tensor, dense or sparse.
func recordIO(records ...[]byte) []byte {
	var out []byte
	for _, rec := range records {
		out = binary.LittleEndian.AppendUint32(out, recordIOMagic)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(rec)))
		out = append(out, rec...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out
}

func pbBytes(b []byte, num int, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(num<<3|2))
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// float32Record builds a Record; keys and shape make it sparse.
func float32Record(values []float32, keys, shape []uint64, label float32) []byte {
	var packed []byte
	for _, v := range values {
		packed = binary.LittleEndian.AppendUint32(packed, math.Float32bits(v))
	}
	var tensor []byte
	tensor = pbBytes(tensor, 1, packed)
	if keys != nil {
		var k []byte
		for _, x := range keys {
			k = binary.AppendUvarint(k, x)
		}
		tensor = pbBytes(tensor, 2, k)
	}
	if shape != nil {
		var s []byte
		for _, x := range shape {
			s = binary.AppendUvarint(s, x)
		}
		tensor = pbBytes(tensor, 3, s)
	}
	value := pbBytes(nil, 2, tensor) // Value.float32_tensor
	entry := pbBytes(pbBytes(nil, 1, []byte("values")), 2, value)
	rec := pbBytes(nil, 1, entry) // Record.features
	labelTensor := pbBytes(nil, 1, binary.LittleEndian.AppendUint32(nil, math.Float32bits(label)))
	labelEntry := pbBytes(pbBytes(nil, 1, []byte("values")), 2, pbBytes(nil, 2, labelTensor))
	return pbBytes(rec, 2, labelEntry) // Record.label, ignored
}

func TestParseRecordIO(t *testing.T) {
	b, err := parseRecordIO(recordIO(
		float32Record([]float32{1, 2, N}, nil, nil, 1),
		float32Record([]float32{4}, nil, nil, 0),
	))
	if err != nil {
		t.Fatal(err)
	}
	if got := dense(t, b, 3); !sameRows(got, [][]float32{{1, 2, N}, {4, N, N}}) || b.width != 3 {
		t.Fatalf("dense: %v width %d", got, b.width)
	}
	b, err = parseRecordIO(recordIO(
		float32Record([]float32{5, 6}, []uint64{3, 0}, []uint64{5}, 1),
		float32Record(nil, nil, []uint64{5}, 0),
		float32Record([]float32{7}, nil, nil, 0), // dense in a sparse batch
	))
	if err != nil {
		t.Fatal(err)
	}
	if got := dense(t, b, 5); !sameRows(got, [][]float32{{6, N, N, 5, N}, {N, N, N, N, N}, {7, N, N, N, N}}) || b.width != 5 {
		t.Fatalf("sparse: %v width %d", got, b.width)
	}
	for _, c := range []struct {
		body []byte
		msg  string
	}{
		{[]byte{1, 2, 3}, "truncated header"},
		{[]byte{0, 0, 0, 0, 0, 0, 0, 0}, "magic"},
		{recordIO([]byte{0x0a, 0x05}), "bad protobuf length"},
		{recordIO(pbBytes(nil, 5, []byte("x"))), `no features["values"]`},
		{recordIO(float32Record([]float32{1}, []uint64{7}, []uint64{5}, 0)), "outside the shape"},
		{recordIO(float32Record([]float32{1, 2}, []uint64{1, 1}, nil, 0)), "appears twice"},
		{recordIO(float32Record([]float32{1, 2}, []uint64{1}, nil, 0)), "1 keys for 2 values"},
		{recordIO(float32Record([]float32{float32(math.Inf(1))}, nil, nil, 0)), "Input data contains `inf`"},
	} {
		if _, err := parseRecordIO(c.body); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%x: error %v, want one with %q", c.body, err, c.msg)
		}
	}
}

// Fuzz targets: no input may panic, and every accepted batch must be
// consistent (rows within its width, values finite or NaN).

func checkBatch(t *testing.T, b *rowBatch) {
	if b.numRows() < 1 || b.off[0] != 0 || b.off[len(b.off)-1] != len(b.vals) {
		t.Fatalf("bad offsets %v for %d values", b.off, len(b.vals))
	}
	if b.idx != nil && len(b.idx) != len(b.vals) {
		t.Fatalf("%d indexes for %d values", len(b.idx), len(b.vals))
	}
	for r := 0; r < b.numRows(); r++ {
		lo, hi := b.off[r], b.off[r+1]
		if hi < lo || (b.idx == nil && hi-lo > b.width) {
			t.Fatalf("row %d spans %d..%d, width %d", r, lo, hi, b.width)
		}
	}
	for i, f := range b.idx {
		if f < 0 || int(f) >= b.width || b.vals[i] != b.vals[i] {
			t.Fatalf("entry %d: feature %d value %v, width %d", i, f, b.vals[i], b.width)
		}
	}
	for _, v := range b.vals {
		if math.IsInf(float64(v), 0) {
			t.Fatal("an infinite value was accepted")
		}
	}
	if b.width <= 64 {
		dense(t, b, b.width)
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{"1,2,3\n4,5,6", "1,,3\r\n,2,", "nan;1", "1\t2", "1e3,-inf", " 7 ", ",\n,", "0x1p3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		x, err := parseCSV(body)
		if err != nil {
			var be *bodyError
			if !errors.As(err, &be) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if x.Rows < 1 || x.Cols < 1 || len(x.Values) != x.Rows*x.Cols {
			t.Fatalf("%d×%d matrix with %d values", x.Rows, x.Cols, len(x.Values))
		}
		for _, v := range x.Values {
			if math.IsInf(float64(v), 0) {
				t.Fatal("an infinite value was accepted")
			}
		}
	})
}

func FuzzParseLibSVM(f *testing.F) {
	for _, s := range []string{"1 0:1.5 3:2\n0 2:-1", "1:nan\n\n5:0", "qid:1 1:2", "1 1:2:3", "0 100:1e-3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if b, err := parseLibSVM(body); err == nil {
			if b.width > 1<<20 {
				return // valid but too wide to check cheaply
			}
			checkBatch(t, b)
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"instances": [[1, null], {"features": [2]}]}`, `[[1,2],[3]]`, `[1, 2]`, `{"features": [1]}`, `[]`, `{"instances": [[]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if b, err := parseJSON(body); err == nil {
			checkBatch(t, b)
		}
		if b, err := parseJSONLines(body); err == nil {
			checkBatch(t, b)
		}
	})
}

func FuzzParseRecordIO(f *testing.F) {
	f.Add(recordIO(float32Record([]float32{1, 2, N}, nil, nil, 1), float32Record([]float32{4}, nil, nil, 0)))
	f.Add(recordIO(float32Record([]float32{5, 6}, []uint64{3, 0}, []uint64{5}, 1)))
	f.Fuzz(func(t *testing.T, body []byte) {
		if b, err := parseRecordIO(body); err == nil {
			if b.width > 1<<20 {
				return
			}
			checkBatch(t, b)
		}
	})
}

func TestParsedBatchesPredictLikeMatrices(t *testing.T) {
	// The same rows through every parser give the same predictions.
	c := loadCase(t, "missing_values")
	m, err := Parse(readGz(t, "missing_values.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	x := c.matrix()
	want, _ := m.Predict(x, PredictOptions{})
	bodies := encodeRows(x)
	for ct, parse := range map[string]func([]byte) (rowSource, error){
		mimeCSV:       func(b []byte) (rowSource, error) { return parseCSV(b) },
		mimeLibSVM:    func(b []byte) (rowSource, error) { return parseLibSVM(b) },
		mimeJSON:      func(b []byte) (rowSource, error) { return parseJSON(b) },
		mimeJSONLines: func(b []byte) (rowSource, error) { return parseJSONLines(b) },
		mimeRecordIO:  func(b []byte) (rowSource, error) { return parseRecordIO(b) },
	} {
		src, err := parse(bodies[ct])
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		got := m.predict(src, PredictOptions{})
		if !bytes.Equal(f32bytes(got.Values), f32bytes(want.Values)) {
			t.Errorf("%s: predictions differ from the matrix's", ct)
		}
	}
}

func f32bytes(v []float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
