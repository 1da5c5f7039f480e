// Package capture owns SageMaker data capture (an endpoint config's
// DataCaptureConfig): it turns captured invocations into SageMaker's
// capture records and writes them where and as SageMaker writes them.
//
// Records are one JSON object per line, in SageMaker's layout:
//
//	{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"1,2","encoding":"CSV"},
//	                "endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0.5","encoding":"CSV"}},
//	 "eventMetadata":{"eventId":"UUID","inferenceId":"ID","inferenceTime":"2022-02-14T17:25:49Z"},
//	 "eventVersion":"0"}
//
// CSV and JSON data are the body's text (a JSON string, not a nested
// object), BASE64 data is standard base64. An endpointInput or
// endpointOutput that was not captured is left out, as is an inferenceId
// the client did not send. sagehost adds eventMetadata.targetModel
// (multi-model endpoints) and eventMetadata.inferenceComponentName
// (inference components) when they apply; SageMaker documents neither.
//
// Files are DESTINATION/ENDPOINT/VARIANT/yyyy/mm/dd/hh/MM-SS-mmm-UUID.jsonl:
// the hour folder of the records' inference time (UTC), and the minute,
// second and millisecond of the file's first record. Records are batched
// per destination, account, region, endpoint, variant and hour; a batch
// becomes a file when it reaches Config.FlushBytes, when its oldest record
// is Config.FlushInterval old, or at Close. An s3:// destination gets one
// PutObject per file; a file:// destination (or an absolute path) gets a
// temporary file in the same directory (named .NAME-*.tmp) renamed into
// place. Either way a file is complete when it appears.
//
// Capture never blocks: records wait in a bounded queue (bounded in count
// and in bytes) and are dropped, and counted, when it is full. Each
// destination has its own goroutine that writes its files one at a time,
// with a backlog of a few files. While a destination keeps up, batching
// waits for room in its backlog, so the queue absorbs bursts; while it is
// failing (its last file could not be written) or slow (one file has taken
// more than 5 s), files that do not fit its backlog are dropped at once, so
// that it holds up neither other destinations nor memory. A file is tried
// Config.UploadAttempts times (once while its destination is failing);
// then its records are dropped and counted. Every drop is logged, at most
// once a minute per cause, destination and variant, with the number of
// records dropped meanwhile. Close writes everything queued and batched.
package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sagehost/sagehost/internal/s3client"
)

// Defaults of Config.
const (
	DefaultQueueSize            = 10000
	DefaultQueueBytes     int64 = 256 << 20
	DefaultFlushBytes           = 1 << 20
	DefaultFlushInterval        = 30 * time.Second
	MaxFlushInterval            = time.Minute
	DefaultUploadAttempts       = 3
	DefaultUploadTimeout        = 30 * time.Second
	DefaultS3Region             = s3client.DefaultRegion
)

const (
	// backlogPerDestination is how many files may wait for one
	// destination's writer.
	backlogPerDestination = 4
	// bufferedFiles times FlushBytes is the most that batches may hold
	// together before all of them are written.
	bufferedFiles = 64
	// stallAfter is how long one file may take before its destination
	// counts as slow.
	stallAfter = 5 * time.Second
	// sendPoll is how often a wait for a destination's backlog rechecks
	// whether the destination has stalled.
	sendPoll = 50 * time.Millisecond
	// writerIdle is how long a destination's writer goroutine stays
	// without work before it exits.
	writerIdle = 2 * time.Minute
	// logEvery is the least time between two logs of the same failure.
	logEvery = time.Minute
	// recordOverhead approximates a record's size beyond its payloads.
	recordOverhead = 512
)

// Key names the variant that hooks count records for.
type Key struct {
	Account, Region, Endpoint, Variant string
}

// String returns "account/region/endpoint/variant".
func (k Key) String() string {
	return k.Account + "/" + k.Region + "/" + k.Endpoint + "/" + k.Variant
}

// Config configures a Writer. The zero value is usable.
type Config struct {
	// S3EndpointURL is an optional custom S3 endpoint (MinIO or any
	// S3-compatible store), addressed path-style. Empty means AWS S3 (or
	// what the AWS SDK's own configuration says).
	S3EndpointURL string
	// S3Region is the S3 region; empty means the AWS SDK's configured
	// region, else DefaultS3Region.
	S3Region string
	// S3Credentials are the credentials for S3; nil means the AWS SDK
	// default chain.
	S3Credentials aws.CredentialsProvider
	// QueueSize is how many records may wait to be batched (default
	// DefaultQueueSize).
	QueueSize int
	// QueueBytes is how many payload bytes may wait to be batched (default
	// DefaultQueueBytes). A single record larger than this is accepted
	// when the queue is empty.
	QueueBytes int64
	// FlushBytes: a batch is written when it holds this many bytes
	// (default DefaultFlushBytes).
	FlushBytes int
	// FlushInterval: a batch is written when its oldest record is this
	// old (default DefaultFlushInterval; values above MaxFlushInterval are
	// MaxFlushInterval, so that no record waits more than about a minute).
	FlushInterval time.Duration
	// UploadAttempts is how many times a file is tried before its records
	// are dropped (default DefaultUploadAttempts).
	UploadAttempts int
	// UploadTimeout bounds one PutObject (default DefaultUploadTimeout).
	UploadTimeout time.Duration
	// Logger receives failures (rate-limited) and, at debug level, each
	// file written; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for records without a Time; nil means time.Now.
	// Batch ages use the real clock.
	Now func() time.Time
	// OnWritten is called with the number of records of each file written;
	// OnDropped with the number of records dropped (queue full, Writer
	// closed, invalid destination or name, destination failing or behind).
	// Either may be nil; both must be safe for concurrent use and fast
	// (OnDropped may run inside Capture).
	OnWritten, OnDropped func(k Key, records int)
}

// Writer batches captured records and writes them to their destinations.
// It is safe for concurrent use.
type Writer struct {
	cfg Config
	log *slog.Logger

	queue       chan Record
	queuedBytes atomic.Int64

	mu     sync.RWMutex // guards closed against Capture's send
	closed bool
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when everything has stopped

	ctx    context.Context // writes; canceled when Close's ctx ends
	cancel context.CancelFunc

	// Owned by the run goroutine.
	bufs     map[bufKey]*buffer
	buffered int
	dests    map[string]*destination
	writers  map[string]*destWriter
	closing  bool
	enc      bytes.Buffer

	writerWG sync.WaitGroup

	s3 s3client.Lazy

	limiter logLimiter

	// For tests.
	beforeAdd func()
	retryBase time.Duration
}

// bufKey identifies one batch.
type bufKey struct {
	dest string
	key  Key
	hour int64 // start of the records' inference hour, Unix seconds
}

// buffer is one batch of encoded records.
type buffer struct {
	k       bufKey
	dest    *destination
	first   time.Time // inference time of the first record
	opened  time.Time // when the first record was added (real clock)
	data    []byte
	records int
}

// batch is one file to write.
type batch struct {
	key     Key
	dest    *destination
	name    string // path below the destination, "/"-separated
	data    []byte
	records int
}

// destWriter writes one destination's files, one at a time.
type destWriter struct {
	ch       chan *batch
	lastUsed time.Time // for the run goroutine

	busySince atomic.Int64 // Unix nanoseconds when the current write began; 0 when idle
	failing   atomic.Bool  // the last file could not be written
}

// stalled reports whether the destination failed its last file or has
// been writing the current one for more than stallAfter.
func (dw *destWriter) stalled(now time.Time) bool {
	if dw.failing.Load() {
		return true
	}
	s := dw.busySince.Load()
	return s != 0 && now.Sub(time.Unix(0, s)) > stallAfter
}

// New returns a running Writer. Close stops it.
func New(cfg Config) (*Writer, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	return newWriter(cfg, testOptions{}), nil
}

// withDefaults checks cfg and fills in its defaults.
func withDefaults(cfg Config) (Config, error) {
	if cfg.QueueSize < 0 || cfg.QueueBytes < 0 || cfg.FlushBytes < 0 || cfg.FlushInterval < 0 ||
		cfg.UploadAttempts < 0 || cfg.UploadTimeout < 0 {
		return cfg, errors.New("capture: Config sizes and durations must not be negative")
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.FlushBytes == 0 {
		cfg.FlushBytes = DefaultFlushBytes
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	cfg.FlushInterval = min(cfg.FlushInterval, MaxFlushInterval)
	if cfg.UploadAttempts == 0 {
		cfg.UploadAttempts = DefaultUploadAttempts
	}
	if cfg.UploadTimeout == 0 {
		cfg.UploadTimeout = DefaultUploadTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// testOptions change a Writer for tests.
type testOptions struct {
	// beforeAdd, if not nil, runs before each record is batched (tests
	// block the Writer with it).
	beforeAdd func()
	// retryBase is the first retry delay; zero means 250ms, negative none.
	retryBase time.Duration
}

// newWriter starts a Writer for a complete cfg.
func newWriter(cfg Config, opts testOptions) *Writer {
	if opts.retryBase == 0 {
		opts.retryBase = 250 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg: cfg,
		log: cfg.Logger,
		s3: s3client.Lazy{
			Config: s3client.Config{EndpointURL: cfg.S3EndpointURL, Region: cfg.S3Region, Credentials: cfg.S3Credentials},
			Log:    cfg.Logger, Component: "capture",
			Options: []func(*s3.Options){func(o *s3.Options) {
				// The Writer retries a whole upload itself, a bounded
				// number of times; the SDK's retries would multiply that.
				o.Retryer = aws.NopRetryer{}
			}},
		},
		queue:     make(chan Record, cfg.QueueSize),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		bufs:      map[bufKey]*buffer{},
		dests:     map[string]*destination{},
		writers:   map[string]*destWriter{},
		limiter:   logLimiter{last: map[string]logState{}},
		beforeAdd: opts.beforeAdd,
		retryBase: max(opts.retryBase, 0),
	}
	go w.run()
	return w
}

func recordKey(r *Record) Key {
	return Key{Account: r.Account, Region: r.Region, Endpoint: r.Endpoint, Variant: r.Variant}
}

func recordSize(r *Record) int64 {
	n := int64(recordOverhead)
	if r.Input != nil {
		n += int64(len(r.Input.Data))
	}
	if r.Output != nil {
		n += int64(len(r.Output.Data))
	}
	return n
}

// Capture queues r to be written and returns true, without ever blocking.
// It returns false, and counts the record as dropped, when the queue is
// full or the Writer is closed. A record that cannot be written (an
// unusable Destination, an Endpoint or Variant that is not a path segment)
// is accepted, then dropped, counted and logged.
func (w *Writer) Capture(r Record) bool {
	if r.Time.IsZero() {
		r.Time = w.cfg.Now()
	}
	size := recordSize(&r)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.drop(recordKey(&r), 1, r.Destination, "the capture writer is closed", nil)
		return false
	}
	if n := w.queuedBytes.Add(size); n > w.cfg.QueueBytes && n != size {
		w.queuedBytes.Add(-size)
		w.mu.RUnlock()
		w.drop(recordKey(&r), 1, r.Destination, "the capture queue is full (bytes)", nil)
		return false
	}
	select {
	case w.queue <- r:
		w.mu.RUnlock()
		return true
	default:
	}
	w.queuedBytes.Add(-size)
	w.mu.RUnlock()
	w.drop(recordKey(&r), 1, r.Destination, "the capture queue is full", nil)
	return false
}

// Close stops accepting records, writes every record queued or batched,
// and stops. If ctx ends first, writes in progress are abandoned (their
// records counted as dropped) and Close returns ctx's error once the
// Writer has stopped.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	first := !w.closed
	w.closed = true
	w.mu.Unlock()
	if first {
		close(w.stop)
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.done
		return fmt.Errorf("capture: close: %w", ctx.Err())
	}
}

// run batches queued records and flushes batches, until Close.
func (w *Writer) run() {
	defer close(w.done)
	defer w.cancel()
	tick := time.NewTicker(min(max(w.cfg.FlushInterval/4, 5*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case r := <-w.queue:
			w.take(r)
		case now := <-tick.C:
			for _, b := range w.bufs {
				if now.Sub(b.opened) >= w.cfg.FlushInterval {
					w.flush(b)
				}
			}
			for d, dw := range w.writers {
				if len(dw.ch) == 0 && now.Sub(dw.lastUsed) > writerIdle {
					close(dw.ch)
					delete(w.writers, d)
				}
			}
		case <-w.stop:
			w.closing = true
			for drained := false; !drained; {
				select {
				case r := <-w.queue:
					w.take(r)
				default:
					drained = true
				}
			}
			for _, b := range w.bufs {
				w.flush(b)
			}
			for d, dw := range w.writers {
				close(dw.ch)
				delete(w.writers, d)
			}
			w.writerWG.Wait()
			return
		}
	}
}

// take batches one record taken from the queue.
func (w *Writer) take(r Record) {
	w.queuedBytes.Add(-recordSize(&r))
	if w.beforeAdd != nil {
		w.beforeAdd()
	}
	w.add(&r)
}

func (w *Writer) add(r *Record) {
	key := recordKey(r)
	dest, err := w.destination(r.Destination)
	if err != nil {
		w.drop(key, 1, r.Destination, "invalid capture destination", err)
		return
	}
	if !validName(r.Endpoint) || !validName(r.Variant) {
		w.drop(key, 1, r.Destination, "invalid endpoint or variant name",
			fmt.Errorf("endpoint %q, variant %q: names must be non-empty path segments", r.Endpoint, r.Variant))
		return
	}
	if r.EventID == "" {
		r.EventID = newUUID()
	}
	w.enc.Reset()
	if err := appendRecord(&w.enc, r); err != nil {
		w.drop(key, 1, r.Destination, "cannot encode capture record", err)
		return
	}
	k := bufKey{dest: r.Destination, key: key, hour: r.Time.Truncate(time.Hour).Unix()}
	b := w.bufs[k]
	if b == nil {
		b = &buffer{k: k, dest: dest, first: r.Time, opened: time.Now()}
		w.bufs[k] = b
	}
	b.data = append(b.data, w.enc.Bytes()...)
	b.records++
	w.buffered += w.enc.Len()
	if len(b.data) >= w.cfg.FlushBytes {
		w.flush(b)
	}
	if w.buffered > bufferedFiles*w.cfg.FlushBytes {
		for _, b := range w.bufs {
			w.flush(b)
		}
	}
}

// destination returns the parsed destination, cached.
func (w *Writer) destination(uri string) (*destination, error) {
	if d, ok := w.dests[uri]; ok {
		return d, nil
	}
	d, err := parseDestination(uri)
	if err != nil {
		return nil, err
	}
	if len(w.dests) >= 1024 {
		clear(w.dests)
	}
	w.dests[uri] = d
	return d, nil
}

// flush hands b to its destination's writer as one file.
func (w *Writer) flush(b *buffer) {
	delete(w.bufs, b.k)
	w.buffered -= len(b.data)
	bt := &batch{
		key:     b.k.key,
		dest:    b.dest,
		name:    objectName(b.k.key.Endpoint, b.k.key.Variant, b.first),
		data:    b.data,
		records: b.records,
	}
	dw := w.writers[b.k.dest]
	if dw == nil {
		dw = &destWriter{ch: make(chan *batch, backlogPerDestination)}
		w.writers[b.k.dest] = dw
		w.writerWG.Add(1)
		go w.writeLoop(dw)
	}
	dw.lastUsed = time.Now()
	w.send(dw, bt)
}

// send queues bt for dw's goroutine. While the destination works, it waits
// for room (so the Writer's queue absorbs bursts); when the destination is
// failing or stuck in a write, a file that does not fit is dropped at
// once, so that one destination does not hold up the others.
func (w *Writer) send(dw *destWriter, bt *batch) {
	if w.closing {
		dw.ch <- bt
		return
	}
	for {
		select {
		case dw.ch <- bt:
			return
		default:
		}
		if dw.stalled(time.Now()) {
			w.drop(bt.key, bt.records, bt.dest.uri, "the capture destination is failing or slow; file dropped", nil)
			return
		}
		t := time.NewTimer(sendPoll)
		select {
		case dw.ch <- bt:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// writeLoop writes one destination's files until its channel is closed.
func (w *Writer) writeLoop(dw *destWriter) {
	defer w.writerWG.Done()
	for b := range dw.ch {
		dw.busySince.Store(time.Now().UnixNano())
		attempts := w.cfg.UploadAttempts
		if dw.failing.Load() {
			attempts = 1 // a destination that is down costs one try per file
		}
		ok := w.writeBatch(b, attempts)
		dw.failing.Store(!ok)
		dw.busySince.Store(0)
	}
}

// writeBatch writes b, trying up to attempts times, and reports whether it
// was written.
func (w *Writer) writeBatch(b *batch, attempts int) bool {
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			delay := min(w.retryBase<<(2*(attempt-1)), 5*time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-w.ctx.Done():
				t.Stop()
			}
		}
		if w.ctx.Err() != nil {
			err = fmt.Errorf("capture writer closing: %w", w.ctx.Err())
			break
		}
		err = w.write(w.ctx, b)
		if err == nil {
			w.log.Debug("capture: wrote file", "destination", b.dest.uri, "file", b.name,
				"records", b.records, "bytes", len(b.data))
			if w.cfg.OnWritten != nil {
				w.cfg.OnWritten(b.key, b.records)
			}
			return true
		}
		if permanent(err) {
			break
		}
	}
	w.drop(b.key, b.records, b.dest.uri, "cannot write capture file", err)
	return false
}

// drop counts n dropped records and logs why, rate-limited.
func (w *Writer) drop(k Key, n int, dest, why string, err error) {
	if w.cfg.OnDropped != nil {
		w.cfg.OnDropped(k, n)
	}
	ok, suppressed := w.limiter.allow(why+"\x00"+dest+"\x00"+k.String(), n)
	if !ok {
		return
	}
	attrs := []any{"destination", dest, "account", k.Account, "region", k.Region,
		"endpoint", k.Endpoint, "variant", k.Variant, "records", n}
	if suppressed > 0 {
		attrs = append(attrs, "dropped_since_last_log", suppressed)
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	w.log.Warn("capture: records dropped: "+why, attrs...)
}

// logLimiter lets one log through per key and logEvery, and counts what
// it held back.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]logState
}

type logState struct {
	at         time.Time
	suppressed int
}

// allow reports whether to log now for key, and how many records were
// dropped without a log since the last one.
func (l *logLimiter) allow(key string, n int) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	s, ok := l.last[key]
	if ok && now.Sub(s.at) < logEvery {
		s.suppressed += n
		l.last[key] = s
		return false, 0
	}
	if len(l.last) >= 1024 {
		for k, s := range l.last {
			if now.Sub(s.at) >= logEvery {
				delete(l.last, k)
			}
		}
		if len(l.last) >= 1024 {
			clear(l.last)
		}
	}
	l.last[key] = logState{at: now}
	return true, s.suppressed
}
