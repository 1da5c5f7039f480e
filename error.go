package sagehost

import (
	"errors"
	"fmt"
)

// Error codes that sagehost returns to clients. Each is an AWS error code (the
// `__type` of the control plane, the x-amzn-ErrorType of the runtime); the api
// package maps each one to its HTTP status in one table.
const (
	// Control plane (awsJson1_1).
	CodeValidationException    = "ValidationException"
	CodeResourceNotFound       = "ResourceNotFound"
	CodeResourceInUse          = "ResourceInUse"
	CodeResourceLimitExceeded  = "ResourceLimitExceeded"
	CodeConflictException      = "ConflictException"
	CodeSerializationException = "SerializationException"
	CodeUnknownOperation       = "UnknownOperationException"
	CodeInvalidAction          = "InvalidAction"
	CodeMissingAction          = "MissingAction"
	CodeAccessDeniedException  = "AccessDeniedException"
	CodeThrottlingException    = "ThrottlingException"
	CodeInternalFailure        = "InternalFailure"
	CodeServiceUnavailable     = "ServiceUnavailable"
	CodeNotImplemented         = "NotImplemented"
	CodeRequestEntityTooLarge  = "RequestEntityTooLargeException"
	CodeUnsupportedMediaType   = "UnsupportedMediaTypeException"
	CodeInvalidParameterValue  = "InvalidParameterValue"
	CodeMalformedQueryString   = "MalformedQueryString"
	CodeMethodNotAllowed       = "MethodNotAllowedException"
	CodeRequestExpired         = "RequestExpired"
	CodeMissingAuthToken       = "MissingAuthenticationTokenException"
	CodeIncompleteSignature    = "IncompleteSignatureException"
	CodeInvalidSignature       = "InvalidSignatureException"
	CodeUnrecognizedClient     = "UnrecognizedClientException"
	CodeExpiredToken           = "ExpiredTokenException"
	CodeInvalidClientTokenID   = "InvalidClientTokenId"
	CodeModelError             = "ModelError"
	CodeModelNotReady          = "ModelNotReadyException"
	CodeValidationError        = "ValidationError"
	CodeInternalDependency     = "InternalDependencyException"
	CodeModelStreamError       = "ModelStreamError"
	CodeInternalStreamFailure  = "InternalStreamFailure"
)

// ErrorCodes lists every error code above; the api package's test checks
// that each has an HTTP status.
func ErrorCodes() []string {
	return []string{
		CodeValidationException, CodeResourceNotFound, CodeResourceInUse, CodeResourceLimitExceeded,
		CodeConflictException, CodeSerializationException, CodeUnknownOperation, CodeInvalidAction,
		CodeMissingAction, CodeAccessDeniedException, CodeThrottlingException, CodeInternalFailure,
		CodeServiceUnavailable, CodeNotImplemented, CodeRequestEntityTooLarge, CodeUnsupportedMediaType,
		CodeInvalidParameterValue, CodeMalformedQueryString, CodeMethodNotAllowed, CodeRequestExpired,
		CodeMissingAuthToken, CodeIncompleteSignature, CodeInvalidSignature, CodeUnrecognizedClient,
		CodeExpiredToken, CodeInvalidClientTokenID, CodeModelError, CodeModelNotReady, CodeValidationError,
		CodeInternalDependency, CodeModelStreamError, CodeInternalStreamFailure,
	}
}

// Error is an application error: a client-visible AWS error code and message,
// plus the extra members some runtime errors carry. Any error that is not an
// *Error reaches a client as InternalFailure with a generic message, so
// internal details never leak.
type Error struct {
	Code    string // AWS error code, e.g. "ValidationException"
	Message string // human-readable message returned to the client

	// ErrorCode is the machine-readable sub-code some runtime errors carry
	// (e.g. "TARGET_MODEL_HEADER_NOT_SUPPORTED", "CLIENT_ERROR_FROM_MODEL").
	ErrorCode string
	// ModelError members.
	OriginalStatusCode *int
	OriginalMessage    string
	LogStreamArn       string

	// Cause, never shown to a client, lets callers test what happened
	// with errors.Is (e.g. ErrAlreadyExists) rather than by the message.
	Cause error
}

func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

// Unwrap returns the error's Cause.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the AWS error code of err, or CodeInternalFailure when err
// is not an application error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternalFailure
}

// ErrorMessage returns the client-visible message of err; a non-application
// error gives a generic message.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred. Try again."
}

// Sentinel errors returned by Store and Backend implementations.
var (
	// ErrNotFound: the named record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a record with that key already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInstanceNotFound: the backend does not know the instance (or it is gone).
	ErrInstanceNotFound = errors.New("instance not found")
)
