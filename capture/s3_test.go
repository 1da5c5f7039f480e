package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sagehost/sagehost/internal/testutil/minio"
)

var testCreds = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")

// TestS3MinIO writes to a real MinIO and reads the objects back.
func TestS3MinIO(t *testing.T) {
	srv := minio.Start(t)
	cl := srv.S3Client(t)
	ctx := context.Background()
	for _, b := range []string{"capture", "bare"} {
		if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
	}
	now := time.Date(2024, 3, 11, 12, 32, 18, 648_000_000, time.UTC)
	w, c := start(t, Config{
		S3EndpointURL: srv.Endpoint, S3Region: srv.Region, S3Credentials: srv.Credentials(),
		Now: func() time.Time { return now },
	}, testOptions{})
	binary := []byte{0, 1, 2, 0xff}
	recs := []Record{
		csvRecord("s3://capture/dc/prefix/", "ep", "AllTraffic", time.Time{}, "1,2"),
		csvRecord("s3://capture/dc/prefix/", "ep", "AllTraffic", now.Add(time.Second), "3,4"),
		csvRecord("s3://capture/dc/prefix/", "ep", "AllTraffic", now.Add(time.Hour), "5,6"),
		{Destination: "s3://bare", Endpoint: "ep2", Variant: "v", Time: now, InferenceID: "abc",
			Input: &Payload{ContentType: "application/octet-stream", Data: binary, Encoding: EncodingBase64}},
	}
	for _, r := range recs {
		if !w.Capture(r) {
			t.Fatal("Capture = false")
		}
	}
	closeWriter(t, w)
	if written, dropped, files := c.totals(); written != 4 || dropped != 0 || files != 3 {
		t.Errorf("written %d, dropped %d, files %d; want 4, 0, 3", written, dropped, files)
	}

	got := map[string][]string{} // key without uuid -> inputs
	for _, bucket := range []string{"capture", "bare"} {
		list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Contents {
			key := aws.ToString(o.Key)
			m := fileNameRE.FindStringSubmatch(path.Base(key))
			if m == nil {
				t.Errorf("object name %q", key)
				continue
			}
			obj, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			lines, err := parseLines(data)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			k := bucket + "/" + strings.TrimSuffix(key, m[4]+".jsonl")
			for _, rec := range lines {
				in := rec["captureData"].(map[string]any)["endpointInput"].(map[string]any)
				got[k] = append(got[k], fmt.Sprint(in["data"], " ", in["encoding"], " ", rec["eventMetadata"].(map[string]any)["inferenceId"]))
			}
		}
	}
	want := map[string][]string{
		"capture/dc/prefix/ep/AllTraffic/2024/03/11/12/32-18-648-": {"1,2 CSV <nil>", "3,4 CSV <nil>"},
		"capture/dc/prefix/ep/AllTraffic/2024/03/11/13/32-18-648-": {"5,6 CSV <nil>"},
		"bare/ep2/v/2024/03/11/12/32-18-648-":                      {"AAEC/w== BASE64 abc"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("objects:\n got %v\nwant %v", got, want)
	}
}

// closedPort returns a loopback URL that refuses connections.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestS3DestinationDown: a store that refuses connections costs records,
// counted and logged once, never a blocked Capture.
func TestS3DestinationDown(t *testing.T) {
	var logs safeBuffer
	w, c := start(t, Config{
		S3EndpointURL: closedPort(t), S3Region: "us-east-1", S3Credentials: testCreds,
		FlushBytes: 2048, UploadAttempts: 2, QueueSize: 100,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, testOptions{retryBase: time.Second}) // a Capture that waited for a retry would show
	const goroutines, each = 4, 2000
	var wg sync.WaitGroup
	var slowest atomic.Int64
	began := time.Now()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				t0 := time.Now()
				w.Capture(csvRecord("s3://bucket/prefix", "ep", "v", time.Now(), fmt.Sprint(i)))
				d := int64(time.Since(t0))
				for {
					s := slowest.Load()
					if d <= s || slowest.CompareAndSwap(s, d) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d Captures in %v, slowest %v", goroutines*each, time.Since(began), time.Duration(slowest.Load()))
	if s := time.Duration(slowest.Load()); s > 500*time.Millisecond {
		t.Errorf("a Capture took %v", s)
	}
	t0 := time.Now()
	closeWriter(t, w)
	t.Logf("Close took %v", time.Since(t0))
	written, dropped, _ := c.totals()
	if written != 0 || dropped != goroutines*each {
		t.Errorf("written %d, dropped %d; want 0, %d", written, dropped, goroutines*each)
	}
	if n := strings.Count(logs.String(), "cannot write capture file"); n != 1 || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("%d failure logs, want 1 naming the cause:\n%s", n, logs.String())
	}
}

// slowS3 is an S3 stand-in whose PutObject answers only when released (or
// the client gives up).
type slowS3 struct {
	release chan struct{}
	puts    atomic.Int64
}

func newSlowS3(t *testing.T) (*slowS3, string) {
	s := &slowS3{release: make(chan struct{})}
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-s.release:
		case <-r.Context().Done():
			return
		}
		s.puts.Add(1)
		rw.Header().Set("ETag", `"0"`)
	}))
	t.Cleanup(func() {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
		ts.Close()
	})
	return s, ts.URL
}

// TestQueueFullSlowS3: with the destination slow, the Writer's backlog and
// then its queue fill; Capture then drops and counts at once, and what it
// accepted is written once the destination answers.
func TestQueueFullSlowS3(t *testing.T) {
	srv, url := newSlowS3(t)
	w, c := start(t, Config{
		S3EndpointURL: url, S3Region: "us-east-1", S3Credentials: testCreds,
		FlushBytes: 1, QueueSize: 5,
	}, testOptions{})
	accepted, rejected := 0, 0
	var slowest time.Duration
	for i := range 200 {
		t0 := time.Now()
		if w.Capture(csvRecord("s3://bucket/p", "ep", "v", time.Now(), fmt.Sprint(i))) {
			accepted++
		} else {
			rejected++
		}
		slowest = max(slowest, time.Since(t0))
		if i < 20 {
			time.Sleep(5 * time.Millisecond) // let the Writer take the first ones
		}
	}
	t.Logf("accepted %d, dropped %d, slowest Capture %v", accepted, rejected, slowest)
	if rejected == 0 || accepted > 20 {
		t.Errorf("accepted %d, dropped %d: the queue did not fill", accepted, rejected)
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("a Capture took %v", slowest)
	}
	if _, dropped, _ := c.totals(); dropped != rejected {
		t.Errorf("dropped %d, want %d", dropped, rejected)
	}
	close(srv.release)
	closeWriter(t, w)
	if written, dropped, _ := c.totals(); written != accepted || dropped != rejected || int(srv.puts.Load()) != accepted {
		t.Errorf("written %d, dropped %d, puts %d; want %d, %d, %d", written, dropped, srv.puts.Load(), accepted, rejected, accepted)
	}
}

// TestCloseDeadline: Close returns when its context ends, counting what it
// could not write.
func TestCloseDeadline(t *testing.T) {
	_, url := newSlowS3(t)
	w, c := start(t, Config{
		S3EndpointURL: url, S3Region: "us-east-1", S3Credentials: testCreds,
		UploadTimeout: time.Minute,
	}, testOptions{})
	for range 3 {
		w.Capture(csvRecord("s3://bucket/p", "ep", "v", time.Now(), "1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := w.Close(ctx)
	took := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	if took > 5*time.Second {
		t.Errorf("Close took %v", took)
	}
	if written, dropped, _ := c.totals(); written != 0 || dropped != 3 {
		t.Errorf("written %d, dropped %d; want 0, 3", written, dropped)
	}
	if w.Capture(csvRecord("s3://bucket/p", "ep", "v", time.Now(), "1")) {
		t.Error("Capture after Close = true")
	}
}
