package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sagehost/sagehost/auth"
	"github.com/sagehost/sagehost/server"
)

// logs prints an endpoint's container logs, fetched from a running sagehost
// over its signed /logs API, as the AWS credentials in the environment (or
// the development key pair) allow.
func logs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sagehost logs ENDPOINT [--variant V] [--stream VARIANT/INSTANCE-ID] [--tail N] [--follow]")
		fs.PrintDefaults()
	}
	endpointURL := fs.String("endpoint-url", envOr("SAGEHOST_URL", "http://"+server.DefaultListen), "sagehost's URL (env SAGEHOST_URL)")
	region := fs.String("region", envOr("AWS_REGION", envOr("AWS_DEFAULT_REGION", "us-east-1")), "region of the endpoint (env AWS_REGION, AWS_DEFAULT_REGION)")
	variant := fs.String("variant", "", "only this production variant's instances")
	stream := fs.String("stream", "", "only this log stream, VARIANT/INSTANCE-ID (as in a ModelError's LogStreamArn)")
	tail := fs.Int("tail", -1, "only the last N lines of each stream (-1: all)")
	follow := fs.Bool("follow", false, "keep printing new lines until interrupted")
	// Accept flags after the endpoint name too.
	var name string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		rest = fs.Args()
		if len(rest) > 0 {
			if name != "" {
				fmt.Fprintf(stderr, "sagehost logs: more than one endpoint name (%q and %q)\n", name, rest[0])
				return 2
			}
			name, rest = rest[0], rest[1:]
		}
	}
	if name == "" {
		fs.Usage()
		return 2
	}
	q := url.Values{}
	if *variant != "" {
		q.Set("variant", *variant)
	}
	if *stream != "" {
		q.Set("stream", *stream)
	}
	if *tail >= 0 {
		q.Set("tail", strconv.Itoa(*tail))
	}
	if *follow {
		q.Set("follow", "true")
	}
	u := *endpointURL + "/logs/" + url.PathEscape(name)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		fmt.Fprintln(stderr, "sagehost logs:", err)
		return 2
	}
	creds := aws.Credentials{
		AccessKeyID:     envOr("AWS_ACCESS_KEY_ID", auth.DevCredential.AccessKeyID),
		SecretAccessKey: envOr("AWS_SECRET_ACCESS_KEY", auth.DevCredential.SecretAccessKey),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
	empty := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), auth.DefaultService, *region, time.Now()); err != nil {
		fmt.Fprintln(stderr, "sagehost logs: sign:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintln(stderr, "sagehost logs:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "sagehost logs: %s: %s %s\n", resp.Status, resp.Header.Get("X-Amzn-ErrorType"), b)
		return 1
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "sagehost logs:", err)
		return 1
	}
	return 0
}
