package auth

import (
	"bufio"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzHeaderSignatureMatchesSigner holds headerSignature to the AWS signer
// (smithy-go aws-http-auth sigv4, through expectedSignature): for any
// request line, headers, signed-header list, time, scope and payload hash
// the two compute the same signature.
func FuzzHeaderSignatureMatchesSigner(f *testing.F) {
	f.Add("POST /endpoints/my-endpoint/invocations HTTP/1.1", "Host: 127.0.0.1:7070\nContent-Type: text/csv\nX-Amz-Date: 20261128T101010Z\nX-Amz-Content-Sha256: abc",
		"content-type;host;x-amz-content-sha256;x-amz-date", int64(1795860610), "us-east-1", "sagemaker", "body", false)
	f.Add("GET /endpoints/a%2Fb/invocations?b=2&a=1&a=%20x&c HTTP/1.1", "Host: example.com\nX-Amz-Sagemaker-Custom-Attributes:  a  b \nX-Amz-Sagemaker-Custom-Attributes: c\nx-lower: v",
		"host;x-amz-date;x-amz-sagemaker-custom-attributes;x-lower;missing", int64(0), "eu-west-3", "sagemaker", "", true)
	f.Add("PUT /a%20b/%7Ec/ü?x=%zz&y=+ HTTP/1.1", "Host: h\nX-Amz-Date: bogus\nAuthorization: x", "host;authorization;X-Upper", int64(-5), "r", "s", "p", false)
	f.Fuzz(func(t *testing.T, requestLine, headerLines, signed string, unix int64, region, service, payload string, unsigned bool) {
		raw := requestLine + "\r\n" + strings.ReplaceAll(headerLines, "\n", "\r\n") + "\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // not a request Go's server would hand over
		}
		req := &signedRequest{date: time.Unix(unix%(1<<35), 0)}
		req.Scope = credentialScope{Region: region, Service: service}
		req.AccessKeyID = "AKID"
		for _, h := range strings.Split(signed, ";") {
			req.SignedHeaders = append(req.SignedHeaders, strings.ToLower(h))
		}
		hash := []byte(unsignedPayload)
		if !unsigned {
			sum := sha256.Sum256([]byte(payload))
			hash = sum[:]
		}
		headers := signedHeaderValues(r, req.SignedHeaders)
		var keys signingKeys
		got := headerSignature(&keys, r, req, "secret", hash, headers)
		again := headerSignature(&keys, r, req, "secret", hash, headers) // the cached key
		want, err := expectedSignature(r, req, Credential{SecretAccessKey: "secret"}, hash, headers.Clone())
		if err != nil {
			t.Skip("the signer refused:", err)
		}
		if got != want || again != want {
			t.Fatalf("signature %s (cached key: %s), the AWS signer's %s\nrequest:\n%s\nsigned: %q", got, again, want, raw, req.SignedHeaders)
		}
	})
}

func BenchmarkSignature(b *testing.B) {
	raw := "POST /endpoints/bench/invocations HTTP/1.1\r\nHost: 127.0.0.1:7070\r\nContent-Type: application/octet-stream\r\n" +
		"X-Amz-Date: 20261128T101010Z\r\nX-Amz-Content-Sha256: 0123\r\nContent-Length: 1024\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		b.Fatal(err)
	}
	req := &signedRequest{date: time.Date(2026, 11, 28, 10, 10, 10, 0, time.UTC)}
	req.Scope = credentialScope{Region: "us-east-1", Service: "sagemaker"}
	req.SignedHeaders = []string{"content-length", "content-type", "host", "x-amz-content-sha256", "x-amz-date"}
	sum := sha256.Sum256(make([]byte, 1024))
	headers := signedHeaderValues(r, req.SignedHeaders)
	b.Run("headerSignature", func(b *testing.B) {
		var keys signingKeys
		for b.Loop() {
			headerSignature(&keys, r, req, "secret", sum[:], headers)
		}
	})
	b.Run("signer", func(b *testing.B) {
		for b.Loop() {
			expectedSignature(r, req, Credential{SecretAccessKey: "secret"}, sum[:], headers.Clone())
		}
	})
}

// BenchmarkVerify is the whole verification of a header-signed 1 KB
// InvokeEndpoint request, as aws-sdk-go-v2 signs it.
func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 1024)
	req := newRequest(b, "http://127.0.0.1:7070", "POST", "/endpoints/bench/invocations", body)
	req.Header.Set("Content-Type", "application/octet-stream")
	sdkSign(b, req, body, signing{})
	v := testVerifier(b)
	for b.Loop() {
		if _, err := v.Verify(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	for _, name := range []string{"content-type", "content-length", "host", "x-amz-date", "x-amz-content-sha256",
		"x-amz-security-token", "x-amz-target", "x-amz-user-agent", "amz-sdk-invocation-id", "amz-sdk-request",
		"accept", "x-amzn-sagemaker-custom-attributes", "x-other", "weird name"} {
		if got, want := canonicalKey(name), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("canonicalKey(%q) = %q, want %q", name, got, want)
		}
	}
}
