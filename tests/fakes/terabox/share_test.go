package teraboxfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shareEnv is a fake with a friend who shares /shared (a.txt, sub/ with
// n files) with the code "k3y9".
type shareEnv struct {
	*env
	friend *Account
	link   string
	surl   string
}

func newShareEnv(t *testing.T, n int) *shareEnv {
	e := newEnv(t)
	friend := e.f.NewAccount()
	friend.Put("/shared/a.txt", []byte("content of a"))
	for i := range n {
		friend.Put(fmt.Sprintf("/shared/sub/f%03d.txt", i), []byte(strconv.Itoa(i)))
	}
	link := friend.Share("/shared", "k3y9")
	return &shareEnv{env: e, friend: friend, link: link, surl: Surl(link)}
}

// verify verifies the link with pwd and returns the sekey (from the
// cookie, unescaped) and the answer.
func (e *shareEnv) verify(t *testing.T, pwd string) (string, answer) {
	t.Helper()
	form := url.Values{"pwd": {pwd}}
	req, _ := http.NewRequest("POST", e.api.URL+"/openapi/share/verify?"+
		url.Values{"access_tokens": {e.access}, "surl": {e.surl}}.Encode(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &a)
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			key, _ := url.QueryUnescape(c.Value)
			if a["randsk"] != c.Value {
				t.Fatalf("randsk %v is not the cookie's value %q", a["randsk"], c.Value)
			}
			return key, a
		}
	}
	return "", a
}

func (e *shareEnv) list(t *testing.T, q url.Values) answer {
	t.Helper()
	q.Set("access_tokens", e.access)
	_, a := e.get(t, e.api.URL, "/openapi/share/list", q)
	return a
}

func listedNames(a answer) []string {
	var out []string
	list, _ := a["list"].([]any)
	for _, it := range list {
		out = append(out, it.(map[string]any)["server_filename"].(string))
	}
	return out
}

func TestShareVerify(t *testing.T) {
	e := newShareEnv(t, 0)
	for _, pwd := range []string{"zzzz", "K3Y9", "k3y", ""} {
		if key, a := e.verify(t, pwd); key != "" || a.errno() != ErrnoShareCode {
			t.Errorf("code %q: errno %d, cookie %v", pwd, a.errno(), key != "")
		}
	}
	for _, surl := range []string{"", "1" + e.surl, "nosuchlink"} {
		_, a := e.post(t, e.api.URL, "/openapi/share/verify", url.Values{"access_tokens": {e.access}, "surl": {surl}}, url.Values{"pwd": {"k3y9"}})
		if want := map[bool]int{true: ErrnoParams, false: ErrnoShareLink}[surl == ""]; a.errno() != want {
			t.Errorf("surl %q: errno %d, want %d", surl, a.errno(), want)
		}
	}
	key, a := e.verify(t, "k3y9")
	if key == "" || a.errno() != 0 {
		t.Fatalf("the right code: %v", a)
	}
	found := false
	for _, s := range e.f.Secrets() {
		found = found || s == key
	}
	if !found {
		t.Fatal("the sekey is not among the fake's secrets")
	}
	// A share without a code verifies with an empty pwd, and only so.
	open := e.friend.Share("/shared/a.txt", "")
	_, a = e.post(t, e.api.URL, "/openapi/share/verify", url.Values{"access_tokens": {e.access}, "surl": {Surl(open)}}, url.Values{"pwd": {""}})
	if a.errno() != 0 {
		t.Fatalf("a share without a code: %v", a)
	}
}

func TestShortURLInfo(t *testing.T) {
	e := newShareEnv(t, 0)
	key, _ := e.verify(t, "k3y9")
	info := func(short, spd string) answer {
		_, a := e.get(t, e.api.URL, "/openapi/api/shorturlinfo", url.Values{"access_tokens": {e.access}, "shorturl": {short}, "root": {"1"}, "spd": {spd}})
		return a
	}
	if a := info(e.surl, key); a.errno() != ErrnoShareLink {
		t.Fatalf("shorturl without the leading 1: %v", a)
	}
	if a := info("1"+e.surl, ""); a.errno() != ErrnoShareKey {
		t.Fatalf("no spd: %v", a)
	}
	a := info("1"+e.surl, key)
	if a.errno() != 0 || a["uk"] != float64(e.friend.UK) || a["shareid"] != float64(e.f.ShareID(e.link)) {
		t.Fatalf("shorturlinfo: %v", a)
	}
	item := a["list"].([]any)[0].(map[string]any)
	if item["server_filename"] != "shared" || item["isdir"] != "1" || item["path"] != e.friend.AppDir()+"/shared" {
		t.Fatalf("the shared item, numbers as strings: %v", item)
	}
	if _, ok := item["fs_id"].(string); !ok {
		t.Fatalf("fs_id is not a string: %v", item)
	}
}

func TestShareListPagingAndKeys(t *testing.T) {
	e := newShareEnv(t, 25)
	key, _ := e.verify(t, "k3y9")
	// The root ignores paging: page 2 of 1 still shows the shared item.
	a := e.list(t, url.Values{"shorturl": {e.surl}, "root": {"1"}, "page": {"2"}, "num": {"1"}, "sekey": {key}})
	if got := listedNames(a); len(got) != 1 || got[0] != "shared" {
		t.Fatalf("root page 2: %v", a)
	}
	sub := e.friend.AppDir() + "/shared/sub"
	var all []string
	for page := 1; page <= 3; page++ {
		a := e.list(t, url.Values{"shorturl": {e.surl}, "dir": {sub}, "page": {strconv.Itoa(page)}, "num": {"10"}, "sekey": {key}, "order": {"asc"}})
		got := listedNames(a)
		if want := []int{10, 10, 5}[page-1]; len(got) != want {
			t.Fatalf("page %d: %d entries, want %d", page, len(got), want)
		}
		all = append(all, got...)
	}
	if all[0] != "f000.txt" || all[24] != "f024.txt" {
		t.Fatalf("asc by name: %v", all)
	}
	if got := listedNames(e.list(t, url.Values{"shorturl": {e.surl}, "dir": {sub}, "page": {"1"}, "num": {"3"}, "sekey": {key}})); got[0] != "f024.txt" {
		t.Fatalf("the default order is descending: %v", got)
	}
	for _, c := range []struct {
		q    url.Values
		want int
	}{
		{url.Values{"shorturl": {e.surl}, "dir": {sub}, "num": {"10"}, "sekey": {key}}, ErrnoParams},
		{url.Values{"shorturl": {"1" + e.surl}, "root": {"1"}, "page": {"1"}, "num": {"10"}, "sekey": {key}}, ErrnoShareLink},
		{url.Values{"shorturl": {e.surl}, "dir": {e.friend.AppDir()}, "page": {"1"}, "num": {"10"}, "sekey": {key}}, ErrnoNotFound},
		{url.Values{"shorturl": {e.surl}, "dir": {e.friend.AppDir() + "/shared/a.txt"}, "page": {"1"}, "num": {"10"}, "sekey": {key}}, ErrnoNotFound},
		{url.Values{"shorturl": {e.surl}, "root": {"1"}, "page": {"1"}, "num": {"10"}}, ErrnoShareKey},
	} {
		if a := e.list(t, c.q); a.errno() != c.want {
			t.Errorf("%v: errno %d, want %d", c.q, a.errno(), c.want)
		}
	}
	// A restart forgets the sekey: -9 until verified again.
	e.f.Faults.Restart()
	q := url.Values{"shorturl": {e.surl}, "root": {"1"}, "page": {"1"}, "num": {"10"}, "sekey": {key}}
	if a := e.list(t, q); a.errno() != ErrnoShareKey {
		t.Fatalf("a sekey from before a restart: %v", a)
	}
	key, _ = e.verify(t, "k3y9")
	q.Set("sekey", key)
	if a := e.list(t, q); a.errno() != 0 {
		t.Fatalf("after verifying again: %v", a)
	}
}

func TestShareLinkDies(t *testing.T) {
	e := newShareEnv(t, 0)
	key, _ := e.verify(t, "k3y9")
	q := url.Values{"shorturl": {e.surl}, "root": {"1"}, "page": {"1"}, "num": {"10"}, "sekey": {key}}
	e.f.ShareExpiresIn(e.link, time.Hour)
	if a := e.list(t, q); a.errno() != 0 {
		t.Fatalf("before the expiry: %v", a)
	}
	e.clock.Advance(2 * time.Hour)
	if a := e.list(t, q); a.errno() != ErrnoShareLink {
		t.Fatalf("an expired link: %v", a)
	}
	if _, a := e.verify(t, "k3y9"); a.errno() != ErrnoShareLink {
		t.Fatalf("verifying an expired link: %v", a)
	}
	other := e.friend.Share("/shared/a.txt", "")
	e.f.CancelShare(other)
	if _, a := e.post(t, e.api.URL, "/openapi/share/verify", url.Values{"access_tokens": {e.access}, "surl": {Surl(other)}}, url.Values{"pwd": {""}}); a.errno() != ErrnoShareLink {
		t.Fatalf("a cancelled link: %v", a)
	}
	gone := e.friend.Share("/shared/a.txt", "")
	e.friend.Delete("/shared/a.txt")
	if _, a := e.post(t, e.api.URL, "/openapi/share/verify", url.Values{"access_tokens": {e.access}, "surl": {Surl(gone)}}, url.Values{"pwd": {""}}); a.errno() != ErrnoShareLink {
		t.Fatalf("a link whose file is gone: %v", a)
	}
}

func TestShareDownload(t *testing.T) {
	e := newShareEnv(t, 0)
	key, _ := e.verify(t, "k3y9")
	root := e.list(t, url.Values{"shorturl": {e.surl}, "root": {"1"}, "page": {"1"}, "num": {"10"}, "sekey": {key}})
	dir := root["list"].([]any)[0].(map[string]any)
	folderID := strconv.FormatFloat(dir["fs_id"].(float64), 'f', 0, 64)
	files := e.list(t, url.Values{"shorturl": {e.surl}, "dir": {dir["path"].(string)}, "page": {"1"}, "num": {"10"}, "sekey": {key}})
	fileID := strconv.FormatFloat(files["list"].([]any)[0].(map[string]any)["fs_id"].(float64), 'f', 0, 64)
	q := url.Values{"access_tokens": {e.access}, "shareid": {strconv.FormatUint(e.f.ShareID(e.link), 10)},
		"uk": {strconv.FormatInt(e.friend.UK, 10)}, "sekey": {key}, "fid_list": {"[" + fileID + "," + folderID + "]"}}
	_, a := e.get(t, e.api.URL, "/openapi/share/download", q)
	list, _ := a["list"].([]any)
	if a.errno() != 0 || len(list) != 1 {
		t.Fatalf("share/download: the file's dlink, the folder left out: %v", a)
	}
	dlink := list[0].(map[string]any)["dlink"].(string)
	if !strings.Contains(dlink, "rt=sh") {
		t.Fatalf("not a share dlink: %s", dlink)
	}
	get := func(u, rng string) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
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
	if code, _ := get(dlink, ""); code != http.StatusForbidden {
		t.Fatalf("a share dlink without the token: %d", code)
	}
	withToken := dlink + "&access_tokens=" + url.QueryEscape(e.access)
	if code, body := get(withToken, "bytes=3-6"); code != http.StatusPartialContent || body != "tent" {
		t.Fatalf("a ranged read: %d %q", code, body)
	}
	e.clock.Advance(2 * time.Hour)
	if code, _ := get(withToken, ""); code != http.StatusForbidden {
		t.Fatalf("an expired dlink: %d", code)
	}
	q.Set("uk", "1")
	if _, a := e.get(t, e.api.URL, "/openapi/share/download", q); a.errno() != ErrnoParams {
		t.Fatalf("another uk: %v", a)
	}
}

// transfer posts a share/transfer of the shared folder with the main
// account's token.
func (e *shareEnv) transfer(t *testing.T, key string, async int, ondup, dest string) answer {
	t.Helper()
	root := e.list(t, url.Values{"shorturl": {e.surl}, "root": {"1"}, "page": {"1"}, "num": {"10"}, "sekey": {key}})
	id := strconv.FormatFloat(root["list"].([]any)[0].(map[string]any)["fs_id"].(float64), 'f', 0, 64)
	q := url.Values{"access_tokens": {e.access}, "shareid": {strconv.FormatUint(e.f.ShareID(e.link), 10)},
		"from": {strconv.FormatInt(e.friend.UK, 10)}, "async": {strconv.Itoa(async)}, "sekey": {key}}
	if ondup != "" {
		q.Set("ondup", ondup)
	}
	form := url.Values{"fsidlist": {`["` + id + `"]`}}
	if dest != "" {
		form.Set("path", dest)
	}
	_, a := e.post(t, e.api.URL, "/openapi/share/transfer", q, form)
	return a
}

func (e *shareEnv) poll(t *testing.T, task string) answer {
	t.Helper()
	_, a := e.get(t, e.api.URL, "/openapi/share/taskquery", url.Values{"access_tokens": {e.access}, "taskid": {task}})
	return a
}

func TestShareTransferTask(t *testing.T) {
	e := newShareEnv(t, 3)
	key, _ := e.verify(t, "k3y9")
	app := e.f.AppDir()
	if a := e.transfer(t, key, 2, "", ""); a.errno() != ErrnoBadName {
		t.Fatalf("into / (outside the app folder): %v", a)
	}
	if a := e.transfer(t, key, 2, "", app+"/nowhere"); a.errno() != ErrnoNotFound {
		t.Fatalf("into a missing folder: %v", a)
	}
	a := e.transfer(t, key, 2, "fail", app)
	task := strconv.FormatFloat(a["task_id"].(float64), 'f', 0, 64)
	if a.errno() != 0 || task == "0" {
		t.Fatalf("async 2: %v", a)
	}
	if ok, _ := e.f.Exists("/shared"); ok {
		t.Fatal("the copy is there before its task ended")
	}
	// Another account cannot query the task.
	fa, _ := e.friend.IssueToken()
	if _, a := e.get(t, e.api.URL, "/openapi/share/taskquery", url.Values{"access_tokens": {fa}, "taskid": {task}}); a.errno() != ErrnoParams {
		t.Fatalf("another account's query: %v", a)
	}
	for i, want := range []string{"pending", "running", "success", "success"} {
		if a := e.poll(t, task); a["status"] != want {
			t.Fatalf("query %d: %v, want %s", i+1, a, want)
		}
	}
	if got, _ := e.f.File("/shared/a.txt"); string(got) != "content of a" {
		t.Fatalf("the copy in the receiving account: %q", got)
	}
	if got := e.f.Names("/shared/sub"); len(got) != 3 {
		t.Fatalf("the sub-folder's copy: %v", got)
	}
	if got := e.friend.Names("/shared"); len(got) != 2 {
		t.Fatalf("the owner's files changed: %v", got)
	}
	tr := e.f.Transfers()
	if len(tr) != 1 || !tr[0].Done || tr[0].Files != 4 || tr[0].Receiver != e.f.UserID || tr[0].Dest != app || tr[0].Errno != 0 {
		t.Fatalf("the record: %+v", tr)
	}
	if e.f.BytesReceived() != 0 || e.f.Calls()["superfile2"] != 0 {
		t.Fatal("bytes went through the upload endpoint")
	}
	// The same again with ondup=fail: the task fails with -8.
	a = e.transfer(t, key, 2, "fail", app)
	task = strconv.FormatFloat(a["task_id"].(float64), 'f', 0, 64)
	e.poll(t, task)
	e.poll(t, task)
	if a := e.poll(t, task); a["status"] != "failed" || a["task_errno"] != float64(ErrnoExists) {
		t.Fatalf("a taken name with ondup=fail: %v", a)
	}
	// Synchronous, default ondup (newcopy): a suffixed name at once.
	a = e.transfer(t, key, 0, "", app)
	info := a["info"].([]any)[0].(map[string]any)
	to := a["extra"].(map[string]any)["list"].([]any)[0].(map[string]any)["to"].(string)
	if a.errno() != 0 || info["errno"] != float64(0) || !strings.HasPrefix(to, app+"/shared_") {
		t.Fatalf("async 0 with newcopy: %v", a)
	}
}

func TestShareTransferChecks(t *testing.T) {
	e := newShareEnv(t, 0)
	key, _ := e.verify(t, "k3y9")
	app := e.f.AppDir()
	q := url.Values{"access_tokens": {e.access}, "shareid": {strconv.FormatUint(e.f.ShareID(e.link), 10)},
		"from": {"12345"}, "async": {"2"}, "sekey": {key}}
	if _, a := e.post(t, e.api.URL, "/openapi/share/transfer", q, url.Values{"fsidlist": {`["1"]`}, "path": {app}}); a.errno() != ErrnoParams {
		t.Fatalf("from is not the owner's uk: %v", a)
	}
	q.Set("from", strconv.FormatInt(e.friend.UK, 10))
	q.Set("sekey", "stale")
	if _, a := e.post(t, e.api.URL, "/openapi/share/transfer", q, url.Values{"fsidlist": {`["1"]`}, "path": {app}}); a.errno() != ErrnoShareKey {
		t.Fatalf("a wrong sekey: %v", a)
	}
	// The file API serves the main account only; uinfo and tokeninfo
	// tell the other account's uk, also after a refresh.
	fa, fr := e.friend.IssueToken()
	if _, a := e.get(t, e.api.URL, "/openapi/api/list", url.Values{"access_tokens": {fa}, "dir": {app}, "page": {"1"}, "num": {"10"}}); a.errno() != ErrnoAuth {
		t.Fatalf("another account's token on the file API: %v", a)
	}
	_, a := e.post(t, e.www.URL, "/oauth/refreshtoken", nil, e.signed(url.Values{"refresh_token": {fr}}))
	fa = a["data"].(map[string]any)["access_token"].(string)
	if _, a := e.get(t, e.api.URL, "/openapi/uinfo", url.Values{"access_tokens": {fa}}); a["uk"] != float64(e.friend.UK) {
		t.Fatalf("uinfo of the other account: %v", a)
	}
	if _, a := e.post(t, e.www.URL, "/oauth/tokeninfo", nil, url.Values{"access_token": {fa}}); a["data"].(map[string]any)["user_id"] != float64(e.friend.UK) {
		t.Fatalf("tokeninfo of the other account: %v", a)
	}
}
