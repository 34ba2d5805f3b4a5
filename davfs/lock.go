package davfs

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/net/webdav"

	"bridge/auth"
	"bridge/davfs/locks"
)

// LOCK and UNLOCK are served here over the bridge's lock system (package
// locks), which honours a lock token only for the user who took the lock
// (RFC 4918 section 6.4). x/net's Handler, which still serves PROPPATCH,
// sees a lock system that confirms everything (checkedLS): the bridge has
// checked the request's locks before handing it over.

// anonymousOwner owns the locks of requests without a user (a server run
// without authentication, as in tests): they all share it. User owners
// carry a prefix, so no user name can be taken for it.
const anonymousOwner = "anonymous"

// lockOwner is who the request's locks belong to.
func lockOwner(ctx context.Context) string {
	if u := auth.UserFrom(ctx); u != nil {
		return "user:" + u.Name
	}
	return anonymousOwner
}

// maxLockBody bounds a LOCK body: a lockinfo is a few hundred bytes.
const maxLockBody = 64 << 10

// lockInfo is a LOCK request body (RFC 4918 section 14.11).
type lockInfo struct {
	XMLName   xml.Name  `xml:"DAV: lockinfo"`
	Exclusive *struct{} `xml:"DAV: lockscope>exclusive"`
	Shared    *struct{} `xml:"DAV: lockscope>shared"`
	Write     *struct{} `xml:"DAV: locktype>write"`
	Owner     struct {
		Inner string `xml:",innerxml"`
	} `xml:"DAV: owner"`
}

// parseLockInfo reads a lockinfo: exactly one scope, and a write lock.
func parseLockInfo(body []byte) (lockInfo, error) {
	var li lockInfo
	if err := xml.Unmarshal(body, &li); err != nil {
		return li, fmt.Errorf("LOCK body: %v: %w", err, errBadRequest)
	}
	if (li.Exclusive == nil) == (li.Shared == nil) || li.Write == nil {
		return li, fmt.Errorf("LOCK body: need one lockscope and a write locktype: %w", errBadRequest)
	}
	return li, nil
}

func (li lockInfo) scope() locks.Scope {
	if li.Shared != nil {
		return locks.Shared
	}
	return locks.Exclusive
}

// lockDepth reads a LOCK's Depth header: 0 or infinity, infinity when
// missing (RFC 4918 section 9.10.3); 1 is not a lock depth.
func lockDepth(h string) (locks.Depth, error) {
	switch strings.ToLower(strings.TrimSpace(h)) {
	case "", "infinity":
		return locks.DepthInfinity, nil
	case "0":
		return locks.DepthZero, nil
	}
	return 0, fmt.Errorf("Depth %q for LOCK: %w", h, errBadRequest)
}

// serveLock creates a lock or, for a LOCK without a body, refreshes the
// one whose token the If header names (RFC 4918 section 9.10.2).
func (s *Server) serveLock(w http.ResponseWriter, r *http.Request, t target) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLockBody+1))
	if err != nil || len(body) > maxLockBody {
		writeError(w, fmt.Errorf("LOCK body unreadable or too large: %w", errBadRequest))
		return
	}
	timeout := locks.ParseTimeout(r.Header.Get("Timeout"))
	if len(bytes.TrimSpace(body)) == 0 {
		s.refreshLock(w, r, t, timeout)
		return
	}
	li, err := parseLockInfo(body)
	if err != nil {
		writeError(w, err)
		return
	}
	depth, err := lockDepth(r.Header.Get("Depth"))
	if err != nil {
		writeError(w, err)
		return
	}
	s.createLock(w, r, t, locks.Lock{
		Root: t.full, Owner: lockOwner(r.Context()), OwnerXML: strings.TrimSpace(li.Owner.Inner),
		Scope: li.scope(), Depth: depth, Timeout: timeout,
	})
}

// createLock grants l. A LOCK on a new name creates an empty file (RFC 4918
// section 7.3); when the provider fails to, the lock is released and the
// answer is the failure's mapped status, logged, not a 201 for a file that
// was never made.
func (s *Server) createLock(w http.ResponseWriter, r *http.Request, t target, l locks.Lock) {
	ctx := r.Context()
	_, err := s.statInfo(ctx, t)
	isNew := isNotFound(err)
	if err != nil && !isNew {
		s.logFailure(r, err)
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if isNew {
		// The new name changes its folder: a lock there must allow it,
		// and writes of the name run one at a time.
		release, status, err := s.confirmLocks(r, writeCheck{reqPath: t.full, serialize: []string{t.full},
			targets: []locks.Target{{Path: path.Dir(t.full), Depth: locks.DepthZero}}})
		if err != nil {
			s.refuseWrite(w, r, status, err)
			return
		}
		defer release()
	}
	granted, err := s.locks.Create(ctx, l)
	if errors.Is(err, locks.ErrLocked) {
		writeDAVError(w, http.StatusLocked, "no-conflicting-lock")
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if isNew {
		if err := s.createEmpty(ctx, t); err != nil {
			if uerr := s.locks.Unlock(context.WithoutCancel(ctx), l.Owner, granted.Token, t.full); uerr != nil {
				err = fmt.Errorf("%w (and releasing its lock: %v)", err, uerr)
			}
			s.logFailure(r, err)
			writeError(w, err)
			return
		}
		status = http.StatusCreated
	}
	w.Header().Set("Lock-Token", "<"+granted.Token+">")
	writeLockAnswer(w, status, granted)
}

// createEmpty stores an empty file at t, as a PUT of nothing would.
func (s *Server) createEmpty(ctx context.Context, t target) error {
	sp, err := s.spoolFor(t.m, 0)
	if err != nil {
		return err
	}
	defer sp.discard()
	_, _, err = s.put(ctx, t, sp, time.Time{})
	return err
}

// refreshLock gives the lock the If header names a new timeout.
func (s *Server) refreshLock(w http.ResponseWriter, r *http.Request, t target, timeout time.Duration) {
	token, ok := firstToken(r.Header.Get("If"))
	if !ok {
		writeError(w, fmt.Errorf("LOCK without a body refreshes the lock its If header names: %w", errBadRequest))
		return
	}
	l, err := s.locks.Refresh(r.Context(), lockOwner(r.Context()), token, t.full, timeout)
	if errors.Is(err, locks.ErrNoSuchLock) {
		err = fmt.Errorf("%w: %w", errNoLockToRefresh, err)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeLockAnswer(w, http.StatusOK, l)
}

// serveUnlock removes the caller's own lock, named by Lock-Token, through a
// path the lock covers: someone else's lock is 403, and a token the path
// has nothing to do with is 409 (so a path of another mount tells nothing).
func (s *Server) serveUnlock(w http.ResponseWriter, r *http.Request, t target) {
	token, ok := strings.CutPrefix(strings.TrimSpace(r.Header.Get("Lock-Token")), "<")
	token, closed := strings.CutSuffix(token, ">")
	if !ok || !closed || token == "" {
		writeError(w, fmt.Errorf("UNLOCK needs a Lock-Token header: %w", errBadRequest))
		return
	}
	err := s.locks.Unlock(r.Context(), lockOwner(r.Context()), token, t.full)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, locks.ErrNoSuchLock):
		writeDAVError(w, http.StatusConflict, "lock-token-matches-request-uri")
	default:
		writeError(w, err)
	}
}

// writeLockAnswer answers a LOCK with the lock's lockdiscovery.
func writeLockAnswer(w http.ResponseWriter, status int, l locks.Lock) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<D:prop xmlns:D="DAV:"><D:lockdiscovery>`+
		locks.LockDiscoveryXML([]locks.Lock{l}, time.Now())+`</D:lockdiscovery></D:prop>`)
}

// writeDAVError answers status with a DAV:error body naming a
// precondition (RFC 4918 section 16).
func writeDAVError(w http.ResponseWriter, status int, condition string) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<D:error xmlns:D="DAV:"><D:`+condition+`/></D:error>`)
}

// proppatchUnderLocks checks the request's locks and hands PROPPATCH to
// x/net, without the If header the bridge has already evaluated.
func (s *Server) proppatchUnderLocks(w http.ResponseWriter, r *http.Request, t target) {
	release, ok := s.lockedOr(w, r, writeCheck{reqPath: t.full, serialize: []string{t.full},
		targets: []locks.Target{{Path: t.full, Depth: locks.DepthZero}}})
	if !ok {
		return
	}
	defer release()
	r = r.Clone(r.Context())
	r.Header.Del("If")
	s.delegate(w, r, t)
}

// checkedLS is the lock system x/net's Handler sees: every request it
// serves has passed the bridge's own lock check, so it confirms all.
type checkedLS struct{}

func (checkedLS) Confirm(time.Time, string, string, ...webdav.Condition) (func(), error) {
	return func() {}, nil
}

func (checkedLS) Create(time.Time, webdav.LockDetails) (string, error) {
	return "checked-by-the-bridge", nil
}

func (checkedLS) Refresh(time.Time, string, time.Duration) (webdav.LockDetails, error) {
	return webdav.LockDetails{}, webdav.ErrNoSuchLock
}

func (checkedLS) Unlock(time.Time, string) error { return nil }
