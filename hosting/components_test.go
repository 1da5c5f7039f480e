package hosting

import (
	"testing"
	"time"

	"github.com/sagehost/sagehost"
)

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
