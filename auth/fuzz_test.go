package auth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sagehost/sagehost"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		"",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=" + testScope + ", SignedHeaders=host;x-amz-date, Signature=" + testSig,
		"AWS4-HMAC-SHA256 Credential=" + testScope + ",SignedHeaders=host,Signature=" + testSig,
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=;;, Signature==",
		"AWS4-HMAC-SHA256 Credential==, Credential==",
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
		"AWS AKIDEXAMPLE:c2lnbmF0dXJl",
		"AWS4-ECDSA-P256-SHA256 Credential=x",
		"AWS4-HMAC-SHA256 \xff\xfe=\x00, SignedHeaders=\t",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		// The field splitter agrees with strings.FieldsFunc on the same
		// separators, and the credential parser with strings.Split.
		want := strings.FieldsFunc(header, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
		var got []string
		for f, rest := nextField(header); f != ""; f, rest = nextField(rest) {
			got = append(got, f)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("fields %q, strings.FieldsFunc gives %q", got, want)
		}
		key, scope, cerr := parseCredential(header)
		if parts := strings.Split(header, "/"); (len(parts) == 5 && parts[0] != "") != (cerr == nil) ||
			cerr == nil && (key != parts[0] || scope != (credentialScope{parts[1], parts[2], parts[3], parts[4]})) {
			t.Fatalf("parseCredential(%q) = %q, %+v, %v", header, key, scope, cerr)
		}
		auth, err := parseAuthorization(header)
		if err != nil {
			for _, m := range malformations(err) {
				if m.kind == nil || m.msg == "" {
					t.Fatalf("defect without kind or message: %#v", m)
				}
			}
			if incompleteAuthorization(header, err, true) == nil {
				t.Fatal("parse error not reported")
			}
			return
		}
		if auth.AccessKeyID == "" || auth.Signature == "" || len(auth.SignedHeaders) == 0 {
			t.Fatalf("accepted with empty fields: %+v", auth)
		}
		for _, h := range auth.SignedHeaders {
			if h == "" || h != strings.ToLower(h) {
				t.Fatalf("bad signed header name %q", h)
			}
		}
	})
}

// authCodes are the codes Verify may answer with.
var authCodes = map[string]bool{
	sagehost.CodeMissingAuthToken:    true,
	sagehost.CodeIncompleteSignature: true,
	sagehost.CodeInvalidSignature:    true,
	sagehost.CodeUnrecognizedClient:  true,
	sagehost.CodeExpiredToken:        true,
}

// fuzzInput is one request as FuzzVerify sees it.
type fuzzInput struct {
	method, target, authz, amzDate, contentSHA, token string
	body                                              []byte
}

// signedSeeds are genuine signed requests (header-signed and presigned), so
// the fuzzer starts from inputs that pass and mutates them.
func signedSeeds(f *testing.F) []fuzzInput {
	const base = "http://127.0.0.1:8080"
	req := newRequest(f, base, "POST", invokePath+"?a=1&b=%20x", invokeBody)
	req.Header.Set("X-Amz-Content-Sha256", hexSHA256(invokeBody))
	sdkSign(f, req, invokeBody, signing{cred: tokenCred})
	header := fuzzInput{
		method: "POST", target: req.URL.RequestURI(), authz: req.Header.Get("Authorization"),
		amzDate: req.Header.Get("X-Amz-Date"), contentSHA: req.Header.Get("X-Amz-Content-Sha256"),
		token: req.Header.Get("X-Amz-Security-Token"), body: invokeBody,
	}
	pre := sdkPresign(f, newRequest(f, base, "GET", "/endpoints/a%2Fb/invocations?x=1", nil), nil, 300, signing{payloadHash: unsignedPayload})
	presigned := fuzzInput{method: "GET", target: pre.URL.RequestURI()}
	return []fuzzInput{header, presigned}
}

// fuzzRequest builds the server-side request for a fuzz input, the way Go's
// server would present it; ok is false when Go's server would reject it.
func fuzzRequest(in fuzzInput) (*http.Request, bool) {
	u, err := url.ParseRequestURI(in.target)
	if err != nil {
		return nil, false
	}
	h := http.Header{}
	for k, v := range map[string]string{
		"Authorization":        in.authz,
		"X-Amz-Date":           in.amzDate,
		"X-Amz-Content-Sha256": in.contentSHA,
		"X-Amz-Security-Token": in.token,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return &http.Request{
		Method: in.method, URL: u, RequestURI: in.target, Host: "127.0.0.1:8080",
		Header: h, ContentLength: int64(len(in.body)),
	}, true
}

func FuzzVerify(f *testing.F) {
	v := testVerifier(f)
	for _, s := range signedSeeds(f) {
		req, _ := fuzzRequest(s)
		if _, err := v.Verify(req, s.body); err != nil {
			f.Fatalf("signed seed %s %s does not verify: %v", s.method, s.target, err)
		}
		f.Add(s.method, s.target, s.authz, s.amzDate, s.contentSHA, s.token, s.body)
	}
	f.Add("GET", "/", "", "", "", "", []byte(nil))
	f.Add("POST", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%2F%2F%2F%2F&X-Amz-Expires=-1", "", "", "", "", []byte("x"))
	f.Add("POST", "/", "AWS4-HMAC-SHA256 Credential="+testScope+", SignedHeaders=host;content-length;transfer-encoding, Signature="+testSig,
		"20240315T123045Z", "UNSIGNED-PAYLOAD", "", []byte("{}"))
	f.Add("PUT", "/%zz", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/00010101/r/sagemaker/aws4_request, SignedHeaders=host, Signature=x",
		"00010101T000000Z", strings.Repeat("0", 64), "", []byte{})

	f.Fuzz(func(t *testing.T, method, target, authz, amzDate, contentSHA, token string, body []byte) {
		req, ok := fuzzRequest(fuzzInput{method, target, authz, amzDate, contentSHA, token, body})
		if !ok {
			return
		}
		caller, err := v.Verify(req, body)
		if err != nil {
			var e *sagehost.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not a *sagehost.Error: %v", err)
			}
			if !authCodes[e.Code] || e.Message == "" {
				t.Fatalf("unexpected error %q: %q", e.Code, e.Message)
			}
			return
		}
		// Only a genuinely signed request can pass: it must name a real key.
		cred, known := v.Keys.Lookup(caller.AccessKeyID)
		if !known || caller.Account != cred.Account || caller.Region == "" {
			t.Fatalf("accepted with caller %+v", caller)
		}
	})
}
