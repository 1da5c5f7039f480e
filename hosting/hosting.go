// Package hosting is the reconciler: it drives each endpoint's actual state
// (model data fetched, instances started through a sagehost.Backend,
// passing /ping, published to the invoke path) toward the desired state that
// the control plane stores, and records what it observes (status,
// FailureReason, current instance counts and weights).
//
// Each endpoint has one controller goroutine, so an endpoint is never
// reconciled twice at once; slow work (fetching model data, starting and
// stopping instances, health checks) runs in goroutines that report back to
// the controller as events. What to do next is decided by computePlan, a
// pure function of the stored endpoint and the observed fleet.
package hosting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/capture"
	"github.com/sagehost/sagehost/gpu"
	"github.com/sagehost/sagehost/invoke"
	"github.com/sagehost/sagehost/metrics"
)

// ModelData makes a container's model data available locally.
type ModelData interface {
	// Fetch returns the local directory holding the container's model data.
	Fetch(ctx context.Context, c sagehost.ContainerDefinition) (string, error)
	// FetchTarget fetches a multi-model endpoint's TargetModel under its
	// prefix, returning its directory and size in bytes.
	FetchTarget(ctx context.Context, prefix, target string) (string, int64, error)
	// Root is the host directory every fetched directory is under.
	Root() string
	// FetchBytes returns the content of one object (an explainer's
	// ShapBaselineUri).
	FetchBytes(ctx context.Context, uri string) ([]byte, error)
}

// Defaults of the container contract.
const (
	// DefaultStartupTimeout is how long a new container has to pass /ping
	// (SageMaker's default window is 8 minutes).
	DefaultStartupTimeout = 8 * time.Minute
	// DefaultStopTimeout is the grace between SIGTERM and SIGKILL.
	DefaultStopTimeout = 30 * time.Second
	// DefaultHealthInterval is how often a healthy instance is pinged.
	DefaultHealthInterval = 5 * time.Second
	// DefaultFetchTimeout bounds fetching one container's model data when
	// the variant does not set ModelDataDownloadTimeoutInSeconds.
	DefaultFetchTimeout = time.Hour
	// pingTimeout is SageMaker's per-request timeout on /ping.
	pingTimeout = 2 * time.Second
	// unhealthyAfter is how many failed pings in a row take an instance
	// out of routing.
	unhealthyAfter = 3
)

// Config configures a Manager.
type Config struct {
	Store sagehost.Store
	// Backends run instances; ChooseBackend picks one by the model's
	// first container image (nil: always the first backend).
	Backends      []sagehost.Backend
	ChooseBackend func(image string) string
	ModelData     ModelData
	Router        *invoke.Router
	// Metrics records instance health, restarts and setup times, and the
	// routing tables carry each variant's invocation series (nil: none).
	Metrics *metrics.Metrics
	// GPUs hands out the host's GPUs to instances of GPU types (nil: no
	// accounting).
	GPUs *gpu.Allocator
	// Capture writes the data capture records of endpoints that capture
	// (nil: capture is off everywhere).
	Capture *capture.Writer
	// LogDir is the root of the per-instance logs.
	LogDir string
	Logger *slog.Logger

	StartupTimeout time.Duration
	StopTimeout    time.Duration
	HealthInterval time.Duration
	// ResolveImage maps a model's Image to the executable and arguments
	// that run it (built-in model servers); nil runs every Image as is.
	ResolveImage func(image string) (exe string, args []string)
	// MultiModelBudget bounds the sizes of the models loaded in one
	// instance of a multi-model endpoint; 0 means 90 % of the instance
	// type's memory.
	MultiModelBudget int64
	// OnInService is called when an endpoint becomes InService.
	OnInService func(key sagehost.EndpointKey)
}

// Manager runs one controller per endpoint.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	ctls  map[string]*controller
	close bool
}

// New returns a Manager; call Start to recover endpoints and begin.
func New(cfg Config) *Manager {
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = DefaultStartupTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "hosting"), ctx: ctx, cancel: cancel, ctls: map[string]*controller{}}
}

func ctlKey(account, region, name string) string {
	return account + "/" + region + "/" + strings.ToLower(name)
}

// Start recovers after a restart: it finds the instances an earlier sagehost
// process left running, hands each to its endpoint's controller to adopt,
// destroys those that belong to no endpoint, and starts a controller for
// every stored endpoint, so that endpoints come back without any call.
func (m *Manager) Start(ctx context.Context) error {
	recs, err := m.cfg.Store.ListAll(ctx, sagehost.KindEndpoint)
	if err != nil {
		return fmt.Errorf("list endpoints: %w", err)
	}
	byEndpoint := map[string][]*sagehost.InstanceHandle{}
	for _, b := range m.cfg.Backends {
		handles, err := b.List(ctx)
		if err != nil {
			// An engine that is down now cannot stop the others; its
			// endpoints start new instances where they can.
			m.log.Warn("cannot list instances", "backend", b.Name(), "err", err)
			continue
		}
		for _, h := range handles {
			h.Backend = b.Name()
			k := ctlKey(h.Labels[sagehost.LabelAccount], h.Labels[sagehost.LabelRegion], h.Labels[sagehost.LabelEndpoint])
			byEndpoint[k] = append(byEndpoint[k], h)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range recs {
		k := ctlKey(rec.Account, rec.Region, rec.Name)
		m.spawnLocked(sagehost.EndpointKey{Account: rec.Account, Region: rec.Region, Name: rec.Name}, byEndpoint[k])
		delete(byEndpoint, k)
	}
	for _, hs := range byEndpoint {
		for _, h := range hs {
			m.log.Info("removing instance of an endpoint that no longer exists", "instance", h.ID, "endpoint", h.Labels[sagehost.LabelEndpoint])
			if err := m.backend(h.Backend).Destroy(ctx, h.ID); err != nil && !errors.Is(err, sagehost.ErrInstanceNotFound) {
				m.log.Warn("destroy orphaned instance", "instance", h.ID, "err", err)
			}
		}
	}
	return nil
}

// backend returns the backend of a name (the first one for "").
func (m *Manager) backend(name string) sagehost.Backend {
	for _, b := range m.cfg.Backends {
		if b.Name() == name {
			return b
		}
	}
	return m.cfg.Backends[0]
}

// backendFor returns the backend that runs an image.
func (m *Manager) backendFor(image string) sagehost.Backend {
	if m.cfg.ChooseBackend == nil {
		return m.cfg.Backends[0]
	}
	return m.backend(m.cfg.ChooseBackend(image))
}

// EndpointChanged tells the endpoint's controller to look again (control
// plane notifier). It never blocks.
func (m *Manager) EndpointChanged(key sagehost.EndpointKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.close {
		return
	}
	if c := m.ctls[ctlKey(key.Account, key.Region, key.Name)]; c != nil {
		c.wake()
		return
	}
	m.spawnLocked(key, nil)
}

func (m *Manager) spawnLocked(key sagehost.EndpointKey, adopt []*sagehost.InstanceHandle) {
	c := newController(m, key)
	m.ctls[ctlKey(key.Account, key.Region, key.Name)] = c
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		c.run(m.ctx, adopt)
	}()
}

// finished removes a controller whose endpoint is gone. If the endpoint was
// created again meanwhile, a new controller takes over.
func (m *Manager) finished(c *controller) {
	m.mu.Lock()
	k := ctlKey(c.key.Account, c.key.Region, c.key.Name)
	if m.ctls[k] == c {
		delete(m.ctls, k)
	}
	closing := m.close
	m.mu.Unlock()
	if closing {
		return
	}
	if _, err := m.cfg.Store.Get(context.Background(), sagehost.KindEndpoint, c.key.Account, c.key.Region, c.key.Name); err == nil {
		m.EndpointChanged(c.key)
	}
}

// Close stops every controller, and every instance (SIGTERM, then SIGKILL
// after the stop timeout), waiting at most until ctx ends.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.close = true
	m.mu.Unlock()
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop endpoints: %w", ctx.Err())
	}
}
