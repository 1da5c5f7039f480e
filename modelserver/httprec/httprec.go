// Package httprec records what a model server answered (status, bytes,
// rows predicted, error message), for the server's one-line request log.
package httprec

import "net/http"

// Recorder is a ResponseWriter that records its answer. Handlers further
// down find it with a type assertion to fill in Rows and Err.
type Recorder struct {
	http.ResponseWriter
	Status      int    // the status written (200 when only a body was)
	Bytes       int64  // body bytes written
	Rows        int    // rows predicted, when the handler says
	Err         string // the error answered, when the handler says
	wroteHeader bool
}

// New wraps w.
func New(w http.ResponseWriter) *Recorder {
	return &Recorder{ResponseWriter: w, Status: http.StatusOK}
}

// WriteHeader records the first status.
func (r *Recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.Status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write counts the body's bytes.
func (r *Recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap is for http.ResponseController.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// NoteError records the message of an error answer (mms.ErrorNoter).
func (r *Recorder) NoteError(msg string) { r.Err = msg }
