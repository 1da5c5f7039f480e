package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

func TestModelsCRUDAndValidation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)

	out, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("My-Model"),
		ExecutionRoleArn: aws.String("arn:aws:iam::111111111111:role/Role"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:        aws.String("/usr/bin/true"),
			ModelDataUrl: aws.String("s3://bucket/path/model.tar.gz"),
			Environment:  map[string]string{"A": "1", "SAGEMAKER_PROGRAM": "inference.py"},
		},
		VpcConfig: &smtypes.VpcConfig{SecurityGroupIds: []string{"sg-1"}, Subnets: []string{"subnet-1"}},
		Tags:      []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("ml")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.ModelArn), "arn:aws:sagemaker:us-east-1:111111111111:model/my-model"; got != want {
		t.Fatalf("ARN %s, want %s", got, want)
	}
	d, err := c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("My-Model")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ModelName) != "My-Model" || aws.ToString(d.PrimaryContainer.ModelDataUrl) != "s3://bucket/path/model.tar.gz" ||
		d.PrimaryContainer.Environment["SAGEMAKER_PROGRAM"] != "inference.py" || d.VpcConfig == nil || d.VpcConfig.Subnets[0] != "subnet-1" ||
		d.CreationTime == nil || time.Since(*d.CreationTime) > time.Minute {
		t.Fatalf("DescribeModel lost fields: %+v", d)
	}
	// Names are unique regardless of case.
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("my-model"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("/bin/true")}})
	apiErr(t, err, "ValidationException", `Cannot create already existing model "arn:aws:sagemaker:us-east-1:111111111111:model/my-model".`)

	// Validation from botocore's shapes.
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("bad_name"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("/bin/true")}})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value 'bad_name' at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern")
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("no-container")})
	apiErr(t, err, "ValidationException", "PrimaryContainer or Containers")
	_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(strings.Repeat("a", 64)), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("/bin/true")}})
	apiErr(t, err, "ValidationException", "Member must have length less than or equal to 63")
	// A failed create leaves nothing behind.
	_, err = c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("no-container")})
	apiErr(t, err, "ValidationException", `Could not find model "arn:aws:sagemaker:us-east-1:111111111111:model/no-container".`)

	// Tags.
	arn := out.ModelArn
	tags, err := c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "ml" {
		t.Fatalf("ListTags %+v %v", tags, err)
	}
	if _, err := c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("core")}, {Key: aws.String("env"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = c.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "core" {
		t.Fatalf("tags after add/delete: %+v", tags.Tags)
	}
	_, err = c.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:111111111111:model/ghost"), Tags: []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	apiErr(t, err, "ValidationException", "ghost")

	if _, err := c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("MY-MODEL")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("My-Model")})
	apiErr(t, err, "ValidationException", "Could not find model")
}

func TestListPaginationSortingAndFilters(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	for i := 0; i < 7; i++ {
		if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
			ModelName: aws.String(fmt.Sprintf("m%d-%s", i, map[bool]string{true: "blue", false: "red"}[i%2 == 0])), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("/bin/true")},
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	var names []string
	p := sagemaker.NewListModelsPaginator(c.sm, &sagemaker.ListModelsInput{MaxResults: aws.Int32(3)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range page.Models {
			names = append(names, aws.ToString(m.ModelName))
		}
	}
	want := []string{"m6-blue", "m5-red", "m4-blue", "m3-red", "m2-blue", "m1-red", "m0-blue"} // CreationTime, Descending by default
	if pages != 3 || strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("%d pages: %v", pages, names)
	}
	l, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyAscending, NameContains: aws.String("BLUE")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Models) != 4 || aws.ToString(l.Models[0].ModelName) != "m0-blue" || aws.ToString(l.Models[3].ModelName) != "m6-blue" {
		t.Fatalf("NameContains+Name sort: %+v", l.Models)
	}
	mid := time.Now()
	_, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(101)})
	apiErr(t, err, "ValidationException", "Member must have value less than or equal to 100")
	l, _ = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{CreationTimeAfter: aws.Time(mid)})
	if len(l.Models) != 0 {
		t.Fatalf("CreationTimeAfter now: %d models", len(l.Models))
	}
	_, err = c.sm.ListModels(ctx, &sagemaker.ListModelsInput{NextToken: aws.String("garbage!")})
	apiErr(t, err, "ValidationException", "pagination token")
}

func TestEndpointConfigsValidationAndLaterFields(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "m", modelEnv("m"))

	_, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("cfg"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("missing"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
	})
	apiErr(t, err, "ValidationException", `Could not find model "arn:aws:sagemaker:us-east-1:111111111111:model/missing".`)

	var eleven []smtypes.ProductionVariant
	for i := 0; i < 11; i++ {
		eleven = append(eleven, smtypes.ProductionVariant{VariantName: aws.String(fmt.Sprintf("v%d", i)), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large})
	}
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg"), ProductionVariants: eleven})
	apiErr(t, err, "ValidationException", "at 'productionVariants' failed to satisfy constraint: Member must have length less than or equal to 10")

	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("cfg"),
		ProductionVariants: []smtypes.ProductionVariant{
			{VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large},
			{VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large},
		},
	})
	apiErr(t, err, "ValidationException", `The variant name "v" was non-unique within the request.`)

	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("cfg"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(0), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
	})
	apiErr(t, err, "ValidationException", "Member must have value greater than or equal to 1")

	// Fields later features use are validated, stored and returned.
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("cfg"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(2), InstanceType: smtypes.ProductionVariantInstanceTypeMlC5Xlarge,
			RoutingConfig: &smtypes.ProductionVariantRoutingConfig{RoutingStrategy: smtypes.RoutingStrategyRandom}}},
		DataCaptureConfig: &smtypes.DataCaptureConfig{
			InitialSamplingPercentage: aws.Int32(50), DestinationS3Uri: aws.String("s3://bucket/capture"),
			CaptureOptions:           []smtypes.CaptureOption{{CaptureMode: smtypes.CaptureModeInput}, {CaptureMode: smtypes.CaptureModeOutput}},
			CaptureContentTypeHeader: &smtypes.CaptureContentTypeHeader{CsvContentTypes: []string{"text/csv"}},
		},
		AsyncInferenceConfig: &smtypes.AsyncInferenceConfig{OutputConfig: &smtypes.AsyncInferenceOutputConfig{S3OutputPath: aws.String("s3://bucket/out")}},
		Tags:                 []smtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("cfg")})
	if err != nil {
		t.Fatal(err)
	}
	if d.DataCaptureConfig == nil || aws.ToInt32(d.DataCaptureConfig.InitialSamplingPercentage) != 50 || len(d.DataCaptureConfig.CaptureOptions) != 2 ||
		d.AsyncInferenceConfig == nil || aws.ToString(d.AsyncInferenceConfig.OutputConfig.S3OutputPath) != "s3://bucket/out" ||
		d.ProductionVariants[0].RoutingConfig.RoutingStrategy != smtypes.RoutingStrategyRandom || aws.ToString(d.EndpointConfigArn) != "arn:aws:sagemaker:us-east-1:111111111111:endpoint-config/cfg" {
		t.Fatalf("DescribeEndpointConfig: %+v", d)
	}
	_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("CFG"), ProductionVariants: eleven[:1]})
	apiErr(t, err, "ValidationException", "Cannot create already existing endpoint configuration")
	l, _ := c.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{})
	if len(l.EndpointConfigs) != 1 {
		t.Fatalf("ListEndpointConfigs: %+v", l.EndpointConfigs)
	}
	if _, err := c.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("cfg")})
	apiErr(t, err, "ValidationException", `Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:111111111111:endpoint-config/cfg".`)
}

func TestEndpointLifecycleAndDescribe(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	createModel(t, c, "m", modelEnv("m"))
	createConfig(t, c, "cfg", variantSpec{"A", "m", 2, 3}, variantSpec{"B", "m", 1, 1})

	_, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("nope")})
	apiErr(t, err, "ValidationException", "Could not find endpoint configuration")
	_, err = c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ep")})
	apiErr(t, err, "ValidationException", `Could not find endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep".`)

	out, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep"), EndpointConfigName: aws.String("cfg")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.EndpointArn) != "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep" {
		t.Fatalf("ARN %s", aws.ToString(out.EndpointArn))
	}
	_, err = c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("EP"), EndpointConfigName: aws.String("cfg")})
	apiErr(t, err, "ValidationException", `Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep".`)

	// The config and model may be deleted: the endpoint keeps its snapshot.
	c.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("cfg")})
	c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("m")})

	d := waitInService(t, c, "ep")
	if aws.ToString(d.EndpointConfigName) != "cfg" || len(d.ProductionVariants) != 2 {
		t.Fatalf("Describe: %+v", d)
	}
	for _, v := range d.ProductionVariants {
		want := map[string][2]float32{"A": {2, 3}, "B": {1, 1}}[aws.ToString(v.VariantName)]
		if float32(aws.ToInt32(v.CurrentInstanceCount)) != want[0] || float32(aws.ToInt32(v.DesiredInstanceCount)) != want[0] ||
			aws.ToFloat32(v.CurrentWeight) != want[1] || aws.ToFloat32(v.DesiredWeight) != want[1] ||
			len(v.DeployedImages) != 1 || aws.ToString(v.DeployedImages[0].SpecifiedImage) != modelImage(t) {
			t.Fatalf("variant %s: %+v", aws.ToString(v.VariantName), v)
		}
	}
	l, err := c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: smtypes.EndpointStatusInService})
	if err != nil || len(l.Endpoints) != 1 || l.Endpoints[0].EndpointStatus != smtypes.EndpointStatusInService {
		t.Fatalf("ListEndpoints: %+v %v", l, err)
	}
	// Invocations work; both variants serve.
	seen := map[string]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		o, _ := invokeJSON(t, c, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("{}"), ContentType: aws.String("application/json")})
		seen[aws.ToString(o.InvokedProductionVariant)] = true
	}
	if !seen["A"] || !seen["B"] {
		t.Fatalf("variants seen: %v", seen)
	}
	// The endpoint name in the runtime path is case-sensitive.
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("EP"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "Endpoint EP of account 111111111111 not found.")

	if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("ep")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointDeletedWaiter(c.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ep")}, time.Minute); err != nil {
		t.Fatalf("EndpointDeleted waiter: %v", err)
	}
	_, err = c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep"), Body: []byte("{}")})
	apiErr(t, err, "ValidationError", "not found")
}

func TestUnknownOperationsAndRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	c := newClients(srv, keyA)
	ctx := ctxT(t)
	_, err := c.sm.CreateTrainingJob(ctx, &sagemaker.CreateTrainingJobInput{
		TrainingJobName: aws.String("t"), RoleArn: aws.String("arn:aws:iam::111111111111:role/r"),
		OutputDataConfig:       &smtypes.OutputDataConfig{S3OutputPath: aws.String("s3://b/o")},
		ResourceConfig:         &smtypes.ResourceConfig{InstanceCount: aws.Int32(1), InstanceType: smtypes.TrainingInstanceTypeMlM5Large, VolumeSizeInGB: aws.Int32(1)},
		StoppingCondition:      &smtypes.StoppingCondition{MaxRuntimeInSeconds: aws.Int32(60)},
		AlgorithmSpecification: &smtypes.AlgorithmSpecification{TrainingInputMode: smtypes.TrainingInputModeFile, TrainingImage: aws.String("x")},
	})
	apiErr(t, err, "UnknownOperationException", "CreateTrainingJob")

	// Unauthenticated junk gets AWS-shaped JSON, never HTML or a panic.
	for _, tc := range []struct{ method, path, target string }{
		{"GET", "/", ""}, {"POST", "/", ""}, {"POST", "/", "SageMaker.Nope"}, {"GET", "/nowhere", ""},
		{"POST", "/endpoints/x/invocations", ""}, {"DELETE", "/endpoints/x/what", ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL()+tc.path, strings.NewReader("{"))
		if tc.target != "" {
			req.Header.Set("X-Amz-Target", tc.target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || resp.Header.Get("X-Amzn-ErrorType") == "" || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
			t.Errorf("%s %s: status %d type %q content type %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), resp.Header.Get("Content-Type"))
		}
	}
}
