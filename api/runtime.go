package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/apimodel"
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
	"async-invocations":           {"InvokeEndpointAsync", notYet("InvokeEndpointAsync")},
}

// notYet answers an operation that later versions will serve.
func notYet(op string) func(*Handler, http.ResponseWriter, *http.Request, runtimeCall) {
	return func(h *Handler, w http.ResponseWriter, r *http.Request, call runtimeCall) {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeNotImplemented,
			"%s is not implemented by this version of sagehost yet; use InvokeEndpoint.", op))
	}
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
	hd := r.Header
	req := &invoke.Request{
		Caller:                  call.caller,
		EndpointName:            call.name,
		Body:                    call.body,
		ContentType:             header(hd, "Content-Type"),
		Accept:                  header(hd, "Accept"),
		CustomAttributes:        header(hd, invoke.HeaderCustomAttributes),
		TargetModel:             header(hd, invoke.HeaderTargetModel),
		TargetVariant:           header(hd, invoke.HeaderTargetVariant),
		TargetContainerHostname: header(hd, invoke.HeaderTargetContainer),
		InferenceID:             header(hd, invoke.HeaderInferenceID),
		EnableExplanations:      header(hd, invoke.HeaderEnableExplanations),
		InferenceComponentName:  header(hd, invoke.HeaderInferenceComponent),
		SessionID:               header(hd, invoke.HeaderSessionID),
		Received:                call.received,
		RequestID:               header(w.Header(), "X-Amzn-Requestid"),
	}
	if err := h.validateInvoke("InvokeEndpointInput", req); err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	if err := h.Router.Invoke(w, r, req); err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeRuntimeError(w, h.Logger, err)
	}
}

// invokeEndpointWithResponseStream serves InvokeEndpointWithResponseStream:
// InvokeEndpoint's headers less TargetModel and EnableExplanations, with
// Accept in X-Amzn-SageMaker-Accept. Errors before the stream starts are
// ordinary error responses.
func (h *Handler) invokeEndpointWithResponseStream(w http.ResponseWriter, r *http.Request, call runtimeCall) {
	hd := r.Header
	req := &invoke.Request{
		Caller:                  call.caller,
		EndpointName:            call.name,
		Body:                    call.body,
		ContentType:             header(hd, "Content-Type"),
		Accept:                  header(hd, invoke.HeaderStreamAccept),
		CustomAttributes:        header(hd, invoke.HeaderCustomAttributes),
		TargetVariant:           header(hd, invoke.HeaderTargetVariant),
		TargetContainerHostname: header(hd, invoke.HeaderTargetContainer),
		InferenceID:             header(hd, invoke.HeaderInferenceID),
		InferenceComponentName:  header(hd, invoke.HeaderInferenceComponent),
		SessionID:               header(hd, invoke.HeaderSessionID),
		Received:                call.received,
		RequestID:               header(w.Header(), "X-Amzn-Requestid"),
	}
	if err := h.validateInvoke("InvokeEndpointWithResponseStreamInput", req); err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	if err := h.Router.InvokeStream(w, r, req); err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeRuntimeError(w, h.Logger, err)
	}
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
