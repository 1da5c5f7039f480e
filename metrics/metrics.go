// Package metrics owns sagehost's Prometheus metrics, named and labelled
// after SageMaker's CloudWatch endpoint metrics (Invocations,
// Invocation4XXErrors, ModelLatency, OverheadLatency, ...), and the /metrics
// handler. Latencies are histograms in seconds (Prometheus' base unit) with
// buckets from 25 microseconds to a minute.
//
// The invoke path never looks metrics up by label: the reconciler resolves
// each variant's series once (Variant) and hands them over with the routing
// table, so recording a call is a few atomic adds.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sagehost/sagehost"
)

// LatencyBuckets span 25 µs to about a minute, doubling.
var LatencyBuckets = append(prometheus.ExponentialBuckets(25e-6, 2, 22), 60)

var endpointLabels = []string{"account", "region", "endpoint", "variant"}

// invocationLabels add the inference component ("" for a variant's own
// model), CloudWatch's InferenceComponentName dimension.
var invocationLabels = append(append([]string{}, endpointLabels...), "inference_component")

// Metrics is the set of sagehost's metrics, on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	invocations     *prometheus.CounterVec
	errors4xx       *prometheus.CounterVec
	errors5xx       *prometheus.CounterVec
	modelErrors     *prometheus.CounterVec
	midStreamErrors *prometheus.CounterVec
	perInstance     *prometheus.CounterVec
	modelLatency    *prometheus.HistogramVec
	overheadLatency *prometheus.HistogramVec
	modelSetupTime  *prometheus.HistogramVec
	healthy         *prometheus.GaugeVec
	restarts        *prometheus.CounterVec

	cacheHits        *prometheus.CounterVec
	cacheMisses      *prometheus.CounterVec
	modelLoading     *prometheus.HistogramVec
	modelUnloading   *prometheus.HistogramVec
	modelDownloading *prometheus.HistogramVec
	modelLoadWait    *prometheus.HistogramVec
	loadedModels     *prometheus.GaugeVec

	explanationsPerInstance *prometheus.CounterVec
	asyncBacklog            *prometheus.GaugeVec
	asyncOutcomes           map[AsyncOutcome]*prometheus.CounterVec
	captureWritten          *prometheus.CounterVec
	captureDropped          *prometheus.CounterVec

	// vecs are all the vectors above, whose series EndpointGone deletes.
	vecs []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// New registers sagehost's metrics, plus the Go runtime and process
// collectors, on a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sagehost", Name: name, Help: help}, labels)
		r.MustRegister(c)
		m.vecs = append(m.vecs, c)
		return c
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "sagehost", Name: name, Help: help, Buckets: LatencyBuckets}, labels)
		r.MustRegister(h)
		m.vecs = append(m.vecs, h)
		return h
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sagehost", Name: name, Help: help}, labels)
		r.MustRegister(g)
		m.vecs = append(m.vecs, g)
		return g
	}
	instLabels := append(append([]string{}, endpointLabels...), "instance")
	m.invocations = counter("invocations_total", "InvokeEndpoint requests sent to a variant (CloudWatch Invocations).", invocationLabels...)
	m.errors4xx = counter("invocation_4xx_errors_total", "Invocations for which the model returned a 4xx status (CloudWatch Invocation4XXErrors).", invocationLabels...)
	m.errors5xx = counter("invocation_5xx_errors_total", "Invocations for which the model returned a 5xx status (CloudWatch Invocation5XXErrors).", invocationLabels...)
	m.modelErrors = counter("invocation_model_errors_total", "Invocations the model did not answer with 2xx: error statuses, timeouts, broken connections, oversize answers (CloudWatch InvocationModelErrors).", invocationLabels...)
	m.midStreamErrors = counter("mid_stream_errors_total", "Response streams (InvokeEndpointWithResponseStream) that ended with an error event after their first part: the model timed out or its connection broke (CloudWatch MidStreamErrors).", invocationLabels...)
	m.perInstance = counter("invocations_per_instance_total", "Each invocation adds 1/(healthy instances of its variant) (CloudWatch InvocationsPerInstance).", invocationLabels...)
	m.modelLatency = histogram("model_latency_seconds", "Time to send the request to the container, and for it to answer and its answer to be relayed (CloudWatch ModelLatency).", invocationLabels...)
	m.overheadLatency = histogram("overhead_latency_seconds", "Time spent in sagehost: the whole call minus ModelLatency (CloudWatch OverheadLatency).", invocationLabels...)
	m.modelSetupTime = histogram("model_setup_time_seconds", "Time from starting an instance until it first passes /ping (CloudWatch ModelSetupTime).", endpointLabels...)
	m.restarts = counter("instance_restarts_total", "Restarts of an instance after it exited.", instLabels...)
	m.cacheHits = counter("model_cache_hits_total", "Multi-model endpoints: invocations whose TargetModel was loaded already (CloudWatch ModelCacheHit = 1).", endpointLabels...)
	m.cacheMisses = counter("model_cache_misses_total", "Multi-model endpoints: invocations whose TargetModel had to be loaded first (CloudWatch ModelCacheHit = 0).", endpointLabels...)
	m.modelLoading = histogram("model_loading_time_seconds", "Multi-model endpoints: how long the container's load call took (CloudWatch ModelLoadingTime).", endpointLabels...)
	m.modelUnloading = histogram("model_unloading_time_seconds", "Multi-model endpoints: how long the container's unload call took (CloudWatch ModelUnloadingTime).", endpointLabels...)
	m.modelDownloading = histogram("model_downloading_time_seconds", "Multi-model endpoints: how long fetching a TargetModel's archive took (CloudWatch ModelDownloadingTime).", endpointLabels...)
	m.modelLoadWait = histogram("model_loading_wait_time_seconds", "Multi-model endpoints: how long an invocation waited for its model's download and load (CloudWatch ModelLoadingWaitTime).", endpointLabels...)
	m.loadedModels = gauge("loaded_model_count", "Multi-model endpoints: models loaded in an instance (CloudWatch LoadedModelCount).", instLabels...)
	m.explanationsPerInstance = counter("explanations_per_instance_total", "Endpoints with an explainer: each explained record adds 1/(healthy instances of its variant) (CloudWatch ExplanationsPerInstance).", endpointLabels...)
	m.captureWritten = counter("data_capture_records_written_total", "Data capture records written to their destination.", endpointLabels...)
	m.captureDropped = counter("data_capture_records_dropped_total", "Data capture records dropped because the capture queue was full or the destination failed; invocations never wait for capture.", endpointLabels...)
	asyncLabels := endpointLabels[:3] // account, region, endpoint
	m.asyncBacklog = gauge("async_backlog_size", "Asynchronous endpoints: InvokeEndpointAsync requests queued or being processed (CloudWatch ApproximateBacklogSize).", asyncLabels...)
	m.asyncOutcomes = map[AsyncOutcome]*prometheus.CounterVec{
		AsyncProcessed:        counter("async_invocations_processed_total", "Asynchronous endpoints: requests whose answer was written to the output location (CloudWatch InvocationsProcesssed).", asyncLabels...),
		AsyncFailed:           counter("async_invocation_failures_total", "Asynchronous endpoints: requests that failed: the model's error, timeout or broken answer was written to the failure location (CloudWatch InvocationFailures).", asyncLabels...),
		AsyncExpired:          counter("async_expired_requests_total", "Asynchronous endpoints: requests still queued after their RequestTTLSeconds (CloudWatch ExpiredRequests).", asyncLabels...),
		AsyncDownloadFailures: counter("async_request_download_failures_total", "Asynchronous endpoints: requests whose input could not be read from its InputLocation (CloudWatch RequestDownloadFailures).", asyncLabels...),
		AsyncUploadFailures:   counter("async_response_upload_failures_total", "Asynchronous endpoints: answers or errors that could not be written to their output or failure location (CloudWatch ResponseUploadFailures).", asyncLabels...),
	}
	m.healthy = gauge("instance_healthy", "1 when the instance passes /ping and takes traffic, else 0.", instLabels...)
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func labels(key sagehost.EndpointKey, variant string) []string {
	return []string{key.Account, key.Region, key.Name, variant}
}

// Variant holds one variant's invocation series, resolved once.
type Variant struct {
	Invocations     prometheus.Counter
	Errors4xx       prometheus.Counter
	Errors5xx       prometheus.Counter
	ModelErrors     prometheus.Counter
	MidStreamErrors prometheus.Counter
	PerInstance     prometheus.Counter
	ModelLatency    prometheus.Observer
	OverheadLatency prometheus.Observer

	// Multi-model endpoints.
	ModelCacheHits       prometheus.Counter
	ModelCacheMisses     prometheus.Counter
	ModelLoadingTime     prometheus.Observer
	ModelUnloadingTime   prometheus.Observer
	ModelDownloadingTime prometheus.Observer
	ModelLoadingWaitTime prometheus.Observer

	// Endpoints with an explainer.
	ExplanationsPerInstance prometheus.Counter
}

// Variant returns the series of one variant; nil when m is nil.
func (m *Metrics) Variant(key sagehost.EndpointKey, variant string) *Variant {
	return m.Component(key, variant, "")
}

// Component returns the series of one inference component of a variant
// (component "" for the variant's own model); nil when m is nil.
func (m *Metrics) Component(key sagehost.EndpointKey, variant, component string) *Variant {
	if m == nil {
		return nil
	}
	l := labels(key, variant)
	il := append(append([]string{}, l...), component)
	return &Variant{
		Invocations:     m.invocations.WithLabelValues(il...),
		Errors4xx:       m.errors4xx.WithLabelValues(il...),
		Errors5xx:       m.errors5xx.WithLabelValues(il...),
		ModelErrors:     m.modelErrors.WithLabelValues(il...),
		MidStreamErrors: m.midStreamErrors.WithLabelValues(il...),
		PerInstance:     m.perInstance.WithLabelValues(il...),
		ModelLatency:    m.modelLatency.WithLabelValues(il...),
		OverheadLatency: m.overheadLatency.WithLabelValues(il...),

		ModelCacheHits:       m.cacheHits.WithLabelValues(l...),
		ModelCacheMisses:     m.cacheMisses.WithLabelValues(l...),
		ModelLoadingTime:     m.modelLoading.WithLabelValues(l...),
		ModelUnloadingTime:   m.modelUnloading.WithLabelValues(l...),
		ModelDownloadingTime: m.modelDownloading.WithLabelValues(l...),
		ModelLoadingWaitTime: m.modelLoadWait.WithLabelValues(l...),

		ExplanationsPerInstance: m.explanationsPerInstance.WithLabelValues(l...),
	}
}

// AsyncOutcome is what became of an asynchronous request.
type AsyncOutcome int

// The outcomes counted for asynchronous requests.
const (
	AsyncProcessed AsyncOutcome = iota
	AsyncFailed
	AsyncExpired
	AsyncDownloadFailures
	AsyncUploadFailures
)

// AsyncBacklog sets the backlog of an asynchronous endpoint.
func (m *Metrics) AsyncBacklog(key sagehost.EndpointKey, n int) {
	if m != nil {
		m.asyncBacklog.WithLabelValues(key.Account, key.Region, key.Name).Set(float64(n))
	}
}

// AsyncCount counts one outcome of an asynchronous endpoint's request.
func (m *Metrics) AsyncCount(key sagehost.EndpointKey, o AsyncOutcome) {
	if m != nil {
		m.asyncOutcomes[o].WithLabelValues(key.Account, key.Region, key.Name).Inc()
	}
}

// CaptureWritten counts data capture records written for a variant.
func (m *Metrics) CaptureWritten(key sagehost.EndpointKey, variant string, n int) {
	if m != nil {
		m.captureWritten.WithLabelValues(labels(key, variant)...).Add(float64(n))
	}
}

// CaptureDropped counts data capture records dropped for a variant.
func (m *Metrics) CaptureDropped(key sagehost.EndpointKey, variant string, n int) {
	if m != nil {
		m.captureDropped.WithLabelValues(labels(key, variant)...).Add(float64(n))
	}
}

// LoadedModels returns the gauge of the models loaded in one instance of
// a multi-model endpoint; nil when m is nil.
func (m *Metrics) LoadedModels(key sagehost.EndpointKey, variant, instance string) prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.loadedModels.WithLabelValues(append(labels(key, variant), instance)...)
}

// InstanceHealthy records whether an instance takes traffic.
func (m *Metrics) InstanceHealthy(key sagehost.EndpointKey, variant, instance string, ok bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.healthy.WithLabelValues(append(labels(key, variant), instance)...).Set(v)
}

// InstanceRestarted counts a restart of an instance.
func (m *Metrics) InstanceRestarted(key sagehost.EndpointKey, variant, instance string) {
	if m == nil {
		return
	}
	m.restarts.WithLabelValues(append(labels(key, variant), instance)...).Inc()
}

// ModelSetup records how long an instance took to first pass /ping.
func (m *Metrics) ModelSetup(key sagehost.EndpointKey, variant string, seconds float64) {
	if m == nil {
		return
	}
	m.modelSetupTime.WithLabelValues(labels(key, variant)...).Observe(seconds)
}

// InstanceGone drops the series of an instance that was removed.
func (m *Metrics) InstanceGone(key sagehost.EndpointKey, variant, instance string) {
	if m == nil {
		return
	}
	l := append(labels(key, variant), instance)
	m.healthy.DeleteLabelValues(l...)
	m.restarts.DeleteLabelValues(l...)
	m.loadedModels.DeleteLabelValues(l...)
}

// EndpointGone drops every series of a deleted endpoint.
func (m *Metrics) EndpointGone(key sagehost.EndpointKey) {
	if m == nil {
		return
	}
	match := prometheus.Labels{"account": key.Account, "region": key.Region, "endpoint": key.Name}
	for _, v := range m.vecs {
		v.DeletePartialMatch(match)
	}
}

// Handler serves every series in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// AccountHandler serves only the series of one account (and none of the
// process-wide ones), for a caller authenticated as that account.
func (m *Metrics) AccountHandler(account string) http.Handler {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := m.Registry.Gather()
		if err != nil {
			return nil, err
		}
		var out []*dto.MetricFamily
		for _, mf := range mfs {
			var kept []*dto.Metric
			for _, metric := range mf.Metric {
				for _, lp := range metric.Label {
					if lp.GetName() == "account" && lp.GetValue() == account {
						kept = append(kept, metric)
						break
					}
				}
			}
			if len(kept) > 0 {
				mf.Metric = kept
				out = append(out, mf)
			}
		}
		return out, nil
	})
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
