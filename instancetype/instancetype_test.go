package instancetype

import (
	"testing"

	"github.com/sagehost/sagehost/apimodel"
)

// instanceTypeEnums returns every instance type that the embedded SageMaker
// model accepts for hosting: the values of ProductionVariantInstanceType and
// of any other enum that a member named InstanceType refers to.
func instanceTypeEnums(t *testing.T) map[string]string {
	t.Helper()
	svc := apimodel.SageMaker()
	shapes := map[string]bool{"ProductionVariantInstanceType": true}
	for _, name := range svc.Shapes() {
		sh, _ := svc.Shape(name)
		for _, m := range sh.Members {
			if m.Name == "InstanceType" {
				shapes[m.Shape] = true
			}
		}
	}
	values := map[string]string{} // value -> shape
	for name := range shapes {
		sh, ok := svc.Shape(name)
		if !ok {
			t.Fatalf("the model has no shape %s", name)
		}
		for _, v := range sh.Enum {
			values[v] = name
		}
	}
	if len(values) < 100 {
		t.Fatalf("only %d instance types in the model's enums", len(values))
	}
	return values
}

func TestEveryModelInstanceTypeIsKnown(t *testing.T) {
	for v, shape := range instanceTypeEnums(t) {
		it, ok := Lookup(v)
		if !ok {
			t.Errorf("%s (of %s) is not in the table", v, shape)
			continue
		}
		if it.Name != v || it.VCPUs <= 0 || it.MemoryMiB <= 0 {
			t.Errorf("%s: bad entry %+v", v, it)
		}
		if it.Arch != X86_64 && it.Arch != ARM64 {
			t.Errorf("%s: arch %q", v, it.Arch)
		}
		if (it.GPUs > 0) != (it.Accelerator != None) || it.Accelerator == "" {
			t.Errorf("%s: %d devices of kind %q", v, it.GPUs, it.Accelerator)
		}
	}
}

func TestSpotChecks(t *testing.T) {
	const gib = 1024
	for _, want := range []Type{
		{Name: "ml.m5.large", VCPUs: 2, MemoryMiB: 8 * gib, Accelerator: None, Arch: X86_64},
		{Name: "ml.t2.medium", VCPUs: 2, MemoryMiB: 4 * gib, Accelerator: None, Arch: X86_64},
		{Name: "ml.c4.large", VCPUs: 2, MemoryMiB: 3840, Accelerator: None, Arch: X86_64},
		{Name: "ml.c4.8xlarge", VCPUs: 36, MemoryMiB: 60 * gib, Accelerator: None, Arch: X86_64},
		{Name: "ml.c5.9xlarge", VCPUs: 36, MemoryMiB: 72 * gib, Accelerator: None, Arch: X86_64},
		{Name: "ml.r6i.32xlarge", VCPUs: 128, MemoryMiB: 1024 * gib, Accelerator: None, Arch: X86_64},
		{Name: "ml.m4.10xlarge", VCPUs: 40, MemoryMiB: 160 * gib, Accelerator: None, Arch: X86_64},
		{Name: "ml.c7g.large", VCPUs: 2, MemoryMiB: 4 * gib, Accelerator: None, Arch: ARM64},
		{Name: "ml.r8g.medium", VCPUs: 1, MemoryMiB: 8 * gib, Accelerator: None, Arch: ARM64},
		{Name: "ml.g4dn.xlarge", VCPUs: 4, MemoryMiB: 16 * gib, GPUs: 1, Accelerator: NvidiaT4, Arch: X86_64},
		{Name: "ml.g4dn.12xlarge", VCPUs: 48, MemoryMiB: 192 * gib, GPUs: 4, Accelerator: NvidiaT4, Arch: X86_64},
		{Name: "ml.g5.xlarge", VCPUs: 4, MemoryMiB: 16 * gib, GPUs: 1, Accelerator: NvidiaA10G, Arch: X86_64},
		{Name: "ml.g5.48xlarge", VCPUs: 192, MemoryMiB: 768 * gib, GPUs: 8, Accelerator: NvidiaA10G, Arch: X86_64},
		{Name: "ml.g6e.xlarge", VCPUs: 4, MemoryMiB: 32 * gib, GPUs: 1, Accelerator: NvidiaL40S, Arch: X86_64},
		{Name: "ml.p3.2xlarge", VCPUs: 8, MemoryMiB: 61 * gib, GPUs: 1, Accelerator: NvidiaV100, Arch: X86_64},
		{Name: "ml.p4d.24xlarge", VCPUs: 96, MemoryMiB: 1152 * gib, GPUs: 8, Accelerator: NvidiaA100, Arch: X86_64},
		{Name: "ml.p5.48xlarge", VCPUs: 192, MemoryMiB: 2048 * gib, GPUs: 8, Accelerator: NvidiaH100, Arch: X86_64},
		{Name: "ml.p6e-gb200.36xlarge", VCPUs: 144, MemoryMiB: 960 * gib, GPUs: 4, Accelerator: NvidiaGB200, Arch: ARM64},
		{Name: "ml.inf2.xlarge", VCPUs: 4, MemoryMiB: 16 * gib, GPUs: 1, Accelerator: Inferentia2, Arch: X86_64},
		{Name: "ml.inf2.48xlarge", VCPUs: 192, MemoryMiB: 768 * gib, GPUs: 12, Accelerator: Inferentia2, Arch: X86_64},
		{Name: "ml.trn1.32xlarge", VCPUs: 128, MemoryMiB: 512 * gib, GPUs: 16, Accelerator: Trainium, Arch: X86_64},
	} {
		got, ok := Lookup(want.Name)
		if !ok {
			t.Errorf("Lookup(%s) found nothing", want.Name)
			continue
		}
		if got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", want.Name, got, want)
		}
	}
	if it, _ := Lookup("ml.g5.xlarge"); !it.NVIDIA() || it.MemoryBytes() != 16<<30 {
		t.Errorf("ml.g5.xlarge: NVIDIA() = %v, MemoryBytes() = %d", it.NVIDIA(), it.MemoryBytes())
	}
	if it, _ := Lookup("ml.inf2.xlarge"); it.NVIDIA() {
		t.Error("ml.inf2.xlarge counted as NVIDIA")
	}
	for _, bad := range []string{"", "m5.large", "ml.m5.huge", "ML.M5.LARGE"} {
		if _, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) found a type", bad)
		}
	}
}

func TestAllSorted(t *testing.T) {
	all := All()
	if len(all) != len(table) {
		t.Fatalf("All has %d types, the table %d", len(all), len(table))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Fatalf("All is not sorted at %s, %s", all[i-1].Name, all[i].Name)
		}
	}
}
