package docker

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/internal/instfiles"
)

// Labels on every container of this backend.
const (
	// LabelBackend is "docker" on every container this backend starts.
	LabelBackend = "sagehost.backend"
	// LabelDataDir is a hash of the StateDir of the sagehost that started
	// the container.
	LabelDataDir = "sagehost.datadir"

	labelPrefix   = "sagehost.docker."
	labelInstance = labelPrefix + "instance" // instance id
	labelIndex    = labelPrefix + "index"    // container index in the spec
	labelState    = labelPrefix + "state"    // the instance's state, JSON
)

// stateVersion is the version of the state layout (InstanceHandle.Version).
const stateVersion = 1

// state describes an instance: in the sagehost.docker.state label of each
// of its containers (without container ids) and as InstanceHandle.State
// (with them). The instance's GPUs are not kept here: after a restart
// sagehost reserves them again from the sagehost.gpus label
// (sagehost.LabelGPUs). A "GPUs" field of states written before is ignored.
type state struct {
	instfiles.StateHeader
	Containers []containerState `json:"Containers"`
}

// containerState is one container of an instance.
type containerState struct {
	// Name is the container's name within the instance: its hostname, or
	// "primary" for a lone container without one, or container-<n>.
	Name string `json:"Name"`
	// EngineName is the container's name on the engine.
	EngineName string `json:"EngineName"`
	Hostname   string `json:"Hostname,omitempty"`
	Image      string `json:"Image"`
	LogPath    string `json:"LogPath"`
	// Port is SAGEMAKER_BIND_TO_PORT inside the container.
	Port int `json:"Port"`
	// HostPort is where Port is published on 127.0.0.1.
	HostPort int `json:"HostPort"`
	// ContainerID is the engine's id; only in InstanceHandle.State.
	ContainerID string `json:"ContainerID,omitempty"`
}

// handle returns the InstanceHandle of an instance.
func (st *state) handle() *sagehost.InstanceHandle {
	h := st.StateHeader.Handle()
	for _, c := range st.Containers {
		h.Addrs = append(h.Addrs, "127.0.0.1:"+strconv.Itoa(c.HostPort))
	}
	if raw, err := json.Marshal(st); err == nil {
		h.State = raw
	}
	return h
}

// labelValue returns the state as stored in a label: without container ids.
func (st *state) labelValue() (string, error) {
	c := *st
	c.Containers = make([]containerState, len(st.Containers))
	for i, cs := range st.Containers {
		cs.ContainerID = ""
		c.Containers[i] = cs
	}
	raw, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode instance state: %w", err)
	}
	return string(raw), nil
}

func decodeState(raw []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode instance state: %w", err)
	}
	if err := st.Check(Name, stateVersion, len(st.Containers)); err != nil {
		return nil, err
	}
	return &st, nil
}

// reservedLabel says whether a label key belongs to the backend itself.
func reservedLabel(k string) bool {
	return k == LabelBackend || k == LabelDataDir || strings.HasPrefix(k, labelPrefix)
}

// instanceDir is where the backend keeps an instance's files on the host.
func (b *Backend) instanceDir(id string) string { return filepath.Join(b.cfg.StateDir, id) }
