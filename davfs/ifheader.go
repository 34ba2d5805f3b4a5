package davfs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"bridge/davfs/locks"
)

// ifList is one parenthesized list of an If header (RFC 4918 section 10.4),
// optionally tagged with the resource it applies to.
type ifList struct {
	resource   string
	conditions []ifCondition
}

// ifCondition is one condition of a list: a state token or an entity tag,
// maybe negated.
type ifCondition struct {
	Not   bool
	Token string
	ETag  string
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
		var c ifCondition
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

// writeCheck is what a write asks of the lock system.
type writeCheck struct {
	// reqPath is the request's resource, to which the If header's
	// untagged lists apply.
	reqPath string
	// serialize are the paths whose writes run one at a time: parallel
	// MKCOLs or PUTs of one name (rclone's parallel transfers making the
	// same parent folder) wait for each other instead of answering 423.
	serialize []string
	// targets are the parts of the tree the write touches (see the
	// locks package: Confirm).
	targets []locks.Target
}

// Targets of the writes (the table in the locks package's notes).

// writeOf is a change of the resource at p alone (PUT of an existing
// name, PROPPATCH).
func writeOf(p string) locks.Target { return locks.Target{Path: p, Depth: locks.DepthZero} }

// treeOf is a change of p and everything below it (DELETE, the source of
// a MOVE, an overwritten destination).
func treeOf(p string) locks.Target { return locks.Target{Path: p, Depth: locks.DepthInfinity} }

// membersOf is a change of p's parent's list of members (a name made or
// removed there).
func membersOf(p string) locks.Target { return writeOf(parentPath(p)) }

func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}

// confirmLocks makes sure the request may make the write c describes:
// the If header, when there is one, must hold (RFC 4918 section 10.4: 412
// when none of its lists does), and the lock system must confirm every
// target for the request's user with the lock tokens of the lists that
// hold (423 otherwise: a token counts only for its lock's owner). It
// returns the function that releases what it holds, or the status to
// answer and why.
func (s *Server) confirmLocks(r *http.Request, c writeCheck) (func(), int, error) {
	ctx := r.Context()
	unserialize, err := s.holds.acquire(ctx, c.serialize)
	if err != nil {
		return nil, 499, err
	}
	if s.peers != nil {
		// And across instances: two PUTs of one path through two
		// instances would race at the provider ("name exists", a second
		// folder of one name).
		local := unserialize
		shared, err := s.peers.hold(ctx, c.serialize)
		if err != nil {
			local()
			status, _ := statusOf(err)
			if ctx.Err() != nil {
				status = 499
			}
			return nil, status, err
		}
		unserialize = func() { shared(); local() }
	}
	tokens, status, err := s.submittedTokens(r, c.reqPath)
	if err != nil {
		unserialize()
		return nil, status, err
	}
	release, err := s.locks.Confirm(ctx, lockOwner(ctx), tokens, c.targets...)
	if err != nil {
		unserialize()
		status, _ := statusOf(err)
		return nil, status, err
	}
	return func() { release(); unserialize() }, 0, nil
}

// submittedTokens evaluates the If header and returns the lock tokens of
// its lists that hold; none without the header.
func (s *Server) submittedTokens(r *http.Request, reqPath string) ([]string, int, error) {
	h := r.Header.Get("If")
	if h == "" {
		return nil, 0, nil
	}
	lists, ok := parseIf(h)
	if !ok {
		return nil, http.StatusBadRequest, errors.New("malformed If header")
	}
	var tokens []string
	held := false
	for _, l := range lists {
		resource, ok := s.listResource(r, l, reqPath)
		if !ok {
			continue
		}
		listTokens, ok, err := s.listHolds(r, resource, l.conditions)
		if err != nil {
			return nil, http.StatusInternalServerError, err
		}
		if ok {
			held = true
			tokens = append(tokens, listTokens...)
		}
	}
	if !held {
		return nil, http.StatusPreconditionFailed, errors.New("no list of the If header holds")
	}
	return tokens, 0, nil
}

// listResource is the share path a list applies to: its tag, or the
// request's resource. A tag on another host, or on a mount the user
// cannot see, applies to nothing here.
func (s *Server) listResource(r *http.Request, l ifList, reqPath string) (string, bool) {
	if l.resource == "" {
		return reqPath, true
	}
	u, err := url.Parse(l.resource)
	if err != nil || (u.Host != "" && u.Host != r.Host) {
		return "", false
	}
	t, err := s.resolve(r.Context(), u.Path)
	if err != nil {
		return "", false
	}
	return t.full, true
}

// listHolds evaluates one list's conditions on resource and returns its
// (not negated) lock tokens. A token condition is true when the token
// names a live lock covering the resource, whoever owns it: whether the
// token may be used is the lock system's question (Confirm).
func (s *Server) listHolds(r *http.Request, resource string, conds []ifCondition) ([]string, bool, error) {
	tokenConds, ok := s.etagsHold(r, resource, conds)
	if !ok {
		return nil, false, nil
	}
	var tokens []string
	for _, c := range tokenConds {
		matches, err := s.tokenMatches(r.Context(), resource, c.Token)
		if err != nil {
			return nil, false, err
		}
		if matches == c.Not {
			return nil, false, nil
		}
		if !c.Not {
			tokens = append(tokens, c.Token)
		}
	}
	return tokens, true, nil
}

// tokenMatches reports whether token names a live lock covering resource.
func (s *Server) tokenMatches(ctx context.Context, resource, token string) (bool, error) {
	ls, err := s.locks.Locks(ctx, resource, locks.DepthZero)
	if err != nil {
		return false, fmt.Errorf("locks of %s: %w", resource, err)
	}
	return slices.ContainsFunc(ls, func(l locks.Lock) bool { return l.Token == token }), nil
}

// firstToken returns the first lock token an If header names (a LOCK
// refresh names the lock it refreshes so).
func firstToken(h string) (string, bool) {
	lists, ok := parseIf(h)
	if !ok {
		return "", false
	}
	for _, l := range lists {
		for _, c := range l.conditions {
			if c.Token != "" && !c.Not {
				return c.Token, true
			}
		}
	}
	return "", false
}

// etagsHold checks a list's entity-tag conditions against the resource's
// current ETag and returns the token conditions left.
func (s *Server) etagsHold(r *http.Request, name string, conds []ifCondition) ([]ifCondition, bool) {
	var tokens []ifCondition
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

// shortHolds serialize the writes of one path within this process: a
// request holds its paths while it runs, and another request for one of
// them waits. They are not locks: nobody else sees them.
type shortHolds struct {
	mu    sync.Mutex
	paths map[string]chan struct{} // closed when the holder is done
}

// acquire holds every name (in one order, so two requests never wait for
// each other), waiting for the requests that hold them; it fails only
// when ctx ends first.
func (h *shortHolds) acquire(ctx context.Context, names []string) (func(), error) {
	names = holdOrder(names)
	var held []string
	release := func() {
		for _, name := range held {
			h.release(name)
		}
	}
	for _, name := range names {
		if err := h.hold(ctx, name); err != nil {
			release()
			return nil, err
		}
		held = append(held, name)
	}
	return release, nil
}

// holdOrder is names without blanks and repeats, in the one order every
// holder takes them (here, and across instances), so that two writes
// never wait for each other.
func holdOrder(names []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "" }))))
}

func (h *shortHolds) hold(ctx context.Context, name string) error {
	for {
		h.mu.Lock()
		if h.paths == nil {
			h.paths = map[string]chan struct{}{}
		}
		done, busy := h.paths[name]
		if !busy {
			h.paths[name] = make(chan struct{})
			h.mu.Unlock()
			return nil
		}
		h.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *shortHolds) release(name string) {
	h.mu.Lock()
	done := h.paths[name]
	delete(h.paths, name)
	h.mu.Unlock()
	close(done)
}
