package clarify

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/sagehost/sagehost/internal/mediatype"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"ClarifyExplainerConfig":{
		"EnableExplanations":"[0]>` + "`0.5`" + `",
		"InferenceConfig":{"FeatureHeaders":["a","b"],"MaxRecordCount":10,"MaxPayloadInMB":2,"ProbabilityIndex":0},
		"ShapConfig":{"ShapBaselineConfig":{"MimeType":"text/csv","ShapBaseline":"1,2\n3,4"},"NumberOfSamples":50,"UseLogit":true,"Seed":123}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EnableExplanations != "[0]>`0.5`" || *cfg.InferenceConfig.MaxRecordCount != 10 || *cfg.ShapConfig.Seed != 123 ||
		!cfg.useLogit() || cfg.maxPayloadBytes() != 2<<20 || cfg.maxRecordCount() != 10 {
		t.Errorf("decoded %+v", cfg)
	}
	// The bare ClarifyExplainerConfig works too, with the defaults.
	cfg, err = ParseConfig(json.RawMessage(`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1,2"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxPayloadBytes() != 6<<20 || cfg.maxRecordCount() != 0 || cfg.useLogit() || cfg.baselineMime() != mimeCSV {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := `"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1,2"}}`
	for _, tc := range []struct{ cfg, want string }{
		{`{"EnableExplanations":"[0]>>1",` + base + `}`, `EnableExplanations "[0]>>1" is not a valid JMESPath expression: `},
		{`{"EnableExplanations":"foo[",` + base + `}`, `EnableExplanations "foo[" is not a valid JMESPath`},
		{`{"InferenceConfig":{"FeaturesAttribute":"a..b"},` + base + `}`, `InferenceConfig.FeaturesAttribute "a..b" is not a valid JMESPath`},
		{`{"InferenceConfig":{"ProbabilityAttribute":"[?"},` + base + `}`, `InferenceConfig.ProbabilityAttribute "[?" is not a valid JMESPath`},
		{`{"InferenceConfig":{"LabelAttribute":"@@"},` + base + `}`, `InferenceConfig.LabelAttribute "@@" is not a valid JMESPath`},
		{`{"InferenceConfig":{"FeatureTypes":["numerical","text"]},` + base + `}`, `text features are not supported yet`},
		{`{"InferenceConfig":{"FeatureTypes":["numerical"]},` + base + `}`, `at least one "text"`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1,2"},"TextConfig":{"Language":"en","Granularity":"token"}}}`, `text features are not supported yet`},
		{`{"InferenceConfig":{"ContentTemplate":"{\"f\":1}"},` + base + `}`, `must contain the placeholder $features`},
		{`{"InferenceConfig":{"ContentTemplate":"{\"f\":$features"},` + base + `}`, `does not make JSON`},
		{`{"ShapConfig":{"ShapBaselineConfig":{}}}`, `needs one of ShapBaseline and ShapBaselineUri`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1","ShapBaselineUri":"s3://b/k"}}}`, `only one of ShapBaseline and ShapBaselineUri`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1","MimeType":"application/json"}}}`, `MimeType "application/json" is not supported`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1,2\n3"}}}`, `ShapBaseline: record 2 has 1 features, but record 1 has 2`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"{\"a\":1}","MimeType":"application/jsonlines"}}}`, `no FeaturesAttribute`},
		{`{"InferenceConfig":{"FeatureHeaders":["a"]},` + base + `}`, `FeatureHeaders names 1`},
		{`{"InferenceConfig":{"MaxPayloadInMB":26},` + base + `}`, `MaxPayloadInMB 26 must be from 1 to 25`},
		{`{"InferenceConfig":{"MaxRecordCount":0},` + base + `}`, `MaxRecordCount 0 must be at least 1`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1"},"NumberOfSamples":0}}`, `NumberOfSamples 0 must be at least 1`},
		{`{"EnableExplanations":"` + "`true`" + `"}`, `ShapConfig is required`},
		{`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1"},"NumberOfSamples":"ten"}}`, `cannot unmarshal string`},
		{`[]`, `not a JSON object`},
	} {
		_, err := ParseConfig(json.RawMessage(tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestBaselineMimeTypeAsARequestContentType(t *testing.T) {
	// The baseline's MimeType reads as a request's ContentType does: a
	// malformed parameter does not hide the media type.
	for _, mt := range []string{"text/csv; charset", "Text/CSV; charset=utf-8", " text/csv ;", "text/csv; a=\"b"} {
		cfg, err := ParseConfig(json.RawMessage(`{"ShapConfig":{"ShapBaselineConfig":{"ShapBaseline":"1,2","MimeType":` + strconv.Quote(mt) + `}}}`))
		if err != nil {
			t.Errorf("MimeType %q: %v", mt, err)
			continue
		}
		if got := cfg.baselineMime(); got != mimeCSV || mediatype.Base(mt) != got {
			t.Errorf("MimeType %q: baselineMime %q, mediaType %q", mt, got, mediatype.Base(mt))
		}
	}
}

func TestParseConfigJSONLinesBaseline(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"InferenceConfig":{"FeaturesAttribute":"features"},
		"ShapConfig":{"ShapBaselineConfig":{"MimeType":"application/jsonlines","ShapBaseline":"{\"features\":[1,\"red\",2.5]}\n[0,\"blue\",1]\n"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.baselineRows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0][1].str != "red" || rows[0][2].js != "2.5" || !rows[1][0].isNum {
		t.Errorf("baseline rows %+v", rows)
	}
}
