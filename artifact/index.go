package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sagehost/sagehost/internal/fsutil"
)

const indexVersion = 1

// indexEntry says what a source held when it was last fetched.
type indexEntry struct {
	URI string `json:"uri"`
	// Fingerprint identifies the source's state without reading its data:
	// the ETag for an S3 object, the listing for a prefix, size, mtime and
	// inode for local files.
	Fingerprint string `json:"fingerprint"`
	// Digest names the cached directory, CacheDir/sha256/<Digest>.
	Digest  string    `json:"digest"`
	Updated time.Time `json:"updated"`
}

type indexFile struct {
	Version int                   `json:"version"`
	Entries map[string]indexEntry `json:"entries"`
}

// index maps source identities to digests; it is saved as JSON after every
// change, atomically (fsutil.WriteFileAtomic).
type index struct {
	path    string
	mu      sync.Mutex
	entries map[string]indexEntry
}

func loadIndex(path string) (*index, error) {
	idx := &index{path: path, entries: make(map[string]indexEntry)}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("artifact: read cache index: %w", err)
	}
	var f indexFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != indexVersion {
		// The index is only an optimisation: start over rather than fail.
		return idx, nil
	}
	for k, e := range f.Entries {
		if validDigest(e.Digest) {
			idx.entries[k] = e
		}
	}
	return idx, nil
}

func (x *index) get(key string) (indexEntry, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.entries[key]
	return e, ok
}

func (x *index) put(key string, e indexEntry) error {
	e.Updated = time.Now().UTC()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.entries[key] = e
	data, err := json.MarshalIndent(indexFile{Version: indexVersion, Entries: x.entries}, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(x.path, data, 0o600)
}
