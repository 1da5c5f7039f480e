package sagehost

import (
	"encoding/json"
	"fmt"
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
	// KindAsyncInvocation is a queued InvokeEndpointAsync request (not a
	// SageMaker resource: it has no ARN and is never listed by the API).
	KindAsyncInvocation Kind = "async-invocation"
)

// ARN returns the ARN of a resource. SageMaker lower-cases the name part.
func ARN(region, account string, kind Kind, name string) string {
	return "arn:" + Partition(region) + ":sagemaker:" + region + ":" + account + ":" + string(kind) + "/" + strings.ToLower(name)
}

// ARN returns the ARN of the caller's resource of a kind and name (in the
// caller's account and region).
func (c Caller) ARN(kind Kind, name string) string { return ARN(c.Region, c.Account, kind, name) }

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

// IsMultiModel reports whether the container serves a multi-model
// endpoint (Mode MultiModel).
func (c *ContainerDefinition) IsMultiModel() bool {
	return strings.EqualFold(c.Mode, "MultiModel")
}

// ModelDataURI returns where the container's model data is:
// ModelDataSource's S3Uri when it has an S3DataSource, else ModelDataUrl
// (for a multi-model container, the prefix of its TargetModels).
func (c *ContainerDefinition) ModelDataURI() string {
	if c.ModelDataSource != nil && c.ModelDataSource.S3DataSource != nil {
		return c.ModelDataSource.S3DataSource.S3Uri
	}
	return c.ModelDataUrl
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

// AsyncInferenceConfig is the part of an endpoint config's
// AsyncInferenceConfig that asynchronous inference uses.
type AsyncInferenceConfig struct {
	OutputConfig AsyncOutputConfig  `json:"OutputConfig"`
	ClientConfig *AsyncClientConfig `json:"ClientConfig,omitempty"`
}

// AsyncOutputConfig says where answers and errors go.
type AsyncOutputConfig struct {
	S3OutputPath  string `json:"S3OutputPath"`
	S3FailurePath string `json:"S3FailurePath,omitempty"`
}

// AsyncClientConfig bounds the requests run at once per instance.
type AsyncClientConfig struct {
	MaxConcurrentInvocationsPerInstance int `json:"MaxConcurrentInvocationsPerInstance,omitempty"`
}

// Async returns the config's AsyncInferenceConfig, or nil when it has none.
func (s *EndpointConfigSpec) Async() (*AsyncInferenceConfig, error) {
	if len(s.AsyncInferenceConfig) == 0 || string(s.AsyncInferenceConfig) == "null" {
		return nil, nil
	}
	var a AsyncInferenceConfig
	if err := json.Unmarshal(s.AsyncInferenceConfig, &a); err != nil {
		return nil, fmt.Errorf("decode AsyncInferenceConfig: %w", err)
	}
	return &a, nil
}

// Variant returns the production or shadow variant called name, or nil.
func (s *EndpointConfigSpec) Variant(name string) *ProductionVariant {
	for i := range s.ProductionVariants {
		if s.ProductionVariants[i].VariantName == name {
			return &s.ProductionVariants[i]
		}
	}
	for i := range s.ShadowProductionVariants {
		if s.ShadowProductionVariants[i].VariantName == name {
			return &s.ShadowProductionVariants[i]
		}
	}
	return nil
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
	// InstancePools are the other instance types the variant may use.
	InstancePools []struct {
		InstanceType string `json:"InstanceType"`
	} `json:"InstancePools,omitempty"`
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
	// Shadow is set for a shadow variant: it gets a sampled copy of the
	// production variant's requests, and its answers go nowhere.
	Shadow bool `json:"Shadow,omitempty"`
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

// InferenceComponentSpec is what an inference component runs, as
// CreateInferenceComponent and UpdateInferenceComponent take it: one
// Specification, or Specifications with one entry per instance type, and the
// RuntimeConfig of the request (the stored desired copy count is
// InferenceComponentState.DesiredCopyCount; stored deployments leave
// RuntimeConfig nil).
type InferenceComponentSpec struct {
	Specification  *InferenceComponentSpecification  `json:"Specification,omitempty"`
	Specifications []InferenceComponentSpecification `json:"Specifications,omitempty"`
	RuntimeConfig  *InferenceComponentRuntimeConfig  `json:"RuntimeConfig,omitempty"`
}

// List returns the specifications: the Specification alone, or
// Specifications.
func (s *InferenceComponentSpec) List() []InferenceComponentSpecification {
	if s.Specification != nil {
		return []InferenceComponentSpecification{*s.Specification}
	}
	return s.Specifications
}

// ForInstanceType returns the specification that applies to copies on an
// instance type: the entry naming that type, else the entry that names none;
// nil when no entry applies.
func (s *InferenceComponentSpec) ForInstanceType(instanceType string) *InferenceComponentSpecification {
	list := s.List()
	for i := range list {
		if list[i].InstanceType == instanceType {
			return &list[i]
		}
	}
	for i := range list {
		if list[i].InstanceType == "" {
			return &list[i]
		}
	}
	return nil
}

// BaseInferenceComponentName returns the base component of an adapter
// component ("" for a component that is not an adapter).
func (s *InferenceComponentSpec) BaseInferenceComponentName() string {
	for _, sp := range s.List() {
		if sp.BaseInferenceComponentName != "" {
			return sp.BaseInferenceComponentName
		}
	}
	return ""
}

// InferenceComponentSpecification is one specification of an inference
// component: the model (a named model, or a container) and the resources
// each copy reserves. An adapter component names its base component and
// carries only its adapter artifacts (Container.ArtifactUrl).
type InferenceComponentSpecification struct {
	// InstanceType says which instance type the entry applies to (in
	// Specifications; "" applies to any).
	InstanceType                string                                         `json:"InstanceType,omitempty"`
	ModelName                   string                                         `json:"ModelName,omitempty"`
	Container                   *InferenceComponentContainer                   `json:"Container,omitempty"`
	StartupParameters           *InferenceComponentStartupParameters           `json:"StartupParameters,omitempty"`
	ComputeResourceRequirements *InferenceComponentComputeResourceRequirements `json:"ComputeResourceRequirements,omitempty"`
	BaseInferenceComponentName  string                                         `json:"BaseInferenceComponentName,omitempty"`
	// DataCacheConfig and SchedulingConfig are stored and returned as given.
	DataCacheConfig  json.RawMessage `json:"DataCacheConfig,omitempty"`
	SchedulingConfig json.RawMessage `json:"SchedulingConfig,omitempty"`
}

// InferenceComponentContainer is the container of a component that names no
// model (or, for an adapter, where its adapter artifacts are).
type InferenceComponentContainer struct {
	Image       string            `json:"Image,omitempty"`
	ArtifactUrl string            `json:"ArtifactUrl,omitempty"`
	Environment map[string]string `json:"Environment,omitempty"`
}

// InferenceComponentStartupParameters bound the start of each copy, in
// seconds (0: the default).
type InferenceComponentStartupParameters struct {
	ModelDataDownloadTimeoutInSeconds           int `json:"ModelDataDownloadTimeoutInSeconds,omitempty"`
	ContainerStartupHealthCheckTimeoutInSeconds int `json:"ContainerStartupHealthCheckTimeoutInSeconds,omitempty"`
}

// InferenceComponentComputeResourceRequirements is what each copy of a
// component reserves on its instance. Zero means unset (the API's minimums
// are 0.25 cores, 1 accelerator and 128 MB).
type InferenceComponentComputeResourceRequirements struct {
	NumberOfCpuCoresRequired           float64 `json:"NumberOfCpuCoresRequired,omitempty"`
	NumberOfAcceleratorDevicesRequired float64 `json:"NumberOfAcceleratorDevicesRequired,omitempty"`
	MinMemoryRequiredInMb              int     `json:"MinMemoryRequiredInMb"`
	MaxMemoryRequiredInMb              int     `json:"MaxMemoryRequiredInMb,omitempty"`
}

// InferenceComponentRuntimeConfig is a component's requested copy count.
type InferenceComponentRuntimeConfig struct {
	CopyCount int `json:"CopyCount"`
}

// InferenceComponentDeployment is one version of what a component runs: its
// specification as given and a snapshot of the models it names, taken when
// the version was requested, so that deleting a model later does not disturb
// the component.
type InferenceComponentDeployment struct {
	// ID changes whenever the specification changes; copies started for
	// one ID are rolled over to the next.
	ID string `json:"ID"`
	// Generation counts the specification's versions, from 1.
	Generation int `json:"Generation"`
	// Spec is the decoded specification (RuntimeConfig nil); SpecDoc the
	// Specification or Specifications member exactly as the request gave it.
	Spec      InferenceComponentSpec `json:"Spec"`
	SpecDoc   json.RawMessage        `json:"SpecDoc"`
	Models    map[string]ModelSpec   `json:"Models,omitempty"`
	StartTime time.Time              `json:"StartTime"`
}

// Model returns the model a specification runs: the snapshot of its
// ModelName, or a one-container model made of its Container (an adapter's
// container has no Image: its base component's model runs it).
func (d *InferenceComponentDeployment) Model(sp *InferenceComponentSpecification) (ModelSpec, bool) {
	if sp.ModelName != "" {
		m, ok := d.Models[sp.ModelName]
		return m, ok
	}
	if sp.Container == nil {
		return ModelSpec{}, false
	}
	return ModelSpec{PrimaryContainer: &ContainerDefinition{
		Image:        sp.Container.Image,
		ModelDataUrl: sp.Container.ArtifactUrl,
		Environment:  sp.Container.Environment,
	}}, true
}

// InferenceComponentPlacement is how many copies of a component run on
// instances of one type.
type InferenceComponentPlacement struct {
	InstanceType     string `json:"InstanceType"`
	CurrentCopyCount int    `json:"CurrentCopyCount"`
}

// InferenceComponentState is the stored document of an inference component.
// Its Record.Status is one of SageMaker's InferenceComponentStatus values:
// StatusCreating, StatusInService, StatusUpdating, StatusFailed,
// StatusDeleting.
type InferenceComponentState struct {
	// EndpointName is the endpoint's name as created; VariantName the
	// variant (with no ModelName) that hosts the component.
	EndpointName string `json:"EndpointName"`
	VariantName  string `json:"VariantName"`
	// Current is what the component should run: the last specification
	// requested.
	Current InferenceComponentDeployment `json:"Current"`
	// Previous is what ran before an UpdateInferenceComponent changed the
	// specification; hosting rolls copies from Previous to Current, rolls
	// back to it when the new copies fail, and clears it when done.
	Previous *InferenceComponentDeployment `json:"Previous,omitempty"`
	// DesiredCopyCount is the requested number of copies; CurrentCopyCount
	// and PlacementStatus are what hosting observes (healthy copies).
	DesiredCopyCount int                           `json:"DesiredCopyCount"`
	CurrentCopyCount int                           `json:"CurrentCopyCount"`
	PlacementStatus  []InferenceComponentPlacement `json:"PlacementStatus,omitempty"`
	FailureReason    string                        `json:"FailureReason,omitempty"`
	// LastDeploymentConfig echoes the DeploymentConfig of the last
	// UpdateInferenceComponent call that gave one.
	LastDeploymentConfig json.RawMessage `json:"LastDeploymentConfig,omitempty"`
}

// EndpointKey returns the key of the endpoint that hosts the component.
func (st *InferenceComponentState) EndpointKey(rec *Record) EndpointKey {
	return EndpointKey{Account: rec.Account, Region: rec.Region, Name: st.EndpointName}
}
