package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
)

// probeSource is a tiny static program baked into the test image next to
// the model, run with exec inside a container to look at it from within.
const probeSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Println("usage: probe write|ls PATH")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "write":
		if err := os.WriteFile(os.Args[2], []byte("x"), 0o644); err != nil {
			fmt.Println("write-error:", err)
			os.Exit(1)
		}
		fmt.Println("write-ok")
	case "ls":
		entries, err := os.ReadDir(os.Args[2])
		if err != nil {
			fmt.Println("ls-error:", err)
			os.Exit(1)
		}
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	}
}
`

// BuildExampleImage builds sagehost's example model server
// (examples/model-server) as a static binary, with a small probe program
// for looking at a container from inside (`/probe ls DIR`, `/probe write
// FILE`), into an image FROM scratch whose entrypoint is the model server,
// tagged by content as localhost/sagehost-testmodel:HASH, unless the engine
// has it already. It needs the Go toolchain and the sagehost module, and
// serves tests: no registry can be reached from them.
func BuildExampleImage(ctx context.Context, b *Backend, dir string) (string, error) {
	cli := b.cli
	model := filepath.Join(dir, "model")
	if err := goBuild(ctx, "", model, "github.com/sagehost/sagehost/examples/model-server"); err != nil {
		return "", err
	}
	probeDir := filepath.Join(dir, "probe-src")
	os.MkdirAll(probeDir, 0o755)
	os.WriteFile(filepath.Join(probeDir, "go.mod"), []byte("module probe\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(probeDir, "main.go"), []byte(probeSource), 0o644)
	probe := filepath.Join(dir, "probe")
	if err := goBuild(ctx, probeDir, probe, "."); err != nil {
		return "", err
	}
	dockerfile := "FROM scratch\nCOPY model /model\nCOPY probe /probe\nENTRYPOINT [\"/model\"]\n"
	names := []string{"model", "probe"}
	files := map[string][]byte{}
	h := sha256.New()
	io.WriteString(h, dockerfile)
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		files[name] = b
		h.Write(b)
	}
	ref := "localhost/sagehost-testmodel:" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	for _, name := range names {
		if err := add(name, files[name], 0o755); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return "", fmt.Errorf("image build: %w", err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	if err := readStream(resp.Body, &out); err != nil {
		return "", fmt.Errorf("image build: %w\n%s", err, out.String())
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("image %s missing after the build: %w\n%s", ref, err, out.String())
	}
	return ref, nil
}

// goBuild builds a static binary of pkg (run in dir, "" for here).
func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if dir != "" {
		cmd.Env = append(cmd.Env, "GOWORK=off", "GOFLAGS=-mod=mod")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
