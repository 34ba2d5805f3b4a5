package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The bridge's locks through the built binary and its users: a lock token
// counts only for the user who took the lock (RFC 4918 section 6.4).

const lockInfoXML = `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner></D:lockinfo>`

const sharedLockInfoXML = `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner></D:lockinfo>`

var urnUUIDToken = regexp.MustCompile(`^<urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}>$`)

// lockAs takes a lock as user and returns its token, bracketed as in the
// Lock-Token header; the lock is released when the test ends.
func lockAs(t *testing.T, b *bridge, user, pass, path, body string, want int, hdr ...string) string {
	t.Helper()
	resp, out := b.request(t, user, pass, "LOCK", path, []byte(body), hdr...)
	if resp.StatusCode != want {
		t.Fatalf("LOCK %s as %s: %d, want %d: %s", path, user, resp.StatusCode, want, out)
	}
	tok := resp.Header.Get("Lock-Token")
	t.Cleanup(func() { b.request(t, user, pass, "UNLOCK", path, nil, "Lock-Token", tok) })
	return tok
}

func wantCode(t *testing.T, what string, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: %d, want %d: %s", what, resp.StatusCode, want, body)
	}
}

func TestLockTokensAreRandomURNs(t *testing.T) {
	b := theBridge(t)
	first := lockAs(t, b, adminUser, adminPass, "/local/lock-token-1.txt", lockInfoXML, http.StatusCreated)
	second := lockAs(t, b, adminUser, adminPass, "/local/lock-token-2.txt", lockInfoXML, http.StatusCreated)
	for _, tok := range []string{first, second} {
		if !urnUUIDToken.MatchString(tok) {
			t.Fatalf("Lock-Token %q is not a urn:uuid: URI", tok)
		}
	}
	differ := 0
	for i := range first {
		if first[i] != second[i] {
			differ++
		}
	}
	if differ < 10 {
		t.Fatalf("tokens %s and %s differ in %d characters: guessable", first, second, differ)
	}
}

func TestReaderCannotUnlockAdminsLock(t *testing.T) {
	b := theBridge(t)
	const p = "/local/lock-reader.txt"
	tok := lockAs(t, b, adminUser, adminPass, p, lockInfoXML, http.StatusCreated)
	resp, body := b.request(t, readerUser, readerPass, "UNLOCK", p, nil, "Lock-Token", tok)
	wantCode(t, "reader's UNLOCK of admin's lock", resp, body, http.StatusForbidden)
	resp, body = b.request(t, limitedUser, limitedPass, "PUT", p, []byte("x"))
	wantCode(t, "PUT without the token after the reader's UNLOCK", resp, body, http.StatusLocked)
}

func TestUnlockThroughAnotherMountIsRefused(t *testing.T) {
	b := theBridge(t)
	const p = "/disktop/lock-hidden.txt"
	tok := lockAs(t, b, adminUser, adminPass, p, lockInfoXML, http.StatusCreated)
	// limited cannot see /disktop; she sends the token to her own /local.
	resp, body := b.request(t, limitedUser, limitedPass, "UNLOCK", "/local/", nil, "Lock-Token", tok)
	wantCode(t, "limited's UNLOCK of a /disktop lock through /local", resp, body, http.StatusConflict)
	resp, body = b.request(t, readerUser, readerPass, "PROPFIND", p, nil, "Depth", "0")
	wantCode(t, "PROPFIND of the locked file", resp, body, http.StatusMultiStatus)
	if !strings.Contains(string(body), strings.Trim(tok, "<>")) {
		t.Fatalf("the lock is gone after limited's UNLOCK: %s", body)
	}
}

func TestOthersTokenDoesNotLetAWriteThrough(t *testing.T) {
	b := theBridge(t)
	const p = "/local/lock-owned.txt"
	resp, body := b.admin(t, "PUT", p, []byte("admin's"))
	wantCode(t, "PUT", resp, body, http.StatusCreated)
	tok := lockAs(t, b, adminUser, adminPass, p, lockInfoXML, http.StatusOK)
	resp, body = b.request(t, limitedUser, limitedPass, "PUT", p, []byte("limited's"), "If", "("+tok+")")
	wantCode(t, "limited's PUT quoting admin's token", resp, body, http.StatusLocked)
	if _, got := b.admin(t, "GET", p, nil); string(got) != "admin's" {
		t.Fatalf("the locked file holds %q", got)
	}
	resp, body = b.admin(t, "PUT", p, []byte("admin's 2"), "If", "("+tok+")")
	wantCode(t, "admin's PUT with the token", resp, body, http.StatusNoContent)
	if _, got := b.admin(t, "GET", p, nil); string(got) != "admin's 2" {
		t.Fatalf("after the owner's PUT the file holds %q", got)
	}
}

func TestInfiniteLockTimeoutIsCapped(t *testing.T) {
	b := theBridge(t)
	const p = "/local/lock-infinite.txt"
	resp, body := b.admin(t, "LOCK", p, []byte(lockInfoXML), "Timeout", "Infinite")
	wantCode(t, "LOCK with Timeout: Infinite", resp, body, http.StatusCreated)
	tok := resp.Header.Get("Lock-Token")
	t.Cleanup(func() { b.admin(t, "UNLOCK", p, nil, "Lock-Token", tok) })
	if !strings.Contains(string(body), "Second-3600") {
		t.Fatalf("Timeout: Infinite was not capped at server.max_lock_timeout (1h): %s", body)
	}
}

func TestPropfindShowsLocksAndSharedLocksWork(t *testing.T) {
	b := theBridge(t)
	const p = "/local/lock-shared.txt"
	tokAdmin := lockAs(t, b, adminUser, adminPass, p, sharedLockInfoXML, http.StatusCreated)
	tokLimited := lockAs(t, b, limitedUser, limitedPass, p, sharedLockInfoXML, http.StatusOK)
	resp, body := b.request(t, limitedUser, limitedPass, "LOCK", p, []byte(lockInfoXML))
	wantCode(t, "an exclusive LOCK over two shared ones", resp, body, http.StatusLocked)
	for _, propfind := range []string{"", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`} {
		resp, body = b.request(t, readerUser, readerPass, "PROPFIND", "/local/", []byte(propfind), "Depth", "1")
		wantCode(t, "PROPFIND", resp, body, http.StatusMultiStatus)
		for _, tok := range []string{tokAdmin, tokLimited} {
			if !strings.Contains(string(body), strings.Trim(tok, "<>")) {
				t.Fatalf("lockdiscovery lacks %s: %s", tok, body)
			}
		}
	}
	resp, body = b.request(t, limitedUser, limitedPass, "PUT", p, []byte("shared"), "If", "("+tokLimited+")")
	wantCode(t, "PUT under one's own shared lock", resp, body, http.StatusNoContent)
}
