package hosting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/clarify"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/instancetype"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/logstream"
	"github.com/sagehost/sagehost/metrics"
)

// instance is the controller's record of one instance.
type instance struct {
	instView
	// component and host are set for a copy of an inference component:
	// its component, the host it is placed on, what it reserves there.
	component    string
	host         string
	res          reservation
	backend      sagehost.Backend
	handle       *sagehost.InstanceHandle
	route        *invoke.Instance
	restarts     int
	healthySince time.Time
	stopWanted   bool
	cancel       context.CancelFunc // stops the health monitor
}

// controller reconciles one endpoint. Its fields are owned by its goroutine;
// other goroutines talk to it through events.
type controller struct {
	m      *Manager
	key    sagehost.EndpointKey
	log    *slog.Logger
	wakeCh chan struct{}
	events chan func()

	instances  map[string]*instance
	fetches    map[string]fetchView
	dirs       map[string]string // fetched model data by fetchKey
	vmetrics   map[string]*metrics.Variant
	explainers map[string]*clarify.Explainer // by deployment id
	captures   map[string]*invoke.Capture    // by deployment id
	comps      []control.InferenceComponent
	// hostList caches componentHosts(hostsOf), the serving deployment's
	// hosts (hostsOK: it was worked out).
	hostList  []host
	hostsOf   *sagehost.Deployment
	hostsOK   bool
	published *routeSig // of the last routing table published
	status    string
	state     *sagehost.EndpointState
	// bg tracks goroutines that start or stop instances, so that shutdown
	// can wait until none is left running untracked.
	bg sync.WaitGroup
}

func newController(m *Manager, key sagehost.EndpointKey) *controller {
	return &controller{
		m: m, key: key,
		log:        m.log.With("endpoint", key.Name, "account", key.Account, "region", key.Region),
		wakeCh:     make(chan struct{}, 1),
		events:     make(chan func(), 256),
		instances:  map[string]*instance{},
		fetches:    map[string]fetchView{},
		dirs:       map[string]string{},
		vmetrics:   map[string]*metrics.Variant{},
		explainers: map[string]*clarify.Explainer{},
		captures:   map[string]*invoke.Capture{},
	}
}

func (c *controller) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// post runs fn on the controller's goroutine.
func (c *controller) post(ctx context.Context, fn func()) {
	select {
	case c.events <- fn:
	case <-ctx.Done():
	}
}

func (c *controller) run(ctx context.Context, adopt []*sagehost.InstanceHandle) {
	defer c.m.finished(c)
	if !c.load(ctx) && ctx.Err() != nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		// Instances of an earlier run are adopted (or destroyed) by what
		// the stored endpoint wants, so only once it has been read.
		if adopt != nil && c.state != nil {
			c.adopt(ctx, adopt)
			adopt = nil
		}
		if done := c.reconcile(ctx); done {
			c.bg.Wait()
			return
		}
		select {
		case <-ctx.Done():
			c.shutdown()
			return
		case <-c.wakeCh:
			c.load(ctx)
		case fn := <-c.events:
			fn()
		case <-tick.C:
			c.load(ctx)
		}
	}
}

// load reads the endpoint from the store. It reports whether it succeeded;
// a missing endpoint is loaded as status "".
func (c *controller) load(ctx context.Context) bool {
	rec, err := c.m.cfg.Store.Get(ctx, sagehost.KindEndpoint, c.key.Account, c.key.Region, c.key.Name)
	if errors.Is(err, sagehost.ErrNotFound) {
		c.status, c.state = "", &sagehost.EndpointState{}
		return true
	}
	if err != nil {
		c.log.Warn("read endpoint", "err", err)
		return false
	}
	st, err := control.DecodeEndpointState(rec)
	if err != nil {
		c.log.Error("decode endpoint", "err", err)
		return false
	}
	comps, err := control.EndpointInferenceComponents(ctx, c.m.cfg.Store, c.key)
	if err != nil {
		c.log.Warn("read inference components", "err", err)
		return false
	}
	c.status, c.state, c.comps = rec.Status, st, comps
	return true
}

// adopt takes over instances that an earlier sagehost process started.
func (c *controller) adopt(ctx context.Context, handles []*sagehost.InstanceHandle) {
	for _, h := range handles {
		dep, variant := h.Labels[sagehost.LabelDeployment], h.Labels[sagehost.LabelVariant]
		d := c.deployment(dep)
		b := c.m.backend(h.Backend)
		if h.Labels[sagehost.LabelComponent] != "" {
			if !c.adoptCopy(ctx, b, h) {
				c.log.Info("removing copy no inference component wants", "instance", h.ID)
				c.destroy(ctx, b, h.ID)
			}
			continue
		}
		if d == nil || d.Variant(variant) == nil || c.status == sagehost.StatusDeleting || c.status == sagehost.StatusFailed {
			c.log.Info("removing instance no deployment wants", "instance", h.ID)
			c.destroy(ctx, b, h.ID)
			continue
		}
		if err := b.Recover(ctx, h); err != nil {
			c.log.Info("instance left by an earlier run is gone; a new one will replace it", "instance", h.ID, "err", err)
			c.destroy(ctx, b, h.ID)
			continue
		}
		inst := &instance{
			instView: instView{ID: h.ID, Deployment: dep, Variant: variant, Phase: phaseRunning,
				EverHealthy: c.state.Serving != nil && c.state.Serving.ID == dep, StartedAt: time.Now()},
			backend: b,
			handle:  h,
		}
		c.instances[h.ID] = inst
		if g := h.Labels[sagehost.LabelGPUs]; g != "" && c.m.cfg.GPUs != nil {
			if err := c.m.cfg.GPUs.Reserve(h.ID, strings.Split(g, ",")); err != nil {
				c.log.Warn("adopted instance's GPUs", "instance", h.ID, "err", err)
			}
		}
		c.log.Info("adopted running instance", "instance", h.ID, "variant", variant)
		c.watch(ctx, inst)
	}
}

func (c *controller) destroy(ctx context.Context, b sagehost.Backend, id string) {
	if err := b.Destroy(ctx, id); err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
		c.log.Warn("destroy instance", "instance", id, "err", err)
	}
}

func (c *controller) deployment(id string) *sagehost.Deployment {
	if c.state == nil {
		return nil
	}
	if c.state.Serving != nil && c.state.Serving.ID == id {
		return c.state.Serving
	}
	if c.state.Pending != nil && c.state.Pending.ID == id {
		return c.state.Pending
	}
	return nil
}

func (c *controller) startupTimeout(d *sagehost.Deployment, variant string) time.Duration {
	if v := d.Config.Variant(variant); v != nil && v.ContainerStartupHealthCheckTimeoutInSeconds != nil {
		return time.Duration(*v.ContainerStartupHealthCheckTimeoutInSeconds) * time.Second
	}
	return c.m.cfg.StartupTimeout
}

// reconcile computes and applies one plan. It reports true when the endpoint
// is gone and the controller should exit.
func (c *controller) reconcile(ctx context.Context) bool {
	if c.state == nil {
		return false // not loaded yet
	}
	if c.status == "" { // the record is gone
		for _, inst := range c.instances {
			c.stop(ctx, inst)
		}
		c.m.cfg.Router.Remove(c.key)
		if len(c.instances) == 0 {
			c.m.cfg.Metrics.EndpointGone(c.key)
			return true
		}
		return false
	}
	views := make([]instView, 0, len(c.instances))
	for _, inst := range c.instances {
		if inst.component == "" { // copies of components are planned apart
			views = append(views, inst.instView)
		}
	}
	p := computePlan(planInput{
		Status: c.status, State: c.state, Instances: views, Fetches: c.fetches,
		Now: time.Now(), StartupTimeout: c.startupTimeout,
	})
	for _, f := range p.Fetch {
		c.fetch(ctx, f)
	}
	for _, id := range p.Stop {
		c.stop(ctx, c.instances[id])
	}
	for _, id := range p.Restart {
		c.restart(ctx, c.instances[id])
	}
	for _, s := range p.Start {
		c.start(ctx, s)
	}
	c.apply(ctx, p)
	c.reconcileComponents(ctx)
	c.publish()
	if c.status == sagehost.StatusDeleting && len(c.instances) == 0 {
		c.m.cfg.Router.Remove(c.key)
		err := c.m.cfg.Store.Delete(ctx, sagehost.KindEndpoint, c.key.Account, c.key.Region, c.key.Name)
		if err != nil && !errors.Is(err, sagehost.ErrNotFound) {
			c.log.Warn("delete endpoint record", "err", err)
			return false
		}
		c.m.cfg.Metrics.EndpointGone(c.key)
		c.log.Info("endpoint deleted")
		return true
	}
	return false
}

// apply records a plan's transition and the observed instance counts.
func (c *controller) apply(ctx context.Context, p plan) {
	observedChanged := false
	for _, d := range []*sagehost.Deployment{c.state.Serving, c.state.Pending} {
		if d == nil {
			continue
		}
		for i := range d.Variants {
			if v := &d.Variants[i]; observedCount(d, v, p.Healthy) != v.CurrentInstanceCount {
				observedChanged = true
			}
		}
	}
	if p.Transition == noTransition && !observedChanged || p.Transition == teardown {
		return
	}
	servingID, pendingID := "", ""
	if c.state.Serving != nil {
		servingID = c.state.Serving.ID
	}
	if c.state.Pending != nil {
		pendingID = c.state.Pending.ID
	}
	becameInService := false
	var st *sagehost.EndpointState // as written
	rec, err := c.m.cfg.Store.Update(ctx, sagehost.KindEndpoint, c.key.Account, c.key.Region, c.key.Name, func(r *sagehost.Record) error {
		var err error
		if st, err = control.DecodeEndpointState(r); err != nil {
			return err
		}
		// The plan was made from what we read earlier; act only if the
		// control plane has not changed the endpoint since.
		if (st.Serving == nil) != (servingID == "") || (st.Serving != nil && st.Serving.ID != servingID) ||
			(st.Pending == nil) != (pendingID == "") || (st.Pending != nil && st.Pending.ID != pendingID) || r.Status != c.status {
			return errStale
		}
		observe(st, p.Healthy)
		now := time.Now().UTC()
		switch p.Transition {
		case promote:
			for i := range st.Pending.Variants {
				st.Pending.Variants[i].CurrentWeight = st.Pending.Variants[i].DesiredWeight
			}
			st.Serving, st.Pending = st.Pending, nil
			st.EndpointConfigName = st.Serving.ConfigName
			st.FailureReason = ""
			r.Status = sagehost.StatusInService
			becameInService = true
		case failCreate:
			st.FailureReason = truncate(p.Reason, 1024)
			r.Status = sagehost.StatusFailed
		case rollback:
			st.FailureReason = truncate(fmt.Sprintf("Updating the endpoint to endpoint config %q failed, so it was rolled back to %q: %s",
				st.Pending.ConfigName, st.Serving.ConfigName, p.Reason), 1024)
			st.Pending = nil
			r.Status = sagehost.StatusInService
		case scaleDone:
			for i := range st.Serving.Variants {
				st.Serving.Variants[i].CurrentWeight = st.Serving.Variants[i].DesiredWeight
			}
			st.FailureReason = ""
			r.Status = sagehost.StatusInService
		case scaleFailed:
			for i := range st.Serving.Variants {
				v := &st.Serving.Variants[i]
				v.CurrentWeight = v.DesiredWeight
				if v.VariantName == p.ScaleFailedVariant {
					v.DesiredInstanceCount = p.Healthy[variantKey(st.Serving.ID, v.VariantName)]
				}
			}
			st.FailureReason = truncate("Changing the instance count failed: "+p.Reason, 1024)
			r.Status = sagehost.StatusInService
		}
		if p.Transition != noTransition {
			r.LastModifiedTime = now
		}
		return control.EncodeEndpointState(r, st)
	})
	if errors.Is(err, errStale) || errors.Is(err, sagehost.ErrNotFound) {
		c.load(ctx)
		return
	}
	if err != nil {
		c.log.Warn("record endpoint state", "err", err)
		return
	}
	if rec.Status != c.status {
		c.log.Info("endpoint status changed", "from", c.status, "to", rec.Status, "reason", st.FailureReason)
	}
	c.status, c.state = rec.Status, st
	if becameInService && c.m.cfg.OnInService != nil {
		c.m.cfg.OnInService(c.key)
	}
}

var errStale = errors.New("endpoint changed meanwhile")

// observe writes the healthy instance counts into a state.
func observe(st *sagehost.EndpointState, healthy map[string]int) {
	for _, d := range []*sagehost.Deployment{st.Serving, st.Pending} {
		if d == nil {
			continue
		}
		for i := range d.Variants {
			v := &d.Variants[i]
			v.CurrentInstanceCount = observedCount(d, v, healthy)
		}
	}
}

// observedCount is the CurrentInstanceCount hosting reports for a variant:
// its healthy instances, or for a variant that hosts inference components
// (no model of its own) its desired count.
func observedCount(d *sagehost.Deployment, v *sagehost.VariantState, healthy map[string]int) int {
	if _, ok := d.Models[v.ModelName]; ok {
		return healthy[variantKey(d.ID, v.VariantName)]
	}
	return v.DesiredInstanceCount
}

// routeSig is the signature of a routing table: the controller publishes
// a new table when it changes.
type routeSig struct {
	Status     string
	Variants   []string
	Weights    []float64
	Instances  []string // ID@ADDRS of each variant's routed instances, sorted per variant
	Components []string
}

// publish installs the endpoint's routing table when it changed: the
// signature is worked out on every pass, the table only when the
// signature differs from the last one published.
func (c *controller) publish() {
	routable := c.status == sagehost.StatusInService || c.status == sagehost.StatusUpdating
	s := &routeSig{Status: c.status}
	d := c.state.Serving
	var routed [][]*instance // by variant of d
	componentHost := false
	if d != nil && routable {
		routed = make([][]*instance, len(d.Variants))
		for i, v := range d.Variants {
			if _, ok := d.Models[v.ModelName]; !ok {
				componentHost = true
			}
			n := len(s.Instances)
			for _, inst := range c.instances {
				if inst.Deployment == d.ID && inst.Variant == v.VariantName && inst.route != nil && inst.Phase != phaseStopping {
					routed[i] = append(routed[i], inst)
					s.Instances = append(s.Instances, inst.ID+"@"+strings.Join(inst.handle.Addrs, ","))
				}
			}
			sort.Strings(s.Instances[n:])
			s.Variants = append(s.Variants, v.VariantName)
			s.Weights = append(s.Weights, v.CurrentWeight)
		}
	}
	var comps []componentRoute
	if componentHost {
		comps = c.routedComponents()
		for _, r := range comps {
			for _, cp := range r.copies {
				s.Components = append(s.Components, r.comp.Record.Name+"="+cp.ID)
			}
			s.Components = append(s.Components, r.comp.Record.Name)
		}
		sort.Strings(s.Components)
	}
	if c.published != nil && reflect.DeepEqual(c.published, s) {
		return
	}
	c.published = s
	t := &invoke.Table{Key: c.key, Status: c.status, ComponentHost: componentHost}
	if d != nil {
		a, err := d.Config.Async()
		if err != nil {
			c.log.Error("asynchronous inference config", "err", err)
		}
		t.Async = a
	}
	if routed != nil {
		for i, v := range d.Variants {
			iv := &invoke.Variant{Name: v.VariantName, Weight: v.CurrentWeight, Metrics: c.variantMetrics(v.VariantName), Capture: c.captureOf(d), Explainer: c.explainerOf(d)}
			if pv := d.Config.Variant(v.VariantName); pv != nil && pv.RoutingConfig != nil {
				iv.Strategy = pv.RoutingConfig.RoutingStrategy
			}
			if m, ok := d.Models[v.ModelName]; ok {
				c.routingOf(d, &v, m, iv)
			}
			for _, inst := range routed[i] {
				iv.Instances = append(iv.Instances, inst.route)
			}
			if v.Shadow {
				t.Shadow = iv
			} else {
				t.Variants = append(t.Variants, iv)
			}
		}
		t.ShadowFraction = shadowFraction(d)
	}
	if componentHost {
		t.Components = c.componentRoutes(comps)
	}
	c.m.cfg.Router.Publish(t)
}

// routingOf sets how a variant's model is invoked: the mode of a
// multi-container model, the multi-model settings of an MME.
func (c *controller) routingOf(d *sagehost.Deployment, v *sagehost.VariantState, m sagehost.ModelSpec, iv *invoke.Variant) {
	containers := m.ContainerList()
	if len(containers) > 1 {
		iv.Mode = "Serial"
		if m.InferenceExecutionConfig != nil && m.InferenceExecutionConfig.Mode != "" {
			iv.Mode = m.InferenceExecutionConfig.Mode
		}
	}
	if len(containers) == 0 || !containers[0].IsMultiModel() {
		return
	}
	cdef := containers[0]
	prefix := cdef.ModelDataURI()
	mm := &invoke.MultiModel{Root: c.m.cfg.ModelData.Root()}
	if cdef.MultiModelConfig != nil && cdef.MultiModelConfig.ModelCacheSetting == "Disabled" {
		mm.CacheDisabled = true
	}
	if c.m.cfg.MultiModelBudget > 0 {
		mm.BudgetBytes = c.m.cfg.MultiModelBudget
	} else if t, ok := instancetype.Lookup(v.InstanceType); ok {
		mm.BudgetBytes = t.MemoryBytes() * 9 / 10 // leave a tenth for the container's own needs
	}
	data := c.m.cfg.ModelData
	mm.Fetch = func(ctx context.Context, target string) (string, int64, error) {
		return data.FetchTarget(ctx, prefix, target)
	}
	iv.MultiModel = mm
}

// explainerOf returns the Clarify explainer of a deployment's config, made
// once (its baseline is read in the background), or nil without one.
func (c *controller) explainerOf(d *sagehost.Deployment) *clarify.Explainer {
	if len(d.Config.ExplainerConfig) == 0 {
		return nil
	}
	if e, ok := c.explainers[d.ID]; ok {
		return e
	}
	var e *clarify.Explainer
	cfg, err := clarify.ParseConfig(d.Config.ExplainerConfig)
	if err == nil {
		e, err = clarify.New(cfg, c.m.cfg.ModelData.FetchBytes)
	}
	if err != nil {
		c.log.Error("explainer", "deployment", d.ID, "err", err) // CreateEndpoint checked it already
	} else {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := e.Prepare(ctx); err != nil {
				c.log.Warn("explainer baseline", "deployment", d.ID, "err", err)
			}
		}()
	}
	c.explainers[d.ID] = e
	return e
}

// captureOf returns the data capture of a deployment's config, or nil when
// it captures nothing; it is worked out once per deployment.
func (c *controller) captureOf(d *sagehost.Deployment) *invoke.Capture {
	if c.m.cfg.Capture == nil || len(d.Config.DataCaptureConfig) == 0 {
		return nil
	}
	cp, ok := c.captures[d.ID]
	if !ok {
		cp = c.parseCapture(d)
		c.captures[d.ID] = cp
	}
	return cp
}

// shadowFraction is the share of the production variant's requests that
// its shadow variant gets a copy of: the shadow's weight over the
// production variant's, at most 1 (SageMaker's encoding of the sampling
// percentage is not documented; see the spec, 4.3).
func shadowFraction(d *sagehost.Deployment) float64 {
	var prod, shadow float64
	for _, v := range d.Variants {
		if v.Shadow {
			shadow += v.CurrentWeight
		} else {
			prod += v.CurrentWeight
		}
	}
	if prod <= 0 || shadow <= 0 {
		return 0
	}
	return min(1, shadow/prod)
}

// parseCapture decodes a deployment's DataCaptureConfig.
func (c *controller) parseCapture(d *sagehost.Deployment) *invoke.Capture {
	var dc struct {
		EnableCapture             *bool  `json:"EnableCapture"`
		InitialSamplingPercentage int    `json:"InitialSamplingPercentage"`
		DestinationS3Uri          string `json:"DestinationS3Uri"`
		CaptureOptions            []struct {
			CaptureMode string `json:"CaptureMode"`
		} `json:"CaptureOptions"`
		CaptureContentTypeHeader *struct {
			CsvContentTypes  []string `json:"CsvContentTypes"`
			JsonContentTypes []string `json:"JsonContentTypes"`
		} `json:"CaptureContentTypeHeader"`
	}
	if err := json.Unmarshal(d.Config.DataCaptureConfig, &dc); err != nil || (dc.EnableCapture != nil && !*dc.EnableCapture) || dc.InitialSamplingPercentage <= 0 {
		return nil
	}
	cp := &invoke.Capture{Writer: c.m.cfg.Capture, Destination: dc.DestinationS3Uri, Percent: dc.InitialSamplingPercentage}
	for _, o := range dc.CaptureOptions {
		switch o.CaptureMode {
		case "Input":
			cp.Input = true
		case "Output":
			cp.Output = true
		case "InputAndOutput":
			cp.Input, cp.Output = true, true
		}
	}
	if h := dc.CaptureContentTypeHeader; h != nil {
		cp.CSVTypes, cp.JSONTypes = h.CsvContentTypes, h.JsonContentTypes
	}
	return cp
}

// componentMetrics returns a component's invocation series, resolved once.
func (c *controller) componentMetrics(variant, component string) *metrics.Variant {
	if c.m.cfg.Metrics == nil {
		return nil
	}
	k := variant + "\x00" + component
	vm, ok := c.vmetrics[k]
	if !ok {
		vm = c.m.cfg.Metrics.Component(c.key, variant, component)
		c.vmetrics[k] = vm
	}
	return vm
}

// variantMetrics returns a variant's invocation series, resolved once.
func (c *controller) variantMetrics(variant string) *metrics.Variant {
	if c.m.cfg.Metrics == nil {
		return nil
	}
	vm, ok := c.vmetrics[variant]
	if !ok {
		vm = c.m.cfg.Metrics.Variant(c.key, variant)
		c.vmetrics[variant] = vm
	}
	return vm
}

// fetch fetches one container's model data in the background.
func (c *controller) fetch(ctx context.Context, f fetchReq) {
	d := c.deployment(f.Deployment)
	v := d.Variant(f.Variant)
	model := d.Models[v.ModelName]
	timeout := DefaultFetchTimeout
	if pv := d.Config.Variant(f.Variant); pv != nil && pv.ModelDataDownloadTimeoutInSeconds != nil {
		timeout = time.Duration(*pv.ModelDataDownloadTimeoutInSeconds) * time.Second
	}
	c.fetchModelData(ctx, f.Key, model, f.Container, fmt.Sprintf("variant %q", f.Variant), timeout)
}

// fetchModelData fetches one container's model data in the background,
// recording the outcome under key.
func (c *controller) fetchModelData(ctx context.Context, key string, model sagehost.ModelSpec, container int, of string, timeout time.Duration) {
	cdef := model.ContainerList()[container]
	c.fetches[key] = fetchView{}
	name := containerName(model, container)
	go func() {
		fctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		dir, err := c.m.cfg.ModelData.Fetch(fctx, cdef)
		c.post(ctx, func() {
			if err != nil {
				c.log.Warn("fetch model data", "of", of, "container", name, "err", err)
				c.fetches[key] = fetchView{Done: true, Err: fmt.Sprintf("Failed to download model data for container %q of %s: %v", name, of, err)}
				return
			}
			c.fetches[key] = fetchView{Done: true}
			c.dirs[key] = dir
		})
	}()
}

// containerName is how SageMaker names a model's container in errors and
// log streams: "primary" for a lone PrimaryContainer, else its hostname or
// container-N.
func containerName(m sagehost.ModelSpec, i int) string {
	if m.PrimaryContainer != nil {
		return "primary"
	}
	if h := m.Containers[i].ContainerHostname; h != "" {
		return h
	}
	return fmt.Sprintf("container-%d", i+1)
}

func newInstanceID() string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "i-" + hex.EncodeToString(b)[:17]
}

// spec builds the InstanceSpec of an instance; false if model data is not
// fetched yet.
func (c *controller) spec(inst *instance) (sagehost.InstanceSpec, bool) {
	model, instanceType, scope, ok := c.modelOf(inst)
	if !ok {
		return sagehost.InstanceSpec{}, false
	}
	containers := model.ContainerList()
	spec := sagehost.InstanceSpec{
		ID: inst.ID,
		Labels: map[string]string{
			sagehost.LabelAccount: c.key.Account, sagehost.LabelRegion: c.key.Region, sagehost.LabelEndpoint: c.key.Name,
			sagehost.LabelVariant: inst.Variant, sagehost.LabelDeployment: inst.Deployment, sagehost.LabelInstance: inst.ID,
		},
		InstanceType: instanceType,
	}
	if inst.component != "" {
		spec.Labels[sagehost.LabelComponent] = inst.component
		spec.Labels[sagehost.LabelHost] = inst.host
	}
	for i, cdef := range containers {
		dir := ""
		if hasModelData(cdef) {
			var ok bool
			if dir, ok = c.dirs[fetchKey(inst.Deployment, scope, i)]; !ok {
				return sagehost.InstanceSpec{}, false
			}
		}
		name := ""
		if len(containers) > 1 {
			name = containerName(model, i)
		}
		image, args := cdef.Image, []string(nil)
		if c.m.cfg.ResolveImage != nil {
			image, args = c.m.cfg.ResolveImage(cdef.Image)
		}
		env, modelsDir := cdef.Environment, ""
		if cdef.IsMultiModel() {
			env = maps.Clone(env)
			if env == nil {
				env = map[string]string{}
			}
			env["SAGEMAKER_MULTI_MODEL"] = "true"
			modelsDir = c.m.cfg.ModelData.Root()
		}
		spec.Containers = append(spec.Containers, sagehost.ContainerSpec{
			Hostname:    cdef.ContainerHostname,
			Image:       image,
			Args:        args,
			Environment: env,
			ModelDir:    dir,
			ModelsDir:   modelsDir,
			LogPath:     logstream.Path(c.m.cfg.LogDir, c.key, inst.Variant, inst.ID, name),
		})
	}
	return spec, true
}

// start creates a new instance of a variant.
func (c *controller) start(ctx context.Context, s startReq) {
	inst := &instance{instView: instView{ID: newInstanceID(), Deployment: s.Deployment, Variant: s.Variant, Phase: phaseStarting, StartedAt: time.Now()}}
	spec, ok := c.spec(inst)
	if !ok {
		return
	}
	inst.backend = c.m.backendFor(spec.Containers[0].Image)
	c.instances[inst.ID] = inst
	if err := c.assignGPUs(inst, &spec); err != nil {
		c.log.Warn("cannot place instance", "variant", s.Variant, "instance", inst.ID, "err", err)
		inst.Phase, inst.Failure = phaseFailed, fmt.Sprintf("Could not start an instance of variant %q: %v", s.Variant, err)
		return
	}
	c.log.Info("starting instance", "variant", s.Variant, "instance", inst.ID, "backend", inst.backend.Name())
	c.launch(ctx, inst, spec)
}

// restart starts an exited instance again, under the same id and log.
func (c *controller) restart(ctx context.Context, inst *instance) {
	spec, ok := c.spec(inst)
	if !ok {
		inst.NextRestart = time.Now().Add(time.Second)
		return
	}
	if err := c.assignGPUs(inst, &spec); err != nil {
		c.backoff(inst, fmt.Sprintf("Could not restart instance %s of variant %q: %v", inst.ID, inst.Variant, err))
		return
	}
	c.log.Info("restarting instance", "variant", inst.Variant, "instance", inst.ID, "restarts", inst.restarts)
	c.m.cfg.Metrics.InstanceRestarted(c.key, inst.Variant, inst.ID)
	inst.Phase, inst.StartedAt, inst.route = phaseStarting, time.Now(), nil
	c.launch(ctx, inst, spec)
}

// assignGPUs gives an instance of a GPU type its own devices and records
// them in its labels, so that they stay reserved after a restart.
func (c *controller) assignGPUs(inst *instance, spec *sagehost.InstanceSpec) error {
	t, ok := instancetype.Lookup(spec.InstanceType)
	if !ok || !t.NVIDIA() || c.m.cfg.GPUs == nil {
		return nil
	}
	n := t.GPUs
	if inst.component != "" {
		n = inst.res.Accelerators // a copy holds what it reserved
	}
	if n == 0 {
		return nil
	}
	ids, err := c.m.cfg.GPUs.Allocate(spec.ID, spec.InstanceType, n)
	if err != nil {
		return err
	}
	spec.GPUs = ids
	spec.Labels[sagehost.LabelGPUs] = strings.Join(ids, ",")
	return nil
}

// forget drops an instance that is gone, and frees its GPUs.
func (c *controller) forget(id string) {
	delete(c.instances, id)
	if c.m.cfg.GPUs != nil {
		c.m.cfg.GPUs.Release(id)
	}
}

func (c *controller) launch(ctx context.Context, inst *instance, spec sagehost.InstanceSpec) {
	b := inst.backend
	restart := inst.handle != nil
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		if restart {
			if err := b.Destroy(ctx, spec.ID); err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
				c.log.Warn("destroy before restart", "instance", spec.ID, "err", err)
			}
		}
		h, err := b.Start(ctx, spec)
		select {
		case c.events <- func() { c.started(ctx, inst, h, err) }:
		case <-ctx.Done():
			// sagehost is shutting down: nothing may be left running that
			// the next start would not adopt.
			if err == nil && !outlivesSagehost(b) {
				c.halt(context.Background(), b, spec.ID)
			}
		}
	}()
}

func (c *controller) started(ctx context.Context, inst *instance, h *sagehost.InstanceHandle, err error) {
	if err != nil {
		c.log.Warn("instance failed to start", "instance", inst.ID, "err", err)
		reason := fmt.Sprintf("Could not start the container of variant %q (instance %s): %v", inst.Variant, inst.ID, err)
		if inst.stopWanted {
			c.forget(inst.ID)
			return
		}
		inst.handle = nil
		if c.restartable(inst) {
			c.backoff(inst, reason)
			return
		}
		inst.Phase, inst.Failure = phaseFailed, reason
		return
	}
	inst.handle = h
	if inst.stopWanted {
		c.stop(ctx, inst)
		return
	}
	inst.Phase = phaseRunning
	c.watch(ctx, inst)
}

// watch starts the instance's health monitor and builds its routing entry.
func (c *controller) watch(ctx context.Context, inst *instance) {
	route := &invoke.Instance{ID: inst.ID}
	var model *sagehost.ModelSpec
	if inst.component == "" { // a copy runs one plain container: model stays nil
		if m, _, _, ok := c.modelOf(inst); ok {
			model = &m
		}
	}
	for i, addr := range inst.handle.Addrs {
		name, stream := "primary", logstream.StreamName(inst.Variant, inst.ID, "")
		if model != nil && len(model.ContainerList()) > 1 {
			name = containerName(*model, i)
			stream = logstream.StreamName(inst.Variant, inst.ID, name)
		}
		route.Containers = append(route.Containers, invoke.NewContainer(name, addr, stream))
	}
	if model != nil && len(model.ContainerList()) > 0 && model.ContainerList()[0].IsMultiModel() {
		route.EnableMultiModel(c.m.cfg.Metrics.LoadedModels(c.key, inst.Variant, inst.ID))
		if outlivesSagehost(inst.backend) { // containers see the models root at /opt/ml/models
			route.ModelsMount = "/opt/ml/models"
		}
	}
	inst.route = route
	mctx, cancel := context.WithCancel(ctx)
	inst.cancel = cancel
	go c.monitor(mctx, inst.backend, inst.ID, inst.handle.Addrs, route)
}

func (c *controller) backoff(inst *instance, reason string) {
	if !inst.healthySince.IsZero() && time.Since(inst.healthySince) > 2*time.Minute {
		inst.restarts = 0
	}
	delay := time.Second << min(inst.restarts, 6)
	if delay > time.Minute {
		delay = time.Minute
	}
	inst.restarts++
	inst.Phase, inst.Failure, inst.NextRestart = phaseExited, reason, time.Now().Add(delay)
	inst.healthySince = time.Time{}
}

func (c *controller) exited(inst *instance, st sagehost.ExitStatus) {
	if inst.Phase == phaseStopping {
		return
	}
	how := fmt.Sprintf("exit code %d", st.ExitCode)
	if st.Signal != "" {
		how = "signal " + st.Signal
	}
	if st.Err != nil {
		how = st.Err.Error()
	}
	when := "while serving"
	if !inst.EverHealthy {
		when = "before passing the ping health check"
	}
	reason := fmt.Sprintf("The container of variant %q (instance %s) exited with %s %s.%s", inst.Variant, inst.ID, how, when, c.lastOutput(inst))
	c.log.Warn("instance exited", "instance", inst.ID, "variant", inst.Variant, "how", how)
	c.m.cfg.Metrics.InstanceHealthy(c.key, inst.Variant, inst.ID, false)
	if inst.cancel != nil {
		inst.cancel()
	}
	c.backoff(inst, reason)
}

// lastOutput quotes the end of an instance's log (its first container's)
// for a FailureReason.
func (c *controller) lastOutput(inst *instance) string {
	model, _, _, ok := c.modelOf(inst)
	containers := model.ContainerList()
	if !ok || len(containers) == 0 {
		return ""
	}
	name := ""
	if len(containers) > 1 {
		name = containerName(model, 0)
	}
	tail := logstream.Tail(logstream.Path(c.m.cfg.LogDir, c.key, inst.Variant, inst.ID, name), 5, 400)
	if tail == "" {
		return " It printed nothing."
	}
	return fmt.Sprintf(" Its last output: %q", tail)
}

func (c *controller) healthChanged(inst *instance, healthy bool) {
	if inst.Phase == phaseStopping || inst.Phase == phaseExited {
		return
	}
	c.m.cfg.Metrics.InstanceHealthy(c.key, inst.Variant, inst.ID, healthy)
	if healthy {
		if inst.Phase == phaseRunning {
			c.m.cfg.Metrics.ModelSetup(c.key, inst.Variant, time.Since(inst.StartedAt).Seconds())
		}
		inst.Phase, inst.EverHealthy, inst.healthySince = phaseHealthy, true, time.Now()
		c.log.Info("instance passed its health check", "instance", inst.ID, "variant", inst.Variant)
		return
	}
	inst.Phase = phaseUnhealthy
	c.log.Warn("instance failed its health check; out of routing", "instance", inst.ID, "variant", inst.Variant)
}

// stop takes an instance out of routing, stops and destroys it, then
// forgets it.
func (c *controller) stop(ctx context.Context, inst *instance) {
	if inst == nil || inst.Phase == phaseStopping {
		return
	}
	if inst.route != nil {
		inst.route.SetHealthy(false)
	}
	if inst.cancel != nil {
		inst.cancel()
	}
	if inst.Phase == phaseStarting {
		inst.stopWanted = true // stopped when Start returns
		return
	}
	if inst.handle == nil {
		c.forget(inst.ID)
		return
	}
	inst.Phase = phaseStopping
	c.log.Info("stopping instance", "instance", inst.ID, "variant", inst.Variant)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.halt(context.WithoutCancel(ctx), inst.backend, inst.ID)
		c.m.cfg.Metrics.InstanceGone(c.key, inst.Variant, inst.ID)
		c.post(ctx, func() { c.forget(inst.ID) })
	}()
}

// halt stops (SIGTERM, then SIGKILL after the stop timeout) and destroys an
// instance.
func (c *controller) halt(ctx context.Context, b sagehost.Backend, id string) {
	if err := b.Stop(ctx, id, c.m.cfg.StopTimeout); err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
		c.log.Warn("stop instance", "instance", id, "err", err)
	}
	c.destroy(ctx, b, id)
}

// shutdown stops every instance when sagehost exits cleanly, except on
// backends whose instances outlive sagehost (containers): those keep
// serving and are adopted when sagehost starts again.
func (c *controller) shutdown() {
	for _, inst := range c.instances {
		if inst.cancel != nil {
			inst.cancel()
		}
		if inst.route != nil {
			inst.route.SetHealthy(false)
		}
	}
	// Let in-flight starts and stops finish, then take in what they
	// reported, so that every started instance is known.
	c.bg.Wait()
	for drained := false; !drained; {
		select {
		case fn := <-c.events:
			fn()
		default:
			drained = true
		}
	}
	var wg sync.WaitGroup
	for _, inst := range c.instances {
		if inst.handle == nil || inst.Phase == phaseStopping || outlivesSagehost(inst.backend) {
			continue
		}
		wg.Add(1)
		go func(b sagehost.Backend, id string) {
			defer wg.Done()
			c.halt(context.Background(), b, id)
		}(inst.backend, inst.ID)
	}
	wg.Wait()
	c.bg.Wait()
}

// outlivesSagehost reports whether a backend's instances keep running
// without sagehost (Persistent() true), like containers under an engine.
func outlivesSagehost(b sagehost.Backend) bool {
	p, ok := b.(interface{ Persistent() bool })
	return ok && p.Persistent()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}
