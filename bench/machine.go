package bench

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

// Machine describes the host a run took place on.
type Machine struct {
	// CPUsOnline is /sys/devices/system/cpu/online, e.g. "0-1".
	CPUsOnline string
	// NProc is the number of online CPUs.
	NProc int
	// CPUModel is the first "model name" of /proc/cpuinfo.
	CPUModel string
	// Kernel is the kernel release.
	Kernel string
	// GoVersion is the Go the harness (and the sagehost it built) uses.
	GoVersion string
	// CgroupCPULimit is the cgroup v2 CPU bandwidth limit in CPUs (0: none).
	CgroupCPULimit float64
}

// DescribeMachine reads the host's description from /proc and /sys.
func DescribeMachine() Machine {
	m := Machine{GoVersion: runtime.Version(), CgroupCPULimit: cgroupCPULimit()}
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		m.CPUsOnline = strings.TrimSpace(string(b))
		m.NProc = CPUListCount(m.CPUsOnline)
	}
	if m.NProc == 0 {
		m.NProc = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if m.CPUModel == "" {
		m.CPUModel = "unknown"
	}
	return m
}

// LoadAvg returns the first three fields of /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
