package invoke

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReleaseKeepsModelLoadedAgain: with the model cache disabled, a call
// that ends after another call forgot its model (the container lost it)
// and loaded it again must neither drop nor unload the new one.
func TestReleaseKeepsModelLoadedAgain(t *testing.T) {
	var deletes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.Add(1)
		}
	}))
	defer srv.Close()
	r := NewRouter(0, nil)
	defer r.Close()
	in := NewInstance("i-1", "v", strings.TrimPrefix(srv.URL, "http://"))
	in.EnableMultiModel(nil)
	mm := &MultiModel{CacheDisabled: true}
	name := ModelName("a.tar.gz")
	m := &loadedModel{name: name, target: "a.tar.gz", size: 10, users: 2, loaded: true, ready: make(chan struct{})}
	in.models.byName[name], in.models.used, in.models.loaded = m, 10, 1

	r.forget(in, m) // one call saw 404: m is gone
	if in.models.byName[name] != nil || in.models.used != 0 {
		t.Fatalf("after forget: byName %v, used %d", in.models.byName, in.models.used)
	}
	m2 := &loadedModel{name: name, target: "a.tar.gz", size: 20, users: 1, loaded: true, ready: make(chan struct{})}
	in.models.byName[name], in.models.used, in.models.loaded = m2, 20, 1

	r.release(in, m, mm, &in.Containers[0]) // the other call on m ends
	if in.models.byName[name] != m2 || in.models.used != 20 {
		t.Fatalf("release of the forgotten model dropped its successor: byName[%s] = %p (want %p), used %d (want 20)", name, in.models.byName[name], m2, in.models.used)
	}
	if got := in.LoadedModels(); got != 1 {
		t.Fatalf("LoadedModels = %d, want 1", got)
	}
	time.Sleep(100 * time.Millisecond) // an unload would be on its way by now
	if n := deletes.Load(); n != 0 {
		t.Fatalf("the container got %d DELETE /models calls for a model in use", n)
	}

	r.release(in, m2, mm, &in.Containers[0]) // the last user of m2 unloads it
	if in.models.byName[name] != nil || in.models.used != 0 || in.LoadedModels() != 0 {
		t.Fatalf("after the last release: byName %v, used %d, LoadedModels %d", in.models.byName, in.models.used, in.LoadedModels())
	}
	deadline := time.Now().Add(5 * time.Second)
	for deletes.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := deletes.Load(); n != 1 {
		t.Fatalf("the container got %d DELETE /models calls, want 1", n)
	}
}
