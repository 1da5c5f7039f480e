package invoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/capture"
	"github.com/sagehost/sagehost/invoke/internal/upstream"
	"github.com/sagehost/sagehost/metrics"
)

// MaxPayloadBytes is InvokeEndpoint's limit on the request and response
// bodies (botocore's BodyBlob max, 6 MiB).
const MaxPayloadBytes = 6291456

// DefaultModelTimeout is how long a container has to answer an invocation.
const DefaultModelTimeout = 60 * time.Second

// Header names of the SageMaker Runtime API.
const (
	HeaderCustomAttributes   = "X-Amzn-Sagemaker-Custom-Attributes"
	HeaderTargetModel        = "X-Amzn-Sagemaker-Target-Model"
	HeaderTargetVariant      = "X-Amzn-Sagemaker-Target-Variant"
	HeaderTargetContainer    = "X-Amzn-Sagemaker-Target-Container-Hostname"
	HeaderInferenceID        = "X-Amzn-Sagemaker-Inference-Id"
	HeaderEnableExplanations = "X-Amzn-Sagemaker-Enable-Explanations"
	HeaderInferenceComponent = "X-Amzn-Sagemaker-Inference-Component"
	HeaderSessionID          = "X-Amzn-Sagemaker-Session-Id"
	HeaderInvokedVariant     = "X-Amzn-Invoked-Production-Variant"
)

// Request is one InvokeEndpoint call, decoded and authenticated.
type Request struct {
	Caller       sagehost.Caller
	EndpointName string
	Body         []byte

	ContentType             string
	Accept                  string
	CustomAttributes        string
	TargetModel             string
	TargetVariant           string
	TargetContainerHostname string
	InferenceID             string
	EnableExplanations      string
	InferenceComponentName  string
	SessionID               string

	// Received is when sagehost received the call (for OverheadLatency);
	// zero means now.
	Received time.Time
	// RequestID is the x-amzn-RequestId of the call, for messages that
	// quote it.
	RequestID string
	// Timeout, when set, bounds the call to the container instead of the
	// router's ModelTimeout (asynchronous invocations).
	Timeout time.Duration
	// MaxAnswerBytes, when set, bounds the container's answer instead of
	// MaxPayloadBytes (asynchronous invocations).
	MaxAnswerBytes int64

	captured  *capturedAnswer // set when this call is captured
	stream    bool            // InvokeEndpointWithResponseStream
	async     bool            // an InvokeEndpointAsync request, sent by InvokeQueued
	direct    int             // Direct mode: the index of the target container
	modelName string          // multi-model: ModelName(TargetModel)
}

// Router holds the routing tables and proxies invocations to instances.
type Router struct {
	tables   tables
	sessions sessions
	// shadowSlots bounds the shadow copies in flight.
	shadowSlots chan struct{}
	upstream    *upstream.Client
	// ModelTimeout bounds each container call (DefaultModelTimeout if zero).
	ModelTimeout time.Duration
	Logger       *slog.Logger
	bufs         sync.Pool
}

// NewRouter returns a Router with a pooled keep-alive transport.
func NewRouter(modelTimeout time.Duration, logger *slog.Logger) *Router {
	if modelTimeout <= 0 {
		modelTimeout = DefaultModelTimeout
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Router{
		ModelTimeout: modelTimeout,
		Logger:       logger,
		// Containers must not see headers the API does not define: the
		// client sends only those send gives it (no User-Agent, no
		// Accept-Encoding).
		upstream:    upstream.New(256, 90*time.Second, 2*time.Second),
		shadowSlots: make(chan struct{}, maxShadowCalls),
	}
}

// Publish installs (or replaces) an endpoint's routing table, completing
// it and its variants with what the invoke path derives from them: neither
// may change afterwards.
func (r *Router) Publish(t *Table) {
	t.prepare()
	r.tables.update(func(m map[sagehost.EndpointKey]*Table) { m[t.Key] = t })
}

// Remove drops an endpoint's routing table.
func (r *Router) Remove(key sagehost.EndpointKey) {
	r.tables.update(func(m map[sagehost.EndpointKey]*Table) { delete(m, key) })
}

// Lookup returns an endpoint's current table, or nil.
func (r *Router) Lookup(key sagehost.EndpointKey) *Table {
	return r.tables.get(key)
}

// Close releases the connections to containers and keeps none from now on.
func (r *Router) Close() { r.upstream.Close() }

func validationError(format string, args ...any) *sagehost.Error {
	return sagehost.Errorf(sagehost.CodeValidationError, format, args...)
}

// invocableTable returns the table of the endpoint a call names, if it can
// take calls now.
func (r *Router) invocableTable(req *Request) (*Table, error) {
	c := req.Caller
	t := r.tables.get(sagehost.EndpointKey{Account: c.Account, Region: c.Region, Name: req.EndpointName})
	if t == nil {
		return nil, validationError("Endpoint %s of account %s not found.", req.EndpointName, c.Account)
	}
	if !t.Invocable() {
		return nil, validationError("Endpoint %s of account %s is not in service: its status is %s.", req.EndpointName, c.Account, t.Status)
	}
	if t.Async != nil && !req.async {
		return nil, validationError("Endpoint %s of account %s is an asynchronous endpoint (its endpoint config has an AsyncInferenceConfig): invoke it with InvokeEndpointAsync.", req.EndpointName, c.Account)
	}
	if t.Async == nil && req.async {
		return nil, validationError("Endpoint %s of account %s is not an asynchronous endpoint: its endpoint config has no AsyncInferenceConfig. Invoke it with InvokeEndpoint.", req.EndpointName, c.Account)
	}
	return t, nil
}

// AsyncTable returns the table of the asynchronous endpoint that an
// InvokeEndpointAsync call names, or the error to answer it with: the
// endpoint does not exist, is not in service, or is not asynchronous.
func (r *Router) AsyncTable(req *Request) (*Table, error) {
	q := *req
	q.async = true
	return r.invocableTable(&q)
}

// route resolves the table, variant and candidate instances of a call.
func (r *Router) route(req *Request) (*Table, *Variant, error) {
	c := req.Caller
	t, err := r.invocableTable(req)
	if err != nil {
		return nil, nil, err
	}
	if t.ComponentHost && req.InferenceComponentName == "" {
		return nil, nil, &sagehost.Error{Code: sagehost.CodeValidationError, ErrorCode: "INFERENCE_COMPONENT_NAME_MISSING",
			Message: "Inference Component Name header is required for endpoints to which you plan to deploy inference components. Please include Inference Component Name header or consider using SageMaker models."}
	}
	if req.InferenceComponentName != "" {
		v := t.Components[req.InferenceComponentName]
		if v == nil {
			return nil, nil, validationError("Inference component %s does not exist on endpoint %s of account %s.", req.InferenceComponentName, req.EndpointName, c.Account)
		}
		if req.TargetVariant != "" && req.TargetVariant != v.Name {
			return nil, nil, validationError("Inference component %s runs on variant %s, not %s.", req.InferenceComponentName, v.Name, req.TargetVariant)
		}
		return t, v, nil
	}
	if req.TargetVariant != "" {
		v := t.variant(req.TargetVariant)
		if v == nil {
			return nil, nil, validationError("The variant %s does not exist on endpoint %s of account %s.", req.TargetVariant, req.EndpointName, c.Account)
		}
		return t, v, nil
	}
	total := t.totalWeight
	if total <= 0 {
		return nil, nil, sagehost.Errorf(sagehost.CodeServiceUnavailable, "Endpoint %s of account %s has no variant with a weight greater than 0.", req.EndpointName, c.Account)
	}
	x := rand.Float64() * total
	var last *Variant
	for _, v := range t.Variants {
		if v.Weight <= 0 {
			continue
		}
		last = v
		if x < v.Weight {
			break
		}
		x -= v.Weight
	}
	return t, last, nil
}

// checkTargets applies SageMaker's rules for TargetModel and
// TargetContainerHostname to the chosen variant.
func checkTargets(req *Request, v *Variant) error {
	c := req.Caller
	switch {
	case req.TargetModel != "" && v.MultiModel == nil:
		return &sagehost.Error{Code: sagehost.CodeValidationError, ErrorCode: "TARGET_MODEL_HEADER_NOT_SUPPORTED",
			Message: fmt.Sprintf("Endpoint %s is not a multi-model endpoint and does not support target model header.", req.EndpointName)}
	case req.TargetModel == "" && v.MultiModel != nil:
		return validationError("Request %s is missing a target model header.", req.RequestID)
	case v.Mode == "Direct" && req.TargetContainerHostname == "":
		return validationError("Endpoint %s of account %s invokes its containers directly: the request must name one with the TargetContainerHostname header (X-Amzn-SageMaker-Target-Container-Hostname).", req.EndpointName, c.Account)
	case v.Mode != "Direct" && req.TargetContainerHostname != "":
		return validationError("Endpoint %s of account %s is not a multi-container endpoint with direct invocation, so it does not accept the TargetContainerHostname header.", req.EndpointName, c.Account)
	}
	return nil
}

// pick chooses a healthy instance: the one with the fewest outstanding
// requests (ties broken at random), or a random one for RANDOM routing.
// skip excludes one instance (after a failed connection).
func pick(v *Variant, skip *Instance) *Instance {
	var best *Instance
	var bestN int64
	ties := 0
	for _, in := range v.Instances {
		if in == skip || !in.Healthy() {
			continue
		}
		n := in.inflight.Load()
		if v.Strategy == "RANDOM" {
			n = 0
		}
		switch {
		case best == nil || n < bestN:
			best, bestN, ties = in, n, 1
		case n == bestN:
			ties++
			if rand.IntN(ties) == 0 {
				best = in
			}
		}
	}
	return best
}

// Invoke serves one InvokeEndpoint call. On success it writes the response
// and returns nil; otherwise it returns the error to send, having written
// nothing, unless the error came after the response started (then it has
// been logged and the connection is cut short).
func (r *Router) Invoke(w http.ResponseWriter, httpReq *http.Request, req *Request) error {
	return r.invoke(w, httpReq.Context(), req)
}

// InvokeQueued sends a queued InvokeEndpointAsync request to the endpoint,
// as Invoke does (req.Timeout and req.MaxAnswerBytes in place of the
// InvokeEndpoint limits), writing the container's answer to w. An answer
// that breaks off while being relayed is an error (errAnswerBroken): w is
// no client connection that a cut would tell.
func (r *Router) InvokeQueued(ctx context.Context, w http.ResponseWriter, req *Request) (err error) {
	defer recoverBrokenAnswer(&err)
	req.async = true
	return r.invoke(w, ctx, req)
}

// errAnswerBroken is a relay cut short (relay panics with
// http.ErrAbortHandler) for a caller that is not an HTTP server.
var errAnswerBroken = errors.New("the connection to the container was lost while it sent its answer")

// recoverBrokenAnswer turns relay's http.ErrAbortHandler panic into
// errAnswerBroken; any other panic goes on.
func recoverBrokenAnswer(err *error) {
	if v := recover(); v != nil {
		if v != http.ErrAbortHandler {
			panic(v)
		}
		*err = errAnswerBroken
	}
}

func (r *Router) invoke(w http.ResponseWriter, ctx context.Context, req *Request) error {
	if req.Received.IsZero() {
		req.Received = time.Now()
	}
	t, v, err := r.route(req)
	if err != nil {
		return err
	}
	if req.stream && v.MultiModel != nil {
		return errStreamMultiModel(req)
	}
	var pinned *Instance // the instance of the call's session
	if req.SessionID != "" && req.SessionID != NewSession {
		if v, pinned, err = r.sessionInstance(t, v, req); err != nil {
			return err
		}
	}
	if t.Shadow != nil && pinned == nil && rand.Float64() < t.ShadowFraction {
		r.shadow(t, req)
	}
	return r.serve(w, ctx, t, v, pinned, req)
}

// serve sends a call to one of a variant's instances (pinned, if set) and
// relays the answer to w.
func (r *Router) serve(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, pinned *Instance, req *Request) error {
	if err := checkTargets(req, v); err != nil {
		return err
	}
	if v.Mode == "Direct" && len(v.Instances) > 0 {
		k, ok := v.direct[req.TargetContainerHostname]
		if !ok {
			return validationError("Endpoint %s of account %s has no container with the hostname %s.", req.EndpointName, req.Caller.Account, req.TargetContainerHostname)
		}
		req.direct = k
	}
	cp := v.Capture
	if cp != nil && !capture.Sampled(cp.Percent) {
		cp = nil
	}
	if cp != nil && cp.Output {
		req.captured = &capturedAnswer{}
	}
	vm := v.Metrics
	if vm != nil && !req.async { // (not published for asynchronous endpoints)
		vm.Invocations.Inc()
		if n := v.healthyCount(); n > 0 {
			vm.PerInstance.Add(1 / float64(n))
		}
	}
	if v.Explainer != nil && !req.stream { // (a stream has no EnableExplanations)
		res := r.explain(w, ctx, t, v, req)
		if vm != nil {
			record(vm, req, res)
		}
		if cp != nil && res.err == nil {
			captureCall(cp, t, v, req)
		}
		return res.err
	}
	if v.MultiModel != nil {
		req.modelName = ModelName(req.TargetModel)
	}
	var skip *Instance
	for attempt := 0; ; attempt++ {
		var in *Instance
		switch {
		case pinned != nil:
			if attempt > 0 { // it refused the connection: the session's state is out of reach
				return sagehost.Errorf(sagehost.CodeServiceUnavailable, "The instance that holds session %s of endpoint %s of account %s refused the connection. Try again later.", req.SessionID, req.EndpointName, req.Caller.Account)
			}
			in = pinned
		case v.MultiModel != nil:
			in = pickForModel(v, req.modelName, skip)
		default:
			in = pick(v, skip)
		}
		if in == nil {
			if req.InferenceComponentName != "" {
				return sagehost.Errorf(sagehost.CodeServiceUnavailable,
					"Inference component %s of endpoint %s of account %s has no healthy copy to serve the request. Try again later, or raise its copy count.", req.InferenceComponentName, req.EndpointName, req.Caller.Account)
			}
			return sagehost.Errorf(sagehost.CodeServiceUnavailable,
				"No healthy instance of variant %s of endpoint %s of account %s is available. Try again later.", v.Name, req.EndpointName, req.Caller.Account)
		}
		res := r.forward(w, ctx, t, v, in, req)
		var dialErr *dialError
		if errors.As(res.err, &dialErr) && attempt == 0 {
			// Nothing reached the container: take it out of routing until
			// its health check passes again, and try another instance.
			in.SetHealthy(false)
			r.Logger.Warn("instance refused connection; taken out of routing", "endpoint", t.Key.Name, "variant", v.Name, "instance", in.ID, "err", dialErr.err)
			skip = in
			continue
		}
		if vm != nil {
			record(vm, req, res)
		}
		if cp != nil && res.err == nil {
			captureCall(cp, t, v, req)
		}
		return res.err
	}
}

// outcome is what became of one call to a container.
type outcome struct {
	status   int           // the container's HTTP status; 0 if it gave none
	modelDur time.Duration // ModelLatency; 0 if the call never reached it
	err      error         // nil: the answer was relayed
	// midStream: a response stream ended with an error event after it
	// had started (err is nil then).
	midStream bool
}

// record adds one call's outcome to its variant's metrics.
func record(vm *metrics.Variant, req *Request, res outcome) {
	switch {
	case res.status >= 400 && res.status < 500:
		vm.Errors4xx.Inc()
	case res.status >= 500:
		vm.Errors5xx.Inc()
	}
	if res.err != nil && sagehost.ErrorCode(res.err) == sagehost.CodeModelError {
		vm.ModelErrors.Inc()
	}
	if res.midStream {
		vm.MidStreamErrors.Inc()
	}
	if res.modelDur > 0 {
		vm.ModelLatency.Observe(res.modelDur.Seconds())
		if req.async {
			return // (no OverheadLatency for asynchronous endpoints)
		}
		overhead := time.Since(req.Received) - res.modelDur
		if overhead < 0 {
			overhead = 0
		}
		vm.OverheadLatency.Observe(overhead.Seconds())
	}
}

type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }

// forward sends the call to one instance, as its variant's kind of model
// wants, and relays the answer.
func (r *Router) forward(w http.ResponseWriter, ctx context.Context, t *Table, v *Variant, in *Instance, req *Request) (res outcome) {
	in.inflight.Add(1)
	defer in.inflight.Add(-1)
	start := time.Now()
	defer func() {
		var dialErr *dialError
		if !errors.As(res.err, &dialErr) {
			res.modelDur = time.Since(start)
		}
	}()
	switch {
	case v.MultiModel != nil:
		return r.forwardMultiModel(w, ctx, t, v, in, req)
	case v.Mode == "Serial" && len(in.Containers) > 1:
		return r.forwardPipeline(w, ctx, t, v, in, req)
	}
	c := &in.Containers[0]
	if v.Mode == "Direct" {
		c = &in.Containers[req.direct] // Invoke checked the hostname
	}
	// The model's deadline goes to the connection, not into a context
	// (a timer and a cancellable context per call, all but never used).
	resp, err := r.send(ctx, time.Now().Add(r.timeout(req)), c, "", req.Body, req.ContentType, req.Accept, req, "")
	if err != nil {
		return outcome{err: r.transportError(ctx, t, c, err)}
	}
	defer resp.Body.Close()
	return r.relay(w, ctx, t, v, in, c, resp, req)
}

// timeout is how long the container has to answer req.
func (r *Router) timeout(req *Request) time.Duration {
	if req.Timeout > 0 {
		return req.Timeout
	}
	return r.ModelTimeout
}

// maxAnswer is the largest answer req may get.
func (req *Request) maxAnswer() int64 {
	if req.MaxAnswerBytes > 0 {
		return req.MaxAnswerBytes
	}
	return MaxPayloadBytes
}

// writerOnly hides every method but Write.
type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (r *Router) getBuf() *bytes.Buffer {
	if b, ok := r.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

func (r *Router) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 2*MaxPayloadBytes {
		r.bufs.Put(b)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
