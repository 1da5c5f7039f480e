package artifact

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
)

// Root returns the directory every fetched artifact directory is under
// (CacheDir/sha256): what a multi-model container sees at /opt/ml/models.
func (f *Fetcher) Root() string { return filepath.Join(f.cacheDir, "sha256") }

// TargetSource is the source of a multi-model endpoint's TargetModel: the
// model.tar.gz at prefix + target. A target that would leave the prefix
// (an absolute path, a ".." segment) is refused.
func TargetSource(prefix, target string) (Source, error) {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return Source{}, fmt.Errorf("%w: target model %q is not a path relative to the model data prefix", ErrInvalidSource, target)
	}
	for _, seg := range strings.Split(target, "/") {
		if seg == ".." || seg == "." {
			return Source{}, fmt.Errorf("%w: target model %q must stay under the model data prefix", ErrInvalidSource, target)
		}
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Source{URI: prefix + target, DataType: DataTypeS3Object, Compression: CompressionGzip}, nil
}

// FetchTarget fetches a multi-model endpoint's TargetModel, relative to its
// ModelDataUrl prefix, and returns its directory and the bytes it holds.
func (f *Fetcher) FetchTarget(ctx context.Context, prefix, target string) (string, int64, error) {
	src, err := TargetSource(prefix, target)
	if err != nil {
		return "", 0, err
	}
	dir, err := f.Fetch(ctx, src)
	if err != nil {
		return "", 0, err
	}
	return dir, f.dirSize(dir), nil
}

var sizes sync.Map // artifact directory -> size in bytes; artifacts never change

// dirSize returns the bytes of the files under dir.
func (f *Fetcher) dirSize(dir string) int64 {
	if v, ok := sizes.Load(dir); ok {
		return v.(int64)
	}
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	sizes.Store(dir, n)
	return n
}
