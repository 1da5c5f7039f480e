package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Target is one place the load generator sends InvokeEndpoint-shaped
// requests to: a POST of the payload to URL.
type Target struct {
	// Name is direct, nginx or sagehost.
	Name string
	// URL is the full URL of the invocation (…/invocations).
	URL string
}

// Load describes one closed-loop run: Concurrency workers, each sending the
// next request as soon as the previous answer is read, for Warmup and then
// Duration; only answers completed during Duration are measured.
type Load struct {
	Concurrency int
	Payload     []byte
	Warmup      time.Duration
	Duration    time.Duration
	// Credentials and Region sign every request (service "sagemaker").
	Credentials aws.Credentials
	Region      string
	// ContentType of every request (application/octet-stream if empty).
	ContentType string
	// RequestTimeout bounds one request (2 minutes if zero).
	RequestTimeout time.Duration
	// OnMeasureStart and OnMeasureEnd, when set, are called when the
	// measured window opens and closes (for profilers).
	OnMeasureStart func()
	OnMeasureEnd   func()
}

// Result is what one run measured.
type Result struct {
	Target      string
	Concurrency int
	PayloadSize int
	// Elapsed is the length of the measured window.
	Elapsed time.Duration
	// Hist holds the latency of every answer completed in the window.
	Hist *Histogram
	// WarmupRequests counts the answers completed before the window.
	WarmupRequests uint64
	// Errors counts failed requests (warm-up and window alike) by kind.
	Errors map[string]uint64
	// ErrorSamples holds the first few error messages.
	ErrorSamples []string
	// ClientCPU and ServerCPU are the CPU the harness and the target's
	// server processes used during the window, in cores (1.0 = one CPU
	// busy all the time); negative when not measured. Filled in by Run.
	ClientCPU, ServerCPU float64
}

// Requests is the number of measured (successful) requests.
func (r *Result) Requests() uint64 { return r.Hist.Count() }

// Throughput is measured requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Hist.Count()) / r.Elapsed.Seconds()
}

// ErrorCount is the total number of failed requests.
func (r *Result) ErrorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// ErrorSummary lists the error kinds and counts, most frequent first.
func (r *Result) ErrorSummary() string {
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if r.Errors[kinds[i]] != r.Errors[kinds[j]] {
			return r.Errors[kinds[i]] > r.Errors[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", k, r.Errors[k])
	}
	return strings.Join(parts, ", ")
}

// MakePayload returns a deterministic body of n bytes (printable ASCII, so
// a mismatch is readable in a log).
func MakePayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// NewTransport returns the keep-alive transport of one run: enough idle
// connections for every worker, no compression, HTTP/1.1 only.
func NewTransport(concurrency int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2*concurrency + 16,
		MaxIdleConnsPerHost: 2*concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
}

const maxErrorSamples = 5

// ProfileLabel is the pprof label key of the load generator's goroutines.
const ProfileLabel = "sagehost-bench"

// worker is one closed-loop client.
type worker struct {
	hist    *Histogram
	warm    uint64
	errs    map[string]uint64
	samples []string
	buf     []byte
}

func (w *worker) fail(kind string, err error) {
	w.errs[kind]++
	if len(w.samples) < maxErrorSamples {
		w.samples = append(w.samples, kind+": "+err.Error())
	}
}

// RunLoad runs a closed-loop load against a target and returns what it
// measured. Every request is signed with SigV4 (the payload hash is
// computed once: the body never changes). Every answer is checked: status
// 200 and a body identical to the payload. Latency runs from just after
// signing to the last byte of the answer. It returns an error only when the
// run could not take place; failed requests are counted in the Result.
func RunLoad(ctx context.Context, t Target, l Load) (*Result, error) {
	if l.Concurrency < 1 {
		return nil, fmt.Errorf("concurrency %d: want at least 1", l.Concurrency)
	}
	if l.Duration <= 0 {
		return nil, fmt.Errorf("duration %v: want more than 0", l.Duration)
	}
	if l.ContentType == "" {
		l.ContentType = "application/octet-stream"
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = 2 * time.Minute
	}
	if l.Region == "" {
		l.Region = "us-east-1"
	}
	sum := sha256.Sum256(l.Payload)
	payloadHash := hex.EncodeToString(sum[:])
	tr := NewTransport(l.Concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: l.RequestTimeout}
	signer := v4.NewSigner()

	start := time.Now()
	measureStart := start.Add(l.Warmup)
	measureEnd := measureStart.Add(l.Duration)

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hooks := make(chan struct{})
	go func() {
		defer close(hooks)
		sleepUntil(ctx, measureStart)
		if l.OnMeasureStart != nil {
			l.OnMeasureStart()
		}
		sleepUntil(ctx, measureEnd)
		if l.OnMeasureEnd != nil {
			l.OnMeasureEnd()
		}
	}()

	workers := make([]*worker, l.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{hist: NewHistogram(), errs: map[string]uint64{}, buf: make([]byte, 64<<10)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Label the client's goroutines (and the connection goroutines
			// they spawn) so that an in-process profile can leave them out:
			// go tool pprof -tagignore 'load-generator' ...
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels(ProfileLabel, "load-generator")))
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(measureEnd) {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(l.Payload))
				if err != nil {
					w.fail("request", err)
					return
				}
				req.Header["Content-Type"] = []string{l.ContentType}
				if err := signer.SignHTTP(ctx, l.Credentials, req, payloadHash, "sagemaker", l.Region, now); err != nil {
					w.fail("sign", err)
					return
				}
				t0 := time.Now()
				kind, err := w.roundTrip(client, req, l.Payload)
				t1 := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return // cancelled: not the target's fault
					}
					w.fail(kind, err)
					continue
				}
				switch {
				case t1.Before(measureStart):
					w.warm++
				case !t1.After(measureEnd):
					w.hist.Record(t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	<-hooks
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("load on %s interrupted: %w", t.Name, err)
	}

	res := &Result{
		Target: t.Name, Concurrency: l.Concurrency, PayloadSize: len(l.Payload),
		Elapsed: measureEnd.Sub(measureStart), Hist: NewHistogram(), Errors: map[string]uint64{},
	}
	for _, w := range workers {
		res.Hist.Merge(w.hist)
		res.WarmupRequests += w.warm
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		for _, s := range w.samples {
			if len(res.ErrorSamples) < maxErrorSamples {
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	return res, nil
}

// roundTrip sends one request and checks its answer against the payload,
// reading it to the end so that the connection is reused. It returns an
// error kind and the error on failure.
func (w *worker) roundTrip(client *http.Client, req *http.Request, payload []byte) (string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return "transport", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Sprintf("status %d", resp.StatusCode), fmt.Errorf("status %d: %q", resp.StatusCode, b)
	}
	off, mismatch := 0, -1
	for {
		n, err := resp.Body.Read(w.buf)
		if n > 0 {
			if mismatch < 0 {
				end := min(off+n, len(payload))
				if end-off != n || !bytes.Equal(w.buf[:n], payload[off:end]) {
					mismatch = off
				}
			}
			off += n
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "body read", fmt.Errorf("after %d bytes: %w", off, err)
		}
	}
	if off != len(payload) {
		return "body length", fmt.Errorf("got %d bytes, want %d", off, len(payload))
	}
	if mismatch >= 0 {
		return "body content", fmt.Errorf("answer differs from the payload at or after byte %d", mismatch)
	}
	return "", nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
