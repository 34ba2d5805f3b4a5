package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAuthentication(t *testing.T) {
	b := theBridge(t)
	for _, c := range []struct{ user, pass string }{{"", ""}, {adminUser, "not-the-password"}, {"nobody", adminPass}, {adminUser, ""}} {
		for _, target := range []string{"/", b.mounts[0].Path + "/"} {
			for _, method := range []string{"PROPFIND", "GET", "PUT", "OPTIONS"} {
				resp, body := b.request(t, c.user, c.pass, method, target, nil, "Depth", "0")
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
					t.Errorf("%s %s as %q: %d %q, want 401 with a Basic realm", method, target, c.user, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
				if c.pass != "" && strings.Contains(string(body), c.pass) {
					t.Error("password echoed in a 401 body")
				}
			}
		}
	}
}

func TestReadOnlyUser(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		if resp, _ := b.admin(t, "PUT", m.Path+"/ro.txt", []byte("keep")); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("setup: %d", resp.StatusCode)
		}
		keep(m, "ro.txt", []byte("keep"))
		dest := []string{"Destination", b.url + m.Path + "/ro-copy.txt"}
		patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:p xmlns:x="urn:e2e">v</x:p></D:prop></D:set></D:propertyupdate>`
		lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
		for _, c := range []struct {
			method, path, body string
			hdr                []string
		}{
			{"PUT", "/ro.txt", "changed", nil},
			{"PUT", "/ro-new.txt", "new", nil},
			{"MKCOL", "/ro-dir", "", nil},
			{"DELETE", "/ro.txt", "", nil},
			{"MOVE", "/ro.txt", "", dest},
			{"COPY", "/ro.txt", "", dest},
			{"PROPPATCH", "/ro.txt", patch, nil},
			{"LOCK", "/ro.txt", lock, nil},
			{"LOCK", "/ro-new.txt", lock, nil},
		} {
			resp, _ := b.request(t, readerUser, readerPass, c.method, m.Path+c.path, []byte(c.body), c.hdr...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("reader %s %s: %d, want 403", c.method, c.path, resp.StatusCode)
			}
		}
		resp, body := b.get(t, readerUser, readerPass, m.Path+"/ro.txt")
		if resp.StatusCode != 200 || string(body) != "keep" {
			t.Fatalf("reader GET: %d %q", resp.StatusCode, body)
		}
		if resp, _ := b.request(t, readerUser, readerPass, "PROPFIND", m.Path+"/", nil, "Depth", "1"); resp.StatusCode != http.StatusMultiStatus {
			t.Fatalf("reader PROPFIND: %d", resp.StatusCode)
		}
		for _, p := range []string{"/ro-copy.txt", "/ro-new.txt", "/ro-dir"} {
			if resp, _ := b.admin(t, "PROPFIND", m.Path+p, nil, "Depth", "0"); resp.StatusCode != 404 {
				t.Errorf("%s exists after the reader's refused requests: %d", p, resp.StatusCode)
			}
		}
	})
}

func TestHiddenMount(t *testing.T) {
	b := theBridge(t)
	hiddenRoot := filepath.Join(workDir, "hidden-root")
	if err := os.WriteFile(filepath.Join(hiddenRoot, "secret.txt"), []byte("HIDDEN-SECRET-3b7e"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := b.request(t, limitedUser, limitedPass, "PROPFIND", "/", nil, "Depth", "1")
	if resp.StatusCode != http.StatusMultiStatus || strings.Contains(string(body), hiddenMount) {
		t.Fatalf("root for limited user: %d, lists hidden: %v", resp.StatusCode, strings.Contains(string(body), hiddenMount))
	}
	for _, m := range b.mounts {
		if !strings.Contains(string(body), m.Path+"/") {
			t.Errorf("root for limited user does not list %s", m.Path)
		}
	}
	if resp, body := b.request(t, limitedUser, limitedPass, "GET", "/", nil); resp.StatusCode != 200 || strings.Contains(string(body), strings.TrimPrefix(hiddenMount, "/")) {
		t.Errorf("HTML root for limited user: %d, mentions hidden: %v", resp.StatusCode, strings.Contains(string(body), "hidden"))
	}
	if resp, body := b.admin(t, "PROPFIND", "/", nil, "Depth", "1"); !strings.Contains(string(body), hiddenMount) {
		t.Fatalf("admin does not see %s: %d", hiddenMount, resp.StatusCode)
	}
	if resp, body := b.admin(t, "GET", hiddenMount+"/secret.txt", nil); resp.StatusCode != 200 || string(body) != "HIDDEN-SECRET-3b7e" {
		t.Fatalf("admin GET %s/secret.txt: %d", hiddenMount, resp.StatusCode)
	}

	// Every request to the hidden mount answers as for a mount that does
	// not exist: no status tells the limited user it is there.
	visible := b.mounts[0].Path
	for _, method := range []string{"OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "MKCOL", "PUT", "DELETE", "COPY", "MOVE", "LOCK", "UNLOCK"} {
		for _, p := range []string{"", "/", "/secret.txt", "/no/such"} {
			hdr := []string{"Depth", "0", "Destination", b.url + visible + "/from-hidden.txt", "Lock-Token", "<opaquelocktoken:e2e>"}
			resp, body := b.request(t, limitedUser, limitedPass, method, hiddenMount+p, []byte("x"), hdr...)
			ghost, _ := b.request(t, limitedUser, limitedPass, method, "/no-such-mount"+p, []byte("x"), hdr...)
			if resp.StatusCode != ghost.StatusCode || strings.Contains(string(body), "HIDDEN-SECRET") {
				t.Errorf("limited %s %s%s: %d, but %d for a mount that does not exist", method, hiddenMount, p, resp.StatusCode, ghost.StatusCode)
			}
			if p != "" && p != "/" && resp.StatusCode != http.StatusNotFound {
				t.Errorf("limited %s %s%s: %d, want 404", method, hiddenMount, p, resp.StatusCode)
			}
		}
	}
	// Nor may it be reached as a COPY or MOVE destination, however spelled.
	if resp, _ := b.request(t, limitedUser, limitedPass, "PUT", visible+"/to-hide.txt", []byte("mine")); resp.StatusCode != 201 && resp.StatusCode != 204 {
		t.Fatalf("limited PUT: %d", resp.StatusCode)
	}
	for _, method := range []string{"COPY", "MOVE"} {
		for _, dest := range []string{
			b.url + hiddenMount + "/stolen.txt",
			hiddenMount + "/stolen.txt",
			b.url + "/%68idden/stolen.txt",
			b.url + visible + "/../hidden/stolen.txt",
			b.url + visible + "/%2e%2e/hidden/stolen.txt",
			b.url + visible + "/..%2fhidden%2fstolen.txt",
		} {
			resp, _ := b.request(t, limitedUser, limitedPass, method, visible+"/to-hide.txt", nil, "Destination", dest)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("limited %s to %s: %d, want a 4xx refusal", method, dest, resp.StatusCode)
			}
		}
	}
	entries, _ := os.ReadDir(hiddenRoot)
	if len(entries) != 1 {
		t.Errorf("hidden mount's folder changed: %v", entries)
	}
	b.admin(t, "DELETE", visible+"/to-hide.txt", nil)
}

// rawRequest sends a request line exactly as given, so no client library
// cleans or re-encodes the path.
func rawRequest(t *testing.T, b *bridge, user, pass, method, target string, hdr ...string) (int, string) {
	t.Helper()
	host := strings.TrimPrefix(b.url, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	auth, _ := http.NewRequest(method, b.url+"/", nil)
	auth.SetBasicAuth(user, pass)
	var extra strings.Builder
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&extra, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	body := ""
	if method == "PUT" {
		body = "evil"
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nDepth: 0\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, target, host, auth.Header.Get("Authorization"), extra.String(), len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for range 1 << 10 { // at most 4 MiB of answer
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// topEntries names what lies directly in dir.
func topEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPathTricksNeverEscape(t *testing.T) {
	b := theBridge(t)
	// A sentinel beside the mount folders: no path trick may read, replace or
	// delete it, nor create anything beside it.
	sentinel := filepath.Join(workDir, "sentinel.txt")
	const secret = "SENTINEL-CONTENT-8d1f"
	if err := os.WriteFile(sentinel, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	before := topEntries(t, workDir)
	for _, m := range b.mounts {
		for _, p := range []string{
			m.Path + "/../sentinel.txt",
			m.Path + "/%2e%2e/sentinel.txt",
			m.Path + "/%2E%2E/sentinel.txt",
			m.Path + "/..%2fsentinel.txt",
			m.Path + "/..%2Fsentinel.txt",
			m.Path + "/%2e%2e%2fsentinel.txt",
			m.Path + "/%2e%2e%2f%2e%2e%2fsentinel.txt",
			m.Path + "/sub/../../sentinel.txt",
			m.Path + "/./../sentinel.txt",
			m.Path + "/x%00/../../sentinel.txt",
			m.Path + "/sentinel.txt%00",
			m.Path + "/a%00b",
			m.Path + "%2f..%2fsentinel.txt",
			"/..%2f..%2fsentinel.txt",
			"/../sentinel.txt",
			"/%2e%2e/sentinel.txt",
		} {
			for _, method := range []string{"GET", "PROPFIND", "PUT", "MKCOL", "DELETE", "COPY", "MOVE"} {
				var hdr []string
				if method == "COPY" || method == "MOVE" {
					hdr = []string{"Destination", b.url + m.Path + "/landed.txt"}
				}
				status, body := rawRequest(t, b, adminUser, adminPass, method, p, hdr...)
				if strings.Contains(body, secret) || status < 400 || (status != 400 && status != 403 && status != 404) {
					t.Errorf("%s %s: %d %.200q, want 400, 403 or 404", method, p, status, body)
				}
			}
		}
		// A backslash is an ordinary character in a name here (and
		// refused by some providers): whatever the answer, it stays inside.
		for _, p := range []string{m.Path + "/..\\sentinel.txt", m.Path + "/..%5csentinel.txt"} {
			for _, method := range []string{"PUT", "GET", "DELETE"} {
				if status, body := rawRequest(t, b, adminUser, adminPass, method, p); strings.Contains(body, secret) || status >= 500 {
					t.Errorf("%s %s: %d %.200q", method, p, status, body)
				}
			}
		}
		// The trick in the Destination of a COPY or MOVE of a real file.
		if resp, _ := b.admin(t, "PUT", m.Path+"/escapee.txt", []byte("escapee")); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		for _, dest := range []string{
			b.url + m.Path + "/../sentinel.txt",
			b.url + m.Path + "/%2e%2e/sentinel.txt",
			b.url + m.Path + "/..%2fsentinel.txt",
			b.url + m.Path + "/../../sentinel.txt",
			b.url + m.Path + "/a%00b",
			"/../sentinel.txt",
		} {
			for _, method := range []string{"COPY", "MOVE"} {
				status, body := rawRequest(t, b, adminUser, adminPass, method, m.Path+"/escapee.txt", "Destination", dest, "Overwrite", "T")
				if status != 400 && status != 403 && status != 404 && status != 502 {
					t.Errorf("%s to %s: %d %.200q, want 400, 403, 404 or 502", method, dest, status, body)
				}
			}
		}
		if resp, body := b.get(t, adminUser, adminPass, m.Path+"/escapee.txt"); resp.StatusCode != 200 || string(body) != "escapee" {
			t.Errorf("source of the refused MOVEs: %d %q", resp.StatusCode, body)
		}
	}
	if data, err := os.ReadFile(sentinel); err != nil || string(data) != secret {
		t.Fatalf("sentinel changed: %v %q", err, data)
	}
	if after := topEntries(t, workDir); !slices.Equal(before, after) {
		t.Fatalf("entries beside the mount folders changed: %v, then %v", before, after)
	}
}

func TestMalformedRequests(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		b.admin(t, "PUT", m.Path+"/malformed.txt", []byte("x"))
		for _, c := range []struct{ method, path, body string }{
			{"PROPFIND", "/", "<D:propfind xmlns:D='DAV:'><D:prop><unclosed"},
			{"PROPFIND", "/", "this is not XML"},
			{"PROPFIND", "/malformed.txt", "<D:propfind xmlns:D='DAV:'><D:prop></D:propfind>"},
			{"PROPPATCH", "/malformed.txt", "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop>"},
			{"LOCK", "/malformed.txt", "<D:lockinfo xmlns:D='DAV:'><D:lockscope>"},
		} {
			if resp, body := b.admin(t, c.method, m.Path+c.path, []byte(c.body), "Depth", "0"); resp.StatusCode != 400 {
				t.Errorf("%s %s with %q: %d %.200q, want 400", c.method, c.path, c.body, resp.StatusCode, body)
			}
		}
		for _, p := range []string{"/", m.Path + "/"} {
			if resp, _ := b.admin(t, "PROPFIND", p, nil, "Depth", "infinity"); resp.StatusCode != 403 {
				t.Errorf("PROPFIND %s with Depth: infinity: %d, want 403", p, resp.StatusCode)
			}
		}
		if resp, _ := b.admin(t, "PUT", m.Path+"/no/such/folder/f.txt", []byte("x")); resp.StatusCode != 409 {
			t.Errorf("PUT into a missing folder: %d, want 409", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "MOVE", m.Path+"/", nil, "Destination", b.url+"/elsewhere"); resp.StatusCode != 403 {
			t.Errorf("MOVE of a mount root: %d, want 403", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "DELETE", m.Path+"/", nil); resp.StatusCode != 403 {
			t.Errorf("DELETE of a mount root: %d, want 403", resp.StatusCode)
		}
		// RFC 4918 9.8.5 and 9.9.4: onto itself is 403; into its own
		// subfolder cannot be done (403 or 409); either way nothing moves.
		b.admin(t, "MKCOL", m.Path+"/selfish", nil)
		b.admin(t, "MKCOL", m.Path+"/selfish/sub", nil)
		b.admin(t, "PUT", m.Path+"/selfish/f.txt", []byte("self"))
		for _, c := range []struct{ method, from, to string }{
			{"COPY", "/selfish/f.txt", "/selfish/f.txt"},
			{"MOVE", "/selfish/f.txt", "/selfish/f.txt"},
			{"COPY", "/selfish/", "/selfish/"},
			{"MOVE", "/selfish/", "/selfish/"},
		} {
			if resp, body := b.admin(t, c.method, m.Path+c.from, nil, "Destination", b.url+m.Path+c.to); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s onto itself: %d %.100q, want 403", c.method, c.from, resp.StatusCode, body)
			}
		}
		for _, method := range []string{"COPY", "MOVE"} {
			if resp, _ := b.admin(t, method, m.Path+"/selfish/", nil, "Destination", b.url+m.Path+"/selfish/sub/again/"); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusConflict {
				t.Errorf("%s of a folder into its own subfolder: %d, want 403 or 409", method, resp.StatusCode)
			}
		}
		if resp, body := b.get(t, adminUser, adminPass, m.Path+"/selfish/f.txt"); resp.StatusCode != 200 || string(body) != "self" {
			t.Errorf("after refused self-copies: %d %q", resp.StatusCode, body)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/selfish/sub/again/", nil, "Depth", "0"); resp.StatusCode != 404 {
			t.Errorf("a folder copied into itself: %d", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/", nil, "Depth", "0"); resp.StatusCode != http.StatusMultiStatus {
			t.Errorf("mount root after refused requests: %d", resp.StatusCode)
		}
	})
}

// TestForbiddenNames checks that a name the provider refuses is refused
// with a client error, and that nothing half-made stays behind.
func TestForbiddenNames(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		if m.ForbiddenChars == "" {
			t.Skip("the provider takes any name")
		}
		b.admin(t, "PUT", m.Path+"/plain.txt", []byte("plain"))
		for _, r := range m.ForbiddenChars {
			name := url.PathEscape("bad" + string(r) + "name")
			for _, c := range []struct {
				method, path string
				hdr          []string
			}{
				{"PUT", "/" + name, nil},
				{"MKCOL", "/" + name, nil},
				{"COPY", "/plain.txt", []string{"Destination", b.url + m.Path + "/" + name}},
				{"MOVE", "/plain.txt", []string{"Destination", b.url + m.Path + "/" + name}},
			} {
				resp, body := b.admin(t, c.method, m.Path+c.path, []byte("x"), c.hdr...)
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("%s %q: %d %.200q, want a 4xx refusal", c.method, "bad"+string(r)+"name", resp.StatusCode, body)
				}
			}
			if resp, _ := b.admin(t, "PROPFIND", m.Path+"/"+name, nil, "Depth", "0"); resp.StatusCode != 404 {
				t.Errorf("%q exists after being refused: %d", "bad"+string(r)+"name", resp.StatusCode)
			}
		}
		if resp, body := b.get(t, adminUser, adminPass, m.Path+"/plain.txt"); resp.StatusCode != 200 || string(body) != "plain" {
			t.Errorf("source of the refused COPY/MOVE: %d %q", resp.StatusCode, body)
		}

		// A folder from a mount that takes the name, copied here: RFC 4918
		// 9.8.8 allows a partial copy only as 207 Multi-Status naming each
		// member that failed; a plain error must leave nothing behind.
		var from *Mount
		for _, o := range b.mounts {
			if o.ForbiddenChars == "" {
				from = &o
				break
			}
		}
		if from == nil {
			return
		}
		bad := url.PathEscape("bad" + string([]rune(m.ForbiddenChars)[0]) + ".txt")
		b.admin(t, "MKCOL", from.Path+"/for-"+strings.TrimPrefix(m.Path, "/"), nil)
		src := from.Path + "/for-" + strings.TrimPrefix(m.Path, "/")
		b.admin(t, "PUT", src+"/"+bad, []byte("bad"))
		b.admin(t, "PUT", src+"/ok.txt", []byte("ok"))
		resp, body := b.admin(t, "COPY", src+"/", nil, "Destination", b.url+m.Path+"/folder-copy/")
		switch {
		case resp.StatusCode == http.StatusMultiStatus:
			if !strings.Contains(string(body), bad) {
				t.Errorf("COPY of a folder holding %s: 207 not naming it: %.500s", bad, body)
			}
			if r, got := b.get(t, adminUser, adminPass, m.Path+"/folder-copy/ok.txt"); r.StatusCode != 200 || string(got) != "ok" {
				t.Errorf("after a 207 COPY, the member that could be copied: %d %q", r.StatusCode, got)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			if r, _ := b.admin(t, "PROPFIND", m.Path+"/folder-copy/", nil, "Depth", "1"); r.StatusCode != 404 {
				t.Errorf("COPY of a folder holding %s from %s: %d, yet the destination exists (%d): a partial copy reported as a plain error",
					bad, from.Path, resp.StatusCode, r.StatusCode)
			}
		default:
			t.Errorf("COPY of a folder holding %s from %s: %d %.300q", bad, from.Path, resp.StatusCode, body)
		}
		// A MOVE that cannot be completed loses nothing at its source.
		resp, body = b.admin(t, "MOVE", src+"/", nil, "Destination", b.url+m.Path+"/folder-moved/")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("MOVE of a folder holding %s from %s: %d %.300q, want a 4xx refusal", bad, from.Path, resp.StatusCode, body)
		}
		for name, want := range map[string]string{bad: "bad", "ok.txt": "ok"} {
			if r, got := b.get(t, adminUser, adminPass, src+"/"+name); r.StatusCode != 200 || string(got) != want {
				t.Errorf("after the refused MOVE, %s/%s: %d %q", src, name, r.StatusCode, got)
			}
		}
		if r, _ := b.admin(t, "PROPFIND", m.Path+"/folder-moved/", nil, "Depth", "1"); r.StatusCode != 404 {
			t.Errorf("MOVE of a folder holding %s from %s: %d, yet the destination exists (%d): a partial move reported as a plain error",
				bad, from.Path, resp.StatusCode, r.StatusCode)
		}
	})
}

// TestLoginThrottle runs a bridge of its own that blocks an address after 3
// wrong logins in a minute: password guessing gets 429 instead of answers.
func TestLoginThrottle(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	b, err := startBridge(dir, []Mount{{Path: "/local", Driver: "local",
		Setup: func() (map[string]any, error) { return map[string]any{"root": root}, nil }}},
		map[string]any{"login_max_failures": 3, "login_block": "5m"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("second bridge's shutdown: %v", err)
		}
	})
	watch(t, b)
	if resp, _ := b.admin(t, "PROPFIND", "/local/", nil, "Depth", "0"); resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("before any failure: %d", resp.StatusCode)
	}
	var statuses []int
	for range 6 {
		resp, _ := b.request(t, adminUser, "guess", "PROPFIND", "/local/", nil, "Depth", "0")
		statuses = append(statuses, resp.StatusCode)
	}
	if !slices.Equal(statuses[:3], []int{401, 401, 401}) || statuses[5] != http.StatusTooManyRequests {
		t.Fatalf("six wrong logins: %v, want 401 three times, then 429", statuses)
	}
}
