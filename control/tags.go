package control

import (
	"context"
	"errors"
	"strings"

	"github.com/sagehost/sagehost"
)

// resolveARN checks that arn names an existing resource of the caller and
// returns it. Another account's ARN is reported exactly like a missing one.
func (s *Service) resolveARN(ctx context.Context, c sagehost.Caller, arn string) (*sagehost.Record, error) {
	// arn:PARTITION:sagemaker:REGION:ACCOUNT:KIND/NAME
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sagemaker" {
		return nil, validation("Invalid resource ARN %q.", arn)
	}
	region, account, resource := parts[3], parts[4], parts[5]
	kind, name, ok := strings.Cut(resource, "/")
	notFound := validation("Could not find resource %q.", arn)
	if !ok || region != c.Region || account != c.Account {
		return nil, notFound
	}
	switch sagehost.Kind(kind) {
	case sagehost.KindModel, sagehost.KindEndpointConfig, sagehost.KindEndpoint, sagehost.KindInferenceComponent:
	default:
		return nil, validation("Tagging is not supported for resource %q.", arn)
	}
	rec, err := s.Store.Get(ctx, sagehost.Kind(kind), account, region, name)
	if errors.Is(err, sagehost.ErrNotFound) {
		return nil, notFound
	} else if err != nil {
		return nil, storeErr("get resource", err)
	}
	return rec, nil
}

// AddTagsInput is AddTags' request.
type AddTagsInput struct {
	ResourceArn string         `json:"ResourceArn"`
	Tags        []sagehost.Tag `json:"Tags"`
}

// TagsOutput is the response of AddTags and ListTags.
type TagsOutput struct {
	Tags      []sagehost.Tag `json:"Tags"`
	NextToken string         `json:"NextToken,omitempty"`
}

// maxTags is SageMaker's limit of tags on one resource.
const maxTags = 50

// AddTags adds or overwrites tags of a resource.
func (s *Service) AddTags(ctx context.Context, c sagehost.Caller, in *AddTagsInput) (*TagsOutput, error) {
	rec, err := s.resolveARN(ctx, c, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	existing, err := s.Store.ListTags(ctx, rec.ARN)
	if err != nil {
		return nil, storeErr("list tags", err)
	}
	keys := map[string]bool{}
	for _, t := range existing {
		keys[t.Key] = true
	}
	for _, t := range in.Tags {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return nil, validation("Tag keys starting with 'aws:' are reserved for system use.")
		}
		keys[t.Key] = true
	}
	if len(keys) > maxTags {
		return nil, sagehost.Errorf(sagehost.CodeResourceLimitExceeded, "A resource can have at most %d tags; this request would leave %d.", maxTags, len(keys))
	}
	if err := s.Store.AddTags(ctx, rec.ARN, in.Tags); err != nil {
		return nil, storeErr("add tags", err)
	}
	return &TagsOutput{Tags: in.Tags}, nil
}

// ListTagsInput is ListTags' request.
type ListTagsInput struct {
	ResourceArn string `json:"ResourceArn"`
	NextToken   string `json:"NextToken"`
	MaxResults  *int   `json:"MaxResults"`
}

// ListTags lists a resource's tags ordered by key.
func (s *Service) ListTags(ctx context.Context, c sagehost.Caller, in *ListTagsInput) (*TagsOutput, error) {
	rec, err := s.resolveARN(ctx, c, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.ListTags(ctx, rec.ARN)
	if err != nil {
		return nil, storeErr("list tags", err)
	}
	start := 0
	if in.NextToken != "" {
		after, err := decodeToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		for start < len(tags) && tags[start].Key <= after {
			start++
		}
	}
	max := 50
	if in.MaxResults != nil {
		max = *in.MaxResults
	}
	out := &TagsOutput{Tags: []sagehost.Tag{}}
	end := start + max
	if end < len(tags) {
		out.NextToken = encodeToken(tags[end-1].Key)
	} else {
		end = len(tags)
	}
	out.Tags = append(out.Tags, tags[start:end]...)
	return out, nil
}

// DeleteTagsInput is DeleteTags' request.
type DeleteTagsInput struct {
	ResourceArn string   `json:"ResourceArn"`
	TagKeys     []string `json:"TagKeys"`
}

// DeleteTags removes tags from a resource.
func (s *Service) DeleteTags(ctx context.Context, c sagehost.Caller, in *DeleteTagsInput) (*struct{}, error) {
	rec, err := s.resolveARN(ctx, c, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteTags(ctx, rec.ARN, in.TagKeys); err != nil {
		return nil, storeErr("delete tags", err)
	}
	return &struct{}{}, nil
}
