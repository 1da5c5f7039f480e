package hosting

import (
	"fmt"
	"sort"
	"time"

	"github.com/sagehost/sagehost"
)

// phase is where an instance is in its life.
type phase int

const (
	phaseStarting  phase = iota // Backend.Start in flight
	phaseRunning                // started, not yet passing /ping
	phaseHealthy                // passing /ping, in routing
	phaseUnhealthy              // was healthy, now failing /ping
	phaseExited                 // its process or container ended
	phaseFailed                 // Backend.Start failed
	phaseStopping               // being stopped and removed
)

func (p phase) String() string {
	return [...]string{"starting", "running", "healthy", "unhealthy", "exited", "failed", "stopping"}[p]
}

// instView is what planning needs to know of one instance.
type instView struct {
	ID          string
	Deployment  string
	Variant     string
	Phase       phase
	EverHealthy bool      // passed /ping at least once (a restart keeps it)
	StartedAt   time.Time // when the current run started
	NextRestart time.Time // for exited instances that will be restarted
	Failure     string    // why it exited or failed, for FailureReason
}

// fetchView is the state of fetching one container's model data.
type fetchView struct {
	Done bool
	Err  string
}

// planInput is everything plan looks at: the stored endpoint, the observed
// fleet and model data, and the clock.
type planInput struct {
	Status         string
	State          *sagehost.EndpointState
	Instances      []instView
	Fetches        map[string]fetchView // by fetchKey
	Now            time.Time
	StartupTimeout func(d *sagehost.Deployment, variant string) time.Duration
}

// startReq asks for one new instance of a deployment's variant.
type startReq struct {
	Deployment string
	Variant    string
}

// transition is a change of the endpoint's stored status.
type transition int

const (
	noTransition transition = iota
	promote                 // pending deployment is healthy: it serves now
	failCreate              // the first deployment failed: endpoint Failed
	rollback                // an update failed: back to the serving deployment
	scaleDone               // weights/capacities reached: InService
	scaleFailed             // new capacity failed: InService at the capacity reached
	teardown                // Deleting (or Failed): stop everything
)

// plan is what to do next. Applying it is the controller's job.
type plan struct {
	Fetch      []fetchReq
	Start      []startReq
	Stop       []string // instance ids
	Restart    []string // exited instance ids whose backoff has passed
	Transition transition
	Reason     string         // FailureReason for failCreate, rollback, scaleFailed
	Healthy    map[string]int // by deployment id + "/" + variant: instances passing /ping
	// ScaleFailedVariant: for scaleFailed, the variant whose desired count
	// falls back to what is healthy.
	ScaleFailedVariant string
}

type fetchReq struct {
	Key        string
	Deployment string
	Variant    string
	Container  int
}

func fetchKey(deployment, variant string, container int) string {
	return fmt.Sprintf("%s/%s/%d", deployment, variant, container)
}

func variantKey(deployment, variant string) string { return deployment + "/" + variant }

// alive reports whether an instance counts towards its variant's capacity.
func (v *instView) alive(restartable bool) bool {
	switch v.Phase {
	case phaseStarting, phaseRunning, phaseHealthy, phaseUnhealthy:
		return true
	case phaseExited:
		return restartable
	}
	return false
}

// computePlan decides, without side effects, what the controller does next
// to move the fleet towards the stored desired state.
func computePlan(in planInput) plan {
	p := plan{Healthy: map[string]int{}}
	st := in.State
	if in.Status == sagehost.StatusDeleting || in.Status == sagehost.StatusFailed {
		p.Transition = teardown
		for _, i := range in.Instances {
			if i.Phase != phaseStopping {
				p.Stop = append(p.Stop, i.ID)
			}
		}
		return p
	}
	wanted := map[string]*sagehost.Deployment{}
	if st.Serving != nil {
		wanted[st.Serving.ID] = st.Serving
	}
	if st.Pending != nil {
		wanted[st.Pending.ID] = st.Pending
	}
	// Instances of no wanted deployment or variant go.
	for _, i := range in.Instances {
		d := wanted[i.Deployment]
		if i.Phase != phaseStopping && (d == nil || d.Variant(i.Variant) == nil) {
			p.Stop = append(p.Stop, i.ID)
		}
	}
	failures := map[string]string{} // deployment id -> first failure
	fail := func(d *sagehost.Deployment, variant, reason string) {
		if _, ok := failures[d.ID]; !ok {
			failures[d.ID] = reason
			if d == st.Serving && p.ScaleFailedVariant == "" {
				p.ScaleFailedVariant = variant
			}
		}
	}
	for _, d := range []*sagehost.Deployment{st.Serving, st.Pending} {
		if d == nil {
			continue
		}
		restartable := func(i instView) bool { return isRestartable(in.Status, st, i.Deployment, i.EverHealthy) }
		for _, v := range d.Variants {
			model, hasModel := d.Models[v.ModelName]
			if !hasModel {
				continue // a variant that hosts inference components runs no model of its own
			}
			fetched := true
			for ci, c := range model.ContainerList() {
				if !hasModelData(c) {
					continue
				}
				key := fetchKey(d.ID, v.VariantName, ci)
				f, ok := in.Fetches[key]
				switch {
				case !ok:
					fetched = false
					p.Fetch = append(p.Fetch, fetchReq{Key: key, Deployment: d.ID, Variant: v.VariantName, Container: ci})
				case !f.Done:
					fetched = false
				case f.Err != "":
					fetched = false
					fail(d, v.VariantName, f.Err)
				}
			}
			var mine []instView
			for _, i := range in.Instances {
				if i.Deployment == d.ID && i.Variant == v.VariantName && i.Phase != phaseStopping {
					mine = append(mine, i)
				}
			}
			timeout := in.StartupTimeout(d, v.VariantName)
			alive := 0
			for _, i := range mine {
				r := restartable(i)
				switch {
				case i.Phase == phaseHealthy:
					p.Healthy[variantKey(d.ID, v.VariantName)]++
				case i.Phase == phaseFailed:
					fail(d, v.VariantName, i.Failure)
				case i.Phase == phaseExited && !r:
					fail(d, v.VariantName, i.Failure)
				case i.Phase == phaseRunning && !i.EverHealthy && in.Now.Sub(i.StartedAt) > timeout:
					if r {
						break // a serving instance restarted after a crash just stays out of routing
					}
					fail(d, v.VariantName, fmt.Sprintf("The container of variant %q (instance %s) did not pass the ping health check within %s.%s",
						v.VariantName, i.ID, timeout, i.Failure))
				}
				if i.alive(r) {
					alive++
				}
				if i.Phase == phaseExited && r && !in.Now.Before(i.NextRestart) {
					p.Restart = append(p.Restart, i.ID)
				}
			}
			if _, failed := failures[d.ID]; failed && d != st.Serving {
				continue // a failed rollout starts nothing more
			}
			if fetched && alive < v.DesiredInstanceCount {
				for n := alive; n < v.DesiredInstanceCount; n++ {
					p.Start = append(p.Start, startReq{Deployment: d.ID, Variant: v.VariantName})
				}
			}
			if alive > v.DesiredInstanceCount {
				p.Stop = append(p.Stop, surplus(mine, alive-v.DesiredInstanceCount)...)
			}
		}
	}
	ready := func(d *sagehost.Deployment) bool {
		for _, v := range d.Variants {
			if _, hasModel := d.Models[v.ModelName]; hasModel && p.Healthy[variantKey(d.ID, v.VariantName)] < v.DesiredInstanceCount {
				return false
			}
		}
		return true
	}
	switch {
	case st.Pending != nil:
		if reason, failed := failures[st.Pending.ID]; failed {
			p.Reason = reason
			p.Transition = rollback
			if st.Serving == nil {
				p.Transition = failCreate
			}
			p.Start = dropDeployment(p.Start, st.Pending.ID)
			for _, i := range in.Instances {
				if i.Deployment == st.Pending.ID && i.Phase != phaseStopping {
					p.Stop = append(p.Stop, i.ID)
				}
			}
		} else if ready(st.Pending) {
			p.Transition = promote
			if st.Serving != nil {
				for _, i := range in.Instances {
					if i.Deployment == st.Serving.ID && i.Phase != phaseStopping {
						p.Stop = append(p.Stop, i.ID)
					}
				}
			}
		}
	case st.Serving != nil && in.Status == sagehost.StatusUpdating:
		if reason, failed := failures[st.Serving.ID]; failed {
			p.Transition = scaleFailed
			p.Reason = reason
			p.Start = dropDeployment(p.Start, st.Serving.ID)
		} else if ready(st.Serving) {
			p.Transition = scaleDone
		}
	}
	p.Stop = dedupe(p.Stop)
	return p
}

// isRestartable reports whether an instance that ended is started again
// (with backoff) rather than failing its rollout: a serving deployment heals
// itself whatever happened, except for new capacity during a scale-up.
func isRestartable(status string, st *sagehost.EndpointState, deployment string, everHealthy bool) bool {
	return st.Serving != nil && st.Serving.ID == deployment && (everHealthy || status == sagehost.StatusInService)
}

// hasModelData reports whether a container's model data is fetched before
// it starts: not for a multi-model container, whose ModelDataUrl is a
// prefix of archives fetched per TargetModel.
func hasModelData(c sagehost.ContainerDefinition) bool {
	if c.IsMultiModel() {
		return false
	}
	return c.ModelDataUrl != "" || (c.ModelDataSource != nil && c.ModelDataSource.S3DataSource != nil)
}

// surplus picks n instances to stop: the least useful first (not yet
// healthy before healthy), newest first among equals.
func surplus(insts []instView, n int) []string {
	rank := func(p phase) int {
		switch p {
		case phaseHealthy:
			return 3
		case phaseUnhealthy:
			return 1
		case phaseRunning, phaseStarting:
			return 2
		}
		return 0
	}
	sorted := append([]instView(nil), insts...)
	sort.SliceStable(sorted, func(a, b int) bool {
		ra, rb := rank(sorted[a].Phase), rank(sorted[b].Phase)
		if ra != rb {
			return ra < rb
		}
		return sorted[a].StartedAt.After(sorted[b].StartedAt)
	})
	var out []string
	for _, i := range sorted {
		if len(out) == n {
			break
		}
		if i.Phase != phaseFailed {
			out = append(out, i.ID)
		}
	}
	return out
}

func dropDeployment(reqs []startReq, id string) []startReq {
	var out []startReq
	for _, r := range reqs {
		if r.Deployment != id {
			out = append(out, r)
		}
	}
	return out
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
