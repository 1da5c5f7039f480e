package control

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/apimodel"
	"github.com/sagehost/sagehost/store/sqlite"
)

// These tests drive the states that only hosting reaches (InService,
// Failed): the server tests cover the operations as clients see them.

type recordingNotifier struct {
	mu   sync.Mutex
	keys []sagehost.EndpointKey
}

func (n *recordingNotifier) EndpointChanged(k sagehost.EndpointKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keys = append(n.keys, k)
}

func (n *recordingNotifier) last() sagehost.EndpointKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.keys) == 0 {
		return sagehost.EndpointKey{}
	}
	return n.keys[len(n.keys)-1]
}

var icCaller = sagehost.Caller{Account: "111111111111", Region: "us-east-1"}

type icFixture struct {
	t   *testing.T
	svc *Service
	n   *recordingNotifier
}

func newICFixture(t *testing.T) *icFixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n := &recordingNotifier{}
	f := &icFixture{t: t, svc: &Service{Store: db, Notifier: n}, n: n}
	f.must(f.call("CreateModel", `{"ModelName":"m","PrimaryContainer":{"Image":"/bin/true","ModelDataUrl":"s3://b/m.tar.gz"}}`))
	f.must(f.call("CreateEndpointConfig", `{"EndpointConfigName":"cfg","ExecutionRoleArn":"arn:aws:iam::111111111111:role/r","ProductionVariants":[
		{"VariantName":"ic","InstanceType":"ml.m5.xlarge","InitialInstanceCount":1},
		{"VariantName":"model","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":1}]}`))
	f.must(f.call("CreateEndpoint", `{"EndpointName":"ep","EndpointConfigName":"cfg"}`))
	return f
}

// call runs an operation as the api package does: the request validated
// against botocore's shapes, then decoded into the operation's input.
func (f *icFixture) call(op, body string) (any, error) {
	f.t.Helper()
	doc, err := apimodel.SageMaker().DecodeInput(op, []byte(body))
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	s, c := f.svc, icCaller
	decode := func(in any) {
		if err := json.Unmarshal(doc, in); err != nil {
			f.t.Fatalf("%s: decode %s: %v", op, doc, err)
		}
		if r, ok := in.(interface{ SetRaw(json.RawMessage) }); ok {
			r.SetRaw(doc)
		}
	}
	switch op {
	case "CreateModel":
		in := &CreateModelInput{}
		decode(in)
		return s.CreateModel(ctx, c, in)
	case "DeleteModel":
		in := &ModelNameInput{}
		decode(in)
		return s.DeleteModel(ctx, c, in)
	case "CreateEndpointConfig":
		in := &CreateEndpointConfigInput{}
		decode(in)
		return s.CreateEndpointConfig(ctx, c, in)
	case "CreateEndpoint":
		in := &CreateEndpointInput{}
		decode(in)
		return s.CreateEndpoint(ctx, c, in)
	case "CreateInferenceComponent":
		in := &CreateInferenceComponentInput{}
		decode(in)
		return s.CreateInferenceComponent(ctx, c, in)
	case "DescribeInferenceComponent":
		in := &InferenceComponentNameInput{}
		decode(in)
		return s.DescribeInferenceComponent(ctx, c, in)
	case "UpdateInferenceComponent":
		in := &UpdateInferenceComponentInput{}
		decode(in)
		return s.UpdateInferenceComponent(ctx, c, in)
	case "UpdateInferenceComponentRuntimeConfig":
		in := &UpdateInferenceComponentRuntimeConfigInput{}
		decode(in)
		return s.UpdateInferenceComponentRuntimeConfig(ctx, c, in)
	case "DeleteInferenceComponent":
		in := &InferenceComponentNameInput{}
		decode(in)
		return s.DeleteInferenceComponent(ctx, c, in)
	}
	f.t.Fatalf("no operation %s in this test", op)
	return nil, nil
}

func (f *icFixture) must(out any, err error) any {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// wantErr asserts a ValidationException whose message contains each part.
func (f *icFixture) wantErr(err error, parts ...string) {
	f.t.Helper()
	var e *sagehost.Error
	if !errors.As(err, &e) || e.Code != sagehost.CodeValidationException {
		f.t.Fatalf("want ValidationException, got %v", err)
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			f.t.Fatalf("message %q does not contain %q", e.Message, p)
		}
	}
}

// setStatus plays hosting: it sets a record's status.
func (f *icFixture) setStatus(kind sagehost.Kind, name, status string) {
	f.t.Helper()
	if _, err := f.svc.Store.Update(context.Background(), kind, icCaller.Account, icCaller.Region, name, func(r *sagehost.Record) error {
		r.Status = status
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *icFixture) state(name string) (*sagehost.Record, *sagehost.InferenceComponentState) {
	f.t.Helper()
	rec, st, err := f.svc.getInferenceComponent(context.Background(), icCaller, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec, st
}

const icSpec = `"Specification":{"ModelName":"m","ComputeResourceRequirements":{"NumberOfCpuCoresRequired":1,"MinMemoryRequiredInMb":1024}}`

func TestInferenceComponentUpdates(t *testing.T) {
	f := newICFixture(t)
	f.must(f.call("CreateInferenceComponent", `{"InferenceComponentName":"IC1","EndpointName":"EP",`+icSpec+`,"RuntimeConfig":{"CopyCount":2}}`))
	rec, st := f.state("ic1")
	if rec.Status != sagehost.StatusCreating || st.DesiredCopyCount != 2 || st.CurrentCopyCount != 0 || st.EndpointName != "ep" || st.VariantName != "ic" ||
		st.Current.Generation != 1 || st.Current.ID == "" || st.Current.Models["m"].PrimaryContainer.Image != "/bin/true" || st.Previous != nil {
		t.Fatalf("created: %s %+v", rec.Status, st)
	}
	if k := f.n.last(); k != (sagehost.EndpointKey{Account: icCaller.Account, Region: icCaller.Region, Name: "ep"}) {
		t.Fatalf("notified %v", k)
	}
	// The model may go: the component keeps its snapshot.
	f.must(f.call("DeleteModel", `{"ModelName":"m"}`))

	_, err := f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1","RuntimeConfig":{"CopyCount":3}}`)
	f.wantErr(err, `Cannot update in-progress inference component "arn:aws:sagemaker:us-east-1:111111111111:inference-component/ic1".`)
	_, err = f.call("UpdateInferenceComponentRuntimeConfig", `{"InferenceComponentName":"ic1","DesiredRuntimeConfig":{"CopyCount":3}}`)
	f.wantErr(err, "Cannot update in-progress inference component")

	// A new copy count is no new deployment.
	f.setStatus(sagehost.KindInferenceComponent, "ic1", sagehost.StatusInService)
	f.must(f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1","RuntimeConfig":{"CopyCount":3}}`))
	rec, st2 := f.state("ic1")
	if rec.Status != sagehost.StatusUpdating || st2.DesiredCopyCount != 3 || st2.Current.ID != st.Current.ID || st2.Previous != nil {
		t.Fatalf("after copy count update: %s %+v", rec.Status, st2)
	}
	_, err = f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1"}`)
	f.wantErr(err, "Cannot update in-progress") // status is checked first
	f.setStatus(sagehost.KindInferenceComponent, "ic1", sagehost.StatusInService)
	_, err = f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1"}`)
	f.wantErr(err, "Nothing to update")
	// The named model is gone now.
	_, err = f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1",`+icSpec+`}`)
	f.wantErr(err, `Could not find model "arn:aws:sagemaker:us-east-1:111111111111:model/m".`)
	_, err = f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1","Specification":{"Container":{"Image":"/bin/echo"},"ComputeResourceRequirements":{"MinMemoryRequiredInMb":512}},
		"DeploymentConfig":{"RollingUpdatePolicy":{"MaximumBatchSize":{"Type":"CAPACITY_PERCENT","Value":60},"WaitIntervalInSeconds":0}}}`)
	f.wantErr(err, "RollingUpdatePolicy.MaximumBatchSize", "between 5 and 50")
	rec, _ = f.state("ic1")
	if rec.Status != sagehost.StatusInService {
		t.Fatalf("a refused update changed the status to %s", rec.Status)
	}

	// A new specification is a new deployment; the old one is kept for
	// hosting to roll from.
	f.must(f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1","Specification":{"Container":{"Image":"/bin/echo","Environment":{"A":"1"}},"ComputeResourceRequirements":{"MinMemoryRequiredInMb":512}},
		"DeploymentConfig":{"RollingUpdatePolicy":{"MaximumBatchSize":{"Type":"COPY_COUNT","Value":1},"WaitIntervalInSeconds":0}}}`))
	rec, st3 := f.state("ic1")
	if rec.Status != sagehost.StatusUpdating || st3.Current.Generation != 2 || st3.Current.ID == st.Current.ID || st3.Previous == nil ||
		st3.Previous.ID != st.Current.ID || st3.DesiredCopyCount != 3 || len(st3.LastDeploymentConfig) == 0 || st3.Current.Spec.Specification.Container.Image != "/bin/echo" {
		t.Fatalf("after spec update: %s %+v", rec.Status, st3)
	}
	m, ok := st3.Current.Model(st3.Current.Spec.Specification)
	if !ok || m.PrimaryContainer.Image != "/bin/echo" || m.PrimaryContainer.Environment["A"] != "1" {
		t.Fatalf("model of the container spec: %+v %v", m, ok)
	}
	d := f.must(f.call("DescribeInferenceComponent", `{"InferenceComponentName":"ic1"}`)).(map[string]any)
	b, _ := json.Marshal(d)
	for _, want := range []string{`"DeployedImage":{"ResolutionTime":`, `"SpecifiedImage":"/bin/echo"`, `"LastDeploymentConfig":{"RollingUpdatePolicy"`,
		`"RuntimeConfig":{"CurrentCopyCount":0,"DesiredCopyCount":3}`, `"InferenceComponentStatus":"Updating"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("Describe %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), `"Image"`) {
		t.Fatalf("Describe %s reports Image, not DeployedImage", b)
	}

	// The same specification again starts no new deployment.
	f.setStatus(sagehost.KindInferenceComponent, "ic1", sagehost.StatusInService)
	f.must(f.call("UpdateInferenceComponent", `{"InferenceComponentName":"ic1","Specification":{"Container":{"Image":"/bin/echo","Environment":{"A":"1"}},"ComputeResourceRequirements":{"MinMemoryRequiredInMb":512}}}`))
	if _, st4 := f.state("ic1"); st4.Current.ID != st3.Current.ID || st4.Current.Generation != 2 || string(st4.LastDeploymentConfig) != string(st3.LastDeploymentConfig) {
		t.Fatalf("same spec: %+v", st4)
	}

	f.setStatus(sagehost.KindInferenceComponent, "ic1", sagehost.StatusFailed)
	_, err = f.call("UpdateInferenceComponentRuntimeConfig", `{"InferenceComponentName":"ic1","DesiredRuntimeConfig":{"CopyCount":0}}`)
	f.wantErr(err, "because it is in Failed state")
	f.setStatus(sagehost.KindInferenceComponent, "ic1", sagehost.StatusInService)
	f.must(f.call("UpdateInferenceComponentRuntimeConfig", `{"InferenceComponentName":"ic1","DesiredRuntimeConfig":{"CopyCount":0}}`))
	if rec, st5 := f.state("ic1"); rec.Status != sagehost.StatusUpdating || st5.DesiredCopyCount != 0 {
		t.Fatalf("after runtime config update: %s %+v", rec.Status, st5)
	}
	_, err = f.call("UpdateInferenceComponentRuntimeConfig", `{"InferenceComponentName":"nope","DesiredRuntimeConfig":{"CopyCount":0}}`)
	f.wantErr(err, `Could not find inference component "arn:aws:sagemaker:us-east-1:111111111111:inference-component/nope".`)
}

func TestInferenceComponentHosts(t *testing.T) {
	f := newICFixture(t)
	_, err := f.call("CreateInferenceComponent", `{"InferenceComponentName":"x","EndpointName":"ep","VariantName":"model",`+icSpec+`,"RuntimeConfig":{"CopyCount":1}}`)
	f.wantErr(err, `Variant "model" of endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep" serves model "m" and cannot host inference components.`)
	// The only component variant is chosen without VariantName.
	f.must(f.call("CreateInferenceComponent", `{"InferenceComponentName":"x","EndpointName":"ep",`+icSpec+`,"RuntimeConfig":{"CopyCount":1}}`))
	if _, st := f.state("x"); st.VariantName != "ic" {
		t.Fatalf("variant %q", st.VariantName)
	}
	for _, status := range []string{sagehost.StatusDeleting, sagehost.StatusFailed} {
		f.setStatus(sagehost.KindEndpoint, "ep", status)
		_, err = f.call("CreateInferenceComponent", `{"InferenceComponentName":"y","EndpointName":"ep",`+icSpec+`,"RuntimeConfig":{"CopyCount":1}}`)
		f.wantErr(err, `Cannot create an inference component on endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep" because it is in `+status+` state.`)
	}
	f.setStatus(sagehost.KindEndpoint, "ep", sagehost.StatusInService)

	// DeleteEndpoint's check, and what hosting uses.
	ctx := context.Background()
	epRec, _, err := f.svc.getEndpoint(ctx, icCaller, "ep")
	if err != nil {
		t.Fatal(err)
	}
	f.wantErr(f.svc.checkEndpointHasNoComponents(ctx, icCaller, epRec), `Cannot delete endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep" because it hosts inference components (x).`)
	ics, err := EndpointInferenceComponents(ctx, f.svc.Store, sagehost.EndpointKey{Account: icCaller.Account, Region: icCaller.Region, Name: "EP"})
	if err != nil || len(ics) != 1 || ics[0].Record.Name != "x" || ics[0].State.DesiredCopyCount != 1 {
		t.Fatalf("EndpointInferenceComponents: %+v %v", ics, err)
	}
	if err := FinishInferenceComponentDeletion(ctx, f.svc.Store, ics[0].Record); err == nil {
		t.Fatal("FinishInferenceComponentDeletion removed a component that is not Deleting")
	}
	f.must(f.call("DeleteInferenceComponent", `{"InferenceComponentName":"x"}`))
	f.must(f.call("DeleteInferenceComponent", `{"InferenceComponentName":"x"}`)) // again: still Deleting
	if rec, _ := f.state("x"); rec.Status != sagehost.StatusDeleting {
		t.Fatalf("status %s", rec.Status)
	}
	if err := f.svc.checkEndpointHasNoComponents(ctx, icCaller, epRec); err != nil {
		t.Fatalf("a Deleting component keeps its endpoint: %v", err)
	}
	if err := FinishInferenceComponentDeletion(ctx, f.svc.Store, ics[0].Record); err != nil {
		t.Fatal(err)
	}
	if err := FinishInferenceComponentDeletion(ctx, f.svc.Store, ics[0].Record); err != nil {
		t.Fatalf("a second FinishInferenceComponentDeletion: %v", err)
	}
	_, err = f.call("DescribeInferenceComponent", `{"InferenceComponentName":"x"}`)
	f.wantErr(err, "Could not find inference component")
	if err := f.svc.checkEndpointHasNoComponents(ctx, icCaller, epRec); err != nil {
		t.Fatal(err)
	}
}

func TestInferenceComponentAdapters(t *testing.T) {
	f := newICFixture(t)
	f.must(f.call("CreateEndpoint", `{"EndpointName":"other","EndpointConfigName":"cfg"}`))
	f.must(f.call("CreateInferenceComponent", `{"InferenceComponentName":"base","EndpointName":"ep",`+icSpec+`,"RuntimeConfig":{"CopyCount":2}}`))
	f.must(f.call("CreateInferenceComponent", `{"InferenceComponentName":"elsewhere","EndpointName":"other",`+icSpec+`,"RuntimeConfig":{"CopyCount":1}}`))

	adapter := func(name, endpoint, extra string) error {
		_, err := f.call("CreateInferenceComponent", `{"InferenceComponentName":"`+name+`","EndpointName":"`+endpoint+`",
			"Specification":{"BaseInferenceComponentName":"base","Container":{"ArtifactUrl":"s3://b/adapter.tar.gz"}`+extra+`}}`)
		return err
	}
	f.wantErr(adapter("a", "other", ""), `Base inference component "arn:aws:sagemaker:us-east-1:111111111111:inference-component/base" is on endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep"`)
	f.wantErr(adapter("a", "ep", `,"ComputeResourceRequirements":{"MinMemoryRequiredInMb":128}`), "omit ComputeResourceRequirements")
	f.wantErr(adapter("a", "ep", `,"ModelName":"m"`), "cannot specify ModelName or Container.Image")
	_, err := f.call("CreateInferenceComponent", `{"InferenceComponentName":"a","EndpointName":"ep","Specification":{"BaseInferenceComponentName":"base"}}`)
	f.wantErr(err, "requires Container.ArtifactUrl")
	_, err = f.call("CreateInferenceComponent", `{"InferenceComponentName":"a","EndpointName":"ep","VariantName":"other","Specification":{"BaseInferenceComponentName":"base","Container":{"ArtifactUrl":"s3://b/x.tar.gz"}}}`)
	f.wantErr(err, `VariantName "other" differs from "ic", the variant of base inference component`)
	_, err = f.call("CreateInferenceComponent", `{"InferenceComponentName":"a","EndpointName":"ep","Specification":{"BaseInferenceComponentName":"ghost","Container":{"ArtifactUrl":"s3://b/x.tar.gz"}}}`)
	f.wantErr(err, `Could not find inference component "arn:aws:sagemaker:us-east-1:111111111111:inference-component/ghost".`)

	// No RuntimeConfig: an adapter runs in its base's copies.
	if err := adapter("a", "ep", ""); err != nil {
		t.Fatal(err)
	}
	_, err = f.call("CreateInferenceComponent", `{"InferenceComponentName":"a2","EndpointName":"ep","Specification":{"BaseInferenceComponentName":"a","Container":{"ArtifactUrl":"s3://b/x.tar.gz"}}}`)
	f.wantErr(err, "is itself an adapter inference component")
	d := f.must(f.call("DescribeInferenceComponent", `{"InferenceComponentName":"a"}`)).(map[string]any)
	if rc := d["RuntimeConfig"].(map[string]any); rc["DesiredCopyCount"] != 2 || d["VariantName"] != "ic" {
		t.Fatalf("adapter Describe: %+v", d)
	}
	f.setStatus(sagehost.KindInferenceComponent, "a", sagehost.StatusInService)
	_, err = f.call("UpdateInferenceComponentRuntimeConfig", `{"InferenceComponentName":"a","DesiredRuntimeConfig":{"CopyCount":1}}`)
	f.wantErr(err, "is an adapter inference component")
	_, err = f.call("UpdateInferenceComponent", `{"InferenceComponentName":"a",`+icSpec+`}`)
	f.wantErr(err, "The BaseInferenceComponentName of inference component", "cannot be changed")
	f.must(f.call("UpdateInferenceComponent", `{"InferenceComponentName":"a","Specification":{"BaseInferenceComponentName":"base","Container":{"ArtifactUrl":"s3://b/adapter-v2.tar.gz"}}}`))
	if _, st := f.state("a"); st.Current.Generation != 2 || st.Current.Spec.Specification.Container.ArtifactUrl != "s3://b/adapter-v2.tar.gz" {
		t.Fatalf("adapter update: %+v", st)
	}

	_, err = f.call("DeleteInferenceComponent", `{"InferenceComponentName":"base"}`)
	f.wantErr(err, `Cannot delete inference component "arn:aws:sagemaker:us-east-1:111111111111:inference-component/base": adapter inference components use it as their base (a).`)
	f.must(f.call("DeleteInferenceComponent", `{"InferenceComponentName":"a"}`))
	f.must(f.call("DeleteInferenceComponent", `{"InferenceComponentName":"base"}`))
}

// A component host variant's instance types: its InstanceType and those of
// its InstancePools, once each; variants with a model host none.
func TestComponentVariantsInstancePools(t *testing.T) {
	var d sagehost.Deployment
	if err := json.Unmarshal([]byte(`{"Config":{"ProductionVariants":[
		{"VariantName":"A","InstanceType":"ml.g5.xlarge","InstancePools":[{"InstanceType":"ml.g5.2xlarge"},{"InstanceType":"ml.g5.xlarge"}]},
		{"VariantName":"B","ModelName":"m","InstanceType":"ml.m5.large"}]}}`), &d); err != nil {
		t.Fatal(err)
	}
	names, types := componentVariants(&d)
	if !slices.Equal(names, []string{"A"}) || !slices.Equal(types["A"], []string{"ml.g5.xlarge", "ml.g5.2xlarge"}) || len(types) != 1 {
		t.Fatalf("names %v, types %v", names, types)
	}
}

// Creating a resource whose name is taken gives SageMaker's message, and an
// error that answers errors.Is(err, sagehost.ErrAlreadyExists) (how the
// example endpoint's set-up recognises it on a restart).
func TestCreateExistingIsErrAlreadyExists(t *testing.T) {
	f := newICFixture(t)
	for _, tc := range []struct{ op, body, msg string }{
		{"CreateModel", `{"ModelName":"m","PrimaryContainer":{"Image":"/bin/true"}}`, `Cannot create already existing model "arn:aws:sagemaker:us-east-1:111111111111:model/m".`},
		{"CreateEndpointConfig", `{"EndpointConfigName":"cfg","ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":1}]}`,
			`Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-east-1:111111111111:endpoint-config/cfg".`},
		{"CreateEndpoint", `{"EndpointName":"ep","EndpointConfigName":"cfg"}`, `Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:111111111111:endpoint/ep".`},
	} {
		_, err := f.call(tc.op, tc.body)
		if !errors.Is(err, sagehost.ErrAlreadyExists) || sagehost.ErrorCode(err) != sagehost.CodeValidationException || sagehost.ErrorMessage(err) != tc.msg {
			t.Errorf("%s again: %v", tc.op, err)
		}
	}
}
