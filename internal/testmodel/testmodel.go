// Package testmodel is a small model server that speaks the SageMaker model
// container contract: GET /ping and POST /invocations on
// $SAGEMAKER_BIND_TO_PORT (default 8080). It has no model; /invocations
// answers with a JSON report of what the container saw (headers, body,
// environment, model files), and knobs in the request body or the
// environment make it sleep, fail, crash or stream, so that tests of
// backends and of the invoke path need no real images.
//
// Environment:
//
//	SAGEMAKER_BIND_TO_PORT     port to listen on (0.0.0.0), default 8080
//	SM_MODEL_DIR               model directory, default /opt/ml/model
//	TESTMODEL_NAME             name reported in every answer
//	TESTMODEL_CONTAINER        reported as "container" in every answer (to
//	                           tell the containers of one endpoint apart)
//	TESTMODEL_PING_DELAY       e.g. "2s": /ping answers 503 until then
//	TESTMODEL_EXIT_AT_START    exit at once with this code (after a line on stderr)
//	TESTMODEL_IGNORE_SIGTERM   "1": log SIGTERM and keep running
//
// Request knobs, in a JSON object body sent with Content-Type
// application/json:
//
//	{"testmodel": {"sleep": "2s", "status": 500, "message": "text body",
//	  "crash": true, "bytes": 1024, "content_type": "text/csv",
//	  "stream_chunks": 3, "chunk_delay": "10ms"}}
//
// # Multi-model mode
//
// With SAGEMAKER_MULTI_MODEL=true (what SageMaker sets for a container of
// Mode MultiModel) it also speaks the multi-model container API, in the
// shapes of Multi Model Server (MMS). The platform extracts each model
// itself and names it; the server only keeps a table of loaded models:
//
//	POST   /models                     {"model_name": "m", "url": "/dir"} (or
//	                                   ?model_name=&url=): 200
//	                                   {"status": "Model \"m\" registered"};
//	                                   409 loaded (or loading) already; 507 when
//	                                   TESTMODEL_MAX_MODELS are loaded; 500 when
//	                                   url is not a directory or holds FAIL_LOAD
//	GET    /models?limit=&next_page_token=
//	                                   {"models": [{"modelName", "modelUrl"}],
//	                                   "nextPageToken": "2"}, sorted by name,
//	                                   limit 1-100 (default 100), no token on
//	                                   the last page
//	GET    /models/{model_name}        {"modelName", "modelUrl"}; 404
//	DELETE /models/{model_name}        200 {"status": "Model \"m\" unregistered"}; 404
//	POST   /models/{model_name}/invoke as /invocations, the report adding the
//	                                   model, the X-Amzn-SageMaker-Target-Model
//	                                   header, the loaded models and the files
//	                                   of the model's url; 404
//
// Errors are MMS's JSON: {"code": 404, "type": "ModelNotFoundException",
// "message": "Model not found: m"}. POST /invocations keeps answering (with
// SM_MODEL_DIR's files). More environment for this mode:
//
//	TESTMODEL_MAX_MODELS       N: a load answers 507 while N models are
//	                           loaded (or loading), to test unloading
//	TESTMODEL_LOAD_DELAY       e.g. "2s": a load takes this long (cold starts)
//
// A model directory holding a file FAIL_LOAD fails its load with 500 and
// the file's content (trimmed) as the message. Each load, unload and invoke
// logs one line.
package testmodel

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sagehost/sagehost/modelserver/httprec"
	"github.com/sagehost/sagehost/modelserver/mms"
	"github.com/sagehost/sagehost/modelserver/runner"
)

// Environment variables the test model reads.
const (
	EnvName          = "TESTMODEL_NAME"
	EnvPingDelay     = "TESTMODEL_PING_DELAY"
	EnvExitAtStart   = "TESTMODEL_EXIT_AT_START"
	EnvIgnoreSIGTERM = "TESTMODEL_IGNORE_SIGTERM"
	EnvBindToPort    = runner.EnvBindToPort
	EnvModelDir      = "SM_MODEL_DIR"
	EnvContainer     = "TESTMODEL_CONTAINER"
	// EnvMultiModel is "true" for a container of a multi-model endpoint.
	EnvMultiModel = "SAGEMAKER_MULTI_MODEL"
	EnvMaxModels  = "TESTMODEL_MAX_MODELS"
	EnvLoadDelay  = "TESTMODEL_LOAD_DELAY"
	// EnvFailStatus (an HTTP status) makes every invocation fail with it.
	EnvFailStatus = "TESTMODEL_FAIL_STATUS"
)

const (
	// DefaultPort is the port of a container that gets no SAGEMAKER_BIND_TO_PORT.
	DefaultPort = runner.DefaultPort
	// DefaultModelDir is where SageMaker puts the model data in a container.
	DefaultModelDir = "/opt/ml/model"
	// HeaderCustomAttributes is echoed back as "echo:" + its value.
	HeaderCustomAttributes = "X-Amzn-SageMaker-Custom-Attributes"
	// HeaderSessionID carries a stateful session's id (NEW_SESSION opens
	// one: the answer names it, "ID; Expires=TIME").
	HeaderSessionID = "X-Amzn-SageMaker-Session-Id"
	// HeaderClosedSessionID answers a request with the close_session knob.
	HeaderClosedSessionID = "X-Amzn-SageMaker-Closed-Session-Id"
	// HeaderTargetModel carries the client's TargetModel to a multi-model
	// invoke.
	HeaderTargetModel = "X-Amzn-SageMaker-Target-Model"
	// FailLoadFile in a model directory makes its load fail.
	FailLoadFile = "FAIL_LOAD"
	// ExitAtStartLine is the stderr line of TESTMODEL_EXIT_AT_START.
	ExitAtStartLine = "testmodel: failing at start as asked"
	// CrashExitCode is the exit code of the crash knob.
	CrashExitCode = 3
)

const (
	maxReportedFile   = 4 << 10
	defaultAnswerType = "application/json"
)

// Config configures a test model server.
type Config struct {
	Name string
	// Port is reported in answers; Main listens on it.
	Port int
	// PingDelay: /ping answers 503 until this long after NewHandler.
	PingDelay time.Duration
	// ModelDir is the directory whose files answers list ("" for none).
	ModelDir string
	// Container is reported in every answer (TESTMODEL_CONTAINER).
	Container string
	// MultiModel serves the multi-model API (SAGEMAKER_MULTI_MODEL=true).
	MultiModel bool
	// MaxModels > 0: a load answers 507 while this many models are loaded.
	MaxModels int
	// LoadDelay: each load takes this long.
	LoadDelay time.Duration
	// FailStatus, when set, answers every invocation with this status.
	FailStatus int
	// Log receives one line per request (nil: discarded).
	Log io.Writer
}

// ConfigFromEnv reads the Config from the process environment.
func ConfigFromEnv() (Config, error) {
	cfg := Config{Name: os.Getenv(EnvName), Port: DefaultPort, Log: os.Stdout, Container: os.Getenv(EnvContainer),
		MultiModel: strings.EqualFold(os.Getenv(EnvMultiModel), "true")}
	p, err := runner.Port()
	if err != nil {
		return cfg, err
	}
	cfg.Port = p
	if v := os.Getenv(EnvPingDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("invalid %s %q: %w", EnvPingDelay, v, err)
		}
		cfg.PingDelay = d
	}
	if v := os.Getenv(EnvLoadDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("invalid %s %q: %w", EnvLoadDelay, v, err)
		}
		cfg.LoadDelay = d
	}
	if v := os.Getenv(EnvFailStatus); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 999 {
			return cfg, fmt.Errorf("invalid %s %q", EnvFailStatus, v)
		}
		cfg.FailStatus = n
	}
	if v := os.Getenv(EnvMaxModels); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("invalid %s %q", EnvMaxModels, v)
		}
		cfg.MaxModels = n
	}
	if v, ok := os.LookupEnv(EnvModelDir); ok {
		cfg.ModelDir = v
	} else if fi, err := os.Stat(DefaultModelDir); err == nil && fi.IsDir() {
		cfg.ModelDir = DefaultModelDir
	}
	return cfg, nil
}

// Main runs the test model server as the whole process, configured from the
// environment, and exits: 0 after SIGTERM or SIGINT, the asked code for
// TESTMODEL_EXIT_AT_START, 3 for the crash knob, 1 on a setup error.
func Main() {
	os.Exit(run())
}

func run() int {
	if v := os.Getenv(EnvExitAtStart); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil {
			code = 1
		}
		fmt.Fprintln(os.Stderr, ExitAtStartLine)
		return code
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testmodel:", err)
		return 1
	}
	return runner.Serve(cfg.Port, runner.Options{
		Handler:         NewHandler(cfg),
		ShutdownTimeout: 5 * time.Second,
		Log:             serverLog{cfg},
		IgnoreSIGTERM: func() bool {
			if os.Getenv(EnvIgnoreSIGTERM) != "1" {
				return false
			}
			fmt.Fprintln(os.Stdout, "testmodel: ignoring SIGTERM as asked")
			return true
		},
	})
}

// serverLog writes the server's start, stop and failures.
type serverLog struct{ cfg Config }

func (l serverLog) Serving(addr string, ln net.Listener) {
	mode := ""
	if l.cfg.MultiModel {
		mode = ", multi-model"
	}
	fmt.Fprintf(os.Stdout, "testmodel: %q listening on %s (pid %d%s)\n", l.cfg.Name, addr, os.Getpid(), mode)
}

func (serverLog) ShuttingDown(sig os.Signal) {
	fmt.Fprintf(os.Stdout, "testmodel: received %v, shutting down\n", sig)
}

func (serverLog) Stopped() { fmt.Fprintln(os.Stdout, "testmodel: stopped") }

func (serverLog) Failed(what string, err error) { fmt.Fprintln(os.Stderr, "testmodel:", err) }

// Knobs are the per-request behaviour knobs, read from the "testmodel"
// member of a JSON request body.
type Knobs struct {
	Sleep   string `json:"sleep,omitempty"`
	Status  int    `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Crash   bool   `json:"crash,omitempty"`
	Bytes   int    `json:"bytes,omitempty"`
	// CrashAfter, with Bytes, exits (CrashExitCode) once that many of
	// the Bytes announced are sent.
	CrashAfter   int    `json:"crash_after,omitempty"`
	ContentType  string `json:"content_type,omitempty"`
	StreamChunks int    `json:"stream_chunks,omitempty"`
	ChunkDelay   string `json:"chunk_delay,omitempty"`
	// ChunkGate, with StreamChunks, holds every chunk after the first
	// until a file of this path exists.
	ChunkGate string `json:"chunk_gate,omitempty"`
	// CloseSession closes the request's session (stateful sessions: a
	// request whose session id is NEW_SESSION opens one).
	CloseSession bool `json:"close_session,omitempty"`
}

// Report is the JSON answer of /invocations and of a multi-model invoke.
// The model fields are set by a multi-model invoke only; ModelFiles then
// lists the files of the invoked model's url.
type Report struct {
	Name              string              `json:"name"`
	PID               int                 `json:"pid"`
	Hostname          string              `json:"hostname"`
	Port              int                 `json:"port"`
	Cwd               string              `json:"cwd"`
	Body              string              `json:"body"`
	ContentType       string              `json:"content_type"`
	Accept            string              `json:"accept"`
	Headers           map[string][]string `json:"headers"`
	Env               map[string]string   `json:"env"`
	EnvNames          []string            `json:"env_names"`
	ModelFiles        []string            `json:"model_files"`
	ModelFileContents map[string]string   `json:"model_file_contents"`
	// Container is TESTMODEL_CONTAINER.
	Container string `json:"container,omitempty"`

	ModelName string `json:"model_name,omitempty"`
	ModelURL  string `json:"model_url,omitempty"`
	// TargetModel is the X-Amzn-SageMaker-Target-Model header.
	TargetModel string `json:"target_model,omitempty"`
	// ModelLoadedAt is when the invoked model's load finished.
	ModelLoadedAt *time.Time `json:"model_loaded_at,omitempty"`
	// ModelInvocations counts the invoked model's invocations since its
	// load, this one included.
	ModelInvocations int64 `json:"model_invocations,omitempty"`
	// LoadedModels are the names loaded right now, sorted.
	LoadedModels []string `json:"loaded_models,omitempty"`
	// Loads and Unloads count the successful loads and unloads so far.
	Loads   int64 `json:"loads,omitempty"`
	Unloads int64 `json:"unloads,omitempty"`
}

// Chunk is one line of a streamed answer.
type Chunk struct {
	Name  string `json:"name"`
	Chunk int    `json:"chunk"`
	Of    int    `json:"of"`
}

type handler struct {
	cfg    Config
	ready  time.Time
	logMu  sync.Mutex
	models *mms.Table[struct{}]
}

// NewHandler returns the test model's HTTP handler.
func NewHandler(cfg Config) http.Handler {
	h := &handler{cfg: cfg, ready: time.Now().Add(cfg.PingDelay), models: mms.NewTable[struct{}]()}
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", h.ping)
	mux.HandleFunc("POST /invocations", h.invocations)
	if cfg.MultiModel {
		h.multiModelRoutes(mux)
	}
	return h.logged(mux)
}

func (h *handler) ping(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if time.Now().Before(h.ready) {
		http.Error(w, "testmodel: starting", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) invocations(w http.ResponseWriter, r *http.Request) {
	if h.cfg.FailStatus != 0 {
		http.Error(w, "testmodel: failing as configured", h.cfg.FailStatus)
		return
	}
	h.answer(w, r, nil)
}

// answer serves an invocation: of the single model (m nil) or of the
// multi-model entry m.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, m *invoked) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "testmodel: reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	knobs, err := parseKnobs(r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, "testmodel: "+err.Error(), http.StatusBadRequest)
		return
	}
	if v := r.Header.Get(HeaderCustomAttributes); v != "" {
		w.Header().Set(HeaderCustomAttributes, "echo:"+v)
	}
	switch sid := r.Header.Get(HeaderSessionID); {
	case sid == "NEW_SESSION":
		var b [8]byte
		rand.Read(b[:])
		w.Header().Set(HeaderSessionID, hex.EncodeToString(b[:])+"; Expires="+time.Now().Add(20*time.Minute).UTC().Format("2006-01-02T15:04:05Z"))
	case sid != "" && knobs.CloseSession:
		w.Header().Set(HeaderClosedSessionID, sid)
	}
	if knobs.Sleep != "" {
		d, err := time.ParseDuration(knobs.Sleep)
		if err != nil {
			http.Error(w, "testmodel: bad sleep: "+err.Error(), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if knobs.Crash {
		fmt.Fprintln(os.Stderr, "testmodel: crashing as asked")
		os.Exit(CrashExitCode)
	}
	status := http.StatusOK
	if knobs.Status != 0 {
		if knobs.Status < 100 || knobs.Status > 999 {
			http.Error(w, "testmodel: bad status", http.StatusBadRequest)
			return
		}
		status = knobs.Status
	}
	if knobs.Message != "" {
		ct := knobs.ContentType
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, knobs.Message)
		return
	}
	if knobs.Bytes > 0 {
		ct := knobs.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(knobs.Bytes))
		w.WriteHeader(status)
		if knobs.CrashAfter > 0 {
			io.Copy(w, io.LimitReader(xs{}, int64(knobs.CrashAfter)))
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond) // let the bytes leave
			os.Exit(CrashExitCode)
		}
		io.Copy(w, io.LimitReader(xs{}, int64(knobs.Bytes)))
		return
	}
	ct := answerType(knobs.ContentType, r.Header.Get("Accept"))
	w.Header().Set("Content-Type", ct)
	if knobs.StreamChunks > 0 {
		h.stream(w, r, status, knobs)
		return
	}
	rep := h.report(r, body, m)
	b, _ := json.Marshal(rep)
	w.WriteHeader(status)
	w.Write(b)
}

func (h *handler) stream(w http.ResponseWriter, r *http.Request, status int, knobs Knobs) {
	var delay time.Duration
	if knobs.ChunkDelay != "" {
		delay, _ = time.ParseDuration(knobs.ChunkDelay)
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(status)
	for i := range knobs.StreamChunks {
		if i > 0 && delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		for i > 0 && knobs.ChunkGate != "" {
			if _, err := os.Stat(knobs.ChunkGate); err == nil {
				break
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		b, _ := json.Marshal(Chunk{Name: h.cfg.Name, Chunk: i, Of: knobs.StreamChunks})
		if _, err := w.Write(append(b, '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// answerType chooses the Content-Type of a report: the content_type knob,
// else Accept when it is application/json or text/*, else application/json.
func answerType(knob, accept string) string {
	if knob != "" {
		return knob
	}
	if accept != "" && !strings.Contains(accept, ",") {
		mt, _, err := mime.ParseMediaType(accept)
		if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "text/") && mt != "text/*")) {
			return accept
		}
	}
	return defaultAnswerType
}

func parseKnobs(contentType string, body []byte) (Knobs, error) {
	var k Knobs
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return k, nil
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return k, nil
	}
	var doc struct {
		Testmodel *json.RawMessage `json:"testmodel"`
	}
	if json.Unmarshal(trimmed, &doc) != nil || doc.Testmodel == nil {
		return k, nil // not for us: an ordinary JSON payload
	}
	if err := json.Unmarshal(*doc.Testmodel, &k); err != nil {
		return k, fmt.Errorf("bad testmodel knobs: %w", err)
	}
	return k, nil
}

func (h *handler) report(r *http.Request, body []byte, m *invoked) Report {
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	rep := Report{
		Name:              h.cfg.Name,
		PID:               os.Getpid(),
		Hostname:          host,
		Port:              h.cfg.Port,
		Cwd:               cwd,
		Body:              string(body),
		ContentType:       r.Header.Get("Content-Type"),
		Accept:            r.Header.Get("Accept"),
		Headers:           map[string][]string(r.Header.Clone()),
		Env:               map[string]string{},
		EnvNames:          []string{},
		ModelFiles:        []string{},
		ModelFileContents: map[string]string{},
		Container:         h.cfg.Container,
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		rep.EnvNames = append(rep.EnvNames, k)
		if strings.HasPrefix(k, "SAGEMAKER_") || strings.HasPrefix(k, "SM_") || strings.HasPrefix(k, "TESTMODEL_") || strings.HasPrefix(k, "CUDA_") || strings.HasPrefix(k, "NVIDIA_") {
			rep.Env[k] = v
		}
	}
	sort.Strings(rep.EnvNames)
	dir := h.cfg.ModelDir
	if m != nil {
		m.fill(&rep)
		dir = m.url
	}
	if dir != "" {
		rep.ModelFiles, rep.ModelFileContents = modelFiles(dir)
	}
	return rep
}

// modelFiles lists the files under dir (slash-separated, sorted) and the
// contents of the small ones.
func modelFiles(dir string) ([]string, map[string]string) {
	files, contents := []string{}, map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		files = append(files, rel)
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() < maxReportedFile {
			if b, err := os.ReadFile(p); err == nil {
				contents[rel] = string(b)
			}
		}
		return nil
	})
	sort.Strings(files)
	return files, contents
}

// logged writes one line per request to cfg.Log.
func (h *handler) logged(next http.Handler) http.Handler {
	if h.cfg.Log == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := httprec.New(w)
		next.ServeHTTP(rec, r)
		h.logMu.Lock()
		defer h.logMu.Unlock()
		fmt.Fprintf(h.cfg.Log, "testmodel: %s %s %d %dB in %s\n", r.Method, r.URL.Path, rec.Status, rec.Bytes, time.Since(start).Round(time.Microsecond))
	})
}

// xs is an endless reader of 'x'.
type xs struct{}

func (xs) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
