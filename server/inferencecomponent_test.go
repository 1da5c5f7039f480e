package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// These tests check what the control plane decides about inference
// components (records, statuses, copy counts, errors); they do not wait for
// components to come into service. Every component's container answers
// /ping only after 10 minutes, so none leaves Creating while a test runs.

const (
	icARN = "arn:aws:sagemaker:us-east-1:111111111111:inference-component/"
	epARN = "arn:aws:sagemaker:us-east-1:111111111111:endpoint/"
)

// createComponentEndpoint creates an endpoint whose variants (name and
// instance type pairs) host inference components.
func createComponentEndpoint(t *testing.T, c clients, name string, variants ...string) {
	t.Helper()
	in := &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name + "-config"),
		ExecutionRoleArn:   aws.String("arn:aws:iam::111111111111:role/SageMakerRole"),
	}
	for i := 0; i+1 < len(variants); i += 2 {
		in.ProductionVariants = append(in.ProductionVariants, smtypes.ProductionVariant{
			VariantName:          aws.String(variants[i]),
			InstanceType:         smtypes.ProductionVariantInstanceType(variants[i+1]),
			InitialInstanceCount: aws.Int32(1),
		})
	}
	if _, err := c.sm.CreateEndpointConfig(ctxT(t), in); err != nil {
		t.Fatalf("CreateEndpointConfig %s: %v", name, err)
	}
	if _, err := c.sm.CreateEndpoint(ctxT(t), &sagemaker.CreateEndpointInput{
		EndpointName: aws.String(name), EndpointConfigName: aws.String(name + "-config"),
	}); err != nil {
		t.Fatalf("CreateEndpoint %s: %v", name, err)
	}
}

// slowPing is the Environment of a model that stays out of service.
func slowPing(name string) map[string]string {
	return modelEnv(name, "TESTMODEL_PING_DELAY", "10m")
}

var (
	compute = &smtypes.InferenceComponentComputeResourceRequirements{
		NumberOfCpuCoresRequired: aws.Float32(0.5), MinMemoryRequiredInMb: aws.Int32(256), MaxMemoryRequiredInMb: aws.Int32(1024),
	}
	startup = &smtypes.InferenceComponentStartupParameters{
		ContainerStartupHealthCheckTimeoutInSeconds: aws.Int32(3600), ModelDataDownloadTimeoutInSeconds: aws.Int32(600),
	}
)

func TestInferenceComponentsCreateAndValidation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "m", slowPing("m"))
	createComponentEndpoint(t, c, "ep", "v1", "ml.m5.xlarge")
	createComponentEndpoint(t, c, "ep2", "v1", "ml.m5.xlarge", "v2", "ml.c5.xlarge")
	createConfig(t, c, "plain-config", variantSpec{"AllTraffic", "m", 1, 1})
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("plain"), EndpointConfigName: aws.String("plain-config")}); err != nil {
		t.Fatal(err)
	}
	modelSpec := func() *smtypes.InferenceComponentSpecification {
		return &smtypes.InferenceComponentSpecification{ModelName: aws.String("m"), ComputeResourceRequirements: compute, StartupParameters: startup}
	}
	copies := func(n int32) *smtypes.InferenceComponentRuntimeConfig {
		return &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(n)}
	}
	create := func(in *sagemaker.CreateInferenceComponentInput) error {
		if in.InferenceComponentName == nil {
			in.InferenceComponentName = aws.String("bad")
		}
		_, err := c.sm.CreateInferenceComponent(ctx, in)
		return err
	}

	// References and the checks beyond the shapes.
	for _, tc := range []struct {
		name string
		in   *sagemaker.CreateInferenceComponentInput
		want []string
	}{
		{"no endpoint", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("nope"), Specification: modelSpec(), RuntimeConfig: copies(1)},
			[]string{`Could not find endpoint "` + epARN + `nope".`}},
		{"no specification", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1)},
			[]string{"Either Specification or Specifications must be specified."}},
		{"both forms", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), Specification: modelSpec(),
			Specifications: []smtypes.InferenceComponentSpecification{*modelSpec()}, RuntimeConfig: copies(1)},
			[]string{"Specify either Specification or Specifications, not both."}},
		{"no model", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{ModelName: aws.String("ghost"), ComputeResourceRequirements: compute}},
			[]string{`Could not find model "arn:aws:sagemaker:us-east-1:111111111111:model/ghost".`}},
		{"model and container", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{ModelName: aws.String("m"), Container: &smtypes.InferenceComponentContainerSpecification{Image: aws.String("/bin/true")}, ComputeResourceRequirements: compute}},
			[]string{"Specification: specify either ModelName or Container, not both."}},
		{"nothing to run", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{ComputeResourceRequirements: compute}},
			[]string{"Specification: specify the model to deploy: ModelName, or a Container with an Image."}},
		{"no image", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{Container: &smtypes.InferenceComponentContainerSpecification{ArtifactUrl: aws.String("s3://b/m.tar.gz")}, ComputeResourceRequirements: compute}},
			[]string{"Specification: Container.Image is required when ModelName is not specified."}},
		{"no compute", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{ModelName: aws.String("m")}},
			[]string{"ComputeResourceRequirements is required unless BaseInferenceComponentName is specified"}},
		{"memory", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{ModelName: aws.String("m"), ComputeResourceRequirements: &smtypes.InferenceComponentComputeResourceRequirements{MinMemoryRequiredInMb: aws.Int32(2048), MaxMemoryRequiredInMb: aws.Int32(1024)}}},
			[]string{"MaxMemoryRequiredInMb (1024) must be greater than or equal to MinMemoryRequiredInMb (2048)."}},
		{"no runtime config", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), Specification: modelSpec()},
			[]string{"RuntimeConfig is required unless BaseInferenceComponentName is specified"}},
		{"which variant", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep2"), Specification: modelSpec(), RuntimeConfig: copies(1)},
			[]string{`VariantName is required: endpoint "` + epARN + `ep2" has more than one production variant that can host inference components (v1, v2).`}},
		{"unknown variant", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep2"), VariantName: aws.String("v9"), Specification: modelSpec(), RuntimeConfig: copies(1)},
			[]string{`The variant name "v9" is not present within endpoint "` + epARN + `ep2".`}},
		{"model endpoint", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("plain"), Specification: modelSpec(), RuntimeConfig: copies(1)},
			[]string{`Endpoint "` + epARN + `plain" cannot host inference components: none of the production variants of endpoint configuration "plain-config" is for inference components (a variant without ModelName).`}},
		{"instance type per entry", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specifications: []smtypes.InferenceComponentSpecification{*modelSpec(), *modelSpec()}},
			[]string{"Specifications entry 1: InstanceType is required in each entry of Specifications when there is more than one."}},
		{"instance type of the variant", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep2"), VariantName: aws.String("v2"), RuntimeConfig: copies(1),
			Specifications: []smtypes.InferenceComponentSpecification{{InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Xlarge, ModelName: aws.String("m"), ComputeResourceRequirements: compute}}},
			[]string{`Specifications entry 1: instance type "ml.m5.xlarge" is not an instance type of variant "v2" of endpoint "` + epARN + `ep2" (ml.c5.xlarge).`}},
		{"adapter of nothing", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"),
			Specification: &smtypes.InferenceComponentSpecification{BaseInferenceComponentName: aws.String("ghost"), Container: &smtypes.InferenceComponentContainerSpecification{ArtifactUrl: aws.String("s3://b/a.tar.gz")}}},
			[]string{`Could not find inference component "` + icARN + `ghost".`}},
		// botocore's shapes, checked by the api package.
		{"negative copies", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), Specification: modelSpec(), RuntimeConfig: copies(-1)},
			[]string{"Value '-1' at 'runtimeConfig.copyCount' failed to satisfy constraint: Member must have value greater than or equal to 0"}},
		{"small memory", &sagemaker.CreateInferenceComponentInput{EndpointName: aws.String("ep"), RuntimeConfig: copies(1),
			Specification: &smtypes.InferenceComponentSpecification{ModelName: aws.String("m"), ComputeResourceRequirements: &smtypes.InferenceComponentComputeResourceRequirements{MinMemoryRequiredInMb: aws.Int32(64)}}},
			[]string{"Member must have value greater than or equal to 128"}},
		{"bad name", &sagemaker.CreateInferenceComponentInput{InferenceComponentName: aws.String("bad_name"), EndpointName: aws.String("ep"), Specification: modelSpec(), RuntimeConfig: copies(1)},
			[]string{"Value 'bad_name' at 'inferenceComponentName' failed to satisfy constraint: Member must satisfy regular expression pattern"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiErr(t, create(tc.in), "ValidationException", tc.want...)
		})
	}
	// A refused create leaves nothing behind.
	_, err := c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("bad")})
	apiErr(t, err, "ValidationException", `Could not find inference component "`+icARN+`bad".`)

	// A named model, on the endpoint's only component variant.
	start := time.Now()
	out, err := c.sm.CreateInferenceComponent(ctx, &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String("IC-A"), EndpointName: aws.String("ep"), Specification: modelSpec(), RuntimeConfig: copies(2),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("ml")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.InferenceComponentArn); got != icARN+"ic-a" {
		t.Fatalf("ARN %s", got)
	}
	_, err = c.sm.CreateInferenceComponent(ctx, &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String("ic-a"), EndpointName: aws.String("ep2"), VariantName: aws.String("v1"), Specification: modelSpec(), RuntimeConfig: copies(1),
	})
	apiErr(t, err, "ValidationException", `Cannot create already existing inference component "`+icARN+`ic-a".`)

	// The model may be deleted: the component keeps what it was created with.
	if _, err := c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic-a")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.InferenceComponentName) != "IC-A" || aws.ToString(d.InferenceComponentArn) != icARN+"ic-a" ||
		aws.ToString(d.EndpointName) != "ep" || aws.ToString(d.EndpointArn) != epARN+"ep" || aws.ToString(d.VariantName) != "v1" ||
		d.InferenceComponentStatus != smtypes.InferenceComponentStatusCreating || d.FailureReason != nil || d.LastDeploymentConfig != nil ||
		d.CreationTime == nil || d.CreationTime.Before(start.Add(-time.Second)) || d.LastModifiedTime == nil || !d.LastModifiedTime.Equal(*d.CreationTime) {
		t.Fatalf("Describe: %+v", d)
	}
	if d.RuntimeConfig == nil || aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != 2 || aws.ToInt32(d.RuntimeConfig.CurrentCopyCount) != 0 {
		t.Fatalf("RuntimeConfig: %+v", d.RuntimeConfig)
	}
	sp := d.Specification
	if sp == nil || aws.ToString(sp.ModelName) != "m" || sp.Container != nil || d.Specifications != nil ||
		aws.ToFloat32(sp.ComputeResourceRequirements.NumberOfCpuCoresRequired) != 0.5 || aws.ToInt32(sp.ComputeResourceRequirements.MinMemoryRequiredInMb) != 256 ||
		aws.ToInt32(sp.ComputeResourceRequirements.MaxMemoryRequiredInMb) != 1024 || aws.ToInt32(sp.StartupParameters.ContainerStartupHealthCheckTimeoutInSeconds) != 3600 {
		t.Fatalf("Specification: %+v", sp)
	}

	// A container, on a named variant.
	_, err = c.sm.CreateInferenceComponent(ctx, &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String("ic-b"), EndpointName: aws.String("ep2"), VariantName: aws.String("v2"), RuntimeConfig: copies(1),
		Specification: &smtypes.InferenceComponentSpecification{
			Container:                   &smtypes.InferenceComponentContainerSpecification{Image: aws.String(modelImage(t)), Environment: slowPing("b")},
			ComputeResourceRequirements: compute, StartupParameters: startup,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err = c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic-b")})
	if err != nil {
		t.Fatal(err)
	}
	if ctr := d.Specification.Container; ctr == nil || ctr.DeployedImage == nil || aws.ToString(ctr.DeployedImage.SpecifiedImage) != modelImage(t) ||
		aws.ToString(ctr.DeployedImage.ResolvedImage) != modelImage(t) || ctr.DeployedImage.ResolutionTime == nil || ctr.Environment["TESTMODEL_NAME"] != "b" ||
		aws.ToString(d.VariantName) != "v2" || aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != 1 {
		t.Fatalf("container component: %+v %+v", d, d.Specification.Container)
	}

	// The list form, with no copies yet.
	_, err = c.sm.CreateInferenceComponent(ctx, &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String("ic-c"), EndpointName: aws.String("ep2"), VariantName: aws.String("v1"), RuntimeConfig: copies(0),
		Specifications: []smtypes.InferenceComponentSpecification{{
			InstanceType:                smtypes.ProductionVariantInstanceTypeMlM5Xlarge,
			Container:                   &smtypes.InferenceComponentContainerSpecification{Image: aws.String(modelImage(t)), Environment: slowPing("c")},
			ComputeResourceRequirements: compute,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err = c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic-c")})
	if err != nil {
		t.Fatal(err)
	}
	if d.Specification != nil || len(d.Specifications) != 1 || d.Specifications[0].InstanceType != smtypes.ProductionVariantInstanceTypeMlM5Xlarge ||
		aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != 0 {
		t.Fatalf("list form: %+v", d)
	}

	// Adapters ride on their base's variant and copies.
	_, err = c.sm.CreateInferenceComponent(ctx, &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String("ic-b-adapter"), EndpointName: aws.String("ep2"),
		Specification: &smtypes.InferenceComponentSpecification{BaseInferenceComponentName: aws.String("ic-b"), Container: &smtypes.InferenceComponentContainerSpecification{ArtifactUrl: aws.String("s3://bucket/adapter.tar.gz")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err = c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic-b-adapter")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.VariantName) != "v2" || aws.ToString(d.Specification.BaseInferenceComponentName) != "ic-b" ||
		aws.ToString(d.Specification.Container.ArtifactUrl) != "s3://bucket/adapter.tar.gz" || aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != 1 {
		t.Fatalf("adapter: %+v", d)
	}
	_, err = c.sm.DeleteInferenceComponent(ctx, &sagemaker.DeleteInferenceComponentInput{InferenceComponentName: aws.String("ic-b")})
	apiErr(t, err, "ValidationException", `Cannot delete inference component "`+icARN+`ic-b": adapter inference components use it as their base (ic-b-adapter).`)

	// Updates wait until a component is in service.
	_, err = c.sm.UpdateInferenceComponent(ctx, &sagemaker.UpdateInferenceComponentInput{InferenceComponentName: aws.String("ic-a"), RuntimeConfig: copies(3)})
	apiErr(t, err, "ValidationException", `Cannot update in-progress inference component "`+icARN+`ic-a".`)
	_, err = c.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
		InferenceComponentName: aws.String("ic-a"), DesiredRuntimeConfig: copies(3),
	})
	apiErr(t, err, "ValidationException", `Cannot update in-progress inference component "`+icARN+`ic-a".`)
	_, err = c.sm.UpdateInferenceComponent(ctx, &sagemaker.UpdateInferenceComponentInput{InferenceComponentName: aws.String("ghost"), RuntimeConfig: copies(3)})
	apiErr(t, err, "ValidationException", `Could not find inference component "`+icARN+`ghost".`)
	_, err = c.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
		InferenceComponentName: aws.String("ghost"), DesiredRuntimeConfig: copies(3),
	})
	apiErr(t, err, "ValidationException", `Could not find inference component "`+icARN+`ghost".`)

	// Tags.
	arn := aws.String(icARN + "ic-a")
	tags, err := c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" || aws.ToString(tags.Tags[0].Value) != "ml" {
		t.Fatalf("ListTags: %+v %v", tags, err)
	}
	if _, err := c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []smtypes.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "env" {
		t.Fatalf("tags after add/delete: %+v", tags.Tags)
	}

	// Deleting: the control plane marks the component Deleting and hosting
	// removes it, so it is Deleting or gone.
	if _, err := c.sm.DeleteInferenceComponent(ctx, &sagemaker.DeleteInferenceComponentInput{InferenceComponentName: aws.String("ic-b-adapter")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.DeleteInferenceComponent(ctx, &sagemaker.DeleteInferenceComponentInput{InferenceComponentName: aws.String("ic-b")}); err != nil {
		t.Fatal(err)
	}
	d, err = c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic-b")})
	if err != nil {
		apiErr(t, err, "ValidationException", `Could not find inference component "`+icARN+`ic-b".`)
	} else {
		if d.InferenceComponentStatus != smtypes.InferenceComponentStatusDeleting {
			t.Fatalf("status after delete: %s", d.InferenceComponentStatus)
		}
		_, err = c.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
			InferenceComponentName: aws.String("ic-b"), DesiredRuntimeConfig: copies(3),
		})
		// Hosting may finish the deletion between the two calls.
		if err == nil || (!strings.Contains(err.Error(), `Cannot update in-progress inference component "`+icARN+`ic-b".`) &&
			!strings.Contains(err.Error(), `Could not find inference component "`+icARN+`ic-b".`)) {
			t.Fatalf("update of a deleting component: %v", err)
		}
	}
	_, err = c.sm.DeleteInferenceComponent(ctx, &sagemaker.DeleteInferenceComponentInput{InferenceComponentName: aws.String("ghost")})
	apiErr(t, err, "ValidationException", `Could not find inference component "`+icARN+`ghost".`)
}

// copiesOf is the copy count of component i of the list test: 1 to 3
// copies, each fitting the endpoint's hosts (they never pass /ping, so
// every component stays Creating).
func copiesOf(i int) int32 { return int32(i%3) + 1 }

func TestInferenceComponentsListAndAccounts(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createComponentEndpoint(t, c, "ep", "v1", "ml.m5.xlarge")
	createComponentEndpoint(t, c, "ep2", "v1", "ml.m5.xlarge", "v2", "ml.c5.xlarge")
	// ic0..ic6, created in that order: even ones on ep, odd ones on ep2
	// (ic1 and ic5 on v1, ic3 on v2).
	var names []string
	for i := 0; i < 7; i++ {
		name := fmt.Sprintf("ic%d-%s", i, map[bool]string{true: "blue", false: "red"}[i%2 == 0])
		names = append(names, name)
		in := &sagemaker.CreateInferenceComponentInput{
			InferenceComponentName: aws.String(name), EndpointName: aws.String("ep"), RuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(copiesOf(i))},
			Specification: &smtypes.InferenceComponentSpecification{
				Container:                   &smtypes.InferenceComponentContainerSpecification{Image: aws.String(modelImage(t)), Environment: slowPing(name)},
				ComputeResourceRequirements: compute, StartupParameters: startup,
			},
		}
		if i%2 == 1 {
			in.EndpointName, in.VariantName = aws.String("ep2"), aws.String(map[bool]string{true: "v2", false: "v1"}[i == 3])
		}
		if _, err := c.sm.CreateInferenceComponent(ctx, in); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	list := func(in *sagemaker.ListInferenceComponentsInput) []string {
		t.Helper()
		var got []string
		p := sagemaker.NewListInferenceComponentsPaginator(c.sm, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.InferenceComponents {
				got = append(got, aws.ToString(s.InferenceComponentName))
			}
		}
		return got
	}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}

	// Default: CreationTime, Descending, 10 a page.
	l, err := c.sm.ListInferenceComponents(ctx, &sagemaker.ListInferenceComponentsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.InferenceComponents) != 7 || l.NextToken != nil {
		t.Fatalf("ListInferenceComponents: %d, next %v", len(l.InferenceComponents), l.NextToken)
	}
	s := l.InferenceComponents[0]
	if aws.ToString(s.InferenceComponentName) != "ic6-blue" || aws.ToString(s.InferenceComponentArn) != icARN+"ic6-blue" ||
		aws.ToString(s.EndpointName) != "ep" || aws.ToString(s.EndpointArn) != epARN+"ep" || aws.ToString(s.VariantName) != "v1" ||
		s.InferenceComponentStatus != smtypes.InferenceComponentStatusCreating || s.CreationTime == nil || s.LastModifiedTime == nil {
		t.Fatalf("summary: %+v", s)
	}
	pages := 0
	p := sagemaker.NewListInferenceComponentsPaginator(c.sm, &sagemaker.ListInferenceComponentsInput{MaxResults: aws.Int32(3)})
	var paged []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, s := range page.InferenceComponents {
			paged = append(paged, aws.ToString(s.InferenceComponentName))
		}
	}
	if pages != 3 {
		t.Fatalf("%d pages", pages)
	}
	check("paged", paged, reversed...)
	check("Name, Ascending", list(&sagemaker.ListInferenceComponentsInput{SortBy: smtypes.InferenceComponentSortKeyName, SortOrder: smtypes.OrderKeyAscending}), names...)
	check("EndpointNameEquals", list(&sagemaker.ListInferenceComponentsInput{EndpointNameEquals: aws.String("ep2")}), "ic5-red", "ic3-red", "ic1-red")
	check("VariantNameEquals", list(&sagemaker.ListInferenceComponentsInput{VariantNameEquals: aws.String("v1"), SortOrder: smtypes.OrderKeyAscending}),
		"ic0-blue", "ic1-red", "ic2-blue", "ic4-blue", "ic5-red", "ic6-blue")
	check("endpoint and variant", list(&sagemaker.ListInferenceComponentsInput{EndpointNameEquals: aws.String("ep2"), VariantNameEquals: aws.String("v2")}), "ic3-red")
	check("NameContains", list(&sagemaker.ListInferenceComponentsInput{NameContains: aws.String("BLUE"), SortBy: smtypes.InferenceComponentSortKeyName}),
		"ic6-blue", "ic4-blue", "ic2-blue", "ic0-blue")
	check("StatusEquals InService", list(&sagemaker.ListInferenceComponentsInput{StatusEquals: smtypes.InferenceComponentStatusInService}))
	check("CreationTimeAfter now", list(&sagemaker.ListInferenceComponentsInput{CreationTimeAfter: aws.Time(time.Now().Add(time.Second))}))
	check("CreationTimeBefore now", list(&sagemaker.ListInferenceComponentsInput{CreationTimeBefore: aws.Time(time.Now().Add(time.Second))}), reversed...)
	_, err = c.sm.ListInferenceComponents(ctx, &sagemaker.ListInferenceComponentsInput{MaxResults: aws.Int32(101)})
	apiErr(t, err, "ValidationException", "Member must have value less than or equal to 100")
	_, err = c.sm.ListInferenceComponents(ctx, &sagemaker.ListInferenceComponentsInput{NextToken: aws.String("garbage!")})
	apiErr(t, err, "ValidationException", "pagination token")

	// Each desired copy count as created.
	for i, name := range names {
		d, err := c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(d.RuntimeConfig.DesiredCopyCount) != copiesOf(i) {
			t.Fatalf("%s: desired copies %d", name, aws.ToInt32(d.RuntimeConfig.DesiredCopyCount))
		}
	}

	// Another account, or another region, sees none of it.
	b := newClients(srv, keyB)
	_, err = b.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic0-blue")})
	apiErr(t, err, "ValidationException", `Could not find inference component "arn:aws:sagemaker:us-east-1:222222222222:inference-component/ic0-blue".`)
	lb, err := b.sm.ListInferenceComponents(ctx, &sagemaker.ListInferenceComponentsInput{})
	if err != nil || len(lb.InferenceComponents) != 0 {
		t.Fatalf("account B lists %+v %v", lb, err)
	}
	_, err = b.sm.CreateInferenceComponent(ctx, &sagemaker.CreateInferenceComponentInput{
		InferenceComponentName: aws.String("mine"), EndpointName: aws.String("ep"), RuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(1)},
		Specification: &smtypes.InferenceComponentSpecification{Container: &smtypes.InferenceComponentContainerSpecification{Image: aws.String("/bin/true")}, ComputeResourceRequirements: compute},
	})
	apiErr(t, err, "ValidationException", `Could not find endpoint "arn:aws:sagemaker:us-east-1:222222222222:endpoint/ep".`)
	_, err = b.sm.DeleteInferenceComponent(ctx, &sagemaker.DeleteInferenceComponentInput{InferenceComponentName: aws.String("ic0-blue")})
	apiErr(t, err, "ValidationException", "Could not find inference component")
	_, err = b.sm.UpdateInferenceComponentRuntimeConfig(ctx, &sagemaker.UpdateInferenceComponentRuntimeConfigInput{
		InferenceComponentName: aws.String("ic0-blue"), DesiredRuntimeConfig: &smtypes.InferenceComponentRuntimeConfig{CopyCount: aws.Int32(0)},
	})
	apiErr(t, err, "ValidationException", "Could not find inference component")
	_, err = b.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(icARN + "ic0-blue")})
	apiErr(t, err, "ValidationException", "Could not find resource")
	eu := newClientsIn(srv, keyA, "eu-west-1")
	le, err := eu.sm.ListInferenceComponents(ctx, &sagemaker.ListInferenceComponentsInput{})
	if err != nil || len(le.InferenceComponents) != 0 {
		t.Fatalf("another region lists %+v %v", le, err)
	}
	// The component is untouched.
	d, err := c.sm.DescribeInferenceComponent(ctx, &sagemaker.DescribeInferenceComponentInput{InferenceComponentName: aws.String("ic0-blue")})
	if err != nil || d.InferenceComponentStatus != smtypes.InferenceComponentStatusCreating {
		t.Fatalf("after the other account's calls: %+v %v", d, err)
	}
}
