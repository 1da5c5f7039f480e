package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// algorithm is the only signing algorithm sagehost accepts.
	algorithm = "AWS4-HMAC-SHA256"
	// scopeTerminator ends every SigV4 credential scope.
	scopeTerminator = "aws4_request"
	// maxPresignExpires is the longest X-Amz-Expires AWS allows, in seconds.
	maxPresignExpires = 604800
)

// Names of the presigned-request query parameters.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
	querySecurityToken = "X-Amz-Security-Token"
)

// credentialScope is the scope part of a SigV4 credential:
// <date>/<region>/<service>/aws4_request.
type credentialScope struct {
	Date, Region, Service, Terminator string
}

// authorization is what a SigV4 signature names, wherever it was sent: the
// access key, its scope, the headers the client signed and the signature.
type authorization struct {
	AccessKeyID   string
	Scope         credentialScope
	SignedHeaders []string // lowercase, in the order sent
	Signature     string
}

// presignedQuery is authorization plus the other parameters of a presigned
// request's query string.
type presignedQuery struct {
	authorization
	Date    string // X-Amz-Date as sent
	Expires int    // X-Amz-Expires, seconds
}

// Kinds of malformed signature; every error that parseAuthorization or
// parsePresigned returns wraps exactly one of these (or, for several missing
// parameters, joins several).
var (
	errNotSigV4             = errors.New("authorization is not AWS Signature Version 4")
	errUnsupportedAlgorithm = errors.New("unsupported signing algorithm")
	errMalformedPair        = errors.New("malformed key=value pair")
	errDuplicateParameter   = errors.New("parameter given more than once")
	errMissingCredential    = errors.New("missing Credential parameter")
	errMissingSignedHeaders = errors.New("missing SignedHeaders parameter")
	errMissingSignature     = errors.New("missing Signature parameter")
	errMalformedCredential  = errors.New("malformed credential")
	errEmptySignedHeader    = errors.New("empty header name in signed headers")
	errMissingQueryParam    = errors.New("missing presign query parameter")
	errInvalidExpires       = errors.New("invalid X-Amz-Expires")
)

// malformedError is one defect of a signature as sent; msg is the text AWS
// answers it with.
type malformedError struct {
	kind error
	msg  string
}

func (e *malformedError) Error() string { return e.msg }
func (e *malformedError) Unwrap() error { return e.kind }

func malformed(kind error, format string, args ...any) *malformedError {
	return &malformedError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// isMissingParameter reports whether kind is a missing Authorization
// parameter, the defects AWS reports together with a missing date.
func isMissingParameter(kind error) bool {
	return kind == errNotSigV4 || kind == errMissingCredential ||
		kind == errMissingSignedHeaders || kind == errMissingSignature
}

// missingParameterMessage is AWS's text for a missing Authorization parameter.
func missingParameterMessage(name string) string {
	return fmt.Sprintf("Authorization header requires '%s' parameter.", name)
}

// parseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, SignedHeaders=<a;b>, Signature=<hex>
//
// Parameters are separated by commas and/or spaces, as AWS accepts. Each
// defect gives its own error (see the err* kinds); several missing
// parameters are joined with errors.Join.
func parseAuthorization(header string) (authorization, error) {
	first, rest := nextField(header)
	if first == "" || !strings.HasPrefix(first, "AWS4-") {
		return authorization{}, malformed(errNotSigV4, "%s %s %s",
			missingParameterMessage("Credential"), missingParameterMessage("Signature"), missingParameterMessage("SignedHeaders"))
	}
	if first != algorithm {
		return authorization{}, malformed(errUnsupportedAlgorithm, "Unsupported AWS 'algorithm': '%s'.", echo(first))
	}
	var p authorizationParams
	for {
		var f string
		if f, rest = nextField(rest); f == "" {
			break
		}
		if err := p.add(header, f); err != nil {
			return authorization{}, err
		}
	}
	if err := p.require(); err != nil {
		return authorization{}, err
	}
	return buildAuthorization(p.credential, p.signedHeaders, p.signature)
}

// nextField returns the first field of s, fields being separated by runs of
// commas, spaces and tabs, and what follows it.
func nextField(s string) (field, rest string) {
	isSep := func(c byte) bool { return c == ' ' || c == ',' || c == '\t' }
	i := 0
	for i < len(s) && isSep(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isSep(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// authorizationParams are the key=value parameters of an Authorization
// header. Unknown keys are kept only to find duplicates.
type authorizationParams struct {
	credential, signedHeaders, signature string
	seen                                 [3]bool
	others                               map[string]bool
}

// add records one key=value field of header.
func (p *authorizationParams) add(header, f string) error {
	key, value, ok := strings.Cut(f, "=")
	if !ok {
		return malformed(errMalformedPair,
			"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", echo(f), echo(header))
	}
	var dup bool
	switch key {
	case "Credential":
		dup, p.seen[0], p.credential = p.seen[0], true, value
	case "SignedHeaders":
		dup, p.seen[1], p.signedHeaders = p.seen[1], true, value
	case "Signature":
		dup, p.seen[2], p.signature = p.seen[2], true, value
	default:
		if p.others == nil {
			p.others = map[string]bool{}
		}
		dup, p.others[key] = p.others[key], true
	}
	if dup {
		return malformed(errDuplicateParameter, "Authorization header has '%s' parameter more than once.", echo(key))
	}
	return nil
}

// require reports every missing (or empty) required parameter, in AWS's
// order.
func (p *authorizationParams) require() error {
	var missing []error
	for _, r := range []struct {
		name, value string
		kind        error
	}{
		{"Credential", p.credential, errMissingCredential},
		{"Signature", p.signature, errMissingSignature},
		{"SignedHeaders", p.signedHeaders, errMissingSignedHeaders},
	} {
		if r.value == "" {
			missing = append(missing, malformed(r.kind, "%s", missingParameterMessage(r.name)))
		}
	}
	return errors.Join(missing...)
}

// buildAuthorization parses the credential and signed-header list.
func buildAuthorization(credential, signedHeaders, signature string) (authorization, error) {
	key, scope, err := parseCredential(credential)
	if err != nil {
		return authorization{}, err
	}
	headers, err := parseSignedHeaders(signedHeaders)
	if err != nil {
		return authorization{}, err
	}
	return authorization{AccessKeyID: key, Scope: scope, SignedHeaders: headers, Signature: signature}, nil
}

// parseCredential splits <key>/<date>/<region>/<service>/<terminator>. Only
// the shape is checked here; the scope's values are checked against the
// request by the verifier.
func parseCredential(credential string) (string, credentialScope, error) {
	var parts [5]string
	rest, n := credential, 0
	for ; n < len(parts); n++ {
		var ok bool
		if parts[n], rest, ok = strings.Cut(rest, "/"); !ok {
			break
		}
	}
	if n != len(parts)-1 || parts[0] == "" {
		return "", credentialScope{}, malformed(errMalformedCredential,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", echo(credential))
	}
	return parts[0], credentialScope{Date: parts[1], Region: parts[2], Service: parts[3], Terminator: parts[4]}, nil
}

// parseSignedHeaders splits a semicolon-separated header list and lowercases
// the names.
func parseSignedHeaders(list string) ([]string, error) {
	names := strings.Split(list, ";")
	for i, n := range names {
		if n == "" {
			return nil, malformed(errEmptySignedHeader, "SignedHeaders must be a ';'-separated list of header names, got '%s'.", echo(list))
		}
		names[i] = strings.ToLower(n)
	}
	return names, nil
}

// isPresigned reports whether a query string carries a presigned SigV4
// signature (any of its identifying parameters).
func isPresigned(q url.Values) bool {
	return q.Has(queryAlgorithm) || q.Has(queryCredential) || q.Has(querySignature)
}

// parsePresigned parses the SigV4 parameters of a presigned request's query.
func parsePresigned(q url.Values) (presignedQuery, error) {
	if err := requireQueryParams(q); err != nil {
		return presignedQuery{}, err
	}
	if alg := q.Get(queryAlgorithm); alg != algorithm {
		return presignedQuery{}, malformed(errUnsupportedAlgorithm, "Unsupported AWS 'algorithm': '%s'.", echo(alg))
	}
	auth, err := buildAuthorization(q.Get(queryCredential), q.Get(querySignedHeaders), q.Get(querySignature))
	if err != nil {
		return presignedQuery{}, err
	}
	expires, err := parseExpires(q.Get(queryExpires))
	if err != nil {
		return presignedQuery{}, err
	}
	return presignedQuery{authorization: auth, Date: q.Get(queryDate), Expires: expires}, nil
}

// requireQueryParams reports every missing presign parameter.
func requireQueryParams(q url.Values) error {
	var missing []error
	for _, name := range []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		if q.Get(name) == "" {
			missing = append(missing, malformed(errMissingQueryParam, "AWS query-string parameters must include '%s'.", name))
		}
	}
	return errors.Join(missing...)
}

// parseExpires parses X-Amz-Expires: whole seconds, 1 to 604800.
func parseExpires(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPresignExpires {
		return 0, malformed(errInvalidExpires,
			"X-Amz-Expires must be a whole number of seconds from 1 to %d, got '%s'.", maxPresignExpires, echo(s))
	}
	return n, nil
}

// maxEcho bounds how much client input an error message repeats.
const maxEcho = 512

// echo returns client input fit to repeat in an error message: at most
// maxEcho bytes of valid UTF-8.
func echo(s string) string {
	if len(s) > maxEcho {
		s = s[:maxEcho] + "..."
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}
