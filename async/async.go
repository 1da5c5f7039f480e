// Package async serves InvokeEndpointAsync. A request is queued durably in
// the store (a record of kind async-invocation) and answered at once with
// its inference id and output location. Later its input is read from S3,
// sent to the endpoint's instances through the invoke Router as an
// InvokeEndpoint call with the asynchronous limits (InvocationTimeoutSeconds,
// 1 GB answers), and the container's answer is written to the output
// location, or the error to the failure location. Requests wait while the
// endpoint has no healthy instance and expire after their RequestTTLSeconds;
// at most MaxConcurrentInvocationsPerInstance run per healthy instance.
// Queued requests survive a restart of sagehost: each reaches the model at
// least once.
package async

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/internal/s3client"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/metrics"
)

const (
	// MaxPayloadBytes bounds an asynchronous request's input and its
	// answer (1 GB, as on SageMaker).
	MaxPayloadBytes = 1 << 30
	// DefaultRequestTTL is how long a request may wait in the queue
	// (RequestTTLSeconds' default, 6 hours).
	DefaultRequestTTL = 6 * time.Hour
	// DefaultInvocationTimeout is how long the container has to answer
	// (InvocationTimeoutSeconds' default, 15 minutes).
	DefaultInvocationTimeout = 15 * time.Minute
	// DefaultConcurrencyPerInstance is the requests run at once per healthy
	// instance when ClientConfig.MaxConcurrentInvocationsPerInstance is not
	// set (SageMaker picks a value it does not document).
	DefaultConcurrencyPerInstance = 4

	// writeTimeout bounds one attempt to write a result.
	writeTimeout = 5 * time.Minute
)

// Config configures a Manager.
type Config struct {
	Store   sagehost.Store
	Router  *invoke.Router
	S3      s3client.Config
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Poll is how often waiting requests are looked at again (an endpoint
	// gained instances, a retry is due); 500 ms when zero.
	Poll time.Duration
}

// Manager queues and runs asynchronous requests.
type Manager struct {
	cfg Config
	log *slog.Logger
	s3  s3client.Lazy

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[sagehost.EndpointKey]*queue
}

// queue holds an endpoint's requests in arrival order.
type queue struct {
	pending []*job
	running int
}

// job is one queued request, stored as the document of its record.
type job struct {
	ID       string `json:"-"` // the record's name
	Account  string `json:"-"`
	Region   string `json:"-"`
	Endpoint string `json:"Endpoint"`

	InferenceID      string `json:"InferenceId"`
	InputLocation    string `json:"InputLocation"`
	ContentType      string `json:"ContentType,omitempty"`
	Accept           string `json:"Accept,omitempty"`
	CustomAttributes string `json:"CustomAttributes,omitempty"`
	OutputLocation   string `json:"OutputLocation"`
	FailureLocation  string `json:"FailureLocation"`
	// Seconds.
	RequestTTL        int64     `json:"RequestTTLSeconds"`
	InvocationTimeout int64     `json:"InvocationTimeoutSeconds"`
	Submitted         time.Time `json:"Submitted"`

	notBefore time.Time // a retry's earliest start
}

func (j *job) key() sagehost.EndpointKey {
	return sagehost.EndpointKey{Account: j.Account, Region: j.Region, Name: j.Endpoint}
}

func (j *job) expires() time.Time { return j.Submitted.Add(time.Duration(j.RequestTTL) * time.Second) }

// New returns a Manager; Start runs it.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg: cfg, log: cfg.Logger.With("component", "async"),
		s3:  s3client.Lazy{Config: cfg.S3, Log: cfg.Logger, Component: "async"},
		ctx: ctx, cancel: cancel,
		queues: map[sagehost.EndpointKey]*queue{},
	}
}

// Start queues the requests stored by an earlier run and starts running
// requests.
func (m *Manager) Start(ctx context.Context) error {
	recs, err := m.cfg.Store.ListAll(ctx, sagehost.KindAsyncInvocation)
	if err != nil {
		return fmt.Errorf("list queued asynchronous requests: %w", err)
	}
	var jobs []*job
	for _, rec := range recs {
		j, err := decodeJob(rec)
		if err != nil {
			m.log.Error("dropping unreadable queued request", "id", rec.Name, "err", err)
			m.deleteRecord(j)
			continue
		}
		jobs = append(jobs, j)
	}
	slices.SortStableFunc(jobs, func(a, b *job) int { return a.Submitted.Compare(b.Submitted) })
	m.mu.Lock()
	for _, j := range jobs {
		q := m.queueLocked(j.key())
		q.pending = append(q.pending, j)
	}
	m.mu.Unlock()
	if len(jobs) > 0 {
		m.log.Info("resuming queued asynchronous requests", "requests", len(jobs))
	}
	m.wg.Add(1)
	go m.poll()
	return nil
}

// Close stops taking requests from the queues and waits, at most until ctx
// ends, for those running: a request cut short stays queued for the next
// start.
func (m *Manager) Close(ctx context.Context) error {
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop asynchronous requests: %w", ctx.Err())
	}
}

// Request is an InvokeEndpointAsync call.
type Request struct {
	Caller           sagehost.Caller
	EndpointName     string
	InputLocation    string
	ContentType      string
	Accept           string
	CustomAttributes string
	InferenceID      string // generated when empty
	// RequestTTL and InvocationTimeout: zero means the defaults.
	RequestTTL            time.Duration
	InvocationTimeout     time.Duration
	S3OutputPathExtension string
	Filename              string
}

// Accepted is a queued request's answer.
type Accepted struct {
	InferenceID     string
	OutputLocation  string
	FailureLocation string
}

// Submit queues a request. The endpoint must exist, be in service and be
// asynchronous; the input must be an s3:// object.
func (m *Manager) Submit(ctx context.Context, req Request) (Accepted, error) {
	t, err := m.cfg.Router.AsyncTable(&invoke.Request{Caller: req.Caller, EndpointName: req.EndpointName})
	if err != nil {
		return Accepted{}, err
	}
	if _, _, err := parseS3(req.InputLocation, true); err != nil {
		return Accepted{}, sagehost.Errorf(sagehost.CodeValidationError, "InputLocation %s: %v", req.InputLocation, err)
	}
	oc := t.Async.OutputConfig
	if _, _, err := parseS3(oc.S3OutputPath, false); err != nil {
		return Accepted{}, sagehost.Errorf(sagehost.CodeValidationError, "S3OutputPath %s of endpoint %s: %v", oc.S3OutputPath, req.EndpointName, err)
	}
	failureBase := oc.S3FailurePath
	if failureBase == "" {
		failureBase = oc.S3OutputPath
	} else if _, _, err := parseS3(failureBase, false); err != nil {
		return Accepted{}, sagehost.Errorf(sagehost.CodeValidationError, "S3FailurePath %s of endpoint %s: %v", failureBase, req.EndpointName, err)
	}
	id := req.InferenceID
	if id == "" {
		id = newUUID()
	}
	name := req.Filename
	if name == "" {
		name = id + ".out"
	}
	now := m.cfg.Now()
	j := &job{
		ID: newUUID(), Account: req.Caller.Account, Region: req.Caller.Region, Endpoint: req.EndpointName,
		InferenceID: id, InputLocation: req.InputLocation,
		ContentType: req.ContentType, Accept: req.Accept, CustomAttributes: req.CustomAttributes,
		OutputLocation:    joinLocation(oc.S3OutputPath, req.S3OutputPathExtension, name),
		FailureLocation:   joinLocation(failureBase, req.S3OutputPathExtension, id+"-error.out"),
		RequestTTL:        seconds(req.RequestTTL, DefaultRequestTTL),
		InvocationTimeout: seconds(req.InvocationTimeout, DefaultInvocationTimeout),
		Submitted:         now,
	}
	doc, err := json.Marshal(j)
	if err != nil {
		return Accepted{}, fmt.Errorf("encode asynchronous request: %w", err)
	}
	rec := &sagehost.Record{Kind: sagehost.KindAsyncInvocation, Account: j.Account, Region: j.Region, Name: j.ID,
		CreationTime: now, LastModifiedTime: now, Doc: doc}
	if err := m.cfg.Store.Create(ctx, rec, nil); err != nil {
		return Accepted{}, fmt.Errorf("queue asynchronous request: %w", err)
	}
	m.mu.Lock()
	q := m.queueLocked(j.key())
	q.pending = append(q.pending, j)
	m.kickLocked(j.key(), q)
	m.mu.Unlock()
	return Accepted{InferenceID: id, OutputLocation: j.OutputLocation, FailureLocation: j.FailureLocation}, nil
}

func seconds(d, def time.Duration) int64 {
	if d <= 0 {
		d = def
	}
	return int64(d / time.Second)
}

func (m *Manager) queueLocked(key sagehost.EndpointKey) *queue {
	q := m.queues[key]
	if q == nil {
		q = &queue{}
		m.queues[key] = q
	}
	return q
}

// poll looks at every queue again, every Poll.
func (m *Manager) poll() {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		for key, q := range m.queues {
			m.kickLocked(key, q)
		}
		m.mu.Unlock()
		m.failOrphans()
	}
}

// failOrphans fails the waiting requests of endpoints that were deleted
// (no routing table, and no record in the store: an endpoint that is only
// not routed yet, just after a start, keeps its requests).
func (m *Manager) failOrphans() {
	m.mu.Lock()
	var gone []sagehost.EndpointKey
	for key, q := range m.queues {
		if len(q.pending) > 0 && m.cfg.Router.Lookup(key) == nil {
			gone = append(gone, key)
		}
	}
	m.mu.Unlock()
	for _, key := range gone {
		if _, err := m.cfg.Store.Get(m.ctx, sagehost.KindEndpoint, key.Account, key.Region, key.Name); !errors.Is(err, sagehost.ErrNotFound) {
			continue
		}
		m.mu.Lock()
		if q := m.queues[key]; q != nil {
			for _, j := range q.pending {
				m.startLocked(q, j, m.orphan)
			}
			q.pending = nil
		}
		m.mu.Unlock()
	}
}

// orphan ends a request whose endpoint was deleted.
func (m *Manager) orphan(j *job) bool {
	log := m.logOf(j)
	log.Info("asynchronous request dropped: its endpoint was deleted")
	m.fail(j, log, metrics.AsyncFailed, fmt.Sprintf("Endpoint %s was deleted before the request ran.", j.Endpoint))
	return false
}

// kickLocked starts what can start of an endpoint's queue: requests past
// their TTL (to fail them), then as many as the endpoint's healthy
// instances take.
func (m *Manager) kickLocked(key sagehost.EndpointKey, q *queue) {
	if m.ctx.Err() != nil {
		return
	}
	now := m.cfg.Now()
	kept := q.pending[:0]
	for _, j := range q.pending {
		if now.After(j.expires()) {
			m.startLocked(q, j, m.expire)
			continue
		}
		kept = append(kept, j)
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	limit := 0
	if t := m.cfg.Router.Lookup(key); t != nil && t.Async != nil {
		per := DefaultConcurrencyPerInstance
		if cc := t.Async.ClientConfig; cc != nil && cc.MaxConcurrentInvocationsPerInstance > 0 {
			per = cc.MaxConcurrentInvocationsPerInstance
		}
		limit = per * t.HealthyInstances()
	}
	for len(q.pending) > 0 && q.running < limit && !now.Before(q.pending[0].notBefore) {
		j := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		m.startLocked(q, j, m.run)
	}
	m.cfg.Metrics.AsyncBacklog(key, len(q.pending)+q.running)
	if len(q.pending) == 0 && q.running == 0 {
		delete(m.queues, key)
	}
}

// startLocked runs fn on j in a goroutine of its own, counted as running.
func (m *Manager) startLocked(q *queue, j *job, fn func(*job) (retry bool)) {
	q.running++
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		retry := fn(j)
		m.mu.Lock()
		defer m.mu.Unlock()
		q.running-- // (a queue stays in m.queues while it runs anything)
		if retry {
			q.pending = append([]*job{j}, q.pending...)
		}
		m.kickLocked(j.key(), q)
	}()
}

// logOf returns the logger of a request's lines.
func (m *Manager) logOf(j *job) *slog.Logger {
	return m.log.With("endpoint", j.Endpoint, "account", j.Account, "inference_id", j.InferenceID)
}

// run processes one request. It reports whether the request goes back to
// the front of its queue (no healthy instance took it).
func (m *Manager) run(j *job) (retry bool) {
	ctx := m.ctx
	log := m.logOf(j)
	body, err := m.read(ctx, j.InputLocation)
	if err != nil {
		if ctx.Err() != nil {
			return false // shutting down: stays stored
		}
		log.Warn("reading asynchronous input failed", "input", j.InputLocation, "err", err)
		m.fail(j, log, metrics.AsyncDownloadFailures, fmt.Sprintf("Could not read the input %s: %v", j.InputLocation, err))
		return false
	}
	w := newAnswer()
	req := &invoke.Request{
		Caller: sagehost.Caller{Account: j.Account, Region: j.Region}, EndpointName: j.Endpoint,
		Body: body, ContentType: j.ContentType, Accept: j.Accept, CustomAttributes: j.CustomAttributes, InferenceID: j.InferenceID,
		Timeout: time.Duration(j.InvocationTimeout) * time.Second, MaxAnswerBytes: MaxPayloadBytes,
	}
	err = m.cfg.Router.InvokeQueued(ctx, w, req)
	if ctx.Err() != nil {
		return false // shutting down: stays stored, runs again on the next start
	}
	if err != nil {
		if sagehost.ErrorCode(err) == sagehost.CodeServiceUnavailable || waiting(m.cfg.Router, j) {
			j.notBefore = m.cfg.Now().Add(time.Second)
			return true
		}
		log.Info("asynchronous invocation failed", "err", err)
		m.fail(j, log, metrics.AsyncFailed, errorText(err))
		return false
	}
	if err := m.store(j, log, j.OutputLocation, w.body.Bytes(), w.header.Get("Content-Type")); err == nil {
		m.cfg.Metrics.AsyncCount(j.key(), metrics.AsyncProcessed)
	}
	return false
}

// waiting reports whether an endpoint that refused a request may take it
// later: it exists and is asynchronous but is not in service now.
func waiting(r *invoke.Router, j *job) bool {
	t := r.Lookup(j.key())
	return t != nil && t.Async != nil && !t.Invocable()
}

// errorText is what a failure location gets for err.
func errorText(err error) string {
	var e *sagehost.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// expire ends a request that waited past its TTL.
func (m *Manager) expire(j *job) bool {
	log := m.logOf(j)
	log.Info("asynchronous request expired", "submitted", j.Submitted, "ttl_seconds", j.RequestTTL)
	m.fail(j, log, metrics.AsyncExpired, fmt.Sprintf("The request expired: it waited in the queue longer than its RequestTTLSeconds (%d).", j.RequestTTL))
	return false
}

// fail writes a request's error message to its failure location and
// counts the outcome.
func (m *Manager) fail(j *job, log *slog.Logger, o metrics.AsyncOutcome, message string) {
	if err := m.store(j, log, j.FailureLocation, []byte(message), "text/plain; charset=utf-8"); err == nil {
		m.cfg.Metrics.AsyncCount(j.key(), o)
	}
}

// store writes a finished request's result (its answer or its error) to
// loc, trying a few times, then removes the request from the store: once
// the model has answered, the request is not sent again. A result that
// cannot be written is logged and counted (ResponseUploadFailures).
func (m *Manager) store(j *job, log *slog.Logger, loc string, body []byte, contentType string) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
		}
		// Written even while closing, but never waited for forever.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), writeTimeout)
		err = m.write(ctx, loc, body, contentType)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		log.Error("writing asynchronous result failed", "location", loc, "err", err)
		m.cfg.Metrics.AsyncCount(j.key(), metrics.AsyncUploadFailures)
	}
	m.deleteRecord(j)
	return err
}

func (m *Manager) deleteRecord(j *job) {
	if j == nil {
		return
	}
	if err := m.cfg.Store.Delete(context.WithoutCancel(m.ctx), sagehost.KindAsyncInvocation, j.Account, j.Region, j.ID); err != nil && !errors.Is(err, sagehost.ErrNotFound) {
		m.log.Error("removing finished asynchronous request", "id", j.ID, "err", err)
	}
}

// read returns the object at an s3:// location, of at most MaxPayloadBytes.
func (m *Manager) read(ctx context.Context, loc string) ([]byte, error) {
	bucket, key, err := parseS3(loc, true)
	if err != nil {
		return nil, err
	}
	cl, err := m.s3.Get(ctx)
	if err != nil {
		return nil, err
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 && *out.ContentLength <= MaxPayloadBytes {
		buf.Grow(int(*out.ContentLength) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(out.Body, MaxPayloadBytes+1))
	if err != nil {
		return nil, err
	}
	if n > MaxPayloadBytes {
		return nil, fmt.Errorf("the input is larger than %d bytes", MaxPayloadBytes)
	}
	return buf.Bytes(), nil
}

// write stores body at an s3:// location.
func (m *Manager) write(ctx context.Context, loc string, body []byte, contentType string) error {
	bucket, key, err := parseS3(loc, true)
	if err != nil {
		return err
	}
	cl, err := m.s3.Get(ctx)
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := cl.PutObject(ctx, in); err != nil {
		return fmt.Errorf("write %s: %w", loc, err)
	}
	return nil
}

// parseS3 splits s3://bucket/key; an object location needs a key.
func parseS3(loc string, object bool) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(loc, "s3://")
	if !ok {
		return "", "", errors.New("sagehost reads and writes asynchronous requests at s3:// locations only")
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" || object && key == "" {
		return "", "", errors.New("not an s3://bucket/key location")
	}
	return bucket, key, nil
}

// joinLocation joins an output path, an optional extension and a name.
func joinLocation(base, ext, name string) string {
	loc := strings.TrimSuffix(base, "/")
	if ext = strings.Trim(ext, "/"); ext != "" {
		loc += "/" + ext
	}
	return loc + "/" + name
}

func decodeJob(rec *sagehost.Record) (*job, error) {
	j := &job{ID: rec.Name, Account: rec.Account, Region: rec.Region}
	if err := json.Unmarshal(rec.Doc, j); err != nil {
		return j, fmt.Errorf("decode queued asynchronous request %s: %w", rec.Name, err)
	}
	return j, nil
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// answer is the http.ResponseWriter a queued request's answer is written
// to.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newAnswer() *answer { return &answer{header: http.Header{}} }

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(status int) {
	if a.status != 0 {
		return
	}
	a.status = status
	// An answer of a known length is read into a buffer of that size.
	if n, err := strconv.ParseInt(a.header.Get("Content-Length"), 10, 64); err == nil && n > 0 && n <= MaxPayloadBytes {
		a.body.Grow(int(n))
	}
}

func (a *answer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}
