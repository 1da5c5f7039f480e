package sagehost

import (
	"encoding/json"
	"strings"
	"time"
)

// Caller identifies who makes a request: the account that the request's
// credentials belong to and the region its signature is scoped to. Every
// resource lives in one (account, region).
type Caller struct {
	Account     string
	Region      string
	AccessKeyID string
}

// Kind is a type of control-plane resource; it is also the resource type in
// the resource's ARN.
type Kind string

// The resource kinds sagehost stores.
const (
	KindModel              Kind = "model"
	KindEndpointConfig     Kind = "endpoint-config"
	KindEndpoint           Kind = "endpoint"
	KindInferenceComponent Kind = "inference-component"
)

// ARN returns the ARN of a resource. SageMaker lower-cases the name part.
func ARN(region, account string, kind Kind, name string) string {
	return "arn:" + Partition(region) + ":sagemaker:" + region + ":" + account + ":" + string(kind) + "/" + strings.ToLower(name)
}

// Partition returns the AWS partition of a region name.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

// Record is one stored control-plane resource. Doc holds the kind-specific
// document as JSON: for models and endpoint configs the validated create
// request (so that Describe returns every field it was given), for endpoints
// an EndpointState.
type Record struct {
	Kind             Kind
	Account          string
	Region           string
	Name             string
	ARN              string
	CreationTime     time.Time
	LastModifiedTime time.Time
	Status           string
	Doc              json.RawMessage
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// ModelSpec is the part of a model that hosting uses, decoded from the stored
// CreateModel request.
type ModelSpec struct {
	PrimaryContainer         *ContainerDefinition      `json:"PrimaryContainer,omitempty"`
	Containers               []ContainerDefinition     `json:"Containers,omitempty"`
	InferenceExecutionConfig *InferenceExecutionConfig `json:"InferenceExecutionConfig,omitempty"`
	ExecutionRoleArn         string                    `json:"ExecutionRoleArn,omitempty"`
	EnableNetworkIsolation   bool                      `json:"EnableNetworkIsolation,omitempty"`
}

// ContainerList returns the model's containers: the PrimaryContainer alone, or
// Containers.
func (m *ModelSpec) ContainerList() []ContainerDefinition {
	if m.PrimaryContainer != nil {
		return []ContainerDefinition{*m.PrimaryContainer}
	}
	return m.Containers
}

// InferenceExecutionConfig says how the containers of a multi-container model
// are invoked: Serial (a pipeline) or Direct.
type InferenceExecutionConfig struct {
	Mode string `json:"Mode"`
}

// ContainerDefinition is one model container.
type ContainerDefinition struct {
	ContainerHostname string            `json:"ContainerHostname,omitempty"`
	Image             string            `json:"Image,omitempty"`
	Mode              string            `json:"Mode,omitempty"`
	ModelDataUrl      string            `json:"ModelDataUrl,omitempty"`
	ModelDataSource   *ModelDataSource  `json:"ModelDataSource,omitempty"`
	Environment       map[string]string `json:"Environment,omitempty"`
	MultiModelConfig  *struct {
		ModelCacheSetting string `json:"ModelCacheSetting,omitempty"`
	} `json:"MultiModelConfig,omitempty"`
}

// ModelDataSource is the structured alternative to ModelDataUrl.
type ModelDataSource struct {
	S3DataSource *S3DataSource `json:"S3DataSource,omitempty"`
}

// S3DataSource locates model data: an S3 (or file://) object or prefix.
type S3DataSource struct {
	S3Uri           string `json:"S3Uri"`
	S3DataType      string `json:"S3DataType"`      // S3Object | S3Prefix
	CompressionType string `json:"CompressionType"` // Gzip | None
}

// EndpointConfigSpec is the part of an endpoint config that hosting uses,
// decoded from the stored CreateEndpointConfig request.
type EndpointConfigSpec struct {
	ProductionVariants       []ProductionVariant `json:"ProductionVariants"`
	ShadowProductionVariants []ProductionVariant `json:"ShadowProductionVariants,omitempty"`
	DataCaptureConfig        json.RawMessage     `json:"DataCaptureConfig,omitempty"`
	AsyncInferenceConfig     json.RawMessage     `json:"AsyncInferenceConfig,omitempty"`
	ExplainerConfig          json.RawMessage     `json:"ExplainerConfig,omitempty"`
	ExecutionRoleArn         string              `json:"ExecutionRoleArn,omitempty"`
}

// ProductionVariant is one variant of an endpoint config.
type ProductionVariant struct {
	VariantName                                 string   `json:"VariantName"`
	ModelName                                   string   `json:"ModelName,omitempty"`
	InitialInstanceCount                        *int     `json:"InitialInstanceCount,omitempty"`
	InstanceType                                string   `json:"InstanceType,omitempty"`
	InitialVariantWeight                        *float64 `json:"InitialVariantWeight,omitempty"`
	ModelDataDownloadTimeoutInSeconds           *int     `json:"ModelDataDownloadTimeoutInSeconds,omitempty"`
	ContainerStartupHealthCheckTimeoutInSeconds *int     `json:"ContainerStartupHealthCheckTimeoutInSeconds,omitempty"`
	ServerlessConfig                            *struct {
		MemorySizeInMB         int  `json:"MemorySizeInMB"`
		MaxConcurrency         int  `json:"MaxConcurrency"`
		ProvisionedConcurrency *int `json:"ProvisionedConcurrency,omitempty"`
	} `json:"ServerlessConfig,omitempty"`
	RoutingConfig *struct {
		RoutingStrategy string `json:"RoutingStrategy"`
	} `json:"RoutingConfig,omitempty"`
}

// Weight returns the variant's initial weight (1.0 when unset).
func (v *ProductionVariant) Weight() float64 {
	if v.InitialVariantWeight == nil {
		return 1
	}
	return *v.InitialVariantWeight
}

// InstanceCount returns the variant's initial instance count: for a
// serverless variant, one instance.
func (v *ProductionVariant) InstanceCount() int {
	if v.InitialInstanceCount != nil {
		return *v.InitialInstanceCount
	}
	return 1
}

// Endpoint statuses, as SageMaker's EndpointStatus enum.
const (
	StatusOutOfService         = "OutOfService"
	StatusCreating             = "Creating"
	StatusUpdating             = "Updating"
	StatusSystemUpdating       = "SystemUpdating"
	StatusRollingBack          = "RollingBack"
	StatusInService            = "InService"
	StatusDeleting             = "Deleting"
	StatusFailed               = "Failed"
	StatusUpdateRollbackFailed = "UpdateRollbackFailed"
)

// EndpointState is the stored document of an endpoint: what it should run
// (its deployments) and what the reconciler last observed.
type EndpointState struct {
	// EndpointConfigName is the config the endpoint reports: the serving
	// deployment's, or the pending one's while the endpoint is being created.
	EndpointConfigName string `json:"EndpointConfigName"`
	FailureReason      string `json:"FailureReason,omitempty"`
	// LastDeploymentConfig echoes the DeploymentConfig of the last
	// CreateEndpoint/UpdateEndpoint call.
	LastDeploymentConfig json.RawMessage `json:"LastDeploymentConfig,omitempty"`
	// Serving is the deployment that answers invocations (nil until the
	// endpoint is first InService).
	Serving *Deployment `json:"Serving,omitempty"`
	// Pending is the deployment being rolled out (create or update).
	Pending *Deployment `json:"Pending,omitempty"`
}

// Deployment is one fleet of an endpoint: a snapshot of an endpoint config and
// of the models it names, taken when the deployment started, so that deleting
// the config or a model does not disturb a running endpoint.
type Deployment struct {
	ID         string               `json:"ID"`
	ConfigName string               `json:"ConfigName"`
	Config     EndpointConfigSpec   `json:"Config"`
	ConfigDoc  json.RawMessage      `json:"ConfigDoc"`
	Models     map[string]ModelSpec `json:"Models"`
	Variants   []VariantState       `json:"Variants"`
	StartTime  time.Time            `json:"StartTime"`
}

// Variant returns the state of the named variant, or nil.
func (d *Deployment) Variant(name string) *VariantState {
	for i := range d.Variants {
		if d.Variants[i].VariantName == name {
			return &d.Variants[i]
		}
	}
	return nil
}

// VariantState is the desired and observed state of one production variant.
type VariantState struct {
	VariantName          string  `json:"VariantName"`
	ModelName            string  `json:"ModelName,omitempty"`
	InstanceType         string  `json:"InstanceType,omitempty"`
	DesiredInstanceCount int     `json:"DesiredInstanceCount"`
	CurrentInstanceCount int     `json:"CurrentInstanceCount"`
	DesiredWeight        float64 `json:"DesiredWeight"`
	CurrentWeight        float64 `json:"CurrentWeight"`
	Serverless           bool    `json:"Serverless,omitempty"`
}

// EndpointKey names one endpoint: its account, region and name as created.
type EndpointKey struct {
	Account string
	Region  string
	Name    string
}

func (k EndpointKey) String() string { return k.Account + "/" + k.Region + "/" + k.Name }

// LogGroup returns the endpoint's log group name, as on CloudWatch.
func (k EndpointKey) LogGroup() string { return "/aws/sagemaker/Endpoints/" + k.Name }

// LogGroupARN returns the ARN of the endpoint's log group, the value SageMaker
// returns as a ModelError's LogStreamArn.
func (k EndpointKey) LogGroupARN() string {
	return "arn:" + Partition(k.Region) + ":logs:" + k.Region + ":" + k.Account + ":log-group:" + k.LogGroup()
}
