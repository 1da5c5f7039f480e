// Package gpu finds the host's GPUs and hands them out: every instance of a
// GPU instance type gets that many devices for itself alone, whatever
// backend runs it, and a request the free devices cannot meet fails the way
// AWS fails one when capacity is short.
package gpu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Discover lists the host's NVIDIA GPUs by index: from nvidia-smi when it
// is installed, else from the driver's /proc entries or /dev/nvidiaN nodes.
func Discover(ctx context.Context) []string {
	if ids := fromNvidiaSMI(ctx); len(ids) > 0 {
		return ids
	}
	if entries, err := os.ReadDir("/proc/driver/nvidia/gpus"); err == nil && len(entries) > 0 {
		ids := make([]string, len(entries))
		for i := range entries {
			ids[i] = strconv.Itoa(i)
		}
		return ids
	}
	return fromDevNodes("/dev")
}

func fromNvidiaSMI(ctx context.Context) []string {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=index", "--format=csv,noheader").Output()
	if err != nil {
		return nil
	}
	return parseIndexes(out)
}

// parseIndexes reads one GPU index per line.
func parseIndexes(out []byte) []string {
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if _, err := strconv.Atoi(line); err == nil {
			ids = append(ids, line)
		}
	}
	return ids
}

var devNode = regexp.MustCompile(`^nvidia([0-9]+)$`)

func fromDevNodes(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "nvidia*"))
	var n []int
	for _, m := range matches {
		if sm := devNode.FindStringSubmatch(filepath.Base(m)); sm != nil {
			i, _ := strconv.Atoi(sm[1])
			n = append(n, i)
		}
	}
	sort.Ints(n)
	ids := make([]string, len(n))
	for i, v := range n {
		ids[i] = strconv.Itoa(v)
	}
	return ids
}

// Parse reads a device list setting: "" (discover), "none", or
// comma-separated ids such as "0,1,3".
func Parse(ctx context.Context, setting string) []string {
	switch strings.TrimSpace(setting) {
	case "":
		return Discover(ctx)
	case "none":
		return nil
	}
	var ids []string
	for _, f := range strings.Split(setting, ",") {
		if f = strings.TrimSpace(f); f != "" {
			ids = append(ids, f)
		}
	}
	return ids
}

// CapacityError says that too few GPUs are free for an instance.
type CapacityError struct {
	InstanceType string
	Want, Free   int
	Total        int
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("Unable to provision requested ML compute capacity: instance type %s needs %d GPUs and this host has %d free of %d. Please retry using a different ML instance type, or stop endpoints that hold GPUs.",
		e.InstanceType, e.Want, e.Free, e.Total)
}

// Allocator hands out GPUs to instances. It is safe for concurrent use.
type Allocator struct {
	mu    sync.Mutex
	all   []string
	owner map[string]string // device -> instance id
}

// NewAllocator returns an allocator of the given devices.
func NewAllocator(devices []string) *Allocator {
	return &Allocator{all: append([]string(nil), devices...), owner: map[string]string{}}
}

// Devices returns every device the allocator manages.
func (a *Allocator) Devices() []string { return append([]string(nil), a.all...) }

// Allocate gives n free devices to an instance; an instance that holds
// devices already gets the same ones back.
func (a *Allocator) Allocate(instance, instanceType string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var held, free []string
	for _, d := range a.all {
		switch a.owner[d] {
		case instance:
			held = append(held, d)
		case "":
			free = append(free, d)
		}
	}
	if len(held) >= n {
		return held[:n], nil
	}
	if len(held)+len(free) < n {
		return nil, &CapacityError{InstanceType: instanceType, Want: n, Free: len(free) + len(held), Total: len(a.all)}
	}
	got := append(held, free[:n-len(held)]...)
	for _, d := range got {
		a.owner[d] = instance
	}
	return got, nil
}

// Reserve marks devices as held by an instance adopted after a restart.
// Devices the allocator does not manage, or another instance holds, are
// left alone and reported.
func (a *Allocator) Reserve(instance string, devices []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var bad []string
	for _, d := range devices {
		o, managed := a.owner[d]
		switch {
		case !a.manages(d):
			bad = append(bad, d+" (not a device of this host)")
		case managed && o != instance:
			bad = append(bad, d+" (held by "+o+")")
		default:
			a.owner[d] = instance
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("reserve GPUs for %s: %s", instance, strings.Join(bad, ", "))
	}
	return nil
}

func (a *Allocator) manages(d string) bool {
	for _, x := range a.all {
		if x == d {
			return true
		}
	}
	return false
}

// Release frees every device of an instance.
func (a *Allocator) Release(instance string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for d, o := range a.owner {
		if o == instance {
			delete(a.owner, d)
		}
	}
}

// Free returns how many devices no instance holds.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.all) - len(a.owner)
}
