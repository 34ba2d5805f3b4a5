package davfs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/auth"
	"bridge/davfs/deadprops"
)

// The users of lockEnv, chosen per request by the X-Test-User header.
var lockUsers = map[string]*auth.User{
	"alice":  {Name: "alice"},
	"bob":    {Name: "bob"},
	"reader": {Name: "reader", ReadOnly: true},
	"carol":  {Name: "carol", Mounts: []string{"/a"}}, // sees /a only
}

// lockEnv serves mounts /a and /b to the users above.
type lockEnv struct {
	*testEnv
	a, b *memDriver
}

func newLockEnv(t *testing.T, opts Options) *lockEnv {
	t.Helper()
	a, b := newMemDriver(t, allFeatures()), newMemDriver(t, allFeatures())
	opts.Mounts = []Mount{{Path: "/a", Driver: a}, {Path: "/b", Driver: b}}
	opts.TempDir = t.TempDir()
	opts.Logger = zerolog.Nop()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := lockUsers[r.Header.Get("X-Test-User")]
		if u == nil {
			http.Error(w, "no such test user", http.StatusUnauthorized)
			return
		}
		s.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), u)))
	}))
	t.Cleanup(hs.Close)
	return &lockEnv{testEnv: &testEnv{srv: s, http: hs, tempDir: opts.TempDir}, a: a, b: b}
}

// as sends a request as user.
func (e *lockEnv) as(t *testing.T, user, method, p, body string, hdr ...string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return e.do(t, method, p, r, append([]string{"X-Test-User", user}, hdr...)...)
}

func lockInfoBody(scope string) string {
	return `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:` + scope +
		`/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:t@example.org</D:href></D:owner></D:lockinfo>`
}

// lock takes a lock as user and returns its token (without the brackets).
func (e *lockEnv) lock(t *testing.T, user, p, scope string, want int, hdr ...string) string {
	t.Helper()
	resp := e.as(t, user, "LOCK", p, lockInfoBody(scope), hdr...)
	wantStatus(t, resp, want)
	return strings.Trim(resp.Header.Get("Lock-Token"), "<>")
}

var urnUUID = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestLockTokensAreRandomURNs(t *testing.T) {
	e := newLockEnv(t, Options{})
	first := e.lock(t, "alice", "/a/one.txt", "exclusive", http.StatusCreated)
	second := e.lock(t, "alice", "/a/two.txt", "exclusive", http.StatusCreated)
	for _, tok := range []string{first, second} {
		if !urnUUID.MatchString(tok) {
			t.Fatalf("token %q is not a urn:uuid: URI", tok)
		}
	}
	// The random parts: counters would differ in a digit or two.
	differ := 0
	for i := len("urn:uuid:"); i < len(first); i++ {
		if first[i] != second[i] {
			differ++
		}
	}
	if differ < 10 {
		t.Fatalf("tokens %q and %q differ in %d characters", first, second, differ)
	}
}

func TestUnlockOnlyByTheOwner(t *testing.T) {
	e := newLockEnv(t, Options{})
	wantStatus(t, e.as(t, "alice", "PUT", "/a/f.txt", "alice's"), http.StatusCreated)
	tok := e.lock(t, "alice", "/a/f.txt", "exclusive", http.StatusOK)
	wantStatus(t, e.as(t, "reader", "UNLOCK", "/a/f.txt", "", "Lock-Token", "<"+tok+">"), http.StatusForbidden)
	wantStatus(t, e.as(t, "bob", "UNLOCK", "/a/f.txt", "", "Lock-Token", "<"+tok+">"), http.StatusForbidden)
	// The lock survived both.
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "bob's"), http.StatusLocked)
	wantStatus(t, e.as(t, "alice", "UNLOCK", "/a/f.txt", "", "Lock-Token", "<"+tok+">"), http.StatusNoContent)
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "bob's"), http.StatusNoContent)
	wantStatus(t, e.as(t, "alice", "UNLOCK", "/a/f.txt", "", "Lock-Token", "<"+tok+">"), http.StatusConflict)
	wantStatus(t, e.as(t, "alice", "UNLOCK", "/a/f.txt", ""), http.StatusBadRequest)
}

func TestUnlockThroughAnotherMountIsRefused(t *testing.T) {
	e := newLockEnv(t, Options{})
	tok := e.lock(t, "alice", "/b/secret.txt", "exclusive", http.StatusCreated)
	// carol cannot see /b, so she names the token on her own mount.
	resp := e.as(t, "carol", "UNLOCK", "/a/", "", "Lock-Token", "<"+tok+">")
	wantStatus(t, resp, http.StatusConflict)
	if body := readBody(t, resp); !strings.Contains(body, "lock-token-matches-request-uri") {
		t.Fatalf("409 body: %s", body)
	}
	wantStatus(t, e.as(t, "carol", "UNLOCK", "/b/secret.txt", "", "Lock-Token", "<"+tok+">"), http.StatusNotFound)
	wantStatus(t, e.as(t, "bob", "PUT", "/b/secret.txt", "bob's"), http.StatusLocked)
}

func TestAnotherUsersTokenDoesNotCount(t *testing.T) {
	e := newLockEnv(t, Options{})
	wantStatus(t, e.as(t, "alice", "PUT", "/a/f.txt", "alice's"), http.StatusCreated)
	tok := e.lock(t, "alice", "/a/f.txt", "exclusive", http.StatusOK)
	ifTok := "(<" + tok + ">)"
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "bob's", "If", ifTok), http.StatusLocked)
	wantStatus(t, e.as(t, "bob", "DELETE", "/a/f.txt", "", "If", ifTok), http.StatusLocked)
	wantStatus(t, e.as(t, "bob", "MOVE", "/a/f.txt", "", "Destination", "/a/g.txt", "If", ifTok), http.StatusLocked)
	wantStatus(t, e.as(t, "bob", "PROPPATCH", "/a/f.txt", proppatchBody, "If", ifTok), http.StatusLocked)
	if got, _ := e.a.file("/f.txt"); string(got) != "alice's" {
		t.Fatalf("the locked file holds %q", got)
	}
	// A token that matches no lock here fails the If header: 412.
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "bob's", "If", "(<urn:uuid:00000000-0000-4000-8000-000000000000>)"), http.StatusPreconditionFailed)
	// The owner with the token writes.
	wantStatus(t, e.as(t, "alice", "PUT", "/a/f.txt", "alice's 2", "If", ifTok), http.StatusNoContent)
	wantStatus(t, e.as(t, "alice", "PROPPATCH", "/a/f.txt", proppatchBody, "If", ifTok), http.StatusMultiStatus)
	// A copy of the locked file needs no token; onto it, the owner's.
	wantStatus(t, e.as(t, "bob", "COPY", "/a/f.txt", "", "Destination", "/a/copy.txt"), http.StatusCreated)
	wantStatus(t, e.as(t, "bob", "COPY", "/a/copy.txt", "", "Destination", "/a/f.txt"), http.StatusLocked)
}

const proppatchBody = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:color xmlns:x="urn:x">red</x:color></D:prop></D:set></D:propertyupdate>`

func TestInfiniteTimeoutIsCapped(t *testing.T) {
	e := newLockEnv(t, Options{LockTimeout: 10 * time.Minute})
	resp := e.as(t, "alice", "LOCK", "/a/f.txt", lockInfoBody("exclusive"), "Timeout", "Infinite")
	wantStatus(t, resp, http.StatusCreated)
	body := readBody(t, resp)
	if !strings.Contains(body, "<D:timeout>Second-600</D:timeout>") {
		t.Fatalf("LOCK with Timeout: Infinite answered %s", body)
	}
	tok := strings.Trim(resp.Header.Get("Lock-Token"), "<>")
	// A refresh (no body, the token in If) is granted the same.
	resp = e.as(t, "alice", "LOCK", "/a/f.txt", "", "If", "(<"+tok+">)", "Timeout", "Second-99999")
	wantStatus(t, resp, http.StatusOK)
	if body := readBody(t, resp); !strings.Contains(body, "Second-600") || !strings.Contains(body, tok) {
		t.Fatalf("refresh answered %s", body)
	}
	wantStatus(t, e.as(t, "bob", "LOCK", "/a/f.txt", "", "If", "(<"+tok+">)"), http.StatusForbidden)
	wantStatus(t, e.as(t, "alice", "LOCK", "/a/f.txt", "", "If", "(<urn:uuid:00000000-0000-4000-8000-000000000000>)"), http.StatusPreconditionFailed)
	wantStatus(t, e.as(t, "alice", "LOCK", "/a/g.txt", lockInfoBody("exclusive"), "Depth", "1"), http.StatusBadRequest)
}

func TestSharedLocks(t *testing.T) {
	e := newLockEnv(t, Options{})
	wantStatus(t, e.as(t, "alice", "MKCOL", "/a/dir", ""), http.StatusCreated)
	ta := e.lock(t, "alice", "/a/dir", "shared", http.StatusOK)
	tb := e.lock(t, "bob", "/a/dir", "shared", http.StatusOK)
	resp := e.as(t, "bob", "LOCK", "/a/dir", lockInfoBody("exclusive"))
	wantStatus(t, resp, http.StatusLocked)
	if body := readBody(t, resp); !strings.Contains(body, "no-conflicting-lock") {
		t.Fatalf("423 body: %s", body)
	}
	// Each writes under the shared lock with their own token only.
	wantStatus(t, e.as(t, "bob", "PUT", "/a/dir/f.txt", "b", "If", "(<"+tb+">)"), http.StatusCreated)
	wantStatus(t, e.as(t, "alice", "PUT", "/a/dir/f.txt", "a", "If", "(<"+tb+">)"), http.StatusLocked)
	wantStatus(t, e.as(t, "alice", "PUT", "/a/dir/f.txt", "a", "If", "(<"+ta+">)"), http.StatusNoContent)
	wantStatus(t, e.as(t, "alice", "UNLOCK", "/a/dir/f.txt", "", "Lock-Token", "<"+ta+">"), http.StatusNoContent)
	wantStatus(t, e.as(t, "bob", "PUT", "/a/dir/f.txt", "b"), http.StatusLocked)
}

func TestPropfindShowsLocks(t *testing.T) {
	store, err := deadprops.Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, xnet := range []bool{false, true} {
		e := newLockEnv(t, Options{Props: store})
		e.srv.xnetPropfindOnly = xnet
		wantStatus(t, e.as(t, "alice", "MKCOL", "/a/dir", ""), http.StatusCreated)
		tok := e.lock(t, "alice", "/a/dir/f.txt", "shared", http.StatusCreated)
		for _, body := range []string{"", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/><D:supportedlock/></D:prop></D:propfind>`} {
			resp := e.as(t, "bob", "PROPFIND", "/a/dir/", body, "Depth", "1")
			wantStatus(t, resp, http.StatusMultiStatus)
			ms := readBody(t, resp)
			if strings.Count(ms, tok) != 1 || !strings.Contains(ms, "<D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:depth>infinity</D:depth>") {
				t.Fatalf("x/net %v, body %q: the lock is not in lockdiscovery once: %s", xnet, body, ms)
			}
			if strings.Count(ms, "lockdiscovery") != 4 || strings.Count(ms, "<D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>") != 2 {
				t.Fatalf("x/net %v, body %q: lockdiscovery and shared supportedlock for both resources: %s", xnet, body, ms)
			}
		}
		// Neither can be set.
		resp := e.as(t, "alice", "PROPPATCH", "/a/dir/f.txt", `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:lockdiscovery>x</D:lockdiscovery></D:prop></D:set></D:propertyupdate>`, "If", "(<"+tok+">)")
		wantStatus(t, resp, http.StatusMultiStatus)
		if body := readBody(t, resp); !strings.Contains(body, "403") {
			t.Fatalf("PROPPATCH of lockdiscovery: %s", body)
		}
	}
}

func TestLocksGoWithDeleteAndMove(t *testing.T) {
	e := newLockEnv(t, Options{})
	tok := e.lock(t, "alice", "/a/f.txt", "exclusive", http.StatusCreated)
	wantStatus(t, e.as(t, "alice", "MOVE", "/a/f.txt", "", "Destination", "/a/g.txt", "If", "(<"+tok+">)"), http.StatusCreated)
	// The lock stayed behind and went with its root.
	wantStatus(t, e.as(t, "bob", "PUT", "/a/g.txt", "b"), http.StatusNoContent)
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "b"), http.StatusCreated)
	tok = e.lock(t, "alice", "/a/f.txt", "exclusive", http.StatusOK)
	wantStatus(t, e.as(t, "alice", "DELETE", "/a/f.txt", "", "If", "(<"+tok+">)"), http.StatusNoContent)
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "b"), http.StatusCreated)
	// An overwriting COPY drops the destination's locks (its owner's token).
	tok = e.lock(t, "alice", "/a/f.txt", "exclusive", http.StatusOK)
	wantStatus(t, e.as(t, "alice", "COPY", "/a/g.txt", "", "Destination", "/a/f.txt", "If", "</a/f.txt> (<"+tok+">)"), http.StatusNoContent)
	wantStatus(t, e.as(t, "bob", "PUT", "/a/f.txt", "b"), http.StatusNoContent)
}
