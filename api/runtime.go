package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/apimodel"
	"github.com/sagehost/sagehost/async"
	"github.com/sagehost/sagehost/invoke"
)

// runtimeRoute is one rest-json route under /endpoints/{EndpointName}/.
type runtimeRoute struct {
	op    string
	serve func(h *Handler, w http.ResponseWriter, r *http.Request, call runtimeCall)
}

// runtimeCall is an authenticated runtime request.
type runtimeCall struct {
	name     string // EndpointName from the path
	caller   sagehost.Caller
	body     []byte
	received time.Time
}

// runtimeRoutes lists the SageMaker Runtime operations by the last path
// segment of their route.
var runtimeRoutes = map[string]runtimeRoute{
	"invocations":                 {"InvokeEndpoint", (*Handler).invokeEndpoint},
	"invocations-response-stream": {"InvokeEndpointWithResponseStream", (*Handler).invokeEndpointWithResponseStream},
	"async-invocations":           {"InvokeEndpointAsync", (*Handler).invokeEndpointAsync},
}

// parseRuntimePath splits /endpoints/{EndpointName}/{action}.
func parseRuntimePath(r *http.Request) (name, action string, ok bool) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/endpoints/")
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", "", false
	}
	name, err := url.PathUnescape(rest[:i])
	if err != nil {
		return "", "", false
	}
	return name, rest[i+1:], true
}

func (h *Handler) serveRuntime(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	name, action, ok := parseRuntimePath(r)
	route, known := runtimeRoutes[action]
	if !ok || !known {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeUnknownOperation,
			"No SageMaker Runtime operation is served at %s %s.", r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeMethodNotAllowed,
			"%s takes POST requests; got %s.", route.op, r.Method))
		return
	}
	body, release, err := h.readBody(r, invoke.MaxPayloadBytes)
	if errors.Is(err, errTooLarge) {
		writeRuntimeErrorStatus(w, h.Logger, sagehost.Errorf(sagehost.CodeValidationError,
			"Request body is too large: HTTP content length exceeded %d bytes.", invoke.MaxPayloadBytes), oversizeStatus)
		return
	} else if err != nil {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeValidationError, "Could not read the request body."))
		return
	}
	defer release()
	caller, err := h.Auth.Verify(r, body)
	if err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	route.serve(h, w, r, runtimeCall{name: name, caller: caller, body: body, received: received})
}

// invokeEndpoint serves InvokeEndpoint.
func (h *Handler) invokeEndpoint(w http.ResponseWriter, r *http.Request, call runtimeCall) {
	req := invokeRequest(w, r, call, "Accept")
	req.TargetModel = header(r.Header, invoke.HeaderTargetModel)
	req.EnableExplanations = header(r.Header, invoke.HeaderEnableExplanations)
	h.invoke(w, r, "InvokeEndpointInput", req, h.Router.Invoke)
}

// invokeEndpointWithResponseStream serves InvokeEndpointWithResponseStream:
// InvokeEndpoint's headers less TargetModel and EnableExplanations, with
// Accept in X-Amzn-SageMaker-Accept. Errors before the stream starts are
// ordinary error responses.
func (h *Handler) invokeEndpointWithResponseStream(w http.ResponseWriter, r *http.Request, call runtimeCall) {
	h.invoke(w, r, "InvokeEndpointWithResponseStreamInput", invokeRequest(w, r, call, invoke.HeaderStreamAccept), h.Router.InvokeStream)
}

// invokeRequest reads the headers both invoke operations share (Accept
// from the header named accept).
func invokeRequest(w http.ResponseWriter, r *http.Request, call runtimeCall, accept string) *invoke.Request {
	hd := r.Header
	return &invoke.Request{
		Caller:                  call.caller,
		EndpointName:            call.name,
		Body:                    call.body,
		ContentType:             header(hd, "Content-Type"),
		Accept:                  header(hd, accept),
		CustomAttributes:        header(hd, invoke.HeaderCustomAttributes),
		TargetVariant:           header(hd, invoke.HeaderTargetVariant),
		TargetContainerHostname: header(hd, invoke.HeaderTargetContainer),
		InferenceID:             header(hd, invoke.HeaderInferenceID),
		InferenceComponentName:  header(hd, invoke.HeaderInferenceComponent),
		SessionID:               header(hd, invoke.HeaderSessionID),
		Received:                call.received,
		RequestID:               header(w.Header(), "X-Amzn-Requestid"),
	}
}

// invoke validates req against its input shape and runs it with do,
// answering an error do returns (unless the client went away).
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, shape string, req *invoke.Request, do func(http.ResponseWriter, *http.Request, *invoke.Request) error) {
	if err := h.validateInvoke(shape, req); err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	if err := do(w, r, req); err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeRuntimeError(w, h.Logger, err)
	}
}

// asyncHeaders are InvokeEndpointAsync's header members.
var asyncHeaders = map[string]string{
	"ContentType":              "X-Amzn-SageMaker-Content-Type",
	"Accept":                   invoke.HeaderStreamAccept,
	"CustomAttributes":         invoke.HeaderCustomAttributes,
	"InferenceId":              invoke.HeaderInferenceID,
	"InputLocation":            "X-Amzn-SageMaker-InputLocation",
	"S3OutputPathExtension":    "X-Amzn-SageMaker-S3OutputPathExtension",
	"Filename":                 "X-Amzn-SageMaker-Filename",
	"RequestTTLSeconds":        "X-Amzn-SageMaker-RequestTTLSeconds",
	"InvocationTimeoutSeconds": "X-Amzn-SageMaker-InvocationTimeoutSeconds",
}

// invokeEndpointAsync serves InvokeEndpointAsync: the request is queued and
// answered 202 with its inference id and output and failure locations.
func (h *Handler) invokeEndpointAsync(w http.ResponseWriter, r *http.Request, call runtimeCall) {
	if h.Async == nil {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeNotImplemented, "InvokeEndpointAsync is not served here."))
		return
	}
	m := map[string]string{"EndpointName": call.name}
	for member, name := range asyncHeaders {
		if v := r.Header.Get(name); v != "" {
			m[member] = v
		}
	}
	if err := apimodel.Runtime().ValidateMembers("InvokeEndpointAsyncInput", m); err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	seconds := func(member string) time.Duration {
		n, _ := strconv.Atoi(m[member]) // validated: empty or an integer in range
		return time.Duration(n) * time.Second
	}
	acc, err := h.Async.Submit(r.Context(), async.Request{
		Caller: call.caller, EndpointName: call.name, InputLocation: m["InputLocation"],
		ContentType: m["ContentType"], Accept: m["Accept"], CustomAttributes: m["CustomAttributes"], InferenceID: m["InferenceId"],
		RequestTTL: seconds("RequestTTLSeconds"), InvocationTimeout: seconds("InvocationTimeoutSeconds"),
		S3OutputPathExtension: m["S3OutputPathExtension"], Filename: m["Filename"],
	})
	if err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	body, _ := json.Marshal(struct {
		InferenceID string `json:"InferenceId"`
	}{acc.InferenceID})
	wh := w.Header()
	wh.Set("Content-Type", "application/json")
	wh.Set("X-Amzn-SageMaker-OutputLocation", acc.OutputLocation)
	wh.Set("X-Amzn-SageMaker-FailureLocation", acc.FailureLocation)
	wh.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusAccepted)
	w.Write(body)
}

// validateInvoke checks the header and path members of an invoke request
// against their input shape in the runtime model. Values that passed once
// are remembered (a bounded set), so that the usual repeated endpoint names
// and content types cost a map lookup.
func (h *Handler) validateInvoke(shape string, req *invoke.Request) error {
	members := [...]struct{ name, value string }{
		{"EndpointName", req.EndpointName}, {"ContentType", req.ContentType}, {"Accept", req.Accept},
		{"CustomAttributes", req.CustomAttributes}, {"TargetModel", req.TargetModel}, {"TargetVariant", req.TargetVariant},
		{"TargetContainerHostname", req.TargetContainerHostname}, {"InferenceId", req.InferenceID},
		{"EnableExplanations", req.EnableExplanations}, {"InferenceComponentName", req.InferenceComponentName},
		{"SessionId", req.SessionID},
	}
	var unchecked map[string]string
	h.validMu.RLock()
	for _, m := range members {
		if m.value == "" && m.name != "EndpointName" {
			continue
		}
		if _, ok := h.validated[validValue{shape, m.name, m.value}]; ok {
			continue
		}
		if unchecked == nil {
			unchecked = map[string]string{}
		}
		unchecked[m.name] = m.value
	}
	h.validMu.RUnlock()
	if unchecked == nil {
		return nil
	}
	unchecked["EndpointName"] = req.EndpointName // required: always part of a check
	if err := apimodel.Runtime().ValidateMembers(shape, unchecked); err != nil {
		return err
	}
	h.validMu.Lock()
	if h.validated == nil {
		h.validated = map[validValue]struct{}{}
	}
	for name, value := range unchecked {
		if len(h.validated) < maxValidated {
			h.validated[validValue{shape, name, value}] = struct{}{}
		}
	}
	h.validMu.Unlock()
	return nil
}

// validValue is a member's value that passed validation in a shape.
type validValue struct{ shape, member, value string }

// maxValidated bounds the set of remembered valid header values.
const maxValidated = 4096

// header is h.Get(key) for a key in canonical form (a lookup without
// canonicalising the key again).
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
