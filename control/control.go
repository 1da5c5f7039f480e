// Package control implements SageMaker's control-plane operations for
// models, endpoint configs, endpoints, inference components and tags: the checks that go beyond the
// API shapes (references between resources, states, uniqueness), ARNs and
// timestamps, persistence through a sagehost.Store, and the notice to the
// reconciler that an endpoint's desired state changed.
//
// Inputs arrive already decoded and validated against botocore's shapes by
// the api package; each operation returns an output value that the api
// package encodes as awsJson 1.1, or a *sagehost.Error.
package control

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/sagehost/sagehost"
)

// Notifier is told when an endpoint's desired state changes, so that the
// reconciler acts on it. It must not block.
type Notifier interface {
	EndpointChanged(key sagehost.EndpointKey)
}

// Service runs the control-plane operations.
type Service struct {
	Store    sagehost.Store
	Notifier Notifier
	// Now returns the current time; tests may replace it.
	Now    func() time.Time
	Logger *slog.Logger
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) notify(key sagehost.EndpointKey) {
	if s.Notifier != nil {
		s.Notifier.EndpointChanged(key)
	}
}

// Time is a timestamp encoded as awsJson does: epoch seconds with a fraction.
type Time time.Time

// MarshalJSON encodes t as epoch seconds with millisecond precision.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON decodes epoch seconds (the form the api package normalises
// every input timestamp to).
func (t *Time) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	sec, frac := math.Modf(f)
	*t = Time(time.Unix(int64(sec), int64(frac*1e9)).UTC())
	return nil
}

func validation(format string, args ...any) error {
	return sagehost.Errorf(sagehost.CodeValidationException, format, args...)
}

// alreadyExists is SageMaker's error for creating a resource whose name is
// taken ("Cannot create already existing KIND \"ARN\"."); it answers
// errors.Is(err, sagehost.ErrAlreadyExists).
func alreadyExists(kind, arn string) error {
	e := sagehost.Errorf(sagehost.CodeValidationException, "Cannot create already existing %s %q.", kind, arn)
	e.Cause = sagehost.ErrAlreadyExists
	return e
}

// storeErr turns an unexpected store error into an internal error with
// context; application errors pass through.
func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *sagehost.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// describeDoc merges a stored request document with the computed members of
// a Describe output.
func describeDoc(doc json.RawMessage, extra map[string]any) (map[string]any, error) {
	out := map[string]any{}
	if len(doc) > 0 {
		if err := json.Unmarshal(doc, &out); err != nil {
			return nil, fmt.Errorf("decode stored document: %w", err)
		}
	}
	for k, v := range extra {
		out[k] = v
	}
	return out, nil
}

// stripMembers returns doc without the named top-level members.
func stripMembers(doc json.RawMessage, names ...string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(doc) > 0 {
		if err := json.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("decode request: %w", err)
		}
	}
	for _, n := range names {
		delete(m, n)
	}
	return json.Marshal(m)
}

// newID returns a random hex id of n bytes.
func newID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// Raw carries the validated request document of an operation. Inputs whose
// whole request is stored embed it; the api package fills it in.
type Raw struct {
	Doc json.RawMessage `json:"-"`
}

// SetRaw records the validated request document.
func (r *Raw) SetRaw(doc json.RawMessage) { r.Doc = doc }
