package invoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/clarify"
)

// explain answers a call on an endpoint with an explainer: the variant's
// healthy instances predict the request's records and the synthetic data
// set of Kernel SHAP (in parallel, one Predictor each), and the client
// gets SageMaker Clarify's response. The whole call keeps to the model
// timeout.
func (r *Router) explain(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, req *Request) (res outcome) {
	var preds []clarify.Predictor
	var instances []*Instance
	for _, in := range v.Instances {
		if in.Healthy() {
			instances = append(instances, in)
			preds = append(preds, r.predictor(t, in))
		}
	}
	if len(preds) == 0 {
		return outcome{err: sagehost.Errorf(sagehost.CodeServiceUnavailable,
			"No healthy instance of variant %s of endpoint %s of account %s is available. Try again later.", v.Name, req.EndpointName, req.Caller.Account)}
	}
	start := time.Now()
	defer func() { res.modelDur = time.Since(start) }()
	ctx, cancel := context.WithTimeout(ctx, r.ModelTimeout)
	defer cancel()
	result, err := v.Explainer.ExplainResult(ctx, clarify.Request{
		Body: req.Body, ContentType: req.ContentType, Accept: req.Accept,
		EnableExplanations: req.EnableExplanations, Predictors: preds,
	})
	if err != nil {
		return outcome{err: r.explainError(t, instances[0], err)}
	}
	if vm := v.Metrics; vm != nil && result.Explained > 0 {
		vm.ExplanationsPerInstance.Add(float64(result.Explained) / float64(len(instances)))
	}
	wh := w.Header()
	wh["Content-Type"] = []string{clarify.ContentType}
	wh["Content-Length"] = []string{strconv.Itoa(len(result.Body))}
	wh[HeaderInvokedVariant] = v.invoked
	w.WriteHeader(http.StatusOK)
	w.Write(result.Body)
	if req.captured != nil {
		req.captured.contentType, req.captured.data = clarify.ContentType, bytes.NewBuffer(result.Body)
	}
	return outcome{status: http.StatusOK}
}

// predictor sends the explainer's batches to one instance's container.
func (r *Router) predictor(t *Table, in *Instance) clarify.Predictor {
	c := &in.Containers[0]
	return func(ctx context.Context, body []byte, contentType, accept string) ([]byte, string, error) {
		in.inflight.Add(1)
		defer in.inflight.Add(-1)
		resp, err := r.send(ctx, time.Time{}, c, "", body, contentType, accept, &Request{}, "")
		if err != nil {
			return nil, "", r.transportError(ctx, t, c, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, "", r.modelError(t, c, resp)
		}
		var buf bytes.Buffer
		if err := r.readAnswer(ctx, t, c, resp, &buf, MaxPayloadBytes); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), resp.Header.Get("Content-Type"), nil
	}
}

// explainError maps an explainer error to the client's: the model's own
// errors pass through; a bad request or unusable output is a
// ValidationError; running out of time is a ModelError, as a slow model is.
func (r *Router) explainError(t *Table, in *Instance, err error) error {
	var app *sagehost.Error
	if errors.As(err, &app) {
		return app // the model's ModelError, unchanged
	}
	switch clarify.KindOf(err) {
	case clarify.KindBadRequest, clarify.KindModelOutput, clarify.KindBaseline:
		return sagehost.Errorf(sagehost.CodeValidationError, "The explanation could not be made: %v", err)
	case clarify.KindTimeout:
		c := &in.Containers[0]
		return r.newModelError(t, c, 0, "", fmt.Sprintf("Received server error (0) from %s: %v. %s", c.Name, err, logHint(t, c)), "")
	}
	return fmt.Errorf("explain on endpoint %s: %w", t.Key.Name, err)
}
