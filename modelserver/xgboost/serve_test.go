package xgboost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// encodeRows writes a matrix as a request body in every content type.
func encodeRows(x Matrix) map[string][]byte {
	num := func(b []byte, v float32) []byte { return strconv.AppendFloat(b, float64(v), 'g', -1, 64) }
	var csv, libsvm, js, jsl, rio []byte
	js = append(js, `{"instances": [`...)
	var records [][]byte
	for r := 0; r < x.Rows; r++ {
		row := x.Values[r*x.Cols : (r+1)*x.Cols]
		if r > 0 {
			js = append(js, ", "...)
		}
		// Alternate the JSON row shapes the server accepts.
		if r%2 == 0 {
			js = append(js, `{"features": [`...)
		} else {
			js = append(js, '[')
		}
		jsl = append(jsl, '[')
		libsvm = append(libsvm, '0') // a label, ignored
		var keys []uint64
		var vals []float32
		for j, v := range row {
			if j > 0 {
				csv = append(csv, ',')
				js = append(js, ", "...)
				jsl = append(jsl, ", "...)
			}
			if v != v {
				js = append(js, "null"...)
				jsl = append(jsl, "null"...)
				continue
			}
			csv = num(csv, v)
			js = num(js, v)
			jsl = num(jsl, v)
			libsvm = append(libsvm, ' ')
			libsvm = strconv.AppendInt(libsvm, int64(j), 10)
			libsvm = append(libsvm, ':')
			libsvm = num(libsvm, v)
			keys = append(keys, uint64(j))
			vals = append(vals, v)
		}
		if r%2 == 0 {
			js = append(js, "]}"...)
		} else {
			js = append(js, ']')
		}
		csv = append(csv, '\n')
		libsvm = append(libsvm, '\n')
		jsl = append(jsl, "]\n"...)
		if r%3 == 0 { // dense records with NaN, and sparse ones
			records = append(records, float32Record(row, nil, nil, 0))
		} else {
			records = append(records, float32Record(vals, keys, []uint64{uint64(x.Cols)}, 0))
		}
	}
	js = append(js, "]}"...)
	rio = recordIO(records...)
	return map[string][]byte{mimeCSV: csv, mimeLibSVM: libsvm, mimeJSON: js, mimeJSONLines: jsl, mimeRecordIO: rio}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, h http.Handler, method, path, ct, accept string, body []byte) response {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// decodeAnswer reads predictions back from an answer body.
func decodeAnswer(t testing.TB, accept, body string) [][]float32 {
	t.Helper()
	var rows [][]float32
	parseRow := func(raw json.RawMessage) []float32 {
		var one float64
		if json.Unmarshal(raw, &one) == nil {
			return []float32{float32(one)}
		}
		var list []float64
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("score %s: %v", raw, err)
		}
		row := make([]float32, len(list))
		for i, v := range list {
			row[i] = float32(v)
		}
		return row
	}
	switch accept {
	case mimeJSON:
		var doc struct {
			Predictions []struct {
				Score json.RawMessage `json:"score"`
			} `json:"predictions"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("json answer %.200q: %v", body, err)
		}
		for _, p := range doc.Predictions {
			rows = append(rows, parseRow(p.Score))
		}
	case mimeJSONLines:
		for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			var p struct {
				Score json.RawMessage `json:"score"`
			}
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				t.Fatalf("jsonlines answer line %q: %v", line, err)
			}
			rows = append(rows, parseRow(p.Score))
		}
	default:
		if !strings.HasSuffix(body, "\n") {
			t.Fatalf("csv answer does not end in a newline: %.100q", body)
		}
		for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			var row []float32
			for _, f := range strings.Split(line, ",") {
				v, err := strconv.ParseFloat(f, 64)
				if err != nil {
					t.Fatalf("csv answer line %q: %v", line, err)
				}
				row = append(row, float32(v))
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func TestServeGoldenEveryContentTypeAndAccept(t *testing.T) {
	for _, name := range []string{"binary_logistic", "multi_softprob", "multi_softmax", "categorical", "missing_values",
		"dart_binary", "gblinear_regression", "early_stopping", "reg_gamma"} {
		c := loadCase(t, name)
		m, err := Parse(readGz(t, name+".ubj.gz"))
		if err != nil {
			t.Fatal(err)
		}
		want := f32s(c.Pred)
		h := NewHandler(m)
		for ct, body := range encodeRows(c.matrix()) {
			for _, accept := range []string{mimeCSV, mimeJSON, mimeJSONLines} {
				resp := do(t, h, "POST", "/invocations", ct, accept, body)
				if resp.status != 200 {
					t.Fatalf("%s %s → %s: %d %s", name, ct, accept, resp.status, resp.body)
				}
				wantCT := accept
				if accept == mimeCSV {
					wantCT = "text/csv; charset=utf-8"
				}
				if got := resp.header.Get("Content-Type"); got != wantCT {
					t.Errorf("%s %s → %s: Content-Type %q", name, ct, accept, got)
				}
				rows := decodeAnswer(t, accept, resp.body)
				var got []float32
				for _, r := range rows {
					got = append(got, r...)
				}
				if len(rows) != len(c.Rows) || len(got) != len(want) {
					t.Fatalf("%s %s → %s: %d rows / %d values, want %d / %d", name, ct, accept, len(rows), len(got), len(c.Rows), len(want))
				}
				for i := range want {
					if !sameFloat32(got[i], want[i]) {
						t.Fatalf("%s %s → %s: value %d = %v, XGBoost %v", name, ct, accept, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func goldenModel(t testing.TB, name string) *Model {
	t.Helper()
	m, err := Parse(readGz(t, name+".json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestServeErrorsAsTheContainer(t *testing.T) {
	m := goldenModel(t, "binary_logistic") // 6 features
	h := NewHandlerWithConfig(m, Config{MaxContentLength: 1000})
	for _, c := range []struct {
		name, method, ct, accept, body string
		status                         int
		want                           string // the whole body, or a prefix ending in "…"
	}{
		{"empty body", "POST", "text/csv", "", "", 204, ""},
		{"unsupported content type", "POST", "image/png", "", "1,2", 415,
			"Content type image/png is not supported. Supported content types: text/csv, text/libsvm, text/x-libsvm, application/json, application/jsonlines, application/x-recordio-protobuf."},
		{"bad csv", "POST", "text/csv", "", "1,2,3,4,5,abc", 415,
			`Loading csv data failed with Exception, please ensure data is in csv format: line 1, field 6: could not convert string to float: "abc"`},
		{"ragged csv", "POST", "text/csv", "", "1,2,3,4,5,6\n1,2", 415,
			"Loading csv data failed with Exception, please ensure data is in csv format: line 2 has 2 fields, but line 1 has 6"},
		{"inf in csv", "POST", "text/csv", "", "1,2,3,4,5,inf", 415,
			"Loading csv data failed with Exception, please ensure data is in csv format: line 1, field 6: Input data contains `inf` or a value too large, while `missing` is not set to `inf`"},
		{"bad libsvm", "POST", "text/libsvm", "", "1 a:2", 415, "Loading libsvm data failed with Exception, please ensure data is in libsvm format: line 1: \"a:2\": the feature index \"a\" is not a non-negative integer"},
		{"bad json", "POST", "application/json", "", "{", 415, "Loading json data failed with Exception, please ensure data is in json format: unexpected end of JSON input"},
		{"bad jsonlines", "POST", "application/jsonlines", "", "[1]\nx", 415, "Loading jsonlines data failed with Exception, please ensure data is in jsonlines format: line 2: …"},
		{"bad recordio", "POST", "application/x-recordio-protobuf", "", "xxxxxxxxxx", 415, "Loading recordio-protobuf data failed with Exception, please ensure data is in recordio-protobuf format: record 0: bad RecordIO magic number"},
		{"too many csv features", "POST", "text/csv", "", "1,2,3,4,5,6,7", 400,
			"Unable to evaluate payload provided: Feature size of csv inference data 7 is larger than feature size of trained model 6."},
		{"too many libsvm features", "POST", "text/libsvm", "", "0 1:1 9:2", 400,
			"Unable to evaluate payload provided: Feature size of libsvm inference data 10 is larger than feature size of trained model 6."},
		{"too many json features", "POST", "application/json", "", "[[1,2,3,4,5,6,7,8]]", 400,
			"Unable to evaluate payload provided: Feature size of json inference data 8 is larger than feature size of trained model 6."},
		{"unsupported accept", "POST", "text/csv", "text/html", "1,2,3,4,5,6", 406,
			"Accept type text/html is not supported. Please use supported accept types: ['application/json', 'application/jsonlines', 'text/csv']."},
		{"recordio accept", "POST", "text/csv", "application/x-recordio-protobuf", "1,2,3,4,5,6", 406, "Accept type application/x-recordio-protobuf is not supported. …"},
		{"too large", "POST", "text/csv", "", strings.Repeat("1,", 600), 413,
			"The request body is larger than the 1000 bytes the model server accepts (MAX_CONTENT_LENGTH)."},
		{"get invocations", "GET", "", "", "", 405, "…"},
		{"post ping", "POST", "", "", "", 405, "…"},
		{"unknown path", "GET", "", "", "", 404, "…"},
	} {
		path := "/invocations"
		if strings.Contains(c.name, "ping") {
			path = "/ping"
		} else if c.name == "unknown path" {
			path = "/predict"
		}
		resp := do(t, h, c.method, path, c.ct, c.accept, []byte(c.body))
		if resp.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, resp.status, c.status, resp.body)
			continue
		}
		if prefix, ok := strings.CutSuffix(c.want, "…"); ok {
			if !strings.HasPrefix(resp.body, prefix) {
				t.Errorf("%s: body %q, want it to start with %q", c.name, resp.body, prefix)
			}
		} else if resp.body != c.want {
			t.Errorf("%s: body\n %q\nwant\n %q", c.name, resp.body, c.want)
		}
	}
}

func TestServeContentTypeAndAcceptVariants(t *testing.T) {
	m := goldenModel(t, "binary_logistic")
	row := "1,2,3,4,5,6"
	h := NewHandler(m)
	base := do(t, h, "POST", "/invocations", "text/csv", "", []byte(row))
	if base.status != 200 || base.header.Get("Content-Type") != "text/csv; charset=utf-8" || strings.Count(base.body, "\n") != 1 {
		t.Fatalf("plain csv: %d %q %q", base.status, base.header.Get("Content-Type"), base.body)
	}
	score := strings.TrimSpace(base.body)
	for _, ct := range []string{"", "TEXT/CSV", "text/csv; charset=utf-8", "csv", "text/csv;label_size=0"} {
		if r := do(t, h, "POST", "/invocations", ct, "", []byte(row)); r.status != 200 || strings.TrimSpace(r.body) != score {
			t.Errorf("Content-Type %q: %d %q", ct, r.status, r.body)
		}
	}
	for _, ct := range []string{"text/libsvm", "text/x-libsvm", "libsvm"} {
		if r := do(t, h, "POST", "/invocations", ct, "", []byte("0 0:1 1:2 2:3 3:4 4:5 5:6")); r.status != 200 || strings.TrimSpace(r.body) != score {
			t.Errorf("Content-Type %q: %d %q", ct, r.status, r.body)
		}
	}
	jsonAnswer := `{"predictions": [{"score": ` + score + `}]}`
	for accept, want := range map[string]string{
		"*/*":                             score + "\n",
		"application/json":                jsonAnswer,
		"Application/JSON; charset=utf-8": jsonAnswer,
		"text/html, application/json":     jsonAnswer,
		"application/*":                   jsonAnswer,
		"text/*":                          score + "\n",
		"application/jsonlines":           `{"score": ` + score + "}\n",
	} {
		if r := do(t, h, "POST", "/invocations", "text/csv", accept, []byte(row)); r.status != 200 || r.body != want {
			t.Errorf("Accept %q: %d %q, want %q", accept, r.status, r.body, want)
		}
	}
	hj := NewHandlerWithConfig(m, Config{DefaultAccept: mimeJSON})
	for _, accept := range []string{"", "*/*"} {
		if r := do(t, hj, "POST", "/invocations", "text/csv", accept, []byte(row)); r.status != 200 || r.body != jsonAnswer {
			t.Errorf("default accept json, Accept %q: %d %q", accept, r.status, r.body)
		}
	}
}

func TestServeSelectableInferenceOutput(t *testing.T) {
	m := goldenModel(t, "binary_logistic")
	plain := do(t, NewHandler(m), "POST", "/invocations", "text/csv", "", []byte("1,2,3,4,5,6"))
	p, err := strconv.ParseFloat(strings.TrimSpace(plain.body), 64)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandlerWithConfig(m, Config{InferenceOutput: []string{"predicted_label", "probability"}})
	r := do(t, h, "POST", "/invocations", "text/csv", "application/json", []byte("1,2,3,4,5,6"))
	label := 0
	if p > 0.5 {
		label = 1
	}
	want := fmt.Sprintf(`{"predictions": [{"predicted_label": %d, "probability": %s}]}`, label, pyFloat(nil, p))
	if r.status != 200 || r.body != want {
		t.Errorf("selectable json: %d %q, want %q", r.status, r.body, want)
	}
	r = do(t, h, "POST", "/invocations", "text/csv", "", []byte("1,2,3,4,5,6\n6,5,4,3,2,1"))
	if r.status != 200 || strings.Count(r.body, "\n") != 1 || !strings.HasPrefix(r.body, fmt.Sprintf("%d,%s\n", label, pyFloat(nil, p))) {
		t.Errorf("selectable csv: %d %q", r.status, r.body)
	}
	poisson := goldenModel(t, "count_poisson")
	h = NewHandlerWithConfig(poisson, Config{InferenceOutput: []string{"predicted_score"}})
	r = do(t, h, "POST", "/invocations", "text/csv", "", []byte("1,2,3,4,5,6"))
	if r.status != 500 || r.body != "Objective `count:poisson` unsupported for selectable inference predictions." {
		t.Errorf("selectable poisson: %d %q", r.status, r.body)
	}
}

func TestServeErrorPrecedence(t *testing.T) {
	// A request wrong in several ways gets the error of the check the
	// container makes first: body, content type, feature count, Accept,
	// then selectable output.
	poisson := goldenModel(t, "count_poisson") // 6 features, no selectable output
	h := NewHandlerWithConfig(poisson, Config{InferenceOutput: []string{"predicted_score"}})
	for _, c := range []struct {
		ct, accept, body string
		status           int
	}{
		{"image/png", "text/html", "1,2,3,4,5,6,7", 415},
		{"text/csv", "text/html", "1,2,x", 415},
		{"text/csv", "text/html", "1,2,3,4,5,6,7", 400},
		{"text/csv", "text/html", "1,2,3,4,5,6", 406},
		{"text/csv", "text/csv", "1,2,3,4,5,6", 500},
		{"text/csv", "text/html", "", 204},
	} {
		if r := do(t, h, "POST", "/invocations", c.ct, c.accept, []byte(c.body)); r.status != c.status {
			t.Errorf("%s %q accept %s: status %d, want %d (%s)", c.ct, c.body, c.accept, r.status, c.status, r.body)
		}
	}
}

func TestServeBigBatch(t *testing.T) {
	m := goldenModel(t, "trees100")
	const rows = 30000
	x := Matrix{Rows: rows, Cols: m.NumFeature(), Values: make([]float32, rows*m.NumFeature())}
	for i := range x.Values {
		x.Values[i] = float32(math.Sin(float64(i)*0.37)) * 3
		if i%17 == 0 {
			x.Values[i] = nan32
		}
	}
	want, err := m.Predict(x, PredictOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	bodies := encodeRows(x)
	if n := len(bodies[mimeCSV]); n > DefaultMaxContentLength {
		t.Fatalf("csv body of %d bytes is over the limit", n)
	}
	h := NewHandler(m)
	for _, ct := range []string{mimeCSV, mimeLibSVM} {
		r := do(t, h, "POST", "/invocations", ct, mimeCSV, bodies[ct])
		if r.status != 200 {
			t.Fatalf("%s: %d %.200s", ct, r.status, r.body)
		}
		got := decodeAnswer(t, mimeCSV, r.body)
		if len(got) != rows {
			t.Fatalf("%s: %d rows, want %d", ct, len(got), rows)
		}
		for i := range got {
			if !sameFloat32(got[i][0], want.Values[i]) {
				t.Fatalf("%s: row %d = %v, want %v", ct, i, got[i][0], want.Values[i])
			}
		}
	}
	over := bytes.Repeat([]byte("0.5,"), DefaultMaxContentLength/4+1)
	if r := do(t, h, "POST", "/invocations", mimeCSV, "", over); r.status != 413 {
		t.Errorf("a %d-byte body: %d", len(over), r.status)
	}
}

func TestServePingExecutionParametersAndLog(t *testing.T) {
	var log bytes.Buffer
	h := NewHandlerWithConfig(goldenModel(t, "reg_squarederror"), Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if r := do(t, h, "GET", "/ping", "", "", nil); r.status != 200 {
		t.Errorf("ping: %d", r.status)
	}
	if r := do(t, h, "HEAD", "/ping", "", "", nil); r.status != 200 {
		t.Errorf("HEAD ping: %d", r.status)
	}
	r := do(t, h, "GET", "/execution-parameters", "", "", nil)
	var params map[string]any
	if r.status != 200 || json.Unmarshal([]byte(r.body), &params) != nil || params["BatchStrategy"] != "MULTI_RECORD" || params["MaxPayloadInMB"] != 6.0 {
		t.Errorf("execution-parameters: %d %s", r.status, r.body)
	}
	do(t, h, "POST", "/invocations", "text/csv", "", []byte("1,2,3,4,5,6\n1,2,3,4,5,6"))
	do(t, h, "POST", "/invocations", "text/csv", "", []byte("x"))
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d log lines for 5 requests:\n%s", len(lines), log.String())
	}
	if !strings.Contains(lines[3], "path=/invocations") || !strings.Contains(lines[3], "status=200") || !strings.Contains(lines[3], "rows=2") {
		t.Errorf("invocation log line: %s", lines[3])
	}
	if !strings.Contains(lines[4], "level=WARN") || !strings.Contains(lines[4], "status=415") || !strings.Contains(lines[4], "could not convert") {
		t.Errorf("failed invocation log line: %s", lines[4])
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(EnvInferenceOutput, "Predicted_Label, probabilities")
	t.Setenv(EnvDefaultAccept, "application/JSON")
	t.Setenv(EnvBatch, "true")
	t.Setenv(EnvMaxContentLength, "1024")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.InferenceOutput, "|") != "predicted_label|probabilities" || cfg.DefaultAccept != mimeJSON || !cfg.Batch || cfg.MaxContentLength != 1024 {
		t.Errorf("config %+v", cfg)
	}
	t.Setenv(EnvDefaultAccept, "text/html")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), EnvDefaultAccept) {
		t.Errorf("bad default accept: %v", err)
	}
	t.Setenv(EnvDefaultAccept, "")
	t.Setenv(EnvMaxContentLength, "lots")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("bad MAX_CONTENT_LENGTH accepted")
	}
}

func TestServeBatchCSV(t *testing.T) {
	h := NewHandlerWithConfig(goldenModel(t, "multi_softprob"), Config{Batch: true})
	r := do(t, h, "POST", "/invocations", "text/csv", "", []byte("1,2,3,4,5,6\n6,5,4,3,2,1"))
	lines := strings.Split(r.body, "\n")
	if r.status != 200 || len(lines) != 3 || lines[2] != "" || !strings.HasPrefix(lines[0], "[") || strings.Count(lines[0], ", ") != 2 {
		t.Errorf("batch softprob csv: %d %q", r.status, r.body)
	}
}

func TestServeConcurrent(t *testing.T) {
	m := goldenModel(t, "trees100")
	srv := httptest.NewServer(NewHandler(m))
	defer srv.Close()
	c := loadCase(t, "trees100")
	body := encodeRows(c.matrix())[mimeCSV]
	want := f32s(c.Pred)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			resp, err := http.Post(srv.URL+"/invocations", "text/csv", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			rows := decodeAnswer(t, mimeCSV, string(b))
			for i := range want {
				if !sameFloat32(rows[i][0], want[i]) {
					errs <- fmt.Errorf("row %d = %v, want %v", i, rows[i][0], want[i])
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
