package main

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"bridge/auth"
	"bridge/metrics"
)

// requestRecord collects what the request log line says about one request.
type requestRecord struct {
	user   string
	status int
	bytes  int64
}

type recordKey struct{}

func recordFrom(ctx context.Context) *requestRecord {
	r, _ := ctx.Value(recordKey{}).(*requestRecord)
	return r
}

// recordingWriter notes the status and body size of a response.
type recordingWriter struct {
	http.ResponseWriter
	rec *requestRecord
}

func (w *recordingWriter) WriteHeader(status int) {
	if w.rec.status == 0 {
		w.rec.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.rec.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the server's own ReadFrom reachable, which sends files
// with sendfile(2) when the source is an *os.File.
func (w *recordingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.rec.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// requestLog writes one line per request: method, path (without query:
// signed URLs and tokens never travel in ours, but a client may put
// anything there), status, bytes, duration, user and remote. Remote is the
// client as throttling sees it: behind a trusted proxy the address its
// X-Forwarded-For names, with the proxy's connection as peer, so that a
// log behind a proxy does not show the proxy alone; otherwise the
// connection's address and port. The Authorization header is never logged.
func requestLog(next http.Handler, log zerolog.Logger, mtr *metrics.Metrics, proxies *auth.Proxies) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &requestRecord{}
		ctx := context.WithValue(r.Context(), recordKey{}, rec)
		body := &countingBody{ReadCloser: r.Body}
		r2 := r.WithContext(ctx)
		r2.Body = body
		next.ServeHTTP(&recordingWriter{ResponseWriter: w, rec: rec}, r2)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		mtr.ObserveRequest(r.Method, status, time.Since(start), body.n, rec.bytes)
		ev := log.Info()
		if status >= 500 {
			ev = log.Warn()
		}
		ev = ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).
			Int64("bytes", rec.bytes).Dur("duration", time.Since(start)).
			Str("user", rec.user)
		if client := proxies.Client(r); client.Forwarded {
			ev = ev.Str("remote", client.IP).Str("peer", r.RemoteAddr)
		} else {
			ev = ev.Str("remote", r.RemoteAddr)
		}
		ev.Msg("request")
	})
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}
