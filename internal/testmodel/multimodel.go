package testmodel

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sagehost/sagehost/modelserver/mms"
)

// The multi-model API (package comment): package mms's table of loaded
// models and routes, filled by loads that only check the model directory.

// invoked is what a multi-model invoke reports about the model and the
// table, taken when the invoke began.
type invoked struct {
	name, url, target string
	loadedAt          time.Time
	invocations       int64
	stats             mms.Stats
}

// invokeModel counts an invocation of name and returns its snapshot, nil if the
// model is not loaded.
func (h *handler) invokeModel(name string) *invoked {
	e, st := h.models.GetWithStats(name)
	if e == nil {
		return nil
	}
	return &invoked{name: name, url: e.URL, loadedAt: e.LoadedAt, invocations: e.Invocations.Add(1), stats: st}
}

func (m *invoked) fill(rep *Report) {
	rep.ModelName, rep.ModelURL, rep.TargetModel = m.name, m.url, m.target
	at := m.loadedAt
	rep.ModelLoadedAt = &at
	rep.ModelInvocations = m.invocations
	rep.LoadedModels, rep.Loads, rep.Unloads = m.stats.Names, m.stats.Loads, m.stats.Unloads
}

func (h *handler) multiModelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /models", h.load)
	mux.HandleFunc("GET /models", h.models.List)
	mux.HandleFunc("GET /models/{model_name}", h.models.Describe)
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

func (h *handler) load(w http.ResponseWriter, r *http.Request) {
	req, err := mms.ReadLoadRequest(r)
	if err != nil {
		mms.WriteError(w, http.StatusBadRequest, mms.ErrTypeBadRequest, err.Error())
		return
	}
	switch err := h.models.Reserve(req.ModelName, h.cfg.MaxModels); err {
	case mms.ErrLoaded:
		mms.WriteError(w, http.StatusConflict, mms.ErrTypeConflict, "Model "+req.ModelName+" is already registered.")
		return
	case mms.ErrFull:
		h.logf("load %q refused: %d models loaded already (%s)", req.ModelName, h.cfg.MaxModels, EnvMaxModels)
		mms.WriteError(w, http.StatusInsufficientStorage, mms.ErrTypeInsufficientStorage, fmt.Sprintf(
			"Cannot load model %s: %d models are loaded, the most this server holds (%s).", req.ModelName, h.cfg.MaxModels, EnvMaxModels))
		return
	}
	start := time.Now()
	if err := h.loadModel(r, req.URL); err != nil {
		h.models.Finish(req.ModelName, "", struct{}{}, false)
		h.logf("load %q from %s failed: %v", req.ModelName, req.URL, err)
		mms.WriteError(w, http.StatusInternalServerError, mms.ErrTypeInternal, err.Error())
		return
	}
	n := h.models.Finish(req.ModelName, req.URL, struct{}{}, true)
	h.logf("loaded %q from %s in %s (%d loaded)", req.ModelName, req.URL, time.Since(start).Round(time.Millisecond), n)
	mms.Registered(w, req.ModelName)
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

func (h *handler) unload(w http.ResponseWriter, r *http.Request) {
	if name, n, ok := h.models.Unload(w, r); ok {
		h.logf("unloaded %q (%d loaded)", name, n)
	}
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	m := h.invokeModel(name)
	if m == nil {
		h.logf("invoke %q: not loaded", name)
		mms.NotFound(w, name)
		return
	}
	m.target = r.Header.Get(HeaderTargetModel)
	h.logf("invoke %q (target model %q, invocation %d)", name, m.target, m.invocations)
	h.answer(w, r, m)
}
