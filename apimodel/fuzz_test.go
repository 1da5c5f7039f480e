package apimodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sagehost/sagehost"
)

// fuzzOps are the operations FuzzDecodeInput picks from: the control plane's,
// then the runtime's.
func fuzzOps() []struct {
	svc *Service
	op  string
} {
	var ops []struct {
		svc *Service
		op  string
	}
	for _, s := range []*Service{SageMaker(), Runtime()} {
		for _, op := range s.Operations() {
			ops = append(ops, struct {
				svc *Service
				op  string
			}{s, op})
		}
	}
	return ops
}

func FuzzDecodeInput(f *testing.F) {
	ops := fuzzOps()
	index := map[string]int{}
	for i, o := range ops {
		if o.svc == SageMaker() {
			index[o.op] = i
		}
	}
	for _, c := range decodeCases() {
		f.Add(uint8(index[c.op]), []byte(c.body))
	}
	f.Add(uint8(0), []byte(`{"ModelName":"m","PrimaryContainer":{"Environment":{"A":null}}}`))
	f.Add(uint8(len(ops)-1), []byte(`{"EndpointName":"e","Body":"aGVsbG8="}`))

	f.Fuzz(func(t *testing.T, pick uint8, body []byte) {
		o := ops[int(pick)%len(ops)]
		out, err := o.svc.DecodeInput(o.op, body)
		if err != nil {
			var se *sagehost.Error
			if !errors.As(err, &se) {
				t.Fatalf("%s: error is %T, not *sagehost.Error: %v", o.op, err, err)
			}
			switch se.Code {
			case sagehost.CodeSerializationException:
			case sagehost.CodeValidationException:
				if !strings.Contains(se.Message, " validation error") {
					t.Fatalf("%s: malformed message %q", o.op, se.Message)
				}
			default:
				t.Fatalf("%s: unexpected code %s", o.op, se.Code)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s: output is not valid JSON: %q", o.op, out)
		}
		again, err := o.svc.DecodeInput(o.op, out)
		if err != nil {
			t.Fatalf("%s: normalised output %s rejected: %v", o.op, out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("%s: normalisation is not idempotent:\n%s\n%s", o.op, out, again)
		}
	})
}
