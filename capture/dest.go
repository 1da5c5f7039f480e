package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sagehost/sagehost/internal/fsutil"
)

// destination is a parsed DestinationS3Uri.
type destination struct {
	uri    string
	s3     bool
	bucket string // s3
	prefix string // s3, without leading or trailing "/"
	dir    string // file: an absolute, clean path
}

// CheckDestination reports whether uri is a destination that a Writer can
// write to: s3://bucket[/prefix], file:///abs/dir or an absolute path.
func CheckDestination(uri string) error {
	_, err := parseDestination(uri)
	return err
}

func parseDestination(uri string) (*destination, error) {
	switch {
	case uri == "":
		return nil, errors.New("capture: empty destination")
	case strings.HasPrefix(uri, "/"):
		return &destination{uri: uri, dir: filepath.Clean(uri)}, nil
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return nil, fmt.Errorf("capture: destination %q is not s3://bucket/prefix, file:///dir or an absolute path", uri)
	}
	switch strings.ToLower(scheme) {
	case "s3":
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("capture: destination %q has no bucket", uri)
		}
		return &destination{uri: uri, s3: true, bucket: bucket, prefix: strings.Trim(prefix, "/")}, nil
	case "file":
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("capture: destination %q: %w", uri, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("capture: destination %q: file URLs must name a local path (file:///dir)", uri)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("capture: destination %q: the path must be absolute", uri)
		}
		return &destination{uri: uri, dir: filepath.Clean(u.Path)}, nil
	}
	return nil, fmt.Errorf("capture: destination %q: scheme %q is not supported (use s3://, file:// or an absolute path)", uri, scheme)
}

// validName reports whether an endpoint or variant name is usable as a
// path segment. SageMaker's names always are; this guards file://
// destinations against names that would leave the directory.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

// write stores one file at dest. A file is complete when it appears.
func (w *Writer) write(ctx context.Context, b *batch) error {
	if b.dest.s3 {
		return w.putS3(ctx, b)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(b.dest.dir, filepath.FromSlash(b.name)), b.data)
}

// writeFileAtomic writes data to path, creating its directory, so that
// path never holds a partial file (the temporary file, .NAME-*.tmp, never
// ends in .jsonl).
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create capture directory: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("write capture file %s: %w", path, err)
	}
	return nil
}

func (w *Writer) putS3(ctx context.Context, b *batch) error {
	cl, err := w.s3.Get(ctx)
	if err != nil {
		return err
	}
	key := b.name
	if b.dest.prefix != "" {
		key = b.dest.prefix + "/" + key
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.UploadTimeout)
	defer cancel()
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.dest.bucket),
		Key:    aws.String(key),
		Body:   bytes.NewReader(b.data),
	}); err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", b.dest.bucket, key, err)
	}
	return nil
}

// permanent reports whether an upload error will not go away by retrying
// (a 4xx answer of S3 other than timeouts and throttling).
func permanent(err error) bool {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	s := re.HTTPStatusCode()
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}
