package invoke

import (
	"testing"

	"github.com/sagehost/sagehost"
)

func instances(n int) []*Instance {
	var out []*Instance
	for i := 0; i < n; i++ {
		in := NewInstance(string(rune('a'+i)), "v", "127.0.0.1:1")
		in.SetHealthy(true)
		out = append(out, in)
	}
	return out
}

func TestPickLeastOutstandingHealthy(t *testing.T) {
	ins := instances(3)
	v := &Variant{Name: "v", Weight: 1, Instances: ins}
	ins[0].inflight.Store(5)
	ins[1].inflight.Store(1)
	ins[2].inflight.Store(3)
	for i := 0; i < 20; i++ {
		if got := pick(v, nil); got != ins[1] {
			t.Fatalf("picked %s, want the least busy b", got.ID)
		}
	}
	ins[1].SetHealthy(false)
	if got := pick(v, nil); got != ins[2] {
		t.Fatalf("picked %s with b unhealthy, want c", got.ID)
	}
	if got := pick(v, ins[2]); got != ins[0] {
		t.Fatalf("picked %s skipping c, want a", got.ID)
	}
	ins[0].SetHealthy(false)
	ins[2].SetHealthy(false)
	if got := pick(v, nil); got != nil {
		t.Fatalf("picked %s with none healthy", got.ID)
	}
}

func TestPickBreaksTiesAtRandom(t *testing.T) {
	ins := instances(4)
	v := &Variant{Name: "v", Weight: 1, Instances: ins}
	seen := map[string]int{}
	for i := 0; i < 400; i++ {
		seen[pick(v, nil).ID]++
	}
	for _, in := range ins {
		if seen[in.ID] < 50 { // expected 100 each
			t.Fatalf("tie-breaking is not spread: %v", seen)
		}
	}
}

func TestRouteWeightsAndErrors(t *testing.T) {
	r := NewRouter(0, nil)
	key := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "ep"}
	r.Publish(&Table{Key: key, Status: sagehost.StatusInService, Variants: []*Variant{
		{Name: "a", Weight: 1}, {Name: "b", Weight: 0}, {Name: "c", Weight: 3},
	}})
	req := &Request{Caller: sagehost.Caller{Account: key.Account, Region: key.Region}, EndpointName: "ep"}
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		_, v, err := r.route(req)
		if err != nil {
			t.Fatal(err)
		}
		counts[v.Name]++
	}
	if counts["b"] != 0 || counts["a"] < 850 || counts["a"] > 1150 {
		t.Fatalf("weights 1:0:3 gave %v", counts)
	}
	for _, tc := range []struct {
		mod  func(*Request)
		code string
	}{
		{func(q *Request) { q.EndpointName = "other" }, sagehost.CodeValidationError},
		{func(q *Request) { q.Caller.Account = "222222222222" }, sagehost.CodeValidationError},
		{func(q *Request) { q.TargetVariant = "zz" }, sagehost.CodeValidationError},
		{func(q *Request) { q.TargetModel = "m.tar.gz" }, sagehost.CodeValidationError},
		{func(q *Request) { q.TargetContainerHostname = "c1" }, sagehost.CodeValidationError},
	} {
		q := *req
		tc.mod(&q)
		_, v, err := r.route(&q)
		if err == nil {
			err = checkTargets(&q, v)
		}
		if sagehost.ErrorCode(err) != tc.code {
			t.Errorf("%+v: got %v, want %s", q, err, tc.code)
		}
	}
	r.Publish(&Table{Key: key, Status: sagehost.StatusCreating})
	if _, _, err := r.route(req); sagehost.ErrorCode(err) != sagehost.CodeValidationError {
		t.Fatalf("Creating endpoint: %v", err)
	}
	r.Remove(key)
	if r.Lookup(key) != nil {
		t.Fatal("table still there after Remove")
	}
}
