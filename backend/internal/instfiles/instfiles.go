// Package instfiles holds what every backend does the same way for an
// instance: instance spec and id checks, container names, the environment
// list, the common header of its state (StateHeader), opening and appending
// to container logs, tracking how its containers exit (ExitLatch), and
// removing an instance's directory.
package instfiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sagehost/sagehost"
)

var (
	validID       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	validHostname = regexp.MustCompile(`^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$`)
)

// ValidID reports whether id can name an instance's directory and labels.
func ValidID(id string) bool { return validID.MatchString(id) }

// CheckSpec checks what every backend requires of an instance spec before
// it starts anything: a valid id, at least one container, and environment
// variables that can be handed to a process (a name that is not empty and
// has no '=' or NUL, a value without NUL).
func CheckSpec(spec sagehost.InstanceSpec) error {
	if !ValidID(spec.ID) {
		return fmt.Errorf("invalid instance id %q", spec.ID)
	}
	if len(spec.Containers) == 0 {
		return errors.New("no containers")
	}
	for i, c := range spec.Containers {
		for k, v := range c.Environment {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
				return fmt.Errorf("container %d: invalid environment variable %q", i+1, k)
			}
		}
	}
	return nil
}

// CheckHandle checks the handle Recover is given: that there is one, with
// an id, and that it names backend or no backend. The error names backend.
func CheckHandle(backend string, h *sagehost.InstanceHandle) error {
	if h == nil || h.ID == "" {
		return fmt.Errorf("%s backend: recover: no instance handle", backend)
	}
	if h.Backend != "" && h.Backend != backend {
		return fmt.Errorf("%s backend: cannot recover instance %s of backend %q", backend, h.ID, h.Backend)
	}
	return nil
}

// ContainerNames names the containers of an instance, each name distinct:
// the ContainerHostname, "primary" for a lone container without one, or
// container-<n> (n its position, or the next number no other container
// has).
func ContainerNames(cs []sagehost.ContainerSpec) []string {
	names := make([]string, len(cs))
	seen := map[string]bool{}
	for i, c := range cs {
		n := c.Hostname
		if !validHostname.MatchString(n) || n == "primary" || seen[n] {
			n = "container-" + strconv.Itoa(i+1)
			if len(cs) == 1 {
				n = "primary"
			}
			// An earlier container may have been given this name as its
			// hostname: take the next free number.
			for k := i + 2; seen[n]; k++ {
				n = "container-" + strconv.Itoa(k)
			}
		}
		seen[n] = true
		names[i] = n
	}
	return names
}

// RemoveAll removes a directory tree, also when a model left read-only
// directories in it.
func RemoveAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
