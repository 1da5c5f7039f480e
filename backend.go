package sagehost

import (
	"context"
	"encoding/json"
	"time"
)

// Labels that sagehost puts on every instance it starts, so that after a
// restart it can tell its own instances apart and match them to endpoints.
const (
	LabelAccount    = "sagehost.account"
	LabelRegion     = "sagehost.region"
	LabelEndpoint   = "sagehost.endpoint"
	LabelVariant    = "sagehost.variant"
	LabelDeployment = "sagehost.deployment"
	LabelInstance   = "sagehost.instance"
	// LabelComponent names the inference component an instance is a copy
	// of, and LabelHost the (virtual) host instance it is placed on.
	LabelComponent = "sagehost.component"
	LabelHost      = "sagehost.host"
	// LabelGPUs lists the GPU devices of an instance, comma-separated, so
	// that they stay reserved when the instance is adopted after a restart.
	LabelGPUs = "sagehost.gpus"
)

// InstanceSpec describes one instance of a production variant: the
// containers of one model, started together.
type InstanceSpec struct {
	// ID is the instance id (like "i-0a1b2c3d4e5f60718"), unique within a
	// sagehost data directory.
	ID string
	// Labels identify the endpoint, variant and deployment the instance
	// belongs to; List returns them unchanged.
	Labels map[string]string
	// InstanceType is the ml.* instance type of the variant.
	InstanceType string
	// GPUs are the host GPU devices (e.g. "0", "1") assigned to this
	// instance alone; empty for an instance type without GPUs.
	GPUs []string
	// Containers run side by side in the instance.
	Containers []ContainerSpec
}

// ContainerSpec is one container of an instance.
type ContainerSpec struct {
	// Hostname is the container's ContainerHostname ("" for a lone primary
	// container).
	Hostname string
	// Image is the model's container image: an absolute path of an executable
	// for the process backend, an image reference for the container backend.
	Image string
	// Args come before the argument "serve" in the container's command, on
	// every backend. sagehost sets them to select a built-in model server of
	// its own binary (Image is then sagehost's own executable). Empty for
	// ordinary images.
	Args []string
	// Environment is the model's Environment for this container.
	Environment map[string]string
	// ModelDir is the local directory holding the extracted model data, seen
	// by the container as /opt/ml/model (read-only); "" when there is none.
	ModelDir string
	// ModelsDir is, for a multi-model container, the host directory under
	// which sagehost puts the models it asks the container to load;
	// containers see it at /opt/ml/models (read-only), processes as is.
	ModelsDir string
	// LogPath is the file the container's stdout and stderr are appended to.
	LogPath string
}

// InstanceHandle is what a backend returns for a started instance: where its
// containers listen and an opaque state blob that Recover needs after a
// restart of sagehost.
type InstanceHandle struct {
	ID      string            `json:"ID"`
	Backend string            `json:"Backend"`
	Labels  map[string]string `json:"Labels"`
	// Addrs holds, for each container in spec order, the host:port where
	// sagehost reaches its HTTP server.
	Addrs []string `json:"Addrs"`
	// Version of the State layout.
	Version int             `json:"Version"`
	State   json.RawMessage `json:"State,omitempty"`
}

// ExitStatus says how an instance ended.
type ExitStatus struct {
	ExitCode int
	// Signal is the signal that ended it, if any (e.g. "killed").
	Signal string
	// Err is set when the backend lost track of the instance.
	Err error
}

// Backend runs model instances: as local processes, as Docker or Podman
// containers, or as Kubernetes pods. Implementations are safe for concurrent
// use. Methods that take an id return ErrInstanceNotFound for an instance the
// backend does not track.
type Backend interface {
	// Name returns the backend's name ("process", "docker", ...).
	Name() string
	// Start starts the instance's containers and returns once they are
	// started (not necessarily healthy). A failed Start leaves nothing behind.
	// The backend chooses each container's port and tells it in
	// SAGEMAKER_BIND_TO_PORT.
	Start(ctx context.Context, spec InstanceSpec) (*InstanceHandle, error)
	// List returns every instance this backend runs for this sagehost data
	// directory, including those started by an earlier sagehost process.
	List(ctx context.Context) ([]*InstanceHandle, error)
	// Recover reattaches to an instance started by an earlier sagehost
	// process; it is a no-op for an instance already tracked. It returns
	// ErrInstanceNotFound when the instance no longer runs.
	Recover(ctx context.Context, h *InstanceHandle) error
	// Wait blocks until the instance (any of its containers) exits or ctx ends.
	Wait(ctx context.Context, id string) (ExitStatus, error)
	// Stop asks the instance to stop (SIGTERM) and kills it after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Destroy kills the instance if it still runs and removes what the
	// backend keeps for it. The instance's log files (ContainerSpec.LogPath)
	// are left alone.
	Destroy(ctx context.Context, id string) error
}
