package teraboxfake

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

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
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env serves a fake on three hosts.
type env struct {
	f                *Fake
	www, api, upload *httptest.Server
	clock            *clock
	access, refresh  string
}

func newEnv(t *testing.T) *env {
	f := New()
	t.Cleanup(func() { f.Close() })
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	f.SetClock(c.Now)
	h := f.Handler()
	e := &env{f: f, clock: c, www: httptest.NewServer(h), api: httptest.NewServer(h), upload: httptest.NewServer(h)}
	t.Cleanup(func() { e.www.Close(); e.api.Close(); e.upload.Close() })
	f.SetBaseURL(e.www.URL)
	f.SetDomains(strings.TrimPrefix(e.api.URL, "http://"), strings.TrimPrefix(e.upload.URL, "http://"))
	e.access, e.refresh = f.IssueToken()
	return e
}

type answer map[string]any

func (a answer) errno() int {
	for _, k := range []string{"errno", "error_code"} {
		if v, ok := a[k].(float64); ok {
			return int(v)
		}
	}
	return 0
}

func do(t *testing.T, req *http.Request) (int, answer) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a answer
	json.Unmarshal(b, &a)
	return resp.StatusCode, a
}

func (e *env) post(t *testing.T, base, p string, q, form url.Values) (int, answer) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+p+"?"+q.Encode(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func (e *env) get(t *testing.T, base, p string, q url.Values) (int, answer) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+p+"?"+q.Encode(), nil)
	return do(t, req)
}

func (e *env) signed(extra url.Values) url.Values {
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	f := url.Values{"client_id": {e.f.ClientID}, "client_secret": {e.f.ClientSecret}, "timestamp": {ts}, "sign": {e.f.Sign(ts)}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func (e *env) tok() url.Values { return url.Values{"access_tokens": {e.access}} }

func TestSign(t *testing.T) {
	e := newEnv(t)
	sum := md5.Sum([]byte(e.f.ClientID + "_123_" + e.f.ClientSecret + "_" + e.f.PrivateSecret))
	if e.f.Sign("123") != hex.EncodeToString(sum[:]) {
		t.Fatal("the sign is not md5hex(client_id_timestamp_client_secret_private_secret)")
	}
	bad := e.signed(url.Values{"refresh_token": {e.refresh}})
	bad.Set("sign", strings.ToUpper(bad.Get("sign")))
	if _, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, bad); a.errno() != ErrnoClient {
		t.Fatalf("an uppercase sign: %v", a)
	}
	stale := e.signed(url.Values{"refresh_token": {e.refresh}})
	e.clock.Advance(301 * time.Second)
	if _, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, stale); a.errno() != ErrnoClient {
		t.Fatalf("a timestamp 301 s old: %v", a)
	}
	missing := e.signed(url.Values{"refresh_token": {e.refresh}})
	missing.Del("sign")
	if _, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, missing); a.errno() != ErrnoParams {
		t.Fatalf("no sign: %v", a)
	}
	if _, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, e.signed(url.Values{"refresh_token": {e.refresh}})); a.errno() != 0 {
		t.Fatalf("a good sign: %v", a)
	}
}

func TestRefreshIsSingleUseAndOldTokenDiesIn15s(t *testing.T) {
	e := newEnv(t)
	e.clock.Advance(24 * time.Hour)
	_, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, e.signed(url.Values{"refresh_token": {e.refresh}}))
	data, _ := a["data"].(map[string]any)
	if a.errno() != 0 || data["refresh_token"] == nil {
		t.Fatalf("refresh: %v", a)
	}
	refresh2 := data["refresh_token"].(string)
	if _, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, e.signed(url.Values{"refresh_token": {e.refresh}})); a.errno() != ErrnoRefreshInvalid {
		t.Fatalf("a used refresh token: %v", a)
	}
	e.clock.Advance(14 * time.Second)
	if _, a := e.get(t, e.api.URL, "/openapi/api/quota", e.tok()); a.errno() != 0 {
		t.Fatalf("the old access token 14 s after: %v", a)
	}
	e.clock.Advance(2 * time.Second)
	if _, a := e.get(t, e.api.URL, "/openapi/api/quota", e.tok()); a.errno() != ErrnoExpired {
		t.Fatalf("the old access token 16 s after: %v", a)
	}
	// The new refresh token keeps the old expiry: 30 days from the login.
	e.clock.Advance(29 * 24 * time.Hour)
	if _, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, e.signed(url.Values{"refresh_token": {refresh2}})); a.errno() != ErrnoRefreshExpired {
		t.Fatalf("a refresh token past the first one's 30 days: %v", a)
	}
}

func TestTokensHostsAndParameters(t *testing.T) {
	e := newEnv(t)
	if code, _ := e.get(t, e.www.URL, "/openapi/api/quota", e.tok()); code != http.StatusNotFound {
		t.Fatalf("the openapi on the www host: %d", code)
	}
	if code, _ := e.post(t, e.api.URL, "/oauth/tokeninfo", nil, url.Values{"access_token": {e.access}}); code != http.StatusNotFound {
		t.Fatalf("OAuth on the api host: %d", code)
	}
	_, a := e.post(t, e.www.URL, "/oauth/tokeninfo", nil, url.Values{"access_token": {e.access}})
	data, _ := a["data"].(map[string]any)
	if data["api_domain"] == data["upload_domain"] || data["api_domain"] != strings.TrimPrefix(e.api.URL, "http://") {
		t.Fatalf("tokeninfo: %v", a)
	}
	if _, a := e.get(t, e.api.URL, "/openapi/api/quota", url.Values{"access_token": {e.access}}); a.errno() != ErrnoAuth {
		t.Fatalf("access_token (singular): %v", a)
	}
	if _, a := e.get(t, e.api.URL, "/openapi/api/list", url.Values{"access_tokens": {e.access}, "dir": {e.f.AppDir()}}); a.errno() != ErrnoParams {
		t.Fatalf("list without page and num: %v", a)
	}
	q := e.tok()
	q.Set("dir", "/From: Other Device")
	q.Set("page", "1")
	q.Set("num", "10")
	if _, a := e.get(t, e.api.URL, "/openapi/api/list", q); a.errno() != ErrnoBadName {
		t.Fatalf("list outside the app folder: %v", a)
	}
}

// block posts one superfile2 block.
func (e *env) block(t *testing.T, p, id string, seq int, data []byte) (int, answer) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("file", "blob")
	fw.Write(data)
	w.Close()
	q := e.tok()
	for k, v := range map[string]string{"method": "upload", "app_id": AppID, "path": p, "uploadid": id, "partseq": strconv.Itoa(seq)} {
		q.Set(k, v)
	}
	req, _ := http.NewRequest("POST", e.upload.URL+"/rest/2.0/pcs/superfile2?"+q.Encode(), &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return do(t, req)
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestUploadRules(t *testing.T) {
	e := newEnv(t)
	p := e.f.AppDir() + "/f.bin"
	data := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16+3)
	blocks := []string{md5hex(data[:BlockSize]), md5hex(data[BlockSize:])}
	bl, _ := json.Marshal(blocks)
	_, a := e.post(t, e.api.URL, "/openapi/api/precreate", e.tok(), url.Values{"path": {p}, "autoinit": {"1"}, "block_list": {string(bl)}})
	id, _ := a["uploadid"].(string)
	if a.errno() != 0 || id == "" || a["return_type"].(float64) != 1 {
		t.Fatalf("precreate: %v", a)
	}
	if code, a := e.block(t, p, id, 0, data[:BlockSize-1]); code != http.StatusBadRequest || a.errno() != ErrnoBlockSize {
		t.Fatalf("a short non-last block: %d %v", code, a)
	}
	// create before the blocks are in
	create := url.Values{"path": {p}, "size": {strconv.Itoa(len(data))}, "uploadid": {id}, "block_list": {string(bl)}, "rtype": {"3"}}
	if _, a := e.post(t, e.api.URL, "/openapi/api/create", e.tok(), create); a.errno() != ErrnoBlockMissing {
		t.Fatalf("create with blocks missing: %v", a)
	}
	if _, a := e.block(t, p, id, 0, data[:BlockSize]); a["md5"] != blocks[0] {
		t.Fatalf("block 0: %v", a)
	}
	if _, a := e.block(t, p, id, 1, data[BlockSize:]); a["md5"] != blocks[1] {
		t.Fatalf("block 1: %v", a)
	}
	_, a = e.post(t, e.api.URL, "/openapi/api/create", e.tok(), create)
	if a.errno() != 0 || a["path"] != p || a["md5"] == md5hex(data) || len(a["md5"].(string)) != 32 {
		t.Fatalf("create: %v (the md5 must look like one and not be the content's)", a)
	}
	if got, _ := e.f.File("/f.bin"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// Dedup: precreate alone makes the file; beside a taken name, with a
	// time suffix.
	_, a = e.post(t, e.api.URL, "/openapi/api/precreate", e.tok(), url.Values{"path": {p}, "autoinit": {"1"}, "block_list": {string(bl)}})
	info, _ := a["info"].(map[string]any)
	if a["return_type"].(float64) != 2 || info["path"] != e.f.AppDir()+"/f_20270115_080000.bin" {
		t.Fatalf("dedup over a taken name: %v", a)
	}
	// One block: block_list [] ("equivalent to [0]").
	one, _ := json.Marshal([]string{md5hex([]byte("small"))})
	_, a = e.post(t, e.api.URL, "/openapi/api/precreate", e.tok(), url.Values{"path": {p}, "autoinit": {"1"}, "block_list": {string(one)}})
	if list, _ := a["block_list"].([]any); len(list) != 0 || a["return_type"].(float64) != 1 {
		t.Fatalf("one block: %v", a)
	}
	// A restart forgets upload sessions.
	id = a["uploadid"].(string)
	e.f.Faults.Restart()
	if code, a := e.block(t, p, id, 0, []byte("small")); code != http.StatusBadRequest || a.errno() != ErrnoNoUpload {
		t.Fatalf("a block after a restart: %d %v", code, a)
	}
	if e.f.BytesReceived() != int64(len(data))+BlockSize-1 { // the refused blocks' bytes count too; a forgotten session's are not read
		t.Fatalf("%d bytes received", e.f.BytesReceived())
	}
}

func TestCreateRtypes(t *testing.T) {
	e := newEnv(t)
	e.f.Put("/x.txt", []byte("old"))
	app := e.f.AppDir()
	up := func(content string, rtype string) answer {
		bl, _ := json.Marshal([]string{md5hex([]byte(content))})
		_, a := e.post(t, e.api.URL, "/openapi/api/precreate", e.tok(), url.Values{"path": {app + "/x.txt"}, "autoinit": {"1"}, "block_list": {string(bl)}})
		if a["return_type"].(float64) == 2 {
			return a
		}
		id := a["uploadid"].(string)
		e.block(t, app+"/x.txt", id, 0, []byte(content))
		f := url.Values{"path": {app + "/x.txt"}, "size": {strconv.Itoa(len(content))}, "uploadid": {id}, "block_list": {string(bl)}}
		if rtype != "" {
			f.Set("rtype", rtype)
		}
		_, a = e.post(t, e.api.URL, "/openapi/api/create", e.tok(), f)
		return a
	}
	if a := up("zero", "0"); a.errno() != ErrnoExists {
		t.Fatalf("rtype 0 over a file: %v", a)
	}
	if a := up("one", ""); a["path"] == app+"/x.txt" {
		t.Fatalf("the default rtype (1) overwrote: %v", a)
	}
	if a := up("three", "3"); a.errno() != 0 || a["path"] != app+"/x.txt" {
		t.Fatalf("rtype 3: %v", a)
	}
	if got, _ := e.f.File("/x.txt"); string(got) != "three" {
		t.Fatalf("after rtype 3: %q", got)
	}
	e.f.Mkdir("/d")
	if _, a := e.post(t, e.api.URL, "/openapi/api/create", e.tok(), url.Values{"path": {app + "/d"}, "isdir": {"1"}, "rtype": {"0"}}); a.errno() != ErrnoExists {
		t.Fatalf("mkdir over a folder: %v", a)
	}
}

func TestFilemanagerPerItemErrno(t *testing.T) {
	e := newEnv(t)
	e.f.Put("/a.txt", []byte("a"))
	e.f.Put("/b.txt", []byte("b"))
	app := e.f.AppDir()
	run := func(opera string, list any) answer {
		b, _ := json.Marshal(list)
		q := e.tok()
		q.Set("opera", opera)
		_, a := e.post(t, e.api.URL, "/openapi/api/filemanager", q, url.Values{"filelist": {string(b)}})
		return a
	}
	item := func(a answer) int {
		info, _ := a["info"].([]any)
		if len(info) != 1 {
			t.Fatalf("info %v", a)
		}
		return int(info[0].(map[string]any)["errno"].(float64))
	}
	for _, c := range []struct {
		opera string
		list  any
		want  int
	}{
		{"rename", []any{map[string]string{"path": app + "/a.txt", "newname": "b.txt"}}, ErrnoExists},
		{"rename", []any{map[string]string{"path": app + "/a.txt", "newname": "a:b"}}, ErrnoBadName},
		{"move", []any{map[string]string{"path": app + "/nope", "dest": app, "newname": "x"}}, ErrnoNotFound},
		{"delete", []string{app + "/nope"}, ErrnoNotFound},
		{"copy", []any{map[string]string{"path": app + "/a.txt", "dest": app, "newname": "c.txt"}}, 0},
	} {
		a := run(c.opera, c.list)
		if a.errno() != 0 || item(a) != c.want {
			t.Errorf("%s %v: top errno %d, item errno %d, want 0 and %d", c.opera, c.list, a.errno(), item(a), c.want)
		}
	}
}

func TestDlinks(t *testing.T) {
	e := newEnv(t)
	e.f.Put("/v.bin", []byte("0123456789"))
	q := e.tok()
	q.Set("dir", e.f.AppDir())
	q.Set("page", "1")
	q.Set("num", "1000")
	_, a := e.get(t, e.api.URL, "/openapi/api/list", q)
	list, _ := a["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("list: %v", a)
	}
	fsid := fmt.Sprint(int64(list[0].(map[string]any)["fs_id"].(float64)))
	q = e.tok()
	q.Set("fidlist", "["+fsid+",1]")
	q.Set("type", "dlink")
	_, a = e.get(t, e.api.URL, "/openapi/api/download", q)
	links, _ := a["dlink"].([]any)
	if len(links) != 1 {
		t.Fatalf("download (an unknown id is left out): %v", a)
	}
	dlink := links[0].(map[string]any)["dlink"].(string)
	get := func(u string) int {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Range", "bytes=1-2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(dlink); code != http.StatusForbidden {
		t.Fatalf("a dlink without the token: %d", code)
	}
	withToken := dlink + "&access_tokens=" + url.QueryEscape(e.access)
	if code := get(withToken); code != http.StatusPartialContent {
		t.Fatalf("a dlink with the token: %d", code)
	}
	e.f.Faults.Restart()
	if code := get(withToken); code != http.StatusForbidden {
		t.Fatalf("a dlink after a restart: %d", code)
	}
}

func TestDeviceCodeAndClose(t *testing.T) {
	e := newEnv(t)
	_, a := e.get(t, e.www.URL, "/oauth/devicecode", url.Values{"client_id": {e.f.ClientID}})
	data, _ := a["data"].(map[string]any)
	code, _ := data["device_code"].(string)
	if !strings.HasPrefix(fmt.Sprint(data["qrcode_url"]), "data:image/png;base64,iVBORw0KGgo") || code == "" {
		t.Fatalf("devicecode: %v", a)
	}
	poll := func() int {
		_, a := e.post(t, e.www.URL, "/oauth/gettoken", nil, e.signed(url.Values{"grant_type": {"device_code"}, "code": {code}}))
		return a.errno()
	}
	if n := poll(); n != ErrnoPending {
		t.Fatalf("first poll: %d", n)
	}
	if n := poll(); n != ErrnoTooFrequent {
		t.Fatalf("an immediate second poll: %d", n)
	}
	e.clock.Advance(5 * time.Second)
	e.f.ApproveDevice(e.f.PendingDevices()[0].QRText)
	if n := poll(); n != 0 {
		t.Fatalf("approved: %d", n)
	}
	dir := e.f.dir
	e.f.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", dir, err)
	}
}
