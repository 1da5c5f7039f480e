package instfiles

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/sagehost/sagehost"
)

// StateHeader is what every backend keeps about an instance besides its
// containers. A backend's state type embeds it, so that its fields are
// encoded at the top of the state's JSON as before.
type StateHeader struct {
	Version      int               `json:"Version"`
	Backend      string            `json:"Backend"`
	ID           string            `json:"ID"`
	Labels       map[string]string `json:"Labels,omitempty"`
	InstanceType string            `json:"InstanceType,omitempty"`
	Created      time.Time         `json:"Created"`
}

// NewStateHeader returns the header of a new instance of spec, started now
// by backend with state layout version.
func NewStateHeader(backend string, version int, spec sagehost.InstanceSpec) StateHeader {
	return StateHeader{
		Version:      version,
		Backend:      backend,
		ID:           spec.ID,
		Labels:       maps.Clone(spec.Labels),
		InstanceType: spec.InstanceType,
		Created:      time.Now().UTC(),
	}
}

// Check checks a decoded state: that it belongs to backend, has a version
// from 1 to maxVersion, an id, and containers (how many it describes).
func (h *StateHeader) Check(backend string, maxVersion, containers int) error {
	if h.Backend != backend {
		return fmt.Errorf("instance state belongs to backend %q, not %q", h.Backend, backend)
	}
	if h.Version < 1 || h.Version > maxVersion {
		return fmt.Errorf("instance state version %d not supported (want 1 to %d)", h.Version, maxVersion)
	}
	if h.ID == "" || containers == 0 {
		return errors.New("instance state has no id or no containers")
	}
	return nil
}

// Handle returns the instance's handle, less what only the backend knows:
// Addrs and State.
func (h *StateHeader) Handle() *sagehost.InstanceHandle {
	return &sagehost.InstanceHandle{
		ID:      h.ID,
		Backend: h.Backend,
		Labels:  maps.Clone(h.Labels),
		Version: h.Version,
	}
}
