package artifact

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/internal/testutil/minio"
)

// TestS3 runs the S3 cases against one real MinIO server.
func TestS3(t *testing.T) {
	srv := minio.Start(t)
	cl := srv.S3Client(t)
	const bucket = "models"
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	put := func(t *testing.T, key string, data []byte) {
		t.Helper()
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
	}
	fetcher := func(t *testing.T, mutate ...func(*Config)) *Fetcher {
		return newFetcher(t, append([]func(*Config){func(c *Config) {
			c.S3EndpointURL = srv.Endpoint
			c.S3Region = srv.Region
			c.S3Credentials = srv.Credentials()
		}}, mutate...)...)
	}
	url := func(key string) string { return "s3://" + bucket + "/" + key }

	t.Run("tar.gz object via ModelDataUrl", func(t *testing.T) {
		put(t, "m1/model.tar.gz", tarGz(t, file("model.bin", "w1"), execFile("code/serve", "#!"), symlink("link", "model.bin")))
		src, ok := SourceFromContainer(sagehost.ContainerDefinition{ModelDataUrl: url("m1/model.tar.gz")})
		if !ok {
			t.Fatal("no source")
		}
		f := fetcher(t)
		d, err := f.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		wantTree(t, d, map[string]string{"model.bin": "w1", "code": "dir", "code/serve": "#!", "link": "-> model.bin"})
		// Cache hit: HEAD only, no download.
		d2, err := f.Fetch(ctx, src)
		if err != nil || d2 != d {
			t.Fatalf("second fetch = %s, %v", d2, err)
		}
		wantStats(t, f, 1, 1)
	})

	t.Run("ETag change refetches", func(t *testing.T) {
		f := fetcher(t)
		src := Source{URI: url("m2/model.tar.gz"), DataType: DataTypeS3Object, Compression: CompressionGzip}
		put(t, "m2/model.tar.gz", tarGz(t, file("v", "1")))
		d1, err := f.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		put(t, "m2/model.tar.gz", tarGz(t, file("v", "2")))
		d2, err := f.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if d1 == d2 || readTree(t, d2)["v"] != "2" || readTree(t, d1)["v"] != "1" {
			t.Errorf("after overwrite: %s %v, before: %s %v", d2, readTree(t, d2), d1, readTree(t, d1))
		}
		if _, err := f.Fetch(ctx, src); err != nil {
			t.Fatal(err)
		}
		wantStats(t, f, 2, 1)
	})

	t.Run("identical content from two URLs and a local file shares one dir", func(t *testing.T) {
		f := fetcher(t)
		data := tarGz(t, file("shared", "same bytes"))
		put(t, "a/model.tar.gz", data)
		put(t, "b/other.tar.gz", data)
		da, err := f.Fetch(ctx, Source{URI: url("a/model.tar.gz")})
		if err != nil {
			t.Fatal(err)
		}
		db, err := f.Fetch(ctx, Source{URI: url("b/other.tar.gz")})
		if err != nil {
			t.Fatal(err)
		}
		dl, err := f.Fetch(ctx, Source{URI: writeTemp(t, "x.tar.gz", data), Compression: CompressionGzip})
		if err != nil {
			t.Fatal(err)
		}
		if da != db || da != dl {
			t.Errorf("dirs %s %s %s", da, db, dl)
		}
		if got := cacheDirs(t, f); len(got) != 1 {
			t.Errorf("cache holds %v", got)
		}
	})

	t.Run("S3Object None", func(t *testing.T) {
		f := fetcher(t)
		put(t, "raw/weights.safetensors", []byte("raw bytes"))
		src, _ := SourceFromContainer(sagehost.ContainerDefinition{ModelDataSource: &sagehost.ModelDataSource{S3DataSource: &sagehost.S3DataSource{
			S3Uri: url("raw/weights.safetensors"), S3DataType: "S3Object", CompressionType: "None"}}})
		d, err := f.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		wantTree(t, d, map[string]string{"weights.safetensors": "raw bytes"})
	})

	t.Run("S3Prefix nested", func(t *testing.T) {
		f := fetcher(t)
		put(t, "pre/config.json", []byte("{}"))
		put(t, "pre/sub/a.bin", []byte("A"))
		put(t, "pre/sub/deep/b.bin", []byte("B"))
		put(t, "prefix-sibling/x", []byte("not included"))
		src := Source{URI: url("pre/"), DataType: DataTypeS3Prefix, Compression: CompressionNone}
		d, err := f.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		wantTree(t, d, map[string]string{"config.json": "{}", "sub": "dir", "sub/a.bin": "A", "sub/deep": "dir", "sub/deep/b.bin": "B"})
		if _, err := f.Fetch(ctx, src); err != nil {
			t.Fatal(err)
		}
		wantStats(t, f, 1, 1)
		// A changed object changes the listing: fetched again.
		put(t, "pre/sub/a.bin", []byte("A2"))
		d2, err := f.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if d2 == d || readTree(t, d2)["sub/a.bin"] != "A2" {
			t.Errorf("changed prefix: %s %v", d2, readTree(t, d2))
		}
		wantStats(t, f, 2, 1)
	})

	t.Run("S3Prefix with a folder object fails", func(t *testing.T) {
		f := fetcher(t)
		put(t, "folders/model.bin", []byte("x"))
		put(t, "folders/empty/", nil)
		_, err := f.Fetch(ctx, Source{URI: url("folders/"), DataType: DataTypeS3Prefix})
		wantErr(t, err, ErrInvalidSource, `"folders/empty/"`, "folder object", url("folders/"))
		assertCacheEmpty(t, f)
	})

	t.Run("S3Prefix over the limits fails", func(t *testing.T) {
		f := fetcher(t, func(c *Config) { c.MaxFiles = 2 })
		_, err := f.Fetch(ctx, Source{URI: url("pre/"), DataType: DataTypeS3Prefix})
		wantErr(t, err, ErrTooLarge, "more than 2 objects")
		f = fetcher(t, func(c *Config) { c.MaxExtractedBytes = 3 })
		_, err = f.Fetch(ctx, Source{URI: url("pre/"), DataType: DataTypeS3Prefix})
		wantErr(t, err, ErrTooLarge, "more than the limit of 3")
		assertCacheEmpty(t, f)
	})

	t.Run("missing", func(t *testing.T) {
		f := fetcher(t)
		_, err := f.Fetch(ctx, Source{URI: url("nope/model.tar.gz")})
		wantErr(t, err, ErrNotFound, `Failed to download model data from URL: "s3://models/nope/model.tar.gz". Please ensure that there is an object located at the URL`, "404")
		_, err = f.Fetch(ctx, Source{URI: "s3://no-such-bucket/model.tar.gz"})
		wantErr(t, err, ErrNotFound, `Failed to download model data from URL: "s3://no-such-bucket/model.tar.gz"`)
		_, err = f.Fetch(ctx, Source{URI: url("empty-prefix/"), DataType: DataTypeS3Prefix})
		wantErr(t, err, ErrNotFound, "no objects found under the prefix")
		assertCacheEmpty(t, f)
	})

	t.Run("wrong credentials", func(t *testing.T) {
		f := fetcher(t, func(c *Config) {
			c.S3Credentials = credentials.NewStaticCredentialsProvider("nobody", "wrong-secret", "")
		})
		_, err := f.Fetch(ctx, Source{URI: url("m1/model.tar.gz")})
		wantErr(t, err, ErrAccessDenied, "Failed to download model data from URL", "403")
	})

	t.Run("not gzip", func(t *testing.T) {
		f := fetcher(t)
		put(t, "plain/model.tar", tarBytes(t, file("a", "A")))
		_, err := f.Fetch(ctx, Source{URI: url("plain/model.tar")})
		wantErr(t, err, ErrBadArchive, `model data at "s3://models/plain/model.tar" is not a gzip-compressed tar archive`)
		assertCacheEmpty(t, f)
	})

	t.Run("unsafe archive", func(t *testing.T) {
		f := fetcher(t)
		put(t, "evil/model.tar.gz", tarGz(t, file("ok", "x"), symlink("s", "../../../etc")))
		_, err := f.Fetch(ctx, Source{URI: url("evil/model.tar.gz")})
		wantErr(t, err, ErrUnsafeArchive, url("evil/model.tar.gz"), `"s"`)
		assertCacheEmpty(t, f)
	})

	t.Run("concurrent fetches download once", func(t *testing.T) {
		f := fetcher(t)
		put(t, "conc/model.tar.gz", tarGz(t, file("big", strings.Repeat("0123456789", 200_000))))
		var wg sync.WaitGroup
		dirs := make([]string, 8)
		errs := make([]error, 8)
		for i := range dirs {
			wg.Go(func() { dirs[i], errs[i] = f.Fetch(ctx, Source{URI: url("conc/model.tar.gz")}) })
		}
		wg.Wait()
		for i := range dirs {
			if errs[i] != nil || dirs[i] != dirs[0] {
				t.Errorf("fetch %d = %s, %v", i, dirs[i], errs[i])
			}
		}
		if s := f.Stats(); s.Fetches != 1 || s.Shared+s.CacheHits != 7 {
			t.Errorf("Stats = %+v, want one download", s)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		f := fetcher(t)
		c, cancel := context.WithCancel(ctx)
		cancel()
		_, err := f.Fetch(c, Source{URI: url("m1/model.tar.gz")})
		wantErr(t, err, context.Canceled)
		assertCacheEmpty(t, f)
	})
}
