package invoke

import (
	"bytes"
	"time"

	"github.com/sagehost/sagehost/capture"
)

// Capture is a variant's data capture (DataCaptureConfig with
// EnableCapture): the share of invocations to capture, what to capture of
// them, and where the writer sends the records.
type Capture struct {
	Writer      *capture.Writer
	Destination string
	Percent     int
	Input       bool
	Output      bool
	CSVTypes    []string
	JSONTypes   []string
}

// capturedAnswer holds the model's answer of a call being captured.
type capturedAnswer struct {
	contentType string
	data        *bytes.Buffer
}

// captureCall hands a successful call to the capture writer; it never
// blocks (a full queue drops the record, and the writer counts it).
func captureCall(cp *Capture, t *Table, v *Variant, req *Request) {
	rec := capture.Record{
		Destination: cp.Destination,
		Account:     t.Key.Account, Region: t.Key.Region, Endpoint: t.Key.Name, Variant: v.Name,
		Time:               req.Received,
		InferenceID:        req.InferenceID,
		TargetModel:        req.TargetModel,
		InferenceComponent: req.InferenceComponentName,
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	if cp.Input {
		rec.Input = &capture.Payload{ContentType: req.ContentType, Data: bytes.Clone(req.Body),
			Encoding: capture.Encoding(req.ContentType, cp.CSVTypes, cp.JSONTypes)}
	}
	if cp.Output && req.captured != nil && req.captured.data != nil {
		ct := req.captured.contentType
		rec.Output = &capture.Payload{ContentType: ct, Data: req.captured.data.Bytes(),
			Encoding: capture.Encoding(ct, cp.CSVTypes, cp.JSONTypes)}
	}
	cp.Writer.Capture(rec)
}
