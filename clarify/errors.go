package clarify

import (
	"errors"
	"fmt"
)

// Kind classifies an *Error for the caller, which maps it to an API error.
type Kind int

const (
	// KindBadRequest: the client's request cannot be explained (content
	// type, an unparseable record, an EnableExplanations expression that is
	// invalid or does not give a boolean, a record whose feature count does
	// not match the baseline, ...).
	KindBadRequest Kind = iota + 1
	// KindModelOutput: the model answered, but not in a form the explainer
	// can use (row count, no score where ProbabilityIndex or
	// ProbabilityAttribute point, probabilities outside (0, 1) with
	// UseLogit, ...).
	KindModelOutput
	// KindBaseline: the SHAP baseline could not be fetched or read.
	KindBaseline
	// KindTimeout: the caller's deadline passed before the synthetic data
	// set was predicted.
	KindTimeout
)

func (k Kind) String() string {
	switch k {
	case KindBadRequest:
		return "bad request"
	case KindModelOutput:
		return "unusable model output"
	case KindBaseline:
		return "baseline"
	case KindTimeout:
		return "time limit"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is an explanation failure that is not the Predictor's own error.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBadRequest) (and the other sentinels) match any
// *Error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrBadRequest  = &Error{Kind: KindBadRequest}
	ErrModelOutput = &Error{Kind: KindModelOutput}
	ErrBaseline    = &Error{Kind: KindBaseline}
	ErrTimeout     = &Error{Kind: KindTimeout}
)

// KindOf returns the Kind of err's *Error, or 0 when err is none (for
// example a Predictor's error passed through).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func badRequest(format string, args ...any) error {
	return &Error{Kind: KindBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func modelOutput(format string, args ...any) error {
	return &Error{Kind: KindModelOutput, Msg: fmt.Sprintf(format, args...)}
}
