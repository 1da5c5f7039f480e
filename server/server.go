// Package server builds a whole sagehost process from a Config: the data
// directory, the SQLite store, credentials, the artifact fetcher, the
// process backend, the reconciler, the invoke router and the HTTP listener
// that serves both AWS protocols. Tests start it on 127.0.0.1:0.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/api"
	"github.com/sagehost/sagehost/artifact"
	"github.com/sagehost/sagehost/async"
	"github.com/sagehost/sagehost/auth"
	"github.com/sagehost/sagehost/backend/docker"
	"github.com/sagehost/sagehost/backend/process"
	"github.com/sagehost/sagehost/capture"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/gpu"
	"github.com/sagehost/sagehost/hosting"
	"github.com/sagehost/sagehost/internal/fastserve"
	"github.com/sagehost/sagehost/internal/s3client"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/metrics"
	"github.com/sagehost/sagehost/modelserver"
	"github.com/sagehost/sagehost/store/sqlite"
)

// DefaultListen is where sagehost listens unless told otherwise: loopback,
// and not 8080, which model containers use.
const DefaultListen = "127.0.0.1:7070"

// Config is everything `sagehost serve` can be told.
type Config struct {
	// Listen is the HOST:PORT of the listener.
	Listen string
	// DataDir holds the store, model data cache, instance state and logs.
	DataDir string
	// CredentialsFile is an AWS shared-credentials file of the accepted
	// keys; empty means the development key pair (loopback only).
	CredentialsFile string
	// ModelTimeout bounds each call to a model container.
	ModelTimeout time.Duration
	// StartupTimeout is how long a new container has to pass /ping when
	// its variant does not say.
	StartupTimeout time.Duration
	// S3EndpointURL points model data downloads at an S3-compatible store.
	S3EndpointURL string
	// S3Region is the region of the S3 client.
	S3Region string
	// S3Credentials are the credentials of the S3 client; nil means the AWS
	// SDK's default chain (AWS_* variables, shared config).
	S3Credentials aws.CredentialsProvider
	// PublicMetrics serves /metrics to anyone; otherwise only to
	// SigV4-signed requests, each seeing its own account's series.
	PublicMetrics bool
	// Example deploys the built-in example model as endpoint "example".
	Example bool
	// DockerHost is the container engine (Docker, or Podman's Docker API)
	// for models whose Image is a container image: "" means DOCKER_HOST or
	// the default socket.
	DockerHost string
	// GPUs lists the GPU devices instances may use: "" discovers them
	// (nvidia-smi, /proc/driver/nvidia, /dev/nvidiaN), "none" uses none,
	// "0,1" names them.
	GPUs string
	// CaptureFlushInterval is how long captured records wait for more
	// before their file is written (default 30 s, at most a minute).
	CaptureFlushInterval time.Duration
	// ModelCacheBytes bounds the models loaded in one instance of a
	// multi-model endpoint (the sum of their sizes); 0 means 90 % of the
	// instance type's memory.
	ModelCacheBytes int64
	// HTTPServer is the HTTP/1.1 server implementation: "fasthttp" (the
	// default, the cheaper per request, see BENCHMARKS.md) or "net/http".
	HTTPServer string
	// PortMin and PortMax bound the ports given to model processes.
	PortMin, PortMax int
	// Announce receives a plain-text line for people when the example
	// endpoint is ready (stdout for the command line); nil for none.
	Announce io.Writer
	Logger   *slog.Logger
}

// HTTP server implementations (Config.HTTPServer).
const (
	HTTPServerFast = "fasthttp"
	HTTPServerNet  = "net/http"
)

// maxRequestBodyBytes is the largest request body the server reads: the
// largest any operation takes (a control-plane request); the handler
// refuses anything over its own operation's limit with its own error.
const maxRequestBodyBytes = api.MaxControlBodyBytes

// streamsResponse selects the requests whose responses are streamed as
// they are written: followed logs and response streams.
func streamsResponse(method, path []byte) bool {
	return bytes.HasPrefix(path, []byte("/logs/")) || bytes.HasSuffix(path, []byte("/invocations-response-stream"))
}

// DefaultDataDir returns $XDG_DATA_HOME/sagehost, or ~/.local/share/sagehost.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sagehost")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "sagehost")
	}
	return ".sagehost"
}

// Server is a running sagehost.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	srv     httpServer // *http.Server or *fastserve.Server, once serving
	store   *sqlite.DB
	router  *invoke.Router
	metrics *metrics.Metrics
	docker  *docker.Backend
	capture *capture.Writer
	hosting *hosting.Manager
	async   *async.Manager
	cancel  context.CancelFunc
	served  chan error
	devKeys bool
}

// httpServer is what Server needs of either HTTP server implementation.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// IsLoopback reports whether a listen address only accepts local
// connections.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start opens the data directory, recovers endpoints, and serves until
// Close. It returns once the listener accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	switch cfg.HTTPServer {
	case "":
		cfg.HTTPServer = HTTPServerFast
	case HTTPServerFast, HTTPServerNet:
	default:
		return nil, fmt.Errorf("HTTP server %q: want %s or %s", cfg.HTTPServer, HTTPServerFast, HTTPServerNet)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, served: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			s.Close(context.Background())
		}
	}()
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	keys, err := s.credentials(bg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s.store, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "sagehost.db"))
	if err != nil {
		return nil, err
	}
	fetcher, err := artifact.New(artifact.Config{
		CacheDir:      filepath.Join(cfg.DataDir, "artifacts"),
		S3EndpointURL: cfg.S3EndpointURL,
		S3Region:      cfg.S3Region,
		S3Credentials: cfg.S3Credentials,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("model data: %w", err)
	}
	backend, err := process.New(process.Config{
		StateDir: filepath.Join(cfg.DataDir, "process"),
		PortMin:  cfg.PortMin, PortMax: cfg.PortMax,
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("process backend: %w", err)
	}
	containers, err := docker.New(ctx, docker.Config{
		Host:     cfg.DockerHost,
		StateDir: filepath.Join(cfg.DataDir, "docker"),
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("container backend: %w", err)
	}
	s.docker = containers
	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.router = invoke.NewRouter(cfg.ModelTimeout, cfg.Logger)
	s.metrics = metrics.New()
	s.capture, err = capture.New(capture.Config{
		S3EndpointURL: cfg.S3EndpointURL, S3Region: cfg.S3Region, S3Credentials: cfg.S3Credentials,
		FlushInterval: cfg.CaptureFlushInterval,
		Logger:        cfg.Logger,
		OnWritten: func(k capture.Key, n int) {
			s.metrics.CaptureWritten(sagehost.EndpointKey{Account: k.Account, Region: k.Region, Name: k.Endpoint}, k.Variant, n)
		},
		OnDropped: func(k capture.Key, n int) {
			s.metrics.CaptureDropped(sagehost.EndpointKey{Account: k.Account, Region: k.Region, Name: k.Endpoint}, k.Variant, n)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("data capture: %w", err)
	}
	logDir := filepath.Join(cfg.DataDir, "logs") // written by hosting, served by api
	gpus := gpu.NewAllocator(gpu.Parse(ctx, cfg.GPUs))
	if devs := gpus.Devices(); len(devs) > 0 {
		s.log.Info("GPUs for instances of GPU types", "devices", devs)
	}
	s.hosting = hosting.New(hosting.Config{
		Store:            s.store,
		Backends:         []sagehost.Backend{backend, containers},
		ChooseBackend:    chooseBackend,
		ModelData:        modelData{fetcher},
		Router:           s.router,
		Metrics:          s.metrics,
		Capture:          s.capture,
		GPUs:             gpus,
		LogDir:           logDir,
		Logger:           cfg.Logger,
		StartupTimeout:   cfg.StartupTimeout,
		ResolveImage:     resolveImage,
		MultiModelBudget: cfg.ModelCacheBytes,
		OnInService:      s.announce,
	})
	s.async = async.New(async.Config{
		Store: s.store, Router: s.router, Metrics: s.metrics, Logger: cfg.Logger,
		S3: s3client.Config{EndpointURL: cfg.S3EndpointURL, Region: cfg.S3Region, Credentials: cfg.S3Credentials},
	})
	svc := &control.Service{Store: s.store, Notifier: s.hosting, Logger: cfg.Logger}
	handler := &api.Handler{
		Auth:    &auth.Verifier{Keys: keys, Service: auth.DefaultService},
		Control: svc,
		Router:  s.router,
		Async:   s.async,
		Logger:  cfg.Logger,

		Metrics:       s.metrics,
		PublicMetrics: cfg.PublicMetrics,
		LogDir:        logDir,
	}
	if err := s.hosting.Start(ctx); err != nil {
		return nil, fmt.Errorf("recover endpoints: %w", err)
	}
	if err := s.async.Start(ctx); err != nil {
		return nil, err
	}
	switch cfg.HTTPServer {
	case HTTPServerNet:
		s.srv = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		}
	default:
		s.srv = fastserve.New(fastserve.Config{
			Handler:      handler,
			Streaming:    streamsResponse,
			MaxBodyBytes: maxRequestBodyBytes,
			ReadTimeout:  5 * time.Minute, // a whole request, a 6 MiB body over a slow link included
			IdleTimeout:  120 * time.Second,
			Logger:       cfg.Logger,
		})
	}
	go func() { s.served <- s.srv.Serve(s.ln) }()
	s.log.Info("sagehost listening", "url", s.URL(), "data_dir", cfg.DataDir)
	if cfg.Example {
		account := auth.DevCredential.Account
		if first, ok := keys.First(); ok {
			account = first.Account
		}
		if err := s.createExample(ctx, svc, account); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// credentials loads the accepted keys: the credentials file (watched for
// changes) or, on a loopback listener only, the development key pair.
func (s *Server) credentials(ctx context.Context) (*auth.Keyring, error) {
	if s.cfg.CredentialsFile != "" {
		keys, err := auth.WatchFile(ctx, s.cfg.CredentialsFile, 2*time.Second, s.log)
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		s.log.Info("accepting the keys of the credentials file", "file", s.cfg.CredentialsFile, "keys", keys.Len())
		return keys, nil
	}
	if !IsLoopback(s.cfg.Listen) {
		return nil, fmt.Errorf("refusing to listen on %s without --credentials: with no credentials file sagehost accepts only the public development key pair, which is safe on a loopback address alone", s.cfg.Listen)
	}
	dev := auth.DevCredential
	s.devKeys = true
	s.log.Warn("no --credentials file: accepting the development key pair on loopback only",
		"aws_access_key_id", dev.AccessKeyID, "aws_secret_access_key", dev.SecretAccessKey, "account", dev.Account)
	return auth.NewKeyring(dev)
}

// InvokeCommand returns the AWS CLI command that invokes an endpoint, with
// the development keys when sagehost accepts them.
func (s *Server) InvokeCommand(key sagehost.EndpointKey) string {
	env := ""
	if s.devKeys {
		env = fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s ", auth.DevCredential.AccessKeyID, auth.DevCredential.SecretAccessKey)
	}
	contentType, body := "application/json", `{"instances": [1, 2, 3]}`
	if s.cfg.Example && key.Name == ExampleEndpoint {
		contentType, body = "text/csv", exampleBody()
	}
	return fmt.Sprintf(`%saws sagemaker-runtime invoke-endpoint --endpoint-url %s --region %s --endpoint-name %s --content-type %s --body '%s' /dev/stdout`,
		env, s.URL(), key.Region, key.Name, contentType, body)
}

// announce logs how to invoke an endpoint that became InService.
func (s *Server) announce(key sagehost.EndpointKey) {
	cmd := s.InvokeCommand(key)
	s.log.Info("endpoint InService", "endpoint", key.Name, "account", key.Account, "region", key.Region, "invoke_with", cmd)
	if s.cfg.Example && key.Name == ExampleEndpoint && s.cfg.Announce != nil {
		fmt.Fprintf(s.cfg.Announce, "\nThe example endpoint is InService: an XGBoost model of house prices (in $1000s) from\n"+
			"floor area (m²), bedrooms, age (years) and distance to the centre (km).\nInvoke it with the AWS CLI:\n\n  %s\n\n", cmd)
	}
}

// Addr returns the listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the base URL clients use as their endpoint URL.
func (s *Server) URL() string {
	addr := s.Addr()
	if strings.HasPrefix(addr, "[::]") || strings.HasPrefix(addr, "0.0.0.0") {
		_, port, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + addr
}

// Wait blocks until the HTTP server stops.
func (s *Server) Wait() error {
	err := <-s.served
	s.served <- err
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving, stops every model instance and closes the store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.srv != nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down http: %w", err))
		}
		cancel()
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.async != nil {
		// Requests cut short stay queued for the next start.
		if err := s.async.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.hosting != nil {
		if err := s.hosting.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.router != nil {
		s.router.Close()
	}
	if s.capture != nil {
		// What the endpoints captured is written before sagehost exits.
		if err := s.capture.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush data capture: %w", err))
		}
	}
	if s.docker != nil {
		s.docker.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	return errors.Join(errs...)
}

// chooseBackend runs executables and built-in images as local processes,
// and every other image (a container image reference) on the container
// engine.
func chooseBackend(image string) string {
	if _, builtin := modelserver.Lookup(image); builtin || filepath.IsAbs(image) {
		return process.Name
	}
	return docker.Name
}

// resolveImage runs built-in images ("sagehost/NAME") as
// `sagehost model-server NAME serve` from this very executable.
func resolveImage(image string) (string, []string) {
	name, ok := modelserver.Lookup(image)
	if !ok {
		return image, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return image, nil // Start then fails with a clear error about the image
	}
	return exe, []string{"model-server", name}
}

// modelData adapts the artifact fetcher to hosting.ModelData.
type modelData struct{ f *artifact.Fetcher }

func (m modelData) FetchTarget(ctx context.Context, prefix, target string) (string, int64, error) {
	return m.f.FetchTarget(ctx, prefix, target)
}

func (m modelData) Root() string { return m.f.Root() }

// FetchBytes reads one object (s3://, file:// or a path) through the
// artifact cache.
func (m modelData) FetchBytes(ctx context.Context, uri string) ([]byte, error) {
	dir, err := m.f.Fetch(ctx, artifact.Source{URI: uri, DataType: artifact.DataTypeS3Object, Compression: artifact.CompressionNone})
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		return nil, fmt.Errorf("read %s: expected one file in %s", uri, dir)
	}
	return os.ReadFile(filepath.Join(dir, entries[0].Name()))
}

func (m modelData) Fetch(ctx context.Context, c sagehost.ContainerDefinition) (string, error) {
	src, ok := artifact.SourceFromContainer(c)
	if !ok {
		return "", nil
	}
	return m.f.Fetch(ctx, src)
}
