package process

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// portBlock is the number of ports each container gets: SAGEMAKER_BIND_TO_PORT
// and the nine after it (SAGEMAKER_SAFE_PORT_RANGE).
const portBlock = 10

// allocatePorts reserves n free blocks of ports for instance id and returns
// the first port of each. A block is free when no instance this backend
// tracks or finds in its state directory uses it and each of its ports can
// be bound on 127.0.0.1 and 0.0.0.0 right now. Blocks are handed out round
// robin, so a port is not reused soon after its instance went away. b.mu is
// held.
func (b *Backend) allocatePorts(id string, n int) ([]int, error) {
	used := make(map[int]bool)
	for base := range b.ports {
		used[base] = true
	}
	// Instances of an earlier sagehost that are not recovered (yet) keep
	// their ports too.
	if entries, err := os.ReadDir(b.cfg.StateDir); err == nil {
		for _, e := range entries {
			if !e.IsDir() || b.insts[e.Name()] != nil {
				continue
			}
			st, _, err := readState(filepath.Join(b.cfg.StateDir, e.Name()))
			if err != nil {
				continue
			}
			for _, c := range st.Containers {
				used[b.blockOf(c.Port)] = true
			}
		}
	}

	nblocks := (b.cfg.PortMax - b.cfg.PortMin + 1) / portBlock
	var got []int
	for i := 0; i < nblocks && len(got) < n; i++ {
		k := (b.nextBlock + i) % nblocks
		base := b.cfg.PortMin + k*portBlock
		if used[base] || !canBind(base) {
			continue
		}
		got = append(got, base)
		used[base] = true
		b.nextBlock = (k + 1) % nblocks
	}
	if len(got) < n {
		return nil, fmt.Errorf("no free block of %d ports left in %d-%d for instance %s", portBlock, b.cfg.PortMin, b.cfg.PortMax, id)
	}
	for _, base := range got {
		b.ports[base] = id
	}
	return got, nil
}

// reservePorts marks the blocks of a recovered instance as used. b.mu is held.
func (b *Backend) reservePorts(id string, ports []int) {
	for _, p := range ports {
		b.ports[b.blockOf(p)] = id
	}
}

// releasePorts frees the blocks of instance id. b.mu is held.
func (b *Backend) releasePorts(id string) {
	for base, owner := range b.ports {
		if owner == id {
			delete(b.ports, base)
		}
	}
}

// blockOf returns the first port of the block that holds port p.
func (b *Backend) blockOf(p int) int {
	if p < b.cfg.PortMin {
		return p
	}
	return p - (p-b.cfg.PortMin)%portBlock
}

// canBind says whether every port of the block starting at base can be
// bound on 127.0.0.1 and on 0.0.0.0.
func canBind(base int) bool {
	for p := base; p < base+portBlock; p++ {
		for _, host := range []string{"127.0.0.1", "0.0.0.0"} {
			ln, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				return false
			}
			ln.Close()
		}
	}
	return true
}

func (c *Config) checkPorts() error {
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = DefaultPortMin, DefaultPortMax
	}
	if c.PortMin < 1 || c.PortMax > 65535 || c.PortMax-c.PortMin+1 < portBlock {
		return errors.New("process backend: port range must lie in 1-65535 and hold at least one block of 10 ports")
	}
	return nil
}
