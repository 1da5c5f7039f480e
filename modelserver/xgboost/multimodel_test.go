package xgboost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sagehost/sagehost/modelserver/mms"
	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

// goldenDir writes the golden model name in format (json, ubj, bin) into a
// new model directory as file.
func goldenDir(t *testing.T, name, format, file string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, file, readGz(t, name+"."+format+".gz"))
	return dir
}

func loadBody(name, url string) []byte {
	b, _ := json.Marshal(mms.LoadRequest{ModelName: name, URL: url})
	return b
}

func mustLoad(t *testing.T, h http.Handler, name, url string) {
	t.Helper()
	r := do(t, h, "POST", "/models", "application/json", "", loadBody(name, url))
	if r.status != 200 || r.body != `{"status":"Model \"`+name+`\" registered"}` {
		t.Fatalf("load %s: %d %s", name, r.status, r.body)
	}
}

func wantMMSError(t *testing.T, what string, r response, status int, typ, msg string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (%s)", what, r.status, status, r.body)
		return
	}
	var e mms.ErrorResponse
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || r.header.Get("Content-Type") != mimeJSON {
		t.Errorf("%s: %q (%s) is not an MMS error: %v", what, r.body, r.header.Get("Content-Type"), err)
		return
	}
	if e.Code != status || e.Type != typ || !strings.HasPrefix(e.Message, msg) {
		t.Errorf("%s: error %+v, want code %d type %s message starting %q", what, e, status, typ, msg)
	}
}

// wantGolden checks an answer against XGBoost's predictions of a case.
func wantGolden(t *testing.T, what string, c *goldenCase, accept string, r response) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
	var got []float32
	for _, row := range decodeAnswer(t, accept, r.body) {
		got = append(got, row...)
	}
	want := f32s(c.Pred)
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !sameFloat32(got[i], want[i]) {
			t.Fatalf("%s: value %d = %v, XGBoost %v", what, i, got[i], want[i])
		}
	}
}

func TestMultiModelServesEachModelItsOwnPredictions(t *testing.T) {
	h := NewMultiModelHandler(Config{})
	cases := map[string]*goldenCase{"reg": loadCase(t, "reg_squarederror"), "bin": loadCase(t, "binary_logistic")}
	// Two formats and both ways of finding the model file.
	mustLoad(t, h, "reg", goldenDir(t, "reg_squarederror", "json", ModelFileName))
	mustLoad(t, h, "bin", goldenDir(t, "binary_logistic", "ubj", "model.ubj"))
	for name, c := range cases {
		for ct, body := range encodeRows(c.matrix()) {
			for _, accept := range []string{mimeCSV, mimeJSON, mimeJSONLines} {
				req := httptest.NewRequest("POST", "/models/"+name+"/invoke", bytes.NewReader(body))
				req.Header.Set("Content-Type", ct)
				req.Header.Set("Accept", accept)
				req.Header.Set("X-Amzn-SageMaker-Target-Model", name+".tar.gz")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				wantGolden(t, fmt.Sprintf("%s %s → %s", name, ct, accept), c, accept,
					response{status: rec.Code, header: rec.Header(), body: rec.Body.String()})
			}
		}
	}
	// The same rows give different answers: each model answered for itself.
	body := encodeRows(cases["reg"].matrix())[mimeCSV]
	if a, b := do(t, h, "POST", "/models/reg/invoke", mimeCSV, "", body), do(t, h, "POST", "/models/bin/invoke", mimeCSV, "", body); a.body == b.body {
		t.Error("both models answer the same")
	}
}

func TestMultiModelLoadListDescribeUnload(t *testing.T) {
	var log bytes.Buffer
	h := NewMultiModelHandler(Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if r := do(t, h, "GET", "/ping", "", "", nil); r.status != 200 {
		t.Errorf("ping with no model: %d", r.status)
	}
	regDir := goldenDir(t, "reg_squarederror", "json", ModelFileName)
	binDir := goldenDir(t, "binary_logistic", "bin", ModelFileName)
	mustLoad(t, h, "reg", regDir)
	mustLoad(t, h, "bin", binDir)

	r := do(t, h, "POST", "/models", "application/json", "", loadBody("reg", binDir))
	wantMMSError(t, "double load", r, 409, mms.ErrTypeConflict, "Model reg is already registered.")

	r = do(t, h, "GET", "/models", "", "", nil)
	if r.status != 200 || r.body != fmt.Sprintf(`{"models":[{"modelName":"bin","modelUrl":%q},{"modelName":"reg","modelUrl":%q}]}`, binDir, regDir) {
		t.Errorf("list: %d %s", r.status, r.body)
	}
	r = do(t, h, "GET", "/models/reg", "", "", nil)
	if r.status != 200 || r.body != fmt.Sprintf(`{"modelName":"reg","modelUrl":%q}`, regDir) {
		t.Errorf("describe: %d %s", r.status, r.body)
	}

	r = do(t, h, "DELETE", "/models/reg", "", "", nil)
	if r.status != 200 || r.body != `{"status":"Model \"reg\" unregistered"}` {
		t.Errorf("unload: %d %s", r.status, r.body)
	}
	wantMMSError(t, "invoke after unload", do(t, h, "POST", "/models/reg/invoke", mimeCSV, "", []byte("1,2,3,4,5,6")),
		404, mms.ErrTypeModelNotFound, "Model not found: reg")
	wantMMSError(t, "describe after unload", do(t, h, "GET", "/models/reg", "", "", nil), 404, mms.ErrTypeModelNotFound, "Model not found: reg")
	wantMMSError(t, "unload twice", do(t, h, "DELETE", "/models/reg", "", "", nil), 404, mms.ErrTypeModelNotFound, "Model not found: reg")
	wantMMSError(t, "invoke never loaded", do(t, h, "POST", "/models/nope/invoke", mimeCSV, "", []byte("1")), 404, mms.ErrTypeModelNotFound, "Model not found: nope")
	if r := do(t, h, "POST", "/models/bin/invoke", mimeCSV, "", []byte("1,2,3,4,5,6")); r.status != 200 {
		t.Errorf("the other model after an unload: %d %s", r.status, r.body)
	}
	// Loaded again after the unload.
	mustLoad(t, h, "reg", regDir)

	for _, want := range []string{`msg="loaded model" model=reg url=` + regDir + ` format=json`, "objective=reg:squarederror", "loaded_models=2",
		`msg="unloaded model" model=reg loaded_models=1`, "path=/models/reg/invoke status=404"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestMultiModelLoadErrors(t *testing.T) {
	h := NewMultiModelHandler(Config{})
	missing := filepath.Join(t.TempDir(), "missing")
	corrupt := t.TempDir()
	writeFile(t, corrupt, ModelFileName, []byte("not a model at all"))
	for _, c := range []struct {
		name, url, msg string
	}{
		{"missing directory", missing, "Failed to load model m: reading model directory: open " + missing},
		{"empty directory", t.TempDir(), "Failed to load model m: no XGBoost model in "},
		{"corrupt model", corrupt, "Failed to load model m: loading " + filepath.Join(corrupt, ModelFileName) + ": not a JSON or UBJSON XGBoost model"},
	} {
		r := do(t, h, "POST", "/models", "application/json", "", loadBody("m", c.url))
		wantMMSError(t, c.name, r, 500, mms.ErrTypeInternal, c.msg)
	}
	if r := do(t, h, "GET", "/models", "", "", nil); r.body != `{"models":[]}` {
		t.Errorf("failed loads are listed: %s", r.body)
	}
	// A failed load leaves the name free.
	mustLoad(t, h, "m", goldenDir(t, "reg_squarederror", "ubj", ModelFileName))

	for _, c := range []struct{ name, query, body, msg string }{
		{"no url", "", `{"model_name": "x"}`, "Parameter url is required."},
		{"no name", "", `{"url": "/x"}`, "Parameter model_name is required."},
		{"bad json", "", `{"url": 1}`, "Invalid request body: "},
	} {
		wantMMSError(t, c.name, do(t, h, "POST", "/models"+c.query, "application/json", "", []byte(c.body)), 400, mms.ErrTypeBadRequest, c.msg)
	}
	// MMS's query parameters work as well as the JSON body.
	dir := goldenDir(t, "binary_logistic", "json", ModelFileName)
	if r := do(t, h, "POST", "/models?model_name=q&url="+dir, "", "", nil); r.status != 200 {
		t.Errorf("load by query: %d %s", r.status, r.body)
	}
}

func TestMultiModelInvokeErrorsAsInvocations(t *testing.T) {
	m := goldenModel(t, "binary_logistic")
	single := NewHandlerWithConfig(m, Config{MaxContentLength: 100})
	multi := NewMultiModelHandler(Config{MaxContentLength: 100})
	mustLoad(t, multi, "m", goldenDir(t, "binary_logistic", "json", ModelFileName))
	for _, c := range []struct{ ct, accept, body string }{
		{"text/csv", "", ""},
		{"image/png", "", "1,2"},
		{"text/csv", "", "1,2,x"},
		{"text/csv", "", "1,2,3,4,5,6,7"},
		{"text/csv", "text/html", "1,2,3,4,5,6"},
		{"text/csv", "", strings.Repeat("1,", 60)},
		{"application/json", "application/jsonlines", `{"instances": [[1,2,3,4,5,6]]}`},
	} {
		want := do(t, single, "POST", "/invocations", c.ct, c.accept, []byte(c.body))
		got := do(t, multi, "POST", "/models/m/invoke", c.ct, c.accept, []byte(c.body))
		if got.status != want.status || got.body != want.body || got.header.Get("Content-Type") != want.header.Get("Content-Type") {
			t.Errorf("%s %q → %s: invoke %d %q %q, /invocations %d %q %q", c.ct, c.body, c.accept,
				got.status, got.header.Get("Content-Type"), got.body, want.status, want.header.Get("Content-Type"), want.body)
		}
	}
}

func TestMultiModelListPagination(t *testing.T) {
	h := NewMultiModelHandler(Config{})
	dir := goldenDir(t, "reg_squarederror", "ubj", ModelFileName)
	for _, n := range []string{"c", "a", "b"} {
		mustLoad(t, h, n, dir)
	}
	page := func(q string) mms.ModelList {
		r := do(t, h, "GET", "/models"+q, "", "", nil)
		var l mms.ModelList
		if r.status != 200 || json.Unmarshal([]byte(r.body), &l) != nil {
			t.Fatalf("list%s: %d %s", q, r.status, r.body)
		}
		return l
	}
	names := func(l mms.ModelList) (s []string) {
		for _, m := range l.Models {
			s = append(s, m.ModelName)
		}
		return s
	}
	if l := page("?limit=2"); !reflect.DeepEqual(names(l), []string{"a", "b"}) || l.NextPageToken != "2" {
		t.Errorf("page 1: %+v", l)
	}
	if l := page("?limit=2&next_page_token=2"); !reflect.DeepEqual(names(l), []string{"c"}) || l.NextPageToken != "" {
		t.Errorf("page 2: %+v", l)
	}
	if l := page("?limit=3"); len(l.Models) != 3 || l.NextPageToken != "" {
		t.Errorf("a full last page: %+v", l)
	}
	if l := page("?limit=1000&next_page_token=7"); len(l.Models) != 0 || l.NextPageToken != "" {
		t.Errorf("past the end: %+v", l)
	}
	wantMMSError(t, "bad limit", do(t, h, "GET", "/models?limit=many", "", "", nil), 400, mms.ErrTypeBadRequest, "Parameter limit")
}

func TestMultiModelConcurrentLoadsAndInvokes(t *testing.T) {
	srv := httptest.NewServer(NewMultiModelHandler(Config{}))
	defer srv.Close()
	c := loadCase(t, "trees100")
	body := encodeRows(c.matrix())[mimeCSV]
	dir := goldenDir(t, "trees100", "json", ModelFileName)
	post := func(path string, b []byte) (int, string, error) {
		resp, err := http.Post(srv.URL+path, mimeCSV, bytes.NewReader(b))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out), err
	}
	if status, out, err := post("/models", loadBody("first", dir)); err != nil || status != 200 {
		t.Fatalf("load: %d %s %v", status, out, err)
	}
	status, want, err := post("/models/first/invoke", body)
	if err != nil {
		t.Fatal(err)
	}
	wantGolden(t, "first invoke", c, mimeCSV, response{status: status, body: want})
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { // 4 names, each loaded twice at once
			status, _, err := post("/models", loadBody(fmt.Sprintf("m%d", i%4), dir))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
		wg.Go(func() {
			status, out, err := post("/models/first/invoke", body)
			if err != nil || status != 200 || out != want {
				t.Errorf("invoke during loads: %d %v, %d bytes differ from the first answer", status, err, len(out))
			}
		})
	}
	wg.Wait()
	if want := map[int]int{200: 4, 409: 4}; !reflect.DeepEqual(counts, want) {
		t.Errorf("load statuses %v, want %v", counts, want)
	}
	for i := range 4 {
		if status, out, err := post(fmt.Sprintf("/models/m%d/invoke", i), body); err != nil || status != 200 || out != want {
			t.Errorf("invoke m%d: %d %v, %d bytes", i, status, err, len(out))
		}
	}
}

func TestSingleModelModeHasNoModelsAPI(t *testing.T) {
	h := NewHandler(goldenModel(t, "reg_squarederror"))
	if r := do(t, h, "POST", "/models", "application/json", "", loadBody("m", t.TempDir())); r.status != 404 {
		t.Errorf("POST /models in single-model mode: %d", r.status)
	}
}

func TestMainProcessMultiModel(t *testing.T) {
	port := freePort(t)
	// No model in SM_MODEL_DIR: multi-model mode loads none at start.
	cmd, out := startMain(t, EnvMultiModel+"=true", EnvModelDir+"="+t.TempDir(), EnvBindToPort+"="+port)
	base := "http://127.0.0.1:" + port
	waitPing(t, base, out)
	resp, err := http.Post(base+"/models", "application/json", bytes.NewReader(loadBody("house", extractExample(t))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("load: %d\n%s", resp.StatusCode, out.String())
	}
	resp, err = http.Post(base+"/models/house/invoke", "text/csv", strings.NewReader(example.SampleCSV))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(filepath.Join("example", "expected.txt"))
	if resp.StatusCode != 200 || string(body) != string(want) {
		t.Fatalf("invoke: %d %q, want %q", resp.StatusCode, body, want)
	}
	stopMain(t, cmd, out)
	for _, s := range []string{"msg=serving", "mode=multi-model", `msg="loaded model" server=xgboost model=house`, "path=/models/house/invoke", "msg=stopped"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the log lacks %q:\n%s", s, out.String())
		}
	}
}
