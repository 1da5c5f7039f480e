// Package artifact owns model data: it fetches what a model container sees at
// /opt/ml/model from s3:// URLs (AWS S3 or any S3-compatible store such as
// MinIO), file:// URLs and plain local paths; extracts model.tar.gz archives
// safely (no path traversal, no escaping links, no device files, bounded
// size and entry count); and keeps the result in an on-disk cache keyed by
// content digest, so that each artifact is downloaded once and shared,
// read-only, by every instance that uses the same content.
//
// Cache layout under Config.CacheDir:
//
//	index.json        source identity -> fingerprint (ETag, or size/mtime/inode) and digest
//	sha256/<hex>/     one complete, read-only model directory per digest
//	tmp/              staging area; a directory appears under sha256/ only by an atomic rename
//
// The digest of a tar.gz artifact is the SHA-256 of the archive bytes; the
// digest of any other artifact (a single file, an S3 prefix, a local
// directory) is the SHA-256 of a manifest listing every path with the SHA-256
// of its content. One Fetcher should own a CacheDir at a time.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/internal/s3client"
)

// Data types and compression types of a Source, as in SageMaker's
// S3DataSource.
const (
	DataTypeS3Object = "S3Object"
	DataTypeS3Prefix = "S3Prefix"
	CompressionGzip  = "Gzip"
	CompressionNone  = "None"
)

// Default limits.
const (
	DefaultMaxArchiveBytes   int64 = 50 << 30  // 50 GiB downloaded per artifact
	DefaultMaxExtractedBytes int64 = 100 << 30 // 100 GiB written per artifact
	DefaultMaxFiles                = 100_000   // entries (files, directories, links) per artifact
	DefaultS3Region                = s3client.DefaultRegion
)

// Errors that Fetch wraps, for errors.Is. Their own text never appears in a
// Fetch error message; each message says what went wrong and what to fix.
var (
	// ErrNotFound: there is no object, prefix, file or directory at the URL.
	ErrNotFound = errors.New("model data not found")
	// ErrAccessDenied: the store refused access to the model data.
	ErrAccessDenied = errors.New("access to model data denied")
	// ErrInvalidSource: the URL, data type or compression type is not usable,
	// or an S3 prefix holds keys that cannot become file names.
	ErrInvalidSource = errors.New("invalid model data source")
	// ErrBadArchive: the data is not a gzip-compressed tar archive, or the
	// archive is corrupt.
	ErrBadArchive = errors.New("invalid model data archive")
	// ErrUnsafeArchive: the archive holds an entry that would escape the model
	// directory, a link pointing outside it, or a device file or FIFO.
	ErrUnsafeArchive = errors.New("unsafe model data archive")
	// ErrTooLarge: a size or entry-count limit of Config was exceeded.
	ErrTooLarge = errors.New("model data exceeds a limit")
)

// Config configures a Fetcher.
type Config struct {
	// CacheDir is where fetched and extracted artifacts live (required).
	CacheDir string
	// S3EndpointURL is an optional custom S3 endpoint (MinIO or any
	// S3-compatible store), addressed path-style. Empty means AWS S3 (or
	// whatever the AWS SDK's own configuration, such as
	// AWS_ENDPOINT_URL_S3, says).
	S3EndpointURL string
	// S3Region is the S3 region; empty means the AWS SDK's configured region,
	// else "us-east-1".
	S3Region string
	// S3Credentials are the credentials for S3; nil means the AWS SDK default
	// chain (environment variables, shared config and credentials files, SSO,
	// container and instance roles). sagehost's own client keys are never
	// used for S3.
	S3Credentials aws.CredentialsProvider
	// MaxArchiveBytes limits the bytes read from the source for one artifact
	// (the compressed size of a tar.gz). Default DefaultMaxArchiveBytes.
	MaxArchiveBytes int64
	// MaxExtractedBytes limits the total size of the files written for one
	// artifact. Default DefaultMaxExtractedBytes.
	MaxExtractedBytes int64
	// MaxFiles limits the number of entries (files, directories, links) of
	// one artifact. Default DefaultMaxFiles.
	MaxFiles int
	// Logger receives progress and cache events; nil means slog.Default().
	Logger *slog.Logger
}

// Source says where model data is: built from a container's ModelDataUrl or
// ModelDataSource.S3DataSource (see SourceFromContainer).
type Source struct {
	// URI is s3://bucket/key, file:///abs/path or a local path (relative
	// paths are resolved against the working directory).
	URI string
	// DataType is S3Object or S3Prefix; empty means S3Prefix when URI ends in
	// "/", else S3Object.
	DataType string
	// Compression is Gzip or None. Empty means Gzip for an S3Object in S3,
	// None for a prefix, and for a local file: extract it if it is gzip data,
	// else place it as one file.
	Compression string
}

// Stats counts what a Fetcher did since New.
type Stats struct {
	// Fetches is how many times model data was read from its source
	// (downloaded, copied or extracted).
	Fetches int64
	// CacheHits is how many fetches were answered by the index without
	// reading the model data.
	CacheHits int64
	// Shared is how many Fetch calls joined a fetch of the same source that
	// was already in flight.
	Shared int64
}

// Fetcher fetches model data into the cache. It is safe for concurrent use.
type Fetcher struct {
	cfg      Config
	log      *slog.Logger
	cacheDir string

	s3 s3client.Lazy

	mu       sync.Mutex
	inflight map[string]*call
	closed   bool
	wg       sync.WaitGroup

	idx *index

	fetches, hits, shared atomic.Int64
}

// call is one in-flight fetch shared by every Fetch of the same source.
type call struct {
	done   chan struct{}
	dir    string
	err    error
	refs   int
	cancel context.CancelFunc
}

// New returns a Fetcher using cfg. It creates the cache layout, removes
// staging leftovers of an earlier process and loads the index.
func New(cfg Config) (*Fetcher, error) {
	if cfg.CacheDir == "" {
		return nil, errors.New("artifact: Config.CacheDir is required")
	}
	if cfg.MaxArchiveBytes < 0 || cfg.MaxExtractedBytes < 0 || cfg.MaxFiles < 0 {
		return nil, errors.New("artifact: Config limits must not be negative")
	}
	if cfg.MaxArchiveBytes == 0 {
		cfg.MaxArchiveBytes = DefaultMaxArchiveBytes
	}
	if cfg.MaxExtractedBytes == 0 {
		cfg.MaxExtractedBytes = DefaultMaxExtractedBytes
	}
	if cfg.MaxFiles == 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dir, err := filepath.Abs(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("artifact: cache directory %q: %w", cfg.CacheDir, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("artifact: create cache directory: %w", err)
		}
	}
	// Staging directories of a process that crashed are never complete.
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("artifact: read cache staging directory: %w", err)
	}
	for _, e := range entries {
		if err := removeTree(filepath.Join(dir, "tmp", e.Name())); err != nil {
			cfg.Logger.Warn("artifact: cannot remove staging leftover", "path", e.Name(), "err", err)
		}
	}
	idx, err := loadIndex(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	return &Fetcher{
		cfg:      cfg,
		log:      cfg.Logger,
		cacheDir: dir,
		inflight: make(map[string]*call),
		idx:      idx,
		s3: s3client.Lazy{
			Config: s3client.Config{EndpointURL: cfg.S3EndpointURL, Region: cfg.S3Region, Credentials: cfg.S3Credentials},
			Log:    cfg.Logger, Component: "artifact",
			Options: []func(*s3.Options){func(o *s3.Options) {
				// Objects uploaded without a checksum are common; do not log each.
				o.DisableLogOutputChecksumValidationSkipped = true
			}},
		},
	}, nil
}

// Stats returns the Fetcher's counters.
func (f *Fetcher) Stats() Stats {
	return Stats{Fetches: f.fetches.Load(), CacheHits: f.hits.Load(), Shared: f.shared.Load()}
}

// Close cancels fetches in flight and waits until they have cleaned up.
// Fetch fails after Close.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	f.closed = true
	for _, c := range f.inflight {
		c.cancel()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// SourceFromContainer returns where a container's model data is, and false
// when the container has none. ModelDataSource.S3DataSource is used as given.
// A ModelDataUrl is an S3Object with Gzip compression (a model.tar.gz),
// except that a URL ending in "/" or naming a local directory is copied like
// an S3Prefix. A multi-model container (Mode "MultiModel") has no
// /opt/ml/model: its ModelDataUrl is the prefix under which each TargetModel
// is fetched on demand, so it reports false.
func SourceFromContainer(c sagehost.ContainerDefinition) (Source, bool) {
	if c.ModelDataSource != nil && c.ModelDataSource.S3DataSource != nil {
		s := c.ModelDataSource.S3DataSource
		return Source{URI: s.S3Uri, DataType: s.S3DataType, Compression: s.CompressionType}, true
	}
	if c.ModelDataUrl == "" || c.IsMultiModel() {
		return Source{}, false
	}
	u := c.ModelDataUrl
	if strings.HasSuffix(u, "/") {
		return Source{URI: u, DataType: DataTypeS3Prefix, Compression: CompressionNone}, true
	}
	if loc, err := parseSource(Source{URI: u}); err == nil && loc.local {
		if fi, err := os.Stat(loc.path); err == nil && fi.IsDir() {
			return Source{URI: u, DataType: DataTypeS3Prefix, Compression: CompressionNone}, true
		}
	}
	return Source{URI: u, DataType: DataTypeS3Object, Compression: CompressionGzip}, true
}

// Fetch makes the model data available as a local directory (what a
// container sees at /opt/ml/model) and returns its absolute path. The
// directory is shared by every user of the same content and is read-only:
// files are 0444 (0555 when executable), directories 0555. Concurrent
// fetches of one source share one download; when ctx ends, Fetch returns
// and the download is cancelled unless another caller still waits for it.
func (f *Fetcher) Fetch(ctx context.Context, src Source) (string, error) {
	loc, err := parseSource(src)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("fetch model data from %q: %w", src.URI, context.Cause(ctx))
	}
	id := loc.identity()

	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return "", fmt.Errorf("fetch model data from %q: artifact fetcher is closed", src.URI)
	}
	c, ok := f.inflight[id]
	if ok {
		c.refs++
		f.shared.Add(1)
	} else {
		workCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call{done: make(chan struct{}), refs: 1, cancel: cancel}
		f.inflight[id] = c
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer cancel()
			dir, err := f.fetch(workCtx, loc)
			f.mu.Lock()
			if f.inflight[id] == c {
				delete(f.inflight, id)
			}
			f.mu.Unlock()
			c.dir, c.err = dir, err
			close(c.done)
		}()
	}
	f.mu.Unlock()

	select {
	case <-c.done:
		return c.dir, c.err
	case <-ctx.Done():
		f.mu.Lock()
		c.refs--
		if c.refs == 0 {
			c.cancel()
			if f.inflight[id] == c {
				delete(f.inflight, id)
			}
		}
		f.mu.Unlock()
		return "", fmt.Errorf("fetch model data from %q: %w", src.URI, context.Cause(ctx))
	}
}

// fetch does one fetch: consult the index, else read the data.
func (f *Fetcher) fetch(ctx context.Context, loc *location) (string, error) {
	var (
		dir string
		err error
	)
	switch {
	case loc.local:
		dir, err = f.fetchLocal(ctx, loc)
	case loc.dataType == DataTypeS3Prefix:
		dir, err = f.fetchS3Prefix(ctx, loc)
	default:
		dir, err = f.fetchS3Object(ctx, loc)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (%w)", err, context.Canceled)
		}
		return "", withURI(loc.uri, err)
	}
	return dir, nil
}

// cached returns the cached directory of a source whose fingerprint is
// unchanged since it was last fetched.
func (f *Fetcher) cached(loc *location, fingerprint string) (string, bool) {
	e, ok := f.idx.get(loc.identity())
	if !ok || e.Fingerprint != fingerprint {
		return "", false
	}
	dir, ok := f.digestDir(e.Digest)
	if !ok {
		return "", false
	}
	f.hits.Add(1)
	f.log.Debug("artifact: cache hit", "url", loc.uri, "digest", e.Digest)
	return dir, true
}

// publish commits a filled stage as the artifact of its digest and records
// the source in the index; it returns the artifact's directory.
func (f *Fetcher) publish(st *stage, loc *location, fingerprint, digest string) (string, error) {
	dir, err := st.commit(digest)
	if err != nil {
		return "", err
	}
	f.remember(loc, fingerprint, digest)
	f.log.Info("artifact: model data ready", "url", loc.uri, "digest", digest)
	return dir, nil
}

// remember records a completed fetch in the index.
func (f *Fetcher) remember(loc *location, fingerprint, digest string) {
	if err := f.idx.put(loc.identity(), indexEntry{URI: loc.uri, Fingerprint: fingerprint, Digest: digest}); err != nil {
		// The artifact is complete; only the next restart pays for this.
		f.log.Warn("artifact: cannot save cache index", "err", err)
	}
}

// digestDir returns the directory of a digest and whether it is present.
func (f *Fetcher) digestDir(digest string) (string, bool) {
	if !validDigest(digest) {
		return "", false
	}
	dir := filepath.Join(f.cacheDir, "sha256", digest)
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return "", false
	}
	if fi.Mode().Perm() != 0o555 {
		// A crash between rename and chmod; the content is complete.
		_ = os.Chmod(dir, 0o555)
	}
	return dir, true
}

func validDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// fetchError is an error with a kind for errors.Is, a message saying what
// to fix and an optional cause.
type fetchError struct {
	kind    error
	msg     string
	cause   error
	withURI bool // msg already names the URL
}

func (e *fetchError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *fetchError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func errorf(kind error, cause error, format string, args ...any) error {
	return &fetchError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// withURI prefixes err with the URL unless its message already names it.
func withURI(uri string, err error) error {
	var fe *fetchError
	if errors.As(err, &fe) && fe.withURI {
		return err
	}
	return fmt.Errorf("model data from URL %q: %w", uri, err)
}

// downloadError is SageMaker's message for model data that cannot be read.
func downloadError(kind error, uri, what string, cause error) error {
	return &fetchError{
		kind:    kind,
		msg:     fmt.Sprintf("Failed to download model data from URL: %q. Please ensure that %s", uri, what),
		cause:   cause,
		withURI: true,
	}
}
