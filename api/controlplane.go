package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/apimodel"
	"github.com/sagehost/sagehost/control"
)

// controlOp runs one control-plane operation on a validated request.
type controlOp func(ctx context.Context, s *control.Service, c sagehost.Caller, doc json.RawMessage) (any, error)

// op adapts a typed control method: it decodes the validated request into
// its input type and hands over the document for inputs that store it.
func op[In any, Out any](f func(*control.Service, context.Context, sagehost.Caller, *In) (Out, error)) controlOp {
	return func(ctx context.Context, s *control.Service, c sagehost.Caller, doc json.RawMessage) (any, error) {
		in := new(In)
		if err := json.Unmarshal(doc, in); err != nil {
			return nil, sagehost.Errorf(sagehost.CodeSerializationException, "Could not read the request: %v", err)
		}
		if r, ok := any(in).(interface{ SetRaw(json.RawMessage) }); ok {
			r.SetRaw(doc)
		}
		return f(s, ctx, c, in)
	}
}

// controlOps lists every control-plane operation sagehost serves, by its
// X-Amz-Target operation name.
var controlOps = map[string]controlOp{
	"CreateModel":   op((*control.Service).CreateModel),
	"DescribeModel": op((*control.Service).DescribeModel),
	"ListModels":    op((*control.Service).ListModels),
	"DeleteModel":   op((*control.Service).DeleteModel),

	"CreateEndpointConfig":   op((*control.Service).CreateEndpointConfig),
	"DescribeEndpointConfig": op((*control.Service).DescribeEndpointConfig),
	"ListEndpointConfigs":    op((*control.Service).ListEndpointConfigs),
	"DeleteEndpointConfig":   op((*control.Service).DeleteEndpointConfig),

	"CreateEndpoint":                     op((*control.Service).CreateEndpoint),
	"DescribeEndpoint":                   op((*control.Service).DescribeEndpoint),
	"ListEndpoints":                      op((*control.Service).ListEndpoints),
	"DeleteEndpoint":                     op((*control.Service).DeleteEndpoint),
	"UpdateEndpoint":                     op((*control.Service).UpdateEndpoint),
	"UpdateEndpointWeightsAndCapacities": op((*control.Service).UpdateEndpointWeightsAndCapacities),

	"CreateInferenceComponent":              op((*control.Service).CreateInferenceComponent),
	"DescribeInferenceComponent":            op((*control.Service).DescribeInferenceComponent),
	"ListInferenceComponents":               op((*control.Service).ListInferenceComponents),
	"UpdateInferenceComponent":              op((*control.Service).UpdateInferenceComponent),
	"UpdateInferenceComponentRuntimeConfig": op((*control.Service).UpdateInferenceComponentRuntimeConfig),
	"DeleteInferenceComponent":              op((*control.Service).DeleteInferenceComponent),

	"AddTags":    op((*control.Service).AddTags),
	"ListTags":   op((*control.Service).ListTags),
	"DeleteTags": op((*control.Service).DeleteTags),
}

// ControlOperations returns the names of the served control-plane
// operations, sorted.
func ControlOperations() []string {
	var names []string
	for n := range controlOps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

const targetPrefix = "SageMaker."

func (h *Handler) serveControl(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeControlError(w, h.Logger, sagehost.Errorf(sagehost.CodeUnknownOperation,
			"The SageMaker API takes POST requests to / with an X-Amz-Target header; got %s %s.", r.Method, r.URL.Path))
		return
	}
	body, release, err := h.readBody(r, MaxControlBodyBytes)
	if errors.Is(err, errTooLarge) {
		writeControlError(w, h.Logger, sagehost.Errorf(sagehost.CodeRequestEntityTooLarge, "The request body is larger than %d bytes.", MaxControlBodyBytes))
		return
	} else if err != nil {
		writeControlError(w, h.Logger, sagehost.Errorf(sagehost.CodeSerializationException, "Could not read the request body."))
		return
	}
	defer release()
	caller, err := h.Auth.Verify(r, body)
	if err != nil {
		writeControlError(w, h.Logger, err)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, targetPrefix)
	if !ok || name == "" {
		writeControlError(w, h.Logger, sagehost.Errorf(sagehost.CodeUnknownOperation, "Unrecognized operation %q: the X-Amz-Target header must name a SageMaker operation (SageMaker.<Operation>).", target))
		return
	}
	run, ok := controlOps[name]
	if !ok {
		if apimodel.IsSageMakerOperation(name) {
			writeControlError(w, h.Logger, sagehost.Errorf(sagehost.CodeUnknownOperation,
				"sagehost does not implement SageMaker.%s: it serves the model hosting operations (%s).", name, strings.Join(ControlOperations(), ", ")))
			return
		}
		writeControlError(w, h.Logger, sagehost.Errorf(sagehost.CodeUnknownOperation, "Unrecognized operation %q.", target))
		return
	}
	doc, err := apimodel.SageMaker().DecodeInput(name, body)
	if err != nil {
		writeControlError(w, h.Logger, err)
		return
	}
	out, err := run(r.Context(), h.Control, caller, doc)
	if err != nil {
		writeControlError(w, h.Logger, err)
		return
	}
	resp, err := json.Marshal(out)
	if err != nil {
		writeControlError(w, h.Logger, err)
		return
	}
	w.Header()["Content-Type"] = []string{"application/x-amz-json-1.1"}
	w.Header()["Content-Length"] = []string{itoa(len(resp))}
	w.WriteHeader(http.StatusOK)
	w.Write(resp)
}
