package xgboost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sagehost/sagehost/internal/mediatype"
	"github.com/sagehost/sagehost/modelserver/httprec"
	"github.com/sagehost/sagehost/modelserver/mms"
	"github.com/sagehost/sagehost/modelserver/runner"
)

// Environment variables the server reads. All but the first two are
// conventions of SageMaker's XGBoost container, set through the model's
// Environment.
const (
	EnvModelDir         = "SM_MODEL_DIR"          // default /opt/ml/model
	EnvBindToPort       = runner.EnvBindToPort    // default 8080
	EnvMultiModel       = "SAGEMAKER_MULTI_MODEL" // "true": the multi-model API
	EnvInferenceOutput  = "SAGEMAKER_INFERENCE_OUTPUT"
	EnvDefaultAccept    = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
	EnvBatch            = "SAGEMAKER_BATCH"
	EnvMaxContentLength = "MAX_CONTENT_LENGTH"
)

const (
	// DefaultModelDir is where SageMaker extracts the model data.
	DefaultModelDir = "/opt/ml/model"
	// DefaultPort is the port of a container that gets no SAGEMAKER_BIND_TO_PORT.
	DefaultPort = runner.DefaultPort
	// DefaultMaxContentLength is the container's default MAX_CONTENT_LENGTH.
	DefaultMaxContentLength = 6 * 1024 * 1024
)

// Request content types besides the answer types of output.go.
const (
	mimeLibSVM   = "text/libsvm"
	mimeXLibSVM  = "text/x-libsvm"
	mimeRecordIO = "application/x-recordio-protobuf"
)

// Config is the server's behaviour beyond the model.
type Config struct {
	// DefaultAccept answers requests without an Accept (or with */*);
	// "" means text/csv.
	DefaultAccept string
	// InferenceOutput are the selectable inference output keys
	// (SAGEMAKER_INFERENCE_OUTPUT, e.g. predicted_label, probability);
	// none means plain predictions.
	InferenceOutput []string
	// Batch writes CSV answers as batch transform does (SAGEMAKER_BATCH).
	Batch bool
	// MaxContentLength bounds a request body; 0 means 6 MiB.
	MaxContentLength int64
	// Logger gets one line per request; nil discards them.
	Logger *slog.Logger
}

// ConfigFromEnv reads the Config from the process environment.
func ConfigFromEnv() (Config, error) {
	cfg := Config{DefaultAccept: os.Getenv(EnvDefaultAccept), Batch: os.Getenv(EnvBatch) != ""}
	if v, ok := os.LookupEnv(EnvInferenceOutput); ok {
		for _, k := range strings.Split(strings.ToLower(strings.ReplaceAll(v, " ", "")), ",") {
			cfg.InferenceOutput = append(cfg.InferenceOutput, k)
		}
	}
	if v := os.Getenv(EnvMaxContentLength); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("invalid %s %q", EnvMaxContentLength, v)
		}
		cfg.MaxContentLength = n
	}
	if cfg.DefaultAccept != "" {
		mt, _, err := mime.ParseMediaType(cfg.DefaultAccept)
		if err != nil || !supportedAccept(strings.ToLower(mt)) {
			return cfg, fmt.Errorf("invalid %s %q: use one of %s", EnvDefaultAccept, cfg.DefaultAccept, acceptList)
		}
		cfg.DefaultAccept = strings.ToLower(mt)
	}
	return cfg, nil
}

type handler struct {
	m   *Model // nil in multi-model mode
	cfg Config
	// models are the multi-model mode's loaded models.
	models *mms.Table[*Model]
}

// newHandler fills in cfg's defaults.
func newHandler(model *Model, cfg Config) *handler {
	if cfg.DefaultAccept == "" {
		cfg.DefaultAccept = mimeCSV
	}
	if cfg.MaxContentLength <= 0 {
		cfg.MaxContentLength = DefaultMaxContentLength
	}
	return &handler{m: model, cfg: cfg}
}

// NewHandler serves a model with the default Config: GET /ping,
// POST /invocations and GET /execution-parameters.
func NewHandler(model *Model) http.Handler { return NewHandlerWithConfig(model, Config{}) }

// NewHandlerWithConfig serves a model.
func NewHandlerWithConfig(model *Model, cfg Config) http.Handler {
	h := newHandler(model, cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", h.ping) // also HEAD
	mux.HandleFunc("POST /invocations", h.invocations)
	mux.HandleFunc("GET /execution-parameters", h.executionParameters)
	return h.logged(mux)
}

func (h *handler) ping(w http.ResponseWriter, r *http.Request) {
	// The model was loaded before the server started (or, in multi-model
	// mode, models come later): always ready.
	w.WriteHeader(http.StatusOK)
}

// executionParameters answers batch transform's question as the container
// does.
func (h *handler) executionParameters(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", mimeJSON)
	json.NewEncoder(w).Encode(map[string]any{
		"MaxConcurrentTransforms": runtime.NumCPU(),
		"BatchStrategy":           "MULTI_RECORD",
		"MaxPayloadInMB":          h.cfg.MaxContentLength / (1024 * 1024),
	})
}

// fail answers with the container's plain-text error body, which becomes
// the client's ModelError OriginalMessage.
func fail(w http.ResponseWriter, status int, msg string) {
	if rec, ok := w.(*httprec.Recorder); ok {
		rec.Err = msg
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

func (h *handler) invocations(w http.ResponseWriter, r *http.Request) {
	h.predict(w, r, h.m)
}

// predict answers an invocation of model m.
func (h *handler) predict(w http.ResponseWriter, r *http.Request, m *Model) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxContentLength))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"The request body is larger than the %d bytes the model server accepts (%s).", tooBig.Limit, EnvMaxContentLength))
			return
		}
		fail(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	if len(body) == 0 {
		w.WriteHeader(http.StatusNoContent) // as the container answers an empty body
		return
	}

	ct := contentType(r.Header.Get("Content-Type"))
	format, ok := requestFormats[ct]
	if !ok {
		fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf(
			"Content type %s is not supported. Supported content types: text/csv, text/libsvm, text/x-libsvm, "+
				"application/json, application/jsonlines, application/x-recordio-protobuf.", orNone(r.Header.Get("Content-Type"))))
		return
	}
	rows, width, err := format.parse(body)
	if err != nil {
		fail(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	if rec, ok := w.(*httprec.Recorder); ok {
		rec.Rows = rows.numRows()
	}
	if width > m.numFeature {
		fail(w, http.StatusBadRequest, fmt.Sprintf(
			"Unable to evaluate payload provided: Feature size of %s inference data %d is larger than feature size of trained model %d.",
			format.name, width, m.numFeature))
		return
	}
	accept, ok := h.accept(r.Header.Values("Accept"))
	if !ok {
		fail(w, http.StatusNotAcceptable, fmt.Sprintf(
			"Accept type %s is not supported. Please use supported accept types: %s.", strings.Join(r.Header.Values("Accept"), ", "), acceptList))
		return
	}
	if h.cfg.InferenceOutput != nil && m.obj.selectable == nil {
		fail(w, http.StatusInternalServerError, fmt.Sprintf(
			"Objective `%s` unsupported for selectable inference predictions.", m.obj.name))
		return
	}
	pred := m.predict(rows, PredictOptions{})

	var out []byte
	if h.cfg.InferenceOutput != nil {
		plan := newSelectPlan(m.obj, h.cfg.InferenceOutput)
		sel := make([][]selected, pred.Rows)
		for i := range sel {
			sel[i] = plan.selectPredictions(m.numClass, pred.Row(i))
		}
		out = plan.encodeSelected(sel, accept, h.cfg.Batch)
	} else {
		out = encodePredictions(pred, accept, h.cfg.Batch)
	}
	if accept == mimeCSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", accept)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// requestFormat reads one request content type.
type requestFormat struct {
	// name is the format in the container's feature-size error.
	name string
	// parse reads a body into rows as wide as width features.
	parse func(body []byte) (rows rowSource, width int, err error)
}

// requestFormats are the request content types the server reads (after
// contentType).
var requestFormats = map[string]requestFormat{
	mimeCSV: {"csv", func(body []byte) (rowSource, int, error) {
		x, err := parseCSV(body)
		return x, x.Cols, err
	}},
	mimeLibSVM:    {"libsvm", batchParser(parseLibSVM)},
	mimeXLibSVM:   {"libsvm", batchParser(parseLibSVM)},
	mimeJSON:      {"json", batchParser(parseJSON)},
	mimeJSONLines: {"jsonlines", batchParser(parseJSONLines)},
	mimeRecordIO:  {"recordio-protobuf", batchParser(parseRecordIO)},
}

// batchParser adapts a parser of rowBatches to requestFormat.parse.
func batchParser(parse func([]byte) (*rowBatch, error)) func([]byte) (rowSource, int, error) {
	return func(body []byte) (rowSource, int, error) {
		b, err := parse(body)
		if err != nil {
			return nil, 0, err
		}
		return b, b.width, nil
	}
}

// contentType reduces a Content-Type to its lower-case media type; the
// container's short names "csv" and "libsvm" count, and an absent one is
// text/csv.
func contentType(h string) string {
	mt := mediatype.Base(h)
	switch mt {
	case "", "csv":
		return mimeCSV
	case "libsvm":
		return mimeLibSVM
	}
	return mt
}

const acceptList = "['application/json', 'application/jsonlines', 'text/csv']"

func supportedAccept(mt string) bool {
	return mt == mimeCSV || mt == mimeJSON || mt == mimeJSONLines
}

// accept chooses the answer's type: the first supported media range of
// Accept (text/* meaning text/csv, application/* application/json), the
// default for none or */*.
func (h *handler) accept(values []string) (string, bool) {
	if len(values) == 0 {
		return h.cfg.DefaultAccept, true
	}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt := mediatype.Base(part)
			switch {
			case mt == "" || mt == "*/*":
				return h.cfg.DefaultAccept, true
			case supportedAccept(mt):
				return mt, true
			case mt == "text/*":
				return mimeCSV, true
			case mt == "application/*":
				return mimeJSON, true
			}
		}
	}
	return "", false
}

// logged writes one line per request.
func (h *handler) logged(next http.Handler) http.Handler {
	if h.cfg.Logger == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := httprec.New(w)
		next.ServeHTTP(rec, r)
		attrs := []any{
			"method", r.Method, "path", r.URL.Path, "status", rec.Status, "bytes", rec.Bytes,
			"duration", time.Since(start).Round(time.Microsecond),
		}
		if rec.Rows > 0 {
			attrs = append(attrs, "rows", rec.Rows)
		}
		level := slog.LevelInfo
		if rec.Err != "" {
			level = slog.LevelWarn
			attrs = append(attrs, "error", rec.Err)
		}
		h.cfg.Logger.Log(r.Context(), level, "request", attrs...)
	})
}

// Main runs the XGBoost model server as the whole process: it loads the
// model from $SM_MODEL_DIR (default /opt/ml/model), or with
// SAGEMAKER_MULTI_MODEL=true starts with no model and serves the
// multi-model API; it listens on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (default
// 8080), logs to stdout, and exits 0 after SIGTERM or SIGINT, 1 if it
// cannot start.
func Main() {
	os.Exit(run())
}

func run() int {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("server", "xgboost")
	port, err := runner.Port()
	if err != nil {
		log.Error("invalid "+EnvBindToPort, "value", os.Getenv(EnvBindToPort))
		return 1
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		log.Error("bad configuration", "error", err)
		return 1
	}
	cfg.Logger = log
	var h http.Handler
	var attrs []any
	if strings.EqualFold(os.Getenv(EnvMultiModel), "true") {
		h, attrs = NewMultiModelHandler(cfg), []any{"mode", "multi-model"}
	} else if h, attrs, err = singleModel(cfg); err != nil {
		log.Error("cannot load the model", "error", err)
		return 1
	}
	return serve(log, port, h, attrs)
}

// singleModel loads the model of SM_MODEL_DIR and returns its handler and
// what to log about it.
func singleModel(cfg Config) (http.Handler, []any, error) {
	dir := DefaultModelDir
	if v := os.Getenv(EnvModelDir); v != "" {
		dir = v
	}
	start := time.Now()
	model, err := Load(dir)
	if err != nil {
		return nil, nil, err
	}
	warnSelectable(cfg, model)
	return NewHandlerWithConfig(model, cfg), append([]any{"model_dir", dir}, append(modelAttrs(model),
		"load_time", time.Since(start).Round(time.Millisecond))...), nil
}

// modelAttrs describe a model in a log line.
func modelAttrs(m *Model) []any {
	return []any{"format", m.Format(), "xgboost_version", m.Version(), "booster", m.Booster(), "objective", m.Objective(),
		"features", m.NumFeature(), "trees", m.NumTrees(), "trees_used", m.DefaultTrees()}
}

// warnSelectable logs when SAGEMAKER_INFERENCE_OUTPUT asks for what the
// model's objective cannot give.
func warnSelectable(cfg Config, m *Model) {
	if cfg.Logger != nil && cfg.InferenceOutput != nil && m.obj.selectable == nil {
		cfg.Logger.Warn("the objective has no selectable inference output; invocations will fail",
			EnvInferenceOutput, strings.Join(cfg.InferenceOutput, ","), "objective", m.Objective())
	}
}

// serve serves h until SIGTERM or SIGINT.
func serve(log *slog.Logger, port int, h http.Handler, attrs []any) int {
	return runner.Serve(port, runner.Options{Handler: h, ShutdownTimeout: 10 * time.Second, Log: serverLog{log, attrs}})
}

// serverLog writes the server's start, stop and failures to its log;
// attrs describe the model in the line that says it serves.
type serverLog struct {
	log   *slog.Logger
	attrs []any
}

func (l serverLog) Serving(addr string, ln net.Listener) {
	l.log.Info("serving", append([]any{"addr", addr, "pid", os.Getpid()}, l.attrs...)...)
}

func (l serverLog) ShuttingDown(sig os.Signal) { l.log.Info("shutting down", "signal", sig.String()) }

func (l serverLog) Stopped() { l.log.Info("stopped") }

func (l serverLog) Failed(what string, err error) { l.log.Error(what, "error", err) }
