package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/clarify"
)

// CreateEndpointInput is CreateEndpoint's request.
type CreateEndpointInput struct {
	EndpointName       string          `json:"EndpointName"`
	EndpointConfigName string          `json:"EndpointConfigName"`
	DeploymentConfig   json.RawMessage `json:"DeploymentConfig"`
	Tags               []sagehost.Tag  `json:"Tags"`
}

// EndpointArnOutput is the response of CreateEndpoint, UpdateEndpoint and
// UpdateEndpointWeightsAndCapacities.
type EndpointArnOutput struct {
	EndpointArn string `json:"EndpointArn"`
}

func endpointNotFound(c sagehost.Caller, name string) error {
	return validation("Could not find endpoint %q.", c.ARN(sagehost.KindEndpoint, name))
}

// newDeployment snapshots an endpoint config and the models it names.
func (s *Service) newDeployment(ctx context.Context, c sagehost.Caller, configName string) (*sagehost.Deployment, error) {
	cfgRec, err := s.getEndpointConfig(ctx, c, configName)
	if err != nil {
		return nil, err
	}
	spec, err := decodeEndpointConfig(cfgRec)
	if err != nil {
		return nil, err
	}
	if len(spec.ExplainerConfig) > 0 {
		// An explainer whose JMESPath or baseline settings are invalid
		// fails CreateEndpoint, as on SageMaker.
		if _, err := clarify.ParseConfig(spec.ExplainerConfig); err != nil {
			return nil, validation("Endpoint configuration %q has an invalid ExplainerConfig: %v", cfgRec.Name, err)
		}
	}
	d := &sagehost.Deployment{
		ID:         newID(8),
		ConfigName: cfgRec.Name,
		Config:     *spec,
		ConfigDoc:  cfgRec.Doc,
		Models:     map[string]sagehost.ModelSpec{},
		StartTime:  s.now(),
	}
	firstShadow := len(spec.ProductionVariants)
	for i, v := range append(append([]sagehost.ProductionVariant{}, spec.ProductionVariants...), spec.ShadowProductionVariants...) {
		if v.ModelName != "" {
			if _, ok := d.Models[v.ModelName]; !ok {
				_, m, err := s.loadModel(ctx, c, v.ModelName)
				if err != nil {
					return nil, err
				}
				d.Models[v.ModelName] = *m
			}
		}
		d.Variants = append(d.Variants, sagehost.VariantState{
			VariantName:          v.VariantName,
			ModelName:            v.ModelName,
			InstanceType:         v.InstanceType,
			DesiredInstanceCount: v.InstanceCount(),
			DesiredWeight:        v.Weight(),
			Serverless:           v.ServerlessConfig != nil,
			Shadow:               i >= firstShadow,
		})
	}
	return d, nil
}

// EncodeEndpointState stores st as rec's document.
func EncodeEndpointState(rec *sagehost.Record, st *sagehost.EndpointState) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode endpoint state: %w", err)
	}
	rec.Doc = doc
	return nil
}

// DecodeEndpointState decodes an endpoint record's document.
func DecodeEndpointState(rec *sagehost.Record) (*sagehost.EndpointState, error) {
	var st sagehost.EndpointState
	if err := json.Unmarshal(rec.Doc, &st); err != nil {
		return nil, fmt.Errorf("decode endpoint %s: %w", rec.Name, err)
	}
	return &st, nil
}

// CreateEndpoint records an endpoint in status Creating and hands it to the
// reconciler, which starts its instances in the background.
func (s *Service) CreateEndpoint(ctx context.Context, c sagehost.Caller, in *CreateEndpointInput) (*EndpointArnOutput, error) {
	arn := c.ARN(sagehost.KindEndpoint, in.EndpointName)
	if _, err := s.Store.Get(ctx, sagehost.KindEndpoint, c.Account, c.Region, in.EndpointName); err == nil {
		return nil, alreadyExists("endpoint", arn)
	} else if !errors.Is(err, sagehost.ErrNotFound) {
		return nil, storeErr("get endpoint", err)
	}
	d, err := s.newDeployment(ctx, c, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	st := &sagehost.EndpointState{
		EndpointConfigName:   d.ConfigName,
		LastDeploymentConfig: in.DeploymentConfig,
		Pending:              d,
	}
	now := s.now()
	rec := &sagehost.Record{
		Kind: sagehost.KindEndpoint, Account: c.Account, Region: c.Region, Name: in.EndpointName, ARN: arn,
		CreationTime: now, LastModifiedTime: now, Status: sagehost.StatusCreating,
	}
	if err := EncodeEndpointState(rec, st); err != nil {
		return nil, err
	}
	if err := s.Store.Create(ctx, rec, in.Tags); errors.Is(err, sagehost.ErrAlreadyExists) {
		return nil, alreadyExists("endpoint", arn)
	} else if err != nil {
		return nil, storeErr("create endpoint", err)
	}
	s.notify(sagehost.EndpointKey{Account: c.Account, Region: c.Region, Name: rec.Name})
	return &EndpointArnOutput{EndpointArn: arn}, nil
}

// EndpointNameInput is the request of DescribeEndpoint and DeleteEndpoint.
type EndpointNameInput struct {
	EndpointName string `json:"EndpointName"`
}

func (s *Service) getEndpoint(ctx context.Context, c sagehost.Caller, name string) (*sagehost.Record, *sagehost.EndpointState, error) {
	rec, err := s.Store.Get(ctx, sagehost.KindEndpoint, c.Account, c.Region, name)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, nil, endpointNotFound(c, name)
	} else if err != nil {
		return nil, nil, storeErr("get endpoint", err)
	}
	st, err := DecodeEndpointState(rec)
	if err != nil {
		return nil, nil, err
	}
	return rec, st, nil
}

// DescribeEndpoint reports an endpoint's status and its variants' current and
// desired weights and instance counts.
func (s *Service) DescribeEndpoint(ctx context.Context, c sagehost.Caller, in *EndpointNameInput) (map[string]any, error) {
	rec, st, err := s.getEndpoint(ctx, c, in.EndpointName)
	if err != nil {
		return nil, err
	}
	return DescribeEndpointOutput(rec, st), nil
}

// DescribeEndpointOutput builds DescribeEndpoint's response from a record.
func DescribeEndpointOutput(rec *sagehost.Record, st *sagehost.EndpointState) map[string]any {
	out := map[string]any{
		"EndpointName":       rec.Name,
		"EndpointArn":        rec.ARN,
		"EndpointConfigName": st.EndpointConfigName,
		"EndpointStatus":     rec.Status,
		"CreationTime":       Time(rec.CreationTime),
		"LastModifiedTime":   Time(rec.LastModifiedTime),
	}
	if st.FailureReason != "" {
		out["FailureReason"] = st.FailureReason
	}
	if len(st.LastDeploymentConfig) > 0 && string(st.LastDeploymentConfig) != "null" {
		out["LastDeploymentConfig"] = st.LastDeploymentConfig
	}
	shown := st.Serving
	if shown == nil {
		shown = st.Pending
	}
	if shown != nil {
		creating := st.Serving == nil
		variants, shadows := variantSummaries(shown, func(v *sagehost.VariantState) map[string]any {
			return variantSummary(shown, v, creating, rec.Status)
		})
		out["ProductionVariants"] = variants
		if len(shadows) > 0 {
			out["ShadowProductionVariants"] = shadows
		}
		cfg := shown.Config
		if len(cfg.DataCaptureConfig) > 0 {
			out["DataCaptureConfig"] = dataCaptureSummary(cfg.DataCaptureConfig)
		}
		if len(cfg.AsyncInferenceConfig) > 0 {
			out["AsyncInferenceConfig"] = cfg.AsyncInferenceConfig
		}
		if len(cfg.ExplainerConfig) > 0 {
			out["ExplainerConfig"] = cfg.ExplainerConfig
		}
	}
	if st.Serving != nil && st.Pending != nil {
		pending, shadows := variantSummaries(st.Pending, func(v *sagehost.VariantState) map[string]any {
			m := variantSummary(st.Pending, v, true, sagehost.StatusUpdating)
			if v.InstanceType != "" {
				m["InstanceType"] = v.InstanceType
			}
			return m
		})
		summary := map[string]any{
			"EndpointConfigName": st.Pending.ConfigName,
			"ProductionVariants": pending,
			"StartTime":          Time(st.Pending.StartTime),
		}
		if len(shadows) > 0 {
			summary["ShadowProductionVariants"] = shadows
		}
		out["PendingDeploymentSummary"] = summary
	}
	return out
}

// variantSummaries describes a deployment's production and shadow variants.
func variantSummaries(d *sagehost.Deployment, describe func(*sagehost.VariantState) map[string]any) (production, shadows []map[string]any) {
	for i := range d.Variants {
		if v := &d.Variants[i]; v.Shadow {
			shadows = append(shadows, describe(v))
		} else {
			production = append(production, describe(v))
		}
	}
	return production, shadows
}

func variantSummary(d *sagehost.Deployment, v *sagehost.VariantState, creating bool, status string) map[string]any {
	m := map[string]any{
		"VariantName":          v.VariantName,
		"CurrentWeight":        v.CurrentWeight,
		"DesiredWeight":        v.DesiredWeight,
		"CurrentInstanceCount": v.CurrentInstanceCount,
		"DesiredInstanceCount": v.DesiredInstanceCount,
	}
	if model, ok := d.Models[v.ModelName]; ok {
		var images []map[string]any
		for _, c := range model.ContainerList() {
			images = append(images, map[string]any{
				"SpecifiedImage": c.Image,
				"ResolvedImage":  c.Image,
				"ResolutionTime": Time(d.StartTime),
			})
		}
		m["DeployedImages"] = images
	}
	if pv := d.Config.Variant(v.VariantName); pv != nil {
		if pv.ServerlessConfig != nil {
			m["CurrentServerlessConfig"] = pv.ServerlessConfig
			m["DesiredServerlessConfig"] = pv.ServerlessConfig
		}
		if pv.RoutingConfig != nil {
			m["RoutingConfig"] = pv.RoutingConfig
		}
	}
	switch {
	case creating:
		m["VariantStatus"] = []map[string]any{{"Status": "Creating", "StartTime": Time(d.StartTime)}}
	case status == sagehost.StatusUpdating && (v.CurrentInstanceCount != v.DesiredInstanceCount || v.CurrentWeight != v.DesiredWeight):
		m["VariantStatus"] = []map[string]any{{"Status": "Updating", "StartTime": Time(d.StartTime)}}
	}
	return m
}

func dataCaptureSummary(raw json.RawMessage) map[string]any {
	var dc struct {
		EnableCapture             *bool  `json:"EnableCapture"`
		InitialSamplingPercentage int    `json:"InitialSamplingPercentage"`
		DestinationS3Uri          string `json:"DestinationS3Uri"`
		KmsKeyId                  string `json:"KmsKeyId"`
	}
	_ = json.Unmarshal(raw, &dc) // validated when the config was created
	enabled := dc.EnableCapture == nil || *dc.EnableCapture
	status := "Stopped"
	if enabled {
		status = "Started"
	}
	m := map[string]any{
		"EnableCapture":             enabled,
		"CaptureStatus":             status,
		"CurrentSamplingPercentage": dc.InitialSamplingPercentage,
		"DestinationS3Uri":          dc.DestinationS3Uri,
	}
	if dc.KmsKeyId != "" {
		m["KmsKeyId"] = dc.KmsKeyId
	}
	return m
}

// DeleteEndpoint marks an endpoint Deleting; the reconciler stops its
// instances and removes it.
func (s *Service) DeleteEndpoint(ctx context.Context, c sagehost.Caller, in *EndpointNameInput) (*struct{}, error) {
	if rec, err := s.Store.Get(ctx, sagehost.KindEndpoint, c.Account, c.Region, in.EndpointName); err == nil {
		if err := s.checkEndpointHasNoComponents(ctx, c, rec); err != nil {
			return nil, err
		}
	}
	rec, err := s.Store.Update(ctx, sagehost.KindEndpoint, c.Account, c.Region, in.EndpointName, func(r *sagehost.Record) error {
		r.Status = sagehost.StatusDeleting
		r.LastModifiedTime = s.now()
		return nil
	})
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, endpointNotFound(c, in.EndpointName)
	} else if err != nil {
		return nil, storeErr("delete endpoint", err)
	}
	s.notify(sagehost.EndpointKey{Account: c.Account, Region: c.Region, Name: rec.Name})
	return &struct{}{}, nil
}

// EndpointSummary is one entry of ListEndpoints.
type EndpointSummary struct {
	EndpointName     string `json:"EndpointName"`
	EndpointArn      string `json:"EndpointArn"`
	CreationTime     Time   `json:"CreationTime"`
	LastModifiedTime Time   `json:"LastModifiedTime"`
	EndpointStatus   string `json:"EndpointStatus"`
}

// ListEndpointsOutput is ListEndpoints' response.
type ListEndpointsOutput struct {
	Endpoints []EndpointSummary `json:"Endpoints"`
	NextToken string            `json:"NextToken,omitempty"`
}

// ListEndpoints lists the caller's endpoints.
func (s *Service) ListEndpoints(ctx context.Context, c sagehost.Caller, in *ListInput) (*ListEndpointsOutput, error) {
	recs, err := s.Store.List(ctx, sagehost.KindEndpoint, c.Account, c.Region)
	if err != nil {
		return nil, storeErr("list endpoints", err)
	}
	recs, next, err := page(recs, in, 10)
	if err != nil {
		return nil, err
	}
	out := &ListEndpointsOutput{Endpoints: []EndpointSummary{}, NextToken: next}
	for _, r := range recs {
		out.Endpoints = append(out.Endpoints, EndpointSummary{
			EndpointName: r.Name, EndpointArn: r.ARN, CreationTime: Time(r.CreationTime),
			LastModifiedTime: Time(r.LastModifiedTime), EndpointStatus: r.Status,
		})
	}
	return out, nil
}

// checkUpdatable returns the error SageMaker gives for changing a resource
// (an endpoint or an inference component, as noun names it) that is not
// InService.
func checkUpdatable(rec *sagehost.Record, noun string) error {
	switch rec.Status {
	case sagehost.StatusInService:
		return nil
	case sagehost.StatusFailed:
		return validation("Cannot update %s %q because it is in Failed state. Delete the %s and create it again.", noun, rec.ARN, noun)
	default:
		return validation("Cannot update in-progress %s %q.", noun, rec.ARN)
	}
}

// UpdateEndpointInput is UpdateEndpoint's request.
type UpdateEndpointInput struct {
	EndpointName                     string `json:"EndpointName"`
	EndpointConfigName               string `json:"EndpointConfigName"`
	RetainAllVariantProperties       bool   `json:"RetainAllVariantProperties"`
	ExcludeRetainedVariantProperties []struct {
		VariantPropertyType string `json:"VariantPropertyType"`
	} `json:"ExcludeRetainedVariantProperties"`
	DeploymentConfig       json.RawMessage `json:"DeploymentConfig"`
	RetainDeploymentConfig bool            `json:"RetainDeploymentConfig"`
}

// UpdateEndpoint starts a blue/green deployment of a new endpoint config: the
// new fleet becomes healthy before traffic moves to it.
func (s *Service) UpdateEndpoint(ctx context.Context, c sagehost.Caller, in *UpdateEndpointInput) (*EndpointArnOutput, error) {
	if _, _, err := s.getEndpoint(ctx, c, in.EndpointName); err != nil {
		return nil, err
	}
	d, err := s.newDeployment(ctx, c, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	excluded := map[string]bool{}
	for _, e := range in.ExcludeRetainedVariantProperties {
		if e.VariantPropertyType == "DataCaptureConfig" {
			return nil, validation("Excluding DataCaptureConfig from the retained variant properties is not currently supported.")
		}
		excluded[e.VariantPropertyType] = true
	}
	return s.updateEndpoint(ctx, c, in.EndpointName, "update endpoint", func(r *sagehost.Record, st *sagehost.EndpointState) error {
		if in.RetainAllVariantProperties && st.Serving != nil {
			for i := range d.Variants {
				old := st.Serving.Variant(d.Variants[i].VariantName)
				if old == nil {
					continue
				}
				if !excluded["DesiredWeight"] {
					d.Variants[i].DesiredWeight = old.DesiredWeight
				}
				if !excluded["DesiredInstanceCount"] {
					d.Variants[i].DesiredInstanceCount = old.DesiredInstanceCount
				}
			}
		}
		st.Pending = d
		st.FailureReason = ""
		if !in.RetainDeploymentConfig {
			st.LastDeploymentConfig = in.DeploymentConfig
		}
		return nil
	})
}

// UpdateEndpointWeightsAndCapacitiesInput is the request of
// UpdateEndpointWeightsAndCapacities.
type UpdateEndpointWeightsAndCapacitiesInput struct {
	EndpointName                string `json:"EndpointName"`
	DesiredWeightsAndCapacities []struct {
		VariantName          string   `json:"VariantName"`
		DesiredWeight        *float64 `json:"DesiredWeight"`
		DesiredInstanceCount *int     `json:"DesiredInstanceCount"`
	} `json:"DesiredWeightsAndCapacities"`
}

// UpdateEndpointWeightsAndCapacities changes variant weights and instance
// counts of a running endpoint in place.
func (s *Service) UpdateEndpointWeightsAndCapacities(ctx context.Context, c sagehost.Caller, in *UpdateEndpointWeightsAndCapacitiesInput) (*EndpointArnOutput, error) {
	return s.updateEndpoint(ctx, c, in.EndpointName, "update endpoint weights and capacities", func(r *sagehost.Record, st *sagehost.EndpointState) error {
		if st.Serving == nil {
			return validation("Cannot update in-progress endpoint %q.", r.ARN)
		}
		seen := map[string]bool{}
		var missing []string
		for _, w := range in.DesiredWeightsAndCapacities {
			if seen[w.VariantName] {
				return validation("The variant name %q was non-unique within the request.", w.VariantName)
			}
			seen[w.VariantName] = true
			v := st.Serving.Variant(w.VariantName)
			if v == nil {
				missing = append(missing, w.VariantName)
				continue
			}
			if w.DesiredWeight != nil {
				v.DesiredWeight = *w.DesiredWeight
			}
			if w.DesiredInstanceCount != nil {
				if v.Serverless {
					return validation("Variant %q is serverless: use ServerlessUpdateConfig, not DesiredInstanceCount.", w.VariantName)
				}
				v.DesiredInstanceCount = *w.DesiredInstanceCount
			}
		}
		if len(missing) > 0 {
			return validation("The variant name(s) %q is/are not present within endpoint configuration %q.",
				strings.Join(missing, ", "), st.Serving.ConfigName)
		}
		var total float64
		for _, v := range st.Serving.Variants {
			if !v.Shadow {
				total += v.DesiredWeight
			}
		}
		if total <= 0 {
			return validation("The sum of the desired weights of the variants must be greater than 0.")
		}
		return nil
	})
}

// updateEndpoint applies a change to an InService endpoint in one store
// transaction, marks it Updating and tells the reconciler.
func (s *Service) updateEndpoint(ctx context.Context, c sagehost.Caller, name, op string, change func(*sagehost.Record, *sagehost.EndpointState) error) (*EndpointArnOutput, error) {
	rec, err := s.Store.Update(ctx, sagehost.KindEndpoint, c.Account, c.Region, name, func(r *sagehost.Record) error {
		if err := checkUpdatable(r, "endpoint"); err != nil {
			return err
		}
		st, err := DecodeEndpointState(r)
		if err != nil {
			return err
		}
		if err := change(r, st); err != nil {
			return err
		}
		r.Status = sagehost.StatusUpdating
		r.LastModifiedTime = s.now()
		return EncodeEndpointState(r, st)
	})
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, endpointNotFound(c, name)
	} else if err != nil {
		return nil, storeErr(op, err)
	}
	s.notify(sagehost.EndpointKey{Account: c.Account, Region: c.Region, Name: rec.Name})
	return &EndpointArnOutput{EndpointArn: rec.ARN}, nil
}
