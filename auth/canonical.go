package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// headerSignature returns the signature of a header-signed request exactly
// as the AWS signer (smithy-go aws-http-auth sigv4, which expectedSignature
// calls) computes it for the same input: the same canonical request (method,
// doubly escaped path, sorted query, the signed headers lower-cased, sorted,
// values trimmed and joined with commas, Host and X-Amz-Date set from the
// request and its signing time), string to sign and HMAC. It differs in
// cost only: one buffer, and the signing key, four HMACs deep, derived once
// per secret, day, region and service and kept in keys.
// FuzzHeaderSignatureMatchesSigner holds the two to the same answers.
func headerSignature(keys *signingKeys, r *http.Request, req *signedRequest, secret string, payloadHash []byte, headers http.Header) string {
	tm := req.date.UTC()
	var dates [len(amzDateFormat)]byte
	amzDate := tm.AppendFormat(dates[:0], amzDateFormat)
	day := amzDate[:8]

	cb := canonBufs.Get().(*canonBuf)
	defer canonBufs.Put(cb)
	b := append(cb.b[:0], r.Method...)
	b = append(b, '\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b = appendURIEncode(b, path)
	b = append(b, '\n')
	if r.URL.RawQuery != "" {
		q, _ := url.ParseQuery(r.URL.RawQuery) // as url.URL.Query: what parses
		b = appendCanonicalQuery(b, q)
	}
	b = append(b, '\n')

	// The signer sets Host and X-Amz-Date before collecting the headers it
	// signs: every other header passed in, plus those two.
	names := append(cb.names[:0], headerName{lower: "host", set: true}, headerName{lower: "x-amz-date", set: true})
	for k := range headers {
		if k == "Host" || k == "X-Amz-Date" {
			continue
		}
		names = append(names, headerName{lower: strings.ToLower(k), key: k})
	}
	names = slices.DeleteFunc(names, func(n headerName) bool { return !headerSet(req.SignedHeaders).IsSigned(n.lower) })
	slices.SortFunc(names, func(a, b headerName) int { return strings.Compare(a.lower, b.lower) })
	for _, n := range names {
		b = append(b, n.lower...)
		b = append(b, ':')
		switch {
		case n.set && n.lower == "host":
			b = append(b, strings.TrimSpace(r.Host)...)
		case n.set:
			b = append(b, amzDate...)
		default:
			for j, v := range headers[n.key] {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, strings.TrimSpace(v)...)
			}
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, n := range names {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, n.lower...)
	}
	b = append(b, '\n')
	if string(payloadHash) == unsignedPayload {
		b = append(b, payloadHash...)
	} else {
		b = hex.AppendEncode(b, payloadHash)
	}
	canonicalHash := sha256.Sum256(b)

	b = append(b[:0], algorithm+"\n"...)
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = append(b, day...)
	b = append(b, '/')
	b = append(b, req.Scope.Region...)
	b = append(b, '/')
	b = append(b, req.Scope.Service...)
	b = append(b, "/"+scopeTerminator+"\n"...)
	b = hex.AppendEncode(b, canonicalHash[:])

	macs := keys.get(secret, string(day), req.Scope.Region, req.Scope.Service)
	mac := macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(b)
	var sum [sha256.Size]byte
	sig := hex.EncodeToString(mac.Sum(sum[:0]))
	macs.Put(mac)
	cb.b, cb.names = b, names
	return sig
}

type headerName struct {
	lower string // the name as signed
	key   string // its key in the header map
	set   bool   // Host or X-Amz-Date, whose values the signer sets
}

type canonBuf struct {
	b     []byte
	names []headerName
}

var canonBufs = sync.Pool{New: func() any { return &canonBuf{b: make([]byte, 0, 1024)} }}

// appendURIEncode escapes every byte but unreserved characters and '/', as
// the signer does to the already escaped path (SageMaker's double escape).
func appendURIEncode(b []byte, s string) []byte {
	const upperhex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return b
}

// appendCanonicalQuery writes the query as the signer does: every key and
// value escaped (spaces as %20), sorted by key then value, joined with &.
func appendCanonicalQuery(b []byte, q url.Values) []byte {
	type param struct{ key, value string }
	var params []param
	for k, vs := range q {
		ek := escapeQueryComponent(k)
		for _, v := range vs {
			params = append(params, param{ek, escapeQueryComponent(v)})
		}
	}
	slices.SortFunc(params, func(a, b param) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range params {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.key...)
		b = append(b, '=')
		b = append(b, p.value...)
	}
	return b
}

func escapeQueryComponent(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// signingKeys keeps derived SigV4 signing keys, each as a pool of HMACs
// keyed with it (an HMAC's key schedule costs two SHA-256 blocks). The zero
// value is ready.
type signingKeys struct {
	mu sync.RWMutex
	m  map[signingKeyID]*sync.Pool
}

type signingKeyID struct{ secret, day, region, service string }

// maxSigningKeys bounds the cache; past it, the cache starts over.
const maxSigningKeys = 1024

// get returns HMAC-SHA256s keyed with the signing key of a secret for a day
// (YYYYMMDD), region and service: the HMAC chain "AWS4"+secret → day →
// region → service → aws4_request.
func (k *signingKeys) get(secret, day, region, service string) *sync.Pool {
	id := signingKeyID{secret, day, region, service}
	k.mu.RLock()
	macs, ok := k.m[id]
	k.mu.RUnlock()
	if ok {
		return macs
	}
	key := hmacSHA256([]byte("AWS4"+secret), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, scopeTerminator)
	macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	k.mu.Lock()
	if k.m == nil || len(k.m) >= maxSigningKeys {
		k.m = map[signingKeyID]*sync.Pool{}
	}
	k.m[id] = macs
	k.mu.Unlock()
	return macs
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}
