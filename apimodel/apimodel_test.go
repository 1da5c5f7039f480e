package apimodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sagehost/sagehost"
)

const (
	roleARN  = "arn:aws:iam::123456789012:role/SageMakerRole"
	image    = "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest"
	endpoint = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint"
)

// decodeCase is one DecodeInput call and what it must give: the normalised
// JSON (want), or an error code and exact message.
type decodeCase struct {
	name string
	op   string
	body string
	want string // normalised output when code is ""
	code string
	msg  string
}

func variants(n int) (body, rendered string) {
	var bs, rs []string
	for i := 1; i <= n; i++ {
		bs = append(bs, fmt.Sprintf(`{"VariantName":"v%d","ModelName":"m","InitialInstanceCount":1,"InstanceType":"ml.m5.large","InitialVariantWeight":1}`, i))
		rs = append(rs, fmt.Sprintf("{VariantName=v%d, ModelName=m, InitialInstanceCount=1, InstanceType=ml.m5.large, InitialVariantWeight=1.0}", i))
	}
	return "[" + strings.Join(bs, ",") + "]", "[" + strings.Join(rs, ", ") + "]"
}

func tags(n int) (body, rendered string) {
	var bs, rs []string
	for i := 1; i <= n; i++ {
		bs = append(bs, fmt.Sprintf(`{"Key":"k%d","Value":"v"}`, i))
		rs = append(rs, fmt.Sprintf("{Key=k%d, Value=v}", i))
	}
	return "[" + strings.Join(bs, ",") + "]", "[" + strings.Join(rs, ", ") + "]"
}

func envMap(n int) string {
	var bs []string
	for i := 0; i < n; i++ {
		bs = append(bs, fmt.Sprintf(`"K%03d":"v"`, i))
	}
	return "{" + strings.Join(bs, ",") + "}"
}

func decodeCases() []decodeCase {
	v11, v11r := variants(11)
	v1, _ := variants(1)
	t51, t51r := tags(51)
	t50, _ := tags(50)
	long1025 := strings.Repeat("x", 1025)
	name64 := strings.Repeat("a", 64)
	instanceTypes := strings.Join(SageMaker().shapes["ProductionVariantInstanceType"].Enum, ", ")
	const (
		VE = sagehost.CodeValidationException
		SE = sagehost.CodeSerializationException
	)
	return []decodeCase{
		// CreateModel
		{name: "model ok", op: "CreateModel",
			body: `{"ModelName":"my-model","PrimaryContainer":{"Image":"` + image + `","ModelDataUrl":"s3://bucket/model.tar.gz","Environment":{"B":"2","A":"1"}},"ExecutionRoleArn":"` + roleARN + `","Tags":[{"Key":"team","Value":"ml"}],"EnableNetworkIsolation":false}`,
			want: `{"ModelName":"my-model","PrimaryContainer":{"Image":"` + image + `","ModelDataUrl":"s3://bucket/model.tar.gz","Environment":{"A":"1","B":"2"}},"ExecutionRoleArn":"` + roleARN + `","Tags":[{"Key":"team","Value":"ml"}],"EnableNetworkIsolation":false}`},
		{name: "model unknown members dropped", op: "CreateModel",
			body: `{"Bogus":1,"ModelName":"m","PrimaryContainer":{"Image":"i","Nope":{"x":[1,2]}},"Tags":[{"Key":"a","Value":"b","Extra":true}]}`,
			want: `{"ModelName":"m","PrimaryContainer":{"Image":"i"},"Tags":[{"Key":"a","Value":"b"}]}`},
		{name: "model missing name", op: "CreateModel", body: `{"PrimaryContainer":{"Image":"i"}}`, code: VE,
			msg: "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: Member must not be null"},
		{name: "model name pattern", op: "CreateModel", body: `{"ModelName":"my_model"}`, code: VE,
			msg: `1 validation error detected: Value 'my_model' at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?`},
		{name: "model name too long", op: "CreateModel", body: `{"ModelName":"` + name64 + `"}`, code: VE,
			msg: "1 validation error detected: Value '" + name64 + "' at 'modelName' failed to satisfy constraint: Member must have length less than or equal to 63"},
		{name: "model role length and pattern", op: "CreateModel", body: `{"ModelName":"m","ExecutionRoleArn":"arn:aws:iam::1:role"}`, code: VE,
			msg: `2 validation errors detected: Value 'arn:aws:iam::1:role' at 'executionRoleArn' failed to satisfy constraint: Member must have length greater than or equal to 20; ` +
				`Value 'arn:aws:iam::1:role' at 'executionRoleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`},
		{name: "model environment key pattern", op: "CreateModel", body: `{"ModelName":"m","PrimaryContainer":{"Environment":{"1BAD":"x","OK":"y"}}}`, code: VE,
			msg: "1 validation error detected: Value '{1BAD=x, OK=y}' at 'primaryContainer.environment' failed to satisfy constraint: " +
				"Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]*]"},
		{name: "model environment value too long", op: "CreateModel", body: `{"ModelName":"m","PrimaryContainer":{"Environment":{"K":"` + long1025 + `"}}}`, code: VE,
			msg: "1 validation error detected: Value '{K=" + long1025 + "}' at 'primaryContainer.environment' failed to satisfy constraint: " +
				`Map value must satisfy constraint: [Member must have length less than or equal to 1024, Member must satisfy regular expression pattern: [\S\s]*]`},
		{name: "model environment too many", op: "CreateModel", body: `{"ModelName":"m","Containers":[{"Image":"i"},{"Environment":` + envMap(101) + `}]}`, code: VE,
			msg: "1 validation error detected: Value '" + strings.NewReplacer(`"`, "", ":", "=", ",", ", ").Replace(envMap(101)) + "' at 'containers.2.member.environment' failed to satisfy constraint: Member must have length less than or equal to 100"},
		{name: "model image and url patterns", op: "CreateModel", body: `{"ModelName":"m","PrimaryContainer":{"Image":"my image","ModelDataUrl":"ftp://x/y"}}`, code: VE,
			msg: `2 validation errors detected: Value 'my image' at 'primaryContainer.image' failed to satisfy constraint: Member must satisfy regular expression pattern: [\S]+; ` +
				`Value 'ftp://x/y' at 'primaryContainer.modelDataUrl' failed to satisfy constraint: Member must satisfy regular expression pattern: (https|s3)://([^/]+)/?(.*)|file://[^\n\r]*|/[^\n\r]*`},
		{name: "model tag key null", op: "CreateModel", body: `{"ModelName":"m","Tags":[{"Key":"a","Value":"b"},{"Value":"c"},null]}`, code: VE,
			msg: "2 validation errors detected: Value null at 'tags.2.member.key' failed to satisfy constraint: Member must not be null; Value null at 'tags.3.member' failed to satisfy constraint: Member must not be null"},
		{name: "model structure as string", op: "CreateModel", body: `{"ModelName":"m","PrimaryContainer":"i"}`, code: SE,
			msg: "Cannot deserialize member 'primaryContainer': expected a structure (JSON object), found a string."},
		{name: "model boolean as string", op: "CreateModel", body: `{"ModelName":"m","EnableNetworkIsolation":"true"}`, code: SE,
			msg: "Cannot deserialize member 'enableNetworkIsolation': expected a boolean, found a string."},
		{name: "model tags as object", op: "CreateModel", body: `{"ModelName":"m","Tags":{"Key":"a"}}`, code: SE,
			msg: "Cannot deserialize member 'tags': expected a list (JSON array), found an object."},
		{name: "model environment value number", op: "CreateModel", body: `{"ModelName":"m","PrimaryContainer":{"Environment":{"A":1}}}`, code: SE,
			msg: "Cannot deserialize member 'primaryContainer.environment.A': expected a string, found a number."},

		// CreateEndpointConfig
		{name: "config ok", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":` + v1 + `}`,
			want: `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v1","ModelName":"m","InitialInstanceCount":1,"InstanceType":"ml.m5.large","InitialVariantWeight":1}]}`},
		{name: "config 11 variants", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":` + v11 + `}`, code: VE,
			msg: "1 validation error detected: Value '" + v11r + "' at 'productionVariants' failed to satisfy constraint: Member must have length less than or equal to 10"},
		{name: "config no variants", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":[]}`, code: VE,
			msg: "1 validation error detected: Value '[]' at 'productionVariants' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{name: "config missing all", op: "CreateEndpointConfig", body: ``, code: VE,
			msg: "2 validation errors detected: Value null at 'endpointConfigName' failed to satisfy constraint: Member must not be null; Value null at 'productionVariants' failed to satisfy constraint: Member must not be null"},
		{name: "config variant errors", op: "CreateEndpointConfig",
			body: `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"ok"},{"VariantName":"bad_name","InitialInstanceCount":0,"InstanceType":"ml.fake.large","InitialVariantWeight":-0.5}]}`, code: VE,
			msg: `4 validation errors detected: Value 'bad_name' at 'productionVariants.2.member.variantName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; ` +
				`Value '0' at 'productionVariants.2.member.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1; ` +
				`Value 'ml.fake.large' at 'productionVariants.2.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [` + instanceTypes + `]; ` +
				`Value '-0.5' at 'productionVariants.2.member.initialVariantWeight' failed to satisfy constraint: Member must have value greater than or equal to 0`},
		{name: "config variant name missing", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":[{"ModelName":"m"}]}`, code: VE,
			msg: "1 validation error detected: Value null at 'productionVariants.1.member.variantName' failed to satisfy constraint: Member must not be null"},
		{name: "config count fractional", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","InitialInstanceCount":1.5}]}`, code: SE,
			msg: "Cannot deserialize member 'productionVariants.1.member.initialInstanceCount': 1.5 is not an integer."},
		{name: "config count out of range", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","InitialInstanceCount":3000000000}]}`, code: SE,
			msg: "Cannot deserialize member 'productionVariants.1.member.initialInstanceCount': 3000000000 is out of range for an integer."},
		{name: "config count exact float", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","InitialInstanceCount":2.0,"InitialVariantWeight":5e-1}]}`,
			want: `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","InitialInstanceCount":2,"InitialVariantWeight":0.5}]}`},
		{name: "config variants as string", op: "CreateEndpointConfig", body: `{"EndpointConfigName":"c","ProductionVariants":"v"}`, code: SE,
			msg: "Cannot deserialize member 'productionVariants': expected a list (JSON array), found a string."},
		{name: "config name number", op: "CreateEndpointConfig", body: `{"EndpointConfigName":7,"ProductionVariants":[]}`, code: SE,
			msg: "Cannot deserialize member 'endpointConfigName': expected a string, found a number."},

		// CreateEndpoint
		{name: "endpoint ok", op: "CreateEndpoint", body: `{"EndpointConfigName":"c","EndpointName":"e","Tags":[]}`,
			want: `{"EndpointName":"e","EndpointConfigName":"c","Tags":[]}`},
		{name: "endpoint name pattern", op: "CreateEndpoint", body: `{"EndpointName":"abc_","EndpointConfigName":"c"}`, code: VE,
			msg: "1 validation error detected: Value 'abc_' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"},
		{name: "endpoint missing", op: "CreateEndpoint", body: `{}`, code: VE,
			msg: "2 validation errors detected: Value null at 'endpointName' failed to satisfy constraint: Member must not be null; Value null at 'endpointConfigName' failed to satisfy constraint: Member must not be null"},
		{name: "endpoint null members", op: "CreateEndpoint", body: `{"EndpointName":null,"EndpointConfigName":"c","Tags":null}`, code: VE,
			msg: "1 validation error detected: Value null at 'endpointName' failed to satisfy constraint: Member must not be null"},
		{name: "endpoint unicode name", op: "CreateEndpoint", body: `{"EndpointName":"caf\u00e9","EndpointConfigName":"c"}`, code: VE,
			msg: "1 validation error detected: Value 'café' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"},

		// ListEndpoints
		{name: "list empty", op: "ListEndpoints", body: `{}`, want: `{}`},
		{name: "list empty body", op: "ListEndpoints", body: ``, want: `{}`},
		{name: "list null body", op: "ListEndpoints", body: ` null `, want: `{}`},
		{name: "list max 0", op: "ListEndpoints", body: `{"MaxResults":0}`, code: VE,
			msg: "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{name: "list max 101", op: "ListEndpoints", body: `{"MaxResults":101}`, code: VE,
			msg: "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{name: "list bad sort", op: "ListEndpoints", body: `{"SortBy":"Size","SortOrder":"Up"}`, code: VE,
			msg: "2 validation errors detected: Value 'Size' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [Name, CreationTime, Status]; " +
				"Value 'Up' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [Ascending, Descending]"},
		{name: "list time number", op: "ListEndpoints", body: `{"CreationTimeBefore":1700000000,"CreationTimeAfter":1.7e9,"LastModifiedTimeBefore":1700000000.1234}`,
			want: `{"CreationTimeBefore":1700000000,"CreationTimeAfter":1700000000,"LastModifiedTimeBefore":1700000000.123}`},
		{name: "list time string", op: "ListEndpoints", body: `{"CreationTimeBefore":"2023-11-14T22:13:20Z","CreationTimeAfter":"2023-11-14T23:13:20.5+01:00","LastModifiedTimeAfter":"2023-11-14"}`,
			want: `{"CreationTimeBefore":1700000000,"CreationTimeAfter":1700000000.5,"LastModifiedTimeAfter":1699920000}`},
		{name: "list time garbage", op: "ListEndpoints", body: `{"CreationTimeBefore":"yesterday"}`, code: SE,
			msg: "Cannot deserialize member 'creationTimeBefore': 'yesterday' is not a timestamp (epoch seconds or ISO-8601)."},
		{name: "list time bool", op: "ListEndpoints", body: `{"CreationTimeBefore":true}`, code: SE,
			msg: "Cannot deserialize member 'creationTimeBefore': expected a timestamp (epoch seconds or an ISO-8601 string), found a boolean."},
		{name: "list time out of range", op: "ListEndpoints", body: `{"CreationTimeBefore":1e20}`, code: SE,
			msg: "Cannot deserialize member 'creationTimeBefore': 1e20 is out of range for a timestamp."},
		{name: "list max string", op: "ListEndpoints", body: `{"MaxResults":"10"}`, code: SE,
			msg: "Cannot deserialize member 'maxResults': expected an integer, found a string."},
		{name: "list name contains", op: "ListEndpoints", body: `{"NameContains":"a b","StatusEquals":"Running"}`, code: VE,
			msg: "2 validation errors detected: Value 'a b' at 'nameContains' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-]+; " +
				"Value 'Running' at 'statusEquals' failed to satisfy constraint: Member must satisfy enum value set: [OutOfService, Creating, Updating, SystemUpdating, RollingBack, InService, Deleting, Failed, UpdateRollbackFailed]"},

		// AddTags
		{name: "tags ok", op: "AddTags", body: `{"ResourceArn":"` + endpoint + `","Tags":` + t50 + `}`,
			want: `{"ResourceArn":"` + endpoint + `","Tags":` + t50 + `}`},
		{name: "tags 51", op: "AddTags", body: `{"ResourceArn":"` + endpoint + `","Tags":` + t51 + `}`, code: VE,
			msg: "1 validation error detected: Value '" + t51r + "' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"},
		{name: "tags bad key and arn", op: "AddTags", body: `{"ResourceArn":"my-endpoint","Tags":[{"Key":"","Value":"a\u0000b"}]}`, code: VE,
			msg: `3 validation errors detected: Value 'my-endpoint' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+; ` +
				`Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1; ` +
				"Value 'a\x00b' at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"},
		{name: "tags unicode ok", op: "AddTags", body: `{"ResourceArn":"` + endpoint + `","Tags":[{"Key":"équipe","Value":"数据 科学"}]}`,
			want: `{"ResourceArn":"` + endpoint + `","Tags":[{"Key":"équipe","Value":"数据 科学"}]}`},

		// Other operations.
		{name: "weights list min", op: "UpdateEndpointWeightsAndCapacities", body: `{"EndpointName":"e","DesiredWeightsAndCapacities":[]}`, code: VE,
			msg: "1 validation error detected: Value '[]' at 'desiredWeightsAndCapacities' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{name: "component memory", op: "CreateInferenceComponent",
			body: `{"InferenceComponentName":"ic","EndpointName":"e","Specification":{"ModelName":"m","ComputeResourceRequirements":{"MinMemoryRequiredInMb":64}},"RuntimeConfig":{}}`, code: VE,
			msg: "2 validation errors detected: Value '64' at 'specification.computeResourceRequirements.minMemoryRequiredInMb' failed to satisfy constraint: Member must have value greater than or equal to 128; " +
				"Value null at 'runtimeConfig.copyCount' failed to satisfy constraint: Member must not be null"},
		{name: "delete tags keys", op: "DeleteTags", body: `{"ResourceArn":"` + endpoint + `","TagKeys":["a",null,""]}`, code: VE,
			msg: "2 validation errors detected: Value null at 'tagKeys.2.member' failed to satisfy constraint: Member must not be null; " +
				"Value '' at 'tagKeys.3.member' failed to satisfy constraint: Member must have length greater than or equal to 1"},

		// Bodies that are not JSON objects.
		{name: "invalid json", op: "CreateEndpoint", body: `{"EndpointName":"e",}`, code: SE,
			msg: "Request body is not valid JSON: invalid character '}' looking for beginning of object key string (at offset 21)."},
		{name: "truncated json", op: "CreateEndpoint", body: `{"EndpointName":"e"`, code: SE,
			msg: "Request body is not valid JSON: unexpected end of input."},
		{name: "trailing data", op: "CreateEndpoint", body: `{} {}`, code: SE,
			msg: "Request body is not valid JSON: unexpected data after the JSON value."},
		{name: "array body", op: "ListEndpoints", body: `[]`, code: SE,
			msg: "Cannot deserialize the request body: expected a structure (JSON object), found an array."},
		{name: "string body", op: "ListEndpoints", body: `"x"`, code: SE,
			msg: "Cannot deserialize the request body: expected a structure (JSON object), found a string."},
		{name: "deep nesting", op: "ListEndpoints", body: `{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, code: SE,
			msg: "Request body nests JSON objects and arrays more than 64 levels deep."},
		{name: "nesting inside strings ignored", op: "ListEndpoints", body: `{"NextToken":"` + strings.Repeat("[{", 100) + `"}`,
			want: `{"NextToken":"` + strings.Repeat("[{", 100) + `"}`},
		{name: "unknown operation", op: "CreateTrainingJob", body: `{}`, code: sagehost.CodeUnknownOperation,
			msg: "Operation CreateTrainingJob is not supported."},
	}
}

func TestDecodeInput(t *testing.T) {
	s := SageMaker()
	for _, c := range decodeCases() {
		t.Run(c.name, func(t *testing.T) {
			out, err := s.DecodeInput(c.op, []byte(c.body))
			if c.code == "" {
				if err != nil {
					t.Fatalf("DecodeInput: %v", err)
				}
				if string(out) != c.want {
					t.Fatalf("got  %s\nwant %s", out, c.want)
				}
				if !json.Valid(out) {
					t.Fatalf("output is not valid JSON: %s", out)
				}
				again, err := s.DecodeInput(c.op, out)
				if err != nil || !bytes.Equal(again, out) {
					t.Fatalf("normalised output does not round-trip: %s, %v", again, err)
				}
				return
			}
			var se *sagehost.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want a *sagehost.Error %s", err, err, c.code)
			}
			if se.Code != c.code || se.Message != c.msg {
				t.Fatalf("got  %s: %s\nwant %s: %s", se.Code, se.Message, c.code, c.msg)
			}
		})
	}
}

func TestDecodeInputNormalises(t *testing.T) {
	s := SageMaker()
	out, err := s.DecodeInput("CreateModel", []byte(`{
		"Tags": [{"Value": "v", "Key": "k", "Color": "red"}],
		"ModelName": "m", "Unknown": {"deep": [1, {"x": null}]},
		"PrimaryContainer": {"Environment": {"Z": "<&>", "A": "\u2028"}, "Image": "i"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ModelName":"m","PrimaryContainer":{"Image":"i","Environment":{"A":"\u2028","Z":"<&>"}},"Tags":[{"Key":"k","Value":"v"}]}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m["PrimaryContainer"].(map[string]any)["Environment"].(map[string]any)["A"] != "\u2028" {
		t.Fatalf("round trip lost a value: %v", m)
	}
}

func TestErrorCountWording(t *testing.T) {
	vs := []Violation{{Path: "a", Value: "x", Constraint: "C"}}
	if got := ValidationError("X", vs).Message; got != "1 validation error detected: Value 'x' at 'a' failed to satisfy constraint: C" {
		t.Fatal(got)
	}
	vs = append(vs, Violation{Path: "b", Null: true, Constraint: "Member must not be null"}, Violation{Path: "c", Hidden: true, Constraint: "D"})
	want := "3 validation errors detected: Value 'x' at 'a' failed to satisfy constraint: C; " +
		"Value null at 'b' failed to satisfy constraint: Member must not be null; Value at 'c' failed to satisfy constraint: D"
	if got := ValidationError("X", vs).Message; got != want {
		t.Fatal(got)
	}
}

func TestValidateValue(t *testing.T) {
	s := SageMaker()
	vs, err := s.ValidateValue("EndpointName", "endpointName", "abc_")
	if err != nil || len(vs) != 1 || vs[0].String() != "Value 'abc_' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}" {
		t.Fatalf("%v %v", vs, err)
	}
	// Values as encoding/json decodes them without UseNumber.
	var v any
	if err := json.Unmarshal([]byte(`[{"VariantName":"v","InitialInstanceCount":0}]`), &v); err != nil {
		t.Fatal(err)
	}
	vs, err = s.ValidateValue("ProductionVariantList", "productionVariants", v)
	if err != nil || len(vs) != 1 || vs[0].Path != "productionVariants.1.member.initialInstanceCount" || vs[0].Value != "0" {
		t.Fatalf("%v %v", vs, err)
	}
	if vs, err := s.ValidateValue("MaxResults", "maxResults", 50); err != nil || len(vs) != 0 {
		t.Fatalf("%v %v", vs, err)
	}
	if _, err := s.ValidateValue("MaxResults", "maxResults", 2.5); sagehost.ErrorCode(err) != sagehost.CodeSerializationException {
		t.Fatalf("fractional integer: %v", err)
	}
	if _, err := s.ValidateValue("ProductionVariant", "", "x"); sagehost.ErrorCode(err) != sagehost.CodeSerializationException {
		t.Fatalf("string for structure: %v", err)
	}
	if vs, err := s.ValidateValue("EndpointName", "endpointName", nil); err != nil || vs != nil {
		t.Fatalf("nil: %v %v", vs, err)
	}
	if _, err := s.ValidateValue("NoSuchShape", "", "x"); err == nil {
		t.Fatal("unknown shape accepted")
	}
}

func TestValidateMembers(t *testing.T) {
	r := Runtime()
	cases := []struct {
		shape   string
		members map[string]string
		msg     string // "" for valid
	}{
		{"InvokeEndpointInput", map[string]string{"EndpointName": "my-endpoint", "ContentType": "application/json", "TargetVariant": "v1", "InferenceId": "id-1"}, ""},
		{"InvokeEndpointInput", map[string]string{"EndpointName": "abc_"},
			"1 validation error detected: Value 'abc_' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"},
		{"InvokeEndpointInput", map[string]string{"Accept": "x"},
			"1 validation error detected: Value null at 'endpointName' failed to satisfy constraint: Member must not be null"},
		{"InvokeEndpointInput", map[string]string{"EndpointName": "e", "CustomAttributes": "caf\u00e9", "InferenceId": " x"},
			`2 validation errors detected: Value at 'customAttributes' failed to satisfy constraint: Member must satisfy regular expression pattern: \p{ASCII}*; ` +
				`Value ' x' at 'inferenceId' failed to satisfy constraint: Member must satisfy regular expression pattern: \A\S[\p{Print}]*\z`},
		{"InvokeEndpointInput", map[string]string{"EndpointName": strings.Repeat("e", 64), "TargetModel": ""},
			"3 validation errors detected: Value '" + strings.Repeat("e", 64) + "' at 'endpointName' failed to satisfy constraint: Member must have length less than or equal to 63; " +
				`Value '' at 'targetModel' failed to satisfy constraint: Member must have length greater than or equal to 1; ` +
				`Value '' at 'targetModel' failed to satisfy constraint: Member must satisfy regular expression pattern: \A\S[\p{Print}]*\z`},
		{"InvokeEndpointAsyncInput", map[string]string{"EndpointName": "e", "InputLocation": "s3://b/k", "RequestTTLSeconds": "30", "InvocationTimeoutSeconds": "abc", "S3OutputPathExtension": "s3:x"},
			"3 validation errors detected: Value 's3:x' at 's3OutputPathExtension' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$; " +
				"Value '30' at 'requestTTLSeconds' failed to satisfy constraint: Member must have value greater than or equal to 60; " +
				"Value 'abc' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must be a valid integer"},
		{"InvokeEndpointAsyncInput", map[string]string{"EndpointName": "e", "InputLocation": "s3://b/k", "Filename": "a.b.c"},
			`1 validation error detected: Value 'a.b.c' at 'filename' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$`},
		{"InvokeEndpointAsyncInput", map[string]string{"EndpointName": "e", "InputLocation": "s3://b/k", "Filename": "input.json", "RequestTTLSeconds": "3600"}, ""},
		{"InvokeEndpointInput", map[string]string{"EndpointName": "e", "SessionId": "NEW_SESSION"}, ""},
		{"InvokeEndpointWithResponseStreamInput", map[string]string{"EndpointName": "e", "SessionId": "NEW_SESSION"},
			"1 validation error detected: Value 'NEW_SESSION' at 'sessionId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"},
	}
	for i, c := range cases {
		err := r.ValidateMembers(c.shape, c.members)
		if c.msg == "" {
			if err != nil {
				t.Errorf("%d: %v", i, err)
			}
			continue
		}
		var se *sagehost.Error
		if !errors.As(err, &se) || se.Code != sagehost.CodeValidationError || se.Message != c.msg {
			t.Errorf("%d: got  %v\nwant ValidationError: %s", i, err, c.msg)
		}
	}
	if err := r.ValidateMembers("InvokeEndpointInput", map[string]string{"Nope": "x"}); err == nil || sagehost.ErrorCode(err) != sagehost.CodeInternalFailure {
		t.Errorf("unknown member: %v", err)
	}
}

func TestOperations(t *testing.T) {
	s := SageMaker()
	if len(s.Operations()) != 23 {
		t.Fatalf("SageMaker has %d operations, want 23: %v", len(s.Operations()), s.Operations())
	}
	op, ok := s.Operation("CreateEndpointConfig")
	if !ok || op.Input != "CreateEndpointConfigInput" || op.Output != "CreateEndpointConfigOutput" ||
		op.HTTPMethod != "POST" || op.RequestURI != "/" || len(op.Errors) != 1 || op.Errors[0] != "ResourceLimitExceeded" {
		t.Fatalf("%+v", op)
	}
	if _, ok := s.Operation("CreateTrainingJob"); ok {
		t.Fatal("CreateTrainingJob is in the trimmed model")
	}
	if s.Metadata.TargetPrefix != "SageMaker" || s.Metadata.JSONVersion != "1.1" || s.Metadata.Protocol != "json" {
		t.Fatalf("%+v", s.Metadata)
	}
	r := Runtime()
	if got := strings.Join(r.Operations(), ","); got != "InvokeEndpoint,InvokeEndpointAsync,InvokeEndpointWithResponseStream" {
		t.Fatal(got)
	}
	op, _ = r.Operation("InvokeEndpointAsync")
	if op.ResponseCode != 202 || op.RequestURI != "/endpoints/{EndpointName}/async-invocations" {
		t.Fatalf("%+v", op)
	}
	in, _ := r.Shape(op.Input)
	m, ok := in.Member("InputLocation")
	if !ok || m.Location != "header" || m.LocationName != "X-Amzn-SageMaker-InputLocation" || !in.IsRequired("InputLocation") || m.Target().Type != "string" {
		t.Fatalf("%+v", m)
	}
	errShape, _ := r.Shape("ModelError")
	if !errShape.Exception || errShape.HTTPStatusCode != 424 {
		t.Fatalf("%+v", errShape)
	}
	// Structure members keep the model's order.
	sh, _ := s.Shape("CreateEndpointInput")
	var names []string
	for _, m := range sh.Members {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "EndpointName,EndpointConfigName,DeploymentConfig,Tags" {
		t.Fatal(got)
	}
}

// TestPatternsCompile checks that every pattern of both embedded models
// compiled, and pins the patterns that needed a translation.
func TestPatternsCompile(t *testing.T) {
	translated := map[string]bool{}
	for _, s := range []*Service{SageMaker(), Runtime()} {
		for _, name := range s.Shapes() {
			sh, _ := s.Shape(name)
			if sh.Pattern == "" {
				continue
			}
			if sh.re == nil {
				t.Errorf("%s: pattern %q not compiled", name, sh.Pattern)
			}
			if strings.Contains(sh.Pattern, "(?") && !strings.HasPrefix(sh.Pattern, "(?:") {
				translated[name] = sh.RE2Pattern != sh.Pattern
			}
		}
	}
	for _, name := range []string{"AlarmName", "VersionedArnOrName", "FilenameHeader", "S3OutputPathExtensionHeader"} {
		if !translated[name] {
			t.Errorf("%s: lookaround pattern not translated", name)
		}
	}
}

// TestTranslatedPatterns checks the translated patterns against values whose
// Java outcome is known.
func TestTranslatedPatterns(t *testing.T) {
	cases := []struct {
		svc   *Service
		shape string
		ok    []string
		bad   []string
	}{
		{SageMaker(), "AlarmName", []string{"a", " a ", "my alarm", "\u00a0", "a\u000bb"}, []string{"", " ", "\t \f\u000b", "a\nb", "a\r", "a\u2028", "a\u0085"}},
		{SageMaker(), "VersionedArnOrName", []string{"pkg", "a", "my-pkg-1", strings.Repeat("a", 63), "arn:aws:sagemaker:us-east-1:123456789012:model-package/my-pkg/12", "pkg/3"},
			[]string{"pkg-", "-pkg", strings.Repeat("a", 64), "arn:aws:sagemaker:us-east-1:123456789012:model-package/pkg-/1", "pkg/", "pkg/1234567890", "pkg-/3"}},
		{SageMaker(), "ContainerImage", []string{"img", "\u00e9"}, []string{"a b", "a\u000bb", ""}},
		{SageMaker(), "NextToken", []string{"", "abc", "a\tb"}, []string{"a\nb", "a\rb", "a\u2029b"}},
		{SageMaker(), "EnvironmentValue", []string{"", "a\nb\r\u000b", "\u2028"}, nil},
		{Runtime(), "InferenceId", []string{"a", "\u00e9 b", "a~ b"}, []string{"", " a", "\ta", "a\u00e9", "a\x7f"}},
		{Runtime(), "Header", []string{"", "application/json", "\x00\x7f"}, []string{"\u00e9", "\x80"}},
		{Runtime(), "FilenameHeader", []string{"a", "a.b", "a-b_c.", "A1"}, []string{".a", "a.b.c", "a..", "_a", ""}},
		{Runtime(), "S3OutputPathExtensionHeader", []string{"a/b", "s3", "(x)*!"}, []string{"s3:x", "https://x", "a:b", ""}},
		{Runtime(), "SessionIdOrNewSessionConstantHeader", []string{"NEW_SESSION", "abc-1"}, []string{"NEW_SESSION_", "a_b"}},
	}
	for _, c := range cases {
		sh, ok := c.svc.Shape(c.shape)
		if !ok {
			t.Fatalf("no shape %s", c.shape)
		}
		for _, v := range c.ok {
			if !sh.re.MatchString(v) {
				t.Errorf("%s: %q rejected", c.shape, v)
			}
		}
		for _, v := range c.bad {
			if sh.re.MatchString(v) {
				t.Errorf("%s: %q accepted", c.shape, v)
			}
		}
	}
}

func TestParseInteger(t *testing.T) {
	cases := []struct {
		in      string
		bits    int
		want    int64
		problem string
	}{
		{"0", 32, 0, ""}, {"-0", 32, 0, ""}, {"2147483647", 32, 2147483647, ""}, {"-2147483648", 32, -2147483648, ""},
		{"2147483648", 32, 0, "is out of range for an integer"}, {"1e2", 32, 100, ""}, {"1.0", 32, 1, ""}, {"1.50e1", 32, 15, ""},
		{"1.5", 32, 0, "is not an integer"}, {"1e-1", 32, 0, "is not an integer"}, {"0e999999999999999999999", 32, 0, ""},
		{"1e999999999999999999999", 64, 0, "is out of range for a long integer"}, {"1e-999999999999999999999", 64, 0, "is not an integer"},
		{"9223372036854775807", 64, 9223372036854775807, ""}, {"9223372036854775808", 64, 0, "is out of range for a long integer"},
		{"92233720368547758.07e2", 64, 9223372036854775807, ""}, {"x", 32, 0, "is not a number"}, {"+1", 32, 0, "is not a number"}, {"01", 32, 0, "is not a number"},
	}
	for _, c := range cases {
		got, problem := parseInteger(c.in, c.bits)
		if got != c.want || problem != c.problem {
			t.Errorf("parseInteger(%q, %d) = %d, %q; want %d, %q", c.in, c.bits, got, problem, c.want, c.problem)
		}
	}
}

func TestJavaFloat(t *testing.T) {
	for in, want := range map[float64]string{1: "1.0", -0.5: "-0.5", 0: "0.0", 1e7: "1.0E7", 1.5e-5: "1.5E-5", 123.25: "123.25"} {
		if got := javaFloat(in, 64); got != want {
			t.Errorf("javaFloat(%v) = %s, want %s", in, got, want)
		}
	}
}

func TestModelDataAcceptsLocalLocations(t *testing.T) {
	for _, url := range []string{"s3://bucket/model.tar.gz", "file:///srv/models/model.tar.gz", "/srv/models/model.tar.gz"} {
		body := `{"ModelName":"m","PrimaryContainer":{"Image":"/bin/model","ModelDataUrl":"` + url + `","ModelDataSource":{"S3DataSource":{"S3Uri":"` + url + `","S3DataType":"S3Object","CompressionType":"None"}}}}`
		if _, err := SageMaker().DecodeInput("CreateModel", []byte(body)); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
	for _, url := range []string{"relative/model.tar.gz", "ftp://host/model.tar.gz"} {
		body := `{"ModelName":"m","PrimaryContainer":{"Image":"/bin/model","ModelDataUrl":"` + url + `"}}`
		if _, err := SageMaker().DecodeInput("CreateModel", []byte(body)); err == nil {
			t.Errorf("%s was accepted", url)
		}
	}
}

func TestIsSageMakerOperation(t *testing.T) {
	for _, name := range SageMaker().Operations() {
		if !IsSageMakerOperation(name) {
			t.Errorf("served operation %s is not in the list of all operations", name)
		}
	}
	for _, name := range []string{"CreateTrainingJob", "CreateNotebookInstance", "DescribeTransformJob"} {
		if !IsSageMakerOperation(name) {
			t.Errorf("IsSageMakerOperation(%q) = false", name)
		}
		if _, ok := SageMaker().Operation(name); ok {
			t.Errorf("%s is in the trimmed model", name)
		}
	}
	for _, name := range []string{"", "CreateTrainingJobs", "createTrainingJob", "InvokeEndpoint"} {
		if IsSageMakerOperation(name) {
			t.Errorf("IsSageMakerOperation(%q) = true", name)
		}
	}
}
