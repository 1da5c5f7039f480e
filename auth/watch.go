package auth

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// defaultWatchInterval is how often WatchFile polls when given no interval.
const defaultWatchInterval = 2 * time.Second

// WatchFile loads the credentials file at path, then re-reads it whenever it
// changes, swapping the new keys in atomically so that keys can be added or
// revoked without a restart. It polls the file's modification time, size and
// identity (inode) every interval, so a file that an editor replaces by
// renaming a new one over it is noticed too. A file that becomes unreadable
// or invalid is logged and the previous keys stay in force. Watching stops
// when ctx ends. A nil logger means slog.Default().
func WatchFile(ctx context.Context, path string, interval time.Duration, logger *slog.Logger) (*Keyring, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if interval <= 0 {
		interval = defaultWatchInterval
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("watch credentials file: %w", err)
	}
	k, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	w := &fileWatcher{path: path, keys: k, logger: logger, last: info, statOK: true}
	go w.run(ctx, interval)
	return k, nil
}

// fileWatcher polls one credentials file and reloads a keyring from it.
type fileWatcher struct {
	path   string
	keys   *Keyring
	logger *slog.Logger
	last   os.FileInfo // the version of the file last read (loaded or rejected)
	statOK bool        // false while the file is missing, so that is logged once
}

// run polls until ctx ends.
func (w *fileWatcher) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll()
		}
	}
}

// poll reloads the file if it differs from the version last read.
func (w *fileWatcher) poll() {
	info, err := os.Stat(w.path)
	if err != nil {
		if w.statOK {
			w.logger.Warn("credentials file unavailable; keeping current keys", "path", w.path, "error", err)
		}
		w.statOK = false
		return
	}
	w.statOK = true
	if !changed(w.last, info) {
		return
	}
	w.last = info
	w.reload()
}

// reload reads the file and swaps in its keys, or logs why it cannot.
func (w *fileWatcher) reload() {
	creds, err := readCredentialsFile(w.path)
	if err == nil {
		err = w.keys.replace(creds)
	}
	if err != nil {
		w.logger.Error("credentials file invalid; keeping current keys", "path", w.path, "error", err)
		return
	}
	w.logger.Info("credentials reloaded", "path", w.path, "keys", len(creds))
}

// changed reports whether cur is a different version of the file than prev.
func changed(prev, cur os.FileInfo) bool {
	return !os.SameFile(prev, cur) ||
		!prev.ModTime().Equal(cur.ModTime()) ||
		prev.Size() != cur.Size()
}
