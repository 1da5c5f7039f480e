package hosting

import (
	"slices"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func dep(id string, variants ...sagehost.VariantState) *sagehost.Deployment {
	d := &sagehost.Deployment{ID: id, ConfigName: "cfg-" + id, Models: map[string]sagehost.ModelSpec{}}
	for _, v := range variants {
		if v.ModelName != "" {
			d.Models[v.ModelName] = sagehost.ModelSpec{PrimaryContainer: &sagehost.ContainerDefinition{Image: "/bin/model"}}
		}
		d.Variants = append(d.Variants, v)
	}
	return d
}

func variant(name string, count int) sagehost.VariantState {
	return sagehost.VariantState{VariantName: name, ModelName: "m-" + name, DesiredInstanceCount: count, DesiredWeight: 1}
}

func inst(id, d, v string, p phase) instView {
	return instView{ID: id, Deployment: d, Variant: v, Phase: p, StartedAt: now.Add(-time.Second), EverHealthy: p == phaseHealthy || p == phaseUnhealthy}
}

func run(status string, st *sagehost.EndpointState, insts ...instView) plan {
	return computePlan(planInput{
		Status: status, State: st, Instances: insts, Fetches: map[string]fetchView{}, Now: now,
		StartupTimeout: func(*sagehost.Deployment, string) time.Duration { return time.Minute },
	})
}

func TestPlanCreateStartsInstancesThenPromotes(t *testing.T) {
	st := &sagehost.EndpointState{Pending: dep("d1", variant("a", 2), variant("b", 1))}
	p := run(sagehost.StatusCreating, st)
	if len(p.Start) != 3 || p.Transition != noTransition {
		t.Fatalf("want 3 starts, no transition; got %+v", p)
	}
	// Two of three healthy: not yet.
	p = run(sagehost.StatusCreating, st, inst("i1", "d1", "a", phaseHealthy), inst("i2", "d1", "a", phaseRunning), inst("i3", "d1", "b", phaseHealthy))
	if len(p.Start) != 0 || p.Transition != noTransition {
		t.Fatalf("got %+v", p)
	}
	p = run(sagehost.StatusCreating, st, inst("i1", "d1", "a", phaseHealthy), inst("i2", "d1", "a", phaseHealthy), inst("i3", "d1", "b", phaseHealthy))
	if p.Transition != promote || p.Healthy["d1/a"] != 2 || p.Healthy["d1/b"] != 1 {
		t.Fatalf("want promote; got %+v", p)
	}
}

func TestPlanCreateFailsWhenAnInstanceExitsBeforeHealthy(t *testing.T) {
	st := &sagehost.EndpointState{Pending: dep("d1", variant("a", 2))}
	exited := inst("i1", "d1", "a", phaseExited)
	exited.Failure = "exited with code 3"
	p := run(sagehost.StatusCreating, st, exited, inst("i2", "d1", "a", phaseRunning))
	if p.Transition != failCreate || p.Reason != "exited with code 3" {
		t.Fatalf("want failCreate with reason; got %+v", p)
	}
	if len(p.Start) != 0 || !slices.Contains(p.Stop, "i1") || !slices.Contains(p.Stop, "i2") {
		t.Fatalf("a failed create must start nothing and stop everything: %+v", p)
	}
}

func TestPlanStartupTimeout(t *testing.T) {
	st := &sagehost.EndpointState{Pending: dep("d1", variant("a", 1))}
	slow := inst("i1", "d1", "a", phaseRunning)
	slow.StartedAt = now.Add(-2 * time.Minute)
	if p := run(sagehost.StatusCreating, st, slow); p.Transition != failCreate {
		t.Fatalf("want failCreate after the startup timeout; got %+v", p)
	}
}

func TestPlanUpdateIsBlueGreen(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("old", variant("a", 1)), Pending: dep("new", variant("a", 1))}
	p := run(sagehost.StatusUpdating, st, inst("o1", "old", "a", phaseHealthy))
	if len(p.Start) != 1 || p.Start[0].Deployment != "new" || len(p.Stop) != 0 || p.Transition != noTransition {
		t.Fatalf("the new fleet must start while the old one keeps serving: %+v", p)
	}
	p = run(sagehost.StatusUpdating, st, inst("o1", "old", "a", phaseHealthy), inst("n1", "new", "a", phaseHealthy))
	if p.Transition != promote || !slices.Equal(p.Stop, []string{"o1"}) {
		t.Fatalf("once the new fleet is healthy, promote and stop the old: %+v", p)
	}
}

func TestPlanFailedUpdateRollsBack(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("old", variant("a", 1)), Pending: dep("new", variant("a", 1))}
	bad := inst("n1", "new", "a", phaseFailed)
	bad.Failure = "bad image"
	p := run(sagehost.StatusUpdating, st, inst("o1", "old", "a", phaseHealthy), bad)
	if p.Transition != rollback || p.Reason != "bad image" || !slices.Equal(p.Stop, []string{"n1"}) {
		t.Fatalf("want rollback stopping only the new fleet: %+v", p)
	}
}

func TestPlanServingInstanceCrashIsRestarted(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("d1", variant("a", 2))}
	crashed := inst("i1", "d1", "a", phaseExited)
	crashed.EverHealthy = true
	crashed.NextRestart = now.Add(time.Second)
	p := run(sagehost.StatusInService, st, crashed, inst("i2", "d1", "a", phaseHealthy))
	if len(p.Start) != 0 || len(p.Restart) != 0 || p.Transition != noTransition {
		t.Fatalf("during backoff nothing happens: %+v", p)
	}
	crashed.NextRestart = now.Add(-time.Second)
	p = run(sagehost.StatusInService, st, crashed, inst("i2", "d1", "a", phaseHealthy))
	if !slices.Equal(p.Restart, []string{"i1"}) || len(p.Start) != 0 {
		t.Fatalf("after backoff the crashed instance restarts (not a new one): %+v", p)
	}
}

func TestPlanScaleOutAndIn(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("d1", variant("a", 3))}
	p := run(sagehost.StatusUpdating, st, inst("i1", "d1", "a", phaseHealthy))
	if len(p.Start) != 2 || p.Transition != noTransition {
		t.Fatalf("scale out: %+v", p)
	}
	p = run(sagehost.StatusUpdating, st, inst("i1", "d1", "a", phaseHealthy), inst("i2", "d1", "a", phaseHealthy), inst("i3", "d1", "a", phaseHealthy))
	if p.Transition != scaleDone {
		t.Fatalf("want scaleDone: %+v", p)
	}
	st.Serving.Variants[0].DesiredInstanceCount = 1
	older := inst("i1", "d1", "a", phaseHealthy)
	older.StartedAt = now.Add(-time.Hour)
	p = run(sagehost.StatusUpdating, st, older, inst("i2", "d1", "a", phaseHealthy), inst("i3", "d1", "a", phaseRunning))
	if len(p.Stop) != 2 || slices.Contains(p.Stop, "i1") || !slices.Contains(p.Stop, "i3") {
		t.Fatalf("scale in stops the not-yet-healthy and the newest first: %+v", p)
	}
}

func TestPlanFailedScaleOut(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("d1", variant("a", 2))}
	bad := inst("i2", "d1", "a", phaseExited)
	bad.Failure = "boom"
	p := run(sagehost.StatusUpdating, st, inst("i1", "d1", "a", phaseHealthy), bad)
	if p.Transition != scaleFailed || p.ScaleFailedVariant != "a" || len(p.Start) != 0 {
		t.Fatalf("want scaleFailed: %+v", p)
	}
}

func TestPlanDeleteStopsEverything(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("d1", variant("a", 1))}
	p := run(sagehost.StatusDeleting, st, inst("i1", "d1", "a", phaseHealthy), inst("i2", "zz", "a", phaseStopping))
	if p.Transition != teardown || !slices.Equal(p.Stop, []string{"i1"}) {
		t.Fatalf("got %+v", p)
	}
}

func TestPlanFetchesModelDataFirst(t *testing.T) {
	d := dep("d1", variant("a", 1))
	m := d.Models["m-a"]
	m.PrimaryContainer.ModelDataUrl = "s3://b/model.tar.gz"
	st := &sagehost.EndpointState{Pending: d}
	p := computePlan(planInput{Status: sagehost.StatusCreating, State: st, Fetches: map[string]fetchView{}, Now: now,
		StartupTimeout: func(*sagehost.Deployment, string) time.Duration { return time.Minute }})
	if len(p.Fetch) != 1 || len(p.Start) != 0 {
		t.Fatalf("want a fetch before any start: %+v", p)
	}
	p = computePlan(planInput{Status: sagehost.StatusCreating, State: st, Now: now,
		Fetches:        map[string]fetchView{fetchKey("d1", "a", 0): {Done: true, Err: "no such object"}},
		StartupTimeout: func(*sagehost.Deployment, string) time.Duration { return time.Minute }})
	if p.Transition != failCreate || p.Reason != "no such object" {
		t.Fatalf("want failCreate on fetch error: %+v", p)
	}
}

func TestPlanStopsInstancesOfUnknownDeployments(t *testing.T) {
	st := &sagehost.EndpointState{Serving: dep("d1", variant("a", 1))}
	p := run(sagehost.StatusInService, st, inst("i1", "d1", "a", phaseHealthy), inst("x", "gone", "a", phaseHealthy), inst("y", "d1", "nosuchvariant", phaseHealthy))
	if !slices.Contains(p.Stop, "x") || !slices.Contains(p.Stop, "y") || slices.Contains(p.Stop, "i1") {
		t.Fatalf("got %+v", p)
	}
}
