package gokuaifake

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

type client struct {
	t     *testing.T
	f     *Fake
	base  string
	token string
	now   func() time.Time
}

func newClient(t *testing.T) *client {
	t.Helper()
	f := New()
	t.Cleanup(func() { f.Close() })
	clock := time.Unix(1_800_000_000, 0)
	f.SetClock(func() time.Time { return clock })
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	c := &client{t: t, f: f, base: srv.URL, now: f.now}
	c.token, _ = f.IssueToken()
	return c
}

// signSkipping is the other official reading: empty values left out.
func signSkipping(secret string, p url.Values) string {
	var keys []string
	for k := range p {
		if !unsigned[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var vals []string
	for _, k := range keys {
		if v := p.Get(k); v != "" {
			vals = append(vals, v)
		}
	}
	return Sign(secret, vals)
}

// raw sends p (signed as given) and returns the status and JSON answer.
func (c *client) raw(method, p string, params url.Values) (int, map[string]any) {
	c.t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, c.base+p+"?"+params.Encode(), nil)
	} else {
		req, _ = http.NewRequest(method, c.base+p, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// call signs params (token and dateline added) and sends them.
func (c *client) call(method, p string, params url.Values) (int, map[string]any) {
	c.t.Helper()
	params.Set("token", c.token)
	params.Set("dateline", strconv.FormatInt(c.now().Unix(), 10))
	SignParams(c.f.ClientSecret, params)
	return c.raw(method, p, params)
}

func code(m map[string]any) int {
	n, _ := m["error_code"].(float64)
	return int(n)
}

func TestSignatureChecks(t *testing.T) {
	c := newClient(t)
	ls := func(mutate func(p url.Values)) (int, map[string]any) {
		p := url.Values{"token": {c.token}, "mount_id": {"1"}, "fullpath": {""},
			"dateline": {strconv.FormatInt(c.now().Unix(), 10)}}
		SignParams(c.f.ClientSecret, p)
		mutate(p)
		return c.raw(http.MethodGet, "/m-api/1/file/ls", p)
	}
	if st, m := ls(func(url.Values) {}); st != 200 {
		t.Fatalf("signed with the empty value kept: %d %v", st, m)
	}
	if st, m := ls(func(p url.Values) { p.Set("sign", signSkipping(c.f.ClientSecret, p)) }); st != 200 {
		t.Fatalf("signed with the empty value skipped: %d %v", st, m)
	}
	if st, m := ls(func(p url.Values) { p.Set("sign", Sign("wrong", []string{"x"})) }); st != 401 || code(m) != CodeBadSign {
		t.Fatalf("a bad signature: %d %v", st, m)
	}
	if st, m := ls(func(p url.Values) { p.Set("mount_id", "2") }); st != 401 || code(m) != CodeBadSign {
		t.Fatalf("a changed parameter: %d %v", st, m)
	}
	stale := func(p url.Values) {
		p.Set("dateline", strconv.FormatInt(c.now().Add(-3*time.Minute).Unix(), 10))
		SignParams(c.f.ClientSecret, p)
	}
	if st, m := ls(stale); st != 401 || code(m) != CodeStaleDateline {
		t.Fatalf("a stale dateline: %d %v", st, m)
	}
	// filehash and filesize are sent but not signed: signing them fails.
	p := url.Values{"token": {c.token}, "mount_id": {"1"}, "fullpath": {"a.txt"}, "overwrite": {"1"},
		"dateline": {strconv.FormatInt(c.now().Unix(), 10)}}
	sum := sha1.Sum([]byte("abc"))
	hash := hex.EncodeToString(sum[:])
	// In key order: dateline, filehash, filesize, fullpath, mount_id, overwrite, token.
	all := []string{p.Get("dateline"), hash, "3", "a.txt", "1", "1", c.token}
	p.Set("sign", Sign(c.f.ClientSecret, all))
	p.Set("filehash", hash)
	p.Set("filesize", "3")
	if st, m := c.raw(http.MethodPost, "/m-api/2/file/create_file", p); st != 401 || code(m) != CodeBadSign {
		t.Fatalf("filehash and filesize signed: %d %v", st, m)
	}
	p.Del("sign")
	p.Del("filehash")
	p.Del("filesize")
	SignParams(c.f.ClientSecret, p)
	p.Set("filehash", hash)
	p.Set("filesize", "3")
	if st, m := c.raw(http.MethodPost, "/m-api/2/file/create_file", p); st != 200 || m["state"].(float64) != 0 {
		t.Fatalf("create_file signed without them: %d %v", st, m)
	}
	// Missing token, wrong method, wrong version.
	if st, _ := c.call(http.MethodPost, "/m-api/1/file/ls", url.Values{"mount_id": {"1"}}); st != http.StatusMethodNotAllowed {
		t.Fatalf("POST to ls: %d", st)
	}
	if st, _ := c.call(http.MethodGet, "/m-api/2/file/ls", url.Values{"mount_id": {"1"}}); st != 404 {
		t.Fatalf("ls under /2/: %d", st)
	}
}

func TestTokens(t *testing.T) {
	c := newClient(t)
	tok := func(p url.Values) (int, map[string]any) {
		p.Set("client_id", c.f.ClientID)
		p.Set("dateline", strconv.FormatInt(c.now().Unix(), 10))
		SignParams(c.f.ClientSecret, p)
		return c.raw(http.MethodPost, "/m-api/oauth2/token2", p)
	}
	st, m := tok(url.Values{"grant_type": {"password"}, "username": {c.f.Username}, "password": {c.f.Password}})
	if st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("a plain password (not its md5): %d %v", st, m)
	}
	st, m = tok(url.Values{"grant_type": {"password"}, "username": {c.f.Username}, "password": {md5hex(c.f.Password)}})
	if st != 200 || m["access_token"] == nil || m["expires_in"].(float64) != 3600 {
		t.Fatalf("password login: %d %v", st, m)
	}
	refresh := m["refresh_token"].(string)
	c.token = m["access_token"].(string)
	st, m = tok(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, m)
	}
	if st, m := c.call(http.MethodGet, "/m-api/1/account/mount", url.Values{}); st != 401 || code(m) != CodeBadToken {
		t.Fatalf("the access token of a spent refresh token: %d %v", st, m)
	}
	if st, m := tok(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("a refresh token used twice: %d %v", st, m)
	}
	c.token = m["access_token"].(string)
	if st, m := c.call(http.MethodGet, "/m-api/1/account/mount", url.Values{}); st != 200 || len(m["list"].([]any)) != 2 {
		t.Fatalf("mount: %d %v", st, m)
	}
	c.f.ExpireAccessTokens()
	if st, m := c.call(http.MethodGet, "/m-api/1/account/mount", url.Values{}); st != 401 || code(m) != CodeTokenExpired {
		t.Fatalf("an expired token: %d %v", st, m)
	}
	p := url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}, "client_id": {c.f.ClientID},
		"dateline": {strconv.FormatInt(c.now().Unix(), 10)}}
	p.Set("sign", Sign("wrong", nil))
	if st, m := c.raw(http.MethodPost, "/m-api/oauth2/token2", p); st != 401 || m["error"] != "invalid_sign" {
		t.Fatalf("a bad signature at the token endpoint: %d %v", st, m)
	}
}

// upload runs create_file and the chunked protocol by hand.
func (c *client) upload(t *testing.T, fullpath string, data []byte, overwrite string) map[string]any {
	t.Helper()
	sum := sha1.Sum(data)
	p := url.Values{"mount_id": {"1"}, "fullpath": {fullpath}, "overwrite": {overwrite}}
	p.Set("token", c.token)
	p.Set("dateline", strconv.FormatInt(c.now().Unix(), 10))
	SignParams(c.f.ClientSecret, p)
	p.Set("filehash", hex.EncodeToString(sum[:]))
	p.Set("filesize", strconv.Itoa(len(data)))
	st, m := c.raw(http.MethodPost, "/m-api/2/file/create_file", p)
	if st != 200 {
		t.Fatalf("create_file: %d %v", st, m)
	}
	if m["state"].(float64) == 1 {
		return m
	}
	server := "http://" + strings.Split(m["server"].(string), ",")[0]
	hdr := http.Header{"X-Gk-Token": {c.token}, "X-Gk-Upload-Pathhash": {m["hash"].(string)},
		"X-Gk-Upload-Filename": {url.QueryEscape(fullpath[strings.LastIndex(fullpath, "/")+1:])},
		"X-Gk-Upload-Filehash": {hex.EncodeToString(sum[:])}, "X-Gk-Upload-Filesize": {strconv.Itoa(len(data))},
		"X-Gk-Upload-Mountid": {"1"}}
	st, m = c.up(server+"/upload_init", http.MethodPost, hdr, nil)
	if st != 200 {
		t.Fatalf("upload_init: %d %v", st, m)
	}
	sess := http.Header{"X-Gk-Token": {c.token}, "X-Gk-Upload-Session": {m["session"].(string)}}
	st, m = c.part(server, sess, data, 0, len(data))
	if st != 202 {
		t.Fatalf("upload_part of everything: %d %v", st, m)
	}
	for i := 0; i <= c.f.FinishPolls; i++ {
		st, m = c.up(server+"/upload_finish", http.MethodPost, sess, nil)
		if want := map[bool]int{true: 202, false: 200}[i < c.f.FinishPolls]; st != want {
			t.Fatalf("upload_finish %d: %d %v, want %d", i, st, m, want)
		}
	}
	return m
}

func (c *client) up(u, method string, hdr http.Header, body []byte) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		out = map[string]any{"text": string(b)}
	}
	return resp.StatusCode, out
}

func (c *client) part(server string, sess http.Header, data []byte, from, to int) (int, map[string]any) {
	h := sess.Clone()
	h.Set("x-gk-upload-range", fmt.Sprintf("%d-%d", from, to-1))
	h.Set("x-gk-upload-crc", strconv.FormatUint(uint64(crc32.ChecksumIEEE(data[from:to])), 10))
	return c.up(server+"/upload_part", http.MethodPut, h, data[from:to])
}

func TestUploadProtocol(t *testing.T) {
	c := newClient(t)
	c.f.FinishPolls = 2
	data := bytes.Repeat([]byte("0123456789"), 1000)
	m := c.upload(t, "a.txt", data, "1")
	if m["fullpath"] != "a.txt" {
		t.Fatalf("finish: %v", m)
	}
	if b, _ := c.f.LibraryFile(1, "a.txt"); !bytes.Equal(b, data) {
		t.Fatal("content differs")
	}
	// The same content again: state 1, no byte.
	before := c.f.UploadBytes()
	if m := c.upload(t, "b.txt", data, "0"); m["state"].(float64) != 1 {
		t.Fatalf("a known sha1: %v", m)
	}
	if c.f.UploadBytes() != before {
		t.Fatal("a dedup hit took bytes")
	}
	// overwrite=0 over a taken name keeps both: a twin, recorded.
	c.upload(t, "a.txt", []byte("other"), "0")
	if tw := c.f.Twins(); len(tw) != 1 || tw[0] != PersonalName+"/a(2).txt" {
		t.Fatalf("twins: %q", tw)
	}

	// Out of order, wrong CRC, too big, then resume by upload_req.
	data = bytes.Repeat([]byte("x"), 3000)
	sum := sha1.Sum(data)
	p := url.Values{"mount_id": {"1"}, "fullpath": {"c.bin"}, "overwrite": {"1"}}
	p.Set("token", c.token)
	p.Set("dateline", strconv.FormatInt(c.now().Unix(), 10))
	SignParams(c.f.ClientSecret, p)
	p.Set("filehash", hex.EncodeToString(sum[:]))
	p.Set("filesize", "3000")
	_, m = c.raw(http.MethodPost, "/m-api/2/file/create_file", p)
	server := "http://" + strings.Split(m["server"].(string), ",")[1]
	hdr := http.Header{"X-Gk-Token": {c.token}, "X-Gk-Upload-Pathhash": {m["hash"].(string)},
		"X-Gk-Upload-Filename": {"c.bin"}, "X-Gk-Upload-Filehash": {hex.EncodeToString(sum[:])},
		"X-Gk-Upload-Filesize": {"3000"}, "X-Gk-Upload-Mountid": {"1"}}
	if st, m := c.up(server+"/upload_init", http.MethodPost, http.Header{"X-Gk-Token": {c.token}}, nil); st != 400 {
		t.Fatalf("upload_init without headers: %d %v", st, m)
	}
	_, m = c.up(server+"/upload_init", http.MethodPost, hdr, nil)
	sess := http.Header{"X-Gk-Token": {c.token}, "X-Gk-Upload-Session": {m["session"].(string)}}
	if st, m := c.part(server, sess, data, 1000, 2000); st != 409 || m["expect"] != "0" {
		t.Fatalf("a part out of order: %d %v", st, m)
	}
	h := sess.Clone()
	h.Set("x-gk-upload-range", "0-999")
	h.Set("x-gk-upload-crc", "12345")
	if st, m := c.up(server+"/upload_part", http.MethodPut, h, data[:1000]); st != 400 || code(m) != CodeBadCRC {
		t.Fatalf("a wrong crc: %d %v", st, m)
	}
	if st, _ := c.part(server, sess, data, 0, 1000); st != 200 {
		t.Fatalf("first part: %d", st)
	}
	// upload_req answers a plain integer (read as JSON it is a number).
	if st, m := c.up(server+"/upload_req", http.MethodGet, sess, nil); st != 200 || m["text"] != "1000" {
		t.Fatalf("upload_req: %d %v", st, m)
	}
	if st, m := c.up(server+"/upload_finish", http.MethodPost, sess, nil); st != 409 || m["expect"] != "1000" {
		t.Fatalf("finish of an incomplete upload: %d %v", st, m)
	}
	// A restart forgets the session.
	c.f.Faults.Restart()
	if st, m := c.part(server, sess, data, 1000, 3000); st != 401 {
		t.Fatalf("after a restart the access token is forgotten: %d %v", st, m)
	}
	c.token, _ = c.f.IssueToken()
	sess.Set("x-gk-token", c.token)
	if st, m := c.part(server, sess, data, 1000, 3000); st != 404 || code(m) != CodeNoSession {
		t.Fatalf("after a restart the session is forgotten: %d %v", st, m)
	}
	c.f.MaxPartSize = 1000
	hdr.Set("x-gk-token", c.token)
	_, m = c.up(server+"/upload_init", http.MethodPost, hdr, nil)
	sess.Set("x-gk-upload-session", m["session"].(string))
	if st, m := c.part(server, sess, data, 0, 2000); st != 400 {
		t.Fatalf("a part over MaxPartSize: %d %v", st, m)
	}
	if st, m := c.up(server+"/upload_abort", http.MethodPost, sess, nil); st != 200 || c.f.OpenUploads() != 0 {
		t.Fatalf("abort: %d %v", st, m)
	}
}

func TestLinksAndListing(t *testing.T) {
	c := newClient(t)
	c.f.PageMax = 2
	for i := range 5 {
		c.f.Put(1, fmt.Sprintf("dir/f%d.txt", i), []byte(fmt.Sprintf("content %d", i)))
	}
	st, m := c.call(http.MethodGet, "/m-api/1/file/ls", url.Values{"mount_id": {"1"}, "fullpath": {"dir"}, "size": {"100"}, "start": {"4"}, "order": {"filename"}})
	if st != 200 || m["count"].(float64) != 5 || len(m["list"].([]any)) != 1 {
		t.Fatalf("the last page: %d %v", st, m)
	}
	// A path that is not a folder is no error (the harshest reading):
	// nothing lists empty, a file's path lists that file alone.
	ls := func(full string) (int, map[string]any) {
		return c.call(http.MethodGet, "/m-api/1/file/ls", url.Values{"mount_id": {"1"}, "fullpath": {full}})
	}
	for _, full := range []string{"missing", "dir/missing", "dir/f3.txt/below"} {
		st, m := ls(full)
		if list, ok := m["list"].([]any); st != 200 || m["count"] != float64(0) || !ok || len(list) != 0 {
			t.Fatalf("ls of %s (nothing): %d %v, want count 0 and an empty list", full, st, m)
		}
	}
	st, m = ls("dir/f3.txt")
	if list, _ := m["list"].([]any); st != 200 || m["count"] != float64(1) || len(list) != 1 ||
		list[0].(map[string]any)["filename"] != "f3.txt" || list[0].(map[string]any)["dir"] != float64(0) {
		t.Fatalf("ls of a file: %d %v, want the file alone", st, m)
	}
	for _, full := range []string{"..", "dir/..", "../dir", "dir//f3.txt"} {
		if st, m := ls(full); st != 404 || code(m) != CodeNotFound {
			t.Fatalf("ls of %q (no way out of the library): %d %v", full, st, m)
		}
	}
	st, m = c.call(http.MethodGet, "/m-api/2/file/open", url.Values{"mount_id": {"1"}, "fullpath": {"dir/f3.txt"}})
	if st != 200 || m["filesize"] != "9" {
		t.Fatalf("open: %d %v", st, m)
	}
	link := m["uris"].([]any)[0].(string)
	req, _ := http.NewRequest(http.MethodGet, link, nil)
	req.Header.Set("Range", "bytes=2-4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(b) != "nte" {
		t.Fatalf("a range: %d %q", resp.StatusCode, b)
	}
	c.f.Faults.Restart()
	resp, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a link from before a restart: %d", resp.StatusCode)
	}
}

func TestCopyMoveAcrossLibraries(t *testing.T) {
	c := newClient(t)
	c.f.Put(1, "d/a.txt", []byte("a"))
	if st, m := c.call(http.MethodPost, "/m-api/1/file/move", url.Values{"mount_id": {"1"}, "fullpath": {"d"}, "target_mount_id": {"2"}, "target_fullpath": {""}}); st != 400 {
		t.Fatalf("move across libraries: %d %v", st, m)
	}
	if st, m := c.call(http.MethodPost, "/m-api/1/file/copy", url.Values{"mount_id": {"1"}, "fullpath": {"d"}, "target_mount_id": {"2"}, "target_fullpath": {""}, "delete_from": {"1"}}); st != 200 {
		t.Fatalf("copy with delete_from: %d %v", st, m)
	}
	if c.f.Exists(1, "d") || !c.f.Exists(2, "d/a.txt") {
		t.Fatal("copy with delete_from did not move")
	}
	if st, m := c.call(http.MethodPost, "/m-api/1/file/copy", url.Values{"mount_id": {"2"}, "fullpath": {"d"}, "target_fullpath": {""}}); st != 409 || code(m) != CodeExists {
		t.Fatalf("a copy onto a taken name: %d %v", st, m)
	}
	if st, m := c.call(http.MethodPost, "/m-api/1/file/copy", url.Values{"mount_id": {"2"}, "fullpath": {"d"}}); st != 400 {
		t.Fatalf("a copy without target_fullpath: %d %v", st, m)
	}
	if st, m := c.call(http.MethodPost, "/m-api/1/file/rename", url.Values{"mount_id": {"2"}, "fullpath": {"d/a.txt"}, "newname": {"b?.txt"}}); st != 400 || code(m) != CodeBadName {
		t.Fatalf("a bad name: %d %v", st, m)
	}
	if st, m := c.call(http.MethodGet, "/m-api/2/file/search", url.Values{"mount_id": {"0"}, "keyword": {"A.TX"}}); st != 200 || m["count"].(float64) != 1 {
		t.Fatalf("search: %d %v", st, m)
	}
}

func TestWebUpload(t *testing.T) {
	c := newClient(t)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range map[string]string{"token": c.token, "mount_id": "2", "path": "", "name": "web.txt", "overwrite": "1", "filefield": "file"} {
		w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("file", "web.txt")
	fw.Write([]byte("from the web"))
	w.Close()
	st, m := c.up(c.base+"/up/2/web_upload", http.MethodPost,
		http.Header{"Content-Type": {w.FormDataContentType()}}, body.Bytes())
	if st != 200 || m["fullpath"] != "web.txt" {
		t.Fatalf("web_upload: %d %v", st, m)
	}
	if b, _ := c.f.LibraryFile(2, "web.txt"); string(b) != "from the web" {
		t.Fatalf("content %q", b)
	}
}
