package auth

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseCredentialsFile(t *testing.T) {
	data := `
# sagehost credentials
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret/with+slash#and-hash
aws_account_id = 111122223333
region = us-east-1

[temp]
AWS_ACCESS_KEY_ID=ASIATEMP
aws_secret_access_key=tempsecret
aws_account_id=444455556666
aws_session_token = token==
aws_session_expiration = 2030-01-02T15:04:05Z
`
	creds, err := ParseCredentialsFile([]byte(data))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	want := []Credential{
		{AccessKeyID: "AKIDDEFAULT", SecretAccessKey: "secret/with+slash#and-hash", Account: "111122223333"},
		{AccessKeyID: "ASIATEMP", SecretAccessKey: "tempsecret", Account: "444455556666", SessionToken: "token==",
			Expiration: time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC)},
	}
	if len(creds) != len(want) {
		t.Fatalf("got %d credentials, want %d: %+v", len(creds), len(want), creds)
	}
	for i := range want {
		if creds[i].AccessKeyID != want[i].AccessKeyID || creds[i].SecretAccessKey != want[i].SecretAccessKey ||
			creds[i].Account != want[i].Account || creds[i].SessionToken != want[i].SessionToken ||
			!creds[i].Expiration.Equal(want[i].Expiration) {
			t.Errorf("credential %d = %+v, want %+v", i, creds[i], want[i])
		}
	}
}

func TestParseCredentialsFileErrors(t *testing.T) {
	profile := func(name, body string) string { return "[" + name + "]\n" + body + "\n" }
	full := "aws_access_key_id = AKID1\naws_secret_access_key = s\naws_account_id = 111122223333"
	cases := []struct {
		name string
		data string
		want []string // substrings of the error
	}{
		{name: "empty file", data: "# nothing\n", want: []string{"no profiles"}},
		{name: "missing access key", data: profile("p1", "aws_secret_access_key = s\naws_account_id = 111122223333"),
			want: []string{`profile "p1"`, "missing aws_access_key_id"}},
		{name: "missing secret", data: profile("p1", "aws_access_key_id = A\naws_account_id = 111122223333"),
			want: []string{`profile "p1"`, "missing aws_secret_access_key"}},
		{name: "missing account", data: profile("p1", "aws_access_key_id = A\naws_secret_access_key = s"),
			want: []string{`profile "p1"`, "missing aws_account_id"}},
		{name: "short account", data: profile("p1", "aws_access_key_id = A\naws_secret_access_key = s\naws_account_id = 12345"),
			want: []string{`profile "p1"`, `aws_account_id "12345" is not a 12-digit AWS account id`}},
		{name: "non-numeric account", data: profile("p1", "aws_access_key_id = A\naws_secret_access_key = s\naws_account_id = abcdefghijkl"),
			want: []string{`profile "p1"`, "not a 12-digit"}},
		{name: "bad expiration", data: profile("p1", full+"\naws_session_expiration = tomorrow"),
			want: []string{`profile "p1"`, `aws_session_expiration "tomorrow" is not an RFC 3339 time`}},
		{name: "access key with slash", data: profile("p1", "aws_access_key_id = A/B\naws_secret_access_key = s\naws_account_id = 111122223333"),
			want: []string{`profile "p1"`, "contains '/'"}},
		{name: "duplicate access key", data: profile("p1", full) + profile("p2", full),
			want: []string{`profile "p2"`, `access key id "AKID1" is already used by profile "p1"`}},
		{name: "duplicate profile", data: profile("p1", full) + profile("p1", strings.Replace(full, "AKID1", "AKID2", 1)),
			want: []string{`profile "p1"`, "defined more than once"}},
		{name: "duplicate key in profile", data: profile("p1", full+"\naws_secret_access_key = other"),
			want: []string{`profile "p1"`, "aws_secret_access_key is set 2 times"}},
		{name: "key outside profile", data: "aws_access_key_id = A\n" + profile("p1", full),
			want: []string{`key "aws_access_key_id" is outside any [profile]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := ParseCredentialsFile([]byte(tc.data))
			if err == nil {
				t.Fatalf("no error; parsed %+v", creds)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewKeyring(t *testing.T) {
	k, err := NewKeyring(testCred, tokenCred)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 2 {
		t.Errorf("Len = %d, want 2", k.Len())
	}
	if c, ok := k.Lookup(tokenCred.AccessKeyID); !ok || c.SessionToken != tokenCred.SessionToken {
		t.Errorf("Lookup(%s) = %+v, %v", tokenCred.AccessKeyID, c, ok)
	}
	if _, ok := k.Lookup("nope"); ok {
		t.Error("Lookup of unknown key succeeded")
	}
	var nilRing *Keyring
	if _, ok := nilRing.Lookup(testCred.AccessKeyID); ok || nilRing.Len() != 0 {
		t.Error("nil keyring is not empty")
	}

	bad := []struct {
		name string
		cred Credential
		want string
	}{
		{"empty key", Credential{SecretAccessKey: "s", Account: "111122223333"}, "empty access key id"},
		{"empty secret", Credential{AccessKeyID: "A", Account: "111122223333"}, "empty secret"},
		{"bad account", Credential{AccessKeyID: "A", SecretAccessKey: "s", Account: "1111222233334"}, "12-digit"},
		{"key with comma", Credential{AccessKeyID: "A,B", SecretAccessKey: "s", Account: "111122223333"}, "contains"},
	}
	for _, tc := range bad {
		if _, err := NewKeyring(tc.cred); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	if _, err := NewKeyring(testCred, testCred); err == nil || !strings.Contains(err.Error(), "duplicate access key id") {
		t.Errorf("duplicate keys: err = %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	if _, err := LoadFile(path); err == nil {
		t.Error("loading a missing file succeeded")
	}
	writeFileAtomic(t, path, credentialsFile(testCred, tokenCred))
	k, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 2 {
		t.Errorf("Len = %d, want 2", k.Len())
	}
	writeFileAtomic(t, path, "[broken]\naws_access_key_id = X\n")
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `profile "broken"`) {
		t.Errorf("err = %v, want it to name the file and the profile", err)
	}
}

func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	writeFileAtomic(t, path, credentialsFile(testCred))

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := WatchFile(ctx, path, 5*time.Millisecond, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Lookup(testCred.AccessKeyID); !ok {
		t.Fatal("initial key missing")
	}

	// Add a key: an editor writes a new file and renames it over the old.
	writeFileAtomic(t, path, credentialsFile(testCred, tokenCred))
	waitFor(t, "added key to appear", func() bool { _, ok := k.Lookup(tokenCred.AccessKeyID); return ok })

	// Revoke a key.
	writeFileAtomic(t, path, credentialsFile(tokenCred))
	waitFor(t, "revoked key to disappear", func() bool { _, ok := k.Lookup(testCred.AccessKeyID); return !ok })
	if _, ok := k.Lookup(tokenCred.AccessKeyID); !ok {
		t.Fatal("kept key was dropped")
	}

	// An in-place rewrite is noticed too.
	if err := os.WriteFile(path, []byte(credentialsFile(tokenCred, expiredCred)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "key written in place to appear", func() bool { _, ok := k.Lookup(expiredCred.AccessKeyID); return ok })

	// An invalid file is logged and the previous keys stay.
	const invalid = "credentials file invalid"
	before := strings.Count(logs.String(), invalid)
	writeFileAtomic(t, path, "[oops]\naws_access_key_id = X\n")
	waitFor(t, "invalid file to be logged", func() bool {
		out := logs.String()
		return strings.Count(out, invalid) > before && strings.Contains(out, `profile \"oops\"`)
	})
	if _, ok := k.Lookup(tokenCred.AccessKeyID); !ok || k.Len() != 2 {
		t.Fatalf("keys changed after an invalid file: len %d", k.Len())
	}

	// A removed file is logged and the keys stay.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "missing file to be logged", func() bool { return strings.Contains(logs.String(), "credentials file unavailable") })
	if k.Len() != 2 {
		t.Fatalf("keys changed after the file vanished: len %d", k.Len())
	}

	// It comes back, fixed.
	writeFileAtomic(t, path, credentialsFile(testCred))
	waitFor(t, "restored file to load", func() bool { _, ok := k.Lookup(testCred.AccessKeyID); return ok && k.Len() == 1 })

	// After cancel, changes are no longer applied. (Not asserted by timing:
	// the watcher goroutine simply must not race or panic; -race checks it.)
	cancel()
}

func TestWatchFileInvalidAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	if _, err := WatchFile(context.Background(), path, time.Second, nil); err == nil {
		t.Error("watching a missing file succeeded")
	}
	writeFileAtomic(t, path, "[x]\n")
	if _, err := WatchFile(context.Background(), path, time.Second, nil); err == nil {
		t.Error("watching an invalid file succeeded")
	}
}

// credentialsFile renders creds in the credentials-file format.
func credentialsFile(creds ...Credential) string {
	var b strings.Builder
	for i, c := range creds {
		b.WriteString("[profile-" + string(rune('a'+i)) + "]\n")
		b.WriteString("aws_access_key_id = " + c.AccessKeyID + "\n")
		b.WriteString("aws_secret_access_key = " + c.SecretAccessKey + "\n")
		b.WriteString("aws_account_id = " + c.Account + "\n")
		if c.SessionToken != "" {
			b.WriteString("aws_session_token = " + c.SessionToken + "\n")
		}
		if !c.Expiration.IsZero() {
			b.WriteString("aws_session_expiration = " + c.Expiration.Format(time.RFC3339) + "\n")
		}
	}
	return b.String()
}

// writeFileAtomic replaces path by renaming a new file over it.
func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
