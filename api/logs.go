package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/logstream"
)

// serveLogs serves GET /logs/{EndpointName}: the container logs of one of
// the caller's endpoints, each line prefixed with its log stream name
// (VARIANT/INSTANCE-ID, the stream a ModelError's LogStreamArn names).
// Query: variant=V, stream=VARIANT/INSTANCE-ID, tail=N (last N lines of each
// stream), follow=true (keep streaming new lines).
func (h *Handler) serveLogs(w http.ResponseWriter, r *http.Request) {
	caller, err := h.Auth.Verify(r, nil)
	if err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	name, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/logs/"))
	if err != nil || name == "" || strings.Contains(name, "/") || strings.Contains(name, "..") {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeValidationError, "GET /logs/{EndpointName} takes one endpoint name."))
		return
	}
	q := r.URL.Query()
	opt := logstream.Options{Variant: q.Get("variant"), Stream: q.Get("stream"), Tail: -1, Follow: q.Get("follow") == "true" || q.Get("follow") == "1"}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeValidationError, "tail must be a number of lines, not %q.", t))
			return
		}
		opt.Tail = n
	}
	key := sagehost.EndpointKey{Account: caller.Account, Region: caller.Region, Name: name}
	streams, err := logstream.List(h.LogDir, key)
	if err != nil {
		writeRuntimeError(w, h.Logger, err)
		return
	}
	if len(streams) == 0 && !opt.Follow {
		writeRuntimeError(w, h.Logger, sagehost.Errorf(sagehost.CodeValidationError, "Endpoint %s of account %s has no log streams.", name, caller.Account))
		return
	}
	opt.Listed = streams
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	if err := logstream.Write(r.Context(), w, flush, h.LogDir, key, opt); err != nil {
		h.Logger.Warn("serve logs", "endpoint", name, "err", err)
	}
}
