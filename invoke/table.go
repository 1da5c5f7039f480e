// Package invoke owns the invoke path: per-endpoint routing tables published
// by the reconciler (immutable snapshots swapped atomically, so a call never
// takes a lock or touches the store), the choice of variant and instance, and
// the proxying of InvokeEndpoint to a model container with SageMaker's header
// rules, limits, timeouts and errors.
package invoke

import (
	"sync"
	"sync/atomic"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/clarify"
	"github.com/sagehost/sagehost/logstream"
	"github.com/sagehost/sagehost/metrics"
)

// Container is one container of an instance.
type Container struct {
	// Name is how errors name the container: "primary" for a lone primary
	// container (as SageMaker does), else its ContainerHostname or
	// container-N.
	Name string
	// Addr is the host:port of its HTTP server.
	Addr string
	// LogStream is its log stream: VARIANT/INSTANCE-ID, plus /NAME for
	// multi-container models.
	LogStream string
}

// NewContainer returns a container.
func NewContainer(name, addr, logStream string) Container {
	return Container{Name: name, Addr: addr, LogStream: logStream}
}

// Instance is one running instance as the invoke path sees it. Its health
// and in-flight count are atomics so that the hot path takes no lock.
type Instance struct {
	ID         string
	Containers []Container
	// ModelsMount is where a multi-model container sees the host directory
	// of fetched models ("" when it sees host paths as they are).
	ModelsMount string

	healthy  atomic.Bool
	inflight atomic.Int64
	models   *modelSet // multi-model instances: the models loaded in it
}

// NewInstance returns an instance of one container (its log stream that
// of the instance in the variant) that starts out unhealthy.
func NewInstance(id, variant, addr string) *Instance {
	return &Instance{ID: id, Containers: []Container{NewContainer("primary", addr, logstream.StreamName(variant, id, ""))}}
}

// SetHealthy takes the instance in or out of routing.
func (i *Instance) SetHealthy(ok bool) { i.healthy.Store(ok) }

// Healthy reports whether the instance takes traffic.
func (i *Instance) Healthy() bool { return i.healthy.Load() }

// Variant is a production variant in a routing table.
type Variant struct {
	Name      string
	Weight    float64
	Strategy  string // LEAST_OUTSTANDING_REQUESTS (default) or RANDOM
	Instances []*Instance
	// Metrics are the variant's series (nil: not recorded).
	Metrics *metrics.Variant
	// Mode is the InferenceExecutionConfig.Mode of a multi-container
	// model: "Serial" (an inference pipeline) or "Direct"; "" for one
	// container.
	Mode string
	// MultiModel is set for a multi-model endpoint's variant.
	MultiModel *MultiModel
	// Capture is set when the variant captures data.
	Capture *Capture
	// Explainer is set when the endpoint config has an ExplainerConfig:
	// calls are answered with SageMaker Clarify's explanations.
	Explainer *clarify.Explainer

	// Set by Publish:
	invoked []string       // the X-Amzn-Invoked-Production-Variant header's value
	direct  map[string]int // Direct mode: each container hostname's index in every instance
}

// prepare sets the fields Publish derives.
func (v *Variant) prepare() {
	v.invoked = []string{v.Name}
	if v.Mode != "Direct" || len(v.Instances) == 0 {
		return
	}
	// Every instance of a variant runs the same containers; a hostname
	// counts only where every instance has it at the same place.
	v.direct = map[string]int{}
	for k, c := range v.Instances[0].Containers {
		v.direct[c.Name] = k
	}
	for _, in := range v.Instances[1:] {
		for name, k := range v.direct {
			if k >= len(in.Containers) || in.Containers[k].Name != name {
				delete(v.direct, name)
			}
		}
	}
}

// healthyCount returns how many instances take traffic now.
func (v *Variant) healthyCount() int {
	n := 0
	for _, in := range v.Instances {
		if in.Healthy() {
			n++
		}
	}
	return n
}

// Table is the immutable routing table of one endpoint. The reconciler
// publishes a new one whenever the endpoint's status, variants, weights or
// instance set change; instance health changes need no new table.
type Table struct {
	Key    sagehost.EndpointKey
	Status string
	// Variants that take traffic. Empty while the endpoint is being created.
	Variants []*Variant
	// ComponentHost is set for endpoints that host inference components.
	ComponentHost bool
	// Components route InferenceComponentName: each component's copies,
	// as a variant named after the variant that hosts them.
	Components map[string]*Variant
	// Shadow, when set, gets a copy of ShadowFraction of the requests the
	// variants take (a shadow test); its answers go nowhere.
	Shadow         *Variant
	ShadowFraction float64
	// Async is set for an asynchronous endpoint (its config has an
	// AsyncInferenceConfig): it takes InvokeEndpointAsync calls only.
	Async *sagehost.AsyncInferenceConfig

	totalWeight float64 // of the variants with a weight over 0; set by Publish
}

// prepare sets the fields Publish derives, in the table and its variants.
func (t *Table) prepare() {
	t.totalWeight = 0
	for _, v := range t.Variants {
		if v.Weight > 0 {
			t.totalWeight += v.Weight
		}
		v.prepare()
	}
	for _, v := range t.Components {
		v.prepare()
	}
	if t.Shadow != nil {
		t.Shadow.prepare()
	}
}

func (t *Table) variant(name string) *Variant {
	for _, v := range t.Variants {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Invocable reports whether the endpoint's status lets it serve calls.
func (t *Table) Invocable() bool {
	return t.Status == sagehost.StatusInService || t.Status == sagehost.StatusUpdating
}

// HealthyInstances counts the healthy instances of the variants that take
// traffic.
func (t *Table) HealthyInstances() int {
	n := 0
	for _, v := range t.Variants {
		n += v.healthyCount()
	}
	return n
}

// tables is a copy-on-write map of routing tables.
type tables struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[sagehost.EndpointKey]*Table]
}

func (ts *tables) get(key sagehost.EndpointKey) *Table {
	m := ts.m.Load()
	if m == nil {
		return nil
	}
	return (*m)[key]
}

func (ts *tables) update(fn func(m map[sagehost.EndpointKey]*Table)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	next := map[sagehost.EndpointKey]*Table{}
	if cur := ts.m.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	fn(next)
	ts.m.Store(&next)
}
