package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/internal/instfiles"
	"github.com/sagehost/sagehost/instancetype"
)

// Where containers listen and where the model data is, inside a container.
const (
	// FirstPort is SAGEMAKER_BIND_TO_PORT of the first container; the n-th
	// (from 0) gets FirstPort + 10n.
	FirstPort = 8080
	// SafePortBase starts the first container's SAGEMAKER_SAFE_PORT_RANGE
	// (23000-23999, as observed on SageMaker); the n-th gets the thousand
	// ports after SafePortBase + 1000n.
	SafePortBase = 23000
	// ModelDir is where a container sees its model data.
	ModelDir = "/opt/ml/model"
	// ModelsDir is where a multi-model container sees the models sagehost
	// fetched for it (ContainerSpec.ModelsDir), read-only.
	ModelsDir = "/opt/ml/models"
)

// startAttempts bounds the retries after a host port turned out taken.
const startAttempts = 4

// Start creates and starts the instance's containers (pulling images that
// are not present) and returns once they run; a container that exits at
// once is reported by Wait. Start fails, leaving no container behind, when
// the engine cannot be reached, the instance type is unknown, an image
// cannot be pulled, or the engine refuses to create or start a container;
// the error carries the engine's message and is also appended to the
// container's log.
func (b *Backend) Start(ctx context.Context, spec sagehost.InstanceSpec) (*sagehost.InstanceHandle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := b.checkSpec(spec); err != nil {
		return nil, fmt.Errorf("docker backend: instance %s: %w", spec.ID, err)
	}

	b.mu.Lock()
	if b.insts[spec.ID] != nil || b.starting[spec.ID] {
		b.mu.Unlock()
		return nil, fmt.Errorf("docker backend: instance %s: %w", spec.ID, sagehost.ErrAlreadyExists)
	}
	b.starting[spec.ID] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.starting, spec.ID)
		b.releasePorts(spec.ID)
		b.mu.Unlock()
	}()

	inst, err := b.launch(ctx, spec)
	if err != nil {
		err = fmt.Errorf("docker backend: instance %s: %w", spec.ID, err)
		if !errors.Is(err, sagehost.ErrAlreadyExists) {
			appendLogs(spec, err)
		}
		return nil, err
	}
	b.mu.Lock()
	b.insts[spec.ID] = inst
	b.mu.Unlock()
	b.watch(inst)
	for _, c := range inst.st.Containers {
		b.log.Info("container started", "instance", spec.ID, "container", c.Name, "id", shortID(c.ContainerID),
			"image", c.Image, "addr", "127.0.0.1:"+strconv.Itoa(c.HostPort))
	}
	return inst.st.handle(), nil
}

// checkSpec checks what can be checked without the engine.
func (b *Backend) checkSpec(spec sagehost.InstanceSpec) error {
	if err := instfiles.CheckSpec(spec); err != nil {
		return err
	}
	for k := range spec.Labels {
		if reservedLabel(k) {
			return fmt.Errorf("label %q is reserved for the docker backend", k)
		}
	}
	for i, c := range spec.Containers {
		if strings.TrimSpace(c.Image) == "" {
			return fmt.Errorf("container %d has no image", i+1)
		}
		if c.ModelDir != "" {
			fi, err := os.Stat(c.ModelDir)
			if err != nil {
				return fmt.Errorf("container %d: model data: %w", i+1, err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("container %d: model data %s is not a directory", i+1, c.ModelDir)
			}
		}
	}
	return nil
}

// resources returns the limits of an instance type and the GPUs of the
// instance, as the engine wants them.
func (b *Backend) resources(spec sagehost.InstanceSpec, eng *engineInfo) (container.Resources, error) {
	var r container.Resources
	if spec.InstanceType != "" {
		it, ok := b.cfg.InstanceTypes(spec.InstanceType)
		if !ok {
			return r, fmt.Errorf("unknown instance type %q", spec.InstanceType)
		}
		r = limits(it, eng.ncpu)
	}
	if len(spec.GPUs) > 0 {
		if eng.podman && !versionAtLeast(eng.version, 5, 4) {
			return r, fmt.Errorf("instance has GPUs %s, but Podman %s's Docker-compatible API ignores GPU (CDI) device requests; Podman 5.4 or later is needed",
				strings.Join(spec.GPUs, ","), eng.version)
		}
		r.DeviceRequests = gpuRequests(spec.GPUs, eng.podman)
	}
	return r, nil
}

// limits returns the CPU and memory limits of an instance type, with the
// CPUs capped at hostCPUs when that is known (Docker refuses more).
func limits(it instancetype.Type, hostCPUs int) container.Resources {
	cpus := it.VCPUs
	if hostCPUs > 0 && cpus > hostCPUs {
		cpus = hostCPUs
	}
	return container.Resources{
		NanoCPUs: int64(cpus) * 1e9,
		Memory:   it.MemoryBytes(),
	}
}

// CDIKind is the CDI kind of NVIDIA GPUs, as the NVIDIA Container Toolkit
// names them ("nvidia.com/gpu=0").
const CDIKind = "nvidia.com/gpu"

// gpuRequests translates host GPU indexes into the device requests of the
// engine: Docker's NVIDIA driver, or CDI devices for Podman.
func gpuRequests(ids []string, podman bool) []container.DeviceRequest {
	if len(ids) == 0 {
		return nil
	}
	if podman {
		cdi := make([]string, len(ids))
		for i, id := range ids {
			cdi[i] = CDIKind + "=" + id
		}
		return []container.DeviceRequest{{Driver: "cdi", DeviceIDs: cdi}}
	}
	return []container.DeviceRequest{{
		Driver:       "nvidia",
		DeviceIDs:    append([]string(nil), ids...),
		Capabilities: [][]string{{"gpu"}},
	}}
}

// containerPorts returns SAGEMAKER_BIND_TO_PORT and
// SAGEMAKER_SAFE_PORT_RANGE of the i-th container (from 0).
func containerPorts(i int) (port int, safe string) {
	lo := SafePortBase + 1000*i
	return FirstPort + 10*i, strconv.Itoa(lo) + "-" + strconv.Itoa(lo+999)
}

// environ returns a container's environment: the model's, then the
// platform's variables, which win.
func environ(c sagehost.ContainerSpec, i int) []string {
	env := make(map[string]string, len(c.Environment)+3)
	for k, v := range c.Environment {
		env[k] = v
	}
	port, safe := containerPorts(i)
	env["SAGEMAKER_BIND_TO_PORT"] = strconv.Itoa(port)
	env["SAGEMAKER_SAFE_PORT_RANGE"] = safe
	if c.ModelDir != "" {
		env["SM_MODEL_DIR"] = ModelDir
	}
	return instfiles.EnvList(env)
}

// engineName is a container's name on the engine.
func (b *Backend) engineName(id, name string) string {
	return "sagehost-" + b.dataDir[:8] + "-" + id + "-" + name
}

// containerConfig builds the engine's configuration of container i.
func (b *Backend) containerConfig(spec sagehost.InstanceSpec, i int, cs containerState, stateLabel string,
	res container.Resources) (*container.Config, *container.HostConfig, error) {
	c := spec.Containers[i]
	port := nat.Port(strconv.Itoa(cs.Port) + "/tcp")
	labels := make(map[string]string, len(spec.Labels)+5)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelBackend] = Name
	labels[LabelDataDir] = b.dataDir
	labels[labelInstance] = spec.ID
	labels[labelIndex] = strconv.Itoa(i)
	labels[labelState] = stateLabel

	cfg := &container.Config{
		Hostname:     c.Hostname,
		Image:        c.Image,
		Cmd:          append(append([]string(nil), c.Args...), "serve"),
		Env:          environ(c, i),
		Labels:       labels,
		ExposedPorts: nat.PortSet{port: struct{}{}},
	}
	hc := &container.HostConfig{
		PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(cs.HostPort)}}},
		Resources:    res,
	}
	if c.ModelDir != "" {
		src, err := filepath.Abs(c.ModelDir)
		if err != nil {
			return nil, nil, fmt.Errorf("model data: %w", err)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: ModelDir, ReadOnly: true})
	}
	if c.ModelsDir != "" {
		src, err := filepath.Abs(c.ModelsDir)
		if err != nil {
			return nil, nil, fmt.Errorf("models directory: %w", err)
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, nil, fmt.Errorf("models directory: %w", err)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: ModelsDir, ReadOnly: true})
	}
	return cfg, hc, nil
}

// launch pulls the images and creates and starts the containers. On error
// it removes what it created.
func (b *Backend) launch(ctx context.Context, spec sagehost.InstanceSpec) (*instance, error) {
	eng, err := b.engine(ctx)
	if err != nil {
		return nil, err
	}
	existing, err := b.containersOf(ctx, spec.ID)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("%w (its containers exist; destroy the old one first)", sagehost.ErrAlreadyExists)
	}
	res, err := b.resources(spec, eng)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range spec.Containers {
		if seen[c.Image] {
			continue
		}
		seen[c.Image] = true
		if err := b.ensureImage(ctx, c.Image); err != nil {
			return nil, err
		}
	}
	// A stale directory of an earlier instance with this id (its log
	// positions) must not make the new one skip its first lines.
	if err := instfiles.RemoveAll(b.instanceDir(spec.ID)); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}

	names := instfiles.ContainerNames(spec.Containers)
	st := &state{StateHeader: instfiles.NewStateHeader(Name, stateVersion, spec)}
	for i, c := range spec.Containers {
		port, _ := containerPorts(i)
		cs := containerState{
			Name:       names[i],
			EngineName: b.engineName(spec.ID, names[i]),
			Hostname:   c.Hostname,
			Image:      c.Image,
			LogPath:    c.LogPath,
			Port:       port,
		}
		if cs.LogPath == "" {
			cs.LogPath = filepath.Join(b.instanceDir(spec.ID), names[i]+".log")
		}
		st.Containers = append(st.Containers, cs)
	}

	avoid := map[int]bool{}
	for attempt := 1; ; attempt++ {
		ports, err := b.allocatePorts(ctx, spec.ID, len(spec.Containers), avoid)
		if err != nil {
			return nil, err
		}
		for i := range st.Containers {
			st.Containers[i].HostPort = ports[i]
			st.Containers[i].ContainerID = ""
		}
		err = b.createAndStart(ctx, spec, st, res)
		if err == nil {
			break
		}
		b.removeContainers(st)
		if !portTaken(err) || attempt == startAttempts || ctx.Err() != nil {
			return nil, err
		}
		b.log.Info("host port taken, retrying with others", "instance", spec.ID, "err", err)
		for _, p := range ports {
			avoid[p] = true
		}
		b.mu.Lock()
		b.releasePorts(spec.ID)
		b.mu.Unlock()
	}
	return newInstance(b.ctx, st), nil
}

// createAndStart creates every container of st, then starts them in order,
// filling in their ids.
func (b *Backend) createAndStart(ctx context.Context, spec sagehost.InstanceSpec, st *state, res container.Resources) error {
	lv, err := st.labelValue()
	if err != nil {
		return err
	}
	for i := range st.Containers {
		cs := &st.Containers[i]
		cfg, hc, err := b.containerConfig(spec, i, *cs, lv, res)
		if err != nil {
			return fmt.Errorf("container %s: %w", cs.Name, err)
		}
		resp, err := b.cli.ContainerCreate(ctx, cfg, hc, nil, nil, cs.EngineName)
		if err != nil {
			return fmt.Errorf("container %s: create from image %q: %w", cs.Name, cs.Image, engineErr(err))
		}
		cs.ContainerID = resp.ID
		for _, w := range resp.Warnings {
			b.log.Warn("engine warning", "instance", spec.ID, "container", cs.Name, "warning", w)
		}
	}
	for _, cs := range st.Containers {
		if err := b.cli.ContainerStart(ctx, cs.ContainerID, container.StartOptions{}); err != nil {
			return fmt.Errorf("container %s: start image %q: %w", cs.Name, cs.Image, engineErr(err))
		}
	}
	return nil
}

// removeContainers force-removes the containers of a failed start, by id
// where it is known, else by name.
func (b *Backend) removeContainers(st *state) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, cs := range st.Containers {
		ref := cs.ContainerID
		if ref == "" {
			ref = cs.EngineName
		}
		err := b.cli.ContainerRemove(ctx, ref, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !client.IsErrNotFound(err) {
			b.log.Warn("removing a container of a failed start", "instance", st.ID, "container", cs.Name, "err", err)
		}
	}
}

// portTaken says whether a start failed because a host port was in use.
func portTaken(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "address already in use") || strings.Contains(s, "port is already allocated")
}

// engineErr strips the client's "Error response from daemon: " prefix: the
// rest is the engine's message.
func engineErr(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "Error response from daemon: "); ok {
		return &engineError{msg: rest, err: err}
	}
	return err
}

type engineError struct {
	msg string
	err error
}

func (e *engineError) Error() string { return e.msg }
func (e *engineError) Unwrap() error { return e.err }

// appendLogs appends a sagehost line about a failed start to the log of
// every container of spec, where the endpoint's FailureReason is looked for.
func appendLogs(spec sagehost.InstanceSpec, err error) {
	for _, c := range spec.Containers {
		if c.LogPath != "" {
			instfiles.AppendLine(c.LogPath, "sagehost: "+err.Error())
		}
	}
}

// allocatePorts reserves n free host ports for instance id: ports that no
// container of this backend (of any sagehost on the engine) publishes, that
// no start under way holds, that are not in avoid, and that can be bound on
// 127.0.0.1 right now. They are handed out round robin.
func (b *Backend) allocatePorts(ctx context.Context, id string, n int, avoid map[int]bool) ([]int, error) {
	used, err := b.publishedPorts(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for p := range b.reserved {
		used[p] = true
	}
	span := b.cfg.PortMax - b.cfg.PortMin + 1
	var got []int
	for i := 0; i < span && len(got) < n; i++ {
		k := (b.nextPort + i) % span
		p := b.cfg.PortMin + k
		if used[p] || avoid[p] || !canBind(p) {
			continue
		}
		got = append(got, p)
		used[p] = true
		b.nextPort = (k + 1) % span
	}
	if len(got) < n {
		return nil, fmt.Errorf("no free host port left in %d-%d", b.cfg.PortMin, b.cfg.PortMax)
	}
	for _, p := range got {
		b.reserved[p] = id
	}
	return got, nil
}

// releasePorts forgets the reservations of instance id. b.mu is held.
func (b *Backend) releasePorts(id string) {
	for p, owner := range b.reserved {
		if owner == id {
			delete(b.reserved, p)
		}
	}
}

// publishedPorts returns the host ports that containers of any sagehost's
// docker backend on this engine have, running or not.
func (b *Backend) publishedPorts(ctx context.Context) (map[int]bool, error) {
	list, err := b.cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelBackend+"="+Name)),
	})
	if err != nil {
		return nil, b.unreachable(err)
	}
	used := map[int]bool{}
	for _, c := range list {
		for _, p := range c.Ports {
			if p.PublicPort != 0 {
				used[int(p.PublicPort)] = true
			}
		}
		st, err := decodeState([]byte(c.Labels[labelState]))
		if err != nil {
			continue
		}
		for _, cs := range st.Containers {
			used[cs.HostPort] = true
		}
	}
	return used, nil
}

// canBind says whether port can be bound on 127.0.0.1 now.
func canBind(port int) bool {
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
