package disktopfake

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridge/tests/fakes/faults"
)

// Handler serves the fake's API, OAuth, upload and download endpoints,
// each through the fault layer, and POST /__restart.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, kind faults.Kind, h http.HandlerFunc) {
		mux.Handle(pattern, f.Faults.Route(name, kind, h))
	}
	route("GET /oauth/authorize", "authorize", faults.Auth, f.authorize)
	route("POST /oauth/token", "token", faults.Auth, f.tokenEndpoint)
	route("POST /oauth/device-code", "device-code", faults.Auth, f.deviceCodeEndpoint)
	route("POST /oauth/device-token", "device-token", faults.Auth, f.deviceToken)
	route("/oauth/device", "device-page", faults.Auth, f.devicePage)
	route("GET /v1/user/info", "user-info", faults.API, f.api(f.userInfo, "user.read"))
	route("GET /v1/user/quota", "quota", faults.API, f.api(f.quota, "user.read"))
	route("GET /v1/files", "list", faults.API, f.api(f.list))
	route("GET /v1/files/search", "search", faults.API, f.api(f.search))
	route("GET /v1/files/{id}", "meta", faults.API, f.api(f.meta))
	route("GET /v1/files/{id}/download", "download", faults.API, f.api(f.download))
	route("POST /v1/files/folder", "folder", faults.API, f.api(f.folder))
	route("POST /v1/files/manage", "manage", faults.API, f.api(f.manage))
	route("POST /v1/files/upload/precreate", "precreate", faults.API, f.api(f.precreate))
	route("POST /upload/u", "part", faults.Upload, f.part)
	route("GET /upload/u/{id}/parts", "parts", faults.API, f.parts)
	route("POST /upload/u/{id}/complete", "complete", faults.API, f.complete)
	route("POST /upload/u/{id}/abort", "abort", faults.API, f.abort)
	route("GET /dl/{id}", "dl", faults.Download, f.serveFile)
	return f.Faults.Handler(mux)
}

// session is what a valid Bearer token grants.
type session struct {
	tok     *token
	base    *node // the sandbox, or the account root with full-disk scopes
	sandbox *node
}

// writable reports whether the session may change n or write into it:
// anywhere with files.write_all, only inside the sandbox with
// files.app_data.
func (s session) writable(n *node) bool {
	return s.has("files.write_all") || (s.has("files.app_data") && within(n, s.sandbox))
}

// refuseWrite answers a write outside what the scopes allow.
func refuseWrite(w http.ResponseWriter) {
	apiError(w, http.StatusForbidden, ErrnoScope, "files.write_all required outside the app folder")
}

func (s session) has(scope string) bool {
	for _, sc := range s.tok.scopes {
		if sc == scope {
			return true
		}
	}
	return false
}

// api checks the Bearer token (and extra scopes) and the file scopes.
func (f *Fake) api(h func(w http.ResponseWriter, r *http.Request, s session), scopes ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		f.mu.Lock()
		t, ok := f.tokens[strings.TrimPrefix(auth, "Bearer ")]
		valid := ok && strings.HasPrefix(auth, "Bearer ") && f.now().Before(t.expires)
		f.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			apiError(w, http.StatusUnauthorized, ErrnoUnauthorized, "invalid or expired access token")
			return
		}
		s := session{tok: t}
		for _, sc := range scopes {
			if !s.has(sc) {
				apiError(w, http.StatusForbidden, ErrnoScope, "scope "+sc+" required")
				return
			}
		}
		f.mu.Lock()
		s.sandbox = f.sandbox()
		if s.has("files.read_all") || s.has("files.write_all") {
			s.base = f.root
		} else {
			s.base = f.sandbox()
		}
		f.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/v1/files") && !s.has("files.app_data") && s.base != f.root {
			apiError(w, http.StatusForbidden, ErrnoScope, "no files scope")
			return
		}
		if r.Method == http.MethodPost && !s.has("files.app_data") && !s.has("files.write_all") {
			apiError(w, http.StatusForbidden, ErrnoScope, "no write scope")
			return
		}
		h(w, r, s)
	}
}

func (f *Fake) userInfo(w http.ResponseWriter, r *http.Request, s session) {
	ok(w, map[string]any{"uid": 17, "username": "bridge", "storage_quota_bytes": f.QuotaBytes,
		"oauth": map[string]any{"client_id": s.tok.clientID, "scopes": s.tok.scopes}})
}

func (f *Fake) quota(w http.ResponseWriter, r *http.Request, s session) {
	f.mu.Lock()
	used := f.used()
	f.mu.Unlock()
	ok(w, map[string]any{"total_bytes": f.QuotaBytes, "used_bytes": used, "free_bytes": f.QuotaBytes - used,
		"used_pct": float64(used) * 100 / float64(f.QuotaBytes)})
}

func fileJSON(n *node) map[string]any {
	return map[string]any{"id": n.id, "name": n.name, "size": n.blob.size, "md5": n.blob.md5}
}

func (f *Fake) list(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	page, limit := 1, 50
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	if page < 1 || limit < 1 || limit > 200 {
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "page >= 1 and 1 <= limit <= 200")
		return
	}
	p := q.Get("path")
	if p == "" {
		p = "/"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(strings.Split(p, "/"), "..") {
		apiError(w, http.StatusNotFound, ErrnoNotFound, "path not found") // no way out of the sandbox
		return
	}
	dir := f.lookup(s.base, p)
	var all []*node
	switch {
	case dir == nil:
		// The document does not say: a path that is nothing lists as
		// an empty folder.
	case !dir.dir:
		all = []*node{dir} // and a file's path lists the file
	default:
		all = sortedKids(dir)
	}
	folders, files := []any{}, []any{}
	for i := (page - 1) * limit; i < len(all) && i < page*limit; i++ {
		if all[i].dir {
			folders = append(folders, map[string]any{"id": all[i].id, "name": all[i].name})
		} else {
			files = append(files, fileJSON(all[i]))
		}
	}
	ok(w, map[string]any{"path": p, "folders": folders, "files": files, "total": len(all)})
}

func (f *Fake) search(w http.ResponseWriter, r *http.Request, s session) {
	q, ext := r.URL.Query().Get("q"), r.URL.Query().Get("ext")
	if q == "" {
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "q is required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for _, n := range f.files {
		if within(n, s.base) && strings.Contains(n.name, q) && (ext == "" || strings.TrimPrefix(path.Ext(n.name), ".") == ext) {
			out = append(out, fileJSON(n))
		}
	}
	ok(w, map[string]any{"files": out, "total": len(out)})
}

// fileByID finds a file the session may reach.
func (f *Fake) fileByID(w http.ResponseWriter, r *http.Request, s session) *node {
	id, _ := strconv.Atoi(r.PathValue("id"))
	n, found := f.files[id]
	if !found || !within(n, s.base) {
		apiError(w, http.StatusNotFound, ErrnoNotFound, "file not found")
		return nil
	}
	return n
}

func (f *Fake) meta(w http.ResponseWriter, r *http.Request, s session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.fileByID(w, r, s); n != nil {
		m := fileJSON(n)
		m["ext"] = strings.TrimPrefix(path.Ext(n.name), ".")
		m["path"] = fullPath(n)
		m["parent_folder"] = n.parent.id
		m["create_time"] = n.created.Unix()
		ok(w, m)
	}
}

func (f *Fake) download(w http.ResponseWriter, r *http.Request, s session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.fileByID(w, r, s)
	if n == nil {
		return
	}
	ttl := f.Faults.LinkTTL(600 * time.Second)
	exp := f.now().Add(ttl).Unix()
	sig := f.sign(n.id, exp)
	f.secrets = append(f.secrets, sig)
	u := fmt.Sprintf("%s/dl/%d?exp=%d&sig=%s", f.baseURL, n.id, exp, sig)
	ok(w, map[string]any{"url": u, "expires_in": int(ttl / time.Second), "name": n.name, "size": n.blob.size, "md5": n.blob.md5})
}

// serveFile serves a signed URL, with Range, until it expires.
func (f *Fake) serveFile(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	f.mu.Lock()
	n, found := f.files[id]
	good := found && r.URL.Query().Get("sig") == f.sign(id, exp) && f.now().Unix() <= exp
	var fl *os.File
	var size int64
	var err error
	if good { // opened under f.mu: a delete meanwhile does not pull it away
		fl, err = n.blob.open()
		size = n.blob.size
	}
	f.mu.Unlock()
	if !good {
		http.Error(w, "link expired or invalid", http.StatusForbidden)
		return
	}
	if err != nil {
		http.Error(w, "content unavailable", http.StatusInternalServerError)
		return
	}
	defer fl.Close()
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(fl, 0, size))
}

// folderAt resolves parent_path for a write.
func (f *Fake) folderAt(w http.ResponseWriter, s session, p string) *node {
	if p == "" {
		p = "/"
	}
	dir := f.lookup(s.base, p)
	if dir == nil || !dir.dir {
		apiError(w, http.StatusNotFound, ErrnoNotFound, "parent_path not found")
		return nil
	}
	return dir
}

// freeNameIn resolves parent_path for a new entry called name, answering
// the error itself (and returning nil) when the folder is missing, the
// name invalid or taken.
func (f *Fake) freeNameIn(w http.ResponseWriter, s session, parentPath, name string) *node {
	parent := f.folderAt(w, s, parentPath)
	if parent == nil {
		return nil
	}
	if !s.writable(parent) {
		refuseWrite(w)
		return nil
	}
	if !validName(name) {
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "invalid name")
		return nil
	}
	if _, taken := parent.kids[name]; taken {
		apiError(w, http.StatusConflict, ErrnoExists, "name exists")
		return nil
	}
	return parent
}

func (f *Fake) folder(w http.ResponseWriter, r *http.Request, s session) {
	r.ParseForm()
	name := r.PostForm.Get("name")
	f.mu.Lock()
	defer f.mu.Unlock()
	parent := f.freeNameIn(w, s, r.PostForm.Get("parent_path"), name)
	if parent == nil {
		return
	}
	n := f.newFolder(parent, name)
	ok(w, map[string]any{"folder_id": n.id, "name": n.name, "path": fullPath(n)})
}

func (f *Fake) manage(w http.ResponseWriter, r *http.Request, s session) {
	r.ParseForm()
	action := r.PostForm.Get("action")
	f.mu.Lock()
	defer f.mu.Unlock()
	var targets []*node
	for _, set := range []struct {
		key string
		m   map[int]*node
	}{{"file_ids[]", f.files}, {"folder_ids[]", f.folders}} {
		for _, v := range r.PostForm[set.key] {
			id, _ := strconv.Atoi(v)
			n, found := set.m[id]
			if !found || !within(n, s.base) || n == s.base {
				apiError(w, http.StatusNotFound, ErrnoNotFound, fmt.Sprintf("%s %s not found", strings.TrimSuffix(set.key, "[]"), v))
				return
			}
			targets = append(targets, n)
		}
	}
	if len(targets) == 0 {
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "file_ids[] or folder_ids[] required")
		return
	}
	for _, n := range targets {
		if action != "copy" && !s.writable(n) {
			refuseWrite(w)
			return
		}
	}
	switch action {
	case "delete":
		for _, n := range targets {
			f.drop(n)
		}
	case "rename":
		name := r.PostForm.Get("new_name")
		if len(targets) != 1 || !validName(name) {
			apiError(w, http.StatusBadRequest, ErrnoBadRequest, "rename takes one id and a valid new_name")
			return
		}
		n := targets[0]
		if _, taken := n.parent.kids[name]; taken {
			apiError(w, http.StatusConflict, ErrnoExists, "name exists")
			return
		}
		delete(n.parent.kids, n.name)
		n.name = name
		n.parent.kids[name] = n
	case "move", "copy":
		dest := f.folderAt(w, s, r.PostForm.Get("dest_path"))
		if dest == nil {
			return
		}
		if !s.writable(dest) {
			refuseWrite(w)
			return
		}
		for _, n := range targets {
			if other, taken := dest.kids[n.name]; taken && (action == "copy" || other != n) {
				apiError(w, http.StatusConflict, ErrnoExists, "name exists in dest_path")
				return
			}
			if n.dir && within(dest, n) {
				apiError(w, http.StatusBadRequest, ErrnoBadRequest, "cannot move a folder into itself")
				return
			}
		}
		for _, n := range targets {
			if action == "move" { // into its own folder: nothing changes
				delete(n.parent.kids, n.name)
				n.parent = dest
				dest.kids[n.name] = n
			} else {
				f.copyNode(n, dest)
			}
		}
	default:
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "unknown action")
		return
	}
	ok(w, map[string]any{"affected": len(targets)})
}

func (f *Fake) copyNode(n, dest *node) {
	if !n.dir {
		f.newFile(dest, n.name, n.blob)
		return
	}
	c := f.newFolder(dest, n.name)
	for _, k := range sortedKids(n) {
		f.copyNode(k, c)
	}
}

func (f *Fake) precreate(w http.ResponseWriter, r *http.Request, s session) {
	r.ParseForm()
	name, sum := r.PostForm.Get("name"), r.PostForm.Get("md5")
	size, err := strconv.ParseInt(r.PostForm.Get("size"), 10, 64)
	if err != nil || size < 0 || len(sum) != 32 || strings.ToLower(sum) != sum {
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "size and md5 (lowercase 32-char hex) are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	parent := f.freeNameIn(w, s, r.PostForm.Get("parent_path"), name)
	if parent == nil {
		return
	}
	if size > f.QuotaBytes-f.used() { // not used+size, which a huge size overflows
		apiError(w, http.StatusInsufficientStorage, ErrnoQuota, "quota exceeded")
		return
	}
	for _, n := range f.files { // dedup: the same bytes anywhere in the account
		if n.blob.md5 == sum && n.blob.size == size {
			c := f.newFile(parent, name, n.blob)
			ok(w, map[string]any{"instant_upload": true, "file_id": c.id, "path": fullPath(c), "size": size})
			return
		}
	}
	total := int(size / f.ChunkSize) // (size + ChunkSize - 1) / ChunkSize overflows near MaxInt64
	if size%f.ChunkSize != 0 {
		total++
	}
	u := &upload{id: randomHex(16), parent: parent, name: name, size: size, md5: sum, chunk: f.ChunkSize,
		parts: map[int]*blob{}, total: total, expires: f.now().Add(24 * time.Hour)}
	f.uploads[u.id] = u
	ok(w, map[string]any{"instant_upload": false, "upload_id": u.id, "endpoint": f.baseURL + "/upload",
		"chunk_size": f.ChunkSize, "total_parts": total, "expires_in": 86400})
}

// liveUpload finds a live upload session, or nil (f.mu held).
func (f *Fake) liveUpload(id string) *upload {
	u, found := f.uploads[id]
	if !found || u.finished || f.now().After(u.expires) {
		return nil
	}
	return u
}

// uploadSession finds a live upload session, answering 404 when there is
// none (f.mu held).
func (f *Fake) uploadSession(w http.ResponseWriter, id string) *upload {
	u := f.liveUpload(id)
	if u == nil {
		apiError(w, http.StatusNotFound, ErrnoNotFound, "unknown upload_id")
	}
	return u
}

// part takes one part of an upload session, streamed to a temp file (and
// hashed for its etag) outside f.mu; the checks are made before and again
// after, in the order the body-first reading of the protocol gives:
// session, part number, length.
func (f *Fake) part(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("upload_id")
	seq, _ := strconv.Atoi(q.Get("part_seq"))
	f.mu.Lock()
	u := f.liveUpload(id)
	f.mu.Unlock()
	if u == nil || seq < 1 || seq > u.total {
		io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		if u = f.uploadSession(w, id); u != nil {
			apiError(w, http.StatusBadRequest, ErrnoBadRequest, fmt.Sprintf("part_seq must be 1..%d", u.total))
		}
		return
	}
	want := u.partSize(seq)
	body := &bodyReader{r: r.Body}
	p, err := f.store(io.LimitReader(body, want+1))
	if err != nil {
		if body.err == nil { // the client is still there to be told
			apiError(w, http.StatusInternalServerError, ErrnoInternal, "storing the part failed")
		}
		return
	}
	got := p.size
	if got > want { // too long: how long, without keeping the rest
		extra, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			os.Remove(p.file)
			return
		}
		got += extra
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.uploadSession(w, id) != u { // aborted, completed, expired or forgotten meanwhile
		os.Remove(p.file)
		return
	}
	if got != want {
		os.Remove(p.file)
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, fmt.Sprintf("part %d must be %d bytes, got %d", seq, want, got))
		return
	}
	if f.loseParts[seq] {
		delete(f.loseParts, seq)
		os.Remove(p.file)
	} else {
		if old := u.parts[seq]; old != nil {
			os.Remove(old.file)
		}
		u.parts[seq] = p
	}
	ok(w, map[string]any{"part_seq": seq, "etag": p.md5, "size": p.size,
		"received_parts": len(u.parts), "total_parts": u.total})
}

func (f *Fake) parts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.uploadSession(w, r.PathValue("id"))
	if u == nil {
		return
	}
	received := []int{}
	details := map[string]any{}
	for seq := 1; seq <= u.total; seq++ {
		if p, got := u.parts[seq]; got {
			received = append(received, seq)
			details[strconv.Itoa(seq)] = map[string]any{"part_number": seq, "size": p.size}
		}
	}
	progress := 100.0
	if u.total > 0 {
		progress = float64(len(received)) * 100 / float64(u.total)
	}
	ok(w, map[string]any{"upload_id": u.id, "total_parts": u.total, "received_parts": received, "progress": progress, "parts": details})
}

// complete assembles the parts into the file. The copy (and its md5) runs
// outside f.mu; a part delivered again meanwhile makes it start over.
func (f *Fake) complete(w http.ResponseWriter, r *http.Request) {
	for !f.completeOnce(w, r.PathValue("id")) {
	}
}

// completeOnce is one attempt of complete; false: the parts changed while
// they were copied, try again.
func (f *Fake) completeOnce(w http.ResponseWriter, id string) bool {
	f.mu.Lock()
	u := f.uploadSession(w, id)
	if u == nil {
		f.mu.Unlock()
		return true
	}
	if len(u.parts) != u.total {
		f.mu.Unlock()
		apiError(w, 425, ErrnoIncomplete, fmt.Sprintf("incomplete: %d/%d", len(u.parts), u.total))
		return true
	}
	parts := make([]*blob, u.total)
	for seq := 1; seq <= u.total; seq++ {
		parts[seq-1] = u.parts[seq]
	}
	f.mu.Unlock()

	b, err := f.concat(parts)

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.uploadSession(w, id) != u { // aborted, completed or forgotten meanwhile
		if err == nil {
			os.Remove(b.file)
		}
		return true
	}
	same := len(u.parts) == len(parts)
	for seq, p := range parts {
		same = same && u.parts[seq+1] == p
	}
	if !same {
		if err == nil {
			os.Remove(b.file)
		}
		return false
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, ErrnoInternal, "assembling the parts failed")
		return true
	}
	u.finished = true
	u.dropParts()
	if b.md5 != u.md5 {
		os.Remove(b.file)
		apiError(w, http.StatusBadRequest, ErrnoBadRequest, "md5 of the parts does not match precreate's")
		return true
	}
	if _, taken := u.parent.kids[u.name]; taken {
		os.Remove(b.file)
		apiError(w, http.StatusConflict, ErrnoExists, "name exists")
		return true
	}
	n := f.newFile(u.parent, u.name, b)
	ok(w, map[string]any{"file_id": n.id, "path": fullPath(n), "size": b.size, "md5": b.md5})
	return true
}

func (f *Fake) abort(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.uploadSession(w, r.PathValue("id"))
	if u == nil {
		return
	}
	u.finished = true
	u.dropParts()
	ok(w, map[string]any{"ok": true})
}

// OAuth.

func scopesOf(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '+' })
}

func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != f.ClientID || q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "only S256 code challenges", http.StatusBadRequest)
		return
	}
	if !validScopes(scopesOf(q.Get("scope"))) {
		http.Redirect(w, r, q.Get("redirect_uri")+"?error=invalid_scope&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
		return
	}
	// The user consents at once: a fake has nobody to ask.
	code := "ac-" + randomHex(12)
	f.mu.Lock()
	f.codes[code] = &authCode{clientID: q.Get("client_id"), redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), scopes: scopesOf(q.Get("scope"))}
	f.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
}

// clientOK checks client credentials: the secret, or (PKCE) none.
func (f *Fake) clientOK(r *http.Request, secretRequired bool) bool {
	if r.PostForm.Get("client_id") != f.ClientID {
		return false
	}
	secret := r.PostForm.Get("client_secret")
	if secret == "" {
		return !secretRequired
	}
	return secret == f.ClientSecret
}

// tokenJSON answers a token grant; expires_in is the access token's
// lifetime.
func (f *Fake) tokenJSON(t *token) map[string]any {
	return map[string]any{"access_token": t.access, "refresh_token": t.refresh, "token_type": "Bearer",
		"expires_in": int(t.ttl / time.Second), "scope": strings.Join(t.scopes, " ")}
}

func (f *Fake) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c, found := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		if !found || c.redirect != r.PostForm.Get("redirect_uri") {
			oauthError(w, "invalid_grant", "unknown code or redirect_uri mismatch")
			return
		}
		if c.challenge != "" {
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
				oauthError(w, "invalid_grant", "PKCE verification failed")
				return
			}
		}
		if !f.clientOK(r, c.challenge == "") {
			oauthError(w, "invalid_client", "bad client credentials")
			return
		}
		writeJSON(w, http.StatusOK, f.tokenJSON(f.issue(c.clientID, c.scopes)))
	case "refresh_token":
		if !f.clientOK(r, false) {
			oauthError(w, "invalid_client", "bad client credentials")
			return
		}
		old, found := f.refreshes[r.PostForm.Get("refresh_token")]
		if !found || old.refreshed || old.clientID != r.PostForm.Get("client_id") {
			oauthError(w, "invalid_grant", "refresh token invalid, used or revoked")
			return
		}
		if !old.refreshExpires.IsZero() && !f.now().Before(old.refreshExpires) {
			delete(f.refreshes, old.refresh)
			oauthError(w, "invalid_grant", "refresh token expired")
			return
		}
		// Rotation: the old refresh token dies now, and so does its
		// access token.
		old.refreshed = true
		delete(f.refreshes, old.refresh)
		delete(f.tokens, old.access)
		writeJSON(w, http.StatusOK, f.tokenJSON(f.issue(old.clientID, old.scopes)))
	default:
		oauthError(w, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (f *Fake) deviceCodeEndpoint(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if r.PostForm.Get("client_id") != f.ClientID {
		oauthError(w, "invalid_client", "unknown client_id")
		return
	}
	scopes := scopesOf(r.PostForm.Get("scope"))
	if !validScopes(scopes) {
		oauthError(w, "invalid_scope", "unknown scope")
		return
	}
	d := &deviceCode{code: "dc-" + randomHex(16), userCode: strings.ToUpper(randomHex(2) + "-" + randomHex(2)),
		clientID: f.ClientID, scopes: scopes, expires: f.now().Add(600 * time.Second), interval: f.DeviceInterval}
	f.mu.Lock()
	f.devices[d.code] = d
	f.secrets = append(f.secrets, d.code)
	base := f.baseURL
	f.mu.Unlock()
	complete := base + "/oauth/device?user_code=" + d.userCode
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": d.code, "user_code": d.userCode,
		"verification_uri":          base + "/oauth/device",
		"verification_uri_complete": complete,
		"qr_url":                    "https://api.qrserver.com/v1/create-qr-code/?size=240x240&data=" + url.QueryEscape(complete),
		"expires_in":                600, "interval": int(d.interval / time.Second),
	})
}

// devicePage is the verification URI: a page where the user approves a
// code (the fake's stand-in for logging in on a phone).
func (f *Fake) devicePage(w http.ResponseWriter, r *http.Request) {
	code := r.FormValue("user_code")
	if r.Method == http.MethodPost {
		if !f.ApproveDevice(code) {
			http.Error(w, "unknown code", http.StatusNotFound)
			return
		}
		fmt.Fprintln(w, "Approved. You can go back to your device.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<form method="post">Code: <input name="user_code" value="%s"> <button>Approve</button></form>`,
		html.EscapeString(code))
}

func (f *Fake) deviceToken(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	d, found := f.devices[r.PostForm.Get("device_code")]
	now := f.now()
	tooSoon := found && !d.lastPoll.IsZero() && now.Sub(d.lastPoll) < d.interval
	if found {
		d.lastPoll = now
	}
	switch {
	case !found || r.PostForm.Get("client_id") != d.clientID:
		oauthError(w, "invalid_grant", "unknown device_code")
	case now.After(d.expires):
		oauthError(w, "expired_token", "device code expired")
	case tooSoon:
		d.interval += 5 * time.Second
		oauthError(w, "slow_down", "polling faster than the interval")
	case d.denied:
		oauthError(w, "access_denied", "user denied")
	case !d.approved:
		oauthError(w, "authorization_pending", "waiting for the user")
	default:
		delete(f.devices, d.code)
		writeJSON(w, http.StatusOK, f.tokenJSON(f.issue(d.clientID, d.scopes)))
	}
}
