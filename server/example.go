package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/control"
	"github.com/sagehost/sagehost/modelserver/xgboost/example"
)

// exampleBody is the sample row the printed command sends: 120 m², 3
// bedrooms, 15 years old, 8.5 km from the centre.
func exampleBody() string { return strings.TrimSpace(example.SampleCSV) }

// Example resource names, created by `sagehost serve --example`.
const (
	ExampleEndpoint = "example"
	exampleRegion   = "us-east-1"
)

// createExample deploys the example XGBoost model (a house-price
// regression shipped in the binary) on the built-in XGBoost server as
// endpoint "example" in the account of the first accepted key, unless it
// already exists.
func (s *Server) createExample(ctx context.Context, svc *control.Service, account string) error {
	c := sagehost.Caller{Account: account, Region: exampleRegion}
	archive := filepath.Join(s.cfg.DataDir, "examples", "xgboost", "model.tar.gz")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		return fmt.Errorf("write the example model: %w", err)
	}
	if old, err := os.ReadFile(archive); err != nil || !bytes.Equal(old, example.ModelTarGz) {
		if err := os.WriteFile(archive, example.ModelTarGz, 0o644); err != nil {
			return fmt.Errorf("write the example model: %w", err)
		}
	}
	if _, err := s.store.Get(ctx, sagehost.KindEndpoint, account, exampleRegion, ExampleEndpoint); err == nil {
		s.log.Info("the example endpoint exists already", "endpoint", ExampleEndpoint)
		return nil
	} else if !errors.Is(err, sagehost.ErrNotFound) {
		return err
	}
	steps := []func() error{
		func() error {
			in := &control.CreateModelInput{ModelName: "example-model", ModelSpec: sagehost.ModelSpec{
				PrimaryContainer: &sagehost.ContainerDefinition{Image: "sagehost/xgboost", ModelDataUrl: "file://" + archive},
			}}
			doc, _ := json.Marshal(in.ModelSpec)
			in.SetRaw(doc)
			_, err := svc.CreateModel(ctx, c, in)
			return err
		},
		func() error {
			count, weight := 1, 1.0
			in := &control.CreateEndpointConfigInput{EndpointConfigName: "example-config", EndpointConfigSpec: sagehost.EndpointConfigSpec{
				ProductionVariants: []sagehost.ProductionVariant{{VariantName: "AllTraffic", ModelName: "example-model",
					InitialInstanceCount: &count, InstanceType: "ml.m5.large", InitialVariantWeight: &weight}},
			}}
			doc, _ := json.Marshal(in.EndpointConfigSpec)
			in.SetRaw(doc)
			_, err := svc.CreateEndpointConfig(ctx, c, in)
			return err
		},
		func() error {
			_, err := svc.CreateEndpoint(ctx, c, &control.CreateEndpointInput{EndpointName: ExampleEndpoint, EndpointConfigName: "example-config"})
			return err
		},
	}
	for _, step := range steps {
		// A model or config left by an earlier --example run is reused.
		if err := step(); err != nil && !errors.Is(err, sagehost.ErrAlreadyExists) {
			return fmt.Errorf("create the example endpoint: %w", err)
		}
	}
	return nil
}
