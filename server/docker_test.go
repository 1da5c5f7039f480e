package server_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/sagehost/sagehost/backend/docker"
)

var (
	engineOnce  sync.Once
	engineImage string
	engineSkip  string
)

// exampleImage returns the example model server's image on the container
// engine, building it once, or skips the test without an engine (unless
// SAGEHOST_REQUIRE_ENGINE=1, as CI sets).
func exampleImage(t *testing.T) string {
	t.Helper()
	engineOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir, _ := os.MkdirTemp("", "sagehost-server-engine-")
		defer os.RemoveAll(dir)
		b, err := docker.New(ctx, docker.Config{StateDir: filepath.Join(dir, "state")})
		if err == nil {
			defer b.Close()
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err = b.Available(pctx)
			pcancel()
		}
		if err != nil {
			engineSkip = "no container engine reachable (run `. .ci/podman.sh` or start Docker): " + err.Error()
			return
		}
		if engineImage, err = docker.BuildExampleImage(ctx, b, dir); err != nil {
			engineSkip = "cannot build the example image: " + err.Error()
		}
	})
	if engineSkip != "" {
		if os.Getenv("SAGEHOST_REQUIRE_ENGINE") == "1" {
			t.Fatal(engineSkip)
		}
		t.Skip(engineSkip)
	}
	return engineImage
}

func TestEndpointsOnContainers(t *testing.T) {
	t.Parallel()
	image := exampleImage(t)
	dir := t.TempDir()
	srv := startServer(t, dir)
	c := newClients(srv, keyA)
	ctx := ctxT(t)

	archive := filepath.Join(t.TempDir(), "model.tar.gz")
	os.WriteFile(archive, modelArchive(t, map[string]string{"weights.bin": "w"}), 0o644)
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("ctr"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image: aws.String(image), ModelDataUrl: aws.String("file://" + archive), Environment: map[string]string{"TESTMODEL_NAME": "in-a-container"},
	}}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, "ctr", variantSpec{"AllTraffic", "ctr", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ctr"), EndpointConfigName: aws.String("ctr")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "ctr")
	_, r := invokeName(t, c, "ctr", nil)
	if r.Name != "in-a-container" || !slices.Equal(r.ModelFiles, []string{"weights.bin"}) || r.Env["SAGEMAKER_BIND_TO_PORT"] != "8080" {
		t.Fatalf("container report: name %q files %v env %v", r.Name, r.ModelFiles, r.Env)
	}
	first := r.Hostname

	// A clean stop of sagehost leaves the container serving; the next
	// sagehost adopts it: same container, still InService, no call needed.
	closeServer(t, srv)
	srv2 := startServer(t, dir)
	c2 := newClients(srv2, keyA)
	eventually(t, "the adopted container answers", func() bool {
		_, err := c2.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ctr"), Body: []byte("{}"), ContentType: aws.String("application/json")})
		return err == nil
	})
	if _, r := invokeName(t, c2, "ctr", nil); r.Hostname != first {
		t.Fatalf("after the restart container %q answered, want the adopted %q", r.Hostname, first)
	}

	// A container that crashes is replaced.
	_, err := c2.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ctr"),
		ContentType: aws.String("application/json"), Body: []byte(`{"testmodel":{"crash":true}}`)})
	apiErr(t, err, "ModelError")
	eventually(t, "the container is back", func() bool {
		_, err := c2.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ctr"), Body: []byte("{}"), ContentType: aws.String("application/json")})
		return err == nil
	})

	// A missing image fails the endpoint with the engine's message.
	if _, err := c2.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("ghost"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image: aws.String("localhost/sagehost-does-not-exist:1"),
	}}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c2, "ghost", variantSpec{"AllTraffic", "ghost", 1, 1})
	if _, err := c2.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ghost"), EndpointConfigName: aws.String("ghost")}); err != nil {
		t.Fatal(err)
	}
	d := waitStatus(t, c2, "ghost", smtypes.EndpointStatusFailed)
	if reason := aws.ToString(d.FailureReason); !strings.Contains(reason, "localhost/sagehost-does-not-exist:1") {
		t.Fatalf("FailureReason %q", reason)
	}

	// Deleting the endpoint removes its container.
	if _, err := c2.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ctr")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ctr deleted", func() bool {
		_, err := c2.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ctr")})
		return err != nil
	})
}

func TestContainerImageWithoutAnEngineFailsClearly(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", func(cfg *serverConfig) { cfg.DockerHost = "unix://" + filepath.Join(t.TempDir(), "no-engine.sock") })
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	// CreateModel of an image is accepted, as on SageMaker ...
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("img"), PrimaryContainer: &smtypes.ContainerDefinition{
		Image: aws.String("registry.example.com/team/model:1.0"),
	}}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, "img", variantSpec{"AllTraffic", "img", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("img"), EndpointConfigName: aws.String("img")}); err != nil {
		t.Fatal(err)
	}
	// ... and the endpoint fails saying the engine is out of reach.
	d := waitStatus(t, c, "img", smtypes.EndpointStatusFailed)
	if reason := aws.ToString(d.FailureReason); !strings.Contains(reason, "no-engine.sock") {
		t.Fatalf("FailureReason %q", reason)
	}
}
