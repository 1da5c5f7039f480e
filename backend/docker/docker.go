// Package docker is sagehost's container backend: each instance runs as
// real containers of the model's image on Docker Engine or on Podman's
// Docker-compatible API service, started the way SageMaker starts them.
//
// # Engine
//
// The backend talks to the Docker Engine API through the official client,
// negotiating the API version, at Config.Host, else DOCKER_HOST (with
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else the first of
// /var/run/docker.sock, $XDG_RUNTIME_DIR/podman/podman.sock and
// /run/podman/podman.sock that exists. New never needs the engine; Start
// says clearly when it cannot be reached, and Available checks it. Podman
// is recognised by its version's "Podman Engine" component; the only
// difference it makes is how GPUs are requested (below).
//
// # Containers
//
// An instance is one container per ContainerSpec, created from
// ContainerSpec.Image (an image reference; pulled when not present, with
// the credentials of ~/.docker/config.json or $DOCKER_CONFIG: "auths"
// entries and credential helpers) with the command ["serve"] (the image's
// ENTRYPOINT still runs, as on SageMaker), the model's Environment, the
// model data directory bind-mounted read-only at /opt/ml/model, and
// ContainerHostname as the container's hostname. The platform's variables
// are added and win over the model's: SAGEMAKER_BIND_TO_PORT (8080 for the
// first container, 8090, 8100, ... for the others), SAGEMAKER_SAFE_PORT_RANGE
// (23000-23999 for the first container, as observed on SageMaker, then
// 24000-24999, ...) and, with model data, SM_MODEL_DIR=/opt/ml/model.
// Nothing of sagehost's own environment reaches a container.
//
// The instance type sets the limits: NanoCPUs = its vCPUs (at most the
// engine's CPU count, which Docker insists on) and Memory = its memory, from
// the instancetype table; an unknown type fails Start, an empty one (a
// serverless variant) runs without limits. The instance's GPUs
// (InstanceSpec.GPUs, host device indexes) are requested from Docker as an
// NVIDIA device request (the NVIDIA Container Toolkit's "nvidia" driver) and
// from Podman as CDI devices "nvidia.com/gpu=<index>" (which Podman's
// Docker-compatible API honours from Podman 5.4 on; Start refuses GPUs on an
// older Podman rather than run without them).
//
// # Networking
//
// Each container publishes its port on 127.0.0.1 only, on a host port that
// the backend picks in [PortMin, PortMax] (30000-32767 by default, below
// Linux's ephemeral range) and records in the container's labels;
// InstanceHandle.Addrs holds "127.0.0.1:<host port>". Published loopback
// ports work the same on Docker and on rootful and rootless Podman, whether
// sagehost runs on the host or not, while container networks differ between
// engines and are not reachable from the host at all on Docker Desktop or
// rootless Podman. The port is chosen by sagehost rather than by the engine
// so that it is known before the container starts and stays known after it
// exits (an engine forgets the port of a stopped container). A port taken
// meanwhile by someone else makes the start fail; the backend then retries
// with other ports.
//
// The containers of one instance do not share a network namespace: Docker
// refuses a hostname for a container that joins another's network, and
// ContainerHostname must be the hostname. sagehost talks to every container
// itself, so containers need not reach each other; their ports and safe
// ranges are still distinct, as on one SageMaker instance.
//
// # Labels, restarts and orphans
//
// Every container carries the instance's labels (InstanceSpec.Labels,
// returned unchanged by List), "sagehost.backend=docker",
// "sagehost.datadir=<hash of StateDir>", and the backend's own
// "sagehost.docker.*" labels (instance id, container index and the
// instance's description), so List finds exactly this sagehost's containers
// after a restart, and a Backend never lists, stops or removes a container
// without them. List returns an instance until Destroy removes its
// containers, also after they exited; Destroy works for any instance List
// returns, tracked or not. Recover adopts an instance whose containers all
// still run.
//
// # Logs
//
// Each container's stdout and stderr are streamed from the engine (follow,
// with timestamps) and appended to ContainerSpec.LogPath, so an instance's
// log is the same as on the process backend. The timestamp of the last line
// written (and how many lines carried it) is kept in
// StateDir/<instance>/<container>.logpos, so a new sagehost resumes where
// the old one stopped, without repeating lines (the count matters: Podman
// gives timestamps to the second, and engines replay a "since" timestamp
// inclusively). A line longer than the engine's message size (16 KiB on
// Docker) comes in pieces, which are joined again.
//
// # Exits
//
// Wait returns when any container of the instance exits, with its exit
// code; a code of 128+n (n from 1 to 64) is reported as signal n as well.
// Stop is the engine's stop (the image's stop signal, SIGTERM by default,
// then SIGKILL after the timeout, rounded up to whole seconds). Destroy
// kills and force-removes the containers and removes StateDir/<instance>;
// the log files at ContainerSpec.LogPath stay (a container without a
// LogPath logs to StateDir/<instance>/<container>.log, which goes with it).
package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/docker/client"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/instancetype"
)

// Name is the backend's name, in InstanceHandle.Backend and in the
// sagehost.backend label.
const Name = "docker"

// Default range of the host ports that containers publish on 127.0.0.1.
const (
	DefaultPortMin = 30000
	DefaultPortMax = 32767
)

// Config configures the docker backend.
type Config struct {
	// Host is the engine's address (e.g. "unix:///run/podman/podman.sock");
	// "" means DOCKER_HOST, else the first default socket that exists.
	Host string
	// StateDir holds what the backend keeps on the host: the log positions
	// of each instance's containers, e.g. <data-dir>/docker. Its absolute
	// path also tells this sagehost's containers apart from those of others
	// on the same engine. Required.
	StateDir string
	// PortMin and PortMax bound the host ports published on 127.0.0.1, one
	// per container; both zero means 30000-32767.
	PortMin, PortMax int
	// Logger logs starts, exits, adoptions and engine trouble (nil:
	// discarded).
	Logger *slog.Logger
	// InstanceTypes resolves an instance type to its resources (nil:
	// instancetype.Lookup).
	InstanceTypes func(string) (instancetype.Type, bool)
}

// Backend runs instances as containers. It is safe for concurrent use.
type Backend struct {
	cfg     Config
	log     *slog.Logger
	cli     *client.Client
	host    string
	dataDir string // the sagehost.datadir label's value

	ctx    context.Context // ends with Close: followers and waiters
	cancel context.CancelFunc
	wg     sync.WaitGroup

	engMu sync.Mutex
	eng   *engineInfo // nil until the engine has answered

	mu       sync.Mutex
	insts    map[string]*instance // tracked instances
	starting map[string]bool      // ids whose Start is under way
	reserved map[int]string       // host ports of starts under way -> id
	nextPort int                  // where the next port search starts
}

var _ sagehost.Backend = (*Backend)(nil)

// New returns a docker backend keeping its state under cfg.StateDir, which
// it creates. It does not contact the engine.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return nil, errors.New("docker backend: no state directory")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("docker backend: state directory: %w", err)
	}
	cfg.StateDir = filepath.Clean(dir)
	if cfg.PortMin == 0 && cfg.PortMax == 0 {
		cfg.PortMin, cfg.PortMax = DefaultPortMin, DefaultPortMax
	}
	if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("docker backend: bad port range %d-%d", cfg.PortMin, cfg.PortMax)
	}
	if cfg.InstanceTypes == nil {
		cfg.InstanceTypes = instancetype.Lookup
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("docker backend: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	host := cfg.Host
	if host == "" && os.Getenv(client.EnvOverrideHost) == "" {
		host = defaultSocket()
	}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker backend: engine client: %w", err)
	}
	sum := sha256.Sum256([]byte(cfg.StateDir))
	bctx, cancel := context.WithCancel(context.Background())
	return &Backend{
		cfg:      cfg,
		log:      log.With("backend", Name),
		cli:      cli,
		host:     cli.DaemonHost(),
		dataDir:  hex.EncodeToString(sum[:])[:16],
		ctx:      bctx,
		cancel:   cancel,
		insts:    make(map[string]*instance),
		starting: make(map[string]bool),
		reserved: make(map[int]string),
	}, nil
}

// defaultSocket returns the first engine socket that exists, or "" (the
// client's default, /var/run/docker.sock).
func defaultSocket() string {
	candidates := []string{"/var/run/docker.sock"}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "podman", "podman.sock"))
	}
	candidates = append(candidates, "/run/podman/podman.sock")
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return "unix://" + c
		}
	}
	return ""
}

// Name returns "docker".
func (b *Backend) Name() string { return Name }

// Host returns the engine's address.
func (b *Backend) Host() string { return b.host }

// Persistent reports that containers keep running without sagehost: on a
// clean shutdown sagehost leaves them serving and adopts them when it
// starts again.
func (b *Backend) Persistent() bool { return true }

// Close stops following logs and watching containers. It leaves the
// containers running (they are adopted by the next sagehost, like after a
// crash) and closes the engine client. The Backend must not be used after.
func (b *Backend) Close() error {
	b.cancel()
	b.wg.Wait()
	return b.cli.Close()
}

// Available checks that the engine answers.
func (b *Backend) Available(ctx context.Context) error {
	if _, err := b.cli.Ping(ctx); err != nil {
		return b.unreachable(err)
	}
	return nil
}

// unreachable wraps an error of the engine with the engine's address and,
// when the engine could not be reached at all, what to do about it.
func (b *Backend) unreachable(err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("docker backend: cannot reach the container engine at %s (start Docker, or Podman's service with `podman system service`, or set DOCKER_HOST): %w", b.host, err)
	}
	return fmt.Errorf("docker backend: container engine at %s: %w", b.host, err)
}

// engineInfo is what the backend needs to know about the engine.
type engineInfo struct {
	podman  bool
	version string // the engine's own version (Podman's for Podman)
	ncpu    int    // 0 when unknown
}

// engine returns what the engine is, asking it once.
func (b *Backend) engine(ctx context.Context) (*engineInfo, error) {
	b.engMu.Lock()
	defer b.engMu.Unlock()
	if b.eng != nil {
		return b.eng, nil
	}
	v, err := b.cli.ServerVersion(ctx)
	if err != nil {
		return nil, b.unreachable(err)
	}
	e := &engineInfo{version: v.Version}
	for _, c := range v.Components {
		if strings.Contains(strings.ToLower(c.Name), "podman") {
			e.podman = true
			e.version = c.Version
		}
	}
	if strings.Contains(strings.ToLower(v.Platform.Name), "podman") {
		e.podman = true
	}
	if info, err := b.cli.Info(ctx); err == nil {
		e.ncpu = info.NCPU
	} else {
		b.log.Warn("engine info unavailable; CPU limits are not capped at the host's CPUs", "err", err)
	}
	b.eng = e
	kind := "docker"
	if e.podman {
		kind = "podman"
	}
	b.log.Info("container engine", "host", b.host, "engine", kind, "version", e.version,
		"api", b.cli.ClientVersion(), "cpus", e.ncpu)
	return e, nil
}

// versionAtLeast says whether a version like "5.4.1" or "v28.0.0-rc1" is
// at least major.minor.
func versionAtLeast(v string, major, minor int) bool {
	v = strings.TrimPrefix(v, "v")
	parts := strings.SplitN(v, ".", 3)
	num := func(i int) int {
		if i >= len(parts) {
			return 0
		}
		s := parts[i]
		if j := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			s = s[:j]
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	if num(0) != major {
		return num(0) > major
	}
	return num(1) >= minor
}
