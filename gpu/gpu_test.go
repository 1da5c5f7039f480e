package gpu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestAllocatorGivesEachInstanceItsOwnDevices(t *testing.T) {
	a := NewAllocator([]string{"0", "1", "2", "3"})
	x, err := a.Allocate("i-x", "ml.g5.12xlarge", 2)
	if err != nil || len(x) != 2 {
		t.Fatalf("x: %v %v", x, err)
	}
	y, err := a.Allocate("i-y", "ml.g5.12xlarge", 2)
	if err != nil || len(y) != 2 {
		t.Fatalf("y: %v %v", y, err)
	}
	for _, d := range x {
		if slices.Contains(y, d) {
			t.Fatalf("device %s given twice: %v %v", d, x, y)
		}
	}
	again, _ := a.Allocate("i-x", "ml.g5.12xlarge", 2)
	if !slices.Equal(again, x) {
		t.Fatalf("re-allocation for the same instance changed devices: %v -> %v", x, again)
	}
	_, err = a.Allocate("i-z", "ml.g5.xlarge", 1)
	var ce *CapacityError
	if !errors.As(err, &ce) || ce.Free != 0 || ce.Total != 4 || !strings.Contains(err.Error(), "Unable to provision requested ML compute capacity") {
		t.Fatalf("want capacity error, got %v", err)
	}
	a.Release("i-x")
	if a.Free() != 2 {
		t.Fatalf("free after release: %d", a.Free())
	}
	if z, err := a.Allocate("i-z", "ml.g5.xlarge", 1); err != nil || len(z) != 1 {
		t.Fatalf("z after release: %v %v", z, err)
	}
	if none, err := a.Allocate("i-cpu", "ml.m5.large", 0); err != nil || none != nil {
		t.Fatalf("CPU instance: %v %v", none, err)
	}
}

func TestAllocatorConcurrent(t *testing.T) {
	a := NewAllocator([]string{"0", "1", "2", "3", "4", "5", "6", "7"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := map[string]string{}
	fails := 0
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := "i-" + string(rune('a'+i))
			got, err := a.Allocate(id, "ml.g5.xlarge", 1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails++
				return
			}
			if o, dup := held[got[0]]; dup {
				t.Errorf("device %s given to %s and %s", got[0], o, id)
			}
			held[got[0]] = id
		}(i)
	}
	wg.Wait()
	if len(held) != 8 || fails != 4 {
		t.Fatalf("held %d, failed %d", len(held), fails)
	}
}

func TestReserveAdopted(t *testing.T) {
	a := NewAllocator([]string{"0", "1"})
	if err := a.Reserve("i-old", []string{"1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Allocate("i-new", "ml.g5.xlarge", 1); !slices.Equal(got, []string{"0"}) {
		t.Fatalf("adopted device given away: %v", got)
	}
	if err := a.Reserve("i-other", []string{"0", "7"}); err == nil {
		t.Fatal("reserving held and unknown devices succeeded")
	}
}

func TestParseAndDevNodes(t *testing.T) {
	if got := Parse(context.Background(), " 0, 2 ,"); !slices.Equal(got, []string{"0", "2"}) {
		t.Fatalf("Parse: %v", got)
	}
	if got := Parse(context.Background(), "none"); got != nil {
		t.Fatalf("none: %v", got)
	}
	dir := t.TempDir()
	for _, n := range []string{"nvidia0", "nvidia1", "nvidia10", "nvidiactl", "nvidia-uvm"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	if got := fromDevNodes(dir); !slices.Equal(got, []string{"0", "1", "10"}) {
		t.Fatalf("dev nodes: %v", got)
	}
	if got := parseIndexes([]byte("0\n1\nNo devices were found\n")); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("nvidia-smi output: %v", got)
	}
}

// TestDiscoverOnThisHost reports what the host has; on a machine with an
// NVIDIA GPU it must find at least one.
func TestDiscoverOnThisHost(t *testing.T) {
	ids := Discover(context.Background())
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		t.Skipf("no NVIDIA GPU on this host (found %v)", ids)
	}
	if len(ids) == 0 {
		t.Fatal("the host has /dev/nvidiactl but no GPU was discovered")
	}
	t.Logf("GPUs: %v", ids)
}
