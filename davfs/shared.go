package davfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"bridge/cluster"
	"bridge/drivers"
)

// What several bridge instances share besides locks and dead properties
// (which have their own packages): pending empty entries, and the news
// that a folder changed, so that no instance serves a listing cached
// before another instance's write.

// redisTimeout bounds one Redis call made for a request.
const redisTimeout = 5 * time.Second

func sharedCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), redisTimeout)
}

// pendingTTL is how long a folder's pending entries outlive its last new
// one: one process forgets them when it ends, Redis never would. A
// client sends the content seconds after the empty file.
const pendingTTL = 24 * time.Hour

// redisPending keeps pending entries in one Redis hash per folder
// ("<prefix>pending:<mount>:<dir>", field = name, value = modification
// time in Unix nanoseconds), so a Windows client's empty-then-content
// PUTs may land on different instances.
type redisPending struct {
	r *cluster.Redis
}

func (p redisPending) key(m *mount, dir string) string {
	return p.r.Key("pending", cacheKey(m.path, dir))
}

func (p redisPending) add(m *mount, rel string, modTime time.Time) (drivers.Object, error) {
	o := newPending(rel, modTime)
	ctx, cancel := sharedCtx()
	defer cancel()
	key := p.key(m, path.Dir(rel))
	_, err := p.r.Client().TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.HSet(ctx, key, o.Name, strconv.FormatInt(o.ModTime.UnixNano(), 10))
		tx.Expire(ctx, key, pendingTTL)
		return nil
	})
	return o, cluster.Unavailable("pending entry", err)
}

func (p redisPending) remove(m *mount, rel string) error {
	ctx, cancel := sharedCtx()
	defer cancel()
	return cluster.Unavailable("pending entry", p.r.Client().HDel(ctx, p.key(m, path.Dir(rel)), path.Base(rel)).Err())
}

func (p redisPending) in(m *mount, dir string) ([]drivers.Object, error) {
	if m.features.EmptyFiles {
		return nil, nil // the provider keeps empty files: never any here
	}
	ctx, cancel := sharedCtx()
	defer cancel()
	entries, err := p.r.Client().HGetAll(ctx, p.key(m, dir)).Result()
	if err != nil {
		return nil, cluster.Unavailable("pending entries", err)
	}
	out := make([]drivers.Object, 0, len(entries))
	for name, v := range entries {
		ns, _ := strconv.ParseInt(v, 10, 64)
		out = append(out, newPending(path.Join(dir, name), time.Unix(0, ns)))
	}
	return out, nil
}

// tree returns the hash keys of folder rel and of every folder below it.
func (p redisPending) tree(ctx context.Context, m *mount, rel string) ([]string, error) {
	top := p.key(m, rel)
	below := top + "/"
	if rel == "/" {
		below = top
	}
	keys := []string{top}
	iter := p.r.Client().Scan(ctx, 0, globEscape(below)+"*", 256).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); k != top {
			keys = append(keys, k)
		}
	}
	return keys, iter.Err()
}

func (p redisPending) removeTree(m *mount, rel string) error {
	if m.features.EmptyFiles {
		return nil
	}
	ctx, cancel := sharedCtx()
	defer cancel()
	keys, err := p.tree(ctx, m, rel)
	if err == nil {
		err = p.r.Client().Del(ctx, keys...).Err()
	}
	return cluster.Unavailable("pending entries", err)
}

func (p redisPending) carryTree(m *mount, from, to string, keep bool) error {
	if m.features.EmptyFiles {
		return nil
	}
	ctx, cancel := sharedCtx()
	defer cancel()
	keys, err := p.tree(ctx, m, from)
	if err != nil {
		return cluster.Unavailable("pending entries", err)
	}
	prefix := p.key(m, "")
	for _, k := range keys {
		entries, err := p.r.Client().HGetAll(ctx, k).Result()
		if err != nil {
			return cluster.Unavailable("pending entries", err)
		}
		if len(entries) == 0 {
			continue
		}
		dir := strings.TrimPrefix(k, prefix)
		dst := p.key(m, path.Join(to, strings.TrimPrefix(dir, from)))
		_, err = p.r.Client().TxPipelined(ctx, func(tx redis.Pipeliner) error {
			tx.HSet(ctx, dst, entries)
			tx.Expire(ctx, dst, pendingTTL)
			if !keep {
				tx.Del(ctx, k)
			}
			return nil
		})
		if err != nil {
			return cluster.Unavailable("pending entries", err)
		}
	}
	return nil
}

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// invalidator tells the other instances which folders changed through
// this one, and drops the folders they name from this instance's listing
// cache. A write is answered only after every other instance has dropped
// the folder: the message goes out on the Redis channel
// "<prefix>invalidate", each instance that applied it acknowledges on
// "<prefix>invalidate-ack:<sender>", and the writer waits for as many
// acknowledgements as PUBLISH reported receivers (up to ackWait: an
// instance that died does not hold writes up for longer). While the
// subscription is broken nothing can be trusted: the whole cache is
// dropped, and again when go-redis has resubscribed.
type invalidator struct {
	r      *cluster.Redis
	self   string // this instance's id, to skip its own messages
	cache  *listCache
	log    zerolog.Logger
	ps     *redis.PubSub
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	seq     uint64
	waiting map[string]chan struct{} // message id -> one value per ack
}

// ackWait bounds how long a write waits for the other instances.
const ackWait = 2 * time.Second

// Messages are "<sender id> <message id> <t|1> <mount>:<dir>": t drops the
// folder and everything below it, 1 the folder only. Acks carry the
// message id.
func startInvalidator(r *cluster.Redis, cache *listCache, log zerolog.Logger) (*invalidator, error) {
	b := make([]byte, 8)
	rand.Read(b)
	ctx, cancel := context.WithCancel(context.Background())
	inv := &invalidator{r: r, self: hex.EncodeToString(b), cache: cache, log: log, cancel: cancel,
		done: make(chan struct{}), waiting: map[string]chan struct{}{}}
	inv.ps = r.Client().Subscribe(ctx, r.Key("invalidate"), inv.ackChannel(inv.self))
	// The subscription is in place before the first request is served.
	sctx, scancel := context.WithTimeout(ctx, redisTimeout)
	defer scancel()
	for range 2 {
		if _, err := inv.ps.Receive(sctx); err != nil {
			cancel()
			inv.ps.Close()
			return nil, cluster.Unavailable("subscribe", err)
		}
	}
	go inv.run(ctx)
	return inv, nil
}

func (inv *invalidator) ackChannel(id string) string { return inv.r.Key("invalidate-ack", id) }

func (inv *invalidator) run(ctx context.Context) {
	defer close(inv.done)
	broken := false
	for {
		msg, err := inv.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !broken {
				inv.log.Error().Str("error", err.Error()).Msg("shared state: listing invalidations lost; this instance's listing cache is dropped until they come back")
			}
			broken = true
			inv.cache.purge()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// (Re)subscribed: whatever was published meanwhile is lost.
			inv.cache.purge()
			broken = false
		case *redis.Message:
			if m.Channel == inv.ackChannel(inv.self) {
				inv.acked(m.Payload)
			} else if sender, id, ok := inv.apply(m.Payload); ok {
				inv.ack(ctx, sender, id)
			}
		}
	}
}

// apply drops what another instance's message names and returns whom to
// acknowledge, and with what; ok is false for this instance's own
// messages and for garbage.
func (inv *invalidator) apply(payload string) (sender, id string, ok bool) {
	f := strings.SplitN(payload, " ", 4)
	if len(f) != 4 || f[0] == inv.self {
		return "", "", false
	}
	// "<mount>:<dir>": a mount path may hold ":" but never "/", and dir
	// starts with "/".
	i := strings.Index(f[3], ":/")
	if i < 0 {
		return "", "", false
	}
	mount, dir := f[3][:i], f[3][i+1:]
	if f[2] == "t" {
		inv.cache.dropTree(mount, dir)
	} else {
		inv.cache.drop(mount, dir)
	}
	return f[0], f[1], true
}

// ack tells sender that its message id was applied here.
func (inv *invalidator) ack(ctx context.Context, sender, id string) {
	actx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	inv.r.Client().Publish(actx, inv.ackChannel(sender), id)
}

func (inv *invalidator) acked(id string) {
	inv.mu.Lock()
	c := inv.waiting[id]
	inv.mu.Unlock()
	if c != nil {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// changed tells the other instances that dir (tree: and everything below
// it) changed, and returns once they all dropped it.
func (inv *invalidator) changed(mount, dir string, tree bool) {
	kind := "1"
	if tree {
		kind = "t"
	}
	inv.mu.Lock()
	inv.seq++
	id := strconv.FormatUint(inv.seq, 36)
	acks := make(chan struct{}, 64)
	inv.waiting[id] = acks
	inv.mu.Unlock()
	defer func() {
		inv.mu.Lock()
		delete(inv.waiting, id)
		inv.mu.Unlock()
	}()
	ctx, cancel := sharedCtx()
	defer cancel()
	n, err := inv.r.Client().Publish(ctx, inv.r.Key("invalidate"), inv.self+" "+id+" "+kind+" "+cacheKey(mount, dir)).Result()
	if err != nil {
		// The write itself is done; other instances may show the old
		// listing until their cache's TTL, and their subscription,
		// broken too, drops their caches.
		inv.log.Error().Str("mount", mount).Str("dir", dir).Str("error", err.Error()).
			Msg("shared state: could not tell other instances that a folder changed")
		return
	}
	timeout := time.NewTimer(ackWait)
	defer timeout.Stop()
	for left := n - 1; left > 0; left-- { // n counts this instance too
		select {
		case <-acks:
		case <-timeout.C:
			inv.log.Warn().Str("mount", mount).Str("dir", dir).Int64("missing", left).
				Msg("shared state: not every instance acknowledged a folder change in time")
			return
		}
	}
}

func (inv *invalidator) close() {
	inv.cancel()
	inv.ps.Close()
	<-inv.done
}

// holdTTL bounds how long a write's hold on a path outlives an instance
// that died holding it; the holder keeps it alive while it writes.
const holdTTL = 30 * time.Second

// hold is shortHolds across instances: a lease per path
// ("<prefix>hold:<path>") for each of names, taken in one order (so two
// writes never wait for each other) and waited for while another
// instance holds it. The caller holds the names in this process already,
// so only one request per instance waits here for a path.
func (inv *invalidator) hold(ctx context.Context, names []string) (func(), error) {
	names = holdOrder(names)
	var releases []func()
	release := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	for _, name := range names {
		wait := 5 * time.Millisecond
		for {
			r, ok, err := inv.r.Lease(ctx, inv.r.Key("hold", name), holdTTL)
			if err != nil {
				release()
				return nil, err
			}
			if ok {
				releases = append(releases, r)
				break
			}
			select {
			case <-time.After(wait):
				wait = min(2*wait, 100*time.Millisecond)
			case <-ctx.Done():
				release()
				return nil, ctx.Err()
			}
		}
	}
	return release, nil
}
