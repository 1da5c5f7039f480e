package testmodel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sagehost/sagehost/internal/testutil/syncbuf"
)

func newServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(cfg))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, contentType, accept, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/invocations", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPing(t *testing.T) {
	srv := newServer(t, Config{})
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(m, srv.URL+"/ping", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /ping = %d, want 200", m, resp.StatusCode)
		}
	}
}

func TestPingDelay(t *testing.T) {
	srv := newServer(t, Config{PingDelay: time.Hour})
	resp, err := http.Get(srv.URL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ping during delay = %d, want 503", resp.StatusCode)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "model.txt"), []byte("weights"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "big.bin"), bytes.Repeat([]byte("y"), 5000), 0o644)
	t.Setenv("TESTMODEL_X", "x")
	log := &syncbuf.Buffer{}
	srv := newServer(t, Config{Name: "m1", Port: 1234, ModelDir: dir, Log: log})

	resp := post(t, srv.URL, "text/csv", "text/csv", "1,2,3", map[string]string{HeaderCustomAttributes: "a=b", "X-Other": "o"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/csv" {
		t.Errorf("Content-Type = %q, want text/csv (from Accept)", got)
	}
	if got := resp.Header.Get(HeaderCustomAttributes); got != "echo:a=b" {
		t.Errorf("custom attributes = %q", got)
	}
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Name != "m1" || rep.Port != 1234 || rep.Body != "1,2,3" || rep.ContentType != "text/csv" || rep.Accept != "text/csv" || rep.PID != os.Getpid() {
		t.Errorf("report = %+v", rep)
	}
	if got := rep.Headers["X-Other"]; !reflect.DeepEqual(got, []string{"o"}) {
		t.Errorf("headers[X-Other] = %v", got)
	}
	if rep.Env["TESTMODEL_X"] != "x" {
		t.Errorf("env = %v", rep.Env)
	}
	if want := []string{"model.txt", "sub/big.bin"}; !reflect.DeepEqual(rep.ModelFiles, want) {
		t.Errorf("model_files = %v, want %v", rep.ModelFiles, want)
	}
	if want := map[string]string{"model.txt": "weights"}; !reflect.DeepEqual(rep.ModelFileContents, want) {
		t.Errorf("model_file_contents = %v, want %v", rep.ModelFileContents, want)
	}
	// The line is written once the handler returns, maybe after the client
	// has its answer.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "POST /invocations 200"); {
		if time.Now().After(deadline) {
			t.Fatalf("log = %q", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAnswerType(t *testing.T) {
	for _, tc := range []struct{ knob, accept, want string }{
		{"", "", "application/json"},
		{"", "application/json", "application/json"},
		{"", "text/plain; charset=utf-8", "text/plain; charset=utf-8"},
		{"", "image/png", "application/json"},
		{"", "*/*", "application/json"},
		{"", "text/csv, application/json", "application/json"},
		{"text/csv", "application/json", "text/csv"},
	} {
		if got := answerType(tc.knob, tc.accept); got != tc.want {
			t.Errorf("answerType(%q, %q) = %q, want %q", tc.knob, tc.accept, got, tc.want)
		}
	}
}

func TestKnobs(t *testing.T) {
	srv := newServer(t, Config{Name: "k"})

	t.Run("status and message", func(t *testing.T) {
		resp := post(t, srv.URL, "application/json", "", `{"testmodel":{"status":500,"message":"boom"}}`, nil)
		if resp.StatusCode != 500 || readAll(t, resp.Body) != "boom" {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
	t.Run("status alone", func(t *testing.T) {
		resp := post(t, srv.URL, "application/json", "", `{"testmodel":{"status":404}}`, nil)
		var rep Report
		json.NewDecoder(resp.Body).Decode(&rep)
		if resp.StatusCode != 404 || rep.Name != "k" {
			t.Errorf("got %d %+v", resp.StatusCode, rep)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		resp := post(t, srv.URL, "application/json; charset=utf-8", "", `{"testmodel":{"bytes":100}}`, nil)
		body := readAll(t, resp.Body)
		if body != strings.Repeat("x", 100) || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("got %q %q", resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("content type", func(t *testing.T) {
		resp := post(t, srv.URL, "application/json", "application/json", `{"testmodel":{"content_type":"text/csv"}}`, nil)
		if got := resp.Header.Get("Content-Type"); got != "text/csv" {
			t.Errorf("Content-Type = %q", got)
		}
	})
	t.Run("sleep", func(t *testing.T) {
		start := time.Now()
		resp := post(t, srv.URL, "application/json", "", `{"testmodel":{"sleep":"50ms"}}`, nil)
		if resp.StatusCode != 200 || time.Since(start) < 50*time.Millisecond {
			t.Errorf("status %d after %s", resp.StatusCode, time.Since(start))
		}
	})
	t.Run("stream", func(t *testing.T) {
		resp := post(t, srv.URL, "application/json", "", `{"testmodel":{"stream_chunks":3,"chunk_delay":"1ms"}}`, nil)
		sc := bufio.NewScanner(resp.Body)
		var n int
		for sc.Scan() {
			var c Chunk
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil || c.Chunk != n || c.Of != 3 || c.Name != "k" {
				t.Errorf("chunk %d = %q (%v)", n, sc.Text(), err)
			}
			n++
		}
		if n != 3 {
			t.Errorf("got %d chunks, want 3", n)
		}
	})
	t.Run("not for us", func(t *testing.T) {
		// Knobs count only in a JSON body; other payloads are reported.
		body := `{"testmodel":{"status":500}}`
		resp := post(t, srv.URL, "text/plain", "", body, nil)
		var rep Report
		json.NewDecoder(resp.Body).Decode(&rep)
		if resp.StatusCode != 200 || rep.Body != body {
			t.Errorf("got %d %+v", resp.StatusCode, rep)
		}
		resp = post(t, srv.URL, "application/json", "", `{"instances":[1,2]}`, nil)
		if resp.StatusCode != 200 {
			t.Errorf("plain JSON payload: %d", resp.StatusCode)
		}
	})
	t.Run("bad knobs", func(t *testing.T) {
		resp := post(t, srv.URL, "application/json", "", `{"testmodel":{"status":"x"}}`, nil)
		if resp.StatusCode != 400 {
			t.Errorf("got %d, want 400", resp.StatusCode)
		}
	})
}

func TestNotFound(t *testing.T) {
	srv := newServer(t, Config{})
	resp, err := http.Get(srv.URL + "/invocations")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /invocations = %d", resp.StatusCode)
	}
}
