package cloudrevefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"bridge/tests/fakes/faults"
)

// client speaks to the fake as a bare HTTP client would.
type client struct {
	t      *testing.T
	f      *Fake
	base   string
	cookie string
}

func start(t *testing.T) *client {
	t.Helper()
	f := New()
	t.Cleanup(func() { f.Close() })
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	return &client{t: t, f: f, base: srv.URL}
}

type answer struct {
	Status int
	Code   int             `json:"code"`
	Msg    string          `json:"msg"`
	Data   json.RawMessage `json:"data"`
	Header http.Header
	Body   []byte
}

// do sends body (JSON, or raw when it is []byte) and decodes the envelope.
func (c *client) do(method, p string, body any) answer {
	c.t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+p, rd)
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, _ = io.ReadAll(resp.Body)
	json.Unmarshal(a.Body, &a)
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			c.cookie = ck.Value
		}
	}
	return a
}

func (c *client) want(a answer, code int) answer {
	c.t.Helper()
	if a.Status != http.StatusOK || a.Code != code {
		c.t.Fatalf("HTTP %d code %d (%s), want HTTP 200 code %d", a.Status, a.Code, a.Msg, code)
	}
	return a
}

func (c *client) login() {
	c.t.Helper()
	c.want(c.do("POST", "/api/v3/user/session", map[string]string{"userName": c.f.User, "Password": c.f.Password, "captchaCode": ""}), 0)
}

type listing struct {
	Parent  string `json:"parent"`
	Objects []struct {
		ID, Name, Path, Type string
		Size                 int64
	} `json:"objects"`
	Policy struct{ ID, Type string } `json:"policy"`
}

func (c *client) list(p string) listing {
	c.t.Helper()
	var l listing
	json.Unmarshal(c.want(c.do("GET", "/api/v3/directory"+p, nil), 0).Data, &l)
	return l
}

func (c *client) id(dir, name, typ string) string {
	c.t.Helper()
	for _, o := range c.list(dir).Objects {
		if o.Name == name && o.Type == typ {
			return o.ID
		}
	}
	c.t.Fatalf("%s %s not listed in %s", typ, name, dir)
	return ""
}

func TestLoginIsStrict(t *testing.T) {
	c := start(t)
	c.want(c.do("GET", "/api/v3/user/storage", nil), CodeLoginRequired)
	c.want(c.do("POST", "/api/v3/user/session", map[string]string{"userName": c.f.User, "password": c.f.Password}), CodeBadParams)
	c.want(c.do("POST", "/api/v3/user/session", []byte("userName=a%40b&Password=xxxx")), CodeBadParams)
	c.want(c.do("POST", "/api/v3/user/session", map[string]string{"userName": c.f.User, "Password": "wrong-one"}), CodeCredentials)
	c.want(c.do("POST", "/api/v3/user/session", map[string]string{"userName": "not-an-email", "Password": c.f.Password}), CodeBadParams)
	c.login()
	c.want(c.do("GET", "/api/v3/user/storage", nil), 0)
	c.f.DropSessions()
	c.want(c.do("GET", "/api/v3/user/storage", nil), CodeLoginRequired)
	c.login()
	c.f.Advance(SessionTTL + time.Second)
	c.want(c.do("GET", "/api/v3/user/storage", nil), CodeLoginRequired)
}

func TestSecondFactor(t *testing.T) {
	c := start(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c.f.SetClock(func() time.Time { return now })
	c.f.TOTPSecret = "JBSWY3DPEHPK3PXP"
	c.want(c.do("POST", "/api/v3/user/session", map[string]string{"userName": c.f.User, "Password": c.f.Password}), CodeTwoFactor)
	c.want(c.do("GET", "/api/v3/user/storage", nil), CodeLoginRequired) // not yet
	old, _ := totp.GenerateCode(c.f.TOTPSecret, now.Add(-5*time.Minute))
	c.want(c.do("POST", "/api/v3/user/2fa", map[string]string{"code": old}), CodeCredentials)
	code, _ := totp.GenerateCode(c.f.TOTPSecret, now)
	c.want(c.do("POST", "/api/v3/user/2fa", map[string]string{"code": code}), 0)
	c.want(c.do("GET", "/api/v3/user/storage", nil), 0)
	// Without the first step's cookie the code alone is nothing.
	c2 := &client{t: t, f: c.f, base: c.base}
	c2.want(c2.do("POST", "/api/v3/user/2fa", map[string]string{"code": code}), CodeLoginRequired)
}

func TestLocalUploadIsStrict(t *testing.T) {
	c := start(t)
	c.f.ChunkSize = 4
	c.login()
	pol := c.list("/").Policy.ID
	session := func(name string, size int) string {
		var s struct{ SessionID string }
		json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": size, "name": name,
			"policy_id": pol, "last_modified": 1714481625683, "mime_type": ""}), 0).Data, &s)
		return s.SessionID
	}
	sid := session("a.txt", 10)
	c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": 1, "name": "a.txt", "policy_id": pol}), CodeUploadExists)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/1", []byte("abcd")), CodeChunkOrder)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/0", []byte("abc")), CodeChunkLength)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/0", []byte("abcd")), 0)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/1", []byte("efgh")), 0)
	if len(c.list("/").Objects) != 0 {
		t.Fatal("an unfinished upload is listed")
	}
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/2", []byte("ijk")), CodeChunkLength)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/2", []byte("ij")), 0) // the last completes
	if got, _ := c.f.File("/a.txt"); string(got) != "abcdefghij" {
		t.Fatalf("content %q", got)
	}
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/3", []byte("x")), CodeSessionGone)
	// Existing names are refused; so are forbidden ones and other policies.
	c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": 1, "name": "a.txt", "policy_id": pol}), CodeExists)
	for _, n := range ForbiddenNames {
		c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": 1, "name": n, "policy_id": pol}), CodeBadName)
		c.want(c.do("PUT", "/api/v3/directory", map[string]any{"path": "/" + n}), CodeBadName)
	}
	c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": 1, "name": "b", "policy_id": "kVfW"}), CodePolicyMismatch)
	// A 0-byte file posts chunk 0 empty; a cancelled session is gone.
	sid = session("empty", 0)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/0", []byte{}), 0)
	sid = session("cancelled", 5)
	c.want(c.do("DELETE", "/api/v3/file/upload/"+sid, nil), 0)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/0", []byte("abcd")), CodeSessionGone)
	if c.f.OpenUploads() != 0 || !c.f.Exists("/empty", false) || c.f.Exists("/cancelled", false) {
		t.Fatal("wrong state after the empty and cancelled uploads")
	}
	// Sessions expire on the clock.
	sid = session("late", 5)
	c.f.Advance(UploadTTL)
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/0", []byte("abcd")), CodeSessionGone)
}

func TestOneDriveUpload(t *testing.T) {
	c := start(t)
	c.f.UseOneDrive("/od")
	c.login()
	l := c.list("/od")
	if l.Policy.Type != "onedrive" {
		t.Fatalf("policy %+v", l.Policy)
	}
	const unit = 320 << 10
	data := bytes.Repeat([]byte("x"), unit+10)
	var s struct {
		SessionID  string
		ChunkSize  int64
		UploadURLs []string
	}
	json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/od", "size": len(data), "name": "f",
		"policy_id": l.Policy.ID, "last_modified": 0}), 0).Data, &s)
	if len(s.UploadURLs) != 1 || s.ChunkSize%unit != 0 {
		t.Fatalf("session %+v", s)
	}
	put := func(a, b int, cookie bool) int {
		req, _ := http.NewRequest("PUT", s.UploadURLs[0], bytes.NewReader(data[a:b]))
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b-1, len(data)))
		if cookie {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(0, unit, true); code != http.StatusBadRequest {
		t.Fatalf("with the Cloudreve cookie: %d", code)
	}
	if code := put(0, 1000, false); code != http.StatusBadRequest {
		t.Fatalf("a fragment not a multiple of 320 KiB: %d", code)
	}
	if code := put(unit, len(data), false); code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("out of order: %d", code)
	}
	if code := put(0, unit, false); code != http.StatusAccepted {
		t.Fatalf("first range: %d", code)
	}
	c.want(c.do("POST", "/api/v3/callback/onedrive/finish/"+s.SessionID, map[string]any{}), CodeBadParams)
	if code := put(unit, len(data), false); code != http.StatusCreated {
		t.Fatalf("last range: %d", code)
	}
	c.cookie = "" // the callback needs no login
	c.want(c.do("POST", "/api/v3/callback/onedrive/finish/"+s.SessionID, map[string]any{}), 0)
	if got, _ := c.f.File("/od/f"); !bytes.Equal(got, data) {
		t.Fatal("wrong content")
	}
}

func TestDownloadURL(t *testing.T) {
	c := start(t)
	c.f.Put("/d/v.bin", []byte("0123456789"))
	c.login()
	id := c.id("/d", "v.bin", "file")
	var rel string
	json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/download/"+id, nil), 0).Data, &rel)
	if !strings.HasPrefix(rel, "/api/v3/file/download/") || !strings.Contains(rel, "sign=") {
		t.Fatalf("URL %q: want a relative signed one", rel)
	}
	get := func(u, rng string) (int, string) {
		req, _ := http.NewRequest("GET", c.base+u, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		rng, body string
		status    int
	}{{"", "0123456789", 200}, {"bytes=2-4", "234", 206}, {"bytes=-3", "789", 206}, {"bytes=8-", "89", 206}} {
		if code, b := get(rel, tc.rng); code != tc.status || b != tc.body {
			t.Fatalf("Range %q: %d %q", tc.rng, code, b)
		}
	}
	if code, _ := get(rel, "bytes=10-"); code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("past the end: %d", code)
	}
	if _, b := get(strings.Replace(rel, "sign=", "sign=x", 1), ""); !strings.Contains(b, `"code":40005`) {
		t.Fatalf("bad signature: %s", b)
	}
	c.f.Advance(LinkTTL + time.Second)
	if code, b := get(rel, ""); code != 200 || !strings.Contains(b, `"code":40005`) {
		t.Fatalf("expired: %d %s", code, b)
	}
	// A folder's id is not a file's.
	c.want(c.do("PUT", "/api/v3/file/download/"+c.list("/").Objects[0].ID, nil), CodeNotFound)
}

func TestObjectCalls(t *testing.T) {
	c := start(t)
	c.f.Put("/a/f.txt", []byte("f"))
	c.f.Put("/a/g.txt", []byte("g"))
	c.f.Put("/b/keep", nil)
	c.login()
	f, g, a := c.id("/a", "f.txt", "file"), c.id("/a", "g.txt", "file"), c.id("/", "a", "dir")
	// copy takes one object.
	c.want(c.do("POST", "/api/v3/object/copy", map[string]any{"src_dir": "/a", "src": map[string]any{"items": []string{f, g}, "dirs": []string{}}, "dst": "/b"}), CodeBadParams)
	c.want(c.do("POST", "/api/v3/object/copy", map[string]any{"src_dir": "/a", "src": map[string]any{"items": []string{f}, "dirs": []string{}}, "dst": "/b"}), 0)
	c.want(c.do("POST", "/api/v3/object/copy", map[string]any{"src_dir": "/a", "src": map[string]any{"items": []string{f}, "dirs": []string{}}, "dst": "/b"}), CodeExists)
	// A wrong src_dir is skipped without a word.
	c.want(c.do("PATCH", "/api/v3/object", map[string]any{"action": "move", "src_dir": "/b", "src": map[string]any{"items": []string{g}, "dirs": []string{}}, "dst": "/"}), 0)
	if !c.f.Exists("/a/g.txt", false) {
		t.Fatal("a move with the wrong src_dir happened")
	}
	c.want(c.do("PATCH", "/api/v3/object", map[string]any{"action": "move", "src_dir": "/a", "src": map[string]any{"items": []string{g}, "dirs": []string{}}, "dst": "/"}), 0)
	if !c.f.Exists("/g.txt", false) {
		t.Fatal("the move did not happen")
	}
	// rename, conflicts and names.
	c.want(c.do("POST", "/api/v3/object/rename", map[string]any{"action": "rename", "src": map[string]any{"items": []string{f}, "dirs": []string{}}, "new_name": "x:y"}), CodeBadName)
	c.want(c.do("POST", "/api/v3/object/rename", map[string]any{"action": "rename", "src": map[string]any{"items": []string{f}, "dirs": []string{}}, "new_name": "f2.txt"}), 0)
	// Deleting a missing id answers 0; the root cannot be deleted.
	c.want(c.do("DELETE", "/api/v3/object", map[string]any{"items": []string{"nope"}, "dirs": []string{}}), 0)
	c.want(c.do("DELETE", "/api/v3/object", map[string]any{"items": []string{}, "dirs": []string{c.list("/").Parent}}), CodeRoot)
	// Moving a folder into its own descendant is accepted and orphans it,
	// as on the real server.
	c.want(c.do("PUT", "/api/v3/directory", map[string]any{"path": "/a/sub/deeper"}), 0)
	c.want(c.do("PUT", "/api/v3/directory", map[string]any{"path": "/a/sub"}), 0) // mkdir -p: fine on an existing folder
	c.want(c.do("PATCH", "/api/v3/object", map[string]any{"action": "move", "src_dir": "/", "src": map[string]any{"items": []string{}, "dirs": []string{a}}, "dst": "/a/sub"}), 0)
	if c.f.Orphans() == 0 || c.f.Exists("/a", true) {
		t.Fatal("the subtree was not orphaned")
	}
	c.want(c.do("GET", "/api/v3/directory/a", nil), CodeObjectNotFound)
}

func TestIDSpacesAreSeparate(t *testing.T) {
	c := start(t)
	c.f.Put("/d/f", []byte("x")) // folder 2 (/d), file 1
	c.f.Put("/e/g", []byte("y")) // folder 3, file 2: same id as /d
	c.login()
	d, g := c.id("/", "d", "dir"), c.id("/e", "g", "file")
	if d != g {
		t.Fatalf("folder %s and file %s: want one id string in two spaces", d, g)
	}
	c.want(c.do("DELETE", "/api/v3/object", map[string]any{"items": []string{g}, "dirs": []string{}}), 0)
	if !c.f.Exists("/d/f", false) || c.f.Exists("/e/g", false) {
		t.Fatal("deleting a file id touched the folder of the same id")
	}
}

func TestFaults(t *testing.T) {
	c := start(t)
	c.login()
	c.f.Inject(Fault{Endpoint: "storage", Skip: 1, Code: 50001})
	c.want(c.do("GET", "/api/v3/user/storage", nil), 0)
	c.want(c.do("GET", "/api/v3/user/storage", nil), 50001)
	c.want(c.do("GET", "/api/v3/user/storage", nil), 0)
	c.f.FailHTTP("storage", http.StatusBadGateway, 1)
	if a := c.do("GET", "/api/v3/user/storage", nil); a.Status != http.StatusBadGateway {
		t.Fatalf("HTTP fault: %d", a.Status)
	}
	c.f.Cut("storage", 1)
	req, _ := http.NewRequest("GET", c.base+"/api/v3/user/storage", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("a cut answer read whole")
		}
	}
	if n := c.f.Calls()["storage"]; n != 5 {
		t.Fatalf("%d storage calls counted, want 5", n)
	}
}

// fetch GETs a URL of the fake without the cookie, as a player given a
// download link does.
func (c *client) fetch(u string) answer {
	c.t.Helper()
	resp, err := http.Get(c.base + u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, _ = io.ReadAll(resp.Body)
	json.Unmarshal(a.Body, &a)
	return a
}

// link makes a download link for the default user's file at dir/name.
func (c *client) link(dir, name string) string {
	c.t.Helper()
	var rel string
	json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/download/"+c.id(dir, name, "file"), nil), 0).Data, &rel)
	return rel
}

// wantJSON checks a link's answer is the server's HTTP 200 envelope with
// code.
func wantJSON(t *testing.T, a answer, code int, what string) {
	t.Helper()
	if a.Status != 200 || a.Code != code || a.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%s: HTTP %d %s %s, want HTTP 200 JSON code %d", what, a.Status, a.Header.Get("Content-Type"), a.Body, code)
	}
}

var linkShape = regexp.MustCompile(`^/api/v3/file/download/([A-Za-z]{16})\?sign=([A-Za-z0-9_-]+(?:%3D)*)%3A([0-9]+)$`)

func TestDownloadLinksAreSignedSessions(t *testing.T) {
	c := start(t)
	now := time.Unix(1_800_000_000, 0)
	c.f.SetClock(func() time.Time { return now })
	c.f.Put("/v.bin", []byte("0123456789"))
	c.login()
	rel := c.link("/", "v.bin")
	m := linkShape.FindStringSubmatch(rel)
	if m == nil {
		t.Fatalf("link %q: want /api/v3/file/download/<session>?sign=<sig>%%3A<expiry>", rel)
	}
	// The sign is Cloudreve's HMACAuth over the path, expiring LinkTTL on.
	sign, _ := url.QueryUnescape(m[2] + "%3A" + m[3])
	if m[3] != fmt.Sprint(now.Add(LinkTTL).Unix()) || sign != c.f.sign("/api/v3/file/download/"+m[1], now.Add(LinkTTL).Unix()) {
		t.Fatalf("sign %q of %q", sign, rel)
	}
	if !slices.Contains(c.f.Secrets(), strings.TrimRight(strings.SplitN(sign, ":", 2)[0], "=")) {
		t.Fatal("the signature is not among Secrets")
	}
	if a := c.fetch(rel); a.Status != 200 || string(a.Body) != "0123456789" || a.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("the link: %d %s %q", a.Status, a.Header.Get("Content-Type"), a.Body)
	}
	wantJSON(t, c.fetch("/api/v3/file/download/"+m[1]), CodeBadSignature, "no sign")
	wantJSON(t, c.fetch(strings.Replace(rel, "sign=", "sign=A", 1)), CodeBadSignature, "a wrong sign")
	other := linkShape.FindStringSubmatch(c.link("/", "v.bin"))
	wantJSON(t, c.fetch("/api/v3/file/download/"+other[1]+"?sign="+m[2]+"%3A"+m[3]), CodeBadSignature, "another session's sign")
	// A good sign for a session the server does not know.
	bogus := "/api/v3/file/download/" + strings.Repeat("x", 16)
	u, _ := c.f.signURI(bogus, now.Add(time.Minute).Unix())
	wantJSON(t, c.fetch(u), CodeDownloadGone, "an unknown session")
	// The file deleted under a live link.
	c.f.Put("/gone", []byte("x"))
	gone := c.link("/", "gone")
	c.want(c.do("DELETE", "/api/v3/object", map[string]any{"items": []string{c.id("/", "gone", "file")}, "dirs": []string{}}), 0)
	wantJSON(t, c.fetch(gone), CodeDownloadGone, "a deleted file")
	// Expiry: the sign is checked first.
	now = now.Add(LinkTTL + time.Second)
	a := c.fetch(rel)
	wantJSON(t, a, CodeBadSignature, "an expired link")
	if a.Msg != "signature expired" {
		t.Fatalf("expired: msg %q", a.Msg)
	}
}

func TestLifetimesFromTheFaultLayer(t *testing.T) {
	c := start(t)
	now := time.Unix(1_800_000_000, 0)
	c.f.SetClock(func() time.Time { return now })
	c.f.Faults.SetConfig(faults.Config{TokenTTL: time.Minute, LinkTTL: 30 * time.Second})
	c.f.Put("/v.bin", []byte("0123456789"))
	c.login()
	rel := c.link("/", "v.bin")
	if m := linkShape.FindStringSubmatch(rel); m == nil || m[3] != fmt.Sprint(now.Unix()+30) {
		t.Fatalf("link %q: want it to expire in 30 s", rel)
	}
	now = now.Add(30 * time.Second)
	if a := c.fetch(rel); a.Status != 200 || string(a.Body) != "0123456789" {
		t.Fatalf("the link at 30 s of 30: %d %q", a.Status, a.Body)
	}
	c.want(c.do("GET", "/api/v3/user/storage", nil), 0)
	now = now.Add(time.Second)
	wantJSON(t, c.fetch(rel), CodeBadSignature, "the link at 31 s of 30")
	now = now.Add(29 * time.Second) // the cookie's minute is up
	c.want(c.do("GET", "/api/v3/user/storage", nil), CodeLoginRequired)
}

func TestRestartForgetsWhatIsInMemory(t *testing.T) {
	c := start(t)
	c.f.ChunkSize = 4
	c.f.Put("/v.bin", []byte("0123456789"))
	c.login()
	rel := c.link("/", "v.bin")
	var s struct{ SessionID string }
	json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": 8, "name": "new",
		"policy_id": c.list("/").Policy.ID}), 0).Data, &s)
	old := c.cookie

	if a := c.do("POST", "/__restart", nil); a.Status != 200 || !strings.Contains(string(a.Body), "restarted") {
		t.Fatalf("POST /__restart: %d %s", a.Status, a.Body)
	}
	c.want(c.do("GET", "/api/v3/user/storage", nil), CodeLoginRequired)
	wantJSON(t, c.fetch(rel), CodeDownloadGone, "an old link after a restart")
	c.login()
	if c.cookie == old {
		t.Fatal("the old cookie came back")
	}
	c.want(c.do("POST", "/api/v3/file/upload/"+s.SessionID+"/0", []byte("abcd")), CodeSessionGone)
	if a := c.fetch(c.link("/", "v.bin")); a.Status != 200 || string(a.Body) != "0123456789" {
		t.Fatalf("a fresh link after a restart: %d %q", a.Status, a.Body)
	}
	if c.f.Faults.Restarts() != 1 || c.f.OpenUploads() != 0 {
		t.Fatalf("%d restarts, %d open uploads", c.f.Faults.Restarts(), c.f.OpenUploads())
	}
}

func TestMadeUpFailuresHaveTheProxyShape(t *testing.T) {
	c := start(t)
	c.f.Faults.SetConfig(faults.Config{RateLimit: 1})
	if ms := time.Now().Nanosecond() / 1e6; ms > 500 { // one wall-clock second, where the limit counts
		time.Sleep(time.Duration(1010-ms) * time.Millisecond)
	}
	c.login()
	a := c.do("POST", "/api/v3/user/session", map[string]string{"userName": c.f.User, "Password": c.f.Password})
	if a.Status != 429 || a.Header.Get("Retry-After") != "1" || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("rate-limited login: %d %v %q", a.Status, a.Header, a.Body)
	}
	c.f.Faults.SetConfig(faults.Config{ErrorRate: 1})
	if a := c.do("GET", "/api/v3/user/storage", nil); a.Status < 500 || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("a random 5xx: %d %v %q", a.Status, a.Header, a.Body)
	}
	c.f.Faults.SetConfig(faults.Config{})
	c.want(c.do("GET", "/api/v3/user/storage", nil), 0)
}
