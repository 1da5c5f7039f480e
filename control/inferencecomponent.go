package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sagehost/sagehost"
)

// Inference components are models deployed onto an endpoint whose variant
// has no model of its own (a ProductionVariant without ModelName): each
// component reserves CPU cores, accelerators and memory per copy, and runs
// RuntimeConfig.CopyCount copies of its container on the variant's
// instances. The control plane records what a component should run
// (sagehost.InferenceComponentState) and tells the reconciler of the
// endpoint; hosting starts and stops the copies, reports what it observes
// (status, CurrentCopyCount, PlacementStatus, FailureReason) and removes a
// Deleting component with FinishInferenceComponentDeletion.

// CreateInferenceComponentInput is CreateInferenceComponent's request.
type CreateInferenceComponentInput struct {
	Raw
	InferenceComponentName string `json:"InferenceComponentName"`
	EndpointName           string `json:"EndpointName"`
	VariantName            string `json:"VariantName"`
	sagehost.InferenceComponentSpec
	Tags []sagehost.Tag `json:"Tags"`
}

// InferenceComponentArnOutput is the response of CreateInferenceComponent,
// UpdateInferenceComponent and UpdateInferenceComponentRuntimeConfig.
type InferenceComponentArnOutput struct {
	InferenceComponentArn string `json:"InferenceComponentArn"`
}

func inferenceComponentNotFound(c sagehost.Caller, name string) error {
	return validation("Could not find inference component %q.", c.ARN(sagehost.KindInferenceComponent, name))
}

// DecodeInferenceComponentState decodes an inference component record's
// document.
func DecodeInferenceComponentState(rec *sagehost.Record) (*sagehost.InferenceComponentState, error) {
	var st sagehost.InferenceComponentState
	if err := json.Unmarshal(rec.Doc, &st); err != nil {
		return nil, fmt.Errorf("decode inference component %s: %w", rec.Name, err)
	}
	return &st, nil
}

// EncodeInferenceComponentState stores st as rec's document.
func EncodeInferenceComponentState(rec *sagehost.Record, st *sagehost.InferenceComponentState) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode inference component %s: %w", rec.Name, err)
	}
	rec.Doc = doc
	return nil
}

// InferenceComponent is a stored inference component with its decoded
// document.
type InferenceComponent struct {
	Record *sagehost.Record
	State  *sagehost.InferenceComponentState
}

// EndpointInferenceComponents returns the inference components that an
// endpoint hosts, whatever their status, ordered by creation time.
func EndpointInferenceComponents(ctx context.Context, store sagehost.Store, key sagehost.EndpointKey) ([]InferenceComponent, error) {
	recs, err := store.List(ctx, sagehost.KindInferenceComponent, key.Account, key.Region)
	if err != nil {
		return nil, fmt.Errorf("list inference components of endpoint %s: %w", key, err)
	}
	var out []InferenceComponent
	for _, r := range recs {
		st, err := DecodeInferenceComponentState(r)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(st.EndpointName, key.Name) {
			out = append(out, InferenceComponent{Record: r, State: st})
		}
	}
	slices.SortStableFunc(out, func(a, b InferenceComponent) int { return a.Record.CreationTime.Compare(b.Record.CreationTime) })
	return out, nil
}

// FinishInferenceComponentDeletion removes the record (and tags) of a
// Deleting inference component; hosting calls it once the component's
// copies are gone. A component that is not Deleting is left alone (an
// error), one that is already gone is not an error.
func FinishInferenceComponentDeletion(ctx context.Context, store sagehost.Store, rec *sagehost.Record) error {
	cur, err := store.Get(ctx, sagehost.KindInferenceComponent, rec.Account, rec.Region, rec.Name)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get inference component %s: %w", rec.Name, err)
	}
	if cur.Status != sagehost.StatusDeleting {
		return fmt.Errorf("inference component %s is %s, not Deleting", rec.Name, cur.Status)
	}
	if err := store.Delete(ctx, sagehost.KindInferenceComponent, rec.Account, rec.Region, rec.Name); err != nil && !errors.Is(err, sagehost.ErrNotFound) {
		return fmt.Errorf("delete inference component %s: %w", rec.Name, err)
	}
	return nil
}

func (s *Service) getInferenceComponent(ctx context.Context, c sagehost.Caller, name string) (*sagehost.Record, *sagehost.InferenceComponentState, error) {
	rec, err := s.Store.Get(ctx, sagehost.KindInferenceComponent, c.Account, c.Region, name)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, nil, inferenceComponentNotFound(c, name)
	} else if err != nil {
		return nil, nil, storeErr("get inference component", err)
	}
	st, err := DecodeInferenceComponentState(rec)
	if err != nil {
		return nil, nil, err
	}
	return rec, st, nil
}

// componentHost is the endpoint variant a component runs on.
type componentHost struct {
	endpoint      *sagehost.Record
	variant       string
	instanceTypes []string
}

// componentVariants returns the variants of an endpoint's deployment that
// host inference components (those without ModelName), each with its
// instance types (InstanceType and those of its InstancePools).
func componentVariants(d *sagehost.Deployment) (names []string, types map[string][]string) {
	types = map[string][]string{}
	for _, v := range d.Config.ProductionVariants {
		if v.ModelName != "" {
			continue
		}
		names = append(names, v.VariantName)
		if v.InstanceType != "" {
			types[v.VariantName] = append(types[v.VariantName], v.InstanceType)
		}
		for _, p := range v.InstancePools {
			if !slices.Contains(types[v.VariantName], p.InstanceType) {
				types[v.VariantName] = append(types[v.VariantName], p.InstanceType)
			}
		}
	}
	return names, types
}

// resolveHost finds the variant of an endpoint (rec, with its state st) a
// new component goes on: the serving deployment's (the pending one's while
// the endpoint is being created) variants without ModelName; variant may be
// empty when there is exactly one.
func resolveHost(rec *sagehost.Record, st *sagehost.EndpointState, variant string) (*componentHost, error) {
	switch rec.Status {
	case sagehost.StatusDeleting, sagehost.StatusFailed:
		return nil, validation("Cannot create an inference component on endpoint %q because it is in %s state.", rec.ARN, rec.Status)
	}
	d := st.Serving
	if d == nil {
		d = st.Pending
	}
	if d == nil {
		return nil, validation("Endpoint %q has no deployment that can host inference components.", rec.ARN)
	}
	names, types := componentVariants(d)
	h := &componentHost{endpoint: rec}
	switch {
	case len(names) == 0:
		return nil, validation("Endpoint %q cannot host inference components: none of the production variants of endpoint configuration %q is for inference components (a variant without ModelName).", rec.ARN, d.ConfigName)
	case variant == "" && len(names) > 1:
		return nil, validation("VariantName is required: endpoint %q has more than one production variant that can host inference components (%s).", rec.ARN, strings.Join(names, ", "))
	case variant == "":
		h.variant = names[0]
	case slices.Contains(names, variant):
		h.variant = variant
	default:
		if v := d.Variant(variant); v != nil {
			return nil, validation("Variant %q of endpoint %q serves model %q and cannot host inference components.", variant, rec.ARN, v.ModelName)
		}
		return nil, validation("The variant name %q is not present within endpoint %q.", variant, rec.ARN)
	}
	h.instanceTypes = types[h.variant]
	return h, nil
}

// hostOf returns the endpoint and variant an existing component runs on.
func (s *Service) hostOf(ctx context.Context, c sagehost.Caller, st *sagehost.InferenceComponentState) (*componentHost, error) {
	rec, est, err := s.getEndpoint(ctx, c, st.EndpointName)
	if err != nil {
		return nil, err
	}
	h := &componentHost{endpoint: rec, variant: st.VariantName}
	for _, d := range []*sagehost.Deployment{est.Serving, est.Pending} {
		if d == nil {
			continue
		}
		if _, types := componentVariants(d); len(types[st.VariantName]) > 0 {
			h.instanceTypes = types[st.VariantName]
			break
		}
	}
	return h, nil
}

// specLabel names a specification in messages.
func specLabel(list bool, i int) string {
	if !list {
		return "Specification"
	}
	return fmt.Sprintf("Specifications entry %d", i+1)
}

// checkSpec applies the rules of an inference component's specification
// that the API shapes cannot say, and snapshots the models it names. It
// returns the base component's name for an adapter component.
func (s *Service) checkSpec(ctx context.Context, c sagehost.Caller, spec *sagehost.InferenceComponentSpec, h *componentHost) (map[string]sagehost.ModelSpec, string, error) {
	if err := checkOneSpecForm(spec); err != nil {
		return nil, "", err
	}
	list := len(spec.Specifications) > 0
	entries := spec.List()
	models := map[string]sagehost.ModelSpec{}
	seenTypes := map[string]bool{}
	base := ""
	for i := range entries {
		sp := &entries[i]
		label := specLabel(list, i)
		if sp.InstanceType != "" {
			if seenTypes[sp.InstanceType] {
				return nil, "", validation("Instance type %q appears in more than one entry of Specifications.", sp.InstanceType)
			}
			seenTypes[sp.InstanceType] = true
			if len(h.instanceTypes) > 0 && !slices.Contains(h.instanceTypes, sp.InstanceType) {
				return nil, "", validation("%s: instance type %q is not an instance type of variant %q of endpoint %q (%s).",
					label, sp.InstanceType, h.variant, h.endpoint.ARN, strings.Join(h.instanceTypes, ", "))
			}
		} else if len(entries) > 1 {
			return nil, "", validation("%s: InstanceType is required in each entry of Specifications when there is more than one.", label)
		}
		if sp.BaseInferenceComponentName != "" {
			if list {
				return nil, "", validation("BaseInferenceComponentName can be specified only in Specification, not in Specifications.")
			}
			if err := checkAdapterSpec(sp); err != nil {
				return nil, "", err
			}
			base = sp.BaseInferenceComponentName
			continue
		}
		switch {
		case sp.ModelName != "" && sp.Container != nil:
			return nil, "", validation("%s: specify either ModelName or Container, not both.", label)
		case sp.ModelName == "" && sp.Container == nil:
			return nil, "", validation("%s: specify the model to deploy: ModelName, or a Container with an Image.", label)
		case sp.Container != nil && sp.Container.Image == "":
			return nil, "", validation("%s: Container.Image is required when ModelName is not specified.", label)
		case sp.ComputeResourceRequirements == nil:
			return nil, "", validation("%s: ComputeResourceRequirements is required unless BaseInferenceComponentName is specified (an adapter inference component).", label)
		}
		if r := sp.ComputeResourceRequirements; r.MaxMemoryRequiredInMb != 0 && r.MaxMemoryRequiredInMb < r.MinMemoryRequiredInMb {
			return nil, "", validation("%s: MaxMemoryRequiredInMb (%d) must be greater than or equal to MinMemoryRequiredInMb (%d).",
				label, r.MaxMemoryRequiredInMb, r.MinMemoryRequiredInMb)
		}
		if sp.ModelName == "" {
			continue
		}
		if _, ok := models[sp.ModelName]; ok {
			continue
		}
		rec, m, err := s.loadModel(ctx, c, sp.ModelName)
		if err != nil {
			return nil, "", err
		}
		containers := m.ContainerList()
		if len(containers) != 1 {
			return nil, "", validation("%s: model %q has %d containers; an inference component deploys a model with exactly one container.", label, rec.Name, len(containers))
		}
		if containers[0].IsMultiModel() {
			return nil, "", validation("%s: model %q is a multi-model container (Mode MultiModel), which an inference component cannot deploy.", label, rec.Name)
		}
		models[sp.ModelName] = *m
	}
	if len(models) == 0 {
		models = nil
	}
	return models, base, nil
}

// checkOneSpecForm checks that exactly one of Specification and
// Specifications is given.
func checkOneSpecForm(spec *sagehost.InferenceComponentSpec) error {
	switch {
	case spec.Specification != nil && len(spec.Specifications) > 0:
		return validation("Specify either Specification or Specifications, not both.")
	case spec.Specification == nil && len(spec.Specifications) == 0:
		return validation("Either Specification or Specifications must be specified.")
	}
	return nil
}

// checkAdapterSpec applies the rules of an adapter component's
// specification.
func checkAdapterSpec(sp *sagehost.InferenceComponentSpecification) error {
	switch {
	case sp.ComputeResourceRequirements != nil:
		return validation("Specification: an adapter inference component (BaseInferenceComponentName) uses the compute resources of its base inference component; omit ComputeResourceRequirements.")
	case sp.ModelName != "" || (sp.Container != nil && sp.Container.Image != ""):
		return validation("Specification: an adapter inference component (BaseInferenceComponentName) runs in the container of its base inference component; it cannot specify ModelName or Container.Image.")
	case sp.Container == nil || sp.Container.ArtifactUrl == "":
		return validation("Specification: an adapter inference component (BaseInferenceComponentName) requires Container.ArtifactUrl, the location of its adapter artifacts.")
	}
	return nil
}

// checkBase checks the base component of an adapter component created or
// updated on an endpoint, and returns the base's state.
func (s *Service) checkBase(ctx context.Context, c sagehost.Caller, base, endpoint string) (*sagehost.Record, *sagehost.InferenceComponentState, error) {
	rec, st, err := s.getInferenceComponent(ctx, c, base)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !strings.EqualFold(st.EndpointName, endpoint):
		return nil, nil, validation("Base inference component %q is on endpoint %q; an adapter inference component must be on the endpoint of its base inference component.",
			rec.ARN, c.ARN(sagehost.KindEndpoint, st.EndpointName))
	case st.Current.Spec.BaseInferenceComponentName() != "":
		return nil, nil, validation("Inference component %q is itself an adapter inference component and cannot be the base of another.", rec.ARN)
	case rec.Status == sagehost.StatusDeleting:
		return nil, nil, validation("Base inference component %q is being deleted.", rec.ARN)
	}
	return rec, st, nil
}

// specDoc returns the Specification or Specifications member of a request
// exactly as given.
func specDoc(doc json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	out := map[string]json.RawMessage{}
	for _, k := range []string{"Specification", "Specifications"} {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// newComponentDeployment builds a version of what a component runs.
func (s *Service) newComponentDeployment(doc json.RawMessage, spec sagehost.InferenceComponentSpec, models map[string]sagehost.ModelSpec, generation int) (sagehost.InferenceComponentDeployment, error) {
	sd, err := specDoc(doc)
	if err != nil {
		return sagehost.InferenceComponentDeployment{}, err
	}
	spec.RuntimeConfig = nil
	return sagehost.InferenceComponentDeployment{
		ID: newID(8), Generation: generation, Spec: spec, SpecDoc: sd, Models: models, StartTime: s.now(),
	}, nil
}

// CreateInferenceComponent records an inference component in status
// Creating on an endpoint's variant and tells the endpoint's reconciler,
// which starts its copies.
func (s *Service) CreateInferenceComponent(ctx context.Context, c sagehost.Caller, in *CreateInferenceComponentInput) (*InferenceComponentArnOutput, error) {
	arn := c.ARN(sagehost.KindInferenceComponent, in.InferenceComponentName)
	exists := func() error { return alreadyExists("inference component", arn) }
	if _, err := s.Store.Get(ctx, sagehost.KindInferenceComponent, c.Account, c.Region, in.InferenceComponentName); err == nil {
		return nil, exists()
	} else if !errors.Is(err, sagehost.ErrNotFound) {
		return nil, storeErr("get inference component", err)
	}
	if err := checkOneSpecForm(&in.InferenceComponentSpec); err != nil {
		return nil, err
	}
	// An adapter rides on its base component's variant.
	adapterBase := ""
	if in.Specification != nil {
		adapterBase = in.Specification.BaseInferenceComponentName
	}
	endpoint, endpointState, err := s.getEndpoint(ctx, c, in.EndpointName)
	if err != nil {
		return nil, err
	}
	var baseState *sagehost.InferenceComponentState
	variant := in.VariantName
	if adapterBase != "" {
		baseRec, st, err := s.checkBase(ctx, c, adapterBase, in.EndpointName)
		if err != nil {
			return nil, err
		}
		if variant != "" && variant != st.VariantName {
			return nil, validation("VariantName %q differs from %q, the variant of base inference component %q.", variant, st.VariantName, baseRec.ARN)
		}
		variant, baseState = st.VariantName, st
	}
	h, err := resolveHost(endpoint, endpointState, variant)
	if err != nil {
		return nil, err
	}
	models, base, err := s.checkSpec(ctx, c, &in.InferenceComponentSpec, h)
	if err != nil {
		return nil, err
	}
	desired := 0
	switch {
	case base != "":
		desired = baseState.DesiredCopyCount // an adapter is loaded into every copy of its base
	case in.RuntimeConfig == nil:
		return nil, validation("RuntimeConfig is required unless BaseInferenceComponentName is specified (an adapter inference component).")
	default:
		desired = in.RuntimeConfig.CopyCount
	}
	d, err := s.newComponentDeployment(in.Doc, in.InferenceComponentSpec, models, 1)
	if err != nil {
		return nil, err
	}
	st := &sagehost.InferenceComponentState{
		EndpointName:     h.endpoint.Name,
		VariantName:      h.variant,
		Current:          d,
		DesiredCopyCount: desired,
	}
	now := s.now()
	rec := &sagehost.Record{
		Kind: sagehost.KindInferenceComponent, Account: c.Account, Region: c.Region, Name: in.InferenceComponentName, ARN: arn,
		CreationTime: now, LastModifiedTime: now, Status: sagehost.StatusCreating,
	}
	if err := EncodeInferenceComponentState(rec, st); err != nil {
		return nil, err
	}
	if err := s.Store.Create(ctx, rec, in.Tags); errors.Is(err, sagehost.ErrAlreadyExists) {
		return nil, exists()
	} else if err != nil {
		return nil, storeErr("create inference component", err)
	}
	s.notify(st.EndpointKey(rec))
	return &InferenceComponentArnOutput{InferenceComponentArn: arn}, nil
}

// InferenceComponentNameInput is the request of DescribeInferenceComponent
// and DeleteInferenceComponent.
type InferenceComponentNameInput struct {
	InferenceComponentName string `json:"InferenceComponentName"`
}

// DescribeInferenceComponent reports a component's specification as given,
// its status and its desired and current copy counts.
func (s *Service) DescribeInferenceComponent(ctx context.Context, c sagehost.Caller, in *InferenceComponentNameInput) (map[string]any, error) {
	rec, st, err := s.getInferenceComponent(ctx, c, in.InferenceComponentName)
	if err != nil {
		return nil, err
	}
	desired, current, placement := st.DesiredCopyCount, st.CurrentCopyCount, st.PlacementStatus
	if base := st.Current.Spec.BaseInferenceComponentName(); base != "" {
		// An adapter has no copies of its own: it runs in its base's.
		if _, bst, err := s.getInferenceComponent(ctx, c, base); err == nil {
			desired, current, placement = bst.DesiredCopyCount, bst.CurrentCopyCount, bst.PlacementStatus
		}
	}
	out, err := describeDoc(st.Current.SpecDoc, map[string]any{
		"InferenceComponentName":   rec.Name,
		"InferenceComponentArn":    rec.ARN,
		"EndpointName":             st.EndpointName,
		"EndpointArn":              c.ARN(sagehost.KindEndpoint, st.EndpointName),
		"VariantName":              st.VariantName,
		"CreationTime":             Time(rec.CreationTime),
		"LastModifiedTime":         Time(rec.LastModifiedTime),
		"InferenceComponentStatus": rec.Status,
	})
	if err != nil {
		return nil, err
	}
	// The output's container summary reports the image as DeployedImage.
	deployed := func(v any) {
		spec, _ := v.(map[string]any)
		ctr, _ := spec["Container"].(map[string]any)
		if img, ok := ctr["Image"].(string); ok {
			delete(ctr, "Image")
			ctr["DeployedImage"] = map[string]any{
				"SpecifiedImage": img, "ResolvedImage": img, "ResolutionTime": Time(st.Current.StartTime),
			}
		}
	}
	deployed(out["Specification"])
	if list, ok := out["Specifications"].([]any); ok {
		for _, v := range list {
			deployed(v)
		}
	}
	rc := map[string]any{"DesiredCopyCount": desired, "CurrentCopyCount": current}
	if len(placement) > 0 {
		rc["PlacementStatus"] = placement
	}
	out["RuntimeConfig"] = rc
	if st.FailureReason != "" {
		out["FailureReason"] = st.FailureReason
	}
	if len(st.LastDeploymentConfig) > 0 && string(st.LastDeploymentConfig) != "null" {
		out["LastDeploymentConfig"] = st.LastDeploymentConfig
	}
	return out, nil
}

// InferenceComponentSummary is one entry of ListInferenceComponents.
type InferenceComponentSummary struct {
	CreationTime             Time   `json:"CreationTime"`
	InferenceComponentArn    string `json:"InferenceComponentArn"`
	InferenceComponentName   string `json:"InferenceComponentName"`
	EndpointArn              string `json:"EndpointArn"`
	EndpointName             string `json:"EndpointName"`
	VariantName              string `json:"VariantName"`
	InferenceComponentStatus string `json:"InferenceComponentStatus,omitempty"`
	LastModifiedTime         Time   `json:"LastModifiedTime"`
}

// ListInferenceComponentsOutput is ListInferenceComponents' response.
type ListInferenceComponentsOutput struct {
	InferenceComponents []InferenceComponentSummary `json:"InferenceComponents"`
	NextToken           string                      `json:"NextToken,omitempty"`
}

// ListInferenceComponents lists the caller's inference components, with
// ListEndpoints' filters plus EndpointNameEquals and VariantNameEquals.
func (s *Service) ListInferenceComponents(ctx context.Context, c sagehost.Caller, in *ListInput) (*ListInferenceComponentsOutput, error) {
	recs, err := s.Store.List(ctx, sagehost.KindInferenceComponent, c.Account, c.Region)
	if err != nil {
		return nil, storeErr("list inference components", err)
	}
	states := map[*sagehost.Record]*sagehost.InferenceComponentState{}
	var kept []*sagehost.Record
	for _, r := range recs {
		st, err := DecodeInferenceComponentState(r)
		if err != nil {
			return nil, err
		}
		if in.EndpointNameEquals != "" && !strings.EqualFold(st.EndpointName, in.EndpointNameEquals) {
			continue
		}
		if in.VariantNameEquals != "" && st.VariantName != in.VariantNameEquals {
			continue
		}
		states[r] = st
		kept = append(kept, r)
	}
	kept, next, err := page(kept, in, 10)
	if err != nil {
		return nil, err
	}
	out := &ListInferenceComponentsOutput{InferenceComponents: []InferenceComponentSummary{}, NextToken: next}
	for _, r := range kept {
		st := states[r]
		out.InferenceComponents = append(out.InferenceComponents, InferenceComponentSummary{
			CreationTime: Time(r.CreationTime), InferenceComponentArn: r.ARN, InferenceComponentName: r.Name,
			EndpointArn: c.ARN(sagehost.KindEndpoint, st.EndpointName), EndpointName: st.EndpointName, VariantName: st.VariantName,
			InferenceComponentStatus: r.Status, LastModifiedTime: Time(r.LastModifiedTime),
		})
	}
	return out, nil
}

// UpdateInferenceComponentInput is UpdateInferenceComponent's request.
type UpdateInferenceComponentInput struct {
	Raw
	InferenceComponentName string `json:"InferenceComponentName"`
	sagehost.InferenceComponentSpec
	DeploymentConfig json.RawMessage `json:"DeploymentConfig"`
}

// checkDeploymentConfig applies the rules of a rolling update policy that
// the API shapes cannot say.
func checkDeploymentConfig(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	type size struct {
		Type  string `json:"Type"`
		Value int    `json:"Value"`
	}
	var dc struct {
		RollingUpdatePolicy struct {
			MaximumBatchSize         *size `json:"MaximumBatchSize"`
			RollbackMaximumBatchSize *size `json:"RollbackMaximumBatchSize"`
		} `json:"RollingUpdatePolicy"`
	}
	if err := json.Unmarshal(raw, &dc); err != nil {
		return fmt.Errorf("decode DeploymentConfig: %w", err)
	}
	for _, f := range []struct {
		name string
		s    *size
	}{{"MaximumBatchSize", dc.RollingUpdatePolicy.MaximumBatchSize}, {"RollbackMaximumBatchSize", dc.RollingUpdatePolicy.RollbackMaximumBatchSize}} {
		if f.s != nil && f.s.Type == "CAPACITY_PERCENT" && (f.s.Value < 5 || f.s.Value > 50) {
			return validation("RollingUpdatePolicy.%s: a CAPACITY_PERCENT batch size must be between 5 and 50 percent of the copies; got %d.", f.name, f.s.Value)
		}
	}
	return nil
}

// UpdateInferenceComponent changes an InService component's specification,
// copy count or deployment config, and marks it Updating. A changed
// specification starts a new deployment (a new ID and generation) that
// hosting rolls the copies over to.
func (s *Service) UpdateInferenceComponent(ctx context.Context, c sagehost.Caller, in *UpdateInferenceComponentInput) (*InferenceComponentArnOutput, error) {
	rec, st, err := s.getInferenceComponent(ctx, c, in.InferenceComponentName)
	if err != nil {
		return nil, err
	}
	if err := checkUpdatable(rec, "inference component"); err != nil {
		return nil, err
	}
	hasSpec := in.Specification != nil || len(in.Specifications) > 0
	if !hasSpec && in.RuntimeConfig == nil && (len(in.DeploymentConfig) == 0 || string(in.DeploymentConfig) == "null") {
		return nil, validation("Nothing to update: specify Specification, Specifications, RuntimeConfig or DeploymentConfig.")
	}
	if err := checkDeploymentConfig(in.DeploymentConfig); err != nil {
		return nil, err
	}
	oldBase := st.Current.Spec.BaseInferenceComponentName()
	var next *sagehost.InferenceComponentDeployment
	if hasSpec {
		h, err := s.hostOf(ctx, c, st)
		if err != nil {
			return nil, err
		}
		models, base, err := s.checkSpec(ctx, c, &in.InferenceComponentSpec, h)
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(base, oldBase) {
			return nil, validation("The BaseInferenceComponentName of inference component %q cannot be changed (it is %q).", rec.ARN, oldBase)
		}
		if base != "" {
			if _, _, err := s.checkBase(ctx, c, base, st.EndpointName); err != nil {
				return nil, err
			}
		}
		d, err := s.newComponentDeployment(in.Doc, in.InferenceComponentSpec, models, 0)
		if err != nil {
			return nil, err
		}
		next = &d
	}
	return s.updateComponent(ctx, c, in.InferenceComponentName, "update inference component", func(r *sagehost.Record, st *sagehost.InferenceComponentState) error {
		if next != nil && !sameDeployment(&st.Current, next) {
			prev := st.Current
			next.Generation = prev.Generation + 1
			st.Previous, st.Current = &prev, *next
		}
		if in.RuntimeConfig != nil && oldBase == "" {
			st.DesiredCopyCount = in.RuntimeConfig.CopyCount
		}
		if len(in.DeploymentConfig) > 0 && string(in.DeploymentConfig) != "null" {
			st.LastDeploymentConfig = in.DeploymentConfig
		}
		st.FailureReason = ""
		return nil
	})
}

// sameDeployment reports whether two versions run the same thing: the same
// specification and the same model snapshots.
func sameDeployment(a, b *sagehost.InferenceComponentDeployment) bool {
	ja, err1 := json.Marshal(struct {
		S sagehost.InferenceComponentSpec
		M map[string]sagehost.ModelSpec
	}{a.Spec, a.Models})
	jb, err2 := json.Marshal(struct {
		S sagehost.InferenceComponentSpec
		M map[string]sagehost.ModelSpec
	}{b.Spec, b.Models})
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// UpdateInferenceComponentRuntimeConfigInput is the request of
// UpdateInferenceComponentRuntimeConfig.
type UpdateInferenceComponentRuntimeConfigInput struct {
	InferenceComponentName string                                   `json:"InferenceComponentName"`
	DesiredRuntimeConfig   sagehost.InferenceComponentRuntimeConfig `json:"DesiredRuntimeConfig"`
}

// UpdateInferenceComponentRuntimeConfig changes an InService component's
// desired copy count and marks it Updating.
func (s *Service) UpdateInferenceComponentRuntimeConfig(ctx context.Context, c sagehost.Caller, in *UpdateInferenceComponentRuntimeConfigInput) (*InferenceComponentArnOutput, error) {
	return s.updateComponent(ctx, c, in.InferenceComponentName, "update inference component runtime config", func(r *sagehost.Record, st *sagehost.InferenceComponentState) error {
		if base := st.Current.Spec.BaseInferenceComponentName(); base != "" {
			return validation("Inference component %q is an adapter inference component: it has no copies of its own and runs in every copy of its base inference component %q.",
				r.ARN, c.ARN(sagehost.KindInferenceComponent, base))
		}
		st.DesiredCopyCount = in.DesiredRuntimeConfig.CopyCount
		return nil
	})
}

// updateComponent applies a change to an InService inference component in
// one store transaction, marks it Updating and tells the reconciler of its
// endpoint.
func (s *Service) updateComponent(ctx context.Context, c sagehost.Caller, name, op string, change func(*sagehost.Record, *sagehost.InferenceComponentState) error) (*InferenceComponentArnOutput, error) {
	var st *sagehost.InferenceComponentState
	rec, err := s.Store.Update(ctx, sagehost.KindInferenceComponent, c.Account, c.Region, name, func(r *sagehost.Record) error {
		if err := checkUpdatable(r, "inference component"); err != nil {
			return err
		}
		var err error
		if st, err = DecodeInferenceComponentState(r); err != nil {
			return err
		}
		if err := change(r, st); err != nil {
			return err
		}
		r.Status = sagehost.StatusUpdating
		r.LastModifiedTime = s.now()
		return EncodeInferenceComponentState(r, st)
	})
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, inferenceComponentNotFound(c, name)
	} else if err != nil {
		return nil, storeErr(op, err)
	}
	s.notify(st.EndpointKey(rec))
	return &InferenceComponentArnOutput{InferenceComponentArn: rec.ARN}, nil
}

// adaptersOf returns the names of the components (not being deleted) that
// use a component as their base.
func (s *Service) adaptersOf(ctx context.Context, c sagehost.Caller, name string) ([]string, error) {
	recs, err := s.Store.List(ctx, sagehost.KindInferenceComponent, c.Account, c.Region)
	if err != nil {
		return nil, storeErr("list inference components", err)
	}
	var names []string
	for _, r := range recs {
		if r.Status == sagehost.StatusDeleting {
			continue
		}
		st, err := DecodeInferenceComponentState(r)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(st.Current.Spec.BaseInferenceComponentName(), name) {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// DeleteInferenceComponent marks a component Deleting; hosting stops its
// copies and then removes the record (FinishInferenceComponentDeletion). A
// base component cannot be deleted while adapter components use it.
func (s *Service) DeleteInferenceComponent(ctx context.Context, c sagehost.Caller, in *InferenceComponentNameInput) (*struct{}, error) {
	rec, _, err := s.getInferenceComponent(ctx, c, in.InferenceComponentName)
	if err != nil {
		return nil, err
	}
	if rec.Status != sagehost.StatusDeleting {
		adapters, err := s.adaptersOf(ctx, c, rec.Name)
		if err != nil {
			return nil, err
		}
		if len(adapters) > 0 {
			return nil, validation("Cannot delete inference component %q: adapter inference components use it as their base (%s). Delete them first.",
				rec.ARN, strings.Join(adapters, ", "))
		}
	}
	var st *sagehost.InferenceComponentState
	rec, err = s.Store.Update(ctx, sagehost.KindInferenceComponent, c.Account, c.Region, in.InferenceComponentName, func(r *sagehost.Record) error {
		var err error
		if st, err = DecodeInferenceComponentState(r); err != nil {
			return err
		}
		if r.Status != sagehost.StatusDeleting {
			r.Status = sagehost.StatusDeleting
			r.LastModifiedTime = s.now()
		}
		return nil
	})
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, inferenceComponentNotFound(c, in.InferenceComponentName)
	} else if err != nil {
		return nil, storeErr("delete inference component", err)
	}
	s.notify(st.EndpointKey(rec))
	return &struct{}{}, nil
}

// checkEndpointHasNoComponents returns the error for deleting an endpoint
// that still hosts inference components other than Deleting ones (SageMaker
// asks for them to be deleted first); components already Deleting go with
// the endpoint. DeleteEndpoint calls it before marking the endpoint Deleting.
func (s *Service) checkEndpointHasNoComponents(ctx context.Context, c sagehost.Caller, rec *sagehost.Record) error {
	ics, err := EndpointInferenceComponents(ctx, s.Store, sagehost.EndpointKey{Account: c.Account, Region: c.Region, Name: rec.Name})
	if err != nil {
		return storeErr("list inference components", err)
	}
	var names []string
	for _, ic := range ics {
		if ic.Record.Status != sagehost.StatusDeleting {
			names = append(names, ic.Record.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return validation("Cannot delete endpoint %q because it hosts inference components (%s). Delete the inference components first.",
		rec.ARN, strings.Join(names, ", "))
}
