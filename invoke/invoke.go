package invoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sagehost/sagehost"
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
}

// Router holds the routing tables and proxies invocations to instances.
type Router struct {
	tables    tables
	transport *http.Transport
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
		transport: &http.Transport{
			DialContext: (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// Containers must not see headers the API does not define, so
			// no transparent gzip.
			DisableCompression:  true,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		},
	}
}

// Publish installs (or replaces) an endpoint's routing table.
func (r *Router) Publish(t *Table) {
	r.tables.update(func(m map[string]*Table) { m[tableKey(t.Key.Account, t.Key.Region, t.Key.Name)] = t })
}

// Remove drops an endpoint's routing table.
func (r *Router) Remove(key sagehost.EndpointKey) {
	r.tables.update(func(m map[string]*Table) { delete(m, tableKey(key.Account, key.Region, key.Name)) })
}

// Lookup returns an endpoint's current table, or nil.
func (r *Router) Lookup(key sagehost.EndpointKey) *Table {
	return r.tables.get(key.Account, key.Region, key.Name)
}

// Close releases idle connections.
func (r *Router) Close() { r.transport.CloseIdleConnections() }

func validationError(format string, args ...any) *sagehost.Error {
	return sagehost.Errorf(sagehost.CodeValidationError, format, args...)
}

// route resolves the table, variant and candidate instances of a call.
func (r *Router) route(req *Request) (*Table, *Variant, error) {
	c := req.Caller
	t := r.tables.get(c.Account, c.Region, req.EndpointName)
	if t == nil {
		return nil, nil, validationError("Endpoint %s of account %s not found.", req.EndpointName, c.Account)
	}
	if !t.invocable() {
		return nil, nil, validationError("Endpoint %s of account %s is not in service: its status is %s.", req.EndpointName, c.Account, t.Status)
	}
	if req.TargetModel != "" {
		return nil, nil, &sagehost.Error{Code: sagehost.CodeValidationError, ErrorCode: "TARGET_MODEL_HEADER_NOT_SUPPORTED",
			Message: fmt.Sprintf("Endpoint %s is not a multi-model endpoint and does not support target model header.", req.EndpointName)}
	}
	if t.ComponentHost && req.InferenceComponentName == "" {
		return nil, nil, &sagehost.Error{Code: sagehost.CodeValidationError, ErrorCode: "INFERENCE_COMPONENT_NAME_MISSING",
			Message: "Inference Component Name header is required for endpoints to which you plan to deploy inference components. Please include Inference Component Name header or consider using SageMaker models."}
	}
	if req.InferenceComponentName != "" {
		return nil, nil, validationError("Inference component %s does not exist on endpoint %s of account %s.", req.InferenceComponentName, req.EndpointName, c.Account)
	}
	if req.TargetContainerHostname != "" {
		return nil, nil, validationError("Endpoint %s of account %s is not a multi-container endpoint with direct invocation, so it does not accept the TargetContainerHostname header.", req.EndpointName, c.Account)
	}
	if req.TargetVariant != "" {
		v := t.variant(req.TargetVariant)
		if v == nil {
			return nil, nil, validationError("The variant %s does not exist on endpoint %s of account %s.", req.TargetVariant, req.EndpointName, c.Account)
		}
		return t, v, nil
	}
	total := t.totalWeight()
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
			return t, v, nil
		}
		x -= v.Weight
	}
	return t, last, nil
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
	if req.Received.IsZero() {
		req.Received = time.Now()
	}
	t, v, err := r.route(req)
	if err != nil {
		return err
	}
	vm := v.Metrics
	if vm != nil {
		vm.Invocations.Inc()
		if n := v.healthyCount(); n > 0 {
			vm.PerInstance.Add(1 / float64(n))
		}
	}
	var skip *Instance
	for attempt := 0; ; attempt++ {
		in := pick(v, skip)
		if in == nil {
			return sagehost.Errorf(sagehost.CodeServiceUnavailable,
				"No healthy instance of variant %s of endpoint %s of account %s is available. Try again later.", v.Name, req.EndpointName, req.Caller.Account)
		}
		res := r.forward(w, httpReq.Context(), t, v, in, req)
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
			record(vm, req.Received, res)
		}
		return res.err
	}
}

// outcome is what became of one call to a container.
type outcome struct {
	status   int           // the container's HTTP status; 0 if it gave none
	modelDur time.Duration // ModelLatency; 0 if the call never reached it
	err      error         // nil: the answer was relayed
}

// record adds one call's outcome to its variant's metrics.
func record(vm *metrics.Variant, received time.Time, res outcome) {
	switch {
	case res.status >= 400 && res.status < 500:
		vm.Errors4xx.Inc()
	case res.status >= 500:
		vm.Errors5xx.Inc()
	}
	if sagehost.ErrorCode(res.err) == sagehost.CodeModelError {
		vm.ModelErrors.Inc()
	}
	if res.modelDur > 0 {
		vm.ModelLatency.Observe(res.modelDur.Seconds())
		overhead := time.Since(received) - res.modelDur
		if overhead < 0 {
			overhead = 0
		}
		vm.OverheadLatency.Observe(overhead.Seconds())
	}
}

type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }

// forward sends the call to one instance and relays the answer.
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

	ctx, cancel := context.WithTimeout(ctx, r.ModelTimeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+in.Addr+"/invocations", bytes.NewReader(req.Body))
	if err != nil {
		return outcome{err: fmt.Errorf("build container request: %w", err)}
	}
	// Only the headers the API defines reach the container.
	h := out.Header
	h["User-Agent"] = nil
	if req.ContentType != "" {
		h["Content-Type"] = []string{req.ContentType}
	}
	if req.Accept != "" {
		h["Accept"] = []string{req.Accept}
	}
	if req.CustomAttributes != "" {
		h[HeaderCustomAttributes] = []string{req.CustomAttributes}
	}
	if req.InferenceID != "" {
		h[HeaderInferenceID] = []string{req.InferenceID}
	}
	resp, err := r.transport.RoundTrip(out)
	if err != nil {
		return outcome{err: r.transportError(ctx, t, in, err)}
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = r.modelError(t, in, resp)
		return res
	}
	// Success: relay status, content type and custom attributes, then the
	// body, never more than the API's payload limit.
	wh := w.Header()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		wh["Content-Type"] = []string{ct}
	} else {
		wh["Content-Type"] = nil // no sniffing: the model said nothing
	}
	if ca, ok := resp.Header[HeaderCustomAttributes]; ok {
		wh[HeaderCustomAttributes] = ca
	}
	wh[HeaderInvokedVariant] = []string{v.Name}
	if resp.ContentLength >= 0 {
		if resp.ContentLength > MaxPayloadBytes {
			res.err = r.oversizeError(t, in, resp.StatusCode)
			return res
		}
		wh["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
		w.WriteHeader(http.StatusOK)
		// Copy through a plain writer: letting the ResponseWriter's ReadFrom
		// write straight to the client connection made aws-sdk-go-v2
		// clients on loopback see "use of closed network connection"
		// mid-body now and then (seen in TestInvoke* with go1.26).
		buf := copyBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(writerOnly{w}, resp.Body, *buf)
		copyBufs.Put(buf)
		if err != nil {
			r.Logger.Warn("relaying model response failed", "endpoint", t.Key.Name, "instance", in.ID, "err", err)
			panic(http.ErrAbortHandler) // cut the response short so the client sees a broken body
		}
		return res
	}
	// Unknown length: buffer up to the limit to know whether it fits.
	buf := r.getBuf()
	defer r.putBuf(buf)
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, MaxPayloadBytes+1))
	if err != nil {
		res.err = r.transportError(ctx, t, in, err)
		return res
	}
	if n > MaxPayloadBytes {
		res.err = r.oversizeError(t, in, resp.StatusCode)
		return res
	}
	wh["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return res
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

// LogStreamARN returns the ARN of an instance's log stream.
func LogStreamARN(key sagehost.EndpointKey, variant, instanceID string) string {
	return key.LogGroupARN() + ":log-stream:" + variant + "/" + instanceID
}

func logHint(t *Table, in *Instance) string {
	return fmt.Sprintf("See the log stream %s/%s of log group %s in account %s (sagehost logs %s) for more information.",
		in.Variant, in.ID, t.Key.LogGroup(), t.Key.Account, t.Key.Name)
}

func (r *Router) newModelError(t *Table, in *Instance, status int, original, message, code string) *sagehost.Error {
	return &sagehost.Error{
		Code:               sagehost.CodeModelError,
		ErrorCode:          code,
		Message:            truncate(message, 2048),
		OriginalStatusCode: &status,
		OriginalMessage:    truncate(original, 2048),
		LogStreamArn:       LogStreamARN(t.Key, in.Variant, in.ID),
	}
}

// modelError turns a container's non-2xx answer into SageMaker's ModelError.
func (r *Router) modelError(t *Table, in *Instance, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	kind, code := "client", "CLIENT_ERROR_FROM_MODEL"
	if resp.StatusCode >= 500 {
		kind, code = "server", "SERVER_ERROR_FROM_MODEL"
	}
	msg := fmt.Sprintf("Received %s error (%d) from %s with message %q. %s", kind, resp.StatusCode, in.ContainerName, string(body), logHint(t, in))
	return r.newModelError(t, in, resp.StatusCode, string(body), msg, code)
}

func (r *Router) oversizeError(t *Table, in *Instance, status int) error {
	msg := fmt.Sprintf("Received server error (%d) from %s and could not load the entire response body: it is larger than %d bytes. %s",
		status, in.ContainerName, MaxPayloadBytes, logHint(t, in))
	return r.newModelError(t, in, status, "", msg, "SERVER_ERROR_FROM_MODEL")
}

// transportError maps a failed exchange with a container to an error.
func (r *Router) transportError(ctx context.Context, t *Table, in *Instance, err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return &dialError{err: err}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg := fmt.Sprintf("Received server error (0) from %s with message \"Your invocation timed out while waiting for a response from container %s. Review the latency metrics for each container, resolve the issue, and try again.\". %s",
			in.ContainerName, in.ContainerName, logHint(t, in))
		return r.newModelError(t, in, 0, "", msg, "")
	}
	if ctx.Err() != nil {
		return ctx.Err() // the client went away
	}
	msg := fmt.Sprintf("Received server error (0) from %s with message \"The connection to the container was lost before it answered: %s\". %s",
		in.ContainerName, strings.TrimSpace(err.Error()), logHint(t, in))
	return r.newModelError(t, in, 0, "", msg, "")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
