package auth

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	v4 "github.com/aws/smithy-go/aws-http-auth/v4"
	"github.com/sagehost/sagehost"
)

// checkSignature recomputes the signature for each payload hash and header
// normalisation the client may have used, and accepts the request if one
// matches the signature it sent: header-signed requests through
// headerSignature, presigned ones through the AWS signer itself.
func checkSignature(keys *signingKeys, r *http.Request, req *signedRequest, cred Credential, payloadHashes [][]byte) error {
	headers := signedHeaderValues(r, req.SignedHeaders)
	normalisers := headerNormalisers(headers)
	// The signer writes into the request's headers: each attempt after the
	// first works on a copy.
	reuse := len(normalisers) == 1 && len(payloadHashes) == 1
	for _, normalise := range normalisers {
		normalised := normalise(headers)
		for _, hash := range payloadHashes {
			var expected string
			if req.presigned {
				h := normalised
				if !reuse {
					h = normalised.Clone()
				}
				var err error
				if expected, err = expectedSignature(r, req, cred, hash, h); err != nil {
					return err
				}
			} else {
				expected = headerSignature(keys, r, req, cred.SecretAccessKey, hash, normalised)
			}
			if subtle.ConstantTimeCompare([]byte(expected), []byte(req.Signature)) == 1 {
				return nil
			}
		}
	}
	return sagehost.Errorf(sagehost.CodeInvalidSignature, msgSignatureMismatch)
}

// expectedSignature signs a copy of the request, holding exactly the signed
// headers, with the credential's secret, and returns the signature.
func expectedSignature(r *http.Request, req *signedRequest, cred Credential, payloadHash []byte, headers http.Header) (string, error) {
	copied := requestToSign(r, req, headers)
	sigType := v4.SignatureTypeHeader
	if req.presigned {
		sigType = v4.SignatureTypeQueryString
	}
	signer := sigv4.New(func(o *v4.SignerOptions) {
		o.HeaderRules = headerSet(req.SignedHeaders)
		o.DisableImplicitPayloadHashing = true
	})
	err := signer.SignRequest(&sigv4.SignRequestInput{
		Request:       copied,
		PayloadHash:   payloadHash,
		Credentials:   credentials.Credentials{AccessKeyID: req.AccessKeyID, SecretAccessKey: cred.SecretAccessKey},
		Service:       req.Scope.Service,
		Region:        req.Scope.Region,
		Time:          req.date,
		SignatureType: sigType,
	})
	if err != nil {
		return "", fmt.Errorf("compute expected signature: %w", err)
	}
	if req.presigned {
		return copied.URL.Query().Get(querySignature), nil
	}
	return signatureOf(copied.Header.Get("Authorization")), nil
}

// requestToSign builds the request the signer signs: the client's method,
// path as sent, query (without X-Amz-Signature when presigned) and Host, and
// the given headers (which the signer then writes to). The signer adds Host, X-Amz-Date and (presigned) the
// X-Amz-* query parameters itself, from the same values the client used.
func requestToSign(r *http.Request, req *signedRequest, headers http.Header) *http.Request {
	u := &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if req.presigned {
		u.RawQuery = req.unsignedQuery
	}
	return &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: headers}
}

// signatureOf extracts the Signature parameter from an Authorization header
// the signer wrote.
func signatureOf(authorization string) string {
	const key = "Signature="
	i := strings.LastIndex(authorization, key)
	if i < 0 {
		return ""
	}
	return authorization[i+len(key):]
}

// headerSet is the signer's rule for which headers to sign: exactly the
// client's SignedHeaders.
type headerSet []string

// IsSigned implements v4.SignedHeaderRules; name is lowercase.
func (s headerSet) IsSigned(name string) bool {
	for _, h := range s {
		if h == name {
			return true
		}
	}
	return false
}

// signedHeaderValues collects the raw values of the headers the client
// signed, keyed by canonical name. Host is left to the signer (from r.Host);
// Content-Length and Transfer-Encoding are restored from the fields Go's
// server moves them to. A signed header the request lacks gets an empty
// value.
func signedHeaderValues(r *http.Request, signed []string) http.Header {
	out := make(http.Header, len(signed)+3) // room for Host, X-Amz-Date, Authorization
	for _, name := range signed {
		if name == "host" {
			continue
		}
		vals := headerValues(r.Header, name)
		if len(vals) == 0 {
			vals = movedHeader(r, name)
		}
		if len(vals) == 0 {
			vals = []string{""}
		}
		// Shared with r.Header: the signer replaces whole values (Set), and
		// the normalisers build new ones, so none is written through.
		out[canonicalKey(name)] = vals
	}
	return out
}

// canonicalKey is http.CanonicalHeaderKey of a lower-case signed header
// name, without allocating for the names AWS SDKs sign.
func canonicalKey(lower string) string {
	switch lower {
	case "content-type":
		return "Content-Type"
	case "content-length":
		return "Content-Length"
	case "host":
		return "Host"
	case "x-amz-date":
		return "X-Amz-Date"
	case "x-amz-content-sha256":
		return "X-Amz-Content-Sha256"
	case "x-amz-security-token":
		return "X-Amz-Security-Token"
	case "x-amz-target":
		return "X-Amz-Target"
	case "x-amz-user-agent":
		return "X-Amz-User-Agent"
	case "amz-sdk-invocation-id":
		return "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		return "Amz-Sdk-Request"
	case "accept":
		return "Accept"
	case "x-amzn-sagemaker-custom-attributes":
		return "X-Amzn-Sagemaker-Custom-Attributes"
	}
	return http.CanonicalHeaderKey(lower)
}

// headerValues returns every value of a header, by its lowercase name. Go's
// server stores valid names in canonical form; a name it could not
// canonicalise is matched case-insensitively.
func headerValues(h http.Header, lower string) []string {
	if vs, ok := h[canonicalKey(lower)]; ok {
		return vs
	}
	var vals []string
	for k, vs := range h {
		if strings.EqualFold(k, lower) {
			vals = append(vals, vs...)
		}
	}
	return vals
}

// movedHeader returns the value of a header that Go's server takes out of
// r.Header.
func movedHeader(r *http.Request, name string) []string {
	switch name {
	case "content-length":
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	return nil
}

// headerNormaliser rewrites signed header values the way a client's signer
// did before signing.
type headerNormaliser func(http.Header) http.Header

// headerNormalisers returns the normalisations to try. SDKs trim values and
// collapse runs of spaces; botocore and the JavaScript SDK collapse runs of
// any whitespace while the Go SDK collapses only spaces, so the second
// variant is tried only when the two differ for this request.
func headerNormalisers(h http.Header) []headerNormaliser {
	if alreadyNormal(h) {
		return []headerNormaliser{func(h http.Header) http.Header { return h }}
	}
	spaces := mapValues(collapseSpaces)
	for _, vs := range h {
		for _, v := range vs {
			if collapseSpaces(v) != collapseWhitespace(v) {
				return []headerNormaliser{mapValues(collapseWhitespace), spaces}
			}
		}
	}
	return []headerNormaliser{spaces}
}

// alreadyNormal reports whether no value has whitespace any normalisation
// would change: none at either end, no tab, no run of spaces, no non-ASCII.
func alreadyNormal(h http.Header) bool {
	for _, vs := range h {
		for _, v := range vs {
			if v == "" {
				continue
			}
			if isSpace(v[0]) || isSpace(v[len(v)-1]) || strings.Contains(v, "  ") || strings.ContainsAny(v, "\t\n\r\v\f") {
				return false
			}
			for i := 0; i < len(v); i++ {
				if v[i] >= 0x80 { // Unicode spaces count for some clients
					return false
				}
			}
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// mapValues returns a normaliser applying f to every value.
func mapValues(f func(string) string) headerNormaliser {
	return func(h http.Header) http.Header {
		out := make(http.Header, len(h))
		for k, vs := range h {
			nv := make([]string, len(vs))
			for i, v := range vs {
				nv[i] = f(v)
			}
			out[k] = nv
		}
		return out
	}
}

// collapseSpaces trims a value and collapses runs of spaces (Go SDK).
func collapseSpaces(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	prevSpace := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' && prevSpace {
			continue
		}
		prevSpace = c == ' '
		b.WriteByte(c)
	}
	return b.String()
}

// collapseWhitespace trims a value and collapses runs of any whitespace into
// one space (botocore, JavaScript SDK).
func collapseWhitespace(v string) string {
	return strings.Join(strings.Fields(v), " ")
}
