package locks

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"bridge/cluster"
	"bridge/cluster/redistest"
	"bridge/drivers"
)

// testRedis is the redis-server the package's tests share (each test under
// its own key prefix); nil when there is none, and then redisMissing says
// why.
var (
	testRedis    *redistest.Server
	redisMissing string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "locks-redis")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testRedis, err = redistest.StartServer(dir)
	if err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "redis-server:", err)
			os.Exit(1)
		}
		redisMissing = err.Error()
	}
	code := m.Run()
	if testRedis != nil {
		testRedis.Stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// openRedis is a new connection pool to the test server: one per bridge
// instance.
func openRedis(t *testing.T, prefix string) *cluster.Redis {
	t.Helper()
	if testRedis == nil {
		t.Skipf("redis-server: %s", redisMissing)
	}
	r, err := cluster.Open(ctx, testRedis.URL, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newTestRedis(t *testing.T, opts Options) System {
	return NewRedis(openRedis(t, redistest.Prefix(t)), opts)
}

// instances returns n lock systems that share a prefix, each through its
// own connection pool, as n bridge instances would.
func instances(t *testing.T, n int, opts Options) []*Redis {
	t.Helper()
	prefix := redistest.Prefix(t)
	out := make([]*Redis, n)
	for i := range out {
		out[i] = NewRedis(openRedis(t, prefix), opts)
	}
	return out
}

func zcard(t *testing.T, s *Redis, name string) int64 {
	t.Helper()
	n, err := s.r.Client().ZCard(ctx, s.key(name)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds, failing after 10 seconds: for
// what Redis's TTLs bring about.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10s", what)
		}
	}
}

// sameLock compares locks, their expiries as instants.
func sameLock(a, b Lock) bool {
	eq := a.Expires.Equal(b.Expires)
	a.Expires, b.Expires = time.Time{}, time.Time{}
	return eq && a == b
}

func TestRedisSharedAcrossInstances(t *testing.T) {
	in := instances(t, 2, Options{})
	a, b := in[0], in[1]
	l, err := a.Create(ctx, Lock{Root: "/m/f", Owner: "alice", OwnerXML: "<D:href>alice</D:href>", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !tokenPattern.MatchString(l.Token) {
		t.Fatalf("token %q", l.Token)
	}

	for _, owner := range []string{"bob", "alice"} {
		if _, err := b.Create(ctx, Lock{Root: "/m/f", Owner: owner}); !errors.Is(err, ErrLocked) {
			t.Fatalf("conflicting lock by %s through the other instance: err = %v, want ErrLocked", owner, err)
		}
		if _, err := b.Confirm(ctx, owner, nil, Target{"/m/f", DepthZero}); !errors.Is(err, ErrLocked) {
			t.Fatalf("write by %s without token through the other instance: err = %v, want ErrLocked", owner, err)
		}
	}
	if _, err := b.Confirm(ctx, "bob", []string{l.Token}, Target{"/m/f", DepthZero}); !errors.Is(err, ErrLocked) {
		t.Fatalf("write by bob with alice's token: err = %v, want ErrLocked", err)
	}
	release, err := b.Confirm(ctx, "alice", []string{l.Token}, Target{"/m/f", DepthZero})
	if err != nil {
		t.Fatalf("write with the token through the other instance: %v", err)
	}
	release()

	ls, err := b.Locks(ctx, "/m/f", DepthZero)
	if err != nil || len(ls) != 1 || !sameLock(ls[0], l) {
		t.Fatalf("Locks through the other instance: %+v, %v; want %+v", ls, err, l)
	}
	if _, err := b.Refresh(ctx, "bob", l.Token, "/m/f", time.Hour); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("refresh by bob: err = %v", err)
	}
	r, err := b.Refresh(ctx, "alice", l.Token, "/m/f", 2*time.Minute)
	if err != nil || r.Timeout != 2*time.Minute || !r.Expires.After(l.Expires) {
		t.Fatalf("refresh through the other instance: %+v, %v", r, err)
	}
	if ls, _ := a.Locks(ctx, "/", DepthInfinity); len(ls) != 1 || !ls[0].Expires.Equal(r.Expires) {
		t.Fatalf("refresh not seen by the first instance: %+v", ls)
	}

	if err := b.Unlock(ctx, "alice", l.Token, "/m/f"); err != nil {
		t.Fatalf("unlock through the other instance: %v", err)
	}
	if _, err := a.Create(ctx, Lock{Root: "/m/f", Owner: "bob"}); err != nil {
		t.Fatalf("lock after the unlock: %v", err)
	}

	// Everything lives under the deployment's prefix, in locks:.
	keys, err := a.r.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, k := range keys {
		if strings.HasPrefix(k, a.r.Prefix()) {
			mine++
			if !strings.HasPrefix(k, a.r.Key("locks")+":") {
				t.Errorf("key %q outside %slocks:", k, a.r.Prefix())
			}
		}
	}
	if mine == 0 {
		t.Fatal("no keys under the prefix")
	}
}

func TestRedisConcurrentCreateAcrossInstances(t *testing.T) {
	in := instances(t, 2, Options{})
	const perInstance = 20
	var wg sync.WaitGroup
	errs := make([]error, 2*perInstance)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = in[i%2].Create(ctx, Lock{Root: "/m/f", Owner: fmt.Sprintf("user%d", i)})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrLocked):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d conflicting locks granted, want 1", won, len(errs))
	}
	if n := zcard(t, in[0], keyRoots); n != 1 {
		t.Fatalf("%d locks indexed, want 1", n)
	}
}

// TestRedisConfirmRacesCreate runs writes through one instance against
// locks through the other: a write confirmed must never run while
// another user's lock covers it.
func TestRedisConfirmRacesCreate(t *testing.T) {
	in := instances(t, 2, Options{})
	a, b := in[0], in[1]
	const workers, rounds = 6, 15
	var wg sync.WaitGroup
	fail := make(chan error, 2*workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				release, err := a.Confirm(ctx, "bob", nil, Target{"/m/d/f", DepthZero})
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err != nil {
					fail <- err
					return
				}
				ls, err := a.Locks(ctx, "/m/d/f", DepthZero)
				release()
				if err != nil || len(ls) > 0 {
					fail <- fmt.Errorf("locks %+v (%v) granted over a write in progress", ls, err)
					return
				}
			}
		})
		wg.Go(func() {
			for range rounds {
				l, err := b.Create(ctx, Lock{Root: "/m/d", Depth: DepthInfinity, Owner: "alice"})
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err == nil {
					err = b.Unlock(ctx, "alice", l.Token, "/m/d")
				}
				if err != nil {
					fail <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
}

// TestRedisRetriesReadTheSamePaths makes MOVE-shaped writes (source and
// destination share ancestors, so their spans repeat) and lock moves
// start again under locks changing elsewhere. Every attempt must read
// the paths of the first: a retry once read empty ranges, and Redis
// answered "min or max not valid string range item" (a 503).
func TestRedisRetriesReadTheSamePaths(t *testing.T) {
	in := instances(t, 3, Options{})
	stop := make(chan struct{})
	var churn, writers sync.WaitGroup
	fail := make(chan error, 64)
	for i := range 6 {
		// Locks elsewhere: no conflict, only version changes.
		churn.Go(func() {
			root := fmt.Sprintf("/other/%d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				l, err := in[i%3].Create(ctx, Lock{Root: root, Owner: "carol", Depth: DepthInfinity})
				if err == nil {
					err = in[i%3].Unlock(ctx, "carol", l.Token, root)
				}
				if err != nil {
					fail <- fmt.Errorf("lock elsewhere: %w", err)
					return
				}
			}
		})
	}
	for i := range 9 {
		writers.Go(func() {
			s := in[i%3]
			for j := range 40 {
				from, to := fmt.Sprintf("/m/l/src%d", j%3), fmt.Sprintf("/m/l/dest%d/", i)
				release, err := s.Confirm(ctx, "bob", nil,
					Target{from, DepthInfinity}, Target{to, DepthInfinity}, Target{"/m/l/", DepthZero})
				if err != nil {
					fail <- fmt.Errorf("confirm move %s → %s: %w", from, to, err)
					return
				}
				release()
				if err := s.Move(ctx, from, to); err != nil {
					fail <- fmt.Errorf("move locks %s → %s: %w", from, to, err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	churn.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	var retries int64
	for _, s := range in {
		retries += s.retries.Load()
	}
	if retries == 0 {
		t.Fatal("no operation was started again: the test did not exercise retries")
	}
	t.Logf("%d retries", retries)
}

func TestRedisHoldAcrossInstances(t *testing.T) {
	in := instances(t, 2, Options{})
	a, b := in[0], in[1]
	release, err := a.Confirm(ctx, "alice", nil, Target{"/m/d/f", DepthZero})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, Lock{Root: "/m/d", Depth: DepthInfinity, Owner: "bob"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock over a write in progress on the other instance: err = %v, want ErrLocked", err)
	}
	if _, err := b.Create(ctx, Lock{Root: "/m/d/f", Owner: "bob"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock of the written file: err = %v, want ErrLocked", err)
	}
	own, err := b.Create(ctx, Lock{Root: "/m/d/f", Owner: "alice"})
	if err != nil {
		t.Fatalf("the writer's own lock: %v", err)
	}
	if err := b.Unlock(ctx, "alice", own.Token, own.Root); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := b.Create(ctx, Lock{Root: "/m/d", Depth: DepthInfinity, Owner: "bob"}); err != nil {
		t.Fatalf("lock after the write: %v", err)
	}
	if n := zcard(t, a, keyHolding); n != 0 {
		t.Fatalf("%d hold entries left after release", n)
	}
}

func TestRedisHoldRenewed(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	in := instances(t, 2, Options{HoldTTL: ttl})
	release, err := in[0].Confirm(ctx, "alice", nil, Target{"/m/f", DepthZero})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*ttl + ttl/3)
	if _, err := in[1].Create(ctx, Lock{Root: "/m/f", Owner: "bob"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock over a write still running after twice its hold TTL: err = %v, want ErrLocked", err)
	}
	release()
	if _, err := in[1].Create(ctx, Lock{Root: "/m/f", Owner: "bob"}); err != nil {
		t.Fatalf("lock after the write: %v", err)
	}
}

func TestRedisHoldOfDeadInstanceExpires(t *testing.T) {
	t.Parallel()
	prefix := redistest.Prefix(t)
	ra := openRedis(t, prefix)
	a := NewRedis(ra, Options{HoldTTL: time.Second})
	b := NewRedis(openRedis(t, prefix), Options{})
	if _, err := a.Confirm(ctx, "alice", nil, Target{"/m/f", DepthZero}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, Lock{Root: "/m/f", Owner: "bob"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock over a write in progress: err = %v, want ErrLocked", err)
	}
	ra.Close() // instance a is gone; its write is never released
	eventually(t, "granted after the dead instance's hold expired", func() bool {
		_, err := b.Create(ctx, Lock{Root: "/m/f", Owner: "bob"})
		if err != nil && !errors.Is(err, ErrLocked) {
			t.Fatal(err)
		}
		return err == nil
	})
	if err := b.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := zcard(t, b, keyHolding); n != 0 {
		t.Fatalf("%d hold entries left after a sweep", n)
	}
}

func TestRedisTTLs(t *testing.T) {
	s := instances(t, 1, Options{MaxTimeout: time.Hour, HoldTTL: time.Minute})[0]
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := s.r.Client().PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Within 2s below: the time the test took since.
	near := func(what string, got, want time.Duration) {
		t.Helper()
		if got > want || got < want-2*time.Second {
			t.Errorf("%s: PTTL %v, want %v", what, got, want)
		}
	}
	for _, tc := range []struct{ asked, granted time.Duration }{
		{30 * time.Second, 30 * time.Second},
		{Infinite, time.Hour},
		{0, time.Hour},
	} {
		l, err := s.Create(ctx, Lock{Root: "/m/" + tc.asked.String(), Owner: "alice", Timeout: tc.asked})
		if err != nil {
			t.Fatal(err)
		}
		if l.Timeout != tc.granted {
			t.Errorf("asked %v, granted %v", tc.asked, l.Timeout)
		}
		near("lock asking "+tc.asked.String(), pttl(s.lockKey(l.Token)), tc.granted)
		r, err := s.Refresh(ctx, "alice", l.Token, l.Root, 45*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		near("refreshed to 45s", pttl(s.lockKey(r.Token)), 45*time.Second)
	}
	release, err := s.Confirm(ctx, "alice", nil, Target{"/m/f", DepthZero})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ids, err := s.r.Client().ZRange(ctx, s.key(keyHolding), 0, -1).Result()
	if err != nil || len(ids) != 1 {
		t.Fatalf("hold entries %q, %v", ids, err)
	}
	near("hold", pttl(s.holdKey(idOf(ids[0]))), time.Minute)
}

// TestRedisExpiry lets Redis's clock and TTLs, not a fake clock, end locks.
func TestRedisExpiry(t *testing.T) {
	t.Parallel()
	in := instances(t, 2, Options{})
	a, b := in[0], in[1]
	l, err := a.Create(ctx, Lock{Root: "/m/d", Depth: DepthInfinity, Owner: "alice", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var gone []Lock
	for i := range 5 {
		x, err := a.Create(ctx, Lock{Root: fmt.Sprintf("/x/%d", i), Owner: "alice", Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		gone = append(gone, x)
	}
	if _, err := b.Confirm(ctx, "bob", nil, Target{"/m/d/f", DepthZero}); !errors.Is(err, ErrLocked) {
		t.Fatalf("write before expiry: err = %v, want ErrLocked", err)
	}
	eventually(t, "granted after the lock's timeout", func() bool {
		_, err := b.Create(ctx, Lock{Root: "/m/d/f", Owner: "bob"})
		if err != nil && !errors.Is(err, ErrLocked) {
			t.Fatal(err)
		}
		return err == nil
	})
	if _, err := a.Refresh(ctx, "alice", l.Token, "/m/d", time.Minute); !errors.Is(err, ErrNoSuchLock) {
		t.Fatalf("refresh after expiry: err = %v, want ErrNoSuchLock", err)
	}
	if err := a.Unlock(ctx, "alice", l.Token, "/m/d"); !errors.Is(err, ErrNoSuchLock) {
		t.Fatalf("unlock after expiry: err = %v, want ErrNoSuchLock", err)
	}
	if ls, err := a.Locks(ctx, "/", DepthInfinity); err != nil || len(ls) != 1 || ls[0].Owner != "bob" {
		t.Fatalf("locks after expiry: %+v, %v; want bob's alone", ls, err)
	}

	// The sweep drops the index entries of the locks nobody looked at.
	eventually(t, "expired by Redis", func() bool {
		n, err := a.r.Client().Exists(ctx, a.lockKey(gone[len(gone)-1].Token)).Result()
		return err == nil && n == 0
	})
	if err := a.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := zcard(t, a, keyRoots); n != 1 {
		t.Fatalf("%d lock entries after a sweep, want 1", n)
	}
}

func TestRedisSweepsOncePerMinute(t *testing.T) {
	t.Parallel()
	in := instances(t, 3, Options{})
	a, b, c := in[0], in[1], in[2]
	l, err := a.Create(ctx, Lock{Root: "/x", Owner: "alice", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "expired by Redis", func() bool {
		n, err := a.r.Client().Exists(ctx, a.lockKey(l.Token)).Result()
		return err == nil && n == 0
	})
	// a swept at its first Create (nothing to do then): b does not sweep
	// within the minute.
	if _, err := b.Create(ctx, Lock{Root: "/y", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	if n := zcard(t, b, keyRoots); n != 2 {
		t.Fatalf("%d lock entries, want 2 (no sweep within a minute of the last)", n)
	}
	// A minute later, the first operation through an instance sweeps.
	if err := c.r.Client().Del(ctx, c.key(keySwept)).Err(); err != nil {
		t.Fatal(err)
	}
	release, err := c.Confirm(ctx, "bob", nil, Target{"/z", DepthZero})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if n := zcard(t, c, keyRoots); n != 1 {
		t.Fatalf("%d lock entries after a sweep, want 1", n)
	}
}

func TestRedisCorruptRecordIsNoGrant(t *testing.T) {
	s := instances(t, 1, Options{})[0]
	c := s.r.Client()
	if err := c.Set(ctx, s.lockKey("urn:uuid:x"), "{not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, s.key(keyRoots), redis.Z{Member: entry("/m/f", "urn:uuid:x")}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Lock{Root: "/m/f", Owner: "bob"}); !errors.Is(err, errCorrupt) {
		t.Fatalf("Create over an unreadable record: err = %v", err)
	}
	if _, err := s.Confirm(ctx, "bob", nil, Target{"/m", DepthInfinity}); !errors.Is(err, errCorrupt) {
		t.Fatalf("Confirm over an unreadable record: err = %v", err)
	}
}

func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	if testRedis == nil {
		t.Skipf("redis-server: %s", redisMissing)
	}
	srv := redistest.Start(t)
	r, err := cluster.Open(ctx, srv.URL, redistest.Prefix(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := NewRedis(r, Options{})
	l, err := s.Create(ctx, Lock{Root: "/m/f", Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	release, err := s.Confirm(ctx, "alice", []string{l.Token}, Target{"/m/f", DepthZero})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	release() // must not hang or panic

	// Each call takes a while to give up (the pool's retries): at once.
	ops := map[string]func() error{
		"Create": func() error { _, err := s.Create(ctx, Lock{Root: "/m/g", Owner: "alice"}); return err },
		"Confirm": func() error {
			_, err := s.Confirm(ctx, "alice", []string{l.Token}, Target{"/m/f", DepthZero})
			return err
		},
		"Refresh": func() error { _, err := s.Refresh(ctx, "alice", l.Token, "/m/f", time.Minute); return err },
		"Unlock":  func() error { return s.Unlock(ctx, "alice", l.Token, "/m/f") },
		"Locks":   func() error { _, err := s.Locks(ctx, "/m/f", DepthZero); return err },
		"Move":    func() error { return s.Move(ctx, "/m/f", "/m/g") },
		"Delete":  func() error { return s.Delete(ctx, "/m/f") },
	}
	var wg sync.WaitGroup
	for op, call := range ops {
		wg.Go(func() {
			if err := call(); !errors.Is(err, drivers.ErrStateUnavailable) {
				t.Errorf("%s with Redis gone: err = %v, want ErrStateUnavailable", op, err)
			}
		})
	}
	wg.Wait()
}
