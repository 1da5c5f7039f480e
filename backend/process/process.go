// Package process is sagehost's default backend: each container of an
// instance is a local process, started from the executable that the model
// names as its Image.
//
// # Containers
//
// A container runs ContainerSpec.Image, which must be the absolute path of
// an executable file, with the single argument "serve" (the model container
// contract). It runs as sagehost's own user, in its own process group, in
// the working directory StateDir/<instance-id>/<container>/work, where
// <container> is its ContainerHostname, or "primary" for a lone container
// without one (container-<n> for others). Its stdout and stderr go straight
// to ContainerSpec.LogPath (opened for appending; sagehost does not pipe
// them, so a model keeps logging while sagehost is down; with no LogPath they
// go to <container>/output.log, which Destroy removes).
//
// Its environment is built from scratch, so that nothing of sagehost's own
// (AWS keys, say) leaks into the model: PATH (a standard default), HOME (the
// work directory), TMPDIR (work/tmp) and LANG=C.UTF-8, then the model's
// Environment, then the platform's variables, which win:
// SAGEMAKER_BIND_TO_PORT, SAGEMAKER_SAFE_PORT_RANGE, CUDA_VISIBLE_DEVICES and
// NVIDIA_VISIBLE_DEVICES (the instance's GPUs, InstanceSpec.GPUs; "" and
// "void" for an instance without GPUs) and, when there is model data,
// SM_MODEL_DIR. Each container gets a block of ten ports from
// [PortMin, PortMax]: it listens on the first and may use the other nine;
// sagehost reaches it on 127.0.0.1.
//
// There is no isolation beyond that: the model sees the host's files and
// network, ContainerHostname is not a DNS name, and resource limits of the
// instance type are not applied.
//
// # Lifecycle, restarts and orphans
//
// Right after its processes start, an instance is described in
// StateDir/<id>/state.json (labels, spec, pids, process start times, ports),
// which plays the part of container labels: List reads these files, so a new
// sagehost finds the instances of the one before it. Model processes do not
// die with sagehost. On a clean shutdown sagehost stops its instances; after
// a crash it adopts the ones it still wants with Recover, which checks that
// each pid is alive and still the same process (its start time in /proc
// matches), and removes the rest with Destroy, which works on any instance
// List returns, tracked or not. List returns an instance until it is
// destroyed, also after its processes have exited.
//
// When the main process of a container exits, whatever is left of its
// process group is killed, as a container runtime does. The exit status of
// an adopted process cannot be known (it is not sagehost's child): Wait
// reports ExitCode -1 and ErrExitStatusUnknown for it.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/internal/instfiles"
)

// Name is the backend's name, in InstanceHandle.Backend.
const Name = "process"

// Default port range.
const (
	DefaultPortMin = 20000
	DefaultPortMax = 29999
)

// DefaultPath is the PATH of every model process (the model's Environment
// may override it).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrExitStatusUnknown is the ExitStatus.Err of an adopted process that has
// exited: it was not sagehost's child, so its exit code cannot be known.
var ErrExitStatusUnknown = errors.New("exit status unknown: the process was adopted after a restart of sagehost")

// Config configures the process backend.
type Config struct {
	// StateDir holds one directory per instance (its state file and its
	// containers' working directories), e.g. <data-dir>/process. Required.
	StateDir string
	// PortMin and PortMax bound the ports given to instances, in blocks of
	// ten per container; both zero means 20000-29999.
	PortMin, PortMax int
	// Logger logs instance starts, exits and adoptions (nil: discarded).
	Logger *slog.Logger
}

// Backend runs instances as local processes. It is safe for concurrent use.
type Backend struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	insts     map[string]*instance // tracked instances
	starting  map[string]bool      // ids whose Start is under way
	ports     map[int]string       // first port of a block -> instance id
	nextBlock int                  // where the next port search starts
}

var _ sagehost.Backend = (*Backend)(nil)

// New returns a process backend keeping its state under cfg.StateDir, which
// it creates.
func New(cfg Config) (*Backend, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("process backend: no state directory")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("process backend: %w", err)
	}
	cfg.StateDir = dir
	if err := cfg.checkPorts(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("process backend: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		cfg:      cfg,
		log:      log.With("backend", Name),
		insts:    make(map[string]*instance),
		starting: make(map[string]bool),
		ports:    make(map[int]string),
	}, nil
}

// Name returns "process".
func (b *Backend) Name() string { return Name }

// instance is a tracked instance.
type instance struct {
	st    *state
	procs []*proc
	exits *instfiles.ExitLatch
}

// proc is one container process.
type proc struct {
	name  string
	pid   int
	start uint64
	cmd   *exec.Cmd // nil when adopted
	done  chan struct{}
}

func newInstance(st *state, procs []*proc) *instance {
	return &instance{st: st, procs: procs, exits: instfiles.NewExitLatch(len(procs))}
}

// containerExited records that p has exited with es.
func (inst *instance) containerExited(p *proc, es sagehost.ExitStatus) {
	close(p.done)
	inst.exits.Exited(es)
}

// signal sends sig to the process group of every container still running.
func (inst *instance) signal(sig syscall.Signal) {
	for _, p := range inst.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		if p.cmd == nil && !alive(p.pid, p.start) {
			continue // adopted and gone: the pid may be someone else's now
		}
		signalGroup(p.pid, sig)
	}
}

// signalGroup sends sig to process group pgid, or to the process itself if
// it has left its group.
func signalGroup(pgid int, sig syscall.Signal) {
	if err := syscall.Kill(-pgid, sig); errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pgid, sig)
	}
}

// alive says whether process pid runs and is the one that started at start.
func alive(pid int, start uint64) bool {
	st, t, err := procStat(pid)
	if err != nil || st == 'Z' || st == 'X' {
		return false
	}
	return start == 0 || t == start
}

// checkImage checks that image is the absolute path of an executable file.
func checkImage(image string) error {
	if !filepath.IsAbs(image) {
		return fmt.Errorf("image %q is not an absolute path of an executable file", image)
	}
	fi, err := os.Stat(image)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("image %q does not exist", image)
	case err != nil:
		return fmt.Errorf("image %q: %w", image, err)
	case fi.IsDir():
		return fmt.Errorf("image %q is a directory, not an executable file", image)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("image %q is not executable", image)
	}
	return nil
}

// environ builds a container's environment from scratch.
// The instance sees only its own GPUs, as on an instance of its type:
// CUDA_VISIBLE_DEVICES (and NVIDIA_VISIBLE_DEVICES) list the devices
// assigned to it, and are empty for an instance type without GPUs.
// The spec's variables were checked by instfiles.CheckSpec.
func environ(c sagehost.ContainerSpec, work, modelDir string, port int, gpus []string) []string {
	env := map[string]string{
		"PATH":   DefaultPath,
		"HOME":   work,
		"TMPDIR": filepath.Join(work, "tmp"),
		"LANG":   "C.UTF-8",
	}
	for k, v := range c.Environment {
		env[k] = v
	}
	env["CUDA_VISIBLE_DEVICES"] = strings.Join(gpus, ",")
	env["NVIDIA_VISIBLE_DEVICES"] = strings.Join(gpus, ",")
	if len(gpus) == 0 {
		env["NVIDIA_VISIBLE_DEVICES"] = "void"
	}
	env["SAGEMAKER_BIND_TO_PORT"] = strconv.Itoa(port)
	env["SAGEMAKER_SAFE_PORT_RANGE"] = strconv.Itoa(port+1) + "-" + strconv.Itoa(port+portBlock-1)
	if modelDir != "" {
		env["SM_MODEL_DIR"] = modelDir
	}
	return instfiles.EnvList(env)
}

// Start starts the instance's container processes and returns once they
// run; a process that exits at once is reported by Wait. Start fails, and
// leaves neither state nor processes behind, when an image is not an
// executable file or cannot be executed; the reason is also appended to the
// container's log.
func (b *Backend) Start(ctx context.Context, spec sagehost.InstanceSpec) (*sagehost.InstanceHandle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := instfiles.CheckSpec(spec); err != nil {
		return nil, fmt.Errorf("process backend: instance %s: %w", spec.ID, err)
	}
	for i, c := range spec.Containers {
		if err := checkImage(c.Image); err != nil {
			err = fmt.Errorf("process backend: instance %s container %d: %w", spec.ID, i+1, err)
			if c.LogPath != "" {
				instfiles.AppendLine(c.LogPath, "sagehost: "+err.Error())
			}
			return nil, err
		}
	}
	dir := filepath.Join(b.cfg.StateDir, spec.ID)

	b.mu.Lock()
	if b.insts[spec.ID] != nil || b.starting[spec.ID] {
		b.mu.Unlock()
		return nil, fmt.Errorf("process backend: instance %s: %w", spec.ID, sagehost.ErrAlreadyExists)
	}
	if _, err := os.Lstat(dir); err == nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("process backend: instance %s: %w (destroy the old one first)", spec.ID, sagehost.ErrAlreadyExists)
	}
	ports, err := b.allocatePorts(spec.ID, len(spec.Containers))
	if err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("process backend: %w", err)
	}
	b.starting[spec.ID] = true
	b.mu.Unlock()

	inst, raw, err := b.launch(spec, dir, ports)

	b.mu.Lock()
	delete(b.starting, spec.ID)
	if err != nil {
		b.releasePorts(spec.ID)
	} else {
		b.insts[spec.ID] = inst
	}
	b.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("process backend: instance %s: %w", spec.ID, err)
	}
	for _, p := range inst.procs {
		go b.watchChild(inst, p)
	}
	for i, p := range inst.procs {
		b.log.Info("container started", "instance", spec.ID, "container", p.name, "pid", p.pid,
			"addr", "127.0.0.1:"+strconv.Itoa(inst.st.Containers[i].Port))
	}
	return inst.st.handle(raw), nil
}

// launch creates the instance's directories, starts its processes and writes
// its state file. On error it kills what it started and removes dir.
func (b *Backend) launch(spec sagehost.InstanceSpec, dir string, ports []int) (inst *instance, raw []byte, err error) {
	st := &state{StateHeader: instfiles.NewStateHeader(Name, stateVersion, spec)}
	var procs []*proc
	defer func() {
		if err == nil {
			return
		}
		for _, p := range procs {
			signalGroup(p.pid, syscall.SIGKILL)
			p.cmd.Wait()
		}
		instfiles.RemoveAll(dir)
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	names := instfiles.ContainerNames(spec.Containers)
	for i, c := range spec.Containers {
		cs := containerState{
			Name:        names[i],
			Hostname:    c.Hostname,
			Image:       c.Image,
			Environment: maps.Clone(c.Environment),
			LogPath:     c.LogPath,
			WorkDir:     filepath.Join(dir, names[i], "work"),
			Port:        ports[i],
		}
		if c.ModelDir != "" {
			if cs.ModelDir, err = filepath.Abs(c.ModelDir); err != nil {
				return nil, nil, err
			}
		}
		if cs.LogPath == "" {
			cs.LogPath = filepath.Join(dir, names[i], "output.log")
		}
		p, err := startProcess(c, &cs, spec.GPUs)
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: %w", names[i], err)
		}
		procs = append(procs, p)
		st.Containers = append(st.Containers, cs)
	}
	raw, err = json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := writeState(dir, raw); err != nil {
		return nil, nil, err
	}
	return newInstance(st, procs), raw, nil
}

// startProcess starts one container process and fills in cs.PID and
// cs.StartTime.
func startProcess(c sagehost.ContainerSpec, cs *containerState, gpus []string) (*proc, error) {
	if err := os.MkdirAll(filepath.Join(cs.WorkDir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	env := environ(c, cs.WorkDir, cs.ModelDir, cs.Port, gpus)
	logf, err := instfiles.OpenLog(cs.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy

	cmd := exec.Command(c.Image, append(append([]string(nil), c.Args...), "serve")...)
	cmd.Dir = cs.WorkDir
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // drop "fork/exec <path>": the image is named below
		}
		err = fmt.Errorf("cannot run image %q: %w", c.Image, err)
		fmt.Fprintf(logf, "sagehost: %v\n", err)
		return nil, err
	}
	cs.PID = cmd.Process.Pid
	// The child is not reaped before watchChild runs, so /proc has it even
	// if it has exited already.
	if _, t, err := procStat(cs.PID); err == nil {
		cs.StartTime = t
	}
	return &proc{name: cs.Name, pid: cs.PID, start: cs.StartTime, cmd: cmd, done: make(chan struct{})}, nil
}

// watchChild waits for a container process that sagehost started, kills what
// is left of its process group and reaps it.
func (b *Backend) watchChild(inst *instance, p *proc) {
	if canWaitUnreaped {
		waitExited(p.pid) // the pid stays reserved until Wait below
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	p.cmd.Wait()
	if !canWaitUnreaped {
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	es := exitStatus(p.cmd.ProcessState)
	b.log.Info("container exited", "instance", inst.st.ID, "container", p.name, "pid", p.pid,
		"code", es.ExitCode, "signal", es.Signal)
	inst.containerExited(p, es)
}

// watchAdopted polls an adopted container process until it is gone.
func (b *Backend) watchAdopted(inst *instance, p *proc) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for alive(p.pid, p.start) {
		<-t.C
	}
	// Members of the group left behind keep the group id reserved, so this
	// cannot hit an unrelated process group.
	syscall.Kill(-p.pid, syscall.SIGKILL)
	b.log.Info("adopted container exited", "instance", inst.st.ID, "container", p.name, "pid", p.pid)
	inst.containerExited(p, sagehost.ExitStatus{ExitCode: -1, Err: ErrExitStatusUnknown})
}

// exitStatus converts a process state: a process killed by a signal gets
// ExitCode 128+signal (as container runtimes report it) and Signal its name.
func exitStatus(ps *os.ProcessState) sagehost.ExitStatus {
	if ps == nil {
		return sagehost.ExitStatus{ExitCode: -1, Err: errors.New("process state unknown")}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return sagehost.ExitStatus{ExitCode: 128 + int(ws.Signal()), Signal: ws.Signal().String()}
	}
	return sagehost.ExitStatus{ExitCode: ps.ExitCode()}
}

// List returns every instance described in the state directory, whether
// this Backend tracks it or not, ordered by id. Unreadable state files are
// logged and skipped.
func (b *Backend) List(ctx context.Context) ([]*sagehost.InstanceHandle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(b.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("process backend: %w", err)
	}
	var hs []*sagehost.InstanceHandle
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, raw, err := readState(filepath.Join(b.cfg.StateDir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // being started, or not ours
		}
		if err != nil {
			b.log.Warn("skipping unreadable instance state", "err", err)
			continue
		}
		hs = append(hs, st.handle(raw))
	}
	return hs, nil // ReadDir sorts by name, which is the id
}

// Recover adopts an instance started by an earlier sagehost process, given
// its handle (from List, or persisted by the caller). It is a no-op for a
// tracked instance. When a container process is gone, or its pid now
// belongs to another process, it kills the instance's remaining processes
// and returns an error wrapping sagehost.ErrInstanceNotFound; the state
// stays until Destroy.
func (b *Backend) Recover(ctx context.Context, h *sagehost.InstanceHandle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := instfiles.CheckHandle(Name, h); err != nil {
		return err
	}
	dir := filepath.Join(b.cfg.StateDir, h.ID)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.insts[h.ID] != nil || b.starting[h.ID] {
		return nil
	}
	var st *state
	raw := []byte(h.State)
	var err error
	if len(raw) > 0 {
		st, err = decodeState(raw)
	} else if instfiles.ValidID(h.ID) {
		st, raw, err = readState(dir)
	} else {
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("process backend: instance %s: %w", h.ID, sagehost.ErrInstanceNotFound)
	}
	if err != nil {
		return fmt.Errorf("process backend: recover %s: %w", h.ID, err)
	}
	if st.ID != h.ID {
		return fmt.Errorf("process backend: recover %s: state is of instance %s", h.ID, st.ID)
	}

	var gone *containerState
	for i, c := range st.Containers {
		if !alive(c.PID, c.StartTime) {
			gone = &st.Containers[i]
			break
		}
	}
	if gone != nil {
		for _, c := range st.Containers {
			if alive(c.PID, c.StartTime) {
				signalGroup(c.PID, syscall.SIGKILL)
			}
		}
		return fmt.Errorf("process backend: instance %s: container %s (pid %d) is gone: %w",
			h.ID, gone.Name, gone.PID, sagehost.ErrInstanceNotFound)
	}

	var procs []*proc
	var ports []int
	for _, c := range st.Containers {
		procs = append(procs, &proc{name: c.Name, pid: c.PID, start: c.StartTime, done: make(chan struct{})})
		ports = append(ports, c.Port)
	}
	inst := newInstance(st, procs)
	if _, err := os.Stat(filepath.Join(dir, stateFileName)); errors.Is(err, fs.ErrNotExist) && instfiles.ValidID(st.ID) {
		// Keep it listed: the caller held the handle, the file was lost.
		if err := os.MkdirAll(dir, 0o700); err == nil {
			writeState(dir, raw)
		}
	}
	b.insts[h.ID] = inst
	b.reservePorts(h.ID, ports)
	for _, p := range procs {
		go b.watchAdopted(inst, p)
		b.log.Info("container adopted", "instance", h.ID, "container", p.name, "pid", p.pid)
	}
	return nil
}

func (b *Backend) get(id string) (*instance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	inst := b.insts[id]
	if inst == nil {
		return nil, fmt.Errorf("process backend: instance %s: %w", id, sagehost.ErrInstanceNotFound)
	}
	return inst, nil
}

// Wait blocks until a container of the instance exits, or ctx ends. For an
// instance that has exited already it returns at once.
func (b *Backend) Wait(ctx context.Context, id string) (sagehost.ExitStatus, error) {
	inst, err := b.get(id)
	if err != nil {
		return sagehost.ExitStatus{}, err
	}
	return inst.exits.Wait(ctx)
}

// Stop sends SIGTERM to the process group of each container, SIGKILL to
// those still running after timeout, and returns once every container
// process has exited (or ctx ends).
func (b *Backend) Stop(ctx context.Context, id string, timeout time.Duration) error {
	inst, err := b.get(id)
	if err != nil {
		return err
	}
	inst.signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-inst.exits.All():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	b.log.Info("instance did not stop in time, killing it", "instance", id, "timeout", timeout)
	inst.signal(syscall.SIGKILL)
	select {
	case <-inst.exits.All():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Destroy kills the instance's processes (SIGKILL to each process group),
// waits for them to exit and removes StateDir/<id>. It also works for an
// instance that List returns but that this Backend does not track, which is
// how orphans of an earlier sagehost are reaped. Log files at a
// ContainerSpec.LogPath stay.
func (b *Backend) Destroy(ctx context.Context, id string) error {
	b.mu.Lock()
	inst := b.insts[id]
	b.mu.Unlock()
	dir := filepath.Join(b.cfg.StateDir, id)

	if inst != nil {
		inst.signal(syscall.SIGKILL)
		select {
		case <-inst.exits.All():
		case <-ctx.Done():
			return ctx.Err()
		}
		// Remove the state first, so that the id is free for a new Start
		// once it is no longer tracked.
		if err := instfiles.RemoveAll(dir); err != nil {
			return fmt.Errorf("process backend: destroy %s: %w", id, err)
		}
		b.mu.Lock()
		if b.insts[id] == inst {
			delete(b.insts, id)
			b.releasePorts(id)
		}
		b.mu.Unlock()
		b.log.Info("instance destroyed", "instance", id)
		return nil
	}

	if !instfiles.ValidID(id) {
		return fmt.Errorf("process backend: instance %s: %w", id, sagehost.ErrInstanceNotFound)
	}
	st, _, err := readState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("process backend: instance %s: %w", id, sagehost.ErrInstanceNotFound)
	}
	if err != nil {
		// Without pids nothing can be killed safely; remove the state.
		b.log.Warn("removing instance with unreadable state", "instance", id, "err", err)
	} else {
		if err := killUntracked(ctx, st); err != nil {
			return err
		}
	}
	if err := instfiles.RemoveAll(dir); err != nil {
		return fmt.Errorf("process backend: destroy %s: %w", id, err)
	}
	b.log.Info("untracked instance destroyed", "instance", id)
	return nil
}

// killUntracked kills the processes of an instance that no Backend here
// tracks and waits until they are gone.
func killUntracked(ctx context.Context, st *state) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		running := false
		for _, c := range st.Containers {
			if alive(c.PID, c.StartTime) {
				signalGroup(c.PID, syscall.SIGKILL)
				running = true
			}
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
