package hosting

import (
	"testing"

	"github.com/sagehost/sagehost"
)

func TestPlaceReservesResources(t *testing.T) {
	hosts := []host{
		{ID: "h1", CPUs: 4, MemoryMiB: 16384, Accelerators: 1},
		{ID: "h2", CPUs: 4, MemoryMiB: 16384, Accelerators: 1},
	}
	gpu := reservation{CPUs: 2, MemoryMiB: 4096, Accelerators: 1}
	var placed []placedCopy
	for i := 0; i < 2; i++ {
		h := place(hosts, placed, "c", gpu, "")
		if h == "" {
			t.Fatalf("copy %d did not fit", i)
		}
		placed = append(placed, placedCopy{Host: h, Res: gpu, Component: "c"})
	}
	if placed[0].Host == placed[1].Host {
		t.Fatalf("a GPU was given twice: %v", placed)
	}
	if h := place(hosts, placed, "c", gpu, ""); h != "" {
		t.Fatalf("a third GPU copy was placed on %s with both GPUs taken", h)
	}
	// CPU copies still fit next to the GPU ones, until CPU runs out.
	cpu := reservation{CPUs: 2, MemoryMiB: 1024}
	for i := 0; i < 2; i++ {
		h := place(hosts, placed, "d", cpu, "")
		if h == "" {
			t.Fatalf("CPU copy %d did not fit", i)
		}
		placed = append(placed, placedCopy{Host: h, Res: cpu, Component: "d"})
	}
	if h := place(hosts, placed, "d", cpu, ""); h != "" {
		t.Fatalf("placed beyond the CPUs on %s", h)
	}
	if h := place(hosts, nil, "e", reservation{MemoryMiB: 20000}, ""); h != "" {
		t.Fatalf("placed beyond memory on %s", h)
	}
}

func TestPlaceSpreadAndBinpack(t *testing.T) {
	hosts := []host{{ID: "h1", CPUs: 8, MemoryMiB: 8000}, {ID: "h2", CPUs: 8, MemoryMiB: 8000}}
	small := reservation{CPUs: 1, MemoryMiB: 1000}
	placed := []placedCopy{{Host: "h1", Res: small, Component: "c"}}
	if h := place(hosts, placed, "c", small, "SPREAD"); h != "h2" {
		t.Fatalf("SPREAD chose %s", h)
	}
	if h := place(hosts, placed, "c", small, "BINPACK"); h != "h1" {
		t.Fatalf("BINPACK chose %s", h)
	}
}

func TestComponentHosts(t *testing.T) {
	d := dep("d1", variant("with-model", 2), sagehost.VariantState{VariantName: "ic", InstanceType: "ml.g5.12xlarge", DesiredInstanceCount: 2})
	hs := componentHosts(d)
	if len(hs) != 2 || hs[0].Variant != "ic" || hs[0].Accelerators != 4 || hs[0].CPUs != 48 || hs[0].ID == hs[1].ID {
		t.Fatalf("hosts %+v", hs)
	}
	if again := componentHosts(d); again[0].ID != hs[0].ID {
		t.Fatal("host ids are not stable")
	}
}
