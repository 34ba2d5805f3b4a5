package locks

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A system is a lock system under test: the conformance tests below run
// against each.
type system struct {
	name string
	new  func(t *testing.T, opts Options) System
}

var systems = []system{
	{"memory", func(t *testing.T, opts Options) System { return NewMemory(opts) }},
	{"redis", newTestRedis},
}

// eachSystem runs test once per system.
func eachSystem(t *testing.T, test func(t *testing.T, sys system)) {
	for _, sys := range systems {
		t.Run(sys.name, func(t *testing.T) { test(t, sys) })
	}
}

// newTest returns a fresh, empty system on a settable clock.
func (sys system) newTest(t *testing.T) (System, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return sys.new(t, Options{MaxTimeout: time.Hour, Now: c.Now}), c
}

var ctx = context.Background()

func mustCreate(t *testing.T, m System, l Lock) Lock {
	t.Helper()
	got, err := m.Create(ctx, l)
	if err != nil {
		t.Fatalf("Create(%+v): %v", l, err)
	}
	return got
}

func count(t *testing.T, m System, p string) int {
	t.Helper()
	ls, err := m.Locks(ctx, p, DepthInfinity)
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}

var tokenPattern = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestTokensAreRandomUUIDs(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		seen := map[string]bool{}
		prev := ""
		for i := range 1000 {
			l := mustCreate(t, m, Lock{Root: fmt.Sprintf("/m/f%d", i), Owner: "alice"})
			if !tokenPattern.MatchString(l.Token) {
				t.Fatalf("token %q is not urn:uuid: and a version-4 UUID", l.Token)
			}
			if seen[l.Token] {
				t.Fatalf("token %q given twice", l.Token)
			}
			seen[l.Token] = true
			if prev != "" {
				// Counters differ in a digit or two; 122 random bits in
				// about 28 of 30 hex digits.
				if d := hexDistance(prev, l.Token); d < 10 {
					t.Fatalf("tokens %q and %q differ in only %d digits", prev, l.Token, d)
				}
			}
			prev = l.Token
		}
	})
}

func hexDistance(a, b string) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func TestConflicts(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		tests := []struct {
			name  string
			first Lock
			then  Lock
			ok    bool
		}{
			{"shared and shared", Lock{Root: "/m/f", Scope: Shared}, Lock{Root: "/m/f", Scope: Shared, Owner: "bob"}, true},
			{"shared then exclusive", Lock{Root: "/m/f", Scope: Shared}, Lock{Root: "/m/f", Owner: "bob"}, false},
			{"exclusive then shared", Lock{Root: "/m/f"}, Lock{Root: "/m/f", Scope: Shared, Owner: "bob"}, false},
			{"exclusive twice by one owner", Lock{Root: "/m/f"}, Lock{Root: "/m/f"}, false},
			{"infinity parent blocks child", Lock{Root: "/m/d", Depth: DepthInfinity}, Lock{Root: "/m/d/e/f", Owner: "bob"}, false},
			{"depth-0 parent does not block child", Lock{Root: "/m/d"}, Lock{Root: "/m/d/f", Owner: "bob"}, true},
			{"child blocks infinity parent", Lock{Root: "/m/d/e/f"}, Lock{Root: "/m/d", Depth: DepthInfinity, Owner: "bob"}, false},
			{"child does not block depth-0 parent", Lock{Root: "/m/d/f"}, Lock{Root: "/m/d", Owner: "bob"}, true},
			{"share root infinity blocks all", Lock{Root: "/", Depth: DepthInfinity}, Lock{Root: "/m/f", Owner: "bob"}, false},
			{"siblings", Lock{Root: "/m/a", Depth: DepthInfinity}, Lock{Root: "/m/b", Owner: "bob"}, true},
			{"name prefix is not a child", Lock{Root: "/m/a", Depth: DepthInfinity}, Lock{Root: "/m/ab", Owner: "bob"}, true},
			{"trailing slash is the same resource", Lock{Root: "/m/d/"}, Lock{Root: "/m/d", Owner: "bob"}, false},
			{"shared infinity parent and shared child", Lock{Root: "/m/d", Scope: Shared, Depth: DepthInfinity}, Lock{Root: "/m/d/f", Scope: Shared, Owner: "bob"}, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				m, _ := sys.newTest(t)
				if tc.first.Owner == "" {
					tc.first.Owner = "alice"
				}
				if tc.then.Owner == "" {
					tc.then.Owner = "alice"
				}
				mustCreate(t, m, tc.first)
				_, err := m.Create(ctx, tc.then)
				if tc.ok && err != nil {
					t.Fatalf("second lock refused: %v", err)
				}
				if !tc.ok && !errors.Is(err, ErrLocked) {
					t.Fatalf("second lock: err = %v, want ErrLocked", err)
				}
			})
		}
	})
}

func TestCreateRefusesNonsense(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		for _, l := range []Lock{
			{Root: "/m/f"},
			{Root: "/m/f", Owner: "alice", Scope: 7},
			{Root: "/m/f", Owner: "alice", Depth: 1 + DepthInfinity},
		} {
			if _, err := m.Create(ctx, l); err == nil {
				t.Errorf("Create(%+v) succeeded", l)
			}
		}
	})
}

func TestConcurrentExclusiveCreate(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		const n = 32
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = m.Create(ctx, Lock{Root: "/m/f", Owner: fmt.Sprintf("user%d", i)})
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
			t.Fatalf("%d of %d conflicting locks granted, want 1", won, n)
		}
	})
}

func TestUnlock(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		tests := []struct {
			name  string
			lock  Lock
			user  string
			token string // "" means the lock's
			path  string
			want  error
		}{
			{"owner", Lock{Root: "/m/f"}, "alice", "", "/m/f", nil},
			{"owner, trailing slash", Lock{Root: "/m/d"}, "alice", "", "/m/d/", nil},
			{"owner, below an infinity lock", Lock{Root: "/m/d", Depth: DepthInfinity}, "alice", "", "/m/d/e/f", nil},
			{"another user", Lock{Root: "/m/f"}, "bob", "", "/m/f", ErrNotOwner},
			{"another user, via own path", Lock{Root: "/m/f"}, "bob", "", "/bobs/f", ErrNoSuchLock},
			{"owner, path outside", Lock{Root: "/m/f"}, "alice", "", "/other/f", ErrNoSuchLock},
			{"owner, below a depth-0 lock", Lock{Root: "/m/d"}, "alice", "", "/m/d/f", ErrNoSuchLock},
			{"owner, parent of the lock", Lock{Root: "/m/d/f", Depth: DepthInfinity}, "alice", "", "/m/d", ErrNoSuchLock},
			{"unknown token", Lock{Root: "/m/f"}, "alice", "urn:uuid:00000000-0000-4000-8000-000000000000", "/m/f", ErrNoSuchLock},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				m, _ := sys.newTest(t)
				tc.lock.Owner = "alice"
				l := mustCreate(t, m, tc.lock)
				token := tc.token
				if token == "" {
					token = l.Token
				}
				err := m.Unlock(ctx, tc.user, token, tc.path)
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("Unlock: err = %v, want %v", err, tc.want)
				}
				left := count(t, m, "/")
				if tc.want == nil && left != 0 {
					t.Fatalf("lock survived its unlock")
				}
				if tc.want != nil {
					if left != 1 {
						t.Fatalf("refused unlock removed the lock")
					}
					if err := m.Unlock(ctx, "alice", l.Token, l.Root); err != nil {
						t.Fatalf("owner cannot unlock afterwards: %v", err)
					}
				}
			})
		}
	})
}

func TestConfirm(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		type held struct {
			lock Lock
			name string // to refer to its token
		}
		tests := []struct {
			name    string
			locks   []held
			user    string
			tokens  []string // names of locks whose tokens are submitted
			targets []Target
			ok      bool
		}{
			{"nothing locked", nil, "bob", nil, []Target{{"/m/f", DepthZero}}, true},
			{"owner with token", []held{{Lock{Root: "/m/f", Owner: "alice"}, "a"}}, "alice", []string{"a"}, []Target{{"/m/f", DepthZero}}, true},
			{"owner without token", []held{{Lock{Root: "/m/f", Owner: "alice"}, "a"}}, "alice", nil, []Target{{"/m/f", DepthZero}}, false},
			{"other user quoting the owner's token", []held{{Lock{Root: "/m/f", Owner: "alice"}, "a"}}, "bob", []string{"a"}, []Target{{"/m/f", DepthZero}}, false},
			{"other user without token", []held{{Lock{Root: "/m/f", Owner: "alice"}, "a"}}, "bob", nil, []Target{{"/m/f", DepthZero}}, false},
			{"owner with the token of another own lock", []held{
				{Lock{Root: "/m/f", Owner: "alice"}, "a"},
				{Lock{Root: "/m/g", Owner: "alice"}, "g"},
			}, "alice", []string{"g"}, []Target{{"/m/f", DepthZero}}, false},
			{"child of an infinity lock, no token", []held{{Lock{Root: "/m/d", Owner: "alice", Depth: DepthInfinity}, "a"}}, "bob", nil, []Target{{"/m/d/e/f", DepthZero}}, false},
			{"child of an infinity lock, owner's token", []held{{Lock{Root: "/m/d", Owner: "alice", Depth: DepthInfinity}, "a"}}, "alice", []string{"a"}, []Target{{"/m/d/e/f", DepthZero}}, true},
			{"child of a depth-0 lock", []held{{Lock{Root: "/m/d", Owner: "alice"}, "a"}}, "bob", nil, []Target{{"/m/d/f", DepthZero}}, true},
			{"new member of a depth-0 locked folder", []held{{Lock{Root: "/m/d", Owner: "alice"}, "a"}}, "bob", nil, []Target{{"/m/d/new", DepthZero}, {"/m/d", DepthZero}}, false},
			{"delete of a folder with a locked child", []held{{Lock{Root: "/m/d/e/f", Owner: "alice"}, "a"}}, "bob", nil, []Target{{"/m/d", DepthInfinity}}, false},
			{"delete of a folder with a locked child, owner's token", []held{{Lock{Root: "/m/d/e/f", Owner: "alice"}, "a"}}, "alice", []string{"a"}, []Target{{"/m/d", DepthInfinity}}, true},
			{"delete of a folder next to a locked name prefix", []held{{Lock{Root: "/m/dd", Owner: "alice"}, "a"}}, "bob", nil, []Target{{"/m/d", DepthInfinity}}, true},
			{"move: source fine, destination locked", []held{{Lock{Root: "/m/dst", Owner: "alice"}, "a"}}, "bob", nil, []Target{{"/m/src", DepthInfinity}, {"/m/dst", DepthInfinity}}, false},
			{"move: source locked by owner, token given", []held{{Lock{Root: "/m/src", Owner: "alice"}, "a"}}, "alice", []string{"a"}, []Target{{"/m/src", DepthInfinity}, {"/m/dst", DepthZero}}, true},
			{"shared locks, one holder writes", []held{
				{Lock{Root: "/m/f", Owner: "alice", Scope: Shared}, "a"},
				{Lock{Root: "/m/f", Owner: "bob", Scope: Shared}, "b"},
			}, "alice", []string{"a"}, []Target{{"/m/f", DepthZero}}, true},
			{"shared locks, outsider writes", []held{
				{Lock{Root: "/m/f", Owner: "alice", Scope: Shared}, "a"},
				{Lock{Root: "/m/f", Owner: "bob", Scope: Shared}, "b"},
			}, "carol", []string{"a", "b"}, []Target{{"/m/f", DepthZero}}, false},
			{"shared infinity lock covers another's shared child lock", []held{
				{Lock{Root: "/m/d", Owner: "alice", Scope: Shared, Depth: DepthInfinity}, "a"},
				{Lock{Root: "/m/d/f", Owner: "bob", Scope: Shared}, "b"},
			}, "alice", []string{"a"}, []Target{{"/m/d", DepthInfinity}}, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				m, _ := sys.newTest(t)
				tokens := map[string]string{}
				for _, h := range tc.locks {
					tokens[h.name] = mustCreate(t, m, h.lock).Token
				}
				var submitted []string
				for _, name := range tc.tokens {
					submitted = append(submitted, tokens[name])
				}
				release, err := m.Confirm(ctx, tc.user, submitted, tc.targets...)
				if tc.ok {
					if err != nil {
						t.Fatalf("write refused: %v", err)
					}
					release()
					release() // twice is harmless
					return
				}
				if !errors.Is(err, ErrLocked) {
					t.Fatalf("err = %v, want ErrLocked", err)
				}
			})
		}
	})
}

func TestConfirmHoldsOffOthersLocks(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		release, err := m.Confirm(ctx, "alice", nil, Target{"/m/d/f", DepthZero})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Create(ctx, Lock{Root: "/m/d", Depth: DepthInfinity, Owner: "bob"}); !errors.Is(err, ErrLocked) {
			t.Fatalf("lock over a write in progress: err = %v, want ErrLocked", err)
		}
		if _, err := m.Create(ctx, Lock{Root: "/m/d", Owner: "bob"}); err != nil {
			t.Fatalf("depth-0 lock on the parent of a write: %v", err)
		}
		// The writer may lock what it writes (LOCK of a new name creates it).
		own := mustCreate(t, m, Lock{Root: "/m/d/f", Owner: "alice"})
		m.Unlock(ctx, "alice", own.Token, own.Root)
		release()
		mustCreate(t, m, Lock{Root: "/m/d/f", Owner: "bob"})
	})
}

func TestTimeouts(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		tests := []struct {
			asked, granted time.Duration
		}{
			{10 * time.Second, 10 * time.Second},
			{59 * time.Minute, 59 * time.Minute},
			{2 * time.Hour, time.Hour},
			{Infinite, time.Hour},
			{0, time.Hour},
			{-time.Second, time.Hour},
		}
		for _, tc := range tests {
			t.Run(tc.asked.String(), func(t *testing.T) {
				m, c := sys.newTest(t)
				l := mustCreate(t, m, Lock{Root: "/m/f", Owner: "alice", Timeout: tc.asked})
				if l.Timeout != tc.granted || !l.Expires.Equal(c.Now().Add(tc.granted)) {
					t.Fatalf("granted %v until %v, want %v", l.Timeout, l.Expires, tc.granted)
				}
				want := fmt.Sprintf("<D:timeout>Second-%d</D:timeout>", int(tc.granted/time.Second))
				if x := LockDiscoveryXML([]Lock{l}, c.Now()); !strings.Contains(x, want) {
					t.Fatalf("lockdiscovery %s lacks %s", x, want)
				}
			})
		}
	})
}

func TestDefaultMaxTimeout(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		l, err := sys.new(t, Options{}).Create(ctx, Lock{Root: "/f", Owner: "alice", Timeout: Infinite})
		if err != nil || l.Timeout != DefaultMaxTimeout {
			t.Fatalf("granted %v, %v; want %v", l.Timeout, err, DefaultMaxTimeout)
		}
	})
}

func TestExpiry(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, c := sys.newTest(t)
		l := mustCreate(t, m, Lock{Root: "/m/d", Owner: "alice", Depth: DepthInfinity, Timeout: time.Minute})
		c.Advance(59 * time.Second)
		if x := LockDiscoveryXML([]Lock{l}, c.Now()); !strings.Contains(x, "Second-1<") {
			t.Fatalf("a second before expiry: %s", x)
		}
		if _, err := m.Confirm(ctx, "bob", nil, Target{"/m/d/f", DepthZero}); !errors.Is(err, ErrLocked) {
			t.Fatalf("write before expiry: err = %v", err)
		}
		c.Advance(time.Second)
		if n := count(t, m, "/"); n != 0 {
			t.Fatalf("%d locks after expiry", n)
		}
		release, err := m.Confirm(ctx, "bob", nil, Target{"/m/d/f", DepthZero})
		if err != nil {
			t.Fatalf("write after expiry: %v", err)
		}
		release()
		if err := m.Unlock(ctx, "alice", l.Token, "/m/d"); !errors.Is(err, ErrNoSuchLock) {
			t.Fatalf("unlock after expiry: err = %v", err)
		}
		if _, err := m.Refresh(ctx, "alice", l.Token, "/m/d", time.Minute); !errors.Is(err, ErrNoSuchLock) {
			t.Fatalf("refresh after expiry: err = %v", err)
		}
		mustCreate(t, m, Lock{Root: "/m/d/f", Owner: "bob"})

		// Sweeps drop expired locks nobody asks about (Redis's own
		// sweeps: TestRedisExpiry).
		mem, ok := m.(*Memory)
		if !ok {
			return
		}
		for i := range 10 {
			mustCreate(t, m, Lock{Root: fmt.Sprintf("/x/%d", i), Owner: "alice", Timeout: time.Second})
		}
		c.Advance(2 * sweepEvery)
		mustCreate(t, m, Lock{Root: "/y", Owner: "alice"})
		mem.mu.Lock()
		n := len(mem.byToken)
		mem.mu.Unlock()
		if n != 2 {
			t.Fatalf("%d locks kept after a sweep, want 2", n)
		}
	})
}

func TestRefresh(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, c := sys.newTest(t)
		l := mustCreate(t, m, Lock{Root: "/m/d", Owner: "alice", Depth: DepthInfinity, Timeout: time.Minute})
		c.Advance(30 * time.Second)

		if _, err := m.Refresh(ctx, "bob", l.Token, "/m/d", time.Hour); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("refresh by another user: err = %v, want ErrNotOwner", err)
		}
		if _, err := m.Refresh(ctx, "alice", l.Token, "/other", time.Hour); !errors.Is(err, ErrNoSuchLock) {
			t.Fatalf("refresh via a path outside: err = %v, want ErrNoSuchLock", err)
		}
		ls, _ := m.Locks(ctx, "/m/d", DepthZero)
		if len(ls) != 1 || !ls[0].Expires.Equal(l.Expires) {
			t.Fatalf("refused refreshes changed the lock: %+v", ls)
		}

		r, err := m.Refresh(ctx, "alice", l.Token, "/m/d/f", 3*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if r.Timeout != time.Hour || !r.Expires.Equal(c.Now().Add(time.Hour)) || r.Token != l.Token {
			t.Fatalf("refreshed to %v until %v, want an hour from now", r.Timeout, r.Expires)
		}
		c.Advance(50 * time.Minute)
		if n := count(t, m, "/m"); n != 1 {
			t.Fatalf("refreshed lock gone")
		}
	})
}

func TestMove(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		mustCreate(t, m, Lock{Root: "/m/src", Owner: "alice"})
		mustCreate(t, m, Lock{Root: "/m/src/deep/f", Owner: "alice"})
		mustCreate(t, m, Lock{Root: "/m/dst/old", Owner: "alice"})
		mustCreate(t, m, Lock{Root: "/m/srcx", Owner: "alice"})
		parent := mustCreate(t, m, Lock{Root: "/n", Owner: "bob", Depth: DepthInfinity})

		if err := m.Move(ctx, "/m/src", "/n/dst"); err != nil {
			t.Fatal(err)
		}
		if err := m.Move(ctx, "/m/other", "/m/dst"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/m/src", "/m/dst"} {
			if n := count(t, m, p); n != 0 {
				t.Errorf("%d locks left at %s", n, p)
			}
		}
		if n := count(t, m, "/m/srcx"); n != 1 {
			t.Errorf("lock on a name-prefix sibling removed")
		}
		// Not moved with the resource: the destination is under its
		// parent's lock only.
		ls, _ := m.Locks(ctx, "/n/dst/deep/f", DepthInfinity)
		if len(ls) != 1 || ls[0].Token != parent.Token {
			t.Fatalf("locks at the moved resource: %+v, want only the destination parent's", ls)
		}
	})
}

func TestDelete(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		mustCreate(t, m, Lock{Root: "/m/d", Owner: "alice"})
		mustCreate(t, m, Lock{Root: "/m/d/e/f", Owner: "bob"})
		mustCreate(t, m, Lock{Root: "/m/dd", Owner: "alice"})
		mustCreate(t, m, Lock{Root: "/m", Owner: "alice"})
		if err := m.Delete(ctx, "/m/d/"); err != nil {
			t.Fatal(err)
		}
		ls, _ := m.Locks(ctx, "/", DepthInfinity)
		var roots []string
		for _, l := range ls {
			roots = append(roots, l.Root)
		}
		if got := strings.Join(roots, " "); got != "/m /m/dd" {
			t.Fatalf("locks left: %s, want /m /m/dd", got)
		}
	})
}

func TestLocks(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		mustCreate(t, m, Lock{Root: "/m", Owner: "alice", Scope: Shared, Depth: DepthInfinity})
		mustCreate(t, m, Lock{Root: "/m/d", Owner: "alice", Scope: Shared})
		mustCreate(t, m, Lock{Root: "/m/d/f", Owner: "bob", Scope: Shared})
		mustCreate(t, m, Lock{Root: "/m/e", Owner: "bob", Scope: Shared})
		tests := []struct {
			path  string
			depth Depth
			want  string
		}{
			{"/m/d", DepthZero, "/m /m/d"},
			{"/m/d", DepthInfinity, "/m /m/d /m/d/f"},
			{"/m/d/f", DepthZero, "/m /m/d/f"},
			{"/m/x", DepthZero, "/m"},
			{"/", DepthZero, ""},
			{"/", DepthInfinity, "/m /m/d /m/d/f /m/e"},
		}
		for _, tc := range tests {
			ls, err := m.Locks(ctx, tc.path, tc.depth)
			if err != nil {
				t.Fatal(err)
			}
			var roots []string
			for _, l := range ls {
				roots = append(roots, l.Root)
				if tc.depth == DepthZero && !l.Covers(tc.path) {
					t.Errorf("Locks(%s, 0) returned %s, which does not cover it", tc.path, l.Root)
				}
			}
			if got := strings.Join(roots, " "); got != tc.want {
				t.Errorf("Locks(%s, %v) = %s, want %s", tc.path, tc.depth, got, tc.want)
			}
		}
	})
}

func TestCancelledContext(t *testing.T) {
	eachSystem(t, func(t *testing.T, sys system) {
		m, _ := sys.newTest(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := m.Create(cctx, Lock{Root: "/f", Owner: "alice"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if _, err := m.Confirm(cctx, "alice", nil, Target{"/f", DepthZero}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestParseTimeout(t *testing.T) {
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"Infinite", Infinite},
		{"Second-600", 10 * time.Minute},
		{"Infinite, Second-4100000000", Infinite},
		{"Second-4100000000", 4100000000 * time.Second},
		{"Second-99999999999999999999999", Infinite},
		{"Bogus, Second-60", time.Minute},
		{"Second-0", 0},
		{"Second-x", 0},
	}
	for _, tc := range tests {
		if got := ParseTimeout(tc.h); got != tc.want {
			t.Errorf("ParseTimeout(%q) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// activeLock is what a client reads from an activelock element.
type activeLock struct {
	Exclusive *struct{} `xml:"lockscope>exclusive"`
	Shared    *struct{} `xml:"lockscope>shared"`
	Write     *struct{} `xml:"locktype>write"`
	Depth     string    `xml:"depth"`
	Owner     struct {
		Inner string `xml:",innerxml"`
	} `xml:"owner"`
	Timeout string `xml:"timeout"`
	Token   string `xml:"locktoken>href"`
	Root    string `xml:"lockroot>href"`
}

func parseDiscovery(t *testing.T, s string) []activeLock {
	t.Helper()
	var doc struct {
		Locks []activeLock `xml:"DAV: activelock"`
	}
	if err := xml.Unmarshal([]byte(`<D:lockdiscovery xmlns:D="DAV:">`+s+`</D:lockdiscovery>`), &doc); err != nil {
		t.Fatalf("lockdiscovery does not parse: %v\n%s", err, s)
	}
	return doc.Locks
}

func TestLockDiscoveryXML(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	locks := []Lock{
		{
			Token: "urn:uuid:1&<2>", Root: "/m/a & b/<c> d%.txt", Owner: "alice",
			OwnerXML: `<D:href>mailto:alice@example.com</D:href>`,
			Scope:    Exclusive, Depth: DepthZero, Expires: now.Add(90*time.Second + time.Millisecond),
		},
		{
			Token: "urn:uuid:2", Root: "/m/d", Owner: "bob",
			OwnerXML: `</D:owner></D:activelock><D:activelock><D:locktoken>forged`,
			Scope:    Shared, Depth: DepthInfinity, Expires: now.Add(-time.Second),
		},
		{Token: "urn:uuid:3", Root: "/", Owner: "carol", OwnerXML: `<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>`, Expires: now.Add(time.Hour)},
		{Token: "urn:uuid:4", Root: "/m", Owner: "dave", OwnerXML: "plain & simple"},
	}
	got := parseDiscovery(t, LockDiscoveryXML(locks, now))
	if len(got) != len(locks) {
		t.Fatalf("%d activelocks, want %d", len(got), len(locks))
	}
	a := got[0]
	if a.Exclusive == nil || a.Shared != nil || a.Write == nil || a.Depth != "0" || a.Timeout != "Second-91" ||
		a.Token != "urn:uuid:1&<2>" || a.Root != "/m/a%20&%20b/%3Cc%3E%20d%25.txt" ||
		a.Owner.Inner != `<D:href>mailto:alice@example.com</D:href>` {
		t.Errorf("first activelock: %+v", a)
	}
	b := got[1]
	if b.Shared == nil || b.Depth != "infinity" || b.Timeout != "Second-0" || b.Token != "urn:uuid:2" ||
		strings.Contains(b.Owner.Inner, "<") {
		t.Errorf("second activelock: %+v (owner must stay text)", b)
	}
	if c := got[2]; strings.Contains(c.Owner.Inner, "<!DOCTYPE") || c.Root != "/" || c.Timeout != "Second-3600" {
		t.Errorf("third activelock: %+v (a DOCTYPE must not pass)", c)
	}
	if d := got[3]; d.Owner.Inner != "plain &amp; simple" {
		t.Errorf("fourth activelock owner: %q", d.Owner.Inner)
	}
	if LockDiscoveryXML(nil, now) != "" {
		t.Errorf("no locks gave content")
	}
}

func TestSupportedLockXML(t *testing.T) {
	var doc struct {
		Entries []struct {
			Exclusive *struct{} `xml:"lockscope>exclusive"`
			Shared    *struct{} `xml:"lockscope>shared"`
			Write     *struct{} `xml:"locktype>write"`
		} `xml:"DAV: lockentry"`
	}
	if err := xml.Unmarshal([]byte(`<x>`+SupportedLockXML()+`</x>`), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Entries) != 2 || doc.Entries[0].Exclusive == nil || doc.Entries[1].Shared == nil ||
		doc.Entries[0].Write == nil || doc.Entries[1].Write == nil {
		t.Fatalf("supportedlock: %+v", doc.Entries)
	}
}
