package hosting

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/instancetype"
)

// host is one instance of a variant that hosts inference components: the
// capacity that copies of components reserve. It runs nothing itself.
type host struct {
	ID           string
	Variant      string
	InstanceType string
	CPUs         float64
	MemoryMiB    int64
	Accelerators int
}

// hostID names the k-th host of a variant deterministically, so that
// copies find their host again after a restart of sagehost.
func hostID(deployment, variant string, k int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", deployment, variant, k)))
	return "i-" + hex.EncodeToString(h[:9])[:17]
}

// componentHosts returns the hosts of the serving deployment's variants
// that have no model of their own.
func componentHosts(d *sagehost.Deployment) []host {
	if d == nil {
		return nil
	}
	var out []host
	for _, v := range d.Variants {
		if _, hasModel := d.Models[v.ModelName]; hasModel {
			continue
		}
		t, _ := instancetype.Lookup(v.InstanceType)
		for k := 0; k < v.DesiredInstanceCount; k++ {
			out = append(out, host{ID: hostID(d.ID, v.VariantName, k), Variant: v.VariantName, InstanceType: v.InstanceType,
				CPUs: float64(t.VCPUs), MemoryMiB: t.MemoryMiB, Accelerators: t.GPUs})
		}
	}
	return out
}

// reservation is what one copy of a component holds on its host.
type reservation struct {
	CPUs         float64
	MemoryMiB    int64
	Accelerators int
}

func reservationOf(sp *sagehost.InferenceComponentSpecification) reservation {
	if sp == nil || sp.ComputeResourceRequirements == nil {
		return reservation{}
	}
	r := sp.ComputeResourceRequirements
	acc := int(r.NumberOfAcceleratorDevicesRequired)
	if float64(acc) < r.NumberOfAcceleratorDevicesRequired {
		acc++ // a device is held whole
	}
	return reservation{CPUs: r.NumberOfCpuCoresRequired, MemoryMiB: int64(r.MinMemoryRequiredInMb), Accelerators: acc}
}

// placedCopy is a copy that holds a reservation on a host.
type placedCopy struct {
	Host string
	Res  reservation
	// Component the copy belongs to (for spreading).
	Component string
}

// place chooses a host for a new copy of a component needing res, given
// the copies already placed: one where the reservation fits, CPU, memory
// and accelerators (accelerators are never shared). SPREAD (the default)
// takes the host with the fewest copies of the component, then the most
// free memory; BINPACK the host with the least free memory that fits. It
// returns "" when no host has room.
func place(hosts []host, placed []placedCopy, component string, res reservation, strategy string) string {
	type free struct {
		h         host
		cpu       float64
		mem       int64
		acc, mine int
	}
	byID := map[string]*free{}
	var order []*free
	for _, h := range hosts {
		f := &free{h: h, cpu: h.CPUs, mem: h.MemoryMiB, acc: h.Accelerators}
		byID[h.ID] = f
		order = append(order, f)
	}
	for _, p := range placed {
		if f := byID[p.Host]; f != nil {
			f.cpu -= p.Res.CPUs
			f.mem -= p.Res.MemoryMiB
			f.acc -= p.Res.Accelerators
			if p.Component == component {
				f.mine++
			}
		}
	}
	var fits []*free
	for _, f := range order {
		if f.cpu+1e-9 >= res.CPUs && f.mem >= res.MemoryMiB && f.acc >= res.Accelerators {
			fits = append(fits, f)
		}
	}
	if len(fits) == 0 {
		return ""
	}
	sort.SliceStable(fits, func(i, j int) bool {
		a, b := fits[i], fits[j]
		if strategy == "BINPACK" {
			return a.mem < b.mem
		}
		if a.mine != b.mine {
			return a.mine < b.mine
		}
		return a.mem > b.mem
	})
	return fits[0].h.ID
}
