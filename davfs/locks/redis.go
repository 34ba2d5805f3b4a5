package locks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"bridge/cluster"
)

// DefaultHoldTTL is how long a write in progress confirmed through a
// bridge instance that then died keeps others from locking its target.
// The instance renews it every third of that while the write runs, so
// the longest upload is not bounded by it.
const DefaultHoldTTL = 2 * time.Minute

// Redis is a System kept in Redis and shared by every bridge instance
// that uses the same server and key prefix: a lock taken through one is
// honoured by all, and so is a write in progress (Confirm's hold).
//
// Each operation reads what its paths touch, decides by the same rules
// as Memory (a table built from what was read), and writes the outcome
// in MULTI/EXEC under WATCH of a version key that every change of the
// lock set increments; if another instance changed the locks meanwhile,
// EXEC does nothing and the operation starts again (a bounded number of
// times, then it answers ErrStateUnavailable). Lua scripts would be
// atomic too, but would hold a second copy of the rules, in another
// language, to keep in step with Memory's. Writes in progress have a
// version key of their own, which Create watches and Confirm
// increments: two Confirms never make each other retry, while a Create
// and a Confirm of overlapping paths cannot both succeed on what they
// read before the other.
//
// Keys, under the prefix of the cluster.Redis:
//
//	locks:lock:<token>   a lock (JSON), expiring with it: PX is the granted timeout
//	locks:roots          index of locks: sorted set of "<root>\x00<token>"
//	locks:hold:<id>      a write in progress (JSON), PX HoldTTL, renewed while it runs
//	locks:holding        index of holds: sorted set of "<path>\x00<id>"
//	locks:v, locks:hv    versions of the locks and of the holds
//	locks:swept          set for a minute by the instance that swept the indexes
//
// The indexes have equal scores, so that ZRANGEBYLEX finds the entries
// at a path's ancestors and those below it without reading the rest. A
// record that Redis expired leaves its index entry behind; operations
// skip and remove those they read, and once a minute one instance sweeps
// the whole indexes. Records never come back once gone (a refresh uses
// SET XX), so a sweep needs no transaction.
//
// Expiry is decided on the stored Expires and the clock, which is the
// Redis server's (TIME) unless Options.Now is set: every instance reads
// the same clock, the one Redis's own TTLs run on.
type Redis struct {
	r          *cluster.Redis
	maxTimeout time.Duration
	holdTTL    time.Duration
	now        func() time.Time // nil: Redis's clock

	mu        sync.Mutex
	nextSweep time.Time // when this instance next tries to sweep

	retries atomic.Int64 // attempts started again after another instance's change
}

var _ System = (*Redis)(nil)

// maxAttempts bounds how often an operation starts again because another
// instance changed the locks under it; with the pauses between attempts
// an operation gives up after about a second of uninterrupted contention.
const maxAttempts = 64

var (
	errBusy    = errors.New("locks: too many concurrent changes")
	errCorrupt = errors.New("locks: unreadable record")
)

// NewRedis returns the lock system kept in r, under r.Key("locks", …).
func NewRedis(r *cluster.Redis, opts Options) *Redis {
	s := &Redis{r: r, maxTimeout: opts.MaxTimeout, holdTTL: opts.HoldTTL, now: opts.Now}
	if s.maxTimeout <= 0 {
		s.maxTimeout = DefaultMaxTimeout
	}
	if s.holdTTL <= 0 {
		s.holdTTL = DefaultHoldTTL
	}
	return s
}

// Create implements System.
func (s *Redis) Create(ctx context.Context, l Lock) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	if err := validate(&l); err != nil {
		return Lock{}, err
	}
	spans := around(Target{l.Root, l.Depth})
	asked := l.Timeout
	err := s.transact(ctx, "create lock", []string{s.key(keyVersion), s.key(keyHoldVersion)},
		func(tx *redis.Tx) (error, error) {
			v, err := s.read(ctx, tx, spans, spans)
			if err != nil {
				return nil, err
			}
			if err := v.checkCreate(l, v.now); err != nil {
				return err, nil
			}
			// 122 random bits: a token already taken is not worth a
			// look-up.
			l.Token = newToken()
			grant(&l, asked, s.maxTimeout, v.now)
			rec, err := json.Marshal(recordOf(l))
			if err != nil {
				return nil, err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.lockKey(l.Token), rec, l.Timeout)
				p.ZAdd(ctx, s.key(keyRoots), redis.Z{Member: entry(l.Root, l.Token)})
				p.Incr(ctx, s.key(keyVersion))
				s.tidy(ctx, p, v)
				return nil
			})
			return nil, err
		})
	if err != nil {
		return Lock{}, err
	}
	s.maybeSweep(ctx)
	return l, nil
}

// Refresh implements System.
func (s *Redis) Refresh(ctx context.Context, owner, token, p string, timeout time.Duration) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	var l Lock
	err := s.transact(ctx, "refresh lock", []string{s.key(keyVersion)}, func(tx *redis.Tx) (error, error) {
		t, now, err := s.readOne(ctx, tx, token)
		if err != nil {
			return nil, err
		}
		found, err := t.owned(owner, token, p, now)
		if err != nil {
			return fmt.Errorf("refresh: %w", err), nil
		}
		l = *found
		grant(&l, timeout, s.maxTimeout, now)
		rec, err := json.Marshal(recordOf(l))
		if err != nil {
			return nil, err
		}
		var set *redis.StatusCmd
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			// XX: a record Redis has just expired stays gone.
			set = pipe.SetArgs(ctx, s.lockKey(token), rec, redis.SetArgs{Mode: "XX", TTL: l.Timeout})
			pipe.Incr(ctx, s.key(keyVersion))
			return nil
		})
		if err != nil && errors.Is(set.Err(), redis.Nil) {
			return fmt.Errorf("refresh: %w", ErrNoSuchLock), nil
		}
		return nil, err
	})
	if err != nil {
		return Lock{}, err
	}
	return l, nil
}

// Unlock implements System.
func (s *Redis) Unlock(ctx context.Context, owner, token, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.transact(ctx, "unlock", []string{s.key(keyVersion)}, func(tx *redis.Tx) (error, error) {
		t, now, err := s.readOne(ctx, tx, token)
		if err != nil {
			return nil, err
		}
		l, err := t.owned(owner, token, p, now)
		if err != nil {
			return fmt.Errorf("unlock: %w", err), nil
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			s.removeLocks(ctx, pipe, []*Lock{l})
			pipe.Incr(ctx, s.key(keyVersion))
			return nil
		})
		return nil, err
	})
}

// Confirm implements System. The hold it takes is a record that expires
// after HoldTTL unless renewed, which this instance does until release
// is called: a hold outlives a dead instance by at most HoldTTL.
func (s *Redis) Confirm(ctx context.Context, owner string, tokens []string, targets ...Target) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	targets = cleanTargets(targets)
	var spans []span
	for _, t := range targets {
		spans = append(spans, around(t)...)
	}
	id := newHoldID()
	rec, err := json.Marshal(holdRecordOf(owner, targets))
	if err != nil {
		return nil, err
	}
	entries := make([]any, len(targets))
	for i, t := range targets {
		entries[i] = entry(t.Path, id)
	}
	spans = dedupe(spans)
	err = s.transact(ctx, "confirm write", []string{s.key(keyVersion)}, func(tx *redis.Tx) (error, error) {
		v, err := s.read(ctx, tx, spans, nil)
		if err != nil {
			return nil, err
		}
		if err := v.checkConfirm(owner, tokens, targets, v.now); err != nil {
			return err, nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.holdKey(id), rec, s.holdTTL)
			if len(entries) > 0 {
				p.ZAdd(ctx, s.key(keyHolding), zs(entries)...)
			}
			p.Incr(ctx, s.key(keyHoldVersion))
			s.tidy(ctx, p, v)
			return nil
		})
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	s.maybeSweep(ctx)
	return s.keep(id, entries), nil
}

// Locks implements System. It reads without a transaction: what it
// returns is informative (lockdiscovery, If header state tokens); what a
// write may do is decided by Confirm.
func (s *Redis) Locks(ctx context.Context, p string, depth Depth) ([]Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := Target{clean(p), depth}
	v, err := s.read(ctx, s.r.Client(), around(t), nil)
	if errors.Is(err, errCorrupt) {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	if err != nil {
		return nil, cluster.Unavailable("list locks", err)
	}
	out := copied(v.overlapping(t, v.now))
	sortLocks(out)
	return out, nil
}

// Move implements System.
func (s *Redis) Move(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.removeBelow(ctx, "move locks", clean(from), clean(to))
}

// Delete implements System.
func (s *Redis) Delete(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.removeBelow(ctx, "delete locks", clean(p))
}

// removeBelow removes the locks taken on and below each of paths.
func (s *Redis) removeBelow(ctx context.Context, op string, paths ...string) error {
	var spans []span
	for _, p := range paths {
		spans = append(spans, at(p), under(p))
	}
	spans = dedupe(spans)
	return s.transact(ctx, op, []string{s.key(keyVersion)}, func(tx *redis.Tx) (error, error) {
		v, err := s.read(ctx, tx, spans, nil)
		if err != nil {
			return nil, err
		}
		var gone []*Lock
		for _, p := range paths {
			for _, l := range v.below(p) {
				if !slices.Contains(gone, l) {
					gone = append(gone, l)
				}
			}
		}
		if len(gone) == 0 && len(v.stale) == 0 {
			return nil, nil
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			s.removeLocks(ctx, pipe, gone)
			pipe.Incr(ctx, s.key(keyVersion))
			s.tidy(ctx, pipe, v)
			return nil
		})
		return nil, err
	})
}

// transact runs fn under WATCH of keys until its EXEC goes through (or it
// has nothing to write), starting again when another client changed a
// watched key. fn returns the operation's own outcome (a refusal such as
// ErrLocked) apart from a failure to talk to Redis, which becomes
// ErrStateUnavailable.
func (s *Redis) transact(ctx context.Context, op string, keys []string, fn func(tx *redis.Tx) (outcome, err error)) error {
	for attempt := 1; ; attempt++ {
		var outcome error
		err := s.r.Client().Watch(ctx, func(tx *redis.Tx) error {
			var err error
			outcome, err = fn(tx)
			return err
		}, keys...)
		switch {
		case err == nil:
			return outcome
		case errors.Is(err, errCorrupt):
			return fmt.Errorf("%s: %w", op, err)
		case !errors.Is(err, redis.TxFailedErr):
			return cluster.Unavailable(op, err)
		case attempt == maxAttempts:
			return cluster.Unavailable(op, errBusy)
		}
		s.retries.Add(1)
		// Jitter, so that instances that collided do not collide again.
		pause := time.Duration(1+mathrand.IntN(1<<min(attempt, 5))) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// A view is what an operation read: the locks and holds at the paths it
// asked about, and the clock.
type view struct {
	table
	now        time.Time
	stale      []any   // lock index entries whose record Redis expired
	expired    []*Lock // records past Expires that Redis has not dropped yet
	staleHolds []any   // hold index entries whose record is gone
}

// reader is what read needs of a client or a transaction.
type reader interface {
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	MGet(ctx context.Context, keys ...string) *redis.SliceCmd
}

// read reads the clock, the locks in lockSpans of the index and the holds
// in holdSpans: one pipeline for the index entries, one MGET for the
// records.
func (s *Redis) read(ctx context.Context, c reader, lockSpans, holdSpans []span) (*view, error) {
	var clock *redis.TimeCmd
	lockCmds := make([]*redis.StringSliceCmd, len(lockSpans))
	holdCmds := make([]*redis.StringSliceCmd, len(holdSpans))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.now == nil {
			clock = p.Time(ctx)
		}
		for i, sp := range lockSpans {
			lockCmds[i] = p.ZRangeByLex(ctx, s.key(keyRoots), &redis.ZRangeBy{Min: sp.min, Max: sp.max})
		}
		for i, sp := range holdSpans {
			holdCmds[i] = p.ZRangeByLex(ctx, s.key(keyHolding), &redis.ZRangeBy{Min: sp.min, Max: sp.max})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v := &view{table: newTable()}
	if clock != nil {
		v.now = clock.Val()
	} else {
		v.now = s.now()
	}

	// One MGET for the records; entries of the same record read it once.
	var keys []string
	var lockEntries []string
	seen := map[string]bool{}
	for _, cmd := range lockCmds {
		for _, e := range cmd.Val() {
			if k := s.lockKey(idOf(e)); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
				lockEntries = append(lockEntries, e)
			}
		}
	}
	var holdEntries []string
	var holdOf []int             // holdEntries[i]'s record is keys[holdOf[i]]
	holdKeys := map[string]int{} // hold record key → its index in keys
	seenHold := map[string]bool{}
	for _, cmd := range holdCmds {
		for _, e := range cmd.Val() {
			if seenHold[e] {
				continue
			}
			seenHold[e] = true
			k := s.holdKey(idOf(e))
			i, ok := holdKeys[k]
			if !ok {
				i = len(keys)
				holdKeys[k] = i
				keys = append(keys, k)
			}
			holdEntries = append(holdEntries, e)
			holdOf = append(holdOf, i)
		}
	}
	if len(keys) == 0 {
		return v, nil
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}

	for i, e := range lockEntries {
		raw, ok := vals[i].(string)
		if !ok {
			v.stale = append(v.stale, e)
			continue
		}
		var rec lockRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fmt.Errorf("%w %s: %v", errCorrupt, keys[i], err)
		}
		l := rec.lock()
		v.add(&l)
		if !live(&l, v.now) {
			v.expired = append(v.expired, &l)
		}
	}
	decoded := map[int]bool{}
	for j, e := range holdEntries {
		i := holdOf[j]
		raw, ok := vals[i].(string)
		if !ok {
			v.staleHolds = append(v.staleHolds, e)
			continue
		}
		if decoded[i] {
			continue
		}
		decoded[i] = true
		var rec holdRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fmt.Errorf("%w %s: %v", errCorrupt, keys[i], err)
		}
		for _, t := range rec.Targets {
			v.holds[&hold{owner: rec.Owner, target: Target{t.Path, t.Depth}}] = struct{}{}
		}
	}
	return v, nil
}

// readOne reads the clock and the lock with token, as a table holding it
// alone (or nothing).
func (s *Redis) readOne(ctx context.Context, tx *redis.Tx, token string) (table, time.Time, error) {
	var clock *redis.TimeCmd
	var get *redis.StringCmd
	_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.now == nil {
			clock = p.Time(ctx)
		}
		get = p.Get(ctx, s.lockKey(token))
		return nil
	})
	t := newTable()
	if err != nil && !errors.Is(err, redis.Nil) {
		return t, time.Time{}, err
	}
	now := time.Time{}
	if clock != nil {
		now = clock.Val()
	} else {
		now = s.now()
	}
	if errors.Is(get.Err(), redis.Nil) {
		return t, now, nil
	}
	var rec lockRecord
	if err := json.Unmarshal([]byte(get.Val()), &rec); err != nil {
		return t, now, fmt.Errorf("%w %s: %v", errCorrupt, s.lockKey(token), err)
	}
	l := rec.lock()
	t.add(&l)
	return t, now, nil
}

// removeLocks queues the removal of ls, records and index entries.
func (s *Redis) removeLocks(ctx context.Context, p redis.Pipeliner, ls []*Lock) {
	if len(ls) == 0 {
		return
	}
	keys := make([]string, len(ls))
	entries := make([]any, len(ls))
	for i, l := range ls {
		keys[i] = s.lockKey(l.Token)
		entries[i] = entry(l.Root, l.Token)
	}
	p.Del(ctx, keys...)
	p.ZRem(ctx, s.key(keyRoots), entries...)
}

// tidy queues the removal of the dead entries and records v saw. It runs
// inside a transaction whose WATCH guarantees that no expired lock was
// refreshed meanwhile.
func (s *Redis) tidy(ctx context.Context, p redis.Pipeliner, v *view) {
	if len(v.stale) > 0 {
		p.ZRem(ctx, s.key(keyRoots), v.stale...)
	}
	s.removeLocks(ctx, p, v.expired)
	if len(v.staleHolds) > 0 {
		p.ZRem(ctx, s.key(keyHolding), v.staleHolds...)
	}
}

// keep renews the hold id until the returned release is called, which
// removes it.
func (s *Redis) keep(id string, entries []any) func() {
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(s.holdTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), s.holdTTL/3)
				renewed, err := s.r.Client().PExpire(ctx, s.holdKey(id), s.holdTTL).Result()
				cancel()
				if err == nil && !renewed {
					return // expired while Redis was out of reach: nothing left to renew
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			// Detached: the request may be gone. If Redis is, the hold
			// expires by itself.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.r.Client().TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, s.holdKey(id))
				if len(entries) > 0 {
					p.ZRem(ctx, s.key(keyHolding), entries...)
				}
				return nil
			})
		})
	}
}

// maybeSweep sweeps the indexes if this instance has not tried for a
// minute and no instance has swept for a minute. It runs after an
// operation that went through, so that a Redis out of reach does not
// make the answer wait twice; a failed sweep is tried again a minute
// later.
func (s *Redis) maybeSweep(ctx context.Context) {
	s.mu.Lock()
	due := !time.Now().Before(s.nextSweep)
	if due {
		s.nextSweep = time.Now().Add(sweepEvery)
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if ok, err := s.r.Client().SetNX(ctx, s.key(keySwept), 1, sweepEvery).Result(); err != nil || !ok {
		return
	}
	s.sweep(ctx)
}

// sweep removes the index entries whose record Redis has expired, a page
// at a time. Records never come back, so this needs no transaction.
func (s *Redis) sweep(ctx context.Context) error {
	for _, index := range []struct {
		key    string
		record func(id string) string
	}{{s.key(keyRoots), s.lockKey}, {s.key(keyHolding), s.holdKey}} {
		const page = 500
		from := "-"
		for {
			entries, err := s.r.Client().ZRangeByLex(ctx, index.key, &redis.ZRangeBy{Min: from, Max: "+", Count: page}).Result()
			if err != nil {
				return cluster.Unavailable("sweep locks", err)
			}
			if len(entries) == 0 {
				break
			}
			exists := make([]*redis.IntCmd, len(entries))
			if _, err := s.r.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, e := range entries {
					exists[i] = p.Exists(ctx, index.record(idOf(e)))
				}
				return nil
			}); err != nil {
				return cluster.Unavailable("sweep locks", err)
			}
			var gone []any
			for i, e := range entries {
				if exists[i].Val() == 0 {
					gone = append(gone, e)
				}
			}
			if len(gone) > 0 {
				if err := s.r.Client().ZRem(ctx, index.key, gone...).Err(); err != nil {
					return cluster.Unavailable("sweep locks", err)
				}
			}
			if len(entries) < page {
				break
			}
			from = "(" + entries[len(entries)-1]
		}
	}
	return nil
}

// Keys, under r.Key("locks", …).
const (
	keyVersion     = "v"
	keyHoldVersion = "hv"
	keyRoots       = "roots"
	keyHolding     = "holding"
	keySwept       = "swept"
)

func (s *Redis) key(name string) string      { return s.r.Key("locks", name) }
func (s *Redis) lockKey(token string) string { return s.r.Key("locks", "lock", token) }
func (s *Redis) holdKey(id string) string    { return s.r.Key("locks", "hold", id) }

// entry is an index entry: the path, NUL (which sorts before any other
// byte, so a path's entries come together) and the record's id.
func entry(p, id string) string { return p + "\x00" + id }

// idOf is the id (token) of an index entry.
func idOf(e string) string { return e[strings.LastIndexByte(e, 0)+1:] }

func zs(entries []any) []redis.Z {
	out := make([]redis.Z, len(entries))
	for i, e := range entries {
		out[i] = redis.Z{Member: e}
	}
	return out
}

// A span is a ZRANGEBYLEX range of an index.
type span struct{ min, max string }

// at is the span of the entries at path p.
func at(p string) span { return span{"[" + p + "\x00", "(" + p + "\x01"} }

// under is the span of the entries strictly below p ('0' follows '/').
func under(p string) span {
	if p == "/" {
		return span{"-", "+"}
	}
	return span{"[" + p + "/", "(" + p + "0"}
}

// around returns the spans of what may share a resource with t: entries
// at t.Path and at its ancestors and, for DepthInfinity, below it.
func around(t Target) []span {
	var out []span
	for q := t.Path; ; q = path.Dir(q) {
		out = append(out, at(q))
		if q == "/" {
			break
		}
	}
	if t.Depth == DepthInfinity {
		out = append(out, under(t.Path))
	}
	return out
}

// dedupe returns spans sorted and without repeats. It works on a copy:
// slices.Compact zeroes what it drops, and a caller that kept spans for
// another attempt would read empty ranges, which Redis refuses.
func dedupe(spans []span) []span {
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b span) int {
		return strings.Compare(a.min+"\xff"+a.max, b.min+"\xff"+b.max)
	})
	return slices.Compact(spans)
}

// lockRecord is a Lock as stored.
type lockRecord struct {
	Token    string        `json:"token"`
	Root     string        `json:"root"`
	Owner    string        `json:"owner"`
	OwnerXML string        `json:"owner_xml,omitempty"`
	Scope    Scope         `json:"scope"`
	Depth    Depth         `json:"depth"`
	Timeout  time.Duration `json:"timeout_ns"`
	Expires  time.Time     `json:"expires"`
}

func recordOf(l Lock) lockRecord {
	return lockRecord{l.Token, l.Root, l.Owner, l.OwnerXML, l.Scope, l.Depth, l.Timeout, l.Expires}
}

func (r lockRecord) lock() Lock {
	return Lock{r.Token, r.Root, r.Owner, r.OwnerXML, r.Scope, r.Depth, r.Timeout, r.Expires}
}

// holdRecord is a write in progress as stored.
type holdRecord struct {
	Owner   string       `json:"owner"`
	Targets []holdTarget `json:"targets"`
}

type holdTarget struct {
	Path  string `json:"path"`
	Depth Depth  `json:"depth"`
}

func holdRecordOf(owner string, targets []Target) holdRecord {
	h := holdRecord{Owner: owner}
	for _, t := range targets {
		h.Targets = append(h.Targets, holdTarget{t.Path, t.Depth})
	}
	return h
}

func newHoldID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
