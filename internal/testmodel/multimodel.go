package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The multi-model API (package comment): a table of loaded models and the
// MMS-shaped routes that fill, read and empty it.

// MMS error types of the multi-model API's JSON errors.
const (
	ErrTypeBadRequest          = "BadRequestException"
	ErrTypeModelNotFound       = "ModelNotFoundException"
	ErrTypeConflict            = "ConflictStatusException"
	ErrTypeInsufficientStorage = "InsufficientStorageException"
	ErrTypeInternal            = "InternalServerException"
)

// maxListLimit is MMS's largest (and default) page of GET /models.
const maxListLimit = 100

// ErrorResponse is the JSON body of a multi-model API error, as MMS
// writes it.
type ErrorResponse struct {
	Code    int    `json:"code"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

// LoadRequest is the body of POST /models.
type LoadRequest struct {
	ModelName string `json:"model_name"`
	URL       string `json:"url"`
}

// ModelDescription is one model of GET /models and the answer of
// GET /models/{model_name}.
type ModelDescription struct {
	ModelName string `json:"modelName"`
	ModelURL  string `json:"modelUrl"`
}

// ModelList is the answer of GET /models.
type ModelList struct {
	Models        []ModelDescription `json:"models"`
	NextPageToken string             `json:"nextPageToken,omitempty"`
}

// StatusResponse is the answer of a load or an unload.
type StatusResponse struct {
	Status string `json:"status"`
}

type modelEntry struct {
	url         string
	loadedAt    time.Time
	invocations int64
}

// registry is the table of loaded models; loading holds the names whose
// load has begun and not finished.
type registry struct {
	mu      sync.Mutex
	loaded  map[string]*modelEntry
	loading map[string]bool
	loads   int64
	unloads int64
}

func newRegistry() *registry {
	return &registry{loaded: map[string]*modelEntry{}, loading: map[string]bool{}}
}

var (
	errLoaded = errors.New("already loaded")
	errFull   = errors.New("no room")
)

// begin reserves name for a load: errLoaded when it is loaded or loading,
// errFull when max > 0 models are loaded or loading.
func (g *registry) begin(name string, max int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.loaded[name] != nil || g.loading[name] {
		return errLoaded
	}
	if max > 0 && len(g.loaded)+len(g.loading) >= max {
		return errFull
	}
	g.loading[name] = true
	return nil
}

// finish ends the load that begin reserved: url is "" for a failed one.
// It returns the number of models loaded.
func (g *registry) finish(name, url string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.loading, name)
	if url != "" {
		g.loaded[name] = &modelEntry{url: url, loadedAt: time.Now()}
		g.loads++
	}
	return len(g.loaded)
}

// remove unloads name; false if it is not loaded.
func (g *registry) remove(name string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.loaded[name] == nil {
		return len(g.loaded), false
	}
	delete(g.loaded, name)
	g.unloads++
	return len(g.loaded), true
}

func (g *registry) describe(name string) (ModelDescription, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.loaded[name]
	if e == nil {
		return ModelDescription{}, false
	}
	return ModelDescription{ModelName: name, ModelURL: e.url}, true
}

// names are the loaded models' names, sorted; the caller holds mu.
func (g *registry) names() []string {
	names := make([]string, 0, len(g.loaded))
	for n := range g.loaded {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// page lists limit models from offset on; next is "" on the last page.
func (g *registry) page(offset, limit int) (models []ModelDescription, next string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := g.names()
	end := min(offset+limit, len(names))
	models = []ModelDescription{}
	for _, n := range names[min(offset, end):end] {
		models = append(models, ModelDescription{ModelName: n, ModelURL: g.loaded[n].url})
	}
	if end < len(names) {
		next = strconv.Itoa(end)
	}
	return models, next
}

// invoked is what a multi-model invoke reports about the model and the
// table, taken when the invoke began.
type invoked struct {
	name, url, target string
	loadedAt          time.Time
	invocations       int64
	loaded            []string
	loads, unloads    int64
}

// invoke counts an invocation of name and returns its snapshot, nil if the
// model is not loaded.
func (g *registry) invoke(name string) *invoked {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.loaded[name]
	if e == nil {
		return nil
	}
	e.invocations++
	return &invoked{name: name, url: e.url, loadedAt: e.loadedAt, invocations: e.invocations,
		loaded: g.names(), loads: g.loads, unloads: g.unloads}
}

func (m *invoked) fill(rep *Report) {
	rep.ModelName, rep.ModelURL, rep.TargetModel = m.name, m.url, m.target
	at := m.loadedAt
	rep.ModelLoadedAt = &at
	rep.ModelInvocations = m.invocations
	rep.LoadedModels, rep.Loads, rep.Unloads = m.loaded, m.loads, m.unloads
}

func (h *handler) multiModelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /models", h.load)
	mux.HandleFunc("GET /models", h.list)
	mux.HandleFunc("GET /models/{model_name}", h.describe)
	mux.HandleFunc("DELETE /models/{model_name}", h.unload)
	mux.HandleFunc("POST /models/{model_name}/invoke", h.invoke)
}

// logf writes one line to cfg.Log.
func (h *handler) logf(format string, args ...any) {
	if h.cfg.Log == nil {
		return
	}
	h.logMu.Lock()
	defer h.logMu.Unlock()
	fmt.Fprintf(h.cfg.Log, "testmodel: "+format+"\n", args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func mmsError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, ErrorResponse{Code: status, Type: typ, Message: msg})
}

func notFound(w http.ResponseWriter, name string) {
	mmsError(w, http.StatusNotFound, ErrTypeModelNotFound, "Model not found: "+name)
}

// loadRequest reads POST /models: the JSON body, else MMS's query
// parameters.
func loadRequest(r *http.Request) (LoadRequest, error) {
	var req LoadRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return req, fmt.Errorf("reading the request body: %w", err)
	}
	if len(strings.TrimSpace(string(body))) > 0 {
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
	req, err := loadRequest(r)
	if err != nil {
		mmsError(w, http.StatusBadRequest, ErrTypeBadRequest, err.Error())
		return
	}
	switch err := h.models.begin(req.ModelName, h.cfg.MaxModels); err {
	case errLoaded:
		mmsError(w, http.StatusConflict, ErrTypeConflict, "Model "+req.ModelName+" is already registered.")
		return
	case errFull:
		h.logf("load %q refused: %d models loaded already (%s)", req.ModelName, h.cfg.MaxModels, EnvMaxModels)
		mmsError(w, http.StatusInsufficientStorage, ErrTypeInsufficientStorage, fmt.Sprintf(
			"Cannot load model %s: %d models are loaded, the most this server holds (%s).", req.ModelName, h.cfg.MaxModels, EnvMaxModels))
		return
	}
	start := time.Now()
	if err := h.loadModel(r, req.URL); err != nil {
		h.models.finish(req.ModelName, "")
		h.logf("load %q from %s failed: %v", req.ModelName, req.URL, err)
		mmsError(w, http.StatusInternalServerError, ErrTypeInternal, err.Error())
		return
	}
	n := h.models.finish(req.ModelName, req.URL)
	h.logf("loaded %q from %s in %s (%d loaded)", req.ModelName, req.URL, time.Since(start).Round(time.Millisecond), n)
	writeJSON(w, http.StatusOK, StatusResponse{Status: `Model "` + req.ModelName + `" registered`})
}

// loadModel "loads" the model in dir: waits LoadDelay, then fails when dir
// is not a directory or holds FAIL_LOAD.
func (h *handler) loadModel(r *http.Request, dir string) error {
	if d := h.cfg.LoadDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return fmt.Errorf("load abandoned: %w", r.Context().Err())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot read the model directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the model url %s is not a directory", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, FailLoadFile))
	if err == nil {
		return errors.New(strings.TrimSpace(string(b)))
	}
	return nil
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
		mmsError(w, http.StatusBadRequest, ErrTypeBadRequest, err.Error())
		return
	}
	offset, err := intParam(r, "next_page_token", 0)
	if err != nil {
		mmsError(w, http.StatusBadRequest, ErrTypeBadRequest, err.Error())
		return
	}
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	models, next := h.models.page(offset, limit)
	writeJSON(w, http.StatusOK, ModelList{Models: models, NextPageToken: next})
}

func (h *handler) describe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	d, ok := h.models.describe(name)
	if !ok {
		notFound(w, name)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *handler) unload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	n, ok := h.models.remove(name)
	if !ok {
		notFound(w, name)
		return
	}
	h.logf("unloaded %q (%d loaded)", name, n)
	writeJSON(w, http.StatusOK, StatusResponse{Status: `Model "` + name + `" unregistered`})
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	m := h.models.invoke(name)
	if m == nil {
		h.logf("invoke %q: not loaded", name)
		notFound(w, name)
		return
	}
	m.target = r.Header.Get(HeaderTargetModel)
	h.logf("invoke %q (target model %q, invocation %d)", name, m.target, m.invocations)
	h.answer(w, r, m)
}
