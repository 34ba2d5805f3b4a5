package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"bridge/cluster"
	"bridge/cluster/redistest"
	"bridge/drivers"
)

type tryFunc func(peer, user, pass string) *httptest.ResponseRecorder

// guarded is a middleware with alice and bob ("<name>-pw") behind th;
// onResult, if set, learns each login outcome.
func guarded(t *testing.T, th *Throttle, onResult func(r *http.Request, user string, ok bool)) tryFunc {
	t.Helper()
	var accounts []Account
	for _, name := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte(name+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, Account{User: User{Name: name}, PasswordHash: string(h)})
	}
	b, err := NewBasic("test", accounts)
	if err != nil {
		t.Fatal(err)
	}
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), th, onResult)
	return func(peer, user, pass string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
}

// instances are two bridge instances' throttles on one Redis, each with
// its own connection pool, and a third client for looking at the keys.
type instances struct {
	a, b   tryFunc
	rdb    *redis.Client
	prefix string
	srv    *redistest.Server
}

func twoInstances(t *testing.T, max int) *instances {
	t.Helper()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	ctx := redistest.Context(t)
	var tries [2]tryFunc
	for i := range tries {
		r, err := cluster.Open(ctx, srv.URL, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		tries[i] = guarded(t, NewSharedThrottle(r, max, time.Minute, 5*time.Minute), nil)
	}
	look, err := cluster.Open(ctx, srv.URL, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { look.Close() })
	return &instances{a: tries[0], b: tries[1], rdb: look.Client(), prefix: prefix, srv: srv}
}

// stores runs a scenario on one in-memory throttle (both "instances" are
// the same) and on two Redis-backed instances: the shared throttle must
// behave as the single-process one does.
func stores(t *testing.T, max int, scenario func(t *testing.T, a, b tryFunc)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		try := guarded(t, NewThrottle(max, time.Minute, 5*time.Minute), nil)
		scenario(t, try, try)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		in := twoInstances(t, max)
		scenario(t, in.a, in.b)
	})
}

func wantCode(t *testing.T, w *httptest.ResponseRecorder, code int, what string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("%s: %d, want %d", what, w.Code, code)
	}
}

func wantBlocked(t *testing.T, w *httptest.ResponseRecorder, what string) {
	t.Helper()
	wantCode(t, w, http.StatusTooManyRequests, what)
	if ra, _ := strconv.Atoi(w.Header().Get("Retry-After")); ra < 299 || ra > 301 {
		t.Fatalf("%s: Retry-After %q, want about 300", what, w.Header().Get("Retry-After"))
	}
}

// Wrong logins split over two instances add up to one limit, a block
// started through one holds on the other, and a right password (the
// account's own or another account's) resets no count.
func TestSharedThrottleAcrossInstances(t *testing.T) {
	stores(t, 3, func(t *testing.T, a, b tryFunc) {
		const attacker, other = "203.0.113.5:1000", "203.0.113.6:1000"
		for i, try := range []tryFunc{a, b, a} {
			wantCode(t, try(attacker, "alice", "guess"), 401, "wrong password "+strconv.Itoa(i+1))
		}
		// At the limit, not over it: still let in, and counting on.
		wantCode(t, b(attacker, "alice", "alice-pw"), 200, "alice at the limit")
		wantCode(t, a(attacker, "bob", "bob-pw"), 200, "bob from the same address")
		wantCode(t, b(attacker, "alice", "guess"), 401, "wrong password 4")
		wantBlocked(t, a(attacker, "alice", "alice-pw"), "alice's right password through A")
		wantBlocked(t, b(attacker, "alice", "alice-pw"), "alice's right password through B")
		wantCode(t, b(attacker, "bob", "bob-pw"), 200, "bob from the blocked address")
		wantCode(t, a(other, "alice", "alice-pw"), 200, "alice from another address")
		wantCode(t, a(attacker, "", ""), 401, "the challenge request from the blocked address")
	})
}

// The per-address cap counts made-up names across instances too.
func TestSharedThrottleAddressCap(t *testing.T) {
	const max = 1 // each made-up name costs a slow bcrypt: few of them
	stores(t, max, func(t *testing.T, a, b tryFunc) {
		const attacker = "203.0.113.5:1000"
		for i := range AddrFactor*max + 1 {
			try := []tryFunc{a, b}[i%2]
			wantCode(t, try(attacker, "user"+strconv.Itoa(i), "guess"), 401, "wrong login "+strconv.Itoa(i+1))
		}
		for _, try := range []tryFunc{a, b} {
			for _, user := range []string{"bob", "alice", ""} {
				wantBlocked(t, try(attacker, user, user+"-pw"), strconv.Quote(user)+" from the capped address")
			}
		}
		wantCode(t, b("203.0.113.6:1000", "bob", "bob-pw"), 200, "another address")
	})
}

// keys lists the throttle's keys with their TTLs.
func (in *instances) keys(t *testing.T) map[string]time.Duration {
	t.Helper()
	ctx := redistest.Context(t)
	got := map[string]time.Duration{}
	iter := in.rdb.Scan(ctx, 0, in.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		ttl, err := in.rdb.PTTL(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		got[iter.Val()] = ttl
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// expire ends the TTL of the keys ending in suffix now, as if their time
// had passed, and waits until Redis has dropped them.
func (in *instances) expire(t *testing.T, suffix string) {
	t.Helper()
	ctx := redistest.Context(t)
	var names []string
	for k := range in.keys(t) {
		if strings.HasSuffix(k, suffix) {
			names = append(names, k)
			if err := in.rdb.PExpire(ctx, k, time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no key ends in %q", suffix)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, err := in.rdb.Exists(ctx, names...).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys ending in %q still there", n, suffix)
		}
	}
}

// Every key lives under the prefix with a TTL and holds no password; a
// window's end restarts the count; a block ends with its key, after which
// counting starts afresh.
func TestSharedThrottleKeysAndExpiry(t *testing.T) {
	in := twoInstances(t, 3)
	const attacker = "203.0.113.5:1000"
	for range 3 {
		wantCode(t, in.a(attacker, "alice", "s3cret-guess"), 401, "wrong password")
	}
	keys := in.keys(t)
	if len(keys) != 2 {
		t.Fatalf("keys after failures: %v, want a count for the account and one for the address", keys)
	}
	for k, ttl := range keys {
		if !strings.HasPrefix(k, in.prefix+"throttle:") || strings.Contains(k, "s3cret") {
			t.Fatalf("key %q: want it under %sthrottle: and without the password", k, in.prefix)
		}
		if ttl <= 0 || ttl > time.Minute {
			t.Fatalf("key %q has TTL %v, want within the 1m window", k, ttl)
		}
	}

	// The window passes: three more failures are within the limit again.
	in.expire(t, ":fails")
	for range 3 {
		wantCode(t, in.b(attacker, "alice", "guess"), 401, "wrong password in the next window")
	}
	wantCode(t, in.a(attacker, "alice", "alice-pw"), 200, "alice after 3 failures in a fresh window")

	wantCode(t, in.b(attacker, "alice", "guess"), 401, "4th failure")
	wantBlocked(t, in.a(attacker, "alice", "alice-pw"), "alice blocked")
	var blocks int
	for k, ttl := range in.keys(t) {
		if !strings.HasSuffix(k, ":block") {
			continue
		}
		blocks++
		if ttl <= 4*time.Minute || ttl > 5*time.Minute {
			t.Fatalf("block %q has TTL %v, want about 5m", k, ttl)
		}
	}
	if blocks != 1 {
		t.Fatalf("%d blocks, want the account's", blocks)
	}

	// The block's time passes: alice is let in through both instances, and
	// the count started afresh, so one more failure does not block again.
	in.expire(t, ":block")
	wantCode(t, in.a(attacker, "alice", "alice-pw"), 200, "alice through A after the block")
	wantCode(t, in.b(attacker, "alice", "alice-pw"), 200, "alice through B after the block")
	wantCode(t, in.a(attacker, "alice", "guess"), 401, "first failure after the block")
	wantCode(t, in.b(attacker, "alice", "alice-pw"), 200, "alice after one new failure")
}

// A stopped Redis makes every request 503 with Retry-After: not let
// through unthrottled, not a 401 that reads as a wrong password. (A wrong
// password takes the same path: the block check comes first.)
func TestSharedThrottleRedisDown(t *testing.T) {
	in := twoInstances(t, 3)
	wantCode(t, in.a("203.0.113.5:1000", "alice", "alice-pw"), 200, "alice with Redis up")
	in.srv.Stop()
	for _, c := range []struct{ what, user, pass string }{
		{"right password", "alice", "alice-pw"},
		{"no credentials", "", ""},
	} {
		w := in.b("203.0.113.5:1000", c.user, c.pass)
		wantCode(t, w, http.StatusServiceUnavailable, c.what+" with Redis down")
		if w.Header().Get("Retry-After") == "" {
			t.Fatalf("%s with Redis down: no Retry-After", c.what)
		}
	}
}

// brokenCounters answer checks but cannot record a failure, as when
// Redis goes away between the two calls.
type brokenCounters struct{ blockedErr error }

func (c brokenCounters) Blocked(context.Context, time.Time, string, string, bool) (time.Duration, bool, error) {
	return 0, false, c.blockedErr
}

func (brokenCounters) Failed(context.Context, time.Time, string, string, Limits) error {
	return cluster.Unavailable("throttle count", errors.New("connection refused"))
}

// A wrong password that cannot be counted is answered 503 (and reported
// as a failed login), a right one is let in; an unreadable block is 503.
func TestThrottleCountersUnavailable(t *testing.T) {
	th := NewThrottle(3, time.Minute, 5*time.Minute)
	th.Counters = brokenCounters{}
	if err := th.failed(context.Background(), "203.0.113.5", "alice"); !errors.Is(err, drivers.ErrStateUnavailable) {
		t.Fatalf("failed: %v, want ErrStateUnavailable", err)
	}
	var outcomes []bool
	try := guarded(t, th, func(r *http.Request, user string, ok bool) { outcomes = append(outcomes, ok) })
	wantCode(t, try("203.0.113.5:1000", "alice", "guess"), http.StatusServiceUnavailable, "uncounted wrong password")
	wantCode(t, try("203.0.113.5:1000", "alice", "alice-pw"), 200, "right password")
	if len(outcomes) != 2 || outcomes[0] || !outcomes[1] {
		t.Fatalf("onResult saw %v, want [false true]", outcomes)
	}

	th.Counters = brokenCounters{blockedErr: cluster.Unavailable("throttle check", errors.New("connection refused"))}
	if _, _, _, err := th.blocked(context.Background(), "203.0.113.5", "alice", true); !errors.Is(err, drivers.ErrStateUnavailable) {
		t.Fatalf("blocked: %v, want ErrStateUnavailable", err)
	}
	w := try("203.0.113.5:1000", "alice", "alice-pw")
	wantCode(t, w, http.StatusServiceUnavailable, "unreadable block")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}
