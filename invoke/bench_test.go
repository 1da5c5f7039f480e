package invoke

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sagehost/sagehost"
)

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchRouter publishes an endpoint of two variants (one instance each,
// answering from a local HTTP server) among 100 other endpoints.
func benchRouter(b *testing.B) (*Router, *Request) {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/csv"}
		w.Write([]byte("0.5\n"))
	}))
	b.Cleanup(srv.Close)
	r := NewRouter(0, nil)
	b.Cleanup(r.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for i := 0; i < 100; i++ {
		r.Publish(&Table{Key: sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "other-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, Status: sagehost.StatusInService})
	}
	key := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "house-prices-xgboost-prod"}
	var vs []*Variant
	for _, name := range []string{"a", "b"} {
		in := NewInstance("i-"+name, name, addr)
		in.SetHealthy(true)
		vs = append(vs, &Variant{Name: name, Weight: 1, Instances: []*Instance{in}})
	}
	r.Publish(&Table{Key: key, Status: sagehost.StatusInService, Variants: vs})
	req := &Request{Caller: sagehost.Caller{Account: key.Account, Region: key.Region}, EndpointName: key.Name, Body: []byte("1,2,3"), ContentType: "text/csv"}
	return r, req
}

// BenchmarkRoute measures resolving a call's table and variant.
func BenchmarkRoute(b *testing.B) {
	r, req := benchRouter(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.route(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvoke measures a whole InvokeEndpoint call to a local
// container (most of it is the HTTP exchange).
func BenchmarkInvoke(b *testing.B) {
	r, req := benchRouter(b)
	httpReq := httptest.NewRequest(http.MethodPost, "/endpoints/ep/invocations", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		q := *req
		if err := r.Invoke(w, httpReq, &q); err != nil {
			b.Fatal(err)
		}
	}
}
