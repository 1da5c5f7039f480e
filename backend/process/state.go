package process

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/backend/internal/instfiles"
	"github.com/sagehost/sagehost/internal/fsutil"
)

// stateVersion is the version of the state layout (InstanceHandle.Version).
const stateVersion = 1

// stateFileName is the file in StateDir/<id>/ that describes an instance.
const stateFileName = "state.json"

// state is what the backend keeps about an instance, both in
// StateDir/<id>/state.json and as InstanceHandle.State. It is everything
// needed to find the instance's processes again after sagehost restarts.
type state struct {
	instfiles.StateHeader
	Containers []containerState `json:"Containers"`
}

// containerState is one container process of an instance.
type containerState struct {
	// Name is the container's directory under StateDir/<id>/.
	Name        string            `json:"Name"`
	Hostname    string            `json:"Hostname,omitempty"`
	Image       string            `json:"Image"`
	Environment map[string]string `json:"Environment,omitempty"`
	ModelDir    string            `json:"ModelDir,omitempty"`
	LogPath     string            `json:"LogPath"`
	WorkDir     string            `json:"WorkDir"`
	// Port is SAGEMAKER_BIND_TO_PORT; Port+1..Port+9 is its safe range.
	Port int `json:"Port"`
	// PID is the process id, which is also its process group id.
	PID int `json:"PID"`
	// StartTime is field 22 of /proc/<pid>/stat (clock ticks after boot),
	// which tells the process apart from a later one given the same pid;
	// 0 where /proc is missing.
	StartTime uint64 `json:"StartTime"`
}

// handle returns the InstanceHandle of an instance; raw is the encoded state.
func (st *state) handle(raw []byte) *sagehost.InstanceHandle {
	h := st.StateHeader.Handle()
	h.State = json.RawMessage(append([]byte(nil), raw...))
	for _, c := range st.Containers {
		h.Addrs = append(h.Addrs, "127.0.0.1:"+strconv.Itoa(c.Port))
	}
	return h
}

func decodeState(raw []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode instance state: %w", err)
	}
	if err := st.Check(Name, stateVersion, len(st.Containers)); err != nil {
		return nil, err
	}
	for _, c := range st.Containers {
		if c.PID <= 0 {
			return nil, fmt.Errorf("instance state has a bad pid %d", c.PID)
		}
	}
	return &st, nil
}

// readState reads StateDir/<id>/state.json; the error wraps fs.ErrNotExist
// when there is none.
func readState(dir string) (*state, []byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if err != nil {
		return nil, nil, err
	}
	st, err := decodeState(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFileName), err)
	}
	return st, raw, nil
}

// writeState writes state.json atomically (mode 0600: it holds the model's
// environment).
func writeState(dir string, raw []byte) error {
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, stateFileName), raw, 0o600); err != nil {
		return fmt.Errorf("write instance state: %w", err)
	}
	return nil
}
