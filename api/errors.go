package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/sagehost/sagehost"
)

// protocol is one of the two AWS wire protocols sagehost answers.
type protocol int

const (
	controlPlane protocol = iota // awsJson1_1, SageMaker
	runtime                      // rest-json, SageMaker Runtime
)

// statuses maps each error code to its HTTP status on the control plane and
// on the runtime. Signature errors are 400 on awsJson services and 403
// behind the runtime's REST front end.
var statuses = map[string][2]int{
	sagehost.CodeValidationException:    {400, 400},
	sagehost.CodeResourceNotFound:       {400, 400},
	sagehost.CodeResourceInUse:          {400, 400},
	sagehost.CodeResourceLimitExceeded:  {400, 400},
	sagehost.CodeConflictException:      {400, 409},
	sagehost.CodeSerializationException: {400, 400},
	sagehost.CodeUnknownOperation:       {400, 404},
	sagehost.CodeInvalidAction:          {400, 400},
	sagehost.CodeMissingAction:          {400, 400},
	sagehost.CodeAccessDeniedException:  {400, 403},
	sagehost.CodeThrottlingException:    {400, 429},
	sagehost.CodeInternalFailure:        {500, 500},
	sagehost.CodeServiceUnavailable:     {503, 503},
	sagehost.CodeNotImplemented:         {501, 501},
	sagehost.CodeRequestEntityTooLarge:  {413, 413},
	sagehost.CodeUnsupportedMediaType:   {415, 415},
	sagehost.CodeInvalidParameterValue:  {400, 400},
	sagehost.CodeMalformedQueryString:   {404, 404},
	sagehost.CodeMethodNotAllowed:       {405, 405},
	sagehost.CodeRequestExpired:         {400, 403},
	sagehost.CodeMissingAuthToken:       {403, 403},
	sagehost.CodeIncompleteSignature:    {400, 403},
	sagehost.CodeInvalidSignature:       {400, 403},
	sagehost.CodeUnrecognizedClient:     {400, 403},
	sagehost.CodeExpiredToken:           {400, 403},
	sagehost.CodeInvalidClientTokenID:   {403, 403},
	sagehost.CodeModelError:             {424, 424},
	sagehost.CodeModelNotReady:          {429, 429},
	sagehost.CodeValidationError:        {400, 400},
	sagehost.CodeInternalDependency:     {530, 530},
	sagehost.CodeModelStreamError:       {400, 400},
	sagehost.CodeInternalStreamFailure:  {500, 500},
}

// status returns the HTTP status of an error code.
func status(p protocol, code string) int {
	if s, ok := statuses[code]; ok {
		return s[p]
	}
	return 500
}

// oversizeStatus is the status of a runtime request whose body exceeds the
// payload limit (SageMaker answers 413).
const oversizeStatus = http.StatusRequestEntityTooLarge

// appError returns err as an application error; anything else is logged and
// becomes InternalFailure, so that internals never reach a client.
func appError(log *slog.Logger, err error) *sagehost.Error {
	var e *sagehost.Error
	if errors.As(err, &e) {
		return e
	}
	log.Error("internal error", "err", err)
	return &sagehost.Error{Code: sagehost.CodeInternalFailure, Message: sagehost.ErrorMessage(err)}
}

// writeControlError writes an awsJson 1.1 error: {"__type", "message"}.
func writeControlError(w http.ResponseWriter, log *slog.Logger, err error) {
	e := appError(log, err)
	h := w.Header()
	h["Content-Type"] = []string{"application/x-amz-json-1.1"}
	h["X-Amzn-Errortype"] = []string{e.Code}
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	w.WriteHeader(status(controlPlane, e.Code))
	w.Write(body)
}

// runtimeErrorBody is the rest-json error body of SageMaker Runtime. Both
// "Message" (what the service sends) and "message" (what paws reads) are set.
type runtimeErrorBody struct {
	ErrorCode          string `json:"ErrorCode,omitempty"`
	Message            string `json:"Message"`
	LowerMessage       string `json:"message"`
	OriginalStatusCode *int   `json:"OriginalStatusCode,omitempty"`
	OriginalMessage    string `json:"OriginalMessage,omitempty"`
	LogStreamArn       string `json:"LogStreamArn,omitempty"`
}

// writeRuntimeError writes a rest-json error: the code in x-amzn-ErrorType
// (with the service suffix SDKs strip), the members in a JSON body.
func writeRuntimeError(w http.ResponseWriter, log *slog.Logger, err error) {
	writeRuntimeErrorStatus(w, log, err, 0)
}

func writeRuntimeErrorStatus(w http.ResponseWriter, log *slog.Logger, err error, st int) {
	e := appError(log, err)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Amzn-Errortype"] = []string{e.Code + ":http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"}
	body, _ := json.Marshal(runtimeErrorBody{
		ErrorCode: e.ErrorCode, Message: e.Message, LowerMessage: e.Message,
		OriginalStatusCode: e.OriginalStatusCode, OriginalMessage: e.OriginalMessage, LogStreamArn: e.LogStreamArn,
	})
	if st == 0 {
		st = status(runtime, e.Code)
	}
	w.WriteHeader(st)
	w.Write(body)
}
