package control

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/sagehost/sagehost"
)

// CreateModelInput is CreateModel's request.
type CreateModelInput struct {
	Raw
	ModelName string `json:"ModelName"`
	sagehost.ModelSpec
	Tags []sagehost.Tag `json:"Tags"`
}

// CreateModelOutput is CreateModel's response.
type CreateModelOutput struct {
	ModelArn string `json:"ModelArn"`
}

// CreateModel stores a model. Images and model data are checked when an
// endpoint deploys it, as on SageMaker.
func (s *Service) CreateModel(ctx context.Context, c sagehost.Caller, in *CreateModelInput) (*CreateModelOutput, error) {
	if err := checkModelSpec(&in.ModelSpec); err != nil {
		return nil, err
	}
	doc, err := stripMembers(in.Doc, "ModelName", "Tags")
	if err != nil {
		return nil, err
	}
	now := s.now()
	rec := &sagehost.Record{
		Kind: sagehost.KindModel, Account: c.Account, Region: c.Region, Name: in.ModelName,
		ARN:          c.ARN(sagehost.KindModel, in.ModelName),
		CreationTime: now, LastModifiedTime: now, Doc: doc,
	}
	if err := s.Store.Create(ctx, rec, in.Tags); errors.Is(err, sagehost.ErrAlreadyExists) {
		return nil, alreadyExists("model", rec.ARN)
	} else if err != nil {
		return nil, storeErr("create model", err)
	}
	return &CreateModelOutput{ModelArn: rec.ARN}, nil
}

// checkModelSpec applies CreateModel's rules that the API shapes cannot say.
func checkModelSpec(m *sagehost.ModelSpec) error {
	if m.PrimaryContainer != nil && len(m.Containers) > 0 {
		return validation("Specify either PrimaryContainer or Containers, not both.")
	}
	containers := m.ContainerList()
	if len(containers) == 0 {
		return validation("Either PrimaryContainer or Containers must be specified.")
	}
	mode := "Serial"
	if m.InferenceExecutionConfig != nil {
		mode = m.InferenceExecutionConfig.Mode
	}
	named := 0
	seen := map[string]bool{}
	multiModel := 0
	for i, c := range containers {
		if c.Image == "" {
			return validation("Container %d has no Image. Specify the container image (a container image URI, a built-in image name, or the absolute path of a model server executable).", i+1)
		}
		if c.ModelDataUrl != "" && c.ModelDataSource != nil {
			return validation("Container %d specifies both ModelDataUrl and ModelDataSource; specify only one.", i+1)
		}
		if c.IsMultiModel() {
			multiModel++
		}
		if c.ContainerHostname != "" {
			named++
			if seen[c.ContainerHostname] {
				return validation("ContainerHostname %q is used by more than one container.", c.ContainerHostname)
			}
			seen[c.ContainerHostname] = true
		}
	}
	if len(m.Containers) > 0 {
		if mode == "Direct" && named != len(containers) {
			return validation("ContainerHostname must be specified for every container when InferenceExecutionConfig.Mode is Direct.")
		}
		if named != 0 && named != len(containers) {
			return validation("Either specify ContainerHostname for every container or for none of them.")
		}
	}
	if multiModel > 1 {
		return validation("Only one container of a model can be in MultiModel mode.")
	}
	if multiModel > 0 && len(containers) > 1 {
		return validation("sagehost does not yet host a MultiModel container inside a multi-container model; use a model with the MultiModel container alone.")
	}
	return nil
}

// ModelNameInput is the request of DescribeModel and DeleteModel.
type ModelNameInput struct {
	ModelName string `json:"ModelName"`
}

func (s *Service) getModel(ctx context.Context, c sagehost.Caller, name string) (*sagehost.Record, error) {
	rec, err := s.Store.Get(ctx, sagehost.KindModel, c.Account, c.Region, name)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, validation("Could not find model %q.", c.ARN(sagehost.KindModel, name))
	}
	return rec, storeErr("get model", err)
}

// DescribeModel returns a model with every member it was created with.
func (s *Service) DescribeModel(ctx context.Context, c sagehost.Caller, in *ModelNameInput) (map[string]any, error) {
	rec, err := s.getModel(ctx, c, in.ModelName)
	if err != nil {
		return nil, err
	}
	return describeDoc(rec.Doc, map[string]any{
		"ModelName":    rec.Name,
		"ModelArn":     rec.ARN,
		"CreationTime": Time(rec.CreationTime),
	})
}

// DeleteModel removes a model record. Endpoints that run it are unaffected:
// they hold a snapshot.
func (s *Service) DeleteModel(ctx context.Context, c sagehost.Caller, in *ModelNameInput) (*struct{}, error) {
	err := s.Store.Delete(ctx, sagehost.KindModel, c.Account, c.Region, in.ModelName)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, validation("Could not find model %q.", c.ARN(sagehost.KindModel, in.ModelName))
	}
	return &struct{}{}, storeErr("delete model", err)
}

// ModelSummary is one entry of ListModels.
type ModelSummary struct {
	ModelName    string `json:"ModelName"`
	ModelArn     string `json:"ModelArn"`
	CreationTime Time   `json:"CreationTime"`
}

// ListModelsOutput is ListModels' response.
type ListModelsOutput struct {
	Models    []ModelSummary `json:"Models"`
	NextToken string         `json:"NextToken,omitempty"`
}

// ListModels lists the caller's models.
func (s *Service) ListModels(ctx context.Context, c sagehost.Caller, in *ListInput) (*ListModelsOutput, error) {
	recs, err := s.Store.List(ctx, sagehost.KindModel, c.Account, c.Region)
	if err != nil {
		return nil, storeErr("list models", err)
	}
	recs, next, err := page(recs, in, 10)
	if err != nil {
		return nil, err
	}
	out := &ListModelsOutput{Models: []ModelSummary{}, NextToken: next}
	for _, r := range recs {
		out.Models = append(out.Models, ModelSummary{ModelName: r.Name, ModelArn: r.ARN, CreationTime: Time(r.CreationTime)})
	}
	return out, nil
}

// loadModel reads and decodes a model, failing as getModel does when it is
// missing.
func (s *Service) loadModel(ctx context.Context, c sagehost.Caller, name string) (*sagehost.Record, *sagehost.ModelSpec, error) {
	rec, err := s.getModel(ctx, c, name)
	if err != nil {
		return nil, nil, err
	}
	m, err := decodeModel(rec)
	if err != nil {
		return nil, nil, err
	}
	return rec, m, nil
}

func decodeModel(rec *sagehost.Record) (*sagehost.ModelSpec, error) {
	var m sagehost.ModelSpec
	if err := json.Unmarshal(rec.Doc, &m); err != nil {
		return nil, storeErr("decode model "+rec.Name, err)
	}
	return &m, nil
}
