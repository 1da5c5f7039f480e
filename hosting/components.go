package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/invoke"
)

// Inference components: each component runs DesiredCopyCount copies of its
// model across the hosts of its variant (the variant's instances, which
// run nothing themselves), each copy reserving the CPU cores, memory and
// accelerators the component asks for. A copy is an instance like any
// other (a process or a container), labelled with its component and host.

// componentScope is the fetch-key scope of a component's model data.
func componentScope(component string) string { return "ic:" + component }

// componentOf returns the stored component called name.
func (c *controller) componentOf(name string) *control.InferenceComponent {
	for i := range c.comps {
		if c.comps[i].Record.Name == name {
			return &c.comps[i]
		}
	}
	return nil
}

// componentDeployment returns the version of a component a copy runs.
func componentDeployment(st *sagehost.InferenceComponentState, id string) *sagehost.InferenceComponentDeployment {
	if st.Current.ID == id {
		return &st.Current
	}
	if st.Previous != nil && st.Previous.ID == id {
		return st.Previous
	}
	return nil
}

// hosts returns the hosts of the serving deployment, worked out once per
// state read (a read decodes a new Serving).
func (c *controller) hosts() []host {
	if !c.hostsOK || c.hostsOf != c.state.Serving {
		c.hostList, c.hostsOf, c.hostsOK = componentHosts(c.state.Serving), c.state.Serving, true
	}
	return c.hostList
}

// hostByID finds a host of the serving deployment.
func (c *controller) hostByID(id string) *host {
	hosts := c.hosts()
	for i := range hosts {
		if hosts[i].ID == id {
			h := hosts[i]
			return &h
		}
	}
	return nil
}

// modelOf returns what an instance runs: its model, its instance type and
// the scope of its model data's fetch keys.
func (c *controller) modelOf(inst *instance) (sagehost.ModelSpec, string, string, bool) {
	if inst.component == "" {
		d := c.deployment(inst.Deployment)
		if d == nil {
			return sagehost.ModelSpec{}, "", "", false
		}
		v := d.Variant(inst.Variant)
		if v == nil {
			return sagehost.ModelSpec{}, "", "", false
		}
		m, ok := d.Models[v.ModelName]
		return m, v.InstanceType, inst.Variant, ok
	}
	comp := c.componentOf(inst.component)
	h := c.hostByID(inst.host)
	if comp == nil || h == nil {
		return sagehost.ModelSpec{}, "", "", false
	}
	dep := componentDeployment(comp.State, inst.Deployment)
	if dep == nil {
		return sagehost.ModelSpec{}, "", "", false
	}
	sp := dep.Spec.ForInstanceType(h.InstanceType)
	if sp == nil {
		return sagehost.ModelSpec{}, "", "", false
	}
	m, ok := dep.Model(sp)
	return m, h.InstanceType, componentScope(inst.component), ok
}

// restartable reports whether an instance that ended is started again.
func (c *controller) restartable(inst *instance) bool {
	if inst.component == "" {
		return isRestartable(c.status, c.state, inst.Deployment, inst.EverHealthy)
	}
	comp := c.componentOf(inst.component)
	return comp != nil && comp.State.Current.ID == inst.Deployment && (inst.EverHealthy || comp.Record.Status == sagehost.StatusInService)
}

// adoptCopy takes over a copy an earlier sagehost process started, if its
// component still wants it.
func (c *controller) adoptCopy(ctx context.Context, b sagehost.Backend, h *sagehost.InstanceHandle) bool {
	name, hostID, dep := h.Labels[sagehost.LabelComponent], h.Labels[sagehost.LabelHost], h.Labels[sagehost.LabelDeployment]
	comp := c.componentOf(name)
	hst := c.hostByID(hostID)
	if comp == nil || hst == nil || componentDeployment(comp.State, dep) == nil ||
		comp.Record.Status == sagehost.StatusDeleting || comp.Record.Status == sagehost.StatusFailed {
		return false
	}
	if err := b.Recover(ctx, h); err != nil {
		return false
	}
	sp := componentDeployment(comp.State, dep).Spec.ForInstanceType(hst.InstanceType)
	inst := &instance{
		instView:  instView{ID: h.ID, Deployment: dep, Variant: hst.Variant, Phase: phaseRunning, EverHealthy: true, StartedAt: time.Now()},
		component: name, host: hostID, res: reservationOf(sp), backend: b, handle: h,
	}
	c.instances[h.ID] = inst
	c.log.Info("adopted running copy", "instance", h.ID, "component", name)
	c.watch(ctx, inst)
	return true
}

// copiesOf returns the copies of a component.
func (c *controller) copiesOf(name string) []*instance {
	var out []*instance
	for _, inst := range c.instances {
		if inst.component == name {
			out = append(out, inst)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// placedCopies lists every live copy's reservation, for placement.
func (c *controller) placedCopies() []placedCopy {
	var out []placedCopy
	for _, inst := range c.instances {
		if inst.component != "" && inst.Phase != phaseStopping && inst.Phase != phaseFailed {
			out = append(out, placedCopy{Host: inst.host, Res: inst.res, Component: inst.component})
		}
	}
	return out
}

// componentChange is what reconciling a component decided to record.
type componentChange struct {
	status        string
	failure       *string
	desired       *int
	rollback      bool // Current becomes Previous
	rolledForward bool // Previous is done with
}

// reconcileComponents drives every component of the endpoint towards its
// desired copies.
func (c *controller) reconcileComponents(ctx context.Context) {
	serving := c.status == sagehost.StatusInService || c.status == sagehost.StatusUpdating
	hosts := c.hosts()
	now := time.Now()
	for i := range c.comps {
		comp := &c.comps[i]
		rec, st := comp.Record, comp.State
		copies := c.copiesOf(rec.Name)
		if rec.Status == sagehost.StatusDeleting || rec.Status == sagehost.StatusFailed || c.status == sagehost.StatusDeleting {
			for _, cp := range copies {
				c.stop(ctx, cp)
			}
			if rec.Status == sagehost.StatusDeleting && len(copies) == 0 {
				if err := control.FinishInferenceComponentDeletion(ctx, c.m.cfg.Store, rec); err != nil {
					c.log.Warn("finish inference component deletion", "component", rec.Name, "err", err)
				} else {
					c.log.Info("inference component deleted", "component", rec.Name)
				}
			}
			continue
		}
		if base := st.Current.Spec.BaseInferenceComponentName(); base != "" {
			if b := c.componentOf(base); b != nil && b.Record.Status == sagehost.StatusInService && rec.Status != sagehost.StatusInService {
				c.recordComponent(ctx, comp, componentChange{status: sagehost.StatusInService})
			}
			continue
		}
		if !serving || len(hosts) == 0 {
			continue // the endpoint is not up yet
		}
		c.reconcileComponent(ctx, comp, copies, hosts, now)
	}
}

// reconcileComponent handles one component that should run.
func (c *controller) reconcileComponent(ctx context.Context, comp *control.InferenceComponent, copies []*instance, hosts []host, now time.Time) {
	rec, st := comp.Record, comp.State
	var cur, prev []*instance
	healthyCur := 0
	failure := ""
	for _, cp := range copies {
		switch {
		case cp.Deployment == st.Current.ID:
			if cp.Phase == phaseStopping {
				continue
			}
			cur = append(cur, cp)
			if cp.Phase == phaseHealthy {
				healthyCur++
			}
			if failure == "" && !c.restartable(cp) && (cp.Phase == phaseFailed || cp.Phase == phaseExited ||
				(cp.Phase == phaseRunning && now.Sub(cp.StartedAt) > c.componentStartupTimeout(st, cp))) {
				failure = cp.Failure
				if failure == "" {
					failure = fmt.Sprintf("The copy %s did not pass the ping health check in time.", cp.ID)
				}
			}
			if cp.Phase == phaseExited && c.restartable(cp) && !now.Before(cp.NextRestart) {
				c.restart(ctx, cp)
			}
		case st.Previous != nil && cp.Deployment == st.Previous.ID:
			if cp.Phase != phaseStopping {
				prev = append(prev, cp)
			}
		default:
			c.stop(ctx, cp) // a version nobody wants
		}
	}
	desired := st.DesiredCopyCount
	if failure != "" {
		for _, cp := range cur {
			c.stop(ctx, cp)
		}
		switch {
		case st.Previous != nil:
			reason := "Updating the inference component failed and it was rolled back: " + failure
			c.recordComponent(ctx, comp, componentChange{status: sagehost.StatusInService, failure: &reason, rollback: true})
		case rec.Status == sagehost.StatusCreating:
			c.recordComponent(ctx, comp, componentChange{status: sagehost.StatusFailed, failure: &failure})
		default:
			reason := "Changing the copy count failed: " + failure
			n := healthyCur
			c.recordComponent(ctx, comp, componentChange{status: sagehost.StatusInService, failure: &reason, desired: &n})
		}
		return
	}
	alive := len(cur)
	if alive > desired {
		views := make([]instView, 0, len(cur))
		for _, cp := range cur {
			views = append(views, cp.instView)
		}
		for _, id := range surplus(views, alive-desired) {
			c.stop(ctx, c.instances[id])
		}
	}
	starting := alive - healthyCur
	need := desired - alive
	if st.Previous != nil && starting > 0 {
		need = 0 // roll over one batch at a time
	}
	if st.Previous != nil {
		need = min(need, batchSize(st.LastDeploymentConfig, desired))
	}
	for k := 0; k < need; k++ {
		placed, wait := c.startCopy(ctx, comp, hosts)
		if wait {
			break // model data is being fetched
		}
		if !placed {
			if len(prev) > 0 { // make room: retire an old copy first
				c.stop(ctx, prev[len(prev)-1])
				prev = prev[:len(prev)-1]
				break
			}
			reason := fmt.Sprintf("Unable to place copy %d of %d of inference component %s: no instance of variant %s has the CPU cores, memory and accelerators it reserves left.",
				alive+k+1, desired, rec.Name, st.VariantName)
			if rec.Status == sagehost.StatusCreating {
				c.recordComponent(ctx, comp, componentChange{status: sagehost.StatusFailed, failure: &reason})
				return
			}
			// A scale-up goes as far as there is room; the component
			// stays Updating until those copies are healthy.
			n := alive + k
			c.recordComponent(ctx, comp, componentChange{failure: &reason, desired: &n})
			return
		}
	}
	change := componentChange{}
	if st.Previous != nil && healthyCur >= desired {
		for _, cp := range prev {
			c.stop(ctx, cp)
		}
		if len(prev) == 0 {
			change.rolledForward = true
		}
	}
	if (rec.Status == sagehost.StatusCreating || rec.Status == sagehost.StatusUpdating) && healthyCur == desired &&
		len(cur) == desired && (st.Previous == nil || change.rolledForward) {
		change.status = sagehost.StatusInService
	}
	c.observeComponent(ctx, comp, change)
}

// batchSize is how many copies an update rolls over at a time: the
// DeploymentConfig's RollingUpdatePolicy.MaximumBatchSize, else all.
func batchSize(raw json.RawMessage, desired int) int {
	var dc struct {
		RollingUpdatePolicy *struct {
			MaximumBatchSize *struct {
				Type  string  `json:"Type"`
				Value float64 `json:"Value"`
			} `json:"MaximumBatchSize"`
		} `json:"RollingUpdatePolicy"`
	}
	if len(raw) > 0 && json.Unmarshal(raw, &dc) == nil && dc.RollingUpdatePolicy != nil && dc.RollingUpdatePolicy.MaximumBatchSize != nil {
		b := dc.RollingUpdatePolicy.MaximumBatchSize
		n := int(b.Value)
		if b.Type == "CAPACITY_PERCENT" {
			n = int(float64(desired) * b.Value / 100)
		}
		return max(n, 1)
	}
	return max(desired, 1)
}

// componentStartupTimeout is how long a copy has to pass /ping: the
// StartupParameters of the specification for its host's instance type,
// else the default.
func (c *controller) componentStartupTimeout(st *sagehost.InferenceComponentState, cp *instance) time.Duration {
	dep := componentDeployment(st, cp.Deployment)
	h := c.hostByID(cp.host)
	if dep == nil || h == nil {
		return c.m.cfg.StartupTimeout
	}
	if sp := dep.Spec.ForInstanceType(h.InstanceType); sp != nil && sp.StartupParameters != nil && sp.StartupParameters.ContainerStartupHealthCheckTimeoutInSeconds > 0 {
		return time.Duration(sp.StartupParameters.ContainerStartupHealthCheckTimeoutInSeconds) * time.Second
	}
	return c.m.cfg.StartupTimeout
}

// startCopy places and starts one copy of a component's current version.
// It reports whether the copy was placed, and wait when model data is not
// fetched yet.
func (c *controller) startCopy(ctx context.Context, comp *control.InferenceComponent, hosts []host) (placed, wait bool) {
	rec, st := comp.Record, comp.State
	var variantHosts []host
	for _, h := range hosts {
		if h.Variant == st.VariantName {
			variantHosts = append(variantHosts, h)
		}
	}
	if len(variantHosts) == 0 {
		return false, false
	}
	sp := st.Current.Spec.ForInstanceType(variantHosts[0].InstanceType)
	if sp == nil {
		return false, false
	}
	model, ok := st.Current.Model(sp)
	if !ok {
		return false, false
	}
	// Model data first, as for variants.
	for i, cdef := range model.ContainerList() {
		if !hasModelData(cdef) {
			continue
		}
		key := fetchKey(st.Current.ID, componentScope(rec.Name), i)
		f, ok := c.fetches[key]
		switch {
		case !ok:
			timeout := DefaultFetchTimeout
			if sp.StartupParameters != nil && sp.StartupParameters.ModelDataDownloadTimeoutInSeconds > 0 {
				timeout = time.Duration(sp.StartupParameters.ModelDataDownloadTimeoutInSeconds) * time.Second
			}
			c.fetchModelData(ctx, key, model, i, fmt.Sprintf("inference component %q", rec.Name), timeout)
			return true, true
		case !f.Done:
			return true, true
		case f.Err != "":
			reason := f.Err
			c.recordComponent(ctx, comp, componentChange{status: sagehost.StatusFailed, failure: &reason})
			return true, true
		}
	}
	res := reservationOf(sp)
	strategy := ""
	var sched struct {
		PlacementStrategy string `json:"PlacementStrategy"`
	}
	if json.Unmarshal(sp.SchedulingConfig, &sched) == nil {
		strategy = sched.PlacementStrategy
	}
	hostID := place(variantHosts, c.placedCopies(), rec.Name, res, strategy)
	if hostID == "" {
		return false, false
	}
	var h host
	for _, x := range variantHosts {
		if x.ID == hostID {
			h = x
		}
	}
	inst := &instance{
		instView:  instView{ID: newInstanceID(), Deployment: st.Current.ID, Variant: h.Variant, Phase: phaseStarting, StartedAt: time.Now()},
		component: rec.Name, host: h.ID, res: res,
	}
	spec, ok := c.spec(inst)
	if !ok {
		return true, true
	}
	inst.backend = c.m.backendFor(spec.Containers[0].Image)
	c.instances[inst.ID] = inst
	if err := c.assignGPUs(inst, &spec); err != nil {
		inst.Phase, inst.Failure = phaseFailed, fmt.Sprintf("Could not start a copy of inference component %q: %v", rec.Name, err)
		return true, false
	}
	c.log.Info("starting copy of inference component", "component", rec.Name, "instance", inst.ID, "host", h.ID)
	c.launch(ctx, inst, spec)
	return true, false
}

// observeComponent records the healthy copies and placement of a
// component, and a status change, when they differ from the stored ones.
func (c *controller) observeComponent(ctx context.Context, comp *control.InferenceComponent, change componentChange) {
	st := comp.State
	obs := c.observeCopies(comp.Record.Name)
	if change.status == "" && !change.rolledForward && st.CurrentCopyCount == obs.healthy && reflect.DeepEqual(st.PlacementStatus, obs.placement) {
		return
	}
	c.record(ctx, comp, change, obs)
}

// observedCopies is what hosting observes of a component's copies.
type observedCopies struct {
	healthy   int                                    // copies that pass /ping
	placement []sagehost.InferenceComponentPlacement // healthy copies per instance type
}

// observeCopies counts a component's healthy copies, in all and per
// instance type.
func (c *controller) observeCopies(name string) observedCopies {
	var obs observedCopies
	counts := map[string]int{}
	for _, cp := range c.instances {
		if cp.component != name || cp.Phase != phaseHealthy {
			continue
		}
		obs.healthy++
		if h := c.hostByID(cp.host); h != nil {
			counts[h.InstanceType]++
		}
	}
	for t, n := range counts {
		obs.placement = append(obs.placement, sagehost.InferenceComponentPlacement{InstanceType: t, CurrentCopyCount: n})
	}
	sort.Slice(obs.placement, func(i, j int) bool { return obs.placement[i].InstanceType < obs.placement[j].InstanceType })
	return obs
}

// recordComponent writes a component's observed state and a change, if the
// control plane has not changed the component meanwhile.
func (c *controller) recordComponent(ctx context.Context, comp *control.InferenceComponent, change componentChange) {
	c.record(ctx, comp, change, c.observeCopies(comp.Record.Name))
}

// record is recordComponent with the copies observed already.
func (c *controller) record(ctx context.Context, comp *control.InferenceComponent, change componentChange, obs observedCopies) {
	want := comp.Record.Status
	curID := comp.State.Current.ID
	var st *sagehost.InferenceComponentState // as written
	rec, err := c.m.cfg.Store.Update(ctx, sagehost.KindInferenceComponent, comp.Record.Account, comp.Record.Region, comp.Record.Name, func(r *sagehost.Record) error {
		var err error
		if st, err = control.DecodeInferenceComponentState(r); err != nil {
			return err
		}
		if r.Status != want || st.Current.ID != curID {
			return errStale
		}
		st.CurrentCopyCount, st.PlacementStatus = obs.healthy, obs.placement
		if change.failure != nil {
			st.FailureReason = truncate(*change.failure, 1024)
		}
		if change.desired != nil {
			st.DesiredCopyCount = *change.desired
		}
		if change.rollback && st.Previous != nil {
			st.Current, st.Previous = *st.Previous, nil
		}
		if change.rolledForward {
			st.Previous = nil
		}
		if change.status != "" && change.status != r.Status {
			r.Status = change.status
			r.LastModifiedTime = time.Now().UTC()
		}
		return control.EncodeInferenceComponentState(r, st)
	})
	if errors.Is(err, errStale) || errors.Is(err, sagehost.ErrNotFound) {
		c.load(ctx)
		return
	}
	if err != nil {
		c.log.Warn("record inference component", "component", comp.Record.Name, "err", err)
		return
	}
	if rec.Status != comp.Record.Status {
		c.log.Info("inference component status changed", "component", rec.Name, "from", comp.Record.Status, "to", rec.Status, "reason", st.FailureReason)
	}
	comp.Record, comp.State = rec, st
}

// componentRoute is one component's routing: the copies that serve it
// (an adapter's are its base's).
type componentRoute struct {
	comp   *control.InferenceComponent
	copies []*instance
}

// routedComponents lists the endpoint's components that take calls, with
// the copies that serve each.
func (c *controller) routedComponents() []componentRoute {
	var out []componentRoute
	for i := range c.comps {
		comp := &c.comps[i]
		if comp.Record.Status == sagehost.StatusDeleting {
			continue
		}
		target := comp
		if base := comp.State.Current.Spec.BaseInferenceComponentName(); base != "" {
			if b := c.componentOf(base); b != nil {
				target = b // an adapter is served by its base's copies
			}
		}
		r := componentRoute{comp: comp}
		for _, cp := range c.copiesOf(target.Record.Name) {
			if cp.route != nil && cp.Phase != phaseStopping {
				r.copies = append(r.copies, cp)
			}
		}
		out = append(out, r)
	}
	return out
}

// componentRoutes returns the routing entries of the endpoint's components:
// each component's copies, under its variant's name.
func (c *controller) componentRoutes(comps []componentRoute) map[string]*invoke.Variant {
	if len(c.comps) == 0 {
		return nil
	}
	routes := map[string]*invoke.Variant{}
	for _, r := range comps {
		comp := r.comp
		v := &invoke.Variant{Name: comp.State.VariantName, Weight: 1, Metrics: c.componentMetrics(comp.State.VariantName, comp.Record.Name)}
		if c.state.Serving != nil {
			v.Capture = c.captureOf(c.state.Serving)
		}
		for _, cp := range r.copies {
			v.Instances = append(v.Instances, cp.route)
		}
		routes[comp.Record.Name] = v
	}
	return routes
}
