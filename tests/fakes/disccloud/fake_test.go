package disccloudfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// client speaks to the fake as a bare HTTP client would.
type client struct {
	t       *testing.T
	f       *Fake
	base    string
	token   string
	account string
}

func start(t *testing.T) *client {
	t.Helper()
	f := New()
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(func() {
		srv.Close()
		f.Close()
	})
	f.SetBaseURL(srv.URL)
	c := &client{t: t, f: f, base: srv.URL}
	c.login()
	return c
}

type answer struct {
	HTTP     int
	Status   string          `json:"_status"`
	Response json.RawMessage `json:"response"`
	Data     json.RawMessage `json:"data"`
	Body     []byte
}

func (a answer) msg() string {
	var s string
	json.Unmarshal(a.Response, &s)
	return s
}

func (c *client) post(p string, form url.Values) answer {
	c.t.Helper()
	resp, err := http.PostForm(c.base+"/api/v2/"+p, form)
	if err != nil {
		c.t.Fatal(err)
	}
	return decode(c.t, resp)
}

func decode(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	a := answer{HTTP: resp.StatusCode}
	a.Body, _ = io.ReadAll(resp.Body)
	json.Unmarshal(a.Body, &a)
	return a
}

// call posts with the client's token.
func (c *client) call(p string, kv ...string) answer {
	c.t.Helper()
	form := url.Values{"access_token": {c.token}, "account_id": {c.account}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return c.post(p, form)
}

func (c *client) ok(a answer) answer {
	c.t.Helper()
	if a.HTTP != http.StatusOK || a.Status != "success" {
		c.t.Fatalf("answer %d %s", a.HTTP, a.Body)
	}
	return a
}

func (c *client) refused(a answer, msg string) {
	c.t.Helper()
	if a.HTTP != http.StatusOK || a.Status != "error" || !strings.Contains(a.msg(), msg) {
		c.t.Fatalf("answer %d %s, want HTTP 200 error %q", a.HTTP, a.Body, msg)
	}
}

func (c *client) login() {
	a := c.ok(c.post("authorize", url.Values{"key1": {c.f.Key1}, "key2": {c.f.Key2}}))
	var d struct {
		Token   string `json:"access_token"`
		Account string `json:"account_id"`
	}
	json.Unmarshal(a.Data, &d)
	if len(d.Token) != 128 || d.Account == "" {
		c.t.Fatalf("authorize answered %s", a.Body)
	}
	c.token, c.account = d.Token, d.Account
}

// upload posts a multipart upload; fieldsAfter puts the fields after the
// file.
func (c *client) upload(name string, data []byte, folder string) answer {
	c.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("upload_file", name)
	fw.Write(data)
	w.WriteField("access_token", c.token)
	w.WriteField("account_id", c.account)
	if folder != "" {
		w.WriteField("folder_id", folder)
	}
	w.Close()
	resp, err := http.Post(c.base+"/api/v2/file/upload", w.FormDataContentType(), &body)
	if err != nil {
		c.t.Fatal(err)
	}
	return decode(c.t, resp)
}

type uploaded struct {
	Name   string `json:"name"`
	Size   string `json:"size"`
	FileID string `json:"file_id"`
	Error  any    `json:"error"`
}

func (c *client) uploadOK(name string, data []byte, folder string) uploaded {
	c.t.Helper()
	var out []uploaded
	json.Unmarshal(c.ok(c.upload(name, data, folder)).Data, &out)
	if len(out) != 1 {
		c.t.Fatalf("upload answered %v", out)
	}
	return out[0]
}

func (c *client) mkdir(name, parent string) string {
	c.t.Helper()
	var d struct {
		ID string `json:"id"`
	}
	json.Unmarshal(c.ok(c.call("folder/create", "folder_name", name, "parent_id", parent)).Data, &d)
	return d.ID
}

func TestAuthorizeLogsOutOtherTokensAndIdleExpiry(t *testing.T) {
	c := start(t)
	first := c.token
	c.ok(c.call("account/info"))
	c.refused(c.post("authorize", url.Values{"key1": {c.f.Key1}, "key2": {"wrong"}}), "Could not authenticate")
	c.login()
	c.refused(c.post("account/info", url.Values{"access_token": {first}, "account_id": {c.account}}), MsgBadToken)
	c.refused(c.post("account/info", url.Values{"account_id": {c.account}}), MsgNoToken)
	c.refused(c.post("account/info", url.Values{"access_token": {c.token}}), MsgNoAccount)
	// Query-string parameters are ignored.
	resp, _ := http.Post(c.base+"/api/v2/account/info?access_token="+c.token+"&account_id="+c.account, "application/x-www-form-urlencoded", nil)
	c.refused(decode(t, resp), MsgNoToken)
	// Each use renews the token; an hour unused kills it.
	c.f.Advance(50 * time.Minute)
	c.ok(c.call("account/info"))
	c.f.Advance(50 * time.Minute)
	c.ok(c.call("account/info"))
	c.f.Advance(61 * time.Minute)
	c.refused(c.call("account/info"), MsgBadToken)
	// A restart forgets tokens; wrong methods and routes use real statuses.
	c.login()
	c.f.Faults.Restart()
	c.refused(c.call("account/info"), MsgBadToken)
	if r, _ := http.Get(c.base + "/api/v2/account/info"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET on the API: %d, want 405", r.StatusCode)
	}
	if r, _ := http.Post(c.base+"/api/v2/nothing", "text/plain", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown route: %d, want 404", r.StatusCode)
	}
	// Account login, on a site set to it.
	c.f.AccountLogin = true
	c.refused(c.post("authorize", url.Values{"key1": {c.f.Key1}, "key2": {c.f.Key2}}), "Could not authenticate")
	c.ok(c.post("authorize", url.Values{"username": {c.f.Username}, "password": {c.f.Password}}))
}

func TestUploadRules(t *testing.T) {
	c := start(t)
	if got := c.uploadOK("a.txt", []byte("one"), ""); got.Name != "a.txt" || got.Size != "3" {
		t.Fatalf("upload: %+v", got)
	}
	if got := c.uploadOK("A.TXT", []byte("two"), ""); got.Name != "A (2).TXT" {
		t.Fatalf("a name taken (whatever the case) is renamed: %+v", got)
	}
	if got := c.uploadOK(".hidden", []byte("x"), ""); got.Name != "hidden" {
		t.Fatalf("a leading dot: %+v", got)
	}
	if got := c.uploadOK(`say "hi".txt`, []byte("x"), ""); got.Name != "say hi.txt" {
		t.Fatalf("quotes: %+v", got)
	}
	c.refused(c.upload("empty.txt", nil, ""), MsgZeroSize)
	c.f.SetPackage(10, 0, 4)
	c.refused(c.upload("big.bin", make([]byte, 11), ""), "too large")
	if c.f.UploadBytes() == 0 {
		t.Fatal("uploaded bytes are not counted")
	}
	c.refused(c.upload("x.txt", []byte("x"), "999999"), "Could not find")
	dir := c.mkdir("d", "")
	if got := c.uploadOK("in.txt", []byte("in"), dir); got.Name != "in.txt" {
		t.Fatalf("%+v", got)
	}
	if b, ok := c.f.File("/d/in.txt"); !ok || string(b) != "in" {
		t.Fatalf("File: %q %v", b, ok)
	}
	if got := c.f.Names("/"); !slices.Equal(got, []string{"A (2).TXT", "a.txt", "d", "hidden", "say hi.txt"}) {
		t.Fatalf("root holds %q", got)
	}
}

func TestFoldersAndMoves(t *testing.T) {
	c := start(t)
	a := c.mkdir("a", "")
	b := c.mkdir("b", a)
	twin := c.mkdir("a", "") // nothing stops a second folder of one name
	if twin == a || !slices.Equal(c.f.Names("/"), []string{"a", "a"}) {
		t.Fatalf("twins: %q", c.f.Names("/"))
	}
	c.ok(c.call("folder/delete", "folder_id", twin))
	var f uploaded
	f = c.uploadOK("f.txt", []byte("f"), b)
	// The root as a destination is "null"; "0" is no folder.
	c.refused(c.call("file/move", "file_id", f.FileID, "new_parent_folder_id", "0"), "Could not find the destination")
	c.ok(c.call("file/move", "file_id", f.FileID, "new_parent_folder_id", "null"))
	c.ok(c.call("file/edit", "file_id", f.FileID, "filename", "<b>g.txt</b> ", "folder_id", a))
	if !c.f.Exists("/a/g.txt", false) {
		t.Fatalf("edit: %q", c.f.Names("/a"))
	}
	cp := c.ok(c.call("file/copy", "file_id", f.FileID, "copy_to_folder_id", a))
	if !strings.Contains(string(cp.Body), `"new_file"`) || !slices.Equal(c.f.Names("/a"), []string{"b", "g (2).txt", "g.txt"}) {
		t.Fatalf("copy: %s, %q", cp.Body, c.f.Names("/a"))
	}
	c.ok(c.call("file/delete", "file_id", f.FileID))
	c.refused(c.call("file/edit", "file_id", f.FileID, "filename", "x"), MsgNoFile)
	var info struct {
		Status string `json:"status"`
	}
	json.Unmarshal(c.ok(c.call("file/info", "file_id", f.FileID)).Data, &info)
	if info.Status != "trash" {
		t.Fatalf("a deleted file's status %q", info.Status)
	}
	// folder/info reads folder_id; listings of missing folders fail.
	c.refused(c.call("folder/info", "parent_folder_id", a), MsgNoFolder)
	c.ok(c.call("folder/info", "folder_id", a))
	c.refused(c.call("folder/listing", "parent_folder_id", twin), MsgNoFolder)
	c.ok(c.call("folder/listing", "parent_folder_id", "0"))
	// A folder moved into its own subfolder is accepted and orphaned.
	c.ok(c.call("folder/move", "folder_id", a, "new_parent_folder_id", b))
	if c.f.Orphans() != 2 || c.f.Exists("/a", true) {
		t.Fatalf("%d orphans", c.f.Orphans())
	}
	c.refused(c.call("folder/listing", "parent_folder_id", b), MsgNoFolder)
}

func TestListingShapes(t *testing.T) {
	c := start(t)
	now := time.Date(2024, 9, 19, 4, 48, 19, 0, time.UTC)
	c.f.SetClock(func() time.Time { return now })
	c.f.Zone = time.FixedZone("x", 3600)
	dir := c.mkdir("d", "")
	c.uploadOK("in.txt", []byte("12345"), dir)
	c.uploadOK("top.txt", []byte("1"), "")
	var l struct {
		Folders []map[string]any `json:"folders"`
		Files   []map[string]any `json:"files"`
	}
	json.Unmarshal(c.ok(c.call("folder/listing")).Data, &l)
	if len(l.Folders) != 1 || len(l.Files) != 1 {
		t.Fatalf("listing %+v", l)
	}
	fd, fl := l.Folders[0], l.Files[0]
	if fd["totalSize"] != "5" || fd["parentId"] != nil || fd["date_added"] != "2024-09-19 05:48:19" {
		t.Fatalf("folder %v", fd)
	}
	if fl["fileSize"] != "1" || fl["folderId"] != nil || fl["status"] != "active" || fl["uploadedDate"] != "2024-09-19 05:48:19" {
		t.Fatalf("file %v", fl)
	}
}

func TestDownloadQuirks(t *testing.T) {
	c := start(t)
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(i)
	}
	f := c.uploadOK("d.bin", data, "")
	var d struct {
		URL string `json:"download_url"`
	}
	json.Unmarshal(c.ok(c.call("file/download", "file_id", f.FileID)).Data, &d)
	get := func(u, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, tc := range []struct {
		rng    string
		status int
		want   []byte
	}{
		{"", 200, data}, {"bytes=0-9", 200, data}, {"bytes=-10", 200, data},
		{"bytes=10-19", 206, data[10:20]}, {"bytes=4990-", 206, data[4990:]}, {"bytes=1-2,5-6", 200, data},
	} {
		resp, b := get(d.URL, tc.rng)
		if resp.StatusCode != tc.status || !bytes.Equal(b, tc.want) {
			t.Fatalf("%q: %d with %d bytes", tc.rng, resp.StatusCode, len(b))
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%q: not an attachment", tc.rng)
		}
	}
	// A dead token: HTTP 200, an HTML page, no length, no attachment.
	c.f.Advance(LinkTTL + time.Second)
	resp, b := get(d.URL, "bytes=10-19")
	if resp.StatusCode != 200 || resp.ContentLength != -1 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Content-Disposition") != "" || !bytes.Contains(b, []byte("<html")) {
		t.Fatalf("dead token: %d, length %d, %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	// Too many parallel downloads: 429.
	c.f.SetPackage(1<<30, 0, 1)
	c.login() // the idle day killed the access token too
	json.Unmarshal(c.ok(c.call("file/download", "file_id", f.FileID)).Data, &d)
	c.f.mu.Lock()
	c.f.activeDL = 1 // one download under way
	c.f.mu.Unlock()
	if resp, _ := get(d.URL, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second parallel download: %d, want 429", resp.StatusCode)
	}
}

func TestURLUpload(t *testing.T) {
	c := start(t)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "remote content")
	}))
	defer src.Close()
	enc := base64.StdEncoding.EncodeToString([]byte(src.URL + "/path/remote.txt"))
	c.refused(c.call("file/url_upload_add", "file_url_base64", "%%%"), "Could not parse")
	var added struct {
		ID int `json:"scheduled_item_id"`
	}
	json.Unmarshal(c.ok(c.call("file/url_upload_add", "file_url_base64", enc)).Data, &added)
	var st struct {
		Status string `json:"status"`
		File   *struct {
			ID   int    `json:"file_id"`
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"downloaded_file"`
	}
	for range 200 {
		json.Unmarshal(c.ok(c.call("file/url_upload_status", "scheduled_item_id", itoa(added.ID))).Data, &st)
		if st.Status == "complete" || st.Status == "failed" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.Status != "complete" || st.File == nil || st.File.Name != "remote.txt" || st.File.Size != 14 {
		t.Fatalf("status %+v", st)
	}
	if b, _ := c.f.File("/remote.txt"); string(b) != "remote content" {
		t.Fatalf("content %q", b)
	}
	c.f.SetURLUploads(false)
	c.refused(c.call("file/url_upload_add", "file_url_base64", enc), MsgNoURLUpload)
}

func TestFaultsUseTheSampleErrorShape(t *testing.T) {
	c := start(t)
	c.f.Faults.Fail("listing", http.StatusTooManyRequests, 1)
	a := c.call("folder/listing")
	var env struct {
		Status string `json:"status"`
	}
	json.Unmarshal(a.Body, &env)
	if a.HTTP != http.StatusTooManyRequests || env.Status != "error" {
		t.Fatalf("injected 429: %d %s", a.HTTP, a.Body)
	}
	if c.f.Calls()["listing"] != 1 {
		t.Fatalf("calls %v", c.f.Calls())
	}
}
