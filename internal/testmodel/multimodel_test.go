package testmodel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagehost/sagehost/internal/testutil/syncbuf"
	"github.com/sagehost/sagehost/modelserver/mms"
)

// call sends a request and returns the status and body.
func call(t *testing.T, method, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(t, resp.Body)
}

// modelDir makes a model directory holding files.
func modelDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadBody(name, url string) string {
	b, _ := json.Marshal(mms.LoadRequest{ModelName: name, URL: url})
	return string(b)
}

func loadModel(t *testing.T, base, name, url string) (int, string) {
	t.Helper()
	return call(t, "POST", base+"/models", loadBody(name, url), map[string]string{"Content-Type": "application/json"})
}

func mustLoad(t *testing.T, base, name, url string) {
	t.Helper()
	if status, body := loadModel(t, base, name, url); status != 200 {
		t.Fatalf("load %s: %d %s", name, status, body)
	}
}

// wantError checks an MMS error answer.
func wantError(t *testing.T, what string, status int, body string, wantStatus int, wantType, wantMessage string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d (%s)", what, status, wantStatus, body)
		return
	}
	var e mms.ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Errorf("%s: body %q is not JSON: %v", what, body, err)
		return
	}
	if e.Code != wantStatus || e.Type != wantType || (wantMessage != "" && e.Message != wantMessage) {
		t.Errorf("%s: error %+v, want code %d type %s message %q", what, e, wantStatus, wantType, wantMessage)
	}
}

func mmServer(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.MultiModel = true
	return newServer(t, cfg).URL
}

func listModels(t *testing.T, base, query string) (mms.ModelList, map[string]json.RawMessage) {
	t.Helper()
	status, body := call(t, "GET", base+"/models"+query, "", nil)
	if status != 200 {
		t.Fatalf("list%s: %d %s", query, status, body)
	}
	var l mms.ModelList
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(body), &raw)
	return l, raw
}

func TestMultiModelLoadDescribeListUnload(t *testing.T) {
	base := mmServer(t, Config{})
	dirA, dirB := modelDir(t, nil), modelDir(t, nil)

	status, body := loadModel(t, base, "b", dirB)
	if status != 200 || strings.TrimSpace(body) != `{"status":"Model \"b\" registered"}` {
		t.Fatalf("load: %d %s", status, body)
	}
	mustLoad(t, base, "a", dirA)

	status, body = call(t, "GET", base+"/models/a", "", nil)
	var d mms.ModelDescription
	if status != 200 || json.Unmarshal([]byte(body), &d) != nil || d != (mms.ModelDescription{ModelName: "a", ModelURL: dirA}) {
		t.Errorf("describe a: %d %s", status, body)
	}
	status, body = call(t, "GET", base+"/models/zzz", "", nil)
	wantError(t, "describe unknown", status, body, 404, mms.ErrTypeModelNotFound, "Model not found: zzz")

	l, _ := listModels(t, base, "")
	want := []mms.ModelDescription{{ModelName: "a", ModelURL: dirA}, {ModelName: "b", ModelURL: dirB}}
	if !reflect.DeepEqual(l.Models, want) || l.NextPageToken != "" {
		t.Errorf("list = %+v, want %+v", l, want)
	}

	status, body = call(t, "DELETE", base+"/models/a", "", nil)
	if status != 200 || strings.TrimSpace(body) != `{"status":"Model \"a\" unregistered"}` {
		t.Errorf("unload: %d %s", status, body)
	}
	status, body = call(t, "DELETE", base+"/models/a", "", nil)
	wantError(t, "unload twice", status, body, 404, mms.ErrTypeModelNotFound, "Model not found: a")
	status, body = call(t, "GET", base+"/models/a", "", nil)
	wantError(t, "describe unloaded", status, body, 404, mms.ErrTypeModelNotFound, "")
	if l, _ := listModels(t, base, ""); !reflect.DeepEqual(l.Models, []mms.ModelDescription{{ModelName: "b", ModelURL: dirB}}) {
		t.Errorf("list after unload = %+v", l)
	}
	// Loaded again after an unload.
	mustLoad(t, base, "a", dirA)
}

func TestMultiModelLoadRequestForms(t *testing.T) {
	base := mmServer(t, Config{})
	dir := modelDir(t, nil)
	// MMS's query parameters work as well as the JSON body.
	if status, body := call(t, "POST", base+"/models?model_name=q&url="+dir, "", nil); status != 200 {
		t.Errorf("load by query: %d %s", status, body)
	}
	for _, c := range []struct{ name, query, body, msg string }{
		{"no url", "", `{"model_name": "x"}`, "Parameter url is required."},
		{"no name", "", `{"url": "` + dir + `"}`, "Parameter model_name is required."},
		{"empty", "", "", "Parameter url is required."},
		{"bad json", "", `{"model_name": `, ""},
	} {
		status, body := call(t, "POST", base+"/models"+c.query, c.body, nil)
		wantError(t, c.name, status, body, 400, mms.ErrTypeBadRequest, c.msg)
	}
}

func TestMultiModelLoadConflict(t *testing.T) {
	const delay = 500 * time.Millisecond
	base := mmServer(t, Config{LoadDelay: delay})
	dir := modelDir(t, nil)
	// Two loads at once: whichever comes second conflicts with the load in
	// progress, at once rather than after the delay.
	type result struct {
		status int
		body   string
		took   time.Duration
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			start := time.Now()
			status, body := loadModel(t, base, "m", dir)
			results <- result{status, body, time.Since(start)}
		}()
	}
	a, b := <-results, <-results
	if a.status == 200 {
		a, b = b, a
	}
	wantError(t, "load while loading", a.status, a.body, 409, mms.ErrTypeConflict, "Model m is already registered.")
	if a.took >= delay || b.status != 200 || b.took < delay {
		t.Errorf("conflict after %s; load %d after %s", a.took, b.status, b.took)
	}
	status, body := loadModel(t, base, "m", dir)
	wantError(t, "load twice", status, body, 409, mms.ErrTypeConflict, "Model m is already registered.")
}

func TestMultiModelMaxModels(t *testing.T) {
	base := mmServer(t, Config{MaxModels: 2})
	dir := modelDir(t, nil)
	mustLoad(t, base, "a", dir)
	mustLoad(t, base, "b", dir)
	status, body := loadModel(t, base, "c", dir)
	wantError(t, "third load", status, body, 507, mms.ErrTypeInsufficientStorage, "")
	if !strings.Contains(body, EnvMaxModels) {
		t.Errorf("507 message does not name %s: %s", EnvMaxModels, body)
	}
	// 409 comes before 507: a loaded model is not "out of memory".
	status, body = loadModel(t, base, "a", dir)
	wantError(t, "reload", status, body, 409, mms.ErrTypeConflict, "")
	if status, body := call(t, "DELETE", base+"/models/a", "", nil); status != 200 {
		t.Fatalf("unload: %d %s", status, body)
	}
	mustLoad(t, base, "c", dir)
	if l, _ := listModels(t, base, ""); len(l.Models) != 2 || l.Models[0].ModelName != "b" || l.Models[1].ModelName != "c" {
		t.Errorf("list = %+v", l)
	}
}

func TestMultiModelLoadFailure(t *testing.T) {
	base := mmServer(t, Config{})
	dir := modelDir(t, map[string]string{FailLoadFile: "weights are corrupt\n"})
	status, body := loadModel(t, base, "bad", dir)
	wantError(t, "FAIL_LOAD", status, body, 500, mms.ErrTypeInternal, "weights are corrupt")
	status, body = call(t, "GET", base+"/models/bad", "", nil)
	wantError(t, "describe failed model", status, body, 404, mms.ErrTypeModelNotFound, "")
	status, body = call(t, "POST", base+"/models/bad/invoke", "{}", nil)
	wantError(t, "invoke failed model", status, body, 404, mms.ErrTypeModelNotFound, "")

	// The name is free again after a failed load.
	os.Remove(filepath.Join(dir, FailLoadFile))
	mustLoad(t, base, "bad", dir)

	status, body = loadModel(t, base, "missing", filepath.Join(dir, "nope"))
	wantError(t, "missing dir", status, body, 500, mms.ErrTypeInternal, "")
	if !strings.Contains(body, "no such file") {
		t.Errorf("missing dir message: %s", body)
	}
	file := filepath.Join(modelDir(t, map[string]string{"f": "x"}), "f")
	status, body = loadModel(t, base, "file", file)
	wantError(t, "file url", status, body, 500, mms.ErrTypeInternal, "the model url "+file+" is not a directory")
	if l, _ := listModels(t, base, ""); len(l.Models) != 1 {
		t.Errorf("failed loads are listed: %+v", l)
	}
}

func TestMultiModelListPagination(t *testing.T) {
	base := mmServer(t, Config{})
	dir := modelDir(t, nil)
	for _, n := range []string{"e", "c", "a", "d", "b"} {
		mustLoad(t, base, n, dir)
	}
	names := func(l mms.ModelList) string {
		var s []string
		for _, m := range l.Models {
			s = append(s, m.ModelName)
		}
		return strings.Join(s, ",")
	}
	var got []string
	token := ""
	for page := 0; page < 5; page++ {
		q := "?limit=2"
		if token != "" {
			q += "&next_page_token=" + token
		}
		l, raw := listModels(t, base, q)
		got = append(got, names(l)+"|"+l.NextPageToken)
		if _, ok := raw["nextPageToken"]; !ok && l.NextPageToken == "" {
			break
		}
		token = l.NextPageToken
	}
	if want := []string{"a,b|2", "c,d|4", "e|"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pages %q, want %q", got, want)
	}
	for _, q := range []string{"", "?limit=0", "?limit=500", "?limit=-1"} {
		if l, _ := listModels(t, base, q); names(l) != "a,b,c,d,e" || l.NextPageToken != "" {
			t.Errorf("list%s = %+v", q, l)
		}
	}
	if l, raw := listModels(t, base, "?next_page_token=9"); string(raw["models"]) != "[]" || l.NextPageToken != "" {
		t.Errorf("past the end: %+v %s", l, raw["models"])
	}
	if l, _ := listModels(t, base, "?limit=5"); l.NextPageToken != "" {
		t.Errorf("an exactly full page has a token: %+v", l)
	}
	status, body := call(t, "GET", base+"/models?limit=x", "", nil)
	wantError(t, "bad limit", status, body, 400, mms.ErrTypeBadRequest, "")
	status, body = call(t, "GET", base+"/models?next_page_token=x", "", nil)
	wantError(t, "bad token", status, body, 400, mms.ErrTypeBadRequest, "")

	empty := mmServer(t, Config{})
	if _, raw := listModels(t, empty, ""); string(raw["models"]) != "[]" {
		t.Errorf("empty list: %s", raw["models"])
	}
}

func invokeModel(t *testing.T, base, name, ct, body string, hdr map[string]string) (*http.Response, Report) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/models/"+name+"/invoke", strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := readAll(t, resp.Body)
	var rep Report
	if resp.StatusCode == 200 && json.Valid([]byte(b)) { // a report, not a knob's answer
		if err := json.Unmarshal([]byte(b), &rep); err != nil {
			t.Fatalf("invoke %s: %v in %q", name, err, b)
		}
	}
	return resp, rep
}

func TestMultiModelInvokeReport(t *testing.T) {
	log := &syncbuf.Buffer{}
	base := mmServer(t, Config{Name: "mme", Container: "c2", Log: log})
	one := modelDir(t, map[string]string{"weights": "one"})
	two := modelDir(t, map[string]string{"weights": "two", "big": strings.Repeat("z", maxReportedFile)})
	mustLoad(t, base, "m1", one)
	mustLoad(t, base, "m2", two)

	before := time.Now()
	resp, rep := invokeModel(t, base, "m2", "text/csv", "1,2", map[string]string{
		"Accept": "text/csv", HeaderCustomAttributes: "k=v", HeaderTargetModel: "models/two.tar.gz"})
	if resp.StatusCode != 200 {
		t.Fatalf("invoke: %d", resp.StatusCode)
	}
	if got := resp.Header.Get(HeaderCustomAttributes); got != "echo:k=v" || resp.Header.Get("Content-Type") != "text/csv" {
		t.Errorf("headers: custom attributes %q content type %q", got, resp.Header.Get("Content-Type"))
	}
	if rep.Name != "mme" || rep.Container != "c2" || rep.Body != "1,2" || rep.ContentType != "text/csv" || rep.Accept != "text/csv" ||
		rep.ModelName != "m2" || rep.ModelURL != two || rep.TargetModel != "models/two.tar.gz" ||
		rep.Loads != 2 || rep.Unloads != 0 || rep.ModelInvocations != 1 {
		t.Errorf("report = %+v", rep)
	}
	if rep.ModelLoadedAt == nil || rep.ModelLoadedAt.After(before) {
		t.Errorf("model_loaded_at = %v, want before %v", rep.ModelLoadedAt, before)
	}
	if !reflect.DeepEqual(rep.LoadedModels, []string{"m1", "m2"}) {
		t.Errorf("loaded_models = %v", rep.LoadedModels)
	}
	if !reflect.DeepEqual(rep.ModelFiles, []string{"big", "weights"}) || !reflect.DeepEqual(rep.ModelFileContents, map[string]string{"weights": "two"}) {
		t.Errorf("model files %v %v", rep.ModelFiles, rep.ModelFileContents)
	}

	_, rep = invokeModel(t, base, "m1", "application/json", `{"x": 1}`, nil)
	if rep.ModelName != "m1" || rep.ModelFileContents["weights"] != "one" || rep.ModelInvocations != 1 || rep.TargetModel != "" {
		t.Errorf("m1 report = %+v", rep)
	}
	_, rep = invokeModel(t, base, "m2", "application/json", `{}`, nil)
	if rep.ModelInvocations != 2 {
		t.Errorf("second invocation of m2: model_invocations %d", rep.ModelInvocations)
	}
	call(t, "DELETE", base+"/models/m1", "", nil)
	_, rep = invokeModel(t, base, "m2", "application/json", `{}`, nil)
	if rep.Loads != 2 || rep.Unloads != 1 || !reflect.DeepEqual(rep.LoadedModels, []string{"m2"}) {
		t.Errorf("after unload: loads %d unloads %d loaded %v", rep.Loads, rep.Unloads, rep.LoadedModels)
	}
	for _, want := range []string{`loaded "m1" from ` + one, `invoke "m2" (target model "models/two.tar.gz", invocation 1)`,
		`unloaded "m1" (1 loaded)`, "POST /models/m2/invoke 200"} {
		waitLog(t, log, want)
	}
}

func waitLog(t *testing.T, log *syncbuf.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestMultiModelInvokeKnobs(t *testing.T) {
	base := mmServer(t, Config{})
	mustLoad(t, base, "m", modelDir(t, nil))
	status, body := call(t, "POST", base+"/models/m/invoke", `{"testmodel":{"status":503,"message":"busy"}}`,
		map[string]string{"Content-Type": "application/json"})
	if status != 503 || body != "busy" {
		t.Errorf("status knob: %d %q", status, body)
	}
	start := time.Now()
	resp, rep := invokeModel(t, base, "m", "application/json", `{"testmodel":{"sleep":"50ms"}}`, nil)
	if resp.StatusCode != 200 || time.Since(start) < 50*time.Millisecond || rep.ModelName != "m" {
		t.Errorf("sleep knob: %d after %s", resp.StatusCode, time.Since(start))
	}
	resp, _ = invokeModel(t, base, "m", "application/json", `{"testmodel":{"bytes":10}}`, nil)
	if resp.StatusCode != 200 || resp.ContentLength != 10 {
		t.Errorf("bytes knob: %d %d bytes", resp.StatusCode, resp.ContentLength)
	}
}

func TestMultiModelInvokeNotLoaded(t *testing.T) {
	base := mmServer(t, Config{})
	status, body := call(t, "POST", base+"/models/ghost/invoke", "1", map[string]string{"Content-Type": "text/csv"})
	wantError(t, "invoke unknown", status, body, 404, mms.ErrTypeModelNotFound, "Model not found: ghost")
	mustLoad(t, base, "m", modelDir(t, nil))
	call(t, "DELETE", base+"/models/m", "", nil)
	status, body = call(t, "POST", base+"/models/m/invoke", "1", nil)
	wantError(t, "invoke unloaded", status, body, 404, mms.ErrTypeModelNotFound, "Model not found: m")
}

func TestMultiModelLoadDelay(t *testing.T) {
	base := mmServer(t, Config{LoadDelay: 300 * time.Millisecond})
	dir := modelDir(t, nil)
	type result struct {
		status int
		took   time.Duration
	}
	done := make(chan result)
	go func() {
		start := time.Now()
		status, _ := loadModel(t, base, "slow", dir)
		done <- result{status, time.Since(start)}
	}()
	time.Sleep(100 * time.Millisecond)
	// Not loaded until the load answers.
	status, body := call(t, "POST", base+"/models/slow/invoke", "{}", nil)
	wantError(t, "invoke while loading", status, body, 404, mms.ErrTypeModelNotFound, "")
	if l, _ := listModels(t, base, ""); len(l.Models) != 0 {
		t.Errorf("listed while loading: %+v", l)
	}
	if r := <-done; r.status != 200 || r.took < 300*time.Millisecond {
		t.Errorf("load: %d after %s, want 200 after at least 300ms", r.status, r.took)
	}
	if resp, _ := invokeModel(t, base, "slow", "application/json", "{}", nil); resp.StatusCode != 200 {
		t.Errorf("invoke after load: %d", resp.StatusCode)
	}
}

func TestMultiModelConcurrentLoads(t *testing.T) {
	base := mmServer(t, Config{MaxModels: 5})
	dir := modelDir(t, nil)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Names repeat: 6 distinct models, each loaded twice at once.
			status, _ := loadModel(t, base, fmt.Sprintf("m%d", i%6), dir)
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The first 5 names reserved load; their twins get 409; both loads of
	// the 6th name find no room.
	if want := map[int]int{200: 5, 409: 5, 507: 2}; !reflect.DeepEqual(counts, want) {
		t.Errorf("statuses %v", counts)
	}
	if l, _ := listModels(t, base, ""); len(l.Models) != 5 {
		t.Errorf("%d models listed, want 5", len(l.Models))
	}
}

func TestMultiModelInvocationsStillServed(t *testing.T) {
	dir := modelDir(t, map[string]string{"w": "single"})
	base := mmServer(t, Config{ModelDir: dir})
	resp := post(t, base, "application/json", "", "{}", nil)
	var rep Report
	json.NewDecoder(resp.Body).Decode(&rep)
	if resp.StatusCode != 200 || rep.ModelFileContents["w"] != "single" || rep.ModelName != "" {
		t.Errorf("/invocations in multi-model mode: %d %+v", resp.StatusCode, rep)
	}
}

func TestSingleModelModeUnchanged(t *testing.T) {
	srv := newServer(t, Config{Name: "one", ModelDir: modelDir(t, map[string]string{"w": "x"})})
	// No multi-model API.
	for _, c := range []struct{ method, path string }{{"POST", "/models"}, {"GET", "/models"}, {"POST", "/models/m/invoke"}} {
		if status, _ := call(t, c.method, srv.URL+c.path, loadBody("m", t.TempDir()), nil); status != 404 {
			t.Errorf("%s %s = %d, want 404", c.method, c.path, status)
		}
	}
	resp := post(t, srv.URL, "application/json", "", "{}", nil)
	var raw map[string]json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	for _, k := range []string{"model_name", "model_url", "target_model", "loaded_models", "loads", "unloads", "container", "model_invocations", "model_loaded_at"} {
		if _, ok := raw[k]; ok {
			t.Errorf("single-model report has %q", k)
		}
	}
	for _, k := range []string{"name", "pid", "hostname", "port", "cwd", "body", "content_type", "accept", "headers", "env", "env_names", "model_files", "model_file_contents"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("single-model report lacks %q", k)
		}
	}
	// TESTMODEL_CONTAINER shows in every mode.
	srv = newServer(t, Config{Container: "main"})
	resp = post(t, srv.URL, "application/json", "", "{}", nil)
	var rep Report
	json.NewDecoder(resp.Body).Decode(&rep)
	if rep.Container != "main" {
		t.Errorf("container = %q", rep.Container)
	}
}

func TestConfigFromEnvMultiModel(t *testing.T) {
	t.Setenv(EnvMultiModel, "TRUE")
	t.Setenv(EnvMaxModels, "3")
	t.Setenv(EnvLoadDelay, "2s")
	t.Setenv(EnvContainer, "c1")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.MultiModel || cfg.MaxModels != 3 || cfg.LoadDelay != 2*time.Second || cfg.Container != "c1" {
		t.Errorf("config %+v", cfg)
	}
	t.Setenv(EnvMultiModel, "false")
	if cfg, _ := ConfigFromEnv(); cfg.MultiModel {
		t.Error("SAGEMAKER_MULTI_MODEL=false is multi-model")
	}
	t.Setenv(EnvMaxModels, "-1")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), EnvMaxModels) {
		t.Errorf("bad max models: %v", err)
	}
	t.Setenv(EnvMaxModels, "")
	t.Setenv(EnvLoadDelay, "soon")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), EnvLoadDelay) {
		t.Errorf("bad load delay: %v", err)
	}
}
