package docker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/sagehost/sagehost/backend/internal/instfiles"
)

// followLogs streams a container's stdout and stderr from the engine into
// its log file until the container has stopped and its output is drained,
// or the instance is no longer watched. It resumes after the last line
// that an earlier follower (of this or an earlier sagehost) wrote.
func (b *Backend) followLogs(inst *instance, cs containerState) {
	lw, err := openLogWriter(cs.LogPath, filepath.Join(b.instanceDir(inst.st.ID), cs.Name+".logpos"))
	if err != nil {
		b.log.Error("cannot write the container's log", "instance", inst.st.ID, "container", cs.Name, "err", err)
		return
	}
	defer lw.close()
	ctx := inst.ctx
	// copyLogs copies one stream of the container's logs from where the
	// log stands.
	copyLogs := func(follow bool) error {
		opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Timestamps: true}
		if since := lw.since(); !since.IsZero() {
			opts.Since = strconv.FormatInt(since.Unix(), 10) + "." + fmt.Sprintf("%09d", since.Nanosecond())
		}
		rc, err := b.cli.ContainerLogs(ctx, cs.ContainerID, opts)
		if err != nil {
			return err
		}
		defer rc.Close()
		lw.resume()
		_, err = stdcopy.StdCopy(lw.stream(), lw.stream(), rc)
		lw.flush()
		return err
	}
	backoff := 250 * time.Millisecond
	for {
		err := copyLogs(true)
		if ctx.Err() != nil || client.IsErrNotFound(err) {
			return
		}
		// The stream ended: normal once the container has stopped;
		// otherwise the engine hiccupped and we follow again.
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		info, ierr := b.cli.ContainerInspect(ictx, cs.ContainerID)
		cancel()
		if client.IsErrNotFound(ierr) {
			return
		}
		if ierr == nil && info.State != nil && !info.State.Running && !info.State.Restarting {
			// A following stream may end as the container stops, before
			// its last lines (Podman's does): read what is left once more.
			if err := copyLogs(false); err != nil && ctx.Err() == nil && !client.IsErrNotFound(err) {
				b.log.Warn("reading the end of a container's log", "instance", inst.st.ID, "container", cs.Name, "err", err)
			}
			return
		}
		if err != nil {
			b.log.Warn("following a container's log failed; retrying", "instance", inst.st.ID,
				"container", cs.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// logPosition is where a container's log stands: the timestamp of the last
// line written and how many lines written carried exactly that timestamp.
type logPosition struct {
	ts time.Time
	n  int
}

// posRecordSize is the fixed size of the position file's record, so that
// each update is one write in place.
const posRecordSize = 64

func (p logPosition) encode() []byte {
	rec := fmt.Sprintf("%s %d\n", p.ts.UTC().Format(time.RFC3339Nano), p.n)
	return []byte(rec + strings.Repeat(" ", max(0, posRecordSize-len(rec))))
}

func decodePosition(b []byte) (logPosition, bool) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return logPosition{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, f[0])
	n, nerr := strconv.Atoi(f[1])
	if err != nil || nerr != nil || n < 0 {
		return logPosition{}, false
	}
	return logPosition{ts: ts, n: n}, true
}

// logWriter turns the engine's timestamped lines into plain lines appended
// to the log file, skipping what was written before, and keeps the
// position file up to date after each write.
type logWriter struct {
	mu   sync.Mutex
	out  *os.File
	posf *os.File // nil when the position cannot be kept
	pos  logPosition
	// Skipping the lines of a resumed stream that were written already:
	// lines before pos.ts, and the first skip lines at pos.ts.
	catching bool
	skip     int
	bufs     map[*streamBuf]bool
}

// streamBuf collects one stream's partial line.
type streamBuf struct {
	lw  *logWriter
	buf []byte
}

func openLogWriter(logPath, posPath string) (*logWriter, error) {
	out, err := instfiles.OpenLog(logPath)
	if err != nil {
		return nil, err
	}
	lw := &logWriter{out: out, bufs: map[*streamBuf]bool{}}
	if err := os.MkdirAll(filepath.Dir(posPath), 0o700); err == nil {
		if raw, err := os.ReadFile(posPath); err == nil {
			lw.pos, _ = decodePosition(raw)
		}
		lw.posf, _ = os.OpenFile(posPath, os.O_RDWR|os.O_CREATE, 0o600)
	}
	return lw, nil
}

// since is where a new stream should start: the last line's timestamp
// (inclusive on the engines; the duplicates are skipped).
func (lw *logWriter) since() time.Time {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.pos.ts
}

// resume starts skipping what was written already.
func (lw *logWriter) resume() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.catching = !lw.pos.ts.IsZero()
	lw.skip = lw.pos.n
	lw.bufs = map[*streamBuf]bool{}
}

// stream returns a writer for one of the container's streams.
func (lw *logWriter) stream() *streamBuf {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	s := &streamBuf{lw: lw}
	lw.bufs[s] = true
	return s
}

// Write takes one frame of the engine's stream: one log message, or the
// piece of a long line, which has a timestamp of its own.
func (s *streamBuf) Write(p []byte) (int, error) {
	n := len(p)
	if len(s.buf) > 0 {
		// The rest of a line: drop the piece's own timestamp.
		if _, text, ok := splitTimestamp(p); ok {
			p = text
		}
	}
	s.buf = append(s.buf, p...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, s.buf[:i+1])
		s.buf = s.buf[i+1:]
	}
	if len(lines) > 0 {
		s.lw.write(lines)
	}
	if len(s.buf) == 0 {
		s.buf = nil // do not keep a large array alive
	}
	return n, nil
}

// flush writes the partial lines left at the end of a stream.
func (lw *logWriter) flush() {
	lw.mu.Lock()
	var rest [][]byte
	for s := range lw.bufs {
		if len(s.buf) > 0 {
			rest = append(rest, s.buf)
			s.buf = nil
		}
	}
	lw.mu.Unlock()
	if len(rest) > 0 {
		lw.write(rest)
	}
}

// write appends lines ("<RFC3339Nano timestamp> <text>") to the log, less
// their timestamps, skipping lines written before, then records the
// position.
func (lw *logWriter) write(lines [][]byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	var out []byte
	for _, line := range lines {
		ts, text, ok := splitTimestamp(line)
		if !ok {
			out = append(out, line...) // no timestamp: keep it as it is
			continue
		}
		if lw.catching {
			switch {
			case ts.Before(lw.pos.ts):
				continue
			case ts.Equal(lw.pos.ts) && lw.skip > 0:
				lw.skip--
				continue
			}
			lw.catching = false
		}
		switch {
		case ts.After(lw.pos.ts):
			lw.pos = logPosition{ts: ts, n: 1}
		case ts.Equal(lw.pos.ts):
			lw.pos.n++
		}
		out = append(out, text...)
	}
	if len(out) == 0 {
		return
	}
	lw.out.Write(out)
	if lw.posf != nil {
		lw.posf.WriteAt(lw.pos.encode(), 0)
	}
}

// splitTimestamp splits an engine log line into its timestamp and text.
func splitTimestamp(line []byte) (time.Time, []byte, bool) {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		// A line that is only a timestamp: an empty line of the container.
		tok := bytes.TrimRight(line, "\n")
		if ts, err := time.Parse(time.RFC3339Nano, string(tok)); err == nil {
			return ts, line[len(tok):], true
		}
		return time.Time{}, line, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(line[:i]))
	if err != nil {
		return time.Time{}, line, false
	}
	return ts, line[i+1:], true
}

func (lw *logWriter) close() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.out.Close()
	if lw.posf != nil {
		lw.posf.Close()
	}
}
