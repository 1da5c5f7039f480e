package auth

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const (
	testScope = "AKIDEXAMPLE/20240315/us-east-1/sagemaker/aws4_request"
	testSig   = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)

func TestParseAuthorization(t *testing.T) {
	valid := authorization{
		AccessKeyID:   "AKIDEXAMPLE",
		Scope:         credentialScope{Date: "20240315", Region: "us-east-1", Service: "sagemaker", Terminator: "aws4_request"},
		SignedHeaders: []string{"content-type", "host", "x-amz-date"},
		Signature:     testSig,
	}
	cases := []struct {
		name   string
		header string
		want   authorization // checked when no error is expected
		errs   []error       // the kinds the error must wrap
	}{
		{name: "valid", header: "AWS4-HMAC-SHA256 Credential=" + testScope + ", SignedHeaders=content-type;host;x-amz-date, Signature=" + testSig, want: valid},
		{name: "valid with bare commas", header: "AWS4-HMAC-SHA256 Credential=" + testScope + ",SignedHeaders=content-type;host;x-amz-date,Signature=" + testSig, want: valid},
		{name: "valid in other order, uppercase header names", header: "AWS4-HMAC-SHA256 Signature=" + testSig + ", SignedHeaders=Content-Type;Host;X-Amz-Date, Credential=" + testScope, want: valid},
		{name: "empty", header: "", errs: []error{errNotSigV4}},
		{name: "other scheme", header: "Bearer eyJhbGciOiJIUzI1NiJ9", errs: []error{errNotSigV4}},
		{name: "unsupported algorithm", header: "AWS4-ECDSA-P256-SHA256 Credential=" + testScope + ", SignedHeaders=host, Signature=" + testSig, errs: []error{errUnsupportedAlgorithm}},
		{name: "missing credential", header: "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + testSig, errs: []error{errMissingCredential}},
		{name: "missing signed headers", header: "AWS4-HMAC-SHA256 Credential=" + testScope + ", Signature=" + testSig, errs: []error{errMissingSignedHeaders}},
		{name: "missing signature", header: "AWS4-HMAC-SHA256 Credential=" + testScope + ", SignedHeaders=host", errs: []error{errMissingSignature}},
		{name: "empty credential value", header: "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=" + testSig, errs: []error{errMissingCredential}},
		{name: "algorithm only", header: "AWS4-HMAC-SHA256", errs: []error{errMissingCredential, errMissingSignature, errMissingSignedHeaders}},
		{name: "pair without equal sign", header: "AWS4-HMAC-SHA256 Credential=AKID EXAMPLE/20240315/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=" + testSig, errs: []error{errMalformedPair}},
		{name: "duplicate parameter", header: "AWS4-HMAC-SHA256 Credential=" + testScope + ", SignedHeaders=host, Signature=" + testSig + ", Signature=" + testSig, errs: []error{errDuplicateParameter}},
		{name: "credential with four elements", header: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240315/us-east-1/sagemaker, SignedHeaders=host, Signature=" + testSig, errs: []error{errMalformedCredential}},
		{name: "credential with empty key", header: "AWS4-HMAC-SHA256 Credential=/20240315/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=" + testSig, errs: []error{errMalformedCredential}},
		{name: "empty signed header name", header: "AWS4-HMAC-SHA256 Credential=" + testScope + ", SignedHeaders=host;;x-amz-date, Signature=" + testSig, errs: []error{errEmptySignedHeader}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAuthorization(tc.header)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %+v\nwant %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; parsed %+v", got)
			}
			for _, kind := range tc.errs {
				if !errors.Is(err, kind) {
					t.Errorf("error %q does not wrap %v", err, kind)
				}
			}
			if n := len(malformations(err)); n != len(tc.errs) {
				t.Errorf("error %q has %d defects, want %d", err, n, len(tc.errs))
			}
		})
	}
}

func TestParseAuthorizationMessages(t *testing.T) {
	_, err := parseAuthorization("AWS4-HMAC-SHA256 Credential=AKID EXAMPLE/20240315/us-east-1/sagemaker/aws4_request")
	want := "'EXAMPLE/20240315/us-east-1/sagemaker/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: " +
		"'AWS4-HMAC-SHA256 Credential=AKID EXAMPLE/20240315/us-east-1/sagemaker/aws4_request'."
	if err == nil || err.Error() != want {
		t.Errorf("message = %v\nwant      %s", err, want)
	}
	long := "AWS4-HMAC-SHA256 Credential=" + strings.Repeat("x", 10000)
	_, err = parseAuthorization(long)
	if err == nil || len(err.Error()) > 2*maxEcho+200 {
		t.Errorf("message not bounded: %d bytes", len(err.Error()))
	}
}

func TestParsePresigned(t *testing.T) {
	base := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {testScope},
		"X-Amz-Date":          {"20240315T123045Z"},
		"X-Amz-Expires":       {"300"},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {testSig},
	}
	with := func(key, value string) url.Values {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		return q
	}
	cases := []struct {
		name  string
		query url.Values
		errs  []error
	}{
		{name: "valid", query: base},
		{name: "missing expires", query: with("X-Amz-Expires", ""), errs: []error{errMissingQueryParam}},
		{name: "missing signature", query: with("X-Amz-Signature", ""), errs: []error{errMissingQueryParam}},
		{name: "unsupported algorithm", query: with("X-Amz-Algorithm", "AWS4-HMAC-SHA1"), errs: []error{errUnsupportedAlgorithm}},
		{name: "malformed credential", query: with("X-Amz-Credential", "AKIDEXAMPLE"), errs: []error{errMalformedCredential}},
		{name: "empty signed header name", query: with("X-Amz-SignedHeaders", "host;"), errs: []error{errEmptySignedHeader}},
		{name: "expires zero", query: with("X-Amz-Expires", "0"), errs: []error{errInvalidExpires}},
		{name: "expires over a week", query: with("X-Amz-Expires", "604801"), errs: []error{errInvalidExpires}},
		{name: "expires not a number", query: with("X-Amz-Expires", "1e3"), errs: []error{errInvalidExpires}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePresigned(tc.query)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if p.AccessKeyID != "AKIDEXAMPLE" || p.Expires != 300 || p.Date != "20240315T123045Z" || p.Signature != testSig {
					t.Fatalf("parsed %+v", p)
				}
				return
			}
			for _, kind := range tc.errs {
				if !errors.Is(err, kind) {
					t.Errorf("error %v does not wrap %v", err, kind)
				}
			}
		})
	}
}
