package artifact

import (
	"net/url"
	"path/filepath"
	"strings"
)

// location is a parsed, validated Source.
type location struct {
	uri         string // as given, for messages
	local       bool
	path        string // local: absolute path
	bucket, key string // S3
	dataType    string // S3Object | S3Prefix
	compression string // Gzip | None | "" (local file: detect)
}

// identity is the index key of a source: what it names and how it is read.
func (l *location) identity() string {
	what := "s3://" + l.bucket + "/" + l.key
	if l.local {
		what = "file://" + l.path
	}
	c := l.compression
	if c == "" {
		c = "Auto"
	}
	return l.dataType + "+" + c + " " + what
}

// parseSource validates src and applies the defaults of Source.
func parseSource(src Source) (*location, error) {
	uri := src.URI
	loc := &location{uri: uri, dataType: src.DataType, compression: src.Compression}
	if uri == "" {
		return nil, errorf(ErrInvalidSource, nil, "model data URL is empty; give an s3://bucket/key URL, a file:// URL or a local path")
	}
	switch loc.dataType {
	case "":
		loc.dataType = DataTypeS3Object
		if strings.HasSuffix(uri, "/") {
			loc.dataType = DataTypeS3Prefix
		}
	case DataTypeS3Object, DataTypeS3Prefix:
	default:
		return nil, errorf(ErrInvalidSource, nil, "model data %q: S3DataType %q is not valid; use S3Object or S3Prefix", uri, src.DataType)
	}
	switch loc.compression {
	case "", CompressionGzip, CompressionNone:
	default:
		return nil, errorf(ErrInvalidSource, nil, "model data %q: CompressionType %q is not valid; use Gzip or None", uri, src.Compression)
	}
	if loc.dataType == DataTypeS3Prefix {
		if loc.compression == CompressionGzip {
			return nil, errorf(ErrInvalidSource, nil, "model data %q: CompressionType must be None when S3DataType is S3Prefix", uri)
		}
		loc.compression = CompressionNone
	}

	lower := strings.ToLower(uri)
	switch {
	case strings.HasPrefix(lower, "s3://"):
		rest := uri[len("s3://"):]
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, errorf(ErrInvalidSource, nil, "model data URL %q has no bucket; use s3://bucket/key", uri)
		}
		loc.bucket, loc.key = bucket, key
		if loc.dataType == DataTypeS3Prefix {
			if key != "" && !strings.HasSuffix(key, "/") {
				return nil, errorf(ErrInvalidSource, nil, "model data URL %q: an S3Prefix must end with \"/\"", uri)
			}
		} else {
			if key == "" || strings.HasSuffix(key, "/") {
				return nil, errorf(ErrInvalidSource, nil, "model data URL %q does not name an object; use s3://bucket/key, or S3DataType S3Prefix for a prefix", uri)
			}
			if loc.compression == "" {
				loc.compression = CompressionGzip
			}
		}
		return loc, nil
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		return nil, errorf(ErrInvalidSource, nil, "model data URL %q: http(s) URLs are not supported; use s3://bucket/key (sagehost's S3 endpoint is configurable for S3-compatible stores)", uri)
	case strings.HasPrefix(lower, "file:"):
		u, err := url.Parse(uri)
		if err != nil {
			return nil, errorf(ErrInvalidSource, err, "model data URL %q is not a valid file URL", uri)
		}
		if (u.Host != "" && u.Host != "localhost") || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, errorf(ErrInvalidSource, nil, "model data URL %q: a file URL must name an absolute path, as file:///abs/path", uri)
		}
		loc.local, loc.path = true, filepath.Clean(u.Path)
	default:
		if i := strings.Index(uri, "://"); i > 0 && !strings.ContainsAny(uri[:i], "/.") {
			return nil, errorf(ErrInvalidSource, nil, "model data URL %q: scheme %q is not supported; use s3://, file:// or a local path", uri, uri[:i])
		}
		p, err := filepath.Abs(uri)
		if err != nil {
			return nil, errorf(ErrInvalidSource, err, "model data path %q", uri)
		}
		loc.local, loc.path = true, p
	}
	if strings.ContainsRune(loc.path, 0) {
		return nil, errorf(ErrInvalidSource, nil, "model data path %q contains a NUL byte", uri)
	}
	return loc, nil
}
