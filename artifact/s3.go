package artifact

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// s3Workers is how many objects of a prefix are downloaded at once.
const s3Workers = 4

// s3Status returns the HTTP status and error code of an S3 error (0, "" if
// it is not one).
func s3Status(err error) (int, string) {
	status, code := 0, ""
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return status, code
}

// s3Error turns an error from reading s3 into SageMaker's download error
// when the data is missing or access is denied.
func s3Error(uri, what string, err error) error {
	status, code := s3Status(err)
	switch {
	case status == http.StatusNotFound || code == "NoSuchKey" || code == "NoSuchBucket" || code == "NotFound":
		return downloadError(ErrNotFound, uri, what, err)
	case status == http.StatusForbidden || code == "AccessDenied":
		return downloadError(ErrAccessDenied, uri, what, err)
	}
	return fmt.Errorf("read model data from S3: %w", err)
}

const (
	objectMissing = "there is an object located at the URL and that the S3 credentials sagehost uses have permission to download the object"
	prefixMissing = "there are objects under the S3 prefix and that the S3 credentials sagehost uses have permission to list and download them"
)

// fetchS3Object fetches an S3Object: a tar.gz to extract, or one file.
func (f *Fetcher) fetchS3Object(ctx context.Context, loc *location) (string, error) {
	cl, err := f.s3.Get(ctx)
	if err != nil {
		return "", err
	}
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
	if err != nil {
		return "", s3Error(loc.uri, objectMissing, err)
	}
	if size := aws.ToInt64(head.ContentLength); size > f.cfg.MaxArchiveBytes {
		return "", errorf(ErrTooLarge, nil, "model data object is %d bytes, more than the limit of %d", size, f.cfg.MaxArchiveBytes)
	}
	fingerprint := objectFingerprint(aws.ToString(head.ETag), aws.ToInt64(head.ContentLength))
	if dir, ok := f.cached(loc, fingerprint); ok {
		return dir, nil
	}

	f.fetches.Add(1)
	f.log.Info("artifact: downloading model data", "url", loc.uri, "bytes", aws.ToInt64(head.ContentLength))
	get, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &loc.bucket, Key: &loc.key})
	if err != nil {
		return "", s3Error(loc.uri, objectMissing, err)
	}
	defer get.Body.Close()
	// The ETag of the bytes actually read, in case the object changed
	// since HEAD.
	fingerprint = objectFingerprint(aws.ToString(get.ETag), aws.ToInt64(get.ContentLength))

	st, err := f.newStage()
	if err != nil {
		return "", err
	}
	var digest string
	if loc.compression == CompressionGzip {
		digest, err = st.extractArchive(ctx, loc.uri, get.Body)
	} else {
		digest, err = st.singleFile(ctx, path.Base(loc.key), get.Body)
	}
	if err != nil {
		st.discard()
		return "", err
	}
	return f.publish(st, loc, fingerprint, digest)
}

func objectFingerprint(etag string, size int64) string {
	return fmt.Sprintf("etag=%s size=%d", etag, size)
}

// singleFile writes one file named name with the content of r and returns
// the tree digest.
func (s *stage) singleFile(ctx context.Context, name string, r io.Reader) (string, error) {
	if err := s.addEntry(); err != nil {
		return "", err
	}
	sum, err := s.writeFile(ctx, name, r, false)
	if err != nil {
		return "", err
	}
	s.manifest = append(s.manifest, manifestEntry{rel: name, sum: sum})
	return s.digest(), nil
}

// s3Entry is one object under a prefix.
type s3Entry struct {
	key, rel, etag string
	size           int64
}

// fetchS3Prefix fetches every object under an S3Prefix.
func (f *Fetcher) fetchS3Prefix(ctx context.Context, loc *location) (string, error) {
	cl, err := f.s3.Get(ctx)
	if err != nil {
		return "", err
	}
	var objs []s3Entry
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: &loc.bucket, Prefix: &loc.key})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", s3Error(loc.uri, prefixMissing, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			objs = append(objs, s3Entry{key: k, rel: strings.TrimPrefix(k, loc.key), etag: aws.ToString(o.ETag), size: aws.ToInt64(o.Size)})
		}
		if len(objs) > f.cfg.MaxFiles {
			return "", errorf(ErrTooLarge, nil, "the S3 prefix holds more than %d objects (the limit)", f.cfg.MaxFiles)
		}
	}
	if len(objs) == 0 {
		return "", downloadError(ErrNotFound, loc.uri, prefixMissing, errors.New("no objects found under the prefix"))
	}
	if err := checkPrefixEntries(objs, f.cfg.MaxExtractedBytes); err != nil {
		return "", err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].key < objs[j].key })
	fp := sha256.New()
	for _, o := range objs {
		fmt.Fprintf(fp, "%q %q %d\n", o.key, o.etag, o.size)
	}
	fingerprint := fmt.Sprintf("listing=%x", fp.Sum(nil))
	if dir, ok := f.cached(loc, fingerprint); ok {
		return dir, nil
	}

	f.fetches.Add(1)
	f.log.Info("artifact: downloading model data prefix", "url", loc.uri, "objects", len(objs))
	st, err := f.newStage()
	if err != nil {
		return "", err
	}
	if err := f.downloadObjects(ctx, cl, loc, st, objs); err != nil {
		st.discard()
		return "", err
	}
	digest := st.digest()
	return f.publish(st, loc, fingerprint, digest)
}

// downloadObjects downloads objs into the stage, a few at a time.
func (f *Fetcher) downloadObjects(ctx context.Context, cl *s3.Client, loc *location, st *stage, objs []s3Entry) error {
	// Directories are part of the tree digest, like a local copy's.
	dirs := map[string]bool{}
	for _, o := range objs {
		for d := range parentDirs(o.rel) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		st.manifest = append(st.manifest, manifestEntry{rel: d, dir: true})
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu       sync.Mutex // guards st counters and manifest
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan s3Entry)
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel(err)
	}
	for range s3Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := f.downloadObject(ctx, cl, loc, st, &mu, o); err != nil {
					fail(err)
				}
			}
		}()
	}
feed:
	for _, o := range objs {
		select {
		case work <- o:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func (f *Fetcher) downloadObject(ctx context.Context, cl *s3.Client, loc *location, st *stage, mu *sync.Mutex, o s3Entry) error {
	objURI := "s3://" + loc.bucket + "/" + o.key
	get, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &loc.bucket, Key: &o.key})
	if err != nil {
		return s3Error(objURI, objectMissing, err)
	}
	defer get.Body.Close()
	mu.Lock()
	if err := st.addEntry(); err != nil {
		mu.Unlock()
		return err
	}
	// Reserve the listed size against the limit, so parallel downloads
	// cannot overshoot it together.
	st.bytes += o.size
	mu.Unlock()
	// createFile, not writeFile: the byte accounting is done here, under
	// the lock.
	sum, n, err := st.createFile(ctx, o.rel, io.LimitReader(get.Body, o.size+1), false)
	mu.Lock()
	defer mu.Unlock()
	st.bytes += n - o.size
	if err != nil {
		return fmt.Errorf("download %q: %w", objURI, err)
	}
	if n != o.size {
		return fmt.Errorf("download %q: the object changed while the prefix was downloaded (%d bytes listed, %d read); retry", objURI, o.size, n)
	}
	if st.bytes > f.cfg.MaxExtractedBytes {
		return st.tooLarge()
	}
	st.manifest = append(st.manifest, manifestEntry{rel: o.rel, sum: sum})
	return nil
}

// checkPrefixEntries rejects what SageMaker rejects for an S3Prefix: folder
// objects, names that cannot be file names, and a file that is also a
// directory; and applies the size limit to the listing.
func checkPrefixEntries(objs []s3Entry, maxBytes int64) error {
	files := make(map[string]bool, len(objs))
	var total int64
	for _, o := range objs {
		if strings.HasSuffix(o.key, "/") {
			return errorf(ErrInvalidSource, nil, "S3 key %q under the prefix is a folder object (a key ending in \"/\"); delete it, S3 prefixes need no folder objects", o.key)
		}
		for _, c := range strings.Split(o.rel, "/") {
			switch {
			case c == "":
				return errorf(ErrInvalidSource, nil, "S3 key %q under the prefix has an empty path segment; rename the object", o.key)
			case c == "." || c == "..":
				return errorf(ErrInvalidSource, nil, "S3 key %q under the prefix has a %q path segment; rename the object", o.key, c)
			case strings.ContainsRune(c, 0):
				return errorf(ErrInvalidSource, nil, "S3 key %q under the prefix contains a NUL byte; rename the object", o.key)
			case len(c) > 255:
				return errorf(ErrInvalidSource, nil, "S3 key %q under the prefix has a path segment longer than 255 bytes; rename the object", o.key)
			}
		}
		files[o.rel] = true
		total += o.size
	}
	if total > maxBytes {
		return errorf(ErrTooLarge, nil, "the objects under the S3 prefix total %d bytes, more than the limit of %d", total, maxBytes)
	}
	for _, o := range objs {
		for d := range parentDirs(o.rel) {
			if files[d] {
				return errorf(ErrInvalidSource, nil, "S3 key %q is both a file and, through key %q, a directory; rename one of them", strings.TrimSuffix(o.key, o.rel)+d, o.key)
			}
		}
	}
	return nil
}

// parentDirs yields the directories above the relative path rel, nearest
// first ("a/b/c" gives "a/b", then "a").
func parentDirs(rel string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if !yield(d) {
				return
			}
		}
	}
}
