package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
)

// ensureImage pulls ref unless the engine has it. The error names the
// image and carries the engine's message.
func (b *Backend) ensureImage(ctx context.Context, ref string) error {
	_, err := b.cli.ImageInspect(ctx, ref)
	if err == nil {
		return nil
	}
	if client.IsErrConnectionFailed(err) {
		return b.unreachable(err)
	}
	// Not found (or a reference the engine could not look up): pull it.
	start := time.Now()
	b.log.Info("pulling image", "image", ref)
	if err := b.pull(ctx, ref); err != nil {
		return fmt.Errorf("image %q: pull: %w", ref, err)
	}
	if _, err := b.cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("image %q: not present after pulling it: %w", ref, engineErr(err))
	}
	b.log.Info("image pulled", "image", ref, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// pull pulls ref and reads the engine's progress stream to the end; an
// error in the stream is the pull's error.
func (b *Backend) pull(ctx context.Context, ref string) error {
	opts := image.PullOptions{}
	if auth, err := registryAuth(ctx, ref); err != nil {
		b.log.Warn("registry credentials unavailable; pulling anonymously", "image", ref, "err", err)
	} else if auth != nil {
		enc, err := registry.EncodeAuthConfig(*auth)
		if err != nil {
			return fmt.Errorf("encode registry credentials: %w", err)
		}
		opts.RegistryAuth = enc
	}
	rc, err := b.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return engineErr(err)
	}
	defer rc.Close()
	return readStream(rc)
}

// streamMessage is one line of the engine's progress stream (pull, build).
type streamMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readStream reads a JSON progress stream to its end and returns its first
// error message as an error; the text of "stream" lines goes to out, if set.
func readStream(r io.Reader, out ...io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the engine's progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		for _, w := range out {
			io.WriteString(w, m.Stream)
		}
	}
}

// dockerConfig is the part of ~/.docker/config.json that holds credentials.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// dockerHubKeys are the names Docker Hub's credentials are stored under.
var dockerHubKeys = []string{"https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"}

// registryAuth returns the credentials for ref's registry from the Docker
// client configuration ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json): a credential helper named for the registry or
// the default credsStore, else an "auths" entry. It returns nil, nil when
// there are none.
func registryAuth(ctx context.Context, ref string) (*registry.AuthConfig, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, nil // the pull reports the bad reference
	}
	domain := reference.Domain(named)
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		dir = filepath.Join(home, ".docker")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg dockerConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	return authFor(ctx, &cfg, domain)
}

// authFor picks the credentials of one registry domain from a config.
func authFor(ctx context.Context, cfg *dockerConfig, domain string) (*registry.AuthConfig, error) {
	keys := []string{domain, "https://" + domain, "http://" + domain, "https://" + domain + "/v1/", "https://" + domain + "/v2/"}
	if domain == "docker.io" {
		keys = dockerHubKeys
	}
	helper := cfg.CredHelpers[domain]
	if helper == "" {
		helper = cfg.CredsStore
	}
	if helper != "" {
		for _, k := range keys {
			a, err := fromHelper(ctx, helper, k)
			if err != nil {
				return nil, err
			}
			if a != nil {
				return a, nil
			}
		}
	}
	for _, k := range keys {
		e, ok := cfg.Auths[k]
		if !ok {
			continue
		}
		a := &registry.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, ServerAddress: domain}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("auths[%q]: bad base64: %w", k, err)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("auths[%q]: auth is not user:password", k)
			}
			a.Username, a.Password = user, pass
		}
		if a.Username == "" && a.Password == "" && a.IdentityToken == "" {
			continue
		}
		return a, nil
	}
	return nil, nil
}

// fromHelper asks docker-credential-<helper> for the credentials of
// server; nil when it has none.
func fromHelper(ctx context.Context, helper, server string) (*registry.AuthConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return nil, nil
		}
		return nil, fmt.Errorf("credential helper %s: %w: %s", helper, err, msg)
	}
	var out struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("credential helper %s: %w", helper, err)
	}
	if out.Secret == "" {
		return nil, nil
	}
	a := &registry.AuthConfig{ServerAddress: server}
	if out.Username == "<token>" {
		a.IdentityToken = out.Secret
	} else {
		a.Username, a.Password = out.Username, out.Secret
	}
	return a, nil
}
