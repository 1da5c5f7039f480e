// Package mms is the server side of SageMaker's multi-model container API
// in the shapes of Multi Model Server (MMS), which SageMaker's own
// containers run for multi-model endpoints, shared by sagehost's model
// servers (the built-in XGBoost server and the test model):
//
//	POST   /models                      {"model_name": "m", "url": "/dir"} (or
//	                                    ?model_name=&url=) → 200
//	                                    {"status": "Model \"m\" registered"};
//	                                    409 loaded (or loading) already; 400
//	                                    bad request
//	GET    /models?limit=&next_page_token=
//	                                    → {"models": [{"modelName", "modelUrl"}],
//	                                    "nextPageToken": "2"}, sorted, limit
//	                                    1-100 (default 100), no token on the
//	                                    last page
//	GET    /models/{model_name}         → {"modelName", "modelUrl"}; 404
//	DELETE /models/{model_name}         → {"status": "Model \"m\" unregistered"}; 404
//
// Errors are MMS's JSON, {"code": 404, "type": "ModelNotFoundException",
// "message": "Model not found: m"}. It owns the wire shapes, the table of
// loaded models and the list, describe and unload answers; each server
// loads and invokes its own kind of model.
package mms

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
	"sync/atomic"
	"time"
)

// MMS error types.
const (
	ErrTypeBadRequest          = "BadRequestException"
	ErrTypeModelNotFound       = "ModelNotFoundException"
	ErrTypeConflict            = "ConflictStatusException"
	ErrTypeInsufficientStorage = "InsufficientStorageException"
	ErrTypeInternal            = "InternalServerException"
)

// MaxListLimit is MMS's largest (and default) page of GET /models.
const MaxListLimit = 100

// ErrorResponse is the JSON body of an error, as MMS writes it.
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

// ErrorNoter is a ResponseWriter that wants to know the message of an
// error answer (a server's request log).
type ErrorNoter interface {
	NoteError(msg string)
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// WriteError answers with an MMS error.
func WriteError(w http.ResponseWriter, status int, typ, msg string) {
	if n, ok := w.(ErrorNoter); ok {
		n.NoteError(msg)
	}
	WriteJSON(w, status, ErrorResponse{Code: status, Type: typ, Message: msg})
}

// NotFound answers that name is not loaded.
func NotFound(w http.ResponseWriter, name string) {
	WriteError(w, http.StatusNotFound, ErrTypeModelNotFound, "Model not found: "+name)
}

// ReadLoadRequest reads POST /models: the JSON body, else MMS's query
// parameters. Its errors are worded for a 400 answer.
func ReadLoadRequest(r *http.Request) (LoadRequest, error) {
	var req LoadRequest
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

// Entry is one loaded model.
type Entry[M any] struct {
	URL      string
	Model    M
	LoadedAt time.Time
	// Invocations counts the invocations the server counted with Add.
	Invocations atomic.Int64
}

// Stats describe the table at one moment.
type Stats struct {
	Names          []string // the loaded models, sorted
	Loads, Unloads int64    // completed loads and unloads since the start
}

// Table holds the loaded models of type M; loading holds the names whose
// load has begun and not finished. A model is never changed once loaded:
// an invoke keeps using the one it looked up even if it is unloaded
// meanwhile.
type Table[M any] struct {
	mu      sync.RWMutex
	loaded  map[string]*Entry[M]
	loading map[string]bool
	loads   int64
	unloads int64
}

// NewTable returns an empty table.
func NewTable[M any]() *Table[M] {
	return &Table[M]{loaded: map[string]*Entry[M]{}, loading: map[string]bool{}}
}

// Errors of Reserve.
var (
	ErrLoaded = errors.New("already loaded")
	ErrFull   = errors.New("no room")
)

// Reserve claims name for a load: ErrLoaded when it is loaded or loading,
// ErrFull when max > 0 models are loaded or loading.
func (t *Table[M]) Reserve(name string, max int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loaded[name] != nil || t.loading[name] {
		return ErrLoaded
	}
	if max > 0 && len(t.loaded)+len(t.loading) >= max {
		return ErrFull
	}
	t.loading[name] = true
	return nil
}

// Finish ends the load that Reserve claimed: m is the model when ok, and
// a failed load (ok false) frees the name. It returns the number of models
// loaded.
func (t *Table[M]) Finish(name, url string, m M, ok bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.loading, name)
	if ok {
		t.loaded[name] = &Entry[M]{URL: url, Model: m, LoadedAt: time.Now()}
		t.loads++
	}
	return len(t.loaded)
}

// Get returns the loaded model name, nil if there is none.
func (t *Table[M]) Get(name string) *Entry[M] {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.loaded[name]
}

// GetWithStats is Get and the table's Stats, read at the same moment.
func (t *Table[M]) GetWithStats(name string) (*Entry[M], Stats) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.loaded[name], Stats{Names: t.names(), Loads: t.loads, Unloads: t.unloads}
}

// Remove unloads name; false if it is not loaded. It returns the number of
// models left loaded.
func (t *Table[M]) Remove(name string) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loaded[name] == nil {
		return len(t.loaded), false
	}
	delete(t.loaded, name)
	t.unloads++
	return len(t.loaded), true
}

// names are the loaded models' names, sorted; the caller holds mu.
func (t *Table[M]) names() []string {
	names := make([]string, 0, len(t.loaded))
	for n := range t.loaded {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// page lists limit models from offset on, sorted by name; next is "" on
// the last page.
func (t *Table[M]) page(offset, limit int) (models []ModelDescription, next string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := t.names()
	end := min(offset+limit, len(names))
	models = []ModelDescription{}
	for _, n := range names[min(offset, end):end] {
		models = append(models, ModelDescription{ModelName: n, ModelURL: t.loaded[n].URL})
	}
	if end < len(names) {
		next = strconv.Itoa(end)
	}
	return models, next
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

// List answers GET /models.
func (t *Table[M]) List(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", MaxListLimit)
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrTypeBadRequest, err.Error())
		return
	}
	offset, err := intParam(r, "next_page_token", 0)
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrTypeBadRequest, err.Error())
		return
	}
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	models, next := t.page(offset, limit)
	WriteJSON(w, http.StatusOK, ModelList{Models: models, NextPageToken: next})
}

// Describe answers GET /models/{model_name}.
func (t *Table[M]) Describe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	e := t.Get(name)
	if e == nil {
		NotFound(w, name)
		return
	}
	WriteJSON(w, http.StatusOK, ModelDescription{ModelName: name, ModelURL: e.URL})
}

// Unload answers DELETE /models/{model_name}. It returns the model's name,
// the number of models left loaded and whether it was loaded, for the
// caller's log.
func (t *Table[M]) Unload(w http.ResponseWriter, r *http.Request) (name string, loaded int, ok bool) {
	name = r.PathValue("model_name")
	loaded, ok = t.Remove(name)
	if !ok {
		NotFound(w, name)
		return name, loaded, false
	}
	WriteJSON(w, http.StatusOK, StatusResponse{Status: `Model "` + name + `" unregistered`})
	return name, loaded, true
}

// Registered is the answer of a successful load of name.
func Registered(w http.ResponseWriter, name string) {
	WriteJSON(w, http.StatusOK, StatusResponse{Status: `Model "` + name + `" registered`})
}
