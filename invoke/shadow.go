package invoke

import (
	"bytes"
	"context"
	"net/http"
)

// maxShadowCalls bounds the shadow copies in flight, all endpoints
// together; past it a copy is dropped (and logged), never waited for.
const maxShadowCalls = 256

// shadow sends a copy of a call to the table's shadow variant, in the
// background: its answer is read and dropped, its outcome counted in the
// shadow variant's metrics and captured if the endpoint captures data. The
// client's call never waits for it.
func (r *Router) shadow(t *Table, req *Request) {
	select {
	case r.shadowSlots <- struct{}{}:
	default:
		r.Logger.Warn("too many shadow calls in flight; copy dropped", "endpoint", t.Key.Name, "variant", t.Shadow.Name)
		return
	}
	q := &Request{
		Caller: req.Caller, EndpointName: req.EndpointName, Body: bytes.Clone(req.Body),
		ContentType: req.ContentType, Accept: req.Accept, CustomAttributes: req.CustomAttributes,
		TargetModel: req.TargetModel, TargetContainerHostname: req.TargetContainerHostname,
		InferenceID: req.InferenceID, EnableExplanations: req.EnableExplanations,
		Received: req.Received, RequestID: req.RequestID, Timeout: req.Timeout,
	}
	go func() {
		defer func() { <-r.shadowSlots }()
		if err := r.serveShadow(t, q); err != nil {
			r.Logger.Info("shadow call failed", "endpoint", t.Key.Name, "variant", t.Shadow.Name, "err", err)
		}
	}()
}

// serveShadow sends the copy q to the shadow variant, dropping the answer.
func (r *Router) serveShadow(t *Table, q *Request) (err error) {
	defer recoverBrokenAnswer(&err)
	return r.serve(discard{http.Header{}}, context.Background(), t, t.Shadow, nil, q)
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}
