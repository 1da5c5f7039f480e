package bench

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagehost/sagehost/modelserver/echo"
)

func TestNginxConfigRender(t *testing.T) {
	conf, err := NginxConfig{Prefix: "/tmp/b/nginx", Listen: "127.0.0.1:8081", Upstream: "127.0.0.1:9000"}.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"worker_processes 1;",
		"pid /tmp/b/nginx/nginx.pid;",
		"error_log /tmp/b/nginx/error.log warn;",
		"access_log off;",
		"server 127.0.0.1:9000;",
		"keepalive 128;",
		"listen 127.0.0.1:8081 backlog=4096;",
		"client_max_body_size 7m;",
		"client_body_buffer_size 7m;",
		"proxy_pass http://model;",
		"proxy_http_version 1.1;",
		`proxy_set_header Connection "";`,
		"proxy_request_buffering on;",
		"proxy_buffering on;",
		"proxy_max_temp_file_size 0;",
		"client_body_temp_path /tmp/b/nginx/client_body_temp;",
		"proxy_temp_path /tmp/b/nginx/proxy_temp;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Errorf("unbalanced braces:\n%s", conf)
	}

	conf, err = NginxConfig{Prefix: "/p", Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2", WorkerProcesses: 2, Keepalive: 32, Streaming: true}.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker_processes 2;", "keepalive 32;", "proxy_request_buffering off;", "proxy_buffering off;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("streaming nginx.conf lacks %q", want)
		}
	}

	for _, bad := range []NginxConfig{
		{Prefix: "relative", Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2"},
		{Prefix: "/has space", Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2"},
		{Prefix: "/p", Listen: "nope", Upstream: "127.0.0.1:2"},
		{Prefix: "/p", Listen: "127.0.0.1:1", Upstream: ""},
	} {
		if _, err := bad.Render(); err == nil {
			t.Errorf("rendered a bad config %+v", bad)
		}
	}
}

func TestFindNginxExplicit(t *testing.T) {
	if _, err := FindNginx(filepath.Join(t.TempDir(), "no-nginx")); err == nil {
		t.Fatal("a missing explicit nginx was accepted")
	}
	if !strings.Contains(ErrNoNginx.Error(), "apt-get install -y nginx") {
		t.Fatal("the missing-nginx error does not say how to install it")
	}
}

// TestNginxProxiesEcho runs the real nginx in front of the echo model and
// sends it a short signed load.
func TestNginxProxiesEcho(t *testing.T) {
	bin, err := FindNginx("")
	if err != nil {
		t.Skipf("skipping the live nginx test: %v", err)
	}
	model := httptest.NewServer(echo.Handler())
	defer model.Close()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "nginx")
	p, err := StartNginx(t.Context(), bin, NginxConfig{
		Prefix: prefix, Listen: "127.0.0.1:" + itoa(port), Upstream: strings.TrimPrefix(model.URL, "http://"),
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
		if !p.Exited() {
			t.Error("nginx still runs after Stop")
		}
	}()
	for _, size := range []int{KB, 2 * MB} {
		res, err := RunLoad(t.Context(), Target{Name: Nginx, URL: "http://127.0.0.1:" + itoa(port) + "/invocations"}, Load{
			Concurrency: 4, Payload: MakePayload(size), Duration: 300 * time.Millisecond, Credentials: NewAccount().Credentials(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.ErrorCount() > 0 || res.Requests() == 0 {
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("%s through nginx: %d ok, errors %s %v\nerror.log:\n%s", FormatSize(size), res.Requests(), res.ErrorSummary(), res.ErrorSamples, log)
		}
	}
	if v := NginxVersion(t.Context(), bin); !strings.Contains(v, "nginx/") {
		t.Errorf("nginx version %q", v)
	}
}
