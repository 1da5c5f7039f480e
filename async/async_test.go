package async

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/internal/s3client"
	"github.com/sagehost/sagehost/internal/testutil/minio"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/metrics"
	"github.com/sagehost/sagehost/store/sqlite"
)

var key = sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "ep"}

// fixture is a Manager on a real SQLite store and a real MinIO, in front of
// a Router that holds one asynchronous endpoint.
type fixture struct {
	m      *Manager
	router *invoke.Router
	store  *sqlite.DB
	s3     *s3.Client
	met    *metrics.Metrics
	now    atomic.Pointer[time.Time]
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mc := minio.Start(t)
	f := &fixture{router: invoke.NewRouter(0, nil), s3: mc.S3Client(t), met: metrics.New()}
	if _, err := f.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("queue")}); err != nil {
		t.Fatal(err)
	}
	var err error
	f.store, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.now.Store(&now)
	f.m = New(Config{Store: f.store, Router: f.router, Metrics: f.met, Poll: 20 * time.Millisecond,
		S3:  s3client.Config{EndpointURL: mc.Endpoint, Region: mc.Region, Credentials: mc.Credentials()},
		Now: func() time.Time { return *f.now.Load() }})
	if err := f.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.m.Close(context.Background())
		f.router.Close()
		f.store.Close()
	})
	return f
}

// publish installs the endpoint's table: its instances at addrs, healthy or
// not, taking perInstance requests each.
func (f *fixture) publish(addrs []string, healthy bool, perInstance int) {
	cfg := &sagehost.AsyncInferenceConfig{
		OutputConfig: sagehost.AsyncOutputConfig{S3OutputPath: "s3://queue/out"},
		ClientConfig: &sagehost.AsyncClientConfig{MaxConcurrentInvocationsPerInstance: perInstance},
	}
	v := &invoke.Variant{Name: "v", Weight: 1}
	for i, a := range addrs {
		in := invoke.NewInstance(string(rune('a'+i)), "v", a)
		in.SetHealthy(healthy)
		v.Instances = append(v.Instances, in)
	}
	f.router.Publish(&invoke.Table{Key: key, Status: sagehost.StatusInService, Variants: []*invoke.Variant{v}, Async: cfg})
}

func (f *fixture) put(t *testing.T, name, body string) string {
	t.Helper()
	if _, err := f.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("queue"), Key: aws.String(name), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	return "s3://queue/" + name
}

// object waits for an object and returns its body.
func (f *fixture) object(t *testing.T, loc string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := f.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("queue"), Key: aws.String(strings.TrimPrefix(loc, "s3://queue/"))})
		if err == nil {
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no object %s: %v", loc, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) submit(t *testing.T, input string, ttl time.Duration) Accepted {
	t.Helper()
	acc, err := f.m.Submit(context.Background(), Request{Caller: sagehost.Caller{Account: key.Account, Region: key.Region},
		EndpointName: key.Name, InputLocation: input, RequestTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// A request waits while no instance is healthy, and fails as expired once
// its TTL has passed; its record leaves the store.
func TestRequestExpiresWhileNoInstanceTakesIt(t *testing.T) {
	f := newFixture(t)
	f.publish([]string{"127.0.0.1:1"}, false, 1)
	acc := f.submit(t, f.put(t, "in", "x"), time.Minute)
	recs, err := f.store.ListAll(context.Background(), sagehost.KindAsyncInvocation)
	if err != nil || len(recs) != 1 {
		t.Fatalf("queued records: %d, %v", len(recs), err)
	}
	later := f.now.Load().Add(time.Minute + time.Second)
	f.now.Store(&later)
	if got := f.object(t, acc.FailureLocation); !strings.Contains(got, "RequestTTLSeconds (60)") {
		t.Fatalf("failure %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, _ = f.store.ListAll(context.Background(), sagehost.KindAsyncInvocation)
		if len(recs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left after the request expired", len(recs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if acc.FailureLocation != "s3://queue/out/"+acc.InferenceID+"-error.out" {
		t.Fatalf("failure location %s (no S3FailurePath: next to the outputs)", acc.FailureLocation)
	}
}

// At most MaxConcurrentInvocationsPerInstance requests per healthy
// instance reach the containers at once; the rest wait their turn.
func TestConcurrencyPerInstance(t *testing.T) {
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		inflight.Add(-1)
		io.Copy(w, r.Body)
	}))
	defer model.Close()
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	defer open() // (before model.Close, should the test fail while requests wait)
	f := newFixture(t)
	addr := strings.TrimPrefix(model.URL, "http://")
	f.publish([]string{addr, addr}, true, 2) // two instances, two each
	var accs []Accepted
	for i := range 10 {
		accs = append(accs, f.submit(t, f.put(t, "in"+string(rune('0'+i)), "body"+string(rune('0'+i))), 0))
	}
	deadline := time.Now().Add(10 * time.Second)
	for inflight.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reached the model, want 4", inflight.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	open()
	for i, acc := range accs {
		if got := f.object(t, acc.OutputLocation); got != "body"+string(rune('0'+i)) {
			t.Fatalf("output %d: %q", i, got)
		}
	}
	if p := peak.Load(); p != 4 {
		t.Fatalf("at most %d requests ran at once, want 4 (2 instances x 2)", p)
	}
}

// A request waiting on an endpoint that is then deleted fails at once, not
// at its TTL.
func TestRequestOfDeletedEndpointFails(t *testing.T) {
	f := newFixture(t)
	f.publish([]string{"127.0.0.1:1"}, false, 1)
	acc := f.submit(t, f.put(t, "in", "x"), 0)
	f.router.Remove(key) // (and the store has no endpoint record)
	if got := f.object(t, acc.FailureLocation); !strings.Contains(got, "Endpoint ep was deleted") {
		t.Fatalf("failure %q", got)
	}
}
