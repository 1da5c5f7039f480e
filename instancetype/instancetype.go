// Package instancetype knows the SageMaker hosting instance types (the
// ml.* values of botocore's ProductionVariantInstanceType): how many vCPUs,
// how much memory and which accelerators each one has, so that a backend can
// give an instance the resources of its type (a CPU and memory limit, that
// many GPUs) on the user's machine.
//
// An ml.X.Y hosting instance is the EC2 instance type X.Y, so the figures
// are EC2's: vCPUs as EC2 counts them (hardware threads), memory in MiB
// (EC2 gives GiB; the few fractional ones, like c4's 3.75 GiB, are exact in
// MiB), and GPUs as the number of accelerator devices the instance exposes:
// NVIDIA GPUs, or AWS Inferentia/Trainium chips, or Habana Gaudi cards, with
// Accelerator naming which. SageMaker itself keeps a little of each instance
// for its own agents; the table does not subtract that.
package instancetype

import (
	"sort"
	"strconv"
	"strings"
)

// Accelerator kinds.
const (
	None       = "none"
	NvidiaK80  = "nvidia-k80"
	NvidiaV100 = "nvidia-v100"
	NvidiaT4   = "nvidia-t4"
	NvidiaA10G = "nvidia-a10g"
	NvidiaL4   = "nvidia-l4"
	NvidiaL40S = "nvidia-l40s"
	NvidiaA100 = "nvidia-a100"
	// NvidiaA100_80 is the 80 GB A100 of p4de.
	NvidiaA100_80 = "nvidia-a100-80gb"
	NvidiaH100    = "nvidia-h100"
	NvidiaH200    = "nvidia-h200"
	NvidiaB200    = "nvidia-b200"
	NvidiaB300    = "nvidia-b300"
	// NvidiaGB200 is the B200 GPU of a Grace Blackwell superchip (p6e-gb200).
	NvidiaGB200 = "nvidia-gb200"
	// NvidiaRTXPro6000 is the RTX PRO 6000 Blackwell Server Edition of g7e.
	NvidiaRTXPro6000 = "nvidia-rtx-pro-6000"
	Inferentia       = "inferentia"
	Inferentia2      = "inferentia2"
	Trainium         = "trainium"
	Trainium2        = "trainium2"
	HabanaGaudi      = "habana-gaudi"
)

// CPU architectures.
const (
	X86_64 = "x86_64"
	ARM64  = "arm64" // AWS Graviton
)

// Type is one instance type.
type Type struct {
	// Name is the SageMaker name, e.g. "ml.g5.xlarge".
	Name string
	// VCPUs is the number of vCPUs.
	VCPUs int
	// MemoryMiB is the instance's memory in MiB.
	MemoryMiB int64
	// GPUs is the number of accelerator devices (GPUs, or Inferentia,
	// Trainium or Gaudi devices; see Accelerator); 0 for none.
	GPUs int
	// Accelerator is the kind of those devices ("nvidia-a10g",
	// "inferentia2", ...), or None.
	Accelerator string
	// Arch is the CPU architecture: X86_64 or ARM64.
	Arch string
}

// NVIDIA says whether the type's accelerators are NVIDIA GPUs.
func (t Type) NVIDIA() bool { return strings.HasPrefix(t.Accelerator, "nvidia-") }

// MemoryBytes is MemoryMiB in bytes.
func (t Type) MemoryBytes() int64 { return t.MemoryMiB << 20 }

// Lookup returns the instance type called name (e.g. "ml.m5.large").
func Lookup(name string) (Type, bool) {
	t, ok := table[name]
	return t, ok
}

// All returns every known instance type, ordered by name.
func All() []Type {
	ts := make([]Type, 0, len(table))
	for _, t := range table {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

var table = build()

// family describes instance types whose memory is a fixed number of GiB per
// vCPU and whose sizes follow EC2's usual naming (medium = 1 vCPU, large =
// 2, xlarge = 4, Nxlarge = 4N).
type family struct {
	name       string // e.g. "m5"
	arch       string
	gibPerVCPU int64
	sizes      []string
}

// accel describes one instance type given in full, in GiB.
type accel struct {
	name  string // without "ml."
	vcpus int
	gib   int64
	gpus  int
	kind  string
}

func build() map[string]Type {
	const (
		x   = X86_64
		arm = ARM64
	)
	var (
		mtoXL   = []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"}
		to16    = []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"}
		to24    = []string{"large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge"}
		to32    = []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"}
		to48    = []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"}
		mto48   = []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"}
		c5sizes = []string{"large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "18xlarge"}
	)
	families := []family{
		// General purpose: 4 GiB per vCPU.
		{"m5", x, 4, to24},
		{"m5d", x, 4, to24},
		{"m6i", x, 4, to32},
		{"m7i", x, 4, to48},
		{"m6g", arm, 4, to16},
		{"m6gd", arm, 4, to16},
		{"m8g", arm, 4, mto48},
		// Compute optimised: 2 GiB per vCPU.
		{"c5", x, 2, c5sizes},
		{"c5d", x, 2, c5sizes},
		{"c6i", x, 2, to32},
		{"c6in", x, 2, to32},
		{"c7i", x, 2, to48},
		{"c6g", arm, 2, to16},
		{"c6gd", arm, 2, to16},
		{"c6gn", arm, 2, to16},
		{"c7g", arm, 2, to16},
		{"c8g", arm, 2, mto48},
		// Memory optimised: 8 GiB per vCPU.
		{"r5", x, 8, to24},
		{"r5d", x, 8, to24},
		{"r6i", x, 8, to32},
		{"r7i", x, 8, to48},
		{"r6g", arm, 8, to16},
		{"r6gd", arm, 8, to16},
		{"r7gd", arm, 8, mtoXL},
		{"r8g", arm, 8, mto48},
	}
	// Everything else, given in full (vCPUs, GiB, devices, kind).
	explicit := []accel{
		// Burstable.
		{"t2.medium", 2, 4, 0, None},
		{"t2.large", 2, 8, 0, None},
		{"t2.xlarge", 4, 16, 0, None},
		{"t2.2xlarge", 8, 32, 0, None},
		// Previous-generation general purpose and compute.
		{"m4.xlarge", 4, 16, 0, None},
		{"m4.2xlarge", 8, 32, 0, None},
		{"m4.4xlarge", 16, 64, 0, None},
		{"m4.10xlarge", 40, 160, 0, None},
		{"m4.16xlarge", 64, 256, 0, None},
		// c4's memory is fractional in GiB: see c4MiB below.
		// NVIDIA GPUs.
		{"p2.xlarge", 4, 61, 1, NvidiaK80},
		{"p2.8xlarge", 32, 488, 8, NvidiaK80},
		{"p2.16xlarge", 64, 732, 16, NvidiaK80},
		{"p3.2xlarge", 8, 61, 1, NvidiaV100},
		{"p3.8xlarge", 32, 244, 4, NvidiaV100},
		{"p3.16xlarge", 64, 488, 8, NvidiaV100},
		{"g4dn.xlarge", 4, 16, 1, NvidiaT4},
		{"g4dn.2xlarge", 8, 32, 1, NvidiaT4},
		{"g4dn.4xlarge", 16, 64, 1, NvidiaT4},
		{"g4dn.8xlarge", 32, 128, 1, NvidiaT4},
		{"g4dn.12xlarge", 48, 192, 4, NvidiaT4},
		{"g4dn.16xlarge", 64, 256, 1, NvidiaT4},
		{"g5.xlarge", 4, 16, 1, NvidiaA10G},
		{"g5.2xlarge", 8, 32, 1, NvidiaA10G},
		{"g5.4xlarge", 16, 64, 1, NvidiaA10G},
		{"g5.8xlarge", 32, 128, 1, NvidiaA10G},
		{"g5.12xlarge", 48, 192, 4, NvidiaA10G},
		{"g5.16xlarge", 64, 256, 1, NvidiaA10G},
		{"g5.24xlarge", 96, 384, 4, NvidiaA10G},
		{"g5.48xlarge", 192, 768, 8, NvidiaA10G},
		{"g6.xlarge", 4, 16, 1, NvidiaL4},
		{"g6.2xlarge", 8, 32, 1, NvidiaL4},
		{"g6.4xlarge", 16, 64, 1, NvidiaL4},
		{"g6.8xlarge", 32, 128, 1, NvidiaL4},
		{"g6.12xlarge", 48, 192, 4, NvidiaL4},
		{"g6.16xlarge", 64, 256, 1, NvidiaL4},
		{"g6.24xlarge", 96, 384, 4, NvidiaL4},
		{"g6.48xlarge", 192, 768, 8, NvidiaL4},
		{"g6e.xlarge", 4, 32, 1, NvidiaL40S},
		{"g6e.2xlarge", 8, 64, 1, NvidiaL40S},
		{"g6e.4xlarge", 16, 128, 1, NvidiaL40S},
		{"g6e.8xlarge", 32, 256, 1, NvidiaL40S},
		{"g6e.12xlarge", 48, 384, 4, NvidiaL40S},
		{"g6e.16xlarge", 64, 512, 1, NvidiaL40S},
		{"g6e.24xlarge", 96, 768, 4, NvidiaL40S},
		{"g6e.48xlarge", 192, 1536, 8, NvidiaL40S},
		{"g7e.2xlarge", 8, 64, 1, NvidiaRTXPro6000},
		{"g7e.4xlarge", 16, 128, 1, NvidiaRTXPro6000},
		{"g7e.8xlarge", 32, 256, 1, NvidiaRTXPro6000},
		{"g7e.12xlarge", 48, 512, 2, NvidiaRTXPro6000},
		{"g7e.24xlarge", 96, 1024, 4, NvidiaRTXPro6000},
		{"g7e.48xlarge", 192, 2048, 8, NvidiaRTXPro6000},
		{"p4d.24xlarge", 96, 1152, 8, NvidiaA100},
		{"p4de.24xlarge", 96, 1152, 8, NvidiaA100_80},
		{"p5.4xlarge", 16, 256, 1, NvidiaH100},
		{"p5.48xlarge", 192, 2048, 8, NvidiaH100},
		{"p5e.48xlarge", 192, 2048, 8, NvidiaH200},
		{"p5en.48xlarge", 192, 2048, 8, NvidiaH200},
		{"p6-b200.48xlarge", 192, 2048, 8, NvidiaB200},
		{"p6-b300.48xlarge", 192, 4096, 8, NvidiaB300},
		{"p6e-gb200.36xlarge", 144, 960, 4, NvidiaGB200},
		// AWS Inferentia and Trainium, Habana Gaudi.
		{"inf1.xlarge", 4, 8, 1, Inferentia},
		{"inf1.2xlarge", 8, 16, 1, Inferentia},
		{"inf1.6xlarge", 24, 48, 4, Inferentia},
		{"inf1.24xlarge", 96, 192, 16, Inferentia},
		{"inf2.xlarge", 4, 16, 1, Inferentia2},
		{"inf2.8xlarge", 32, 128, 1, Inferentia2},
		{"inf2.24xlarge", 96, 384, 6, Inferentia2},
		{"inf2.48xlarge", 192, 768, 12, Inferentia2},
		{"trn1.2xlarge", 8, 32, 1, Trainium},
		{"trn1.32xlarge", 128, 512, 16, Trainium},
		{"trn1n.32xlarge", 128, 512, 16, Trainium},
		{"trn2.48xlarge", 192, 2048, 16, Trainium2},
		{"dl1.24xlarge", 96, 768, 8, HabanaGaudi},
	}
	// c4: 1.875 GiB per vCPU (3.75 GiB for large), except c4.8xlarge
	// (36 vCPUs, 60 GiB).
	c4MiB := []struct {
		size  string
		vcpus int
		mib   int64
	}{
		{"large", 2, 3840},
		{"xlarge", 4, 7680},
		{"2xlarge", 8, 15360},
		{"4xlarge", 16, 30720},
		{"8xlarge", 36, 61440},
	}

	m := make(map[string]Type)
	add := func(t Type) {
		if _, dup := m[t.Name]; dup {
			panic("instancetype: duplicate " + t.Name)
		}
		m[t.Name] = t
	}
	for _, f := range families {
		for _, s := range f.sizes {
			v := sizeVCPUs(s)
			add(Type{Name: "ml." + f.name + "." + s, VCPUs: v, MemoryMiB: int64(v) * f.gibPerVCPU << 10,
				Accelerator: None, Arch: f.arch})
		}
	}
	for _, e := range explicit {
		arch := X86_64
		if e.kind == NvidiaGB200 {
			arch = ARM64 // Grace CPUs
		}
		add(Type{Name: "ml." + e.name, VCPUs: e.vcpus, MemoryMiB: e.gib << 10, GPUs: e.gpus,
			Accelerator: e.kind, Arch: arch})
	}
	for _, c := range c4MiB {
		add(Type{Name: "ml.c4." + c.size, VCPUs: c.vcpus, MemoryMiB: c.mib, Accelerator: None, Arch: X86_64})
	}
	return m
}

// sizeVCPUs returns the vCPUs of an EC2 size name in the usual scheme.
func sizeVCPUs(size string) int {
	switch size {
	case "medium":
		return 1
	case "large":
		return 2
	case "xlarge":
		return 4
	}
	n, err := strconv.Atoi(strings.TrimSuffix(size, "xlarge"))
	if err != nil || !strings.HasSuffix(size, "xlarge") {
		panic("instancetype: unknown size " + size)
	}
	return 4 * n
}
