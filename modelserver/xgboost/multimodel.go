package xgboost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The multi-model API: SageMaker's container API for multi-model endpoints
// (SAGEMAKER_MULTI_MODEL=true), in the shapes of Multi Model Server (MMS),
// which SageMaker's XGBoost container runs in that mode. The platform
// extracts each model into a directory and loads it by name:
//
//	POST   /models                      {"model_name": "m", "url": "/dir"} (or
//	                                    ?model_name=&url=) → 200
//	                                    {"status": "Model \"m\" registered"};
//	                                    409 loaded (or loading) already; 500
//	                                    when Load(url) fails; 400 bad request
//	GET    /models?limit=&next_page_token=
//	                                    → {"models": [{"modelName", "modelUrl"}],
//	                                    "nextPageToken": "2"}, sorted, limit
//	                                    1-100 (default 100), no token on the
//	                                    last page
//	GET    /models/{model_name}         → {"modelName", "modelUrl"}; 404
//	DELETE /models/{model_name}         → {"status": "Model \"m\" unregistered"}; 404
//	POST   /models/{model_name}/invoke  predictions as POST /invocations
//	                                    gives them for a single model; 404
//
// Errors of the API itself are MMS's JSON, {"code": 404, "type":
// "ModelNotFoundException", "message": "Model not found: m"}; an invoke's
// prediction errors are the plain-text ones of /invocations.

// MMS error types.
const (
	errTypeBadRequest    = "BadRequestException"
	errTypeModelNotFound = "ModelNotFoundException"
	errTypeConflict      = "ConflictStatusException"
	errTypeInternal      = "InternalServerException"
)

// maxListLimit is MMS's largest (and default) page of GET /models.
const maxListLimit = 100

type mmsError struct {
	Code    int    `json:"code"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

type loadRequest struct {
	ModelName string `json:"model_name"`
	URL       string `json:"url"`
}

type modelDescription struct {
	ModelName string `json:"modelName"`
	ModelURL  string `json:"modelUrl"`
}

type modelList struct {
	Models        []modelDescription `json:"models"`
	NextPageToken string             `json:"nextPageToken,omitempty"`
}

type statusResponse struct {
	Status string `json:"status"`
}

type loadedModel struct {
	url   string
	model *Model
}

// modelTable holds the loaded models; loading holds the names whose load
// has begun and not finished. Models are immutable: an invoke keeps using
// the one it looked up even if it is unloaded meanwhile.
type modelTable struct {
	mu      sync.RWMutex
	loaded  map[string]*loadedModel
	loading map[string]bool
}

var errAlreadyLoaded = errors.New("already loaded")

// reserve claims name for a load; errAlreadyLoaded when it is loaded or
// loading.
func (t *modelTable) reserve(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loaded[name] != nil || t.loading[name] {
		return errAlreadyLoaded
	}
	t.loading[name] = true
	return nil
}

// finish ends a reserved load; m is nil for a failed one. It returns the
// number of models loaded.
func (t *modelTable) finish(name, url string, m *Model) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.loading, name)
	if m != nil {
		t.loaded[name] = &loadedModel{url: url, model: m}
	}
	return len(t.loaded)
}

func (t *modelTable) get(name string) *loadedModel {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.loaded[name]
}

// remove unloads name; false if it is not loaded.
func (t *modelTable) remove(name string) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loaded[name] == nil {
		return len(t.loaded), false
	}
	delete(t.loaded, name)
	return len(t.loaded), true
}

// page lists limit models from offset on, sorted by name; next is "" on the
// last page.
func (t *modelTable) page(offset, limit int) (models []modelDescription, next string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := make([]string, 0, len(t.loaded))
	for n := range t.loaded {
		names = append(names, n)
	}
	sort.Strings(names)
	end := min(offset+limit, len(names))
	models = []modelDescription{}
	for _, n := range names[min(offset, end):end] {
		models = append(models, modelDescription{ModelName: n, ModelURL: t.loaded[n].url})
	}
	if end < len(names) {
		next = strconv.Itoa(end)
	}
	return models, next
}

// NewMultiModelHandler serves SageMaker's multi-model container API with
// no model loaded at first: GET /ping, GET /execution-parameters,
// POST /models (load), GET /models (list), GET and DELETE
// /models/{model_name} (describe, unload) and
// POST /models/{model_name}/invoke. Loads, unloads and invokes may run in
// parallel.
func NewMultiModelHandler(cfg Config) http.Handler {
	h := newHandler(nil, cfg)
	h.models = &modelTable{loaded: map[string]*loadedModel{}, loading: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", h.ping)
	mux.HandleFunc("GET /execution-parameters", h.executionParameters)
	mux.HandleFunc("POST /models", h.load)
	mux.HandleFunc("GET /models", h.list)
	mux.HandleFunc("GET /models/{model_name}", h.describe)
	mux.HandleFunc("DELETE /models/{model_name}", h.unload)
	mux.HandleFunc("POST /models/{model_name}/invoke", h.invoke)
	return h.logged(mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", mimeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// failJSON answers with an MMS error.
func failJSON(w http.ResponseWriter, status int, typ, msg string) {
	if rec, ok := w.(*recorder); ok {
		rec.err = msg
	}
	writeJSON(w, status, mmsError{Code: status, Type: typ, Message: msg})
}

func modelNotFound(w http.ResponseWriter, name string) {
	failJSON(w, http.StatusNotFound, errTypeModelNotFound, "Model not found: "+name)
}

// readLoadRequest reads POST /models: the JSON body, else MMS's query
// parameters.
func readLoadRequest(r *http.Request) (loadRequest, error) {
	var req loadRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return req, fmt.Errorf("reading the request body: %w", err)
	}
	if strings.TrimSpace(string(body)) != "" {
		if err := json.Unmarshal(body, &req); err != nil {
			return req, fmt.Errorf("Invalid request body: %v", err)
		}
	}
	q := r.URL.Query()
	if req.ModelName == "" {
		req.ModelName = q.Get("model_name")
	}
	if req.URL == "" {
		req.URL = q.Get("url")
	}
	switch {
	case req.URL == "":
		return req, errors.New("Parameter url is required.")
	case req.ModelName == "":
		return req, errors.New("Parameter model_name is required.")
	}
	return req, nil
}

func (h *handler) load(w http.ResponseWriter, r *http.Request) {
	req, err := readLoadRequest(r)
	if err != nil {
		failJSON(w, http.StatusBadRequest, errTypeBadRequest, err.Error())
		return
	}
	if h.models.reserve(req.ModelName) != nil {
		failJSON(w, http.StatusConflict, errTypeConflict, "Model "+req.ModelName+" is already registered.")
		return
	}
	start := time.Now()
	m, err := Load(req.URL)
	n := h.models.finish(req.ModelName, req.URL, m)
	if err != nil {
		failJSON(w, http.StatusInternalServerError, errTypeInternal,
			fmt.Sprintf("Failed to load model %s: %v", req.ModelName, err))
		return
	}
	if log := h.cfg.Logger; log != nil {
		log.Info("loaded model", append([]any{"model", req.ModelName, "url", req.URL}, append(modelAttrs(m),
			"load_time", time.Since(start).Round(time.Millisecond), "loaded_models", n)...)...)
	}
	warnSelectable(h.cfg, m)
	writeJSON(w, http.StatusOK, statusResponse{Status: `Model "` + req.ModelName + `" registered`})
}

// intParam reads a non-negative integer query parameter.
func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("Parameter %s must be an integer: %q", name, v)
	}
	return max(n, 0), nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", maxListLimit)
	if err != nil {
		failJSON(w, http.StatusBadRequest, errTypeBadRequest, err.Error())
		return
	}
	offset, err := intParam(r, "next_page_token", 0)
	if err != nil {
		failJSON(w, http.StatusBadRequest, errTypeBadRequest, err.Error())
		return
	}
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	models, next := h.models.page(offset, limit)
	writeJSON(w, http.StatusOK, modelList{Models: models, NextPageToken: next})
}

func (h *handler) describe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	lm := h.models.get(name)
	if lm == nil {
		modelNotFound(w, name)
		return
	}
	writeJSON(w, http.StatusOK, modelDescription{ModelName: name, ModelURL: lm.url})
}

func (h *handler) unload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	n, ok := h.models.remove(name)
	if !ok {
		modelNotFound(w, name)
		return
	}
	if log := h.cfg.Logger; log != nil {
		log.Info("unloaded model", "model", name, "loaded_models", n)
	}
	writeJSON(w, http.StatusOK, statusResponse{Status: `Model "` + name + `" unregistered`})
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	lm := h.models.get(name)
	if lm == nil {
		modelNotFound(w, name)
		return
	}
	h.predict(w, r, lm.model)
}
