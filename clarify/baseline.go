package clarify

import (
	"context"
	"fmt"
)

// Fetch reads the object at a ShapBaselineUri (s3:// or https://); the
// caller provides it with its credentials and object store.
type Fetch func(ctx context.Context, uri string) ([]byte, error)

// baselineRows returns the SHAP baseline, reading it on first use: the
// inline ShapBaseline, or ShapBaselineUri through Fetch (kept once read).
func (e *Explainer) baselineRows(ctx context.Context) ([][]value, error) {
	e.baseMu.Lock()
	defer e.baseMu.Unlock()
	if e.base != nil {
		return e.base, nil
	}
	bc := e.cfg.ShapConfig.ShapBaselineConfig
	data, where := []byte(bc.ShapBaseline), "ShapBaseline"
	if bc.ShapBaselineUri != "" {
		where = "ShapBaselineUri " + bc.ShapBaselineUri
		var err error
		if data, err = e.fetch(ctx, bc.ShapBaselineUri); err != nil {
			return nil, &Error{Kind: KindBaseline, Msg: "reading the SHAP baseline from " + bc.ShapBaselineUri, Err: err}
		}
	}
	rows, err := parseRecords(data, e.cfg.baselineMime(), e.features)
	if err == nil {
		err = checkBaseline(rows, e.cfg.inference())
	}
	if err != nil {
		return nil, &Error{Kind: KindBaseline, Msg: fmt.Sprintf("the SHAP baseline (%s, %s)", where, e.cfg.baselineMime()), Err: err}
	}
	e.base = rows
	return rows, nil
}

// Prepare reads the SHAP baseline now (fetching ShapBaselineUri), so that
// a baseline that cannot be read fails the endpoint's creation rather than
// its first invocation. Explain calls it as needed.
func (e *Explainer) Prepare(ctx context.Context) error {
	_, err := e.baselineRows(ctx)
	return err
}
