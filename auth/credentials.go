package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/ini.v1"
)

// Credential is an access key that requests may be signed with, and the AWS
// account that requests signed with it act as.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is optional. When set, requests signed with this key must
	// carry exactly this X-Amz-Security-Token. When empty, a token the request
	// carries is ignored (the signature still proves the secret).
	SessionToken string
	// Account is the 12-digit AWS account id of the caller.
	Account string
	// Expiration is optional. After it, requests signed with this key fail
	// with ExpiredTokenException.
	Expiration time.Time
}

// DevCredential is the documented development credential: access key
// "sagehost", secret "sagehost", account 000000000000. The server accepts it
// only when no credentials are configured and it listens on loopback.
var DevCredential = Credential{
	AccessKeyID:     "sagehost",
	SecretAccessKey: "sagehost",
	Account:         "000000000000",
}

// Keyring is the set of accepted credentials, indexed by access key id. It is
// safe for concurrent use: the set is an immutable snapshot that WatchFile
// replaces atomically.
type Keyring struct {
	keys atomic.Pointer[keySet]
}

// keySet is one immutable snapshot of a Keyring.
type keySet struct {
	byID  map[string]Credential
	first Credential // the first credential given (first profile of a file)
}

// NewKeyring returns a keyring holding creds. Every credential needs a
// non-empty access key id and secret and a 12-digit account id, and no two may
// share an access key id.
func NewKeyring(creds ...Credential) (*Keyring, error) {
	set, err := newKeySet(creds)
	if err != nil {
		return nil, err
	}
	k := &Keyring{}
	k.keys.Store(set)
	return k, nil
}

// snapshot returns the keyring's current key set, nil for a nil or zero
// Keyring.
func (k *Keyring) snapshot() *keySet {
	if k == nil {
		return nil
	}
	return k.keys.Load()
}

// Lookup returns the credential with the given access key id.
func (k *Keyring) Lookup(accessKeyID string) (Credential, bool) {
	set := k.snapshot()
	if set == nil {
		return Credential{}, false
	}
	c, ok := set.byID[accessKeyID]
	return c, ok
}

// Len returns the number of credentials in the keyring.
func (k *Keyring) Len() int {
	set := k.snapshot()
	if set == nil {
		return 0
	}
	return len(set.byID)
}

// First returns the first credential of the keyring (the first profile of a
// credentials file).
func (k *Keyring) First() (Credential, bool) {
	set := k.snapshot()
	if set == nil || len(set.byID) == 0 {
		return Credential{}, false
	}
	return set.first, true
}

// replace validates creds and swaps them in as the keyring's contents.
func (k *Keyring) replace(creds []Credential) error {
	set, err := newKeySet(creds)
	if err != nil {
		return err
	}
	k.keys.Store(set)
	return nil
}

// newKeySet validates creds and indexes them by access key id.
func newKeySet(creds []Credential) (*keySet, error) {
	set := &keySet{byID: make(map[string]Credential, len(creds))}
	for i, c := range creds {
		if err := validateCredential(c); err != nil {
			return nil, fmt.Errorf("credential %d: %w", i+1, err)
		}
		if _, dup := set.byID[c.AccessKeyID]; dup {
			return nil, fmt.Errorf("credential %d: duplicate access key id %q", i+1, c.AccessKeyID)
		}
		set.byID[c.AccessKeyID] = c
		if i == 0 {
			set.first = c
		}
	}
	return set, nil
}

// validateCredential checks the fields of one credential.
func validateCredential(c Credential) error {
	switch {
	case c.AccessKeyID == "":
		return errors.New("empty access key id")
	case strings.ContainsAny(c.AccessKeyID, "/,= \t\r\n"):
		return fmt.Errorf("access key id %q contains '/', ',', '=' or whitespace", c.AccessKeyID)
	case c.SecretAccessKey == "":
		return fmt.Errorf("access key id %q: empty secret access key", c.AccessKeyID)
	case !isAccountID(c.Account):
		return fmt.Errorf("access key id %q: account %q is not a 12-digit AWS account id", c.AccessKeyID, c.Account)
	}
	return nil
}

// isAccountID reports whether s is a 12-digit AWS account id.
func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Keys of a profile in a credentials file.
const (
	keyAccessKeyID       = "aws_access_key_id"
	keySecretAccessKey   = "aws_secret_access_key"
	keyAccountID         = "aws_account_id"
	keySessionToken      = "aws_session_token"
	keySessionExpiration = "aws_session_expiration"
)

// ParseCredentialsFile parses an AWS shared-credentials style INI file with
// one access key per profile:
//
//	[alice]
//	aws_access_key_id = AKIAEXAMPLE
//	aws_secret_access_key = secret
//	aws_account_id = 111122223333
//	aws_session_token = optional
//	aws_session_expiration = 2030-01-02T15:04:05Z   ; optional, RFC 3339
//
// Every profile needs the first three keys; other keys (region, output, ...)
// are ignored. A file without any profile, a key given twice, a profile given
// twice and an access key id used by two profiles are errors. Values are taken
// as written: no inline comments, quotes or interpolation.
func ParseCredentialsFile(data []byte) ([]Credential, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		InsensitiveKeys:           true,
		IgnoreInlineComment:       true,
		PreserveSurroundedQuote:   true,
		AllowShadows:              true,
		PreserveEmptyShadowValues: true,
		AllowNonUniqueSections:    true,
	}, data)
	if err != nil {
		return nil, fmt.Errorf("parse credentials file: %w", err)
	}
	var creds []Credential
	seenProfile := map[string]bool{}
	profileOfKey := map[string]string{}
	for _, sec := range f.Sections() {
		name := sec.Name()
		if name == ini.DefaultSection {
			if len(sec.Keys()) > 0 {
				return nil, fmt.Errorf("key %q is outside any [profile]", sec.Keys()[0].Name())
			}
			continue
		}
		if seenProfile[name] {
			return nil, fmt.Errorf("profile %q: defined more than once", name)
		}
		seenProfile[name] = true
		c, err := parseProfile(sec)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", name, err)
		}
		if other, dup := profileOfKey[c.AccessKeyID]; dup {
			return nil, fmt.Errorf("profile %q: access key id %q is already used by profile %q", name, c.AccessKeyID, other)
		}
		profileOfKey[c.AccessKeyID] = name
		creds = append(creds, c)
	}
	if len(creds) == 0 {
		return nil, errors.New("credentials file defines no profiles")
	}
	return creds, nil
}

// parseProfile reads the credential of one profile.
func parseProfile(sec *ini.Section) (Credential, error) {
	vals := map[string]string{}
	for _, k := range sec.Keys() {
		if n := len(k.ValueWithShadows()); n > 1 {
			return Credential{}, fmt.Errorf("%s is set %d times", k.Name(), n)
		}
		vals[k.Name()] = strings.TrimSpace(k.Value())
	}
	for _, req := range []string{keyAccessKeyID, keySecretAccessKey, keyAccountID} {
		if vals[req] == "" {
			return Credential{}, fmt.Errorf("missing %s", req)
		}
	}
	c := Credential{
		AccessKeyID:     vals[keyAccessKeyID],
		SecretAccessKey: vals[keySecretAccessKey],
		Account:         vals[keyAccountID],
		SessionToken:    vals[keySessionToken],
	}
	if exp := vals[keySessionExpiration]; exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return Credential{}, fmt.Errorf("%s %q is not an RFC 3339 time: %w", keySessionExpiration, exp, err)
		}
		c.Expiration = t
	}
	if !isAccountID(c.Account) {
		return Credential{}, fmt.Errorf("%s %q is not a 12-digit AWS account id", keyAccountID, c.Account)
	}
	if err := validateCredential(c); err != nil {
		return Credential{}, err
	}
	return c, nil
}

// LoadFile reads and parses a credentials file (see ParseCredentialsFile)
// into a keyring.
func LoadFile(path string) (*Keyring, error) {
	creds, err := readCredentialsFile(path)
	if err != nil {
		return nil, err
	}
	k, err := NewKeyring(creds...)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return k, nil
}

// readCredentialsFile reads and parses the credentials file at path.
func readCredentialsFile(path string) ([]Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials file: %w", err)
	}
	creds, err := ParseCredentialsFile(data)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return creds, nil
}
