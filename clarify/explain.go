package clarify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/sagehost/sagehost/internal/mediatype"
)

// Predictor sends one request to one instance of the model: body in
// contentType, answered in accept (text/csv or application/jsonlines, as the
// client asked); it returns the model's answer and its Content-Type. Its
// errors come back from Explain unchanged.
type Predictor func(ctx context.Context, body []byte, contentType, accept string) ([]byte, string, error)

// Request is one InvokeEndpoint call on an endpoint with an explainer.
type Request struct {
	// Body, ContentType and Accept are the client's; both types must be
	// text/csv or application/jsonlines.
	Body                []byte
	ContentType, Accept string
	// EnableExplanations overrides the config's for this call
	// (X-Amzn-SageMaker-Enable-Explanations); "" keeps the config's.
	EnableExplanations string
	// Predictors has one entry per instance of the chosen variant. The
	// client's records go to the first; the synthetic records are spread
	// over all of them.
	Predictors []Predictor
}

// Result is Explain's answer with its counts (for the caller's metrics).
type Result struct {
	Body          []byte // application/json, spec 7.4
	Records       int    // records in the request
	Explained     int    // records explained
	SyntheticRows int    // rows predicted for the explanations (baseline rows included)
}

// ContentType is the type of Explain's answer.
const ContentType = "application/json"

// Explainer explains the records of InvokeEndpoint calls on one endpoint
// config. It is safe for concurrent use.
type Explainer struct {
	cfg      *Config
	fetch    Fetch
	enable   jmespath.JMESPath // nil: explain every record
	features jmespath.JMESPath // nil: records are feature arrays
	out      *outputReader

	baseMu sync.Mutex
	base   [][]value
}

// New builds the Explainer of a checked Config (ParseConfig). fetch reads
// ShapBaselineUri; it may be nil for an inline baseline.
func New(cfg *Config, fetch Fetch) (*Explainer, error) {
	if cfg == nil {
		return nil, errors.New("clarify: no config")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ShapConfig.ShapBaselineConfig.ShapBaselineUri != "" && fetch == nil {
		return nil, errors.New("clarify: ShapBaselineUri needs a Fetch")
	}
	e := &Explainer{cfg: cfg, fetch: fetch}
	var err error
	if cfg.EnableExplanations != "" {
		if e.enable, err = compileJMESPath("EnableExplanations", cfg.EnableExplanations); err != nil {
			return nil, err
		}
	}
	if e.features, err = cfg.featuresPath(); err != nil {
		return nil, err
	}
	if e.out, err = newOutputReader(cfg.inference()); err != nil {
		return nil, err
	}
	return e, nil
}

// Explain answers one InvokeEndpoint call: the model's predictions for the
// request's records (one call to the first Predictor), EnableExplanations
// evaluated on each record's output, Kernel SHAP for the records it
// selects, and the response body (ContentType) of Clarify's layout.
func (e *Explainer) Explain(ctx context.Context, req Request) ([]byte, error) {
	res, err := e.ExplainResult(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// job is one record to explain.
type job struct {
	record  int
	x       []value
	xEnc    []string
	fx      []float64
	varying []int       // features that differ from some baseline row
	coal    *coalitions // nil for fewer than 2 varying features
	start   int         // its first synthetic row
	phi     [][]float64 // features × labels
}

// ExplainResult is Explain with the counts.
func (e *Explainer) ExplainResult(ctx context.Context, req Request) (*Result, error) {
	if len(req.Predictors) == 0 {
		return nil, errors.New("clarify: no Predictor")
	}
	ct, accept, enable, err := e.checkRequest(req)
	if err != nil {
		return nil, err
	}
	records, err := parseRecords(req.Body, ct, e.features)
	if err != nil {
		return nil, badRequest("the request body (%s): %v", ct, err)
	}
	base, err := e.baselineRows(ctx)
	if err != nil {
		return nil, err
	}
	nf := len(base[0])
	for i, r := range records {
		if len(r) != nf {
			return nil, badRequest("record %d has %d features, but the SHAP baseline has %d", i+1, len(r), nf)
		}
	}

	// The model's predictions for the client's records.
	predBody, predCT, err := req.Predictors[0](ctx, req.Body, req.ContentType, req.Accept)
	if err != nil {
		return nil, err
	}
	rows, err := outputRows(predBody, outputFormat(predCT, accept))
	if err != nil {
		return nil, &Error{Kind: KindModelOutput, Msg: "reading the model's predictions", Err: err}
	}
	if len(rows) != len(records) {
		return nil, modelOutput("the model answered %d rows for the %d records of the request", len(rows), len(records))
	}
	ic := e.cfg.inference()
	labels := ic.LabelHeaders
	if labels == nil {
		if labels, err = e.out.labels(rows[0]); err != nil {
			return nil, &Error{Kind: KindModelOutput, Msg: "reading the label headers", Err: err}
		}
	}
	jobs, err := e.selectRecords(rows, records, enable)
	if err != nil {
		return nil, err
	}
	res := &Result{Records: len(records), Explained: len(jobs)}
	phi := make([][][]float64, len(records))
	if len(jobs) > 0 {
		if res.SyntheticRows, err = e.explainJobs(ctx, req, ct, base, jobs); err != nil {
			return nil, err
		}
		for _, j := range jobs {
			phi[j.record] = j.phi
		}
	}
	res.Body, err = encodeResponse(predCT, predBody, labels, ic.FeatureHeaders, phi)
	return res, err
}

// checkRequest checks the content types and picks the EnableExplanations
// expression (nil: every record).
func (e *Explainer) checkRequest(req Request) (ct, accept string, enable jmespath.JMESPath, err error) {
	ct, accept = mediatype.Base(req.ContentType), mediatype.Base(req.Accept)
	for _, h := range []struct{ name, v, mt string }{{"ContentType", req.ContentType, ct}, {"Accept", req.Accept, accept}} {
		if h.mt != mimeCSV && h.mt != mimeJSONLines {
			return "", "", nil, badRequest("%s %q is not supported by an endpoint with an explainer: use text/csv or application/jsonlines", h.name, h.v)
		}
	}
	if ct == mimeJSONLines && e.cfg.inference().ContentTemplate == "" && e.features != nil {
		return "", "", nil, badRequest("ContentTemplate is required to send JSON Lines records built from FeaturesAttribute to the model")
	}
	enable = e.enable
	if req.EnableExplanations != "" {
		if enable, err = compileJMESPath("EnableExplanations", req.EnableExplanations); err != nil {
			return "", "", nil, badRequest("%v", err)
		}
	}
	return ct, accept, enable, nil
}

// selectRecords evaluates EnableExplanations on each record's model output
// and reads the scores of the records to explain.
func (e *Explainer) selectRecords(rows []any, records [][]value, enable jmespath.JMESPath) ([]*job, error) {
	var jobs []*job
	for i, row := range rows {
		if enable != nil {
			data := enableData(row)
			v, err := search(enable, data)
			if err != nil {
				return nil, badRequest("EnableExplanations on record %d's model output %s: %v", i+1, describe(data), err)
			}
			b, ok := v.(bool)
			if !ok {
				return nil, badRequest("EnableExplanations gives %s on record %d's model output %s, not true or false", describe(v), i+1, describe(data))
			}
			if !b {
				continue
			}
		}
		fx, err := e.out.scores(row)
		if err != nil {
			return nil, &Error{Kind: KindModelOutput, Msg: fmt.Sprintf("record %d", i+1), Err: err}
		}
		jobs = append(jobs, &job{record: i, x: records[i], fx: fx})
	}
	return jobs, nil
}

// explainJobs builds each record's coalitions, has the synthetic data set
// predicted and solves for the attributions. It returns the number of rows
// predicted.
func (e *Explainer) explainJobs(ctx context.Context, req Request, ct string, base [][]value, jobs []*job) (int, error) {
	enc := newEncoder(ct, e.cfg.inference().ContentTemplate)
	nb, nf := len(base), len(base[0])
	total := nb // the baseline's own predictions come first
	for _, j := range jobs {
		j.xEnc = enc.encode(j.x)
		for f := 0; f < nf; f++ {
			for _, b := range base {
				if !same(j.x[f], b[f]) {
					j.varying = append(j.varying, f)
					break
				}
			}
		}
	}
	// Bound the work one request may ask for before allocating any of it:
	// the scores of every synthetic row and every coalition's mask are
	// held until the regression.
	rows, maskBytes := nb, 0
	for _, j := range jobs {
		if v := len(j.varying); v >= 2 {
			n := sampleSize(v, e.numberOfSamples())
			rows += n * nb
			maskBytes += n * v
			if rows > maxSyntheticRows || maskBytes > maxCoalitionBytes {
				return 0, badRequest("explaining the %d selected records needs more than %d synthetic rows (%d coalitions of up to %d features against %d baseline rows each), "+
					"more than one request may ask for; send fewer records, or lower NumberOfSamples or the baseline's size",
					len(jobs), maxSyntheticRows, n, v, nb)
			}
		}
	}
	for _, j := range jobs {
		if len(j.varying) >= 2 {
			j.coal = makeCoalitions(len(j.varying), e.numberOfSamples(), e.rng())
			j.start = total
			total += j.coal.n * nb
		}
	}
	baseEnc := make([][]string, nb)
	for i, b := range base {
		baseEnc[i] = enc.encode(b)
	}
	limits := batchLimits{records: e.cfg.maxRecordCount(), bytes: e.cfg.maxPayloadBytes()}
	scores, err := predictRows(ctx, req.Predictors, req.ContentType, req.Accept, total,
		e.rowWriter(enc, nf, baseEnc, jobs), enc.maxRowLen(baseEnc, jobs), limits, e.out)
	if err != nil {
		return 0, err
	}
	return total, e.attribute(jobs, scores, nb, nf)
}

// Bounds on the work of one request. At 4 million rows the scores take
// about 160 MB; a model would have to predict 67,000 rows a second to
// finish them within the 60 s limit.
const (
	maxSyntheticRows  = 4_000_000
	maxCoalitionBytes = 256 << 20
)

func (e *Explainer) numberOfSamples() int {
	if n := e.cfg.ShapConfig.NumberOfSamples; n != nil {
		return *n
	}
	return 0
}

// rng is a record's random source: numpy's after np.random.seed(Seed), or
// randomly seeded without a Seed.
func (e *Explainer) rng() *numpyRand {
	if s := e.cfg.ShapConfig.Seed; s != nil {
		return newNumpyRand(uint32(*s))
	}
	return newNumpyRand(rand.Uint32())
}
