package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4sdk "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/sagehost/sagehost"
)

// signTime is when test requests are signed; verifiers' clocks default to it.
var signTime = time.Date(2024, 3, 15, 12, 30, 45, 0, time.UTC)

var (
	testCred = Credential{
		AccessKeyID:     "AKIDEXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		Account:         "111122223333",
	}
	tokenCred = Credential{
		AccessKeyID:     "ASIATEMPEXAMPLE",
		SecretAccessKey: "temporary/secret+key",
		SessionToken:    "FwoGZXIvYXdzEJr//////////wEaDExampleSessionToken==",
		Account:         "444455556666",
	}
	expiredCred = Credential{
		AccessKeyID:     "ASIAEXPIRED",
		SecretAccessKey: "expired-secret",
		SessionToken:    "expired-token",
		Account:         "777788889999",
		Expiration:      signTime.Add(-time.Minute),
	}
)

// testKeyring holds the test credentials.
func testKeyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := NewKeyring(testCred, tokenCred, expiredCred)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

// testVerifier is a verifier of the test keyring whose clock reads signTime.
func testVerifier(t testing.TB) *Verifier {
	return &Verifier{Keys: testKeyring(t), Service: "sagemaker", Now: func() time.Time { return signTime }}
}

// verifyResult is what the test server reports about one request.
type verifyResult struct {
	Code, Message                string
	Account, Region, AccessKeyID string
}

func (r verifyResult) ok() bool { return r.Code == "" }

// newTestServer serves Verify on a loopback listener: every request's body is
// read, verified, and the outcome written back as JSON.
func newTestServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var res verifyResult
		caller, err := v.Verify(r, body)
		if err != nil {
			var e *sagehost.Error
			if errors.As(err, &e) {
				res.Code, res.Message = e.Code, e.Message
			} else {
				res.Code = "not a *sagehost.Error: " + err.Error()
			}
		} else {
			res.Account, res.Region, res.AccessKeyID = caller.Account, caller.Region, caller.AccessKeyID
		}
		_ = json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// send sends req to the test server and decodes its report.
func send(t *testing.T, srv *httptest.Server, req *http.Request) verifyResult {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	defer resp.Body.Close()
	var res verifyResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("decode server report (status %d): %v", resp.StatusCode, err)
	}
	return res
}

// newRequest builds a request to the test server; target is path and query.
func newRequest(t testing.TB, base, method, target string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, base+target, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request %s: %v", target, err)
	}
	return req
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// signing says how the AWS SDK signer signs a test request; zero fields take
// the defaults (testCred, us-east-1, sagemaker, signTime, SHA-256 of body).
type signing struct {
	cred        Credential
	region      string
	service     string
	at          time.Time
	payloadHash string
}

func (s signing) withDefaults(body []byte) signing {
	if s.cred.AccessKeyID == "" {
		s.cred = testCred
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.service == "" {
		s.service = "sagemaker"
	}
	if s.at.IsZero() {
		s.at = signTime
	}
	if s.payloadHash == "" {
		s.payloadHash = hexSHA256(body)
	}
	return s
}

func (s signing) awsCredentials() aws.Credentials {
	return aws.Credentials{AccessKeyID: s.cred.AccessKeyID, SecretAccessKey: s.cred.SecretAccessKey, SessionToken: s.cred.SessionToken}
}

// sdkSign signs req in place with aws-sdk-go-v2's SignHTTP.
func sdkSign(t testing.TB, req *http.Request, body []byte, s signing) {
	t.Helper()
	s = s.withDefaults(body)
	err := v4sdk.NewSigner().SignHTTP(context.Background(), s.awsCredentials(), req, s.payloadHash, s.service, s.region, s.at)
	if err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
}

// sdkPresign presigns req with aws-sdk-go-v2's PresignHTTP, valid for
// expires seconds, and returns the request to send: the presigned URL with
// the headers the signer signed.
func sdkPresign(t testing.TB, req *http.Request, body []byte, expires int, s signing) *http.Request {
	t.Helper()
	s = s.withDefaults(body)
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(expires))
	req.URL.RawQuery = q.Encode()
	uri, headers, err := v4sdk.NewSigner().PresignHTTP(context.Background(), s.awsCredentials(), req, s.payloadHash, s.service, s.region, s.at)
	if err != nil {
		t.Fatalf("PresignHTTP: %v", err)
	}
	out, err := http.NewRequest(req.Method, uri, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new presigned request: %v", err)
	}
	for k, vs := range headers {
		if k != "Host" {
			out.Header[k] = vs
		}
	}
	return out
}

// setQuery sets one query parameter of req.
func setQuery(req *http.Request, key, value string) {
	q := req.URL.Query()
	q.Set(key, value)
	req.URL.RawQuery = q.Encode()
}
