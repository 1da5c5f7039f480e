// Package logstream owns the per-instance container logs: where each log
// stream lives on disk (laid out like CloudWatch's log group
// /aws/sagemaker/Endpoints/ENDPOINT with streams VARIANT/INSTANCE-ID, and
// VARIANT/INSTANCE-ID/CONTAINER for multi-container models), listing an
// endpoint's streams, and reading or following them.
package logstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
)

// groupDir is the directory of an endpoint's log group.
func groupDir(root string, key sagehost.EndpointKey) string {
	return filepath.Join(root, key.Account, key.Region, "aws", "sagemaker", "Endpoints", key.Name)
}

// StreamName returns the name of an instance's log stream:
// VARIANT/INSTANCE-ID, plus /CONTAINER for a container of a
// multi-container model (container "" for a lone container).
func StreamName(variant, instanceID, container string) string {
	if container == "" {
		return variant + "/" + instanceID
	}
	return variant + "/" + instanceID + "/" + container
}

// Path returns the file of one log stream.
func Path(root string, key sagehost.EndpointKey, variant, instanceID, container string) string {
	return filepath.Join(groupDir(root, key), filepath.FromSlash(StreamName(variant, instanceID, container))) + ".log"
}

// Stream is one log stream of an endpoint.
type Stream struct {
	Name    string // VARIANT/INSTANCE-ID[/CONTAINER], as in a LogStreamArn
	Variant string
	Path    string
	ModTime time.Time
}

// List returns an endpoint's log streams (also of instances that are gone),
// oldest first.
func List(root string, key sagehost.EndpointKey) ([]Stream, error) {
	dir := groupDir(root, key)
	var out []Stream
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(strings.TrimSuffix(rel, ".log"))
		info, err := d.Info()
		if err != nil {
			return err
		}
		variant, _, _ := strings.Cut(name, "/")
		out = append(out, Stream{Name: name, Variant: variant, Path: p, ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list log streams of %s: %w", key.Name, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ModTime.Equal(out[j].ModTime) {
			return out[i].ModTime.Before(out[j].ModTime)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Tail returns up to the last n non-empty lines of a file, joined by " | "
// and cut to at most max bytes, or "" when the file is missing or empty.
func Tail(path string, n, max int) string {
	lines, _ := lastLines(path, n)
	out := strings.Join(lines, " | ")
	if len(out) > max {
		out = "..." + out[len(out)-max:]
	}
	return out
}

// lastLines returns up to the last n non-empty lines of a file, and the
// offset where its read ended (what follows is new).
func lastLines(path string, n int) ([]string, int64) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	defer f.Close()
	const window = 64 << 10
	var start int64
	if st, err := f.Stat(); err == nil && st.Size() > window {
		if start, err = f.Seek(st.Size()-window, io.SeekStart); err != nil {
			start = 0
		}
	}
	b, _ := io.ReadAll(io.LimitReader(f, window))
	var lines []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		if s := strings.TrimRight(string(l), "\r"); strings.TrimSpace(s) != "" {
			lines = append(lines, s)
		}
	}
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, start + int64(len(b))
}

// Options selects and shapes what Write writes.
type Options struct {
	Variant string // only this variant's streams
	Stream  string // only this stream (a LogStreamArn's stream name)
	Tail    int    // only the last Tail lines of each stream (<0: all)
	Follow  bool   // keep writing new lines until ctx ends
	// Poll is how often a follow looks for new lines (default 250ms).
	Poll time.Duration
	// Listed are the endpoint's streams as List returned them just
	// before, for Write's first pass (nil: Write lists them).
	Listed []Stream
}

// Write writes an endpoint's logs to w, each line prefixed with its stream
// name. With Follow it then writes lines as they are appended, from new
// instances too, until ctx ends. flush is called after each batch.
func Write(ctx context.Context, w io.Writer, flush func(), root string, key sagehost.EndpointKey, opt Options) error {
	if opt.Poll <= 0 {
		opt.Poll = 250 * time.Millisecond
	}
	offsets := map[string]int64{}
	first := true
	for {
		var streams []Stream
		var err error
		if first && opt.Listed != nil {
			streams = opt.Listed
		} else if streams, err = List(root, key); err != nil {
			return err
		}
		for _, s := range streams {
			if (opt.Variant != "" && s.Variant != opt.Variant) || (opt.Stream != "" && s.Name != opt.Stream) {
				continue
			}
			off, seen := offsets[s.Path]
			if !seen && first && opt.Tail >= 0 {
				// Follow on from where the tail's read ended, so that no
				// line appended meanwhile is skipped.
				var lines []string
				lines, off = lastLines(s.Path, opt.Tail)
				for _, l := range lines {
					fmt.Fprintf(w, "%s %s\n", s.Name, l)
				}
			} else {
				off, err = copyFrom(w, s, off)
				if err != nil {
					return err
				}
			}
			offsets[s.Path] = off
		}
		if flush != nil {
			flush()
		}
		first = false
		if !opt.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opt.Poll):
		}
	}
}

// copyFrom writes the complete lines of a stream after offset and returns
// the offset after them.
func copyFrom(w io.Writer, s Stream, offset int64) (int64, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return offset, nil // gone meanwhile
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset, nil
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return offset, nil // a partial last line waits for its newline
		}
		offset += int64(len(line))
		if _, err := fmt.Fprintf(w, "%s %s", s.Name, line); err != nil {
			return offset, fmt.Errorf("write log: %w", err)
		}
	}
}
