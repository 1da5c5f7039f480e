package control

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/capture"
)

// CreateEndpointConfigInput is CreateEndpointConfig's request.
type CreateEndpointConfigInput struct {
	Raw
	EndpointConfigName string `json:"EndpointConfigName"`
	sagehost.EndpointConfigSpec
	Tags []sagehost.Tag `json:"Tags"`
}

// CreateEndpointConfigOutput is CreateEndpointConfig's response.
type CreateEndpointConfigOutput struct {
	EndpointConfigArn string `json:"EndpointConfigArn"`
}

// CreateEndpointConfig stores an endpoint config after checking that the
// models it names exist.
func (s *Service) CreateEndpointConfig(ctx context.Context, c sagehost.Caller, in *CreateEndpointConfigInput) (*CreateEndpointConfigOutput, error) {
	if err := s.checkEndpointConfig(ctx, c, &in.EndpointConfigSpec); err != nil {
		return nil, err
	}
	doc, err := stripMembers(in.Doc, "EndpointConfigName", "Tags")
	if err != nil {
		return nil, err
	}
	now := s.now()
	rec := &sagehost.Record{
		Kind: sagehost.KindEndpointConfig, Account: c.Account, Region: c.Region, Name: in.EndpointConfigName,
		ARN:          c.ARN(sagehost.KindEndpointConfig, in.EndpointConfigName),
		CreationTime: now, LastModifiedTime: now, Doc: doc,
	}
	if err := s.Store.Create(ctx, rec, in.Tags); errors.Is(err, sagehost.ErrAlreadyExists) {
		return nil, alreadyExists("endpoint configuration", rec.ARN)
	} else if err != nil {
		return nil, storeErr("create endpoint config", err)
	}
	return &CreateEndpointConfigOutput{EndpointConfigArn: rec.ARN}, nil
}

func (s *Service) checkEndpointConfig(ctx context.Context, c sagehost.Caller, spec *sagehost.EndpointConfigSpec) error {
	if len(spec.DataCaptureConfig) > 0 {
		var dc struct {
			DestinationS3Uri string `json:"DestinationS3Uri"`
		}
		if json.Unmarshal(spec.DataCaptureConfig, &dc) == nil && dc.DestinationS3Uri != "" {
			if err := capture.CheckDestination(dc.DestinationS3Uri); err != nil {
				return validation("DataCaptureConfig.DestinationS3Uri %q: %v", dc.DestinationS3Uri, err)
			}
		}
	}
	seen := map[string]bool{}
	all := append(append([]sagehost.ProductionVariant{}, spec.ProductionVariants...), spec.ShadowProductionVariants...)
	var weights float64
	for _, v := range spec.ProductionVariants {
		weights += v.Weight()
	}
	if weights <= 0 && len(spec.ProductionVariants) > 0 {
		return validation("The sum of the InitialVariantWeight values of the production variants must be greater than 0.")
	}
	if len(spec.ShadowProductionVariants) > 0 && (len(spec.ShadowProductionVariants) != 1 || len(spec.ProductionVariants) != 1) {
		return validation("An endpoint configuration with shadow variants must have exactly one production variant and one shadow variant.")
	}
	for _, v := range all {
		if seen[v.VariantName] {
			return validation("The variant name %q was non-unique within the request.", v.VariantName)
		}
		seen[v.VariantName] = true
		serverless := v.ServerlessConfig != nil
		switch {
		case serverless && (v.InstanceType != "" || v.InitialInstanceCount != nil):
			return validation("Variant %q: specify either ServerlessConfig or InstanceType and InitialInstanceCount, not both.", v.VariantName)
		case !serverless && v.InstanceType == "":
			return validation("Variant %q: InstanceType is required unless ServerlessConfig is specified.", v.VariantName)
		case !serverless && v.ModelName != "" && v.InitialInstanceCount == nil:
			return validation("Variant %q: InitialInstanceCount is required unless ServerlessConfig is specified.", v.VariantName)
		case v.ModelName == "" && serverless:
			return validation("Variant %q: ModelName is required for a serverless variant.", v.VariantName)
		}
		if v.ServerlessConfig != nil && v.ServerlessConfig.ProvisionedConcurrency != nil &&
			*v.ServerlessConfig.ProvisionedConcurrency > v.ServerlessConfig.MaxConcurrency {
			return validation("Variant %q: ProvisionedConcurrency must be less than or equal to MaxConcurrency.", v.VariantName)
		}
		if v.ModelName == "" {
			if spec.ExecutionRoleArn == "" {
				return validation("Variant %q has no ModelName. Endpoint configurations for inference components must specify ExecutionRoleArn.", v.VariantName)
			}
			continue
		}
		if _, err := s.getModel(ctx, c, v.ModelName); err != nil {
			return err
		}
	}
	return nil
}

// EndpointConfigNameInput is the request of DescribeEndpointConfig and
// DeleteEndpointConfig.
type EndpointConfigNameInput struct {
	EndpointConfigName string `json:"EndpointConfigName"`
}

func (s *Service) getEndpointConfig(ctx context.Context, c sagehost.Caller, name string) (*sagehost.Record, error) {
	rec, err := s.Store.Get(ctx, sagehost.KindEndpointConfig, c.Account, c.Region, name)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, validation("Could not find endpoint configuration %q.", c.ARN(sagehost.KindEndpointConfig, name))
	}
	return rec, storeErr("get endpoint config", err)
}

// DescribeEndpointConfig returns an endpoint config with every member it was
// created with.
func (s *Service) DescribeEndpointConfig(ctx context.Context, c sagehost.Caller, in *EndpointConfigNameInput) (map[string]any, error) {
	rec, err := s.getEndpointConfig(ctx, c, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	return describeDoc(rec.Doc, map[string]any{
		"EndpointConfigName": rec.Name,
		"EndpointConfigArn":  rec.ARN,
		"CreationTime":       Time(rec.CreationTime),
	})
}

// DeleteEndpointConfig removes an endpoint config; endpoints that use it keep
// running from their snapshot.
func (s *Service) DeleteEndpointConfig(ctx context.Context, c sagehost.Caller, in *EndpointConfigNameInput) (*struct{}, error) {
	err := s.Store.Delete(ctx, sagehost.KindEndpointConfig, c.Account, c.Region, in.EndpointConfigName)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, validation("Could not find endpoint configuration %q.", c.ARN(sagehost.KindEndpointConfig, in.EndpointConfigName))
	}
	return &struct{}{}, storeErr("delete endpoint config", err)
}

// EndpointConfigSummary is one entry of ListEndpointConfigs.
type EndpointConfigSummary struct {
	EndpointConfigName string `json:"EndpointConfigName"`
	EndpointConfigArn  string `json:"EndpointConfigArn"`
	CreationTime       Time   `json:"CreationTime"`
}

// ListEndpointConfigsOutput is ListEndpointConfigs' response.
type ListEndpointConfigsOutput struct {
	EndpointConfigs []EndpointConfigSummary `json:"EndpointConfigs"`
	NextToken       string                  `json:"NextToken,omitempty"`
}

// ListEndpointConfigs lists the caller's endpoint configs.
func (s *Service) ListEndpointConfigs(ctx context.Context, c sagehost.Caller, in *ListInput) (*ListEndpointConfigsOutput, error) {
	recs, err := s.Store.List(ctx, sagehost.KindEndpointConfig, c.Account, c.Region)
	if err != nil {
		return nil, storeErr("list endpoint configs", err)
	}
	recs, next, err := page(recs, in, 10)
	if err != nil {
		return nil, err
	}
	out := &ListEndpointConfigsOutput{EndpointConfigs: []EndpointConfigSummary{}, NextToken: next}
	for _, r := range recs {
		out.EndpointConfigs = append(out.EndpointConfigs, EndpointConfigSummary{EndpointConfigName: r.Name, EndpointConfigArn: r.ARN, CreationTime: Time(r.CreationTime)})
	}
	return out, nil
}

func decodeEndpointConfig(rec *sagehost.Record) (*sagehost.EndpointConfigSpec, error) {
	var spec sagehost.EndpointConfigSpec
	if err := json.Unmarshal(rec.Doc, &spec); err != nil {
		return nil, storeErr("decode endpoint config "+rec.Name, err)
	}
	return &spec, nil
}
