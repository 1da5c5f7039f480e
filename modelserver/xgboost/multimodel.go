package xgboost

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sagehost/sagehost/modelserver/mms"
)

// The multi-model API (SAGEMAKER_MULTI_MODEL=true), as SageMaker's XGBoost
// container serves it through Multi Model Server: package mms holds the
// routes' shapes and the table of loaded models; this file loads XGBoost
// models into it (500 when Load(url) fails) and predicts with them at
// POST /models/{model_name}/invoke, whose errors are the plain-text ones
// of /invocations.

// NewMultiModelHandler serves SageMaker's multi-model container API with
// no model loaded at first: GET /ping, GET /execution-parameters,
// POST /models (load), GET /models (list), GET and DELETE
// /models/{model_name} (describe, unload) and
// POST /models/{model_name}/invoke. Loads, unloads and invokes may run in
// parallel.
func NewMultiModelHandler(cfg Config) http.Handler {
	h := newHandler(nil, cfg)
	h.models = mms.NewTable[*Model]()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", h.ping)
	mux.HandleFunc("GET /execution-parameters", h.executionParameters)
	mux.HandleFunc("POST /models", h.load)
	mux.HandleFunc("GET /models", h.models.List)
	mux.HandleFunc("GET /models/{model_name}", h.models.Describe)
	mux.HandleFunc("DELETE /models/{model_name}", h.unload)
	mux.HandleFunc("POST /models/{model_name}/invoke", h.invoke)
	return h.logged(mux)
}

func (h *handler) load(w http.ResponseWriter, r *http.Request) {
	req, err := mms.ReadLoadRequest(r)
	if err != nil {
		mms.WriteError(w, http.StatusBadRequest, mms.ErrTypeBadRequest, err.Error())
		return
	}
	if h.models.Reserve(req.ModelName, 0) != nil {
		mms.WriteError(w, http.StatusConflict, mms.ErrTypeConflict, "Model "+req.ModelName+" is already registered.")
		return
	}
	start := time.Now()
	m, err := Load(req.URL)
	n := h.models.Finish(req.ModelName, req.URL, m, err == nil)
	if err != nil {
		mms.WriteError(w, http.StatusInternalServerError, mms.ErrTypeInternal,
			fmt.Sprintf("Failed to load model %s: %v", req.ModelName, err))
		return
	}
	if log := h.cfg.Logger; log != nil {
		log.Info("loaded model", append([]any{"model", req.ModelName, "url", req.URL}, append(modelAttrs(m),
			"load_time", time.Since(start).Round(time.Millisecond), "loaded_models", n)...)...)
	}
	warnSelectable(h.cfg, m)
	mms.Registered(w, req.ModelName)
}

func (h *handler) unload(w http.ResponseWriter, r *http.Request) {
	name, n, ok := h.models.Unload(w, r)
	if log := h.cfg.Logger; log != nil && ok {
		log.Info("unloaded model", "model", name, "loaded_models", n)
	}
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model_name")
	e := h.models.Get(name)
	if e == nil {
		mms.NotFound(w, name)
		return
	}
	h.predict(w, r, e.Model)
}
