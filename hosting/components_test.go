package hosting

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/invoke"
)

// newControllerForTest returns a controller of m that runs nothing.
func newControllerForTest(m *Manager, key sagehost.EndpointKey) *controller {
	if m.log == nil {
		m.log = slog.Default()
	}
	return newController(m, key)
}

// TestComponentStartupTimeoutOfHostType: a copy's startup timeout comes
// from the specification for its host's instance type, not from the first
// specification that sets one.
func TestComponentStartupTimeoutOfHostType(t *testing.T) {
	c := &controller{
		m: &Manager{cfg: Config{StartupTimeout: DefaultStartupTimeout}},
		state: &sagehost.EndpointState{Serving: &sagehost.Deployment{ID: "d1", Variants: []sagehost.VariantState{
			{VariantName: "cpu", InstanceType: "ml.c5.xlarge", DesiredInstanceCount: 1},
			{VariantName: "gpu", InstanceType: "ml.g5.xlarge", DesiredInstanceCount: 1},
		}}},
	}
	st := &sagehost.InferenceComponentState{VariantName: "gpu", Current: sagehost.InferenceComponentDeployment{ID: "c1", Spec: sagehost.InferenceComponentSpec{
		Specifications: []sagehost.InferenceComponentSpecification{
			{InstanceType: "ml.c5.xlarge", StartupParameters: &sagehost.InferenceComponentStartupParameters{ContainerStartupHealthCheckTimeoutInSeconds: 60}},
			{InstanceType: "ml.g5.xlarge", StartupParameters: &sagehost.InferenceComponentStartupParameters{ContainerStartupHealthCheckTimeoutInSeconds: 900}},
			{StartupParameters: &sagehost.InferenceComponentStartupParameters{ModelDataDownloadTimeoutInSeconds: 30}},
		},
	}}}
	for _, tc := range []struct {
		host string
		want time.Duration
	}{
		{hostID("d1", "gpu", 0), 900 * time.Second},
		{hostID("d1", "cpu", 0), 60 * time.Second},
		{"i-gone", DefaultStartupTimeout},
	} {
		cp := &instance{instView: instView{ID: "i-copy", Deployment: "c1"}, component: "comp", host: tc.host}
		if got := c.componentStartupTimeout(st, cp); got != tc.want {
			t.Errorf("copy on host %s: startup timeout %s, want %s", tc.host, got, tc.want)
		}
	}
	// An entry for any type without a timeout gives the default.
	st.Current.Spec.Specifications = st.Current.Spec.Specifications[2:]
	cp := &instance{instView: instView{ID: "i-copy", Deployment: "c1"}, component: "comp", host: hostID("d1", "gpu", 0)}
	if got := c.componentStartupTimeout(st, cp); got != DefaultStartupTimeout {
		t.Errorf("no timeout for the type: %s, want %s", got, DefaultStartupTimeout)
	}
}

// TestPublishOnlyOnChange: a pass that changes nothing routable publishes
// no new table, however the instances come out of their map; a change
// does.
func TestPublishOnlyOnChange(t *testing.T) {
	router := invoke.NewRouter(0, nil)
	defer router.Close()
	key := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "ep"}
	m := &Manager{cfg: Config{Router: router}}
	c := newControllerForTest(m, key)
	c.status = sagehost.StatusInService
	c.state = &sagehost.EndpointState{Serving: &sagehost.Deployment{ID: "d1",
		Models:   map[string]sagehost.ModelSpec{"m": {PrimaryContainer: &sagehost.ContainerDefinition{Image: "img"}}},
		Variants: []sagehost.VariantState{{VariantName: "v", ModelName: "m", CurrentWeight: 1, DesiredInstanceCount: 3}},
	}}
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("i-%d", i)
		c.instances[id] = &instance{instView: instView{ID: id, Deployment: "d1", Variant: "v", Phase: phaseHealthy},
			handle: &sagehost.InstanceHandle{ID: id, Addrs: []string{fmt.Sprintf("127.0.0.1:%d", 20000+i)}},
			route:  invoke.NewInstance(id, "v", fmt.Sprintf("127.0.0.1:%d", 20000+i))}
	}
	c.publish()
	first := router.Lookup(key)
	if first == nil || len(first.Variants) != 1 || len(first.Variants[0].Instances) != 3 {
		t.Fatalf("first table: %+v", first)
	}
	for i := 0; i < 20; i++ {
		c.publish()
		if got := router.Lookup(key); got != first {
			t.Fatalf("pass %d published a new table with nothing changed", i)
		}
	}
	c.instances["i-1"].Phase = phaseStopping
	c.publish()
	if got := router.Lookup(key); got == first || len(got.Variants[0].Instances) != 2 {
		t.Fatalf("after an instance began stopping: %+v", got)
	}
}

// TestStartCopyWithoutSpecificationForHostType: a component whose
// specifications name none of its hosts' instance types (say its endpoint
// now runs another instance type) places no copy; it used to dereference the
// missing specification.
func TestStartCopyWithoutSpecificationForHostType(t *testing.T) {
	c := &controller{}
	comp := &control.InferenceComponent{
		Record: &sagehost.Record{Name: "ic"},
		State: &sagehost.InferenceComponentState{VariantName: "v", Current: sagehost.InferenceComponentDeployment{ID: "c1", Spec: sagehost.InferenceComponentSpec{
			Specifications: []sagehost.InferenceComponentSpecification{{InstanceType: "ml.g5.xlarge", ModelName: "m"}},
		}}},
	}
	placed, wait := c.startCopy(context.Background(), comp, []host{{ID: "h", Variant: "v", InstanceType: "ml.c5.xlarge"}})
	if placed || wait {
		t.Fatalf("startCopy: placed %v wait %v, want neither", placed, wait)
	}
}
