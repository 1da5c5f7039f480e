package echo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEcho(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/invocations", "text/csv", strings.NewReader("1,2,3"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "1,2,3" || resp.Header.Get("Content-Type") != "text/csv" {
		t.Fatalf("%d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(srv.URL + "/ping")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ping: %v %v", resp, err)
	}
}
