package davfs

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/webdav"
)

// ifList is one parenthesized list of an If header (RFC 4918 section 10.4),
// optionally tagged with the resource it applies to.
type ifList struct {
	resource   string
	conditions []webdav.Condition
}

// parseIf parses an If header. It returns false when the header is not
// well formed.
func parseIf(h string) ([]ifList, bool) {
	var lists []ifList
	resource := ""
	s := strings.TrimSpace(h)
	for s != "" {
		switch s[0] {
		case '<':
			end := strings.IndexByte(s, '>')
			if end < 0 {
				return nil, false
			}
			resource = s[1:end]
			s = strings.TrimSpace(s[end+1:])
			if !strings.HasPrefix(s, "(") {
				return nil, false // a tag must be followed by a list
			}
		case '(':
			l, rest, ok := parseIfList(s[1:])
			if !ok {
				return nil, false
			}
			l.resource = resource
			lists = append(lists, l)
			s = strings.TrimSpace(rest)
		default:
			return nil, false
		}
	}
	return lists, len(lists) > 0
}

// parseIfList parses conditions up to the closing parenthesis.
func parseIfList(s string) (ifList, string, bool) {
	var l ifList
	for {
		s = strings.TrimSpace(s)
		if s == "" {
			return l, "", false
		}
		if s[0] == ')' {
			return l, s[1:], len(l.conditions) > 0
		}
		var c webdav.Condition
		if strings.HasPrefix(s, "Not") {
			c.Not = true
			s = strings.TrimSpace(s[3:])
		}
		if s == "" {
			return l, "", false
		}
		switch s[0] {
		case '<':
			end := strings.IndexByte(s, '>')
			if end < 0 {
				return l, "", false
			}
			c.Token = s[1:end]
			s = s[end+1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return l, "", false
			}
			c.ETag = s[1:end]
			s = s[end+1:]
		default:
			return l, "", false
		}
		l.conditions = append(l.conditions, c)
	}
}

// confirmLocks makes sure the request may write src and dst (either may be
// ""): with no If header, by holding short zero-depth locks that conflict
// with anyone else's; with one, by finding a list whose lock tokens the
// lock system confirms. It returns the function that releases what it
// holds, or the status to answer.
func (s *Server) confirmLocks(r *http.Request, src, dst string) (func(), int, error) {
	h := r.Header.Get("If")
	now := time.Now()
	if h == "" {
		return s.holdUnlocked(r.Context(), now, src, dst)
	}
	return s.confirmIf(r, h, now, src, dst)
}

// etagsHold checks a list's entity-tag conditions against the resource's
// current ETag (the lock system only knows tokens) and returns the token
// conditions left for it.
func (s *Server) etagsHold(r *http.Request, name string, conds []webdav.Condition) ([]webdav.Condition, bool) {
	var tokens []webdav.Condition
	for _, c := range conds {
		if c.ETag == "" {
			tokens = append(tokens, c)
			continue
		}
		current := ""
		if t, err := s.resolve(r.Context(), name); err == nil {
			if fi, err := s.statInfo(r.Context(), t); err == nil {
				current, _ = fi.ETag(r.Context())
			}
		}
		if (current != "" && current == c.ETag) == c.Not {
			return nil, false
		}
	}
	return tokens, true
}

// holdUnlocked takes short zero-depth locks on src and dst (either may be
// ""), which fail if anyone else holds a lock there. A path held only by
// another request's short lock is waited for, not refused: six parallel
// MKCOLs or PUTs of one name (rclone's parallel transfers making the same
// parent folder) run one after the other instead of answering 423 with no
// lock anywhere.
func (s *Server) holdUnlocked(ctx context.Context, now time.Time, src, dst string) (func(), int, error) {
	var held []string
	release := func() {
		for _, name := range held {
			s.holds.release(name, func(tok string) { s.ls.Unlock(now, tok) })
		}
	}
	names := []string{src, dst}
	slices.Sort(names) // always in one order: two requests never wait for each other
	for _, name := range names {
		if name == "" {
			continue
		}
		for {
			wait, err := s.holds.acquire(name, func() (string, error) {
				return s.ls.Create(now, webdav.LockDetails{Root: name, Duration: -1, ZeroDepth: true})
			})
			if err == nil && wait == nil {
				held = append(held, name)
				break
			}
			if err != nil {
				release()
				if errors.Is(err, webdav.ErrLocked) {
					return nil, http.StatusLocked, err // a client's lock
				}
				return nil, http.StatusInternalServerError, err
			}
			select {
			case <-wait:
			case <-ctx.Done():
				release()
				return nil, 499, ctx.Err()
			}
		}
	}
	return release, 0, nil
}

// shortHolds are the short locks requests hold while they run, by path,
// each with a channel closed when it is released.
type shortHolds struct {
	mu    sync.Mutex
	paths map[string]shortHold
}

type shortHold struct {
	token string
	done  chan struct{}
}

// acquire takes the short lock on name with create, or, when another
// request's short lock holds it, returns the channel closed when that one
// goes. create's own ErrLocked (a client's lock) is returned as it is.
// Both happen under one mutex with release, so no release falls between
// a refused create and the look for what refused it.
func (h *shortHolds) acquire(name string, create func() (string, error)) (<-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sh, ok := h.paths[name]; ok {
		return sh.done, nil
	}
	token, err := create()
	if err != nil {
		return nil, err
	}
	if h.paths == nil {
		h.paths = map[string]shortHold{}
	}
	h.paths[name] = shortHold{token: token, done: make(chan struct{})}
	return nil, nil
}

// release unlocks name's short lock (with unlock) and wakes its waiters.
func (h *shortHolds) release(name string, unlock func(token string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sh, ok := h.paths[name]; ok {
		unlock(sh.token)
		delete(h.paths, name)
		close(sh.done)
	}
}

func (s *Server) confirmIf(r *http.Request, h string, now time.Time, src, dst string) (func(), int, error) {
	lists, ok := parseIf(h)
	if !ok {
		return nil, http.StatusBadRequest, errors.New("malformed If header")
	}
	for _, l := range lists {
		lsrc := src
		if l.resource != "" {
			u, err := url.Parse(l.resource)
			if err != nil || (u.Host != "" && u.Host != r.Host) {
				continue
			}
			p, err := cleanPath(u.Path)
			if err != nil {
				continue
			}
			lsrc = p
		}
		tokens, ok := s.etagsHold(r, lsrc, l.conditions)
		if !ok {
			continue
		}
		if len(tokens) == 0 {
			// Only entity-tag conditions, all true: the resources must
			// still not be locked by anyone else.
			return s.holdUnlocked(r.Context(), now, lsrc, dst)
		}
		release, err := s.ls.Confirm(now, lsrc, dst, tokens...)
		if errors.Is(err, webdav.ErrConfirmationFailed) && lsrc != "" && dst != "" {
			// The tokens must match the source; the destination may
			// instead be a name nobody has locked (a MOVE of a locked file
			// to a new name).
			release, err = s.confirmSourceOnly(r.Context(), now, lsrc, dst, tokens)
		}
		if errors.Is(err, webdav.ErrConfirmationFailed) {
			continue
		}
		if err != nil {
			return nil, http.StatusInternalServerError, err
		}
		return release, 0, nil
	}
	// RFC 4918 10.4.1: when every list fails, the request fails with 412.
	return nil, http.StatusPreconditionFailed, webdav.ErrLocked
}

// confirmSourceOnly confirms the tokens for src and holds dst unlocked.
func (s *Server) confirmSourceOnly(ctx context.Context, now time.Time, src, dst string, tokens []webdav.Condition) (func(), error) {
	releaseSrc, err := s.ls.Confirm(now, src, "", tokens...)
	if err != nil {
		return nil, err
	}
	releaseDst, _, err := s.holdUnlocked(ctx, now, "", dst)
	if err != nil {
		releaseSrc()
		return nil, webdav.ErrConfirmationFailed
	}
	return func() { releaseDst(); releaseSrc() }, nil
}
