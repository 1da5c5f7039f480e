package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/internal/instfiles"
)

// instance is a tracked instance.
type instance struct {
	st     *state
	ctx    context.Context // ends when the instance is destroyed or the backend closed
	cancel context.CancelFunc
	exits  *instfiles.ExitLatch
	logs   sync.WaitGroup // log followers
}

func newInstance(parent context.Context, st *state) *instance {
	ctx, cancel := context.WithCancel(parent)
	return &instance{st: st, ctx: ctx, cancel: cancel, exits: instfiles.NewExitLatch(len(st.Containers))}
}

// watch starts a waiter and a log follower for every container.
func (b *Backend) watch(inst *instance) {
	for i := range inst.st.Containers {
		cs := inst.st.Containers[i]
		b.wg.Add(2)
		inst.logs.Add(1)
		go func() {
			defer b.wg.Done()
			b.waitContainer(inst, cs)
		}()
		go func() {
			defer b.wg.Done()
			defer inst.logs.Done()
			b.followLogs(inst, cs)
		}()
	}
}

// waitContainer waits for one container to stop and records how it ended.
// It keeps waiting across hiccups of the engine.
func (b *Backend) waitContainer(inst *instance, cs containerState) {
	backoff := 250 * time.Millisecond
	for {
		okc, errc := b.cli.ContainerWait(inst.ctx, cs.ContainerID, container.WaitConditionNotRunning)
		var err error
		select {
		case <-okc:
			es := b.exitStatus(inst, cs)
			b.log.Info("container exited", "instance", inst.st.ID, "container", cs.Name,
				"code", es.ExitCode, "signal", es.Signal)
			inst.exits.Exited(es)
			return
		case err = <-errc:
		}
		if inst.ctx.Err() != nil {
			// Destroyed, or the backend closed: no one is waiting anymore,
			// but release any waiter left.
			inst.exits.Exited(sagehost.ExitStatus{ExitCode: -1, Err: fmt.Errorf("container %s: no longer watched: %w", cs.Name, inst.ctx.Err())})
			return
		}
		if client.IsErrNotFound(err) {
			inst.exits.Exited(sagehost.ExitStatus{ExitCode: -1,
				Err: fmt.Errorf("container %s (%s) was removed behind sagehost's back", cs.Name, shortID(cs.ContainerID))})
			return
		}
		b.log.Warn("waiting for a container failed; retrying", "instance", inst.st.ID, "container", cs.Name, "err", err)
		select {
		case <-inst.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// exitStatus inspects an exited container.
func (b *Backend) exitStatus(inst *instance, cs containerState) sagehost.ExitStatus {
	ctx, cancel := context.WithTimeout(inst.ctx, 30*time.Second)
	defer cancel()
	info, err := b.cli.ContainerInspect(ctx, cs.ContainerID)
	if err != nil || info.State == nil {
		if err == nil {
			err = errors.New("no state")
		}
		return sagehost.ExitStatus{ExitCode: -1, Err: fmt.Errorf("container %s exited; inspecting it: %w", cs.Name, err)}
	}
	es := exitStatusOf(info.State.ExitCode)
	if info.State.OOMKilled {
		b.log.Warn("container killed for exceeding its instance type's memory", "instance", inst.st.ID,
			"container", cs.Name, "instance_type", inst.st.InstanceType)
		instfiles.AppendLine(cs.LogPath, fmt.Sprintf("sagehost: container %s was killed: out of memory (the memory of instance type %s)", cs.Name, inst.st.InstanceType))
		es.Signal = syscall.SIGKILL.String()
	}
	return es
}

// exitStatusOf turns a container's exit code into an ExitStatus: a code of
// 128+n is also reported as signal n, the shell's convention that engines
// follow for a process killed by a signal.
func exitStatusOf(code int) sagehost.ExitStatus {
	es := sagehost.ExitStatus{ExitCode: code}
	if code > 128 && code <= 128+64 {
		es.Signal = syscall.Signal(code - 128).String()
	}
	return es
}

// containersOf lists the containers of instance id that carry this
// sagehost's labels, running or not.
func (b *Backend) containersOf(ctx context.Context, id string) ([]container.Summary, error) {
	return b.ours(ctx, filters.Arg("label", labelInstance+"="+id))
}

// ours lists this sagehost's containers, running or not, with more filters.
func (b *Backend) ours(ctx context.Context, more ...filters.KeyValuePair) ([]container.Summary, error) {
	args := filters.NewArgs(
		filters.Arg("label", LabelBackend+"="+Name),
		filters.Arg("label", LabelDataDir+"="+b.dataDir),
	)
	for _, kv := range more {
		args.Add(kv.Key, kv.Value)
	}
	list, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, b.unreachable(err)
	}
	// Check the labels again: never act on a container that is not ours,
	// whatever the engine's filtering does.
	kept := list[:0]
	for _, c := range list {
		if c.Labels[LabelBackend] == Name && c.Labels[LabelDataDir] == b.dataDir && c.Labels[labelInstance] != "" {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// stateOf decodes an instance's state from the labels of its containers
// and fills in their ids.
func stateOf(ctrs []container.Summary) (*state, error) {
	if len(ctrs) == 0 {
		return nil, errors.New("no containers")
	}
	st, err := decodeState([]byte(ctrs[0].Labels[labelState]))
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		i, err := strconv.Atoi(c.Labels[labelIndex])
		if err != nil || i < 0 || i >= len(st.Containers) {
			continue
		}
		st.Containers[i].ContainerID = c.ID
	}
	return st, nil
}

// List returns every instance that has containers of this sagehost on the
// engine, whether this Backend tracks it or not, running or exited, ordered
// by id. Instances whose Start is under way here are left out.
func (b *Backend) List(ctx context.Context) ([]*sagehost.InstanceHandle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctrs, err := b.ours(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string][]container.Summary{}
	for _, c := range ctrs {
		id := c.Labels[labelInstance]
		byID[id] = append(byID[id], c)
	}
	b.mu.Lock()
	starting := make(map[string]bool, len(b.starting))
	for id := range b.starting {
		starting[id] = true
	}
	b.mu.Unlock()
	var hs []*sagehost.InstanceHandle
	for id, cs := range byID {
		if starting[id] {
			continue
		}
		st, err := stateOf(cs)
		if err != nil || st.ID != id {
			// Still ours: list it bare, so that Destroy can reap it.
			b.log.Warn("instance with an unreadable description", "instance", id, "err", err)
			hs = append(hs, &sagehost.InstanceHandle{ID: id, Backend: Name, Version: stateVersion})
			continue
		}
		hs = append(hs, st.handle())
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].ID < hs[j].ID })
	return hs, nil
}

// Recover adopts an instance started by an earlier sagehost, found on the
// engine by its id. It is a no-op for a tracked instance. When a container
// of the instance is missing or no longer runs, it kills the others and
// returns an error wrapping sagehost.ErrInstanceNotFound; the containers
// stay (and are listed) until Destroy.
func (b *Backend) Recover(ctx context.Context, h *sagehost.InstanceHandle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := instfiles.CheckHandle(Name, h); err != nil {
		return err
	}
	b.mu.Lock()
	tracked := b.insts[h.ID] != nil || b.starting[h.ID]
	b.mu.Unlock()
	if tracked {
		return nil
	}
	ctrs, err := b.containersOf(ctx, h.ID)
	if err != nil {
		return fmt.Errorf("docker backend: recover %s: %w", h.ID, err)
	}
	if len(ctrs) == 0 {
		return fmt.Errorf("docker backend: instance %s: %w", h.ID, sagehost.ErrInstanceNotFound)
	}
	st, err := stateOf(ctrs)
	if err != nil {
		return fmt.Errorf("docker backend: recover %s: %w", h.ID, err)
	}
	running := map[string]bool{}
	for _, c := range ctrs {
		running[c.ID] = c.State == container.StateRunning
	}
	var gone *containerState
	for i, cs := range st.Containers {
		if cs.ContainerID == "" || !running[cs.ContainerID] {
			gone = &st.Containers[i]
			break
		}
	}
	if gone != nil {
		for _, c := range ctrs {
			if running[c.ID] {
				if err := b.cli.ContainerKill(ctx, c.ID, "KILL"); err != nil && !client.IsErrNotFound(err) {
					b.log.Warn("killing the rest of a lost instance", "instance", h.ID, "err", err)
				}
			}
		}
		return fmt.Errorf("docker backend: instance %s: container %s is gone: %w", h.ID, gone.Name, sagehost.ErrInstanceNotFound)
	}

	b.mu.Lock()
	if b.insts[h.ID] != nil || b.starting[h.ID] {
		b.mu.Unlock()
		return nil // adopted meanwhile
	}
	inst := newInstance(b.ctx, st)
	b.insts[h.ID] = inst
	b.mu.Unlock()
	b.watch(inst)
	for _, cs := range st.Containers {
		b.log.Info("container adopted", "instance", h.ID, "container", cs.Name, "id", shortID(cs.ContainerID),
			"addr", "127.0.0.1:"+strconv.Itoa(cs.HostPort))
	}
	return nil
}

func (b *Backend) get(id string) (*instance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	inst := b.insts[id]
	if inst == nil {
		return nil, fmt.Errorf("docker backend: instance %s: %w", id, sagehost.ErrInstanceNotFound)
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

// Stop stops every container of the instance through the engine (the
// image's stop signal, SIGTERM unless it names another, then SIGKILL after
// timeout, rounded up to whole seconds) and returns once all have exited
// (or ctx ends).
func (b *Backend) Stop(ctx context.Context, id string, timeout time.Duration) error {
	inst, err := b.get(id)
	if err != nil {
		return err
	}
	secs := int(math.Ceil(timeout.Seconds()))
	if secs < 0 {
		secs = 0
	}
	errs := make([]error, len(inst.st.Containers))
	var wg sync.WaitGroup
	for i, cs := range inst.st.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.cli.ContainerStop(ctx, cs.ContainerID, container.StopOptions{Timeout: &secs})
			if err != nil && !client.IsErrNotFound(err) {
				errs[i] = fmt.Errorf("container %s: %w", cs.Name, engineErr(err))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// A container that is not running cannot be stopped; what matters
		// is whether they all end.
		b.log.Warn("stopping an instance", "instance", id, "err", err)
	}
	select {
	case <-inst.exits.All():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Destroy kills and force-removes the instance's containers and removes
// StateDir/<id>. It also works for an instance that List returns but that
// this Backend does not track, which is how orphans of an earlier sagehost
// are reaped. Log files at a ContainerSpec.LogPath stay.
func (b *Backend) Destroy(ctx context.Context, id string) error {
	b.mu.Lock()
	inst := b.insts[id]
	b.mu.Unlock()

	ctrs, err := b.containersOf(ctx, id)
	if err != nil {
		return fmt.Errorf("docker backend: destroy %s: %w", id, err)
	}
	if inst == nil && len(ctrs) == 0 {
		if instfiles.ValidID(id) {
			instfiles.RemoveAll(b.instanceDir(id))
		}
		return fmt.Errorf("docker backend: instance %s: %w", id, sagehost.ErrInstanceNotFound)
	}

	// Kill first, so that the log followers see the end of the output
	// before the containers go.
	for _, c := range ctrs {
		if c.State == container.StateRunning || c.State == container.StatePaused || c.State == container.StateRestarting {
			if err := b.cli.ContainerKill(ctx, c.ID, "KILL"); err != nil && !client.IsErrNotFound(err) {
				b.log.Debug("kill before remove", "instance", id, "err", err)
			}
		}
	}
	if inst != nil {
		select {
		case <-inst.exits.All():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			b.log.Warn("containers did not report their exit; removing them anyway", "instance", id)
		}
		waitTimeout(&inst.logs, 5*time.Second)
	}
	var errs []error
	for _, c := range ctrs {
		err := b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(c.ID), engineErr(err)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("docker backend: destroy %s: %w", id, err)
	}
	if inst != nil {
		inst.cancel()
		b.mu.Lock()
		if b.insts[id] == inst {
			delete(b.insts, id)
		}
		b.mu.Unlock()
	}
	if err := instfiles.RemoveAll(b.instanceDir(id)); err != nil {
		return fmt.Errorf("docker backend: destroy %s: %w", id, err)
	}
	if inst != nil {
		b.log.Info("instance destroyed", "instance", id)
	} else {
		b.log.Info("untracked instance destroyed", "instance", id)
	}
	return nil
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
