package xgboost

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

func writeFile(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadModelDirectory(t *testing.T) {
	for _, c := range []struct {
		files  map[string]string // name → golden file
		format string
	}{
		{map[string]string{"xgboost-model": "binary_logistic.json.gz"}, "json"},
		{map[string]string{"xgboost-model": "binary_logistic.ubj.gz"}, "ubjson"},
		{map[string]string{"xgboost-model": "binary_logistic.bin.gz"}, "binary"},
		// xgboost-model wins over other files.
		{map[string]string{"xgboost-model": "binary_logistic.bin.gz", "a.json": "reg_gamma.json.gz"}, "binary"},
		{map[string]string{"model.json": "binary_logistic.json.gz", "notes.txt": ""}, "json"},
		{map[string]string{"Model.UBJ": "binary_logistic.ubj.gz"}, "ubjson"},
		// The first *.json or *.ubj by name.
		{map[string]string{"b.json": "reg_gamma.json.gz", "a.ubj": "binary_logistic.ubj.gz"}, "ubjson"},
	} {
		dir := t.TempDir()
		for name, golden := range c.files {
			var b []byte
			if golden != "" {
				b = readGz(t, golden)
			}
			writeFile(t, dir, name, b)
		}
		m, err := Load(dir)
		if err != nil {
			t.Errorf("%v: %v", c.files, err)
			continue
		}
		if m.Format() != c.format || m.Objective() != "binary:logistic" {
			t.Errorf("%v: loaded %s %s", c.files, m.Format(), m.Objective())
		}
	}

	dir := t.TempDir()
	writeFile(t, dir, "model.bin", []byte("x"))
	writeFile(t, dir, "xgboost-model-0", []byte("x"))
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "expected a file named xgboost-model or a *.json or *.ubj file, but it holds model.bin, xgboost-model-0") {
		t.Errorf("no model: %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "it is empty") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "reading model directory") {
		t.Errorf("missing directory: %v", err)
	}
	// A directory named xgboost-model is not the model.
	dir = t.TempDir()
	os.Mkdir(filepath.Join(dir, "xgboost-model"), 0o755)
	writeFile(t, dir, "m.json", readGz(t, "reg_gamma.json.gz"))
	if m, err := Load(dir); err != nil || m.Objective() != "reg:gamma" {
		t.Errorf("directory named xgboost-model: %v", err)
	}
}

func TestParseRejectsWithUsefulErrors(t *testing.T) {
	jsonModel := string(readGz(t, "binary_logistic.json.gz"))
	for _, c := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "the model file is empty"},
		{"pickle", []byte("\x80\x04\x95\x10\x00\x00\x00"), `Python pickle`},
		{"garbage", []byte("hello world, this is not a model at all"), `save_model("xgboost-model.json")`},
		{"truncated binary", readGz(t, "binary_logistic.bin.gz")[:500], "reading it as the legacy binary format failed: 8 trees claimed, more than the"},
		{"truncated binary tree", readGz(t, "binary_logistic.bin.gz")[:5000], "legacy binary format failed: tree 7: 13 nodes claimed"},
		{"truncated json", []byte(jsonModel[:len(jsonModel)/2]), "decoding the json model"},
		{"truncated ubjson", readGz(t, "binary_logistic.ubj.gz")[:300], "ubjson"},
		{"other json", []byte(`{"a": 1}`), "not an XGBoost model"},
		{"unknown objective", []byte(strings.Replace(jsonModel, `"name":"binary:logistic"`, `"name":"reg:mystery"`, 1)), `unsupported objective "reg:mystery"`},
		{"unknown booster", []byte(strings.Replace(jsonModel, `"name":"gbtree"`, `"name":"gbforest"`, 1)), `unsupported booster "gbforest"`},
		{"bad base_score", []byte(strings.Replace(jsonModel, `"base_score":"5E-1"`, `"base_score":"2E0"`, 1)), "outside (0,1)"},
		{"bad tree_info", []byte(strings.Replace(jsonModel, `"tree_info":[0,`, `"tree_info":[3,`, 1)), "tree 0 belongs to output group 3"},
		{"multi-output", []byte(strings.Replace(jsonModel, `"size_leaf_vector":"0"`, `"size_leaf_vector":"3"`, 1)), "multi-output"},
	} {
		_, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.msg)
		}
	}
}

// tinyTree is a JSON model with one tree whose nodes the test sets.
func tinyTree(left, right, feature string) []byte {
	return []byte(`{"learner":{"gradient_booster":{"name":"gbtree","model":{"gbtree_model_param":{"num_parallel_tree":"1"},
	"tree_info":[0],"trees":[{"tree_param":{"num_nodes":"3"},"left_children":` + left + `,"right_children":` + right + `,
	"split_indices":` + feature + `,"split_conditions":[0.5,1,2],"default_left":[1,0,0]}]}},
	"learner_model_param":{"base_score":"5E-1","num_feature":"2"},"objective":{"name":"reg:squarederror"}},"version":[1,7,4]}`)
}

func TestParseValidatesTrees(t *testing.T) {
	m, err := Parse(tinyTree("[1,-1,-1]", "[2,-1,-1]", "[1,0,0]"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Predict(NewMatrix([][]float32{{0, 0.2}, {0, 0.7}, {0, N}, {0}}), PredictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// base 0.5 + leaf: feature 1 < 0.5 → left (1), else right (2), missing → left.
	if want := []float32{1.5, 2.5, 1.5, 1.5}; !sameRows([][]float32{p.Values}, [][]float32{want}) {
		t.Errorf("predictions %v, want %v", p.Values, want)
	}
	for _, c := range []struct{ left, right, feature, msg string }{
		{"[1,-1,-1]", "[1,-1,-1]", "[1,0,0]", "same left and right child"},
		{"[1,0,-1]", "[2,2,-1]", "[1,0,0]", "node 1 has child 0"},
		{"[1,2,-1]", "[2,-1,-1]", "[1,0,0]", "node 2 is reached twice"},
		{"[1,-1,-1]", "[5,-1,-1]", "[1,0,0]", "outside the tree"},
		{"[1,-1,-1]", "[2,-1,-1]", "[7,0,0]", "splits on feature 7, but the model has 2 features"},
		{"[1,-1]", "[2,-1,-1]", "[1,0,0]", "node arrays disagree"},
	} {
		if _, err := Parse(tinyTree(c.left, c.right, c.feature)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %s %s: error %v, want one with %q", c.left, c.right, c.feature, err, c.msg)
		}
	}
	// A cycle: node 1's children are 2 and (again) 1.
	cyclic := []byte(strings.Replace(string(tinyTree("[1,2,-1]", "[2,1,-1]", "[1,0,0]")), `"num_nodes":"3"`, `"num_nodes":"3"`, 1))
	if _, err := Parse(cyclic); err == nil {
		t.Error("a cyclic tree was accepted")
	}
}

func TestPredictRejectsWideRows(t *testing.T) {
	m := goldenModel(t, "reg_squarederror")
	_, err := m.Predict(Matrix{Rows: 1, Cols: 7, Values: make([]float32, 7)}, PredictOptions{})
	if fe, ok := err.(*FeatureCountError); !ok || fe.Got != 7 || fe.Want != 6 {
		t.Errorf("7 features for 6: %v", err)
	}
	if _, err := m.Predict(Matrix{Rows: 2, Cols: 6, Values: make([]float32, 6)}, PredictOptions{}); err == nil {
		t.Error("a matrix short of values was accepted")
	}
}

func TestUBJSONTranscoder(t *testing.T) {
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	doc := []byte{'{'}
	doc = append(doc, 'i', 1, 'a', '[', '$', 'd', '#', 'i', 2)
	doc = append(doc, be32(math.Float32bits(0.1))...)
	doc = append(doc, be32(math.Float32bits(-2.5))...)
	doc = append(doc, 'U', 1, 'b', '[', 'S', 'i', 2, 'h', 'i', 'T', 'Z', 'N', 'I', 0x01, 0x00, ']')
	doc = append(doc, 'i', 1, 'c', '{', '#', 'i', 1, 'i', 1, 'd', 'L', 0, 0, 0, 0, 0, 0, 0, 7)
	doc = append(doc, 'i', 2, 'e', '"', 'H', 'i', 3, '1', 'e', '5', '}')
	got, err := ubjsonToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[0.1,-2.5],"b":["hi",true,null,256],"c":{"d":7},"e\"":1e5}`; string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	for _, bad := range [][]byte{
		{'{'}, {'['}, {'x'}, {'[', '$', 'd', '#', 'L', 0x7f, 0, 0, 0, 0, 0, 0, 0}, {'S', 'i', 0xff},
		{'[', '#', 'l', 0x7f, 0xff, 0xff, 0xff}, {'H', 'i', 1, 'x'}, {'[', '$', 'Z', '#', 'l', 0x7f, 0, 0, 0},
		{'i', 1, 2}, bytes.Repeat([]byte{'['}, 200),
	} {
		if out, err := ubjsonToJSON(bad); err == nil {
			t.Errorf("%q: accepted as %s", bad, out)
		}
	}
}

func FuzzParseModel(f *testing.F) {
	for _, name := range []string{"reg_squarederror", "categorical", "dart_binary"} {
		for _, fmt := range []string{"json", "ubj", "bin"} {
			if b, err := os.ReadFile(filepath.Join("testdata", "golden", name+"."+fmt+".gz")); err == nil {
				zr, _ := gzip.NewReader(bytes.NewReader(b))
				data, _ := io.ReadAll(zr)
				f.Add(data)
			}
		}
	}
	f.Add(tinyTree("[1,-1,-1]", "[2,-1,-1]", "[1,0,0]"))
	f.Add(toUBJSON(f, tinyTree("[1,-1,-1]", "[2,-1,-1]", "[1,0,0]")))
	x := NewMatrix([][]float32{{0, 1, N, 3, -1, 1e6}, {N, N, N, N, N, N}, {5, 6}})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever loads must predict without panicking or looping.
		if x.Cols <= m.NumFeature() && m.NumFeature() < 1<<16 {
			if _, err := m.Predict(x, PredictOptions{AllTrees: true}); err != nil {
				t.Fatal(err)
			}
		}
		if j, err := ubjsonToJSON(data); err == nil && !json.Valid(j) {
			t.Fatalf("transcoded UBJSON is not JSON: %.200s", j)
		}
	})
}

func TestExampleModel(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(example.ModelTarGz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != ModelFileName {
		t.Fatalf("first entry %v, %v: want %s", hdr, err, ModelFileName)
	}
	dir := t.TempDir()
	b, _ := io.ReadAll(tr)
	writeFile(t, dir, hdr.Name, b)
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("more than one file in the example: %v", err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format() != "ubjson" || m.NumFeature() != 4 || m.Objective() != "reg:squarederror" {
		t.Fatalf("example model: %s %d features %s", m.Format(), m.NumFeature(), m.Objective())
	}
	resp := do(t, NewHandler(m), "POST", "/invocations", "text/csv", "", []byte(example.SampleCSV))
	want, err := os.ReadFile(filepath.Join("example", "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 200 || resp.body != string(want) {
		t.Fatalf("sample: %d %q, want %q", resp.status, resp.body, want)
	}
	if v, _ := strconv.ParseFloat(strings.TrimSpace(resp.body), 64); v < 100 || v > 2000 {
		t.Errorf("a house priced at %v thousand", v)
	}
}

// toUBJSON encodes a JSON document as UBJSON the way XGBoost does: 'L'
// lengths, numbers in arrays of numbers as typed float32 ('d') or int32
// ('l') containers.
func toUBJSON(t testing.TB, doc []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var out []byte
	str := func(s string) {
		out = append(out, 'L')
		out = binary.BigEndian.AppendUint64(out, uint64(len(s)))
		out = append(out, s...)
	}
	var enc func(v any)
	enc = func(v any) {
		switch v := v.(type) {
		case nil:
			out = append(out, 'Z')
		case bool:
			out = append(out, map[bool]byte{true: 'T', false: 'F'}[v])
		case string:
			out = append(out, 'S')
			str(v)
		case json.Number:
			if i, err := v.Int64(); err == nil {
				out = append(out, 'L')
				out = binary.BigEndian.AppendUint64(out, uint64(i))
			} else {
				f, _ := v.Float64()
				out = append(out, 'd')
				out = binary.BigEndian.AppendUint32(out, math.Float32bits(float32(f)))
			}
		case []any:
			ints, nums := true, len(v) > 0
			for _, e := range v {
				n, ok := e.(json.Number)
				nums = nums && ok
				if _, err := n.Int64(); !ok || err != nil {
					ints = false
				}
			}
			if !nums {
				out = append(out, '[')
				for _, e := range v {
					enc(e)
				}
				out = append(out, ']')
				return
			}
			typ := byte('d')
			if ints {
				typ = 'l'
			}
			out = append(out, '[', '$', typ, '#', 'L')
			out = binary.BigEndian.AppendUint64(out, uint64(len(v)))
			for _, e := range v {
				if ints {
					i, _ := e.(json.Number).Int64()
					out = binary.BigEndian.AppendUint32(out, uint32(int32(i)))
				} else {
					f, _ := e.(json.Number).Float64()
					out = binary.BigEndian.AppendUint32(out, math.Float32bits(float32(f)))
				}
			}
		case map[string]any:
			out = append(out, '{')
			for k, e := range v {
				str(k)
				enc(e)
			}
			out = append(out, '}')
		}
	}
	enc(v)
	return out
}

func TestUBJSONEncodingOfTheJSONModelPredictsTheSame(t *testing.T) {
	for _, name := range []string{"multi_softprob", "dart_regression", "missing_values"} {
		j := readGz(t, name+".json.gz")
		a, err := Parse(j)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(toUBJSON(t, j))
		if err != nil {
			t.Fatalf("%s re-encoded: %v", name, err)
		}
		x := loadCase(t, name).matrix()
		pa, _ := a.Predict(x, PredictOptions{})
		pb, _ := b.Predict(x, PredictOptions{})
		if b.Format() != "ubjson" || !bytes.Equal(f32bytes(pa.Values), f32bytes(pb.Values)) {
			t.Errorf("%s: the UBJSON encoding predicts differently", name)
		}
	}
}
