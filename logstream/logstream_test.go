package logstream

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLastLinesEndsWhereItsReadEnded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.log")
	data := strings.Repeat("0123456789abcdef\n", 5000) + "last\n" // over the 64 KiB window
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, off := lastLines(p, 2)
	if len(lines) != 2 || lines[1] != "last" || off != int64(len(data)) {
		t.Fatalf("lastLines = %q, %d; want 2 lines ending with \"last\", offset %d", lines, off, len(data))
	}
}

// TestWriteTailThenFollow: following after the tail writes every line
// appended after it, once.
func TestWriteTailThenFollow(t *testing.T) {
	root := t.TempDir()
	key := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "ep"}
	p := Path(root, key, "v", "i-1", "")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Write(ctx, &out, nil, root, key, Options{Tail: 1, Follow: true, Poll: 5 * time.Millisecond})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) { // the tail first
		time.Sleep(5 * time.Millisecond)
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("four\n")
	f.Close()
	want := "v/i-1 three\nv/i-1 four\n"
	for out.String() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

// TestListNamesStreamsAsStreamName: a stream's file (Path) is listed under
// the name StreamName gives it, for one container and for several.
func TestListNamesStreamsAsStreamName(t *testing.T) {
	root := t.TempDir()
	key := sagehost.EndpointKey{Account: "111111111111", Region: "us-east-1", Name: "ep"}
	want := map[string]bool{}
	for _, container := range []string{"", "c1"} {
		p := Path(root, key, "v", "i-"+container, container)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		want[StreamName("v", "i-"+container, container)] = true
	}
	streams, err := List(root, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if !want[s.Name] {
			t.Errorf("listed stream %q, want one of %v", s.Name, want)
		}
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Errorf("streams not listed: %v", want)
	}
}
