package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
)

const (
	// DefaultService is the signing name of both SageMaker APIs.
	DefaultService = "sagemaker"
	// DefaultMaxSkew is how far a request's signing time may be from the
	// server's clock, either way.
	DefaultMaxSkew = 5 * time.Minute

	amzDateFormat   = "20060102T150405Z" // X-Amz-Date
	scopeDateFormat = "20060102"         // credential scope date
	unsignedPayload = "UNSIGNED-PAYLOAD"
)

// Client-visible messages that do not depend on the request.
const (
	msgMissingToken      = "Missing Authentication Token"
	msgInvalidToken      = "The security token included in the request is invalid."
	msgExpiredToken      = "The security token included in the request is expired"
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgMissingDate      = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
	msgHostNotSigned    = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgNonConforming    = "The request signature does not conform to AWS standards."
	msgContentHashWrong = "The provided 'x-amz-content-sha256' header does not match what was computed."
)

// Verifier authenticates SigV4-signed requests against a keyring.
type Verifier struct {
	Keys    *Keyring
	Service string           // signing name in the credential scope; "sagemaker" when empty
	MaxSkew time.Duration    // allowed clock skew; DefaultMaxSkew when zero
	Now     func() time.Time // clock; time.Now when nil

	signingKeys signingKeys
}

// signedRequest is the signature material of one request, whichever way it
// was sent.
type signedRequest struct {
	authorization
	presigned     bool
	date          time.Time     // signing time
	expires       time.Duration // presigned only
	securityToken string        // X-Amz-Security-Token as sent, if any
	// unsignedQuery is a presigned request's query without X-Amz-Signature,
	// encoded: the query the client signed.
	unsignedQuery string
}

// Verify authenticates a SigV4 request, header-signed (Authorization:
// AWS4-HMAC-SHA256 ...) or presigned (X-Amz-* query parameters). body is the
// complete request body the server read. It returns the caller: the account
// of the access key, the region of the credential scope (any region is
// accepted) and the access key id. Errors are *sagehost.Error with the AWS
// code and message.
func (v *Verifier) Verify(r *http.Request, body []byte) (sagehost.Caller, error) {
	if r == nil || r.URL == nil {
		return sagehost.Caller{}, sagehost.Errorf(sagehost.CodeMissingAuthToken, msgMissingToken)
	}
	req, err := extractSignature(r)
	if err != nil {
		return sagehost.Caller{}, err
	}
	if err := v.checkScope(req); err != nil {
		return sagehost.Caller{}, err
	}
	cred, err := v.lookupCredential(req.AccessKeyID)
	if err != nil {
		return sagehost.Caller{}, err
	}
	if err := checkSessionToken(cred, req.securityToken); err != nil {
		return sagehost.Caller{}, err
	}
	now := v.now()
	if err := v.checkTime(req, now); err != nil {
		return sagehost.Caller{}, err
	}
	hashes, err := payloadHashes(r.Header, body, req.presigned)
	if err != nil {
		return sagehost.Caller{}, err
	}
	if err := checkSignature(&v.signingKeys, r, req, cred, hashes); err != nil {
		return sagehost.Caller{}, err
	}
	if !cred.Expiration.IsZero() && now.After(cred.Expiration) {
		return sagehost.Caller{}, sagehost.Errorf(sagehost.CodeExpiredToken, msgExpiredToken)
	}
	return sagehost.Caller{Account: cred.Account, Region: req.Scope.Region, AccessKeyID: req.AccessKeyID}, nil
}

func (v *Verifier) service() string {
	if v.Service == "" {
		return DefaultService
	}
	return v.Service
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew <= 0 {
		return DefaultMaxSkew
	}
	return v.MaxSkew
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now().UTC()
	}
	return v.Now().UTC()
}

// extractSignature finds the request's signature: the Authorization header,
// else presign query parameters, else none (MissingAuthenticationToken).
func extractSignature(r *http.Request) (*signedRequest, error) {
	if h := headerValue(r.Header, "Authorization"); h != "" {
		return fromAuthorizationHeader(r, h)
	}
	if q := r.URL.Query(); isPresigned(q) {
		return fromPresignedQuery(r, q)
	}
	return nil, sagehost.Errorf(sagehost.CodeMissingAuthToken, msgMissingToken)
}

// fromAuthorizationHeader reads a header-signed request's signature and
// signing time.
func fromAuthorizationHeader(r *http.Request, header string) (*signedRequest, error) {
	auth, perr := parseAuthorization(header)
	amzDate, httpDate := headerValue(r.Header, "X-Amz-Date"), headerValue(r.Header, "Date")
	if err := incompleteAuthorization(header, perr, amzDate != "" || httpDate != ""); err != nil {
		return nil, err
	}
	if err := requireHostSigned(auth.SignedHeaders); err != nil {
		return nil, err
	}
	date, err := parseSigningTime(amzDate, httpDate)
	if err != nil {
		return nil, err
	}
	return &signedRequest{
		authorization: auth,
		date:          date,
		securityToken: headerValue(r.Header, "X-Amz-Security-Token"),
	}, nil
}

// incompleteAuthorization turns Authorization-header defects into AWS's
// IncompleteSignatureException. Missing parameters and a missing date are
// reported together, followed by the header, as AWS does; any other defect is
// reported alone.
func incompleteAuthorization(header string, perr error, hasDate bool) error {
	var problems []string
	for _, m := range malformations(perr) {
		if !isMissingParameter(m.kind) {
			return sagehost.Errorf(sagehost.CodeIncompleteSignature, "%s", m.msg)
		}
		problems = append(problems, m.msg)
	}
	if !hasDate {
		problems = append(problems, msgMissingDate)
	}
	if len(problems) == 0 {
		return nil
	}
	return sagehost.Errorf(sagehost.CodeIncompleteSignature, "%s Authorization=%s", strings.Join(problems, " "), echo(header))
}

// malformations flattens a parse error (possibly joined) into its defects.
func malformations(err error) []*malformedError {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var all []*malformedError
		for _, e := range joined.Unwrap() {
			all = append(all, malformations(e)...)
		}
		return all
	}
	if m, ok := err.(*malformedError); ok {
		return []*malformedError{m}
	}
	return []*malformedError{{kind: err, msg: msgNonConforming}}
}

// requireHostSigned checks that the client signed the Host header.
func requireHostSigned(signed []string) error {
	for _, h := range signed {
		if h == "host" {
			return nil
		}
	}
	return sagehost.Errorf(sagehost.CodeIncompleteSignature, msgHostNotSigned)
}

// parseSigningTime reads the signing time from X-Amz-Date (ISO 8601 basic
// format), or from the Date header when X-Amz-Date is absent.
func parseSigningTime(amzDate, httpDate string) (time.Time, error) {
	if amzDate != "" {
		return parseAmzDate(amzDate)
	}
	t, err := http.ParseTime(httpDate)
	if err != nil {
		return time.Time{}, sagehost.Errorf(sagehost.CodeIncompleteSignature,
			"Date header must be an HTTP date such as 'Mon, 02 Jan 2006 15:04:05 GMT'. Got '%s'.", echo(httpDate))
	}
	return t.UTC(), nil
}

// parseAmzDate parses an X-Amz-Date value exactly: it must read back the same.
func parseAmzDate(s string) (time.Time, error) {
	t, err := time.Parse(amzDateFormat, s)
	if err != nil || t.Format(amzDateFormat) != s {
		return time.Time{}, sagehost.Errorf(sagehost.CodeIncompleteSignature,
			"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", echo(s))
	}
	return t, nil
}

// fromPresignedQuery reads a presigned request's signature, signing time and
// expiry from its query string, parsed as q (which it may change).
func fromPresignedQuery(r *http.Request, q url.Values) (*signedRequest, error) {
	p, err := parsePresigned(q)
	if err != nil {
		var msgs []string
		for _, m := range malformations(err) {
			msgs = append(msgs, m.msg)
		}
		if len(msgs) > 1 || (len(msgs) == 1 && strings.HasPrefix(msgs[0], "AWS query-string")) {
			msgs = append(msgs, "Re-examine the query-string parameters.")
		}
		return nil, sagehost.Errorf(sagehost.CodeIncompleteSignature, "%s", strings.Join(msgs, " "))
	}
	if err := requireHostSigned(p.SignedHeaders); err != nil {
		return nil, err
	}
	date, err := parseAmzDate(p.Date)
	if err != nil {
		return nil, err
	}
	token := q.Get(querySecurityToken)
	if token == "" {
		token = r.Header.Get("X-Amz-Security-Token")
	}
	q.Del(querySignature)
	return &signedRequest{
		authorization: p.authorization,
		presigned:     true,
		date:          date,
		expires:       time.Duration(p.Expires) * time.Second,
		securityToken: token,
		unsignedQuery: q.Encode(),
	}, nil
}

// checkScope checks the credential scope against this service and the
// request's signing date. Any non-empty region is accepted.
func (v *Verifier) checkScope(req *signedRequest) error {
	s := req.Scope
	switch date := req.date.Format(scopeDateFormat); {
	case s.Service != v.service():
		return sagehost.Errorf(sagehost.CodeInvalidSignature, "Credential should be scoped to correct service: '%s'. ", v.service())
	case s.Terminator != scopeTerminator:
		return sagehost.Errorf(sagehost.CodeInvalidSignature,
			"Credential should be scoped with a valid terminator: '%s', not '%s'. ", scopeTerminator, echo(s.Terminator))
	case s.Region == "":
		return sagehost.Errorf(sagehost.CodeInvalidSignature, "Credential should be scoped to a valid region. ")
	case s.Date != date:
		return sagehost.Errorf(sagehost.CodeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			echo(s.Date), date, req.date.Format(amzDateFormat))
	}
	return nil
}

// lookupCredential finds the access key in the keyring.
func (v *Verifier) lookupCredential(accessKeyID string) (Credential, error) {
	cred, ok := v.Keys.Lookup(accessKeyID)
	if !ok {
		return Credential{}, sagehost.Errorf(sagehost.CodeUnrecognizedClient, msgInvalidToken)
	}
	return cred, nil
}

// checkSessionToken requires the credential's session token, if it has one.
func checkSessionToken(cred Credential, token string) error {
	if cred.SessionToken == "" {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(cred.SessionToken), []byte(token)) != 1 {
		return sagehost.Errorf(sagehost.CodeUnrecognizedClient, msgInvalidToken)
	}
	return nil
}

// checkTime enforces the clock: a header-signed request must be signed
// within MaxSkew of now, either way; a presigned one must not have expired
// and must not be signed more than MaxSkew in the future.
func (v *Verifier) checkTime(req *signedRequest, now time.Time) error {
	skew := v.maxSkew()
	if req.presigned {
		if earliest := now.Add(-req.expires); req.date.Before(earliest) {
			return sagehost.Errorf(sagehost.CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %d sec.)",
				req.date.Format(amzDateFormat), earliest.Format(amzDateFormat), now.Format(amzDateFormat), int64(req.expires/time.Second))
		}
	} else if earliest := now.Add(-skew); req.date.Before(earliest) {
		return sagehost.Errorf(sagehost.CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %s)",
			req.date.Format(amzDateFormat), earliest.Format(amzDateFormat), now.Format(amzDateFormat), formatSkew(skew))
	}
	if latest := now.Add(skew); req.date.After(latest) {
		return sagehost.Errorf(sagehost.CodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + %s)",
			req.date.Format(amzDateFormat), latest.Format(amzDateFormat), now.Format(amzDateFormat), formatSkew(skew))
	}
	return nil
}

// formatSkew writes a skew the way AWS's messages do ("5 min.").
func formatSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", int64(d/time.Minute))
	}
	return fmt.Sprintf("%d sec.", int64(d/time.Second))
}

// payloadHashes returns the payload hashes the client may have signed with.
// An X-Amz-Content-Sha256 header is the hash: UNSIGNED-PAYLOAD as is, or the
// hex SHA-256 of the body, which must match. Without it a header-signed
// request signs the body's hash, and a presigned one usually
// UNSIGNED-PAYLOAD (the body's hash is tried too). The body is hashed only
// when a hash of it is needed.
func payloadHashes(h http.Header, body []byte, presigned bool) ([][]byte, error) {
	vals := h.Values("X-Amz-Content-Sha256")
	if len(vals) == 0 {
		sum := sha256.Sum256(body)
		if presigned {
			return [][]byte{[]byte(unsignedPayload), sum[:]}, nil
		}
		return [][]byte{sum[:]}, nil
	}
	claimed := vals[0]
	if claimed == unsignedPayload {
		return [][]byte{[]byte(unsignedPayload)}, nil
	}
	decoded, err := hex.DecodeString(claimed)
	if err != nil || len(decoded) != sha256.Size {
		return nil, sagehost.Errorf(sagehost.CodeInvalidSignature,
			"The provided 'x-amz-content-sha256' header must be UNSIGNED-PAYLOAD or the hex SHA-256 of the request body, got '%s'.", echo(claimed))
	}
	if sum := sha256.Sum256(body); !bytes.Equal(decoded, sum[:]) {
		return nil, sagehost.Errorf(sagehost.CodeInvalidSignature, msgContentHashWrong)
	}
	return [][]byte{decoded}, nil
}

// headerValue is h.Get(key) for a key in canonical form (a lookup without
// canonicalising the key again).
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
