package metrics

import (
	"strings"
	"testing"

	"github.com/sagehost/sagehost"
)

// TestEndpointGoneDeletesEverySeries: every sagehost series of a deleted
// endpoint goes, and another endpoint's stay.
func TestEndpointGoneDeletesEverySeries(t *testing.T) {
	m := New()
	gone := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "gone"}
	kept := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "kept"}
	for _, k := range []sagehost.EndpointKey{gone, kept} {
		m.Variant(k, "v").Invocations.Inc()
		m.Component(k, "v", "ic").Invocations.Inc()
		m.CaptureWritten(k, "v", 1)
		m.CaptureDropped(k, "v", 1)
		m.LoadedModels(k, "v", "i-1").Set(2)
		m.InstanceHealthy(k, "v", "i-1", true)
		m.InstanceRestarted(k, "v", "i-1")
		m.ModelSetup(k, "v", 1)
		m.AsyncBacklog(k, 1)
		for _, o := range []AsyncOutcome{AsyncProcessed, AsyncFailed, AsyncExpired, AsyncDownloadFailures, AsyncUploadFailures} {
			m.AsyncCount(k, o)
		}
	}
	count := func() (map[string]int, map[string]int) {
		t.Helper()
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		byEndpoint := map[string]int{}
		families := map[string]int{}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "sagehost_") {
				continue
			}
			families[mf.GetName()] = 0
			for _, metric := range mf.Metric {
				for _, lp := range metric.Label {
					if lp.GetName() == "endpoint" {
						byEndpoint[lp.GetValue()]++
						families[mf.GetName()]++
					}
				}
			}
		}
		return byEndpoint, families
	}
	before, families := count()
	if len(families) != len(m.vecs) {
		t.Fatalf("%d sagehost metric families have series, %d vectors are registered: %v", len(families), len(m.vecs), families)
	}
	if before["gone"] == 0 || before["gone"] != before["kept"] {
		t.Fatalf("series per endpoint before: %v", before)
	}
	m.EndpointGone(gone)
	after, _ := count()
	if after["gone"] != 0 || after["kept"] != before["kept"] {
		t.Fatalf("series per endpoint after EndpointGone(gone): %v (before: %v)", after, before)
	}
}
