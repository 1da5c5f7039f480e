package auth

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	v4 "github.com/aws/smithy-go/aws-http-auth/v4"
	"github.com/sagehost/sagehost"
)

var invokeBody = []byte(`{"instances":[[1.5,2.5,3.5]],"note":"héllo"}`)

const invokePath = "/endpoints/my-endpoint/invocations"

// TestVerifySDKRoundTrip signs requests with aws-sdk-go-v2's SignHTTP and
// sends them across a loopback listener; each must verify.
func TestVerifySDKRoundTrip(t *testing.T) {
	srv := newTestServer(t, testVerifier(t))
	cases := []struct {
		name   string
		method string
		target string
		body   []byte
		sign   signing
		prep   func(*http.Request)
		region string // expected caller region; us-east-1 when empty
		cred   Credential
	}{
		{name: "post with body", method: "POST", target: invokePath, body: invokeBody,
			prep: func(r *http.Request) {
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Accept", "application/json")
			}},
		{name: "post empty body", method: "POST", target: invokePath},
		{name: "get no body", method: "GET", target: "/"},
		{name: "unsigned payload", method: "POST", target: invokePath, body: invokeBody,
			sign: signing{payloadHash: unsignedPayload},
			prep: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", unsignedPayload) }},
		{name: "content sha256 header with real hash", method: "POST", target: invokePath, body: invokeBody,
			prep: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hexSHA256(invokeBody)) }},
		{name: "session token", method: "POST", target: invokePath, body: invokeBody,
			sign: signing{cred: tokenCred}, cred: tokenCred},
		{name: "region cn-north-1", method: "POST", target: invokePath, body: invokeBody,
			sign: signing{region: "cn-north-1"}, region: "cn-north-1"},
		{name: "region us-gov-west-1", method: "POST", target: invokePath, body: invokeBody,
			sign: signing{region: "us-gov-west-1"}, region: "us-gov-west-1"},
		{name: "region eu-central-1", method: "POST", target: invokePath, body: invokeBody,
			sign: signing{region: "eu-central-1"}, region: "eu-central-1"},
		{name: "path with space", method: "POST", target: "/endpoints/my%20endpoint/invocations", body: invokeBody},
		{name: "path with encoded slash", method: "POST", target: "/endpoints/a%2Fb/invocations", body: invokeBody},
		{name: "path with unicode", method: "POST", target: "/endpoints/caf%C3%A9/invocations", body: invokeBody},
		{name: "path with sub-delims", method: "POST", target: "/endpoints/a+b!$&'()*,;=:@/invocations", body: invokeBody},
		{name: "path with needlessly encoded tilde", method: "GET", target: "/%7Euser/x_y.z-"},
		{name: "path with percent sign", method: "GET", target: "/endpoints/100%25/invocations"},
		{name: "query parameters", method: "GET",
			target: "/?b=2&a=1&a=0&empty=&sp=a%20b&plus=a+b&slash=a/b&Action=ListEndpoints&uni=%C3%A9"},
		{name: "multiple header values", method: "POST", target: invokePath, body: invokeBody,
			prep: func(r *http.Request) {
				r.Header.Add("X-Amzn-Sagemaker-Custom-Attributes", "a=1")
				r.Header.Add("X-Amzn-Sagemaker-Custom-Attributes", "b=2")
			}},
		{name: "header with internal runs of spaces", method: "POST", target: invokePath, body: invokeBody,
			prep: func(r *http.Request) { r.Header.Set("X-Amzn-Sagemaker-Custom-Attributes", "a   b    c  d") }},
		{name: "header with tabs (go sdk keeps them)", method: "POST", target: invokePath, body: invokeBody,
			prep: func(r *http.Request) { r.Header.Set("X-Amzn-Sagemaker-Custom-Attributes", "a\t\tb  c") }},
		{name: "control plane target header", method: "POST", target: "/", body: []byte(`{}`),
			prep: func(r *http.Request) {
				r.Header.Set("X-Amz-Target", "SageMaker.ListEndpoints")
				r.Header.Set("Content-Type", "application/x-amz-json-1.1")
				r.Header.Set("Amz-Sdk-Request", "attempt=1; max=25")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, srv.URL, tc.method, tc.target, tc.body)
			if tc.prep != nil {
				tc.prep(req)
			}
			sdkSign(t, req, tc.body, tc.sign)
			res := send(t, srv, req)
			if !res.ok() {
				t.Fatalf("verify failed: %s: %s", res.Code, res.Message)
			}
			want := tc.cred
			if want.AccessKeyID == "" {
				want = testCred
			}
			region := tc.region
			if region == "" {
				region = "us-east-1"
			}
			if res.Account != want.Account || res.AccessKeyID != want.AccessKeyID || res.Region != region {
				t.Errorf("caller = %+v, want account %s key %s region %s", res, want.Account, want.AccessKeyID, region)
			}
		})
	}
}

// TestVerifySDKPresignRoundTrip presigns with aws-sdk-go-v2's PresignHTTP.
func TestVerifySDKPresignRoundTrip(t *testing.T) {
	srv := newTestServer(t, testVerifier(t))
	cases := []struct {
		name   string
		method string
		target string
		body   []byte
		sign   signing
		prep   func(*http.Request)
	}{
		{name: "get", method: "GET", target: "/", sign: signing{payloadHash: unsignedPayload}},
		{name: "post unsigned payload", method: "POST", target: invokePath, body: invokeBody, sign: signing{payloadHash: unsignedPayload},
			prep: func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }},
		{name: "post body hash", method: "POST", target: invokePath, body: invokeBody},
		{name: "session token", method: "GET", target: "/?Action=ListEndpoints", sign: signing{cred: tokenCred, payloadHash: unsignedPayload}},
		{name: "odd region and escaped path", method: "GET", target: "/endpoints/a%2Fb%20c/invocations",
			sign: signing{region: "cn-north-1", payloadHash: unsignedPayload}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, srv.URL, tc.method, tc.target, tc.body)
			if tc.prep != nil {
				tc.prep(req)
			}
			presigned := sdkPresign(t, req, tc.body, 300, tc.sign)
			if presigned.Header.Get("Authorization") != "" || presigned.URL.Query().Get("X-Amz-Signature") == "" {
				t.Fatalf("not a presigned request: %s", presigned.URL)
			}
			if res := send(t, srv, presigned); !res.ok() {
				t.Fatalf("verify failed: %s: %s", res.Code, res.Message)
			}
		})
	}
}

// botocoreHeaders is what botocore signs on InvokeEndpoint (no
// content-length, no x-amz-content-sha256).
var botocoreHeaders = headerSet{
	"accept", "content-type", "date", "host", "x-amz-date", "x-amz-security-token",
	"x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id", "x-amzn-sagemaker-target-variant",
}

// botocoreSign signs like botocore: the AWS signer restricted to botocore's
// header set, with the body's SHA-256 as payload hash.
func botocoreSign(t *testing.T, req *http.Request, body []byte, cred Credential, rules headerSet) {
	t.Helper()
	sum := sha256Sum(body)
	signer := sigv4.New(func(o *v4.SignerOptions) { o.HeaderRules = rules })
	err := signer.SignRequest(&sigv4.SignRequestInput{
		Request:     req,
		PayloadHash: sum,
		Credentials: credentials.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey, SessionToken: cred.SessionToken},
		Service:     "sagemaker",
		Region:      "us-west-2",
		Time:        signTime,
	})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
}

func TestVerifyBotocoreStyle(t *testing.T) {
	srv := newTestServer(t, testVerifier(t))
	newInvoke := func() *http.Request {
		req := newRequest(t, srv.URL, "POST", invokePath, invokeBody)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Amzn-Sagemaker-Custom-Attributes", "trace=1")
		req.Header.Set("X-Amzn-Sagemaker-Target-Variant", "blue")
		req.Header.Set("User-Agent", "Boto3/1.43.11 md/Botocore#1.43.11")
		return req
	}

	t.Run("x-amz-date with session token", func(t *testing.T) {
		req := newInvoke()
		botocoreSign(t, req, invokeBody, tokenCred, botocoreHeaders)
		authz := req.Header.Get("Authorization")
		want := "SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token;x-amzn-sagemaker-custom-attributes;x-amzn-sagemaker-target-variant,"
		if !strings.Contains(authz, want) {
			t.Fatalf("test signer signed other headers than botocore: %s", authz)
		}
		if res := send(t, srv, req); !res.ok() {
			t.Fatalf("verify failed: %s: %s", res.Code, res.Message)
		}
	})

	t.Run("date header instead of x-amz-date", func(t *testing.T) {
		req := newInvoke()
		req.Header.Set("Date", signTime.Format(http.TimeFormat))
		rules := headerSet{}
		for _, h := range botocoreHeaders {
			if h != "x-amz-date" {
				rules = append(rules, h)
			}
		}
		botocoreSign(t, req, invokeBody, testCred, rules)
		req.Header.Del("X-Amz-Date")
		if !strings.Contains(req.Header.Get("Authorization"), "SignedHeaders=accept;content-type;date;host;") {
			t.Fatalf("date not signed: %s", req.Header.Get("Authorization"))
		}
		if res := send(t, srv, req); !res.ok() {
			t.Fatalf("verify failed: %s: %s", res.Code, res.Message)
		}
	})
}

// TestVerifyFailures checks that each kind of bad request fails with the
// right AWS code and message.
func TestVerifyFailures(t *testing.T) {
	header := func(prep func(*http.Request), s signing, after func(*http.Request)) func(*testing.T, string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			req := newRequest(t, base, "POST", invokePath, invokeBody)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Amzn-Sagemaker-Custom-Attributes", "a=1")
			if prep != nil {
				prep(req)
			}
			sdkSign(t, req, invokeBody, s)
			if after != nil {
				after(req)
			}
			return req
		}
	}
	presign := func(expires int, s signing, after func(*http.Request)) func(*testing.T, string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			s.payloadHash = unsignedPayload
			req := sdkPresign(t, newRequest(t, base, "GET", "/?Action=ListEndpoints", nil), nil, expires, s)
			if after != nil {
				after(req)
			}
			return req
		}
	}
	rawAuth := func(authz string, withDate bool) func(*testing.T, string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			req := newRequest(t, base, "POST", invokePath, invokeBody)
			req.Header.Set("Authorization", authz)
			if withDate {
				req.Header.Set("X-Amz-Date", signTime.Format(amzDateFormat))
			}
			return req
		}
	}
	replaceAuth := func(old, new string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		}
	}
	validScope := "AKIDEXAMPLE/20240315/us-east-1/sagemaker/aws4_request"
	validAuth := "AWS4-HMAC-SHA256 Credential=" + validScope + ", SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64)

	cases := []struct {
		name    string
		now     time.Time // verifier clock; signTime when zero
		skew    time.Duration
		build   func(*testing.T, string) *http.Request
		code    string
		message string // exact when it does not end in "...", else prefix
	}{
		{name: "no authorization at all", build: func(t *testing.T, base string) *http.Request {
			return newRequest(t, base, "POST", invokePath, invokeBody)
		}, code: sagehost.CodeMissingAuthToken, message: "Missing Authentication Token"},
		{name: "not sigv4 and no date", build: rawAuth("Bearer eyJhbGciOi", false), code: sagehost.CodeIncompleteSignature,
			message: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a " +
				"'X-Amz-Date' or a 'Date' header. Authorization=Bearer eyJhbGciOi"},
		{name: "missing signature", build: rawAuth("AWS4-HMAC-SHA256 Credential="+validScope+", SignedHeaders=host;x-amz-date", true),
			code: sagehost.CodeIncompleteSignature, message: "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=..."},
		{name: "unsupported algorithm", build: rawAuth(strings.Replace(validAuth, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1), true),
			code: sagehost.CodeIncompleteSignature, message: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'."},
		{name: "malformed pair", build: rawAuth(strings.Replace(validAuth, "Credential=AKIDEXAMPLE", "Credential=AKID EXAMPLE", 1), true),
			code: sagehost.CodeIncompleteSignature, message: "'EXAMPLE/20240315/us-east-1/sagemaker/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: ..."},
		{name: "bad credential", build: rawAuth(strings.Replace(validAuth, validScope, "AKIDEXAMPLE/20240315/us-east-1", 1), true),
			code: sagehost.CodeIncompleteSignature, message: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20240315/us-east-1'"},
		{name: "missing date", build: header(nil, signing{}, func(r *http.Request) { r.Header.Del("X-Amz-Date") }),
			code: sagehost.CodeIncompleteSignature, message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 ..."},
		{name: "malformed x-amz-date", build: header(nil, signing{}, func(r *http.Request) { r.Header.Set("X-Amz-Date", "2024-03-15T12:30:45Z") }),
			code: sagehost.CodeIncompleteSignature, message: "Date must be in ISO-8601 'basic format'. Got '2024-03-15T12:30:45Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "host not signed", build: rawAuth(strings.Replace(validAuth, "host;x-amz-date", "x-amz-date", 1), true),
			code: sagehost.CodeIncompleteSignature, message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "wrong secret", build: header(nil, signing{cred: Credential{AccessKeyID: testCred.AccessKeyID, SecretAccessKey: "not-the-secret"}}, nil),
			code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "unknown access key", build: header(nil, signing{cred: Credential{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: "x"}}, nil),
			code: sagehost.CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "tampered body", build: func(t *testing.T, base string) *http.Request {
			req := header(nil, signing{}, nil)(t, base)
			tampered := bytes.Replace(invokeBody, []byte("1.5"), []byte("9.5"), 1)
			req.Body = io.NopCloser(bytes.NewReader(tampered))
			return req
		}, code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "tampered signed header", build: header(nil, signing{}, func(r *http.Request) {
			r.Header.Set("X-Amzn-Sagemaker-Custom-Attributes", "a=2")
		}), code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "tampered path", build: header(nil, signing{}, func(r *http.Request) {
			r.URL.Path = "/endpoints/other-endpoint/invocations"
		}), code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "tampered query", build: header(nil, signing{}, func(r *http.Request) { setQuery(r, "extra", "1") }),
			code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "tampered method", build: header(nil, signing{}, func(r *http.Request) { r.Method = "PUT" }),
			code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "wrong service", build: header(nil, signing{service: "execute-api"}, nil),
			code: sagehost.CodeInvalidSignature, message: "Credential should be scoped to correct service: 'sagemaker'. "},
		{name: "wrong terminator", build: header(nil, signing{}, replaceAuth("/aws4_request,", "/x,")),
			code: sagehost.CodeInvalidSignature, message: "Credential should be scoped with a valid terminator: 'aws4_request', not 'x'. "},
		{name: "empty region", build: header(nil, signing{}, replaceAuth("/us-east-1/", "//")),
			code: sagehost.CodeInvalidSignature, message: "Credential should be scoped to a valid region. "},
		{name: "scope date mismatch", build: header(nil, signing{}, replaceAuth("/20240315/", "/20240314/")),
			code:    sagehost.CodeInvalidSignature,
			message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240314' != '20240315', from '20240315T123045Z'."},
		{name: "signed too long ago", now: signTime.Add(5*time.Minute + time.Second), build: header(nil, signing{}, nil),
			code: sagehost.CodeInvalidSignature, message: "Signature expired: 20240315T123045Z is now earlier than 20240315T123046Z (20240315T123546Z - 5 min.)"},
		{name: "signed in the future", now: signTime.Add(-5*time.Minute - time.Second), build: header(nil, signing{}, nil),
			code: sagehost.CodeInvalidSignature, message: "Signature not yet current: 20240315T123045Z is still later than 20240315T123044Z (20240315T122544Z + 5 min.)"},
		{name: "custom skew", now: signTime.Add(91 * time.Second), skew: 90 * time.Second, build: header(nil, signing{}, nil),
			code: sagehost.CodeInvalidSignature, message: "Signature expired: 20240315T123045Z is now earlier than 20240315T123046Z (20240315T123216Z - 90 sec.)"},
		{name: "presign expired", now: signTime.Add(61 * time.Second), build: presign(60, signing{}, nil),
			code: sagehost.CodeInvalidSignature, message: "Signature expired: 20240315T123045Z is now earlier than 20240315T123046Z (20240315T123146Z - 60 sec.)"},
		{name: "presign in the future", now: signTime.Add(-6 * time.Minute), build: presign(60, signing{}, nil),
			code: sagehost.CodeInvalidSignature, message: "Signature not yet current: 20240315T123045Z is still later than 20240315T122945Z (20240315T122445Z + 5 min.)"},
		{name: "presign without expires", build: presign(60, signing{}, func(r *http.Request) {
			q := r.URL.Query()
			q.Del("X-Amz-Expires")
			r.URL.RawQuery = q.Encode()
		}), code: sagehost.CodeIncompleteSignature, message: "AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters."},
		{name: "presign expires too long", build: presign(604801, signing{}, nil),
			code: sagehost.CodeIncompleteSignature, message: "X-Amz-Expires must be a whole number of seconds from 1 to 604800, got '604801'."},
		{name: "presign tampered query", build: presign(60, signing{}, func(r *http.Request) { setQuery(r, "Action", "DeleteEndpoint") }),
			code: sagehost.CodeInvalidSignature, message: msgSignatureMismatch},
		{name: "presign wrong session token", build: presign(60, signing{cred: tokenCred}, func(r *http.Request) {
			setQuery(r, "X-Amz-Security-Token", "other-token")
		}), code: sagehost.CodeUnrecognizedClient, message: msgInvalidToken},
		{name: "wrong session token", build: header(nil, signing{cred: Credential{
			AccessKeyID: tokenCred.AccessKeyID, SecretAccessKey: tokenCred.SecretAccessKey, SessionToken: "forged-token"}}, nil),
			code: sagehost.CodeUnrecognizedClient, message: msgInvalidToken},
		{name: "missing session token", build: header(nil, signing{cred: Credential{
			AccessKeyID: tokenCred.AccessKeyID, SecretAccessKey: tokenCred.SecretAccessKey}}, nil),
			code: sagehost.CodeUnrecognizedClient, message: msgInvalidToken},
		{name: "expired credential", build: header(nil, signing{cred: expiredCred}, nil),
			code: sagehost.CodeExpiredToken, message: "The security token included in the request is expired"},
		{name: "content sha256 not hex", build: header(func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "abc") }, signing{payloadHash: "abc"}, nil),
			code:    sagehost.CodeInvalidSignature,
			message: "The provided 'x-amz-content-sha256' header must be UNSIGNED-PAYLOAD or the hex SHA-256 of the request body, got 'abc'."},
		{name: "content sha256 of another body", build: header(func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", hexSHA256([]byte("other")))
		}, signing{payloadHash: hexSHA256([]byte("other"))}, nil),
			code: sagehost.CodeInvalidSignature, message: "The provided 'x-amz-content-sha256' header does not match what was computed."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := testVerifier(t)
			v.MaxSkew = tc.skew
			if !tc.now.IsZero() {
				v.Now = func() time.Time { return tc.now }
			}
			srv := newTestServer(t, v)
			res := send(t, srv, tc.build(t, srv.URL))
			if res.Code != tc.code {
				t.Fatalf("code = %q (%s), want %q", res.Code, res.Message, tc.code)
			}
			if prefix, ok := strings.CutSuffix(tc.message, "..."); ok {
				if !strings.HasPrefix(res.Message, prefix) {
					t.Errorf("message = %q, want prefix %q", res.Message, prefix)
				}
			} else if res.Message != tc.message {
				t.Errorf("message = %q\nwant      %q", res.Message, tc.message)
			}
		})
	}
}

// TestVerifyBoundaries: the edges of the allowed windows still pass, and
// headers outside the signature may change.
func TestVerifyBoundaries(t *testing.T) {
	cases := []struct {
		name    string
		now     time.Time
		presign bool
		after   func(*http.Request)
	}{
		{name: "exactly max skew late", now: signTime.Add(5 * time.Minute)},
		{name: "exactly max skew early", now: signTime.Add(-5 * time.Minute)},
		{name: "presign at expiry", now: signTime.Add(60 * time.Second), presign: true},
		{name: "unsigned header changed", now: signTime, after: func(r *http.Request) { r.Header.Set("User-Agent", "changed/1.0") }},
		{name: "unsigned header added", now: signTime, after: func(r *http.Request) { r.Header.Set("X-Unsigned", "1") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := testVerifier(t)
			v.Now = func() time.Time { return tc.now }
			srv := newTestServer(t, v)
			var req *http.Request
			if tc.presign {
				req = sdkPresign(t, newRequest(t, srv.URL, "GET", "/", nil), nil, 60, signing{payloadHash: unsignedPayload})
			} else {
				req = newRequest(t, srv.URL, "POST", invokePath, invokeBody)
				sdkSign(t, req, invokeBody, signing{})
			}
			if tc.after != nil {
				tc.after(req)
			}
			if res := send(t, srv, req); !res.ok() {
				t.Fatalf("verify failed: %s: %s", res.Code, res.Message)
			}
		})
	}
}

// TestVerifyDefaults: a zero Service, MaxSkew and Now mean sagemaker, five
// minutes and the real clock.
func TestVerifyDefaults(t *testing.T) {
	v := &Verifier{Keys: testKeyring(t)}
	srv := newTestServer(t, v)
	req := newRequest(t, srv.URL, "POST", invokePath, invokeBody)
	sdkSign(t, req, invokeBody, signing{at: time.Now().Add(-4 * time.Minute)})
	if res := send(t, srv, req); !res.ok() {
		t.Fatalf("verify failed: %s: %s", res.Code, res.Message)
	}
	req = newRequest(t, srv.URL, "POST", invokePath, invokeBody)
	sdkSign(t, req, invokeBody, signing{at: time.Now().Add(-6 * time.Minute)})
	if res := send(t, srv, req); res.Code != sagehost.CodeInvalidSignature || !strings.HasPrefix(res.Message, "Signature expired:") {
		t.Fatalf("got %s: %s, want expired signature", res.Code, res.Message)
	}
}

// TestVerifyNilKeyring: a verifier without keys rejects every key.
func TestVerifyNilKeyring(t *testing.T) {
	srv := newTestServer(t, &Verifier{Now: func() time.Time { return signTime }})
	req := newRequest(t, srv.URL, "POST", invokePath, invokeBody)
	sdkSign(t, req, invokeBody, signing{})
	if res := send(t, srv, req); res.Code != sagehost.CodeUnrecognizedClient {
		t.Fatalf("code = %s, want %s", res.Code, sagehost.CodeUnrecognizedClient)
	}
}

// TestVerifyDevCredential: the development credential signs like any other.
func TestVerifyDevCredential(t *testing.T) {
	keys, err := NewKeyring(DevCredential)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, &Verifier{Keys: keys, Now: func() time.Time { return signTime }})
	req := newRequest(t, srv.URL, "POST", invokePath, invokeBody)
	sdkSign(t, req, invokeBody, signing{cred: DevCredential})
	res := send(t, srv, req)
	if !res.ok() || res.Account != "000000000000" || res.AccessKeyID != "sagehost" {
		t.Fatalf("result = %+v", res)
	}
}
