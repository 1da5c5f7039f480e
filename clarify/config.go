package clarify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/sagehost/sagehost/internal/mediatype"
)

// Config is ExplainerConfig.ClarifyExplainerConfig as CreateEndpointConfig
// stores it (botocore's member names). ParseConfig decodes and checks it.
type Config struct {
	// EnableExplanations is a JMESPath boolean expression evaluated on each
	// record's model output; "" explains every record.
	EnableExplanations string           `json:",omitempty"`
	InferenceConfig    *InferenceConfig `json:",omitempty"`
	ShapConfig         *ShapConfig      `json:",omitempty"`
}

// InferenceConfig is ClarifyInferenceConfig: how to talk to the model.
type InferenceConfig struct {
	// FeaturesAttribute (JMESPath) finds the feature list in a JSON Lines
	// record (and baseline record).
	FeaturesAttribute string `json:",omitempty"`
	// ContentTemplate builds a JSON Lines record for the model from the
	// features: "$features" is replaced by their JSON array.
	ContentTemplate string `json:",omitempty"`
	// MaxRecordCount bounds the records of one request to the model; nil
	// means as many as MaxPayloadInMB allows.
	MaxRecordCount *int `json:",omitempty"`
	// MaxPayloadInMB bounds the body of one request to the model (MiB);
	// nil means 6.
	MaxPayloadInMB *int `json:",omitempty"`
	// ProbabilityIndex is the column of the score in CSV output; nil means
	// the whole output row.
	ProbabilityIndex *int `json:",omitempty"`
	// LabelIndex is the column of the label header(s) in CSV output.
	LabelIndex *int `json:",omitempty"`
	// ProbabilityAttribute (JMESPath) finds the score in JSON Lines output.
	ProbabilityAttribute string `json:",omitempty"`
	// LabelAttribute (JMESPath) finds the label header(s) in JSON Lines
	// output.
	LabelAttribute string   `json:",omitempty"`
	LabelHeaders   []string `json:",omitempty"`
	FeatureHeaders []string `json:",omitempty"`
	// FeatureTypes is for NLP explanations, which are not supported yet.
	FeatureTypes []string `json:",omitempty"`
}

// ShapConfig is ClarifyShapConfig.
type ShapConfig struct {
	ShapBaselineConfig *ShapBaselineConfig `json:",omitempty"`
	// NumberOfSamples bounds the coalitions per record; nil means
	// 2*features + 2048 (both capped at 2^features - 2).
	NumberOfSamples *int `json:",omitempty"`
	// UseLogit explains log-odds: the logit of the (baseline-averaged)
	// probabilities is regressed, as shap's link="logit".
	UseLogit *bool `json:",omitempty"`
	// Seed makes the coalition sampling reproducible: the draws are
	// NumPy's after np.random.seed(Seed) (a negative Seed counts modulo
	// 2^32).
	Seed *int64 `json:",omitempty"`
	// TextConfig is for NLP explanations, which are not supported yet.
	TextConfig *TextConfig `json:",omitempty"`
}

// ShapBaselineConfig is ClarifyShapBaselineConfig: exactly one of
// ShapBaseline and ShapBaselineUri.
type ShapBaselineConfig struct {
	// MimeType is text/csv (the default) or application/jsonlines.
	MimeType        string `json:",omitempty"`
	ShapBaseline    string `json:",omitempty"`
	ShapBaselineUri string `json:",omitempty"`
}

// TextConfig is ClarifyTextConfig.
type TextConfig struct {
	Language    string `json:",omitempty"`
	Granularity string `json:",omitempty"`
}

// Content types of the explainer's requests and baselines.
const (
	mimeCSV       = "text/csv"
	mimeJSONLines = "application/jsonlines"
)

// defaultMaxPayloadMB is MaxPayloadInMB's default.
const defaultMaxPayloadMB = 6

// maxFeatures bounds the features of one record: beyond it the Shapley
// kernel's binomials overflow and the regression no longer fits in memory.
const maxFeatures = 1000

// ParseConfig decodes a ClarifyExplainerConfig (or an ExplainerConfig
// holding one) and checks what botocore's shapes cannot: every JMESPath
// member compiles, exactly one of ShapBaseline and ShapBaselineUri, a known
// baseline MimeType, an inline baseline that parses, ContentTemplate holds
// $features, no text features. Its errors are worded for a
// ValidationException at CreateEndpointConfig or CreateEndpoint.
func ParseConfig(raw json.RawMessage) (*Config, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, errors.New("ClarifyExplainerConfig is missing")
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("ClarifyExplainerConfig is not a JSON object: %w", err)
	}
	if inner, ok := probe["ClarifyExplainerConfig"]; ok {
		raw = inner // the whole ExplainerConfig
	}
	// Members this package does not know (a newer API's) are ignored: the
	// control plane has checked the config against the API's shapes.
	var cfg Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("ClarifyExplainerConfig: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) inference() *InferenceConfig {
	if c.InferenceConfig == nil {
		return &InferenceConfig{}
	}
	return c.InferenceConfig
}

// baselineMime is the baseline's content type, text/csv by default.
func (c *Config) baselineMime() string {
	mt := c.ShapConfig.ShapBaselineConfig.MimeType
	if mt == "" {
		return mimeCSV
	}
	return mediatype.Base(mt)
}

func (c *Config) maxPayloadBytes() int {
	mb := defaultMaxPayloadMB
	if p := c.inference().MaxPayloadInMB; p != nil {
		mb = *p
	}
	return mb << 20
}

func (c *Config) maxRecordCount() int {
	if n := c.inference().MaxRecordCount; n != nil {
		return *n
	}
	return 0 // no bound but the payload's
}

func (c *Config) useLogit() bool {
	return c.ShapConfig.UseLogit != nil && *c.ShapConfig.UseLogit
}

// compileJMESPath compiles a member's expression, naming the member in the
// error.
// The expression may come from the client (EnableExplanations), so what
// the JMESPath library cannot lex (it panics on some invalid UTF-8) is
// rejected as invalid rather than allowed to crash the request.
func compileJMESPath(member, expr string) (jp jmespath.JMESPath, err error) {
	if !utf8.ValidString(expr) {
		return nil, fmt.Errorf("%s %q is not a valid JMESPath expression: it is not valid UTF-8", member, expr)
	}
	defer func() {
		if r := recover(); r != nil {
			jp, err = nil, fmt.Errorf("%s %q is not a valid JMESPath expression: %v", member, expr, r)
		}
	}()
	jp, err = jmespath.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a valid JMESPath expression: %v", member, expr, err)
	}
	return jp, nil
}

// search evaluates a compiled expression on decoded JSON; a panic inside
// the JMESPath library on unexpected data becomes an error.
func search(jp jmespath.JMESPath, data any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("evaluating the JMESPath expression failed: %v", r)
		}
	}()
	return jp.Search(data)
}

func (c *Config) validate() error {
	if c.ShapConfig == nil {
		return errors.New("ClarifyExplainerConfig.ShapConfig is required")
	}
	sc := c.ShapConfig
	if sc.ShapBaselineConfig == nil {
		return errors.New("ClarifyExplainerConfig.ShapConfig.ShapBaselineConfig is required")
	}
	bc := sc.ShapBaselineConfig
	switch {
	case bc.ShapBaseline == "" && bc.ShapBaselineUri == "":
		return errors.New("ClarifyExplainerConfig.ShapConfig.ShapBaselineConfig needs one of ShapBaseline and ShapBaselineUri")
	case bc.ShapBaseline != "" && bc.ShapBaselineUri != "":
		return errors.New("ClarifyExplainerConfig.ShapConfig.ShapBaselineConfig takes only one of ShapBaseline and ShapBaselineUri, not both")
	}
	if mt := c.baselineMime(); mt != mimeCSV && mt != mimeJSONLines {
		return fmt.Errorf("ClarifyExplainerConfig.ShapConfig.ShapBaselineConfig.MimeType %q is not supported: use text/csv or application/jsonlines", bc.MimeType)
	}
	if n := sc.NumberOfSamples; n != nil && *n < 1 {
		return fmt.Errorf("ClarifyExplainerConfig.ShapConfig.NumberOfSamples %d must be at least 1", *n)
	}
	if sc.TextConfig != nil {
		return errors.New("ClarifyExplainerConfig.ShapConfig.TextConfig: text features are not supported yet")
	}
	if c.EnableExplanations != "" {
		if _, err := compileJMESPath("ClarifyExplainerConfig.EnableExplanations", c.EnableExplanations); err != nil {
			return err
		}
	}
	ic := c.inference()
	for _, m := range []struct{ name, expr string }{
		{"FeaturesAttribute", ic.FeaturesAttribute},
		{"ProbabilityAttribute", ic.ProbabilityAttribute},
		{"LabelAttribute", ic.LabelAttribute},
	} {
		if m.expr == "" {
			continue
		}
		if _, err := compileJMESPath("ClarifyExplainerConfig.InferenceConfig."+m.name, m.expr); err != nil {
			return err
		}
	}
	if ic.ContentTemplate != "" && !strings.Contains(ic.ContentTemplate, "$features") {
		return fmt.Errorf("ClarifyExplainerConfig.InferenceConfig.ContentTemplate %q must contain the placeholder $features", ic.ContentTemplate)
	}
	if ic.ContentTemplate != "" {
		// The template with a feature list in place must be one JSON value.
		probe := strings.ReplaceAll(ic.ContentTemplate, "$features", "[1]")
		if !json.Valid([]byte(probe)) {
			return fmt.Errorf("ClarifyExplainerConfig.InferenceConfig.ContentTemplate %q does not make JSON once $features is replaced by a list such as [1]", ic.ContentTemplate)
		}
	}
	if n := ic.MaxRecordCount; n != nil && *n < 1 {
		return fmt.Errorf("ClarifyExplainerConfig.InferenceConfig.MaxRecordCount %d must be at least 1", *n)
	}
	if n := ic.MaxPayloadInMB; n != nil && (*n < 1 || *n > 25) {
		return fmt.Errorf("ClarifyExplainerConfig.InferenceConfig.MaxPayloadInMB %d must be from 1 to 25", *n)
	}
	if n := ic.ProbabilityIndex; n != nil && *n < 0 {
		return fmt.Errorf("ClarifyExplainerConfig.InferenceConfig.ProbabilityIndex %d must not be negative", *n)
	}
	if n := ic.LabelIndex; n != nil && *n < 0 {
		return fmt.Errorf("ClarifyExplainerConfig.InferenceConfig.LabelIndex %d must not be negative", *n)
	}
	if len(ic.FeatureTypes) > 0 {
		for _, t := range ic.FeatureTypes {
			if t == "text" {
				return errors.New("ClarifyExplainerConfig.InferenceConfig.FeatureTypes: text features are not supported yet")
			}
		}
		return errors.New(`ClarifyExplainerConfig.InferenceConfig.FeatureTypes applies to NLP explainability only and must contain at least one "text"`)
	}
	if bc.ShapBaseline != "" {
		feat, err := c.featuresPath()
		if err != nil {
			return err
		}
		rows, err := parseRecords([]byte(bc.ShapBaseline), c.baselineMime(), feat)
		if err != nil {
			return fmt.Errorf("ClarifyExplainerConfig.ShapConfig.ShapBaselineConfig.ShapBaseline: %v", err)
		}
		if err := checkBaseline(rows, ic); err != nil {
			return fmt.Errorf("ClarifyExplainerConfig.ShapConfig.ShapBaselineConfig.ShapBaseline: %v", err)
		}
	}
	return nil
}

// featuresPath compiles FeaturesAttribute (nil when unset).
func (c *Config) featuresPath() (jmespath.JMESPath, error) {
	if fa := c.inference().FeaturesAttribute; fa != "" {
		return compileJMESPath("ClarifyExplainerConfig.InferenceConfig.FeaturesAttribute", fa)
	}
	return nil, nil
}
