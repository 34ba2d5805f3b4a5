package davfs

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"
)

// delegated collects what x/net's handler does not say: the error behind
// its answer (webdav.Handler.Logger) and a failure of the file it creates
// for a LOCK on a new name, whose Close error it drops.
type delegated struct {
	err      error // x/net's error for its answer
	closeErr error // creating the locked empty file failed
}

type delegatedKey struct{}

func delegatedFrom(ctx context.Context) *delegated {
	d, _ := ctx.Value(delegatedKey{}).(*delegated)
	return d
}

// noteDelegated is the webdav.Handler's Logger: it keeps the error for
// the request being served.
func noteDelegated(r *http.Request, err error) {
	if d := delegatedFrom(r.Context()); d != nil && err != nil {
		d.err = err
	}
}

// heldAnswer holds a LOCK answer back until it is known to be true.
type heldAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldAnswer) Header() http.Header { return h.header }
func (h *heldAnswer) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(p)
}
func (h *heldAnswer) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// serveLock runs x/net's LOCK with its answer held back (a lock answer is
// a few hundred bytes). A provider failure, in the lookup or in creating
// the empty file a LOCK on a new name makes, becomes its mapped status
// (502, 503 with Retry-After, 504) and a log line, instead of x/net's bare
// 500, or a 201 for a file that was never made (the lock is then
// released).
func (s *Server) serveLock(w http.ResponseWriter, r *http.Request, t target) {
	d := &delegated{}
	r = r.WithContext(context.WithValue(r.Context(), delegatedKey{}, d))
	held := &heldAnswer{header: http.Header{}}
	s.delegate(held, r, t)
	err := d.closeErr
	if err == nil && held.status == http.StatusInternalServerError {
		err = d.err
	}
	if err != nil {
		if tok := strings.Trim(held.header.Get("Lock-Token"), "<>"); tok != "" {
			s.ls.Unlock(time.Now(), tok)
		}
		s.logFailure(r, err)
		writeError(w, err)
		return
	}
	for k, v := range held.header {
		w.Header()[k] = v
	}
	if held.status != 0 {
		w.WriteHeader(held.status)
	}
	w.Write(held.body.Bytes())
}
