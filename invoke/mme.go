package invoke

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/invoke/internal/upstream"
)

// MultiModel configures the variant of a multi-model endpoint: sagehost
// fetches each TargetModel's archive once (the artifact cache), loads it
// into an instance's container with SageMaker's multi-model contract
// (POST /models), invokes it there (POST /models/{name}/invoke), keeps
// sending that TargetModel to the instances that have it loaded, and
// unloads the least recently used models (DELETE /models/{name}) when an
// instance's model memory budget is full or its container answers 507.
type MultiModel struct {
	// Fetch makes a TargetModel's archive, relative to the model's
	// ModelDataUrl prefix, available as a local directory of size bytes.
	Fetch func(ctx context.Context, target string) (dir string, size int64, err error)
	// Root is the host directory the fetched directories are under; a
	// container with Instance.ModelsMount sees Root at that path.
	Root string
	// BudgetBytes bounds the sizes of the models loaded in one instance
	// (0: no bound).
	BudgetBytes int64
	// CacheDisabled unloads a model after each invocation
	// (MultiModelConfig.ModelCacheSetting Disabled).
	CacheDisabled bool
	// LoadTimeout bounds one download and load, which go on in the
	// background when a call stops waiting (SageMaker: 360 s).
	LoadTimeout time.Duration
}

// modelSet is the set of models loaded in one instance's container.
type modelSet struct {
	mu     sync.Mutex
	byName map[string]*loadedModel
	used   int64
	loaded int // models in byName with loaded set
	clock  uint64
	gauge  prometheus.Gauge
}

// loadedModel is one model loaded (or being loaded) in an instance.
type loadedModel struct {
	name, target string
	size         int64
	lastUse      uint64
	users        int
	invoke       string        // path of POST /models/{name}/invoke
	ready        chan struct{} // closed when the load has ended
	err          error         // why the load failed (read after ready)
	loaded       bool
}

// EnableMultiModel gives an instance its set of loaded models; hosting
// calls it for instances of multi-model variants. gauge (may be nil)
// follows the number of models loaded.
func (in *Instance) EnableMultiModel(gauge prometheus.Gauge) {
	in.models = &modelSet{byName: map[string]*loadedModel{}, gauge: gauge}
}

// changed updates the loaded-models gauge; ms.mu is held.
func (ms *modelSet) changed() {
	if ms.gauge != nil {
		ms.gauge.Set(float64(ms.loaded))
	}
}

// drop removes m from the set, if it is still the set's model of its name
// (not one loaded again under that name since), and takes a loaded model's
// size off the budget; ms.mu is held.
func (ms *modelSet) drop(m *loadedModel) {
	if ms.byName[m.name] != m {
		return
	}
	delete(ms.byName, m.name)
	if m.loaded {
		ms.used -= m.size
		ms.loaded--
	}
	ms.changed()
}

// LoadedModels returns how many models are loaded in the instance.
func (in *Instance) LoadedModels() int {
	if in.models == nil {
		return 0
	}
	in.models.mu.Lock()
	defer in.models.mu.Unlock()
	return in.models.loaded
}

// ModelName is the opaque model_name sagehost gives a TargetModel in the
// container (the TargetModel itself travels in a header).
func ModelName(target string) string {
	h := sha256.Sum256([]byte(target))
	return "m" + hex.EncodeToString(h[:8])
}

// pickForModel chooses an instance for a TargetModel, by its ModelName:
// one that has it loaded (fewest outstanding requests first), else one
// loading it, else the healthy instance with the fewest outstanding
// requests (it loads it).
func pickForModel(v *Variant, name string, skip *Instance) *Instance {
	var loaded, loading []*Instance
	for _, in := range v.Instances {
		if in == skip || !in.Healthy() || in.models == nil {
			continue
		}
		in.models.mu.Lock()
		m := in.models.byName[name]
		in.models.mu.Unlock()
		switch {
		case m == nil:
		case m.loaded:
			loaded = append(loaded, in)
		default:
			loading = append(loading, in)
		}
	}
	switch {
	case len(loaded) > 0:
		return pick(&Variant{Instances: loaded}, nil)
	case len(loading) > 0:
		return loading[0]
	}
	return leastLoaded(v, skip)
}

// leastLoaded picks the healthy instance with the fewest outstanding
// requests and, among those, the fewest loaded models (ties at random), to
// spread a multi-model endpoint's models across its instances.
func leastLoaded(v *Variant, skip *Instance) *Instance {
	var best *Instance
	var bestReq int64
	bestModels, ties := 0, 0
	for _, in := range v.Instances {
		if in == skip || !in.Healthy() || in.models == nil {
			continue
		}
		req, models := in.inflight.Load(), in.LoadedModels()
		switch {
		case best == nil || req < bestReq || (req == bestReq && models < bestModels):
			best, bestReq, bestModels, ties = in, req, models, 1
		case req == bestReq && models == bestModels:
			ties++
			if rand.IntN(ties) == 0 {
				best = in
			}
		}
	}
	return best
}

// forwardMultiModel invokes a TargetModel in an instance, loading it first
// if it is not loaded there.
func (r *Router) forwardMultiModel(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, in *Instance, req *Request) outcome {
	mm := v.MultiModel
	c := &in.Containers[0]
	for attempt := 0; ; attempt++ {
		m, err := r.acquire(ctx, t, v, in, req.TargetModel, req.modelName)
		if err != nil {
			return outcome{err: err}
		}
		cctx, cancel := context.WithTimeout(ctx, r.timeout(req))
		resp, err := r.send(cctx, time.Time{}, c, m.invoke, req.Body, req.ContentType, req.Accept, req, req.TargetModel)
		if err != nil {
			r.release(in, m, mm, c)
			err = r.transportError(cctx, t, c, err)
			cancel()
			return outcome{err: err}
		}
		if resp.StatusCode == http.StatusNotFound && attempt == 0 {
			// The container no longer has it (it restarted): load again.
			resp.Body.Close()
			cancel()
			r.forget(in, m)
			continue
		}
		res := r.relay(w, cctx, t, v, in, c, resp, req)
		resp.Body.Close()
		cancel()
		r.release(in, m, mm, c)
		return res
	}
}

// acquire returns the loaded model for a TargetModel (of ModelName name)
// in an instance, loading it if needed, and marks it in use. A load that
// takes longer than the model timeout goes on in the background and the
// call gets ModelNotReadyException, as on SageMaker.
func (r *Router) acquire(ctx context.Context, t *Table, v *Variant, in *Instance, target, name string) (*loadedModel, error) {
	ms := in.models
	ms.mu.Lock()
	m := ms.byName[name]
	hit := m != nil && m.loaded
	if m == nil {
		m = &loadedModel{name: name, target: target, invoke: "/models/" + name + "/invoke", ready: make(chan struct{})}
		ms.byName[name] = m
		go r.load(t, v, in, m)
	}
	m.users++
	ms.clock++
	m.lastUse = ms.clock
	ms.mu.Unlock()
	if vm := v.Metrics; vm != nil {
		if hit {
			vm.ModelCacheHits.Inc()
		} else {
			vm.ModelCacheMisses.Inc()
		}
	}
	waitStart := time.Now()
	select {
	case <-m.ready: // loaded already: no timer
	default:
		timer := time.NewTimer(r.ModelTimeout)
		defer timer.Stop()
		select {
		case <-m.ready:
		case <-ctx.Done():
			r.unuse(in, m)
			return nil, ctx.Err()
		case <-timer.C:
			r.unuse(in, m)
			return nil, sagehost.Errorf(sagehost.CodeModelNotReady,
				"Model %s is still loading on endpoint %s; it did not become ready within %s. Retry the request: the load goes on.", target, t.Key.Name, r.ModelTimeout)
		}
	}
	if !hit && v.Metrics != nil {
		v.Metrics.ModelLoadingWaitTime.Observe(time.Since(waitStart).Seconds())
	}
	if m.err != nil {
		r.unuse(in, m)
		return nil, m.err
	}
	return m, nil
}

func (r *Router) unuse(in *Instance, m *loadedModel) {
	in.models.mu.Lock()
	m.users--
	in.models.mu.Unlock()
}

// release ends one use of a model; with the model cache disabled, the
// last user unloads it.
func (r *Router) release(in *Instance, m *loadedModel, mm *MultiModel, c *Container) {
	in.models.mu.Lock()
	m.users--
	// A model another call forgot (its container lost it) may have been
	// loaded again under the same name meanwhile: that one stays.
	unload := mm.CacheDisabled && m.users == 0 && m.loaded && in.models.byName[m.name] == m
	if unload {
		in.models.drop(m)
	}
	in.models.mu.Unlock()
	if unload {
		go r.unload(context.Background(), c, m.name, nil)
	}
}

// forget drops a model the container no longer has.
func (r *Router) forget(in *Instance, m *loadedModel) {
	in.models.mu.Lock()
	defer in.models.mu.Unlock()
	m.users--
	in.models.drop(m)
}

// load fetches a model's archive and loads it into the instance's
// container, making room first. It ends by closing m.ready.
func (r *Router) load(t *Table, v *Variant, in *Instance, m *loadedModel) {
	mm := v.MultiModel
	timeout := mm.LoadTimeout
	if timeout <= 0 {
		timeout = 360 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := &in.Containers[0]
	fail := func(err error) {
		in.models.mu.Lock()
		m.err = err
		in.models.drop(m) // the next call tries again
		in.models.mu.Unlock()
		close(m.ready)
	}
	dl := time.Now()
	dir, size, err := mm.Fetch(ctx, m.target)
	if err != nil {
		fail(validationError("Could not get the data of target model %s from the multi-model endpoint's prefix: %v", m.target, err))
		return
	}
	if vm := v.Metrics; vm != nil {
		vm.ModelDownloadingTime.Observe(time.Since(dl).Seconds())
	}
	url := dir
	if in.ModelsMount != "" {
		rel, err := filepath.Rel(mm.Root, dir)
		if err != nil {
			fail(fmt.Errorf("model %s: %w", m.target, err))
			return
		}
		url = path.Join(in.ModelsMount, filepath.ToSlash(rel))
	}
	r.makeRoom(ctx, v, in, c, m, size)
	start := time.Now()
	for {
		status, msg, err := r.loadCall(ctx, c, m.name, url)
		if err != nil {
			fail(r.transportError(ctx, t, c, err))
			return
		}
		if status == http.StatusInsufficientStorage && r.evictOne(ctx, v, in, c, m) {
			continue // out of memory: unload an unused model and try again
		}
		if status != http.StatusOK && status != http.StatusCreated && status != http.StatusConflict {
			kind := "client"
			if status >= 500 {
				kind = "server"
			}
			fail(r.newModelError(t, c, status, msg,
				fmt.Sprintf("Received %s error (%d) from %s while loading target model %s, with message %q. %s", kind, status, c.Name, m.target, msg, logHint(t, c)),
				"MODEL_LOAD_FAILED"))
			return
		}
		break
	}
	if vm := v.Metrics; vm != nil {
		vm.ModelLoadingTime.Observe(time.Since(start).Seconds())
	}
	in.models.mu.Lock()
	m.size, m.loaded = size, true
	if in.models.byName[m.name] == m {
		in.models.used += size
		in.models.loaded++
		in.models.changed()
	}
	in.models.mu.Unlock()
	close(m.ready)
}

// loadCall asks the container to load a model (POST /models).
func (r *Router) loadCall(ctx context.Context, c *Container, name, url string) (int, string, error) {
	body, _ := json.Marshal(map[string]string{"model_name": name, "url": url})
	resp, err := r.upstream.Do(ctx, time.Time{}, http.MethodPost, c.Addr, "/models", []upstream.Field{{Name: "Content-Type", Value: "application/json"}}, body)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	return resp.StatusCode, string(msg), nil
}

// makeRoom unloads least recently used, unused models until size more
// bytes fit in the instance's budget.
func (r *Router) makeRoom(ctx context.Context, v *Variant, in *Instance, c *Container, keep *loadedModel, size int64) {
	budget := v.MultiModel.BudgetBytes
	if budget <= 0 {
		return
	}
	for {
		in.models.mu.Lock()
		over := in.models.used+size > budget
		in.models.mu.Unlock()
		if !over || !r.evictOne(ctx, v, in, c, keep) {
			return
		}
	}
}

// evictOne unloads the least recently used model that no call is using;
// false when there is none.
func (r *Router) evictOne(ctx context.Context, v *Variant, in *Instance, c *Container, keep *loadedModel) bool {
	in.models.mu.Lock()
	var victim *loadedModel
	for _, m := range in.models.byName {
		if m == keep || !m.loaded || m.users > 0 {
			continue
		}
		if victim == nil || m.lastUse < victim.lastUse {
			victim = m
		}
	}
	if victim != nil {
		in.models.drop(victim)
	}
	in.models.mu.Unlock()
	if victim == nil {
		return false
	}
	r.unload(ctx, c, victim.name, v)
	return true
}

// unload asks the container to unload a model (DELETE /models/{name}).
func (r *Router) unload(ctx context.Context, c *Container, name string, v *Variant) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := r.upstream.Do(ctx, time.Time{}, http.MethodDelete, c.Addr, "/models/"+name, nil, nil)
	if err != nil {
		r.Logger.Warn("unload model", "container", c.Addr, "model", name, "err", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if v != nil && v.Metrics != nil {
		v.Metrics.ModelUnloadingTime.Observe(time.Since(start).Seconds())
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound && !errors.Is(ctx.Err(), context.Canceled) {
		r.Logger.Warn("unload model", "container", c.Addr, "model", name, "status", resp.StatusCode)
	}
}
