// Package locks is the bridge's WebDAV lock system (RFC 4918 sections 6
// and 7): write locks, exclusive or shared, of depth 0 or infinity, each
// honoured only for the user who created it (section 6.4).
//
// It holds the rules and the state; the HTTP side (reading LOCK bodies,
// Depth, Timeout and If headers, writing answers) stays with the server.
// The server talks to a System: NewMemory keeps locks in the process,
// NewRedis in a Redis that several bridge instances share, so that a lock
// taken through one is honoured by all. Both decide by the same rules (a
// table; see Redis for how it is kept atomic across processes).
//
// Paths are share paths ("/mount/a/b.txt"); they are cleaned on the way in,
// so "/m/a/" and "/m/a" are one resource.
package locks

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The kinds of refusal. Errors returned wrap one of these (test with
// errors.Is); each maps to one HTTP status.
var (
	// ErrLocked: someone else's lock, or the caller's own lock without its
	// token, covers what the request would create or change (423 Locked).
	ErrLocked = errors.New("locks: locked")
	// ErrNotOwner: the token names a lock of another user (403 Forbidden).
	ErrNotOwner = errors.New("locks: lock belongs to another user")
	// ErrNoSuchLock: no live lock has the token, or it does not cover the
	// request path (UNLOCK: 409 Conflict with
	// DAV:lock-token-matches-request-uri; refresh: 412).
	ErrNoSuchLock = errors.New("locks: no such lock for this path")
)

// Scope says whether a lock shares its resources with other shared locks.
type Scope int

const (
	Exclusive Scope = iota // conflicts with any other lock on the resource
	Shared                 // conflicts only with exclusive locks
)

func (s Scope) String() string {
	if s == Shared {
		return "shared"
	}
	return "exclusive"
}

// Depth says how much of the tree under a path a lock or a write takes in.
type Depth int

const (
	DepthZero     Depth = iota // the resource and, for a folder, its list of members
	DepthInfinity              // the resource and everything below it
)

func (d Depth) String() string {
	if d == DepthInfinity {
		return "infinity"
	}
	return "0"
}

// Infinite is the timeout "Timeout: Infinite" asks for. No lock is granted
// it: a System grants its maximum instead, and says so.
const Infinite = time.Duration(math.MaxInt64)

// DefaultMaxTimeout is the longest lock NewMemory grants unless told
// otherwise. Clients refresh before their lock runs out; a lock a crashed
// client left behind blocks others for at most this long.
const DefaultMaxTimeout = time.Hour

// A Lock is a write lock on the tree at Root.
type Lock struct {
	Token    string // "urn:uuid:" and a random UUID; set by Create
	Root     string // share path the lock was taken on
	Owner    string // authenticated user who took it; nobody else may use Token
	OwnerXML string // the client's DAV:owner content, echoed in lockdiscovery
	Scope    Scope
	Depth    Depth
	// Timeout is what the client asks for when passed to Create or
	// Refresh (0 and Infinite: the longest allowed); in a Lock returned by
	// a System it is what was granted.
	Timeout time.Duration
	Expires time.Time // set by the System
}

// Covers reports whether the lock takes in the resource at p.
func (l Lock) Covers(p string) bool {
	p = clean(p)
	return p == l.Root || (l.Depth == DepthInfinity && within(p, l.Root))
}

// A Target is a part of the tree a write touches: a resource (DepthZero:
// its content and properties, or a folder's list of members) or a whole
// subtree (DepthInfinity: a DELETE, the source of a MOVE).
type Target struct {
	Path  string
	Depth Depth
}

// A System grants and checks locks. Implementations are safe for
// concurrent use; every method takes the request's context because a
// shared store answers over the network.
type System interface {
	// Create grants l with a new Token, the timeout granted and its
	// expiry. It fails with ErrLocked when l conflicts with a lock, or
	// with a write in progress (see Confirm), of someone else.
	Create(ctx context.Context, l Lock) (Lock, error)

	// Refresh gives the owner's lock with token a new timeout, counted from
	// now. path is the request path, which the lock must cover.
	Refresh(ctx context.Context, owner, token, path string, timeout time.Duration) (Lock, error)

	// Unlock removes the owner's lock with token. path is the request path,
	// which the lock must cover.
	Unlock(ctx context.Context, owner, token, path string) error

	// Confirm checks that owner, having submitted tokens (the lock tokens
	// of the request's If header), may change targets: every lock on them
	// must be satisfied by a lock of owner's whose token was submitted; a
	// token of someone else's counts for nothing. On success it returns
	// release, which the caller calls when the write is done; until then
	// other users cannot lock the targets, so a LOCK granted meanwhile
	// never sees the write land after it. Otherwise it fails with
	// ErrLocked.
	Confirm(ctx context.Context, owner string, tokens []string, targets ...Target) (release func(), err error)

	// Locks returns the live locks that cover path and, with
	// DepthInfinity, those taken below it, ordered by root.
	Locks(ctx context.Context, path string, depth Depth) ([]Lock, error)

	// Move records a MOVE of from to to. RFC 4918 section 7.6: "A
	// successful MOVE request on a write locked resource MUST NOT move the
	// write lock with the resource"; section 6.1: a lock whose root
	// becomes an unmapped URL "MUST also be deleted". So the locks taken on
	// and below from are removed, not carried over, and so are those on
	// and below to (an overwritten destination was deleted first, section
	// 9.9.3). The moved resource is then under whatever depth-infinity
	// lock covers to; Confirm has made sure the mover holds its token.
	Move(ctx context.Context, from, to string) error

	// Delete removes the locks taken on and below path (section 6.1: a
	// lock goes with its root). For DELETE, and for the destination of a
	// COPY that overwrote it.
	Delete(ctx context.Context, path string) error
}

// Options configure NewMemory and NewRedis.
type Options struct {
	// MaxTimeout is the longest lock granted: longer requests, Infinite
	// and none at all get it. Zero means DefaultMaxTimeout.
	MaxTimeout time.Duration
	// Now is the clock; nil means time.Now for Memory and the Redis
	// server's clock for Redis.
	Now func() time.Time
	// HoldTTL is, for Redis only, how long a write in progress (see
	// Confirm) outlives a bridge instance that died during it. Zero means
	// DefaultHoldTTL.
	HoldTTL time.Duration
}

// Memory is a System kept in this process: locks are lost on restart, and
// bridge instances behind one load balancer do not see each other's.
type Memory struct {
	maxTimeout time.Duration
	now        func() time.Time

	mu        sync.Mutex
	table     // the locks and the writes in progress
	nextSweep time.Time
}

var _ System = (*Memory)(nil)

// sweepEvery bounds how long expired locks that nobody looks at stay in
// memory (or in Redis's index).
const sweepEvery = time.Minute

// NewMemory returns an empty in-memory lock system.
func NewMemory(opts Options) *Memory {
	m := &Memory{
		maxTimeout: opts.MaxTimeout,
		now:        opts.Now,
		table:      newTable(),
	}
	if m.maxTimeout <= 0 {
		m.maxTimeout = DefaultMaxTimeout
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Create implements System.
func (m *Memory) Create(ctx context.Context, l Lock) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	if err := validate(&l); err != nil {
		return Lock{}, err
	}
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	if err := m.checkCreate(l, now); err != nil {
		return Lock{}, err
	}
	l.Token = newToken()
	for m.byToken[l.Token] != nil {
		l.Token = newToken()
	}
	grant(&l, l.Timeout, m.maxTimeout, now)
	stored := l
	m.add(&stored)
	return l, nil
}

// Refresh implements System.
func (m *Memory) Refresh(ctx context.Context, owner, token, p string, timeout time.Duration) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.owned(owner, token, p, now)
	if err != nil {
		return Lock{}, fmt.Errorf("refresh: %w", err)
	}
	grant(l, timeout, m.maxTimeout, now)
	return *l, nil
}

// Unlock implements System.
func (m *Memory) Unlock(ctx context.Context, owner, token, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.owned(owner, token, p, now)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	m.remove(l)
	return nil
}

// Confirm implements System.
func (m *Memory) Confirm(ctx context.Context, owner string, tokens []string, targets ...Target) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	targets = cleanTargets(targets)
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	if err := m.checkConfirm(owner, tokens, targets, now); err != nil {
		return nil, err
	}
	held := make([]*hold, len(targets))
	for i, t := range targets {
		held[i] = &hold{owner: owner, target: t}
		m.holds[held[i]] = struct{}{}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, h := range held {
				delete(m.holds, h)
			}
		})
	}, nil
}

// Locks implements System.
func (m *Memory) Locks(ctx context.Context, p string, depth Depth) ([]Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	out := copied(m.overlapping(Target{clean(p), depth}, now))
	m.mu.Unlock()
	sortLocks(out)
	return out, nil
}

// Move implements System.
func (m *Memory) Move(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeBelow(clean(from))
	m.removeBelow(clean(to))
	return nil
}

// Delete implements System.
func (m *Memory) Delete(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeBelow(clean(p))
	return nil
}

// owned is table.owned, dropping the lock with token if it has expired.
func (m *Memory) owned(owner, token, p string, now time.Time) (*Lock, error) {
	if l := m.byToken[token]; l != nil && !live(l, now) {
		m.remove(l)
	}
	return m.table.owned(owner, token, p, now)
}

// sweep drops expired locks now and then; lookups skip them meanwhile.
func (m *Memory) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepEvery)
	for _, l := range m.byToken {
		if !live(l, now) {
			m.remove(l)
		}
	}
}

// A table is a set of locks and of writes in progress, and the rules that
// decide between them. Memory keeps one for good; Redis builds one from
// the records it reads for each operation, so both decide by the same
// code.
type table struct {
	byToken map[string]*Lock
	byRoot  map[string][]*Lock
	holds   map[*hold]struct{} // writes confirmed and not yet released
}

// A hold is a write in progress: other users may not lock its target.
type hold struct {
	owner  string
	target Target
}

func newTable() table {
	return table{byToken: map[string]*Lock{}, byRoot: map[string][]*Lock{}, holds: map[*hold]struct{}{}}
}

// checkCreate fails with ErrLocked when l, whose root is clean, conflicts
// with a live lock or with a write in progress of someone else.
func (t *table) checkCreate(l Lock, now time.Time) error {
	for _, other := range t.overlapping(Target{l.Root, l.Depth}, now) {
		if l.Scope == Exclusive || other.Scope == Exclusive {
			return fmt.Errorf("%w: %s conflicts with a lock on %s", ErrLocked, l.Root, other.Root)
		}
	}
	for h := range t.holds {
		if h.owner != l.Owner && overlaps(l.Root, l.Depth, h.target.Path, h.target.Depth) {
			return fmt.Errorf("%w: %s is being written", ErrLocked, h.target.Path)
		}
	}
	return nil
}

// checkConfirm fails with ErrLocked unless owner, having submitted tokens,
// may change targets (clean paths): see System.Confirm.
func (t *table) checkConfirm(owner string, tokens []string, targets []Target, now time.Time) error {
	submitted := make(map[string]bool, len(tokens))
	for _, tok := range tokens {
		submitted[tok] = true
	}
	satisfied := func(l *Lock) bool { return l.Owner == owner && submitted[l.Token] }
	for _, tg := range targets {
		for _, l := range t.overlapping(tg, now) {
			if satisfied(l) {
				continue
			}
			// The resource l and the target share: the deeper of the two
			// paths. Among shared locks one of owner's is enough.
			p := tg.Path
			if within(l.Root, tg.Path) {
				p = l.Root
			}
			if !slices.ContainsFunc(t.covering(p, now), satisfied) {
				return fmt.Errorf("%w: %s needs the token of the lock on %s", ErrLocked, p, l.Root)
			}
		}
	}
	return nil
}

// owned finds the live lock with token that covers p and belongs to owner.
// A path outside the lock is checked before the owner, so a request through
// a path the lock has nothing to do with learns nothing about it.
func (t *table) owned(owner, token, p string, now time.Time) (*Lock, error) {
	l := t.byToken[token]
	if l == nil || !live(l, now) || !l.Covers(p) {
		return nil, ErrNoSuchLock
	}
	if l.Owner != owner {
		return nil, ErrNotOwner
	}
	return l, nil
}

// covering returns the live locks that take in p: those on p and the
// depth-infinity ones above it.
func (t *table) covering(p string, now time.Time) []*Lock {
	var out []*Lock
	for q := p; ; q = path.Dir(q) {
		for _, l := range t.byRoot[q] {
			if live(l, now) && (q == p || l.Depth == DepthInfinity) {
				out = append(out, l)
			}
		}
		if q == "/" {
			return out
		}
	}
}

// overlapping returns the live locks that share a resource with tg: those
// covering tg.Path and, for DepthInfinity, those taken below it.
func (t *table) overlapping(tg Target, now time.Time) []*Lock {
	out := t.covering(tg.Path, now)
	if tg.Depth != DepthInfinity {
		return out
	}
	for root, ls := range t.byRoot {
		if root == tg.Path || !within(root, tg.Path) {
			continue
		}
		for _, l := range ls {
			if live(l, now) {
				out = append(out, l)
			}
		}
	}
	return out
}

// below returns the locks, live or not, taken on p and below it.
func (t *table) below(p string) []*Lock {
	var out []*Lock
	for root, ls := range t.byRoot {
		if within(root, p) {
			out = append(out, ls...)
		}
	}
	return out
}

func (t *table) add(l *Lock) {
	t.byToken[l.Token] = l
	t.byRoot[l.Root] = append(t.byRoot[l.Root], l)
}

// removeBelow removes the locks taken on p and below it.
func (t *table) removeBelow(p string) {
	for _, l := range t.below(p) {
		t.remove(l)
	}
}

func (t *table) remove(l *Lock) {
	delete(t.byToken, l.Token)
	ls := t.byRoot[l.Root]
	for i, x := range ls {
		if x == l {
			ls = append(ls[:i:i], ls[i+1:]...)
			break
		}
	}
	if len(ls) == 0 {
		delete(t.byRoot, l.Root)
	} else {
		t.byRoot[l.Root] = ls
	}
}

// validate checks what Create is asked for and cleans its root.
func validate(l *Lock) error {
	if l.Owner == "" {
		return errors.New("locks: lock without an owner")
	}
	if (l.Scope != Exclusive && l.Scope != Shared) || (l.Depth != DepthZero && l.Depth != DepthInfinity) {
		return fmt.Errorf("locks: invalid scope %d or depth %d", l.Scope, l.Depth)
	}
	l.Root = clean(l.Root)
	return nil
}

// grant sets l's timeout to what may be granted of the one asked for, and
// its expiry.
func grant(l *Lock, asked, maxTimeout time.Duration, now time.Time) {
	if asked <= 0 || asked > maxTimeout {
		asked = maxTimeout
	}
	l.Timeout = asked
	l.Expires = now.Add(asked)
}

func cleanTargets(targets []Target) []Target {
	targets = slices.Clone(targets)
	for i := range targets {
		targets[i].Path = clean(targets[i].Path)
	}
	return targets
}

func copied(ls []*Lock) []Lock {
	out := make([]Lock, len(ls))
	for i, l := range ls {
		out[i] = *l
	}
	return out
}

// sortLocks orders locks as Locks returns them: by root, then token.
func sortLocks(ls []Lock) {
	slices.SortFunc(ls, func(a, b Lock) int {
		return cmp.Or(strings.Compare(a.Root, b.Root), strings.Compare(a.Token, b.Token))
	})
}

func live(l *Lock, now time.Time) bool { return now.Before(l.Expires) }

// overlaps reports whether two trees, each a path and a depth, share a
// resource.
func overlaps(a string, ad Depth, b string, bd Depth) bool {
	return a == b || (ad == DepthInfinity && within(b, a)) || (bd == DepthInfinity && within(a, b))
}

// within reports whether p is root or below it.
func within(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

func clean(p string) string { return path.Clean("/" + p) }

// newToken returns "urn:uuid:" and a random (version 4) UUID (RFC 4918
// section 6.5, RFC 9562): unguessable and unique across bridge instances.
// It is no secret all the same (lockdiscovery shows it to anyone who may
// read the resource), which is why a token counts only for its owner.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var h [32]byte
	hex.Encode(h[:], b[:])
	return "urn:uuid:" + string(h[:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:])
}

// ParseTimeout reads a Timeout header (RFC 4918 section 10.7): the first
// value understood, "Infinite" as Infinite. It returns 0, meaning the
// longest allowed, when there is none.
func ParseTimeout(h string) time.Duration {
	for _, v := range strings.Split(h, ",") {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "Infinite") {
			return Infinite
		}
		if n, ok := strings.CutPrefix(v, "Second-"); ok {
			secs, err := strconv.ParseUint(n, 10, 64)
			if errors.Is(err, strconv.ErrRange) || secs > uint64(Infinite/time.Second) {
				return Infinite
			}
			if err == nil && secs > 0 {
				return time.Duration(secs) * time.Second
			}
		}
	}
	return 0
}
