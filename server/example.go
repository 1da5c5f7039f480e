package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/control"
)

// Example resource names, created by `sagehost serve --example`.
const (
	ExampleEndpoint = "example"
	exampleRegion   = "us-east-1"
)

// createExample deploys the built-in example model as endpoint "example" in
// the account of the first accepted key, unless it already exists.
func (s *Server) createExample(ctx context.Context, svc *control.Service, account string) error {
	c := sagehost.Caller{Account: account, Region: exampleRegion}
	if _, err := s.store.Get(ctx, sagehost.KindEndpoint, account, exampleRegion, ExampleEndpoint); err == nil {
		s.log.Info("the example endpoint exists already", "endpoint", ExampleEndpoint)
		return nil
	} else if !errors.Is(err, sagehost.ErrNotFound) {
		return err
	}
	steps := []func() error{
		func() error {
			in := &control.CreateModelInput{ModelName: "example-model", ModelSpec: sagehost.ModelSpec{
				PrimaryContainer: &sagehost.ContainerDefinition{Image: "sagehost/example", Environment: map[string]string{"TESTMODEL_NAME": "example"}},
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
		if err := step(); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("create the example endpoint: %w", err)
		}
	}
	return nil
}

func isAlreadyExists(err error) bool {
	var e *sagehost.Error
	return errors.As(err, &e) && e.Code == sagehost.CodeValidationException && len(e.Message) > 30 && e.Message[:30] == "Cannot create already existing"
}
