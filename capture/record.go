package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/sagehost/sagehost/internal/mediatype"
)

// Encodings of a captured payload, the values of a record's "encoding".
const (
	EncodingCSV    = "CSV"
	EncodingJSON   = "JSON"
	EncodingBase64 = "BASE64"
)

// Capture modes of a record's payloads, the values of a record's "mode".
const (
	modeInput  = "INPUT"
	modeOutput = "OUTPUT"
)

// Record is one captured invocation.
type Record struct {
	// Destination is the DataCaptureConfig's DestinationS3Uri:
	// s3://bucket/prefix, file:///dir, or an absolute local path.
	Destination string
	// Account and Region are the endpoint's; they name the records in the
	// metric hooks and logs and keep accounts' files apart, but appear in
	// no path or record.
	Account, Region string
	// Endpoint and Variant name the endpoint and production variant; they
	// are path segments of the file name.
	Endpoint, Variant string
	// Time is the inference time; zero means the time of Capture. It
	// decides the hour folder of the record's file.
	Time time.Time
	// EventID is the record's eventId (a UUID); empty means a new random
	// one.
	EventID string
	// InferenceID is the client's X-Amzn-SageMaker-Inference-Id; empty
	// when the client sent none (the record then has no inferenceId).
	InferenceID string
	// Input and Output are the request and the response; nil when the
	// CaptureMode does not capture them. Capture keeps their Data: the
	// caller must not change it afterwards.
	Input, Output *Payload
	// TargetModel is a multi-model endpoint's TargetModel. A sagehost
	// addition: when set it appears as eventMetadata.targetModel.
	TargetModel string
	// InferenceComponent is the invoked inference component. A sagehost
	// addition: when set it appears as eventMetadata.inferenceComponentName.
	InferenceComponent string
}

// Payload is one captured request or response body.
type Payload struct {
	// ContentType is the Content-Type observed, parameters included (the
	// record's observedContentType).
	ContentType string
	// Data is the body.
	Data []byte
	// Encoding is EncodingCSV, EncodingJSON or EncodingBase64, normally
	// what Encoding returns for ContentType. Empty or unknown means
	// EncodingBase64. CSV or JSON data that is not valid UTF-8 is written as
	// BASE64, since a JSON string cannot hold it unchanged.
	Encoding string
}

// Encoding returns the encoding SageMaker uses for a payload of the given
// content type, from the lists of DataCaptureConfig's
// CaptureContentTypeHeader: EncodingCSV for a type in csvTypes,
// EncodingJSON for a type in jsonTypes, else EncodingBase64 (so with no
// lists at all, everything is BASE64). Types are compared by media type,
// without parameters such as charset and regardless of case.
func Encoding(contentType string, csvTypes, jsonTypes []string) string {
	mt := mediatype.Base(contentType)
	if mt == "" {
		return EncodingBase64
	}
	for _, t := range csvTypes {
		if mediatype.Base(t) == mt {
			return EncodingCSV
		}
	}
	for _, t := range jsonTypes {
		if mediatype.Base(t) == mt {
			return EncodingJSON
		}
	}
	return EncodingBase64
}

// Sampled decides, for one invocation, whether to capture it at pct
// percent (InitialSamplingPercentage): never at 0 or less, always at 100
// or more, else at random with probability pct/100. It is safe for
// concurrent use.
func Sampled(pct int) bool {
	switch {
	case pct <= 0:
		return false
	case pct >= 100:
		return true
	}
	return mrand.IntN(100) < pct
}

// The record as SageMaker writes it. Field order is SageMaker's.
type wireRecord struct {
	CaptureData   wireCaptureData `json:"captureData"`
	EventMetadata wireMetadata    `json:"eventMetadata"`
	EventVersion  string          `json:"eventVersion"`
}

type wireCaptureData struct {
	EndpointInput  *wirePayload `json:"endpointInput,omitempty"`
	EndpointOutput *wirePayload `json:"endpointOutput,omitempty"`
}

type wirePayload struct {
	ObservedContentType string `json:"observedContentType"`
	Mode                string `json:"mode"`
	Data                string `json:"data"`
	Encoding            string `json:"encoding"`
}

type wireMetadata struct {
	EventID                string `json:"eventId"`
	InferenceID            string `json:"inferenceId,omitempty"`
	InferenceTime          string `json:"inferenceTime"`
	TargetModel            string `json:"targetModel,omitempty"`
	InferenceComponentName string `json:"inferenceComponentName,omitempty"`
}

// inferenceTimeLayout is UTC with second precision and a Z.
const inferenceTimeLayout = "2006-01-02T15:04:05Z"

func wirePayloadOf(p *Payload, mode string) *wirePayload {
	if p == nil {
		return nil
	}
	w := &wirePayload{ObservedContentType: p.ContentType, Mode: mode, Encoding: EncodingBase64}
	switch p.Encoding {
	case EncodingCSV, EncodingJSON:
		if utf8.Valid(p.Data) {
			w.Encoding = p.Encoding
			w.Data = string(p.Data)
			return w
		}
	}
	w.Data = base64.StdEncoding.EncodeToString(p.Data)
	return w
}

// appendRecord appends r as one line of JSON (newline included) to buf.
// r.EventID must be set.
func appendRecord(buf *bytes.Buffer, r *Record) error {
	rec := wireRecord{
		CaptureData: wireCaptureData{
			EndpointInput:  wirePayloadOf(r.Input, modeInput),
			EndpointOutput: wirePayloadOf(r.Output, modeOutput),
		},
		EventMetadata: wireMetadata{
			EventID:                r.EventID,
			InferenceID:            r.InferenceID,
			InferenceTime:          r.Time.UTC().Format(inferenceTimeLayout),
			TargetModel:            r.TargetModel,
			InferenceComponentName: r.InferenceComponent,
		},
		EventVersion: "0",
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // "<" stays "<", as in SageMaker's files
	n := buf.Len()
	if err := enc.Encode(&rec); err != nil {
		buf.Truncate(n)
		return fmt.Errorf("encode capture record: %w", err)
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// objectName returns the file's path below the destination:
// ENDPOINT/VARIANT/yyyy/mm/dd/hh/MM-SS-mmm-UUID.jsonl, with the time of the
// file's first record.
func objectName(endpoint, variant string, first time.Time) string {
	t := first.UTC()
	return fmt.Sprintf("%s/%s/%s/%02d-%02d-%03d-%s.jsonl",
		endpoint, variant, t.Format("2006/01/02/15"),
		t.Minute(), t.Second(), t.Nanosecond()/int(time.Millisecond), newUUID())
}
