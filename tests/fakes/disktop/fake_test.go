package disktopfake

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"bridge/tests/fakes/faults"
)

type harness struct {
	t   *testing.T
	f   *Fake
	srv *httptest.Server
	mu  sync.Mutex
	now time.Time
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, f: New(), now: time.Unix(1_800_000_000, 0)}
	t.Cleanup(func() { h.f.Close() })
	h.f.SetClock(func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now })
	h.srv = httptest.NewServer(h.f.Handler())
	t.Cleanup(h.srv.Close)
	h.f.SetBaseURL(h.srv.URL)
	return h
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// do sends a request (form body for POST with form, raw otherwise) and
// decodes the JSON answer.
func (h *harness) do(method, target, token string, form url.Values, raw []byte) (int, map[string]any) {
	h.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = h.srv.URL + target
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else if raw != nil {
		body = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func data(m map[string]any) map[string]any { d, _ := m["data"].(map[string]any); return d }

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func TestBearerAndErrorBodies(t *testing.T) {
	h := newHarness(t)
	code, body := h.do("GET", "/v1/files", "", nil, nil)
	if code != 401 || body["errno"] != float64(ErrnoUnauthorized) || body["errmsg"] == "" {
		t.Fatalf("no token: %d %v", code, body)
	}
	access, _ := h.f.IssueToken()
	h.advance(2 * time.Hour)
	if code, _ := h.do("GET", "/v1/files", access, nil, nil); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
	readOnly, _ := h.f.IssueToken("user.read")
	if code, body := h.do("GET", "/v1/files", readOnly, nil, nil); code != 403 || body["errno"] != float64(ErrnoScope) {
		t.Fatalf("no files scope: %d %v", code, body)
	}
	if c := h.f.Calls(); c["list"] != 3 {
		t.Fatalf("calls %v", c)
	}
}

func TestListingPagesAndLimit(t *testing.T) {
	h := newHarness(t)
	access, _ := h.f.IssueToken()
	for i := 0; i < 450; i++ {
		h.f.Put(fmt.Sprintf("/d/f%03d", i), []byte{byte(i)})
	}
	if code, _ := h.do("GET", "/v1/files?path=/d&limit=201", access, nil, nil); code != 400 {
		t.Fatalf("limit 201: %d", code)
	}
	code, body := h.do("GET", "/v1/files?path=/d&page=3&limit=200", access, nil, nil)
	files, _ := data(body)["files"].([]any)
	if code != 200 || data(body)["total"] != float64(450) || len(files) != 50 {
		t.Fatalf("page 3: %d total %v, %d files", code, data(body)["total"], len(files))
	}
	_, body = h.do("GET", "/v1/files?path=/d", access, nil, nil)
	if files, _ := data(body)["files"].([]any); len(files) != 50 {
		t.Fatalf("default limit gave %d", len(files))
	}
	// A path that is not a folder is no error (the fake's harsh reading).
	code, body = h.do("GET", "/v1/files?path=/nope", access, nil, nil)
	if folders, _ := data(body)["folders"].([]any); code != 200 || data(body)["total"] != float64(0) || len(folders) != 0 {
		t.Fatalf("missing path: %d %v", code, body)
	}
	code, body = h.do("GET", "/v1/files?path=/d/f007", access, nil, nil)
	if files, _ := data(body)["files"].([]any); code != 200 || len(files) != 1 || files[0].(map[string]any)["name"] != "f007" {
		t.Fatalf("a file's path: %d %v", code, body)
	}
}

func TestSandboxConfinesAppDataTokens(t *testing.T) {
	h := newHarness(t)
	full, _ := h.f.IssueToken("files.read_all", "files.write_all")
	app, _ := h.f.IssueToken("files.app_data")
	mixed, _ := h.f.IssueToken("files.app_data", "files.read_all")
	if code, _ := h.do("POST", "/v1/files/folder", full, url.Values{"parent_path": {"/"}, "name": {"Outside"}}, nil); code != 200 {
		t.Fatalf("write_all mkdir at the disk root: %d", code)
	}
	_, body := h.do("GET", "/v1/files?path=/", full, nil, nil)
	var outsideID float64
	for _, f := range data(body)["folders"].([]any) {
		if f.(map[string]any)["name"] == "Outside" {
			outsideID = f.(map[string]any)["id"].(float64)
		}
	}
	_, body = h.do("GET", "/v1/files?path=/", app, nil, nil)
	if data(body)["total"] != float64(0) {
		t.Fatalf("the sandbox root shows %v", data(body))
	}
	del := url.Values{"action": {"delete"}, "folder_ids[]": {fmt.Sprint(outsideID)}}
	if code, _ := h.do("POST", "/v1/files/manage", app, del, nil); code != 404 {
		t.Fatalf("app_data token reached an id outside the sandbox: %d", code)
	}
	if code, _ := h.do("GET", "/v1/files?path=/Outside", mixed, nil, nil); code != 200 {
		t.Fatalf("read_all cannot read: %d", code)
	}
	if code, _ := h.do("POST", "/v1/files/folder", mixed, url.Values{"parent_path": {"/Outside"}, "name": {"x"}}, nil); code != 403 {
		t.Fatalf("app_data+read_all wrote outside the sandbox: %d", code)
	}
	if code, _ := h.do("GET", "/v1/files?path=/../..", app, nil, nil); code != 404 {
		t.Fatalf("escaped the sandbox with ..: %d", code)
	}
}

func TestRefreshTokensRotateAndDieOnUse(t *testing.T) {
	h := newHarness(t)
	access, refresh := h.f.IssueToken()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {h.f.ClientID},
		"client_secret": {h.f.ClientSecret}}
	code, body := h.do("POST", "/oauth/token", "", form, nil)
	if code != 200 || body["refresh_token"] == refresh || body["access_token"] == "" {
		t.Fatalf("refresh: %d %v", code, body)
	}
	if code, body := h.do("POST", "/oauth/token", "", form, nil); code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %v", code, body)
	}
	if code, _ := h.do("GET", "/v1/user/quota", access, nil, nil); code != 401 {
		t.Fatalf("the old access token still works: %d", code)
	}
	next := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {"other"}}
	if code, _ := h.do("POST", "/oauth/token", "", next, nil); code != 400 {
		t.Fatalf("refresh by another client: %d", code)
	}
	_, r2 := h.f.IssueToken()
	h.f.RevokeRefreshTokens()
	form.Set("refresh_token", r2)
	if code, body := h.do("POST", "/oauth/token", "", form, nil); code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("revoked: %d %v", code, body)
	}
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	h := newHarness(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(q url.Values) url.Values {
		resp, err := noRedirect.Get(h.srv.URL + "/oauth/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query()
	}
	verifier := "a-verifier-of-enough-length-for-the-test-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {h.f.ClientID}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "response_type": {"code"},
		"scope": {"user.read files.app_data"}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	exchange := func(code, verifier, secret string) (int, map[string]any) {
		return h.do("POST", "/oauth/token", "", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {h.f.ClientID}, "client_secret": {secret}, "redirect_uri": {"http://127.0.0.1:1/cb"},
			"code_verifier": {verifier}}, nil)
	}
	if c, body := exchange(authorize(q).Get("code"), "wrong", ""); c != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", c, body)
	}
	if c, body := exchange(authorize(q).Get("code"), verifier, ""); c != 200 || body["access_token"] == nil {
		t.Fatalf("PKCE without a secret: %d %v", c, body)
	}
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	if c, body := exchange(authorize(q).Get("code"), "", ""); c != 400 || body["error"] != "invalid_client" {
		t.Fatalf("no PKCE, no secret: %d %v", c, body)
	}
	q.Set("scope", "files.everything")
	if got := authorize(q); got.Get("error") != "invalid_scope" {
		t.Fatalf("unknown scope: %v", got)
	}
}

func TestDeviceCodeFlow(t *testing.T) {
	h := newHarness(t)
	_, dc := h.do("POST", "/oauth/device-code", "", url.Values{"client_id": {h.f.ClientID}, "scope": {"user.read files.app_data"}}, nil)
	if dc["interval"] != float64(5) || dc["expires_in"] != float64(600) || dc["user_code"] == nil || dc["qr_url"] == nil {
		t.Fatalf("device code: %v", dc)
	}
	poll := url.Values{"device_code": {dc["device_code"].(string)}, "client_id": {h.f.ClientID}}
	want := func(step, errCode string) map[string]any {
		t.Helper()
		_, body := h.do("POST", "/oauth/device-token", "", poll, nil)
		if body["error"] != nil && body["error"] != errCode || body["error"] == nil && errCode != "" {
			t.Fatalf("%s: %v, want %q", step, body, errCode)
		}
		return body
	}
	want("first poll", "authorization_pending")
	h.advance(time.Second)
	want("too soon", "slow_down")
	h.advance(10 * time.Second)
	want("at the new interval", "authorization_pending")
	h.f.ApproveDevice(dc["user_code"].(string))
	h.advance(10 * time.Second)
	if tok := want("approved", ""); tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("no tokens: %v", tok)
	}
	_, dc = h.do("POST", "/oauth/device-code", "", url.Values{"client_id": {h.f.ClientID}, "scope": {"files.app_data"}}, nil)
	poll.Set("device_code", dc["device_code"].(string))
	h.advance(11 * time.Minute)
	want("expired", "expired_token")
}

func TestSignedDownloadURLs(t *testing.T) {
	h := newHarness(t)
	access, _ := h.f.IssueToken()
	h.f.Put("/v.bin", []byte("0123456789"))
	_, body := h.do("GET", "/v1/files?path=/", access, nil, nil)
	id := data(body)["files"].([]any)[0].(map[string]any)["id"].(float64)
	_, body = h.do("GET", fmt.Sprintf("/v1/files/%v/download", id), access, nil, nil)
	link := data(body)["url"].(string)
	get := func(u string) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Range", "bytes=3-")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, b := get(link); c != 206 || b != "3456789" {
		t.Fatalf("range: %d %q", c, b)
	}
	if c, _ := get(strings.Replace(link, "sig=", "sig=x", 1)); c != 403 {
		t.Fatalf("tampered signature: %d", c)
	}
	h.advance(601 * time.Second)
	if c, _ := get(link); c != 403 {
		t.Fatalf("expired link: %d", c)
	}
	_, body = h.do("GET", fmt.Sprintf("/v1/files/%v", id), access, nil, nil)
	if data(body)["md5"] != md5hex([]byte("0123456789")) || data(body)["path"] != SandboxDir+"/v.bin" {
		t.Fatalf("meta: %v", body)
	}
	_, body = h.do("GET", "/v1/files/search?q=v.b", access, nil, nil)
	if data(body)["total"] != float64(1) {
		t.Fatalf("search: %v", body)
	}
}

func TestUploadProtocol(t *testing.T) {
	h := newHarness(t)
	h.f.ChunkSize = 4
	access, _ := h.f.IssueToken()
	content := []byte("0123456789")
	pre := func(name string, b []byte) map[string]any {
		_, body := h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {name},
			"size": {fmt.Sprint(len(b))}, "md5": {md5hex(b)}}, nil)
		return data(body)
	}
	pc := pre("a.txt", content)
	if pc["instant_upload"] != false || pc["total_parts"] != float64(3) || pc["chunk_size"] != float64(4) {
		t.Fatalf("precreate: %v", pc)
	}
	id, ep := pc["upload_id"].(string), pc["endpoint"].(string)
	part := func(uploadID string, seq int, b []byte) int {
		c, _ := h.do("POST", fmt.Sprintf("%s/u?upload_id=%s&part_seq=%d", ep, uploadID, seq), "", nil, b)
		return c
	}
	if c := part(id, 1, []byte("012")); c != 400 {
		t.Fatalf("short part: %d", c)
	}
	if c := part(id, 0, []byte("0123")); c != 400 {
		t.Fatalf("part 0: %d", c)
	}
	if c := part("nope", 1, []byte("0123")); c != 404 {
		t.Fatalf("unknown upload id: %d", c)
	}
	part(id, 1, content[:4])
	part(id, 3, content[8:])
	c, body := h.do("POST", ep+"/u/"+id+"/complete", "", url.Values{}, nil)
	if c != 425 || body["errmsg"] != "incomplete: 2/3" {
		t.Fatalf("complete with a part missing: %d %v", c, body)
	}
	_, body = h.do("GET", ep+"/u/"+id+"/parts", "", nil, nil)
	if got := fmt.Sprint(data(body)["received_parts"]); got != "[1 3]" {
		t.Fatalf("parts: %v", got)
	}
	part(id, 2, content[4:8])
	if c, body := h.do("POST", ep+"/u/"+id+"/complete", "", url.Values{}, nil); c != 200 || data(body)["md5"] != md5hex(content) {
		t.Fatalf("complete: %d %v", c, body)
	}
	if c, body := h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {"a.txt"},
		"size": {"10"}, "md5": {md5hex(content)}}, nil); c != 409 || body["errno"] != float64(ErrnoExists) {
		t.Fatalf("precreate over a taken name: %d %v", c, body)
	}
	if pc := pre("b.txt", content); pc["instant_upload"] != true || pc["file_id"] == nil {
		t.Fatalf("dedup: %v", pc)
	}
	pc = pre("c.txt", []byte("abcdefgh"))
	id = pc["upload_id"].(string)
	if c, _ := h.do("POST", ep+"/u/"+id+"/abort", "", url.Values{}, nil); c != 200 || h.f.OpenUploads() != 0 {
		t.Fatalf("abort: %d, %d open", c, h.f.OpenUploads())
	}
	if c := part(id, 1, []byte("abcd")); c != 404 {
		t.Fatalf("part after abort: %d", c)
	}
	if calls := h.f.Calls(); calls["precreate"] != 4 || calls["complete"] != 2 || calls["abort"] != 1 {
		t.Fatalf("calls %v", calls)
	}
}

func TestManageBatchesAndFaults(t *testing.T) {
	h := newHarness(t)
	access, _ := h.f.IssueToken()
	h.f.Put("/a", []byte("a"))
	h.f.Put("/b", []byte("b"))
	_, body := h.do("GET", "/v1/files?path=/", access, nil, nil)
	del := url.Values{"action": {"delete"}}
	for _, f := range data(body)["files"].([]any) {
		del.Add("file_ids[]", fmt.Sprint(f.(map[string]any)["id"]))
	}
	if c, body := h.do("POST", "/v1/files/manage", access, del, nil); c != 200 || data(body)["affected"] != float64(2) {
		t.Fatalf("batch delete: %d %v", c, body)
	}
	h.f.Fail("quota", http.StatusTooManyRequests, 1)
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/user/quota", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("injected 429: %d %v", resp.StatusCode, resp.Header)
	}
	h.f.Cut("quota", 1)
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the cut answer arrived whole")
	}
	if c, body := h.do("GET", "/v1/user/quota", access, nil, nil); c != 200 || data(body)["total_bytes"] == nil {
		t.Fatalf("quota: %d %v", c, body)
	}
}

// raw sends a request and returns the whole answer.
func (h *harness) raw(method, target, token string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, h.srv.URL+target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// refresh trades a refresh token for a new pair.
func (h *harness) refresh(rt string) (int, map[string]any) {
	h.t.Helper()
	return h.do("POST", "/oauth/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {h.f.ClientID}, "client_secret": {h.f.ClientSecret}}, nil)
}

// link asks for the signed URL of the sandbox file at p.
func (h *harness) link(access, p string) map[string]any {
	h.t.Helper()
	_, body := h.do("GET", "/v1/files?path=/", access, nil, nil)
	for _, f := range data(body)["files"].([]any) {
		if f.(map[string]any)["name"] == strings.TrimPrefix(p, "/") {
			_, body = h.do("GET", fmt.Sprintf("/v1/files/%v/download", f.(map[string]any)["id"]), access, nil, nil)
			return data(body)
		}
	}
	h.t.Fatalf("%s not listed", p)
	return nil
}

func TestLifetimesFromTheFaultLayer(t *testing.T) {
	h := newHarness(t)
	h.f.Faults.SetConfig(faults.Config{TokenTTL: 90 * time.Second, LinkTTL: 30 * time.Second, RefreshTTL: time.Hour})
	h.f.Put("/v.bin", []byte("0123456789"))
	_, rt := h.f.IssueToken()
	code, tok := h.refresh(rt)
	if code != 200 || tok["expires_in"] != float64(90) {
		t.Fatalf("refresh: %d %v, want expires_in 90", code, tok)
	}
	access := tok["access_token"].(string)
	h.advance(89 * time.Second)
	if code, _ := h.do("GET", "/v1/user/quota", access, nil, nil); code != 200 {
		t.Fatalf("at 89 s of 90: %d", code)
	}
	l := h.link(access, "/v.bin")
	if l["expires_in"] != float64(30) {
		t.Fatalf("link expires_in %v, want 30", l["expires_in"])
	}
	h.advance(2 * time.Second)
	if code, _ := h.do("GET", "/v1/user/quota", access, nil, nil); code != 401 {
		t.Fatalf("at 91 s of 90: %d", code)
	}
	h.advance(28 * time.Second) // 30 s after the link was made
	if resp, body := h.raw("GET", strings.TrimPrefix(l["url"].(string), h.srv.URL), "", nil); resp.StatusCode != 200 || body != "0123456789" {
		t.Fatalf("the link at 30 s of 30: %d %q", resp.StatusCode, body)
	}
	h.advance(2 * time.Second)
	if resp, _ := h.raw("GET", strings.TrimPrefix(l["url"].(string), h.srv.URL), "", nil); resp.StatusCode != 403 {
		t.Fatalf("the link at 32 s of 30: %d", resp.StatusCode)
	}
	// The refresh token made 2 minutes ago dies an hour after it was made.
	h.advance(time.Hour - 2*time.Minute)
	if code, body := h.refresh(tok["refresh_token"].(string)); code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("an expired refresh token: %d %v", code, body)
	}
}

func TestRestartForgetsWhatIsInMemory(t *testing.T) {
	h := newHarness(t)
	h.f.ChunkSize = 4
	h.f.Put("/v.bin", []byte("0123456789"))
	access, rt := h.f.IssueToken()
	old := h.link(access, "/v.bin")["url"].(string)
	_, body := h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {"new"},
		"size": {"8"}, "md5": {md5hex([]byte("abcdefgh"))}}, nil)
	uploadID := data(body)["upload_id"].(string)

	if resp, body := h.raw("POST", "/__restart", "", nil); resp.StatusCode != 200 {
		t.Fatalf("POST /__restart: %d %s", resp.StatusCode, body)
	}
	if code, body := h.do("GET", "/v1/user/quota", access, nil, nil); code != 401 || body["errno"] != float64(ErrnoUnauthorized) {
		t.Fatalf("the access token after a restart: %d %v", code, body)
	}
	if code, _ := h.do("GET", "/upload/u/"+uploadID+"/parts", "", nil, nil); code != 404 || h.f.OpenUploads() != 0 {
		t.Fatalf("the upload session after a restart: %d, %d open", code, h.f.OpenUploads())
	}
	resp, text := h.raw("GET", strings.TrimPrefix(old, h.srv.URL), "", nil)
	if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("an old link after a restart: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), text)
	}
	code, tok := h.refresh(rt)
	if code != 200 {
		t.Fatalf("the refresh token after a restart: %d %v", code, tok)
	}
	fresh := h.link(tok["access_token"].(string), "/v.bin")["url"].(string)
	if resp, body := h.raw("GET", strings.TrimPrefix(fresh, h.srv.URL), "", nil); resp.StatusCode != 200 || body != "0123456789" {
		t.Fatalf("a fresh link after a restart: %d %q", resp.StatusCode, body)
	}
	if h.f.Faults.Restarts() != 1 {
		t.Fatalf("%d restarts", h.f.Faults.Restarts())
	}
}

// earlyInASecond waits, if need be, for the start of a wall-clock second,
// where the rate limit counts, so a few calls land in one window.
func earlyInASecond() {
	if ms := time.Now().Nanosecond() / 1e6; ms > 500 {
		time.Sleep(time.Duration(1010-ms) * time.Millisecond)
	}
}

func TestMadeUpFailuresHaveTheProviderShape(t *testing.T) {
	h := newHarness(t)
	access, rt := h.f.IssueToken()
	h.f.Faults.SetConfig(faults.Config{RateLimit: 1})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {h.f.ClientID},
		"client_secret": {h.f.ClientSecret}}
	earlyInASecond()
	h.raw("GET", "/v1/user/quota", access, nil)
	resp, body := h.raw("POST", "/oauth/token", "", form)
	var oauth map[string]any
	json.Unmarshal([]byte(body), &oauth)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || oauth["error"] != "slow_down" || oauth["error_description"] == "" {
		t.Fatalf("rate-limited token call: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = h.raw("GET", "/v1/user/quota", access, nil)
	var api map[string]any
	json.Unmarshal([]byte(body), &api)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || api["errno"] != float64(ErrnoRateLimited) {
		t.Fatalf("rate-limited API call: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	h.f.Faults.SetConfig(faults.Config{})
	h.f.Fail("token", http.StatusServiceUnavailable, 1)
	resp, body = h.raw("POST", "/oauth/token", "", form)
	json.Unmarshal([]byte(body), &oauth)
	if resp.StatusCode != 503 || oauth["error"] != "temporarily_unavailable" {
		t.Fatalf("a 503 on the token endpoint: %d %s", resp.StatusCode, body)
	}
	h.f.Fail("list", http.StatusBadGateway, 1)
	if code, body := h.do("GET", "/v1/files", access, nil, nil); code != 502 || body["errno"] != float64(50201) {
		t.Fatalf("a 502 on the API: %d %v", code, body)
	}
	// The refresh token survived all that: the 429 and 503 were no 400.
	if code, _ := h.do("POST", "/oauth/token", "", form, nil); code != 200 {
		t.Fatalf("refresh after the failures: %d", code)
	}
}
