// Package s3client builds the AWS SDK S3 client that sagehost's S3 users
// (model data downloads in artifact, data capture uploads in capture) share:
// the region, credentials and optional S3-compatible endpoint that
// sagehost's --s3-* settings give, and the SDK's own log lines sent to
// slog.
package s3client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// DefaultRegion is the region used when neither Config.Region nor the AWS
// SDK's configuration names one.
const DefaultRegion = "us-east-1"

// Config is where and as whom S3 is reached.
type Config struct {
	// EndpointURL is an optional custom S3 endpoint (MinIO or any
	// S3-compatible store), addressed path-style. Empty means AWS S3 (or
	// what the SDK's configuration, e.g. AWS_ENDPOINT_URL_S3, says).
	EndpointURL string
	// Region is the S3 region; empty means the AWS SDK's configured
	// region, else DefaultRegion.
	Region string
	// Credentials are the credentials for S3; nil means the AWS SDK's
	// default chain.
	Credentials aws.CredentialsProvider
}

// New loads the AWS SDK configuration and returns an S3 client for cfg.
// The SDK's log lines go to log at debug level (warnings at warn level),
// prefixed with component. optFns adjust the client's options after
// sagehost's own (a custom endpoint and path-style addressing).
func New(ctx context.Context, cfg Config, log *slog.Logger, component string, optFns ...func(*s3.Options)) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration for S3: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	awsCfg.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, component+": AWS SDK: "+fmt.Sprintf(format, v...))
	})
	base := func(o *s3.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
			o.UsePathStyle = true
		}
	}
	return s3.NewFromConfig(awsCfg, append([]func(*s3.Options){base}, optFns...)...), nil
}

// Lazy is a client made on first use, so that a user that never sees an
// s3:// URL needs no AWS configuration. A failed creation is tried again
// on the next Get.
type Lazy struct {
	Config    Config
	Log       *slog.Logger
	Component string              // prefix of the SDK's log lines
	Options   []func(*s3.Options) // as New's optFns

	mu     sync.Mutex
	client *s3.Client
}

// Get returns the client, creating it the first time.
func (l *Lazy) Get(ctx context.Context) (*s3.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client == nil {
		c, err := New(ctx, l.Config, l.Log, l.Component, l.Options...)
		if err != nil {
			return nil, err
		}
		l.client = c
	}
	return l.client, nil
}
