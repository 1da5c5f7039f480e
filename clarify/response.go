package clarify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// response is Clarify's answer to InvokeEndpoint (application/json).
type response struct {
	Version      string       `json:"version"`
	Predictions  predictions  `json:"predictions"`
	LabelHeaders []string     `json:"label_headers,omitempty"`
	Explanations explanations `json:"explanations"`
}

// predictions are the model's answer to the client's records, as it gave
// it.
type predictions struct {
	ContentType string `json:"content_type"`
	Data        string `json:"data"`
}

// explanations is {} when no record was explained.
type explanations struct {
	// KernelSHAP has one entry per request record: nil (null) when the
	// record was not explained, else one entry per feature.
	KernelSHAP [][]featureAttribution `json:"kernel_shap,omitempty"`
}

type featureAttribution struct {
	FeatureHeader string        `json:"feature_header,omitempty"`
	Attributions  []attribution `json:"attributions"`
}

// attribution holds one value per label (model output).
type attribution struct {
	Attribution []float64 `json:"attribution"`
}

// encodeResponse renders the answer: phi[r] is record r's attributions
// (features × labels), nil for a record not explained.
func encodeResponse(predCT string, predBody []byte, labels, featureHeaders []string, phi [][][]float64) ([]byte, error) {
	resp := response{
		Version:      "1.0",
		Predictions:  predictions{ContentType: predCT, Data: string(predBody)},
		LabelHeaders: labels,
	}
	explained := false
	for _, p := range phi {
		explained = explained || p != nil
	}
	if explained {
		resp.Explanations.KernelSHAP = make([][]featureAttribution, len(phi))
		for r, p := range phi {
			if p == nil {
				continue
			}
			feats := make([]featureAttribution, len(p))
			for i, a := range p {
				for _, v := range a {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						return nil, modelOutput("record %d: the attribution of feature %d is %v: the model's scores for the synthetic records are not all finite", r+1, i+1, v)
					}
				}
				feats[i].Attributions = []attribution{{Attribution: a}}
				if i < len(featureHeaders) {
					feats[i].FeatureHeader = featureHeaders[i]
				}
			}
			resp.Explanations.KernelSHAP[r] = feats
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		return nil, fmt.Errorf("encoding the explanation: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
