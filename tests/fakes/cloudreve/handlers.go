package cloudrevefake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"bridge/tests/fakes/faults"
)

const cookieName = "cloudreve-session"

// codeIOFailed is the server's answer when it cannot write or read its
// storage.
const codeIOFailed = 50004

type userKey struct{}

// Handler serves the API under /api/v3, the OneDrive-style upload URLs
// and the signed downloads, each through the fault layer, and POST
// /__restart.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, kind faults.Kind, h http.HandlerFunc) {
		mux.Handle(pattern, f.Faults.Route(name, kind, h))
	}
	route("POST /api/v3/user/session", "login", faults.Auth, f.login)
	route("POST /api/v3/user/2fa", "2fa", faults.Auth, f.twoFactor)
	route("GET /api/v3/user/storage", "storage", faults.API, f.authed(f.storage))
	route("GET /api/v3/directory", "list", faults.API, f.authed(f.list))
	route("GET /api/v3/directory/{path...}", "list", faults.API, f.authed(f.list))
	route("PUT /api/v3/directory", "mkdir", faults.API, f.authed(f.mkdir))
	route("PUT /api/v3/file/upload", "upload-session", faults.API, f.authed(f.createUpload))
	route("POST /api/v3/file/upload/{sid}/{index}", "chunk", faults.Upload, f.authed(f.chunk))
	route("DELETE /api/v3/file/upload/{sid}", "cancel", faults.API, f.authed(f.cancel))
	route("PUT /onedrive/upload/{sid}", "onedrive-put", faults.Upload, f.onedrivePut)
	route("GET /onedrive/upload/{sid}", "onedrive-status", faults.API, f.onedriveStatus)
	route("POST /api/v3/callback/onedrive/finish/{sid}", "onedrive-finish", faults.API, f.onedriveFinish)
	route("PUT /api/v3/file/download/{id}", "download", faults.API, f.authed(f.downloadURL))
	route("GET /api/v3/file/download/{sid}", "dl", faults.Download, f.serveFile)
	route("PATCH /api/v3/object", "move", faults.API, f.authed(f.move))
	route("POST /api/v3/object/copy", "copy", faults.API, f.authed(f.copy))
	route("POST /api/v3/object/rename", "rename", faults.API, f.authed(f.rename))
	route("DELETE /api/v3/object", "delete", faults.API, f.authed(f.remove))
	route("PUT /api/v3/file/update/{id}", "update", faults.API, f.authed(f.update))
	return f.Faults.Handler(mux)
}

// authed requires a logged-in session cookie: {"code":401} otherwise.
func (f *Fake) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		f.mu.Lock()
		var u *user
		if err == nil {
			if s, ok := f.sessions[c.Value]; ok && !s.pending && f.now().Before(s.expires) {
				u = s.u
			}
		}
		f.mu.Unlock()
		if u == nil {
			io.Copy(io.Discard, r.Body)
			reply(w, CodeLoginRequired, nil, "Login required")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

func userOf(r *http.Request) *user { return r.Context().Value(userKey{}).(*user) }

// decodeJSON reads a JSON body, as the server's binding does (it ignores
// Content-Type: a form body simply fails to parse).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		reply(w, CodeBadParams, nil, "Bad request body")
		return false
	}
	return true
}

func userJSON(email string) map[string]any {
	return map[string]any{"id": "l6hY", "user_name": email, "nickname": "bridge", "status": 0,
		"anonymous": false, "group": map[string]any{"id": 1, "name": "Admin"}, "tags": []string{}}
}

// credentials returns a user's email, password and TOTP secret; the
// default user's live in the exported fields.
func (f *Fake) credentials(u *user) (string, string, string) {
	if u == f.def {
		return f.User, f.Password, f.TOTPSecret
	}
	return u.email, u.password, u.totp
}

func (f *Fake) newCookie(w http.ResponseWriter, u *user, pending bool) {
	v := randomID()
	exp := f.now().Add(f.Faults.TokenTTL(SessionTTL))
	f.sessions[v] = &session{u: u, pending: pending, expires: exp}
	f.secrets = append(f.secrets, v)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/", HttpOnly: true, Expires: exp})
}

func (f *Fake) login(w http.ResponseWriter, r *http.Request) {
	// Exact keys: the server's field is "Password" with a capital P.
	var body map[string]json.RawMessage
	if !decodeJSON(w, r, &body) {
		return
	}
	var name, pass string
	okName := json.Unmarshal(body["userName"], &name) == nil && strings.Contains(name, "@")
	okPass := json.Unmarshal(body["Password"], &pass) == nil && len(pass) >= 4 && len(pass) <= 64
	if !okName || !okPass {
		reply(w, CodeBadParams, nil, "Parameter error")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		email, password, secret := f.credentials(u)
		if email != name || password != pass {
			continue
		}
		if secret != "" {
			f.newCookie(w, u, true)
			reply(w, CodeTwoFactor, nil, "2FA code required")
			return
		}
		f.newCookie(w, u, false)
		reply(w, CodeOK, userJSON(email), "")
		return
	}
	reply(w, CodeCredentials, nil, "Wrong password or email address")
}

func (f *Fake) twoFactor(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	c, err := r.Cookie(cookieName)
	f.mu.Lock()
	defer f.mu.Unlock()
	var s *session
	if err == nil {
		s = f.sessions[c.Value]
	}
	if s == nil || !s.pending {
		reply(w, CodeLoginRequired, nil, "Login required")
		return
	}
	email, _, secret := f.credentials(s.u)
	good, _ := totp.ValidateCustom(body.Code, secret, f.now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if !good {
		reply(w, CodeCredentials, nil, "Incorrect 2FA code")
		return
	}
	s.pending = false
	reply(w, CodeOK, userJSON(email), "")
}

func (f *Fake) storage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	used, total := f.used(userOf(r)), f.QuotaBytes
	f.mu.Unlock()
	reply(w, CodeOK, map[string]any{"used": used, "free": max(0, total-used), "total": total}, "")
}

func (f *Fake) policyJSON(p *Policy) map[string]any {
	return map[string]any{"id": p.ID, "name": p.Name, "type": p.Type, "max_size": f.MaxFileSize, "file_type": []string{}}
}

func (f *Fake) list(w http.ResponseWriter, r *http.Request) {
	p := "/" + r.PathValue("path")
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := lookupDir(userOf(r).root, p)
	if dir == nil {
		reply(w, CodeObjectNotFound, nil, "Path not exist")
		return
	}
	objs := []any{}
	for _, k := range sortedKids(dir) {
		objs = append(objs, objectJSON(k))
	}
	reply(w, CodeOK, map[string]any{"parent": dir.id, "objects": objs, "policy": f.policyJSON(dir.policy)}, "")
}

func (f *Fake) mkdir(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Path string `json:"path"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	if !strings.HasPrefix(body.Path, "/") {
		reply(w, CodeBadParams, nil, "Parameter error")
		return
	}
	for _, seg := range strings.Split(body.Path, "/") {
		if seg != "" && !validName(seg) {
			reply(w, CodeBadName, nil, "Invalid object name")
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mkdirAll(userOf(r).root, body.Path) // mkdir -p: an existing folder is fine
	reply(w, CodeOK, nil, "")
}

func (f *Fake) createUpload(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Path         string `json:"path"`
		Size         *int64 `json:"size"`
		Name         string `json:"name"`
		PolicyID     string `json:"policy_id"`
		LastModified int64  `json:"last_modified"`
		MimeType     string `json:"mime_type"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	u := userOf(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := lookupDir(u.root, body.Path)
	switch {
	case body.Size == nil || *body.Size < 0 || body.Path == "" || body.PolicyID == "":
		reply(w, CodeBadParams, nil, "Parameter error")
		return
	case !validName(body.Name):
		reply(w, CodeBadName, nil, "Invalid object name")
		return
	case dir == nil:
		reply(w, CodeObjectNotFound, nil, "Parent folder not exist")
		return
	case body.PolicyID != dir.policy.ID:
		reply(w, CodePolicyMismatch, nil, "Policy not match")
		return
	case f.MaxFileSize > 0 && *body.Size > f.MaxFileSize:
		reply(w, CodeTooLarge, nil, "File too large")
		return
	case *body.Size > f.QuotaBytes-f.used(u): // not used+size, which a huge size overflows
		reply(w, CodeNoCapacity, nil, "Insufficient capacity")
		return
	case child(dir, body.Name, false) != nil:
		reply(w, CodeExists, nil, "Object existed")
		return
	}
	for _, s := range f.uploads {
		if !s.done && s.parent == dir && s.name == body.Name && f.now().Before(s.expires) {
			reply(w, CodeUploadExists, nil, "Upload session for this name exists")
			return
		}
	}
	tmp, err := os.CreateTemp(f.dir, "up-*")
	if err != nil {
		reply(w, codeIOFailed, nil, "Failed to create upload session file")
		return
	}
	tmp.Close()
	s := &uploadSession{id: randomID(), owner: u, parent: dir, name: body.Name, size: *body.Size, policy: dir.policy,
		date: time.UnixMilli(body.LastModified), expires: f.now().Add(UploadTTL), file: tmp.Name()}
	if body.LastModified <= 0 {
		s.date = f.now()
	}
	f.uploads[s.id] = s
	data := map[string]any{"sessionID": s.id, "chunkSize": f.ChunkSize, "expires": s.expires.Unix()}
	if dir.policy.Type == "onedrive" {
		data["chunkSize"] = f.onedriveChunk()
		data["uploadURLs"] = []string{f.baseURL + "/onedrive/upload/" + s.id}
	}
	reply(w, CodeOK, data, "")
}

// onedriveChunk is the chunk size for OneDrive sessions: a multiple of
// 320 KiB, as Graph requires.
func (f *Fake) onedriveChunk() int64 {
	const unit = 320 << 10
	return max(unit, f.ChunkSize/unit*unit)
}

// live finds an open session of owner (nil: any owner), or nil (f.mu
// held).
func (f *Fake) live(sid string, owner *user) *uploadSession {
	s, ok := f.uploads[sid]
	if !ok || s.done || !f.now().Before(s.expires) || (owner != nil && s.owner != owner) {
		return nil
	}
	return s
}

// liveUpload finds an open session of owner (nil: any owner), answering
// 40011 when there is none (f.mu held).
func (f *Fake) liveUpload(w http.ResponseWriter, sid string, owner *user) *uploadSession {
	s := f.live(sid, owner)
	if s == nil {
		replySessionGone(w)
	}
	return s
}

func replySessionGone(w http.ResponseWriter) {
	reply(w, CodeSessionGone, nil, "Upload session expired or not exist")
}

// finish creates the uploaded file from the session's temp file, unless
// its folder was removed or the name taken meanwhile (f.mu held).
func (f *Fake) finish(w http.ResponseWriter, s *uploadSession) {
	s.done = true
	if _, ok := f.dirs[s.parent.id]; !ok {
		s.discard()
		reply(w, CodeObjectNotFound, nil, "Parent folder not exist")
		return
	}
	if child(s.parent, s.name, false) != nil {
		s.discard()
		reply(w, CodeExists, nil, "Object existed")
		return
	}
	// A range refused past the end may have left bytes there.
	if err := os.Truncate(s.file, s.size); err != nil {
		s.discard()
		reply(w, codeIOFailed, nil, "Failed to finish the upload")
		return
	}
	b := &blob{file: s.file, size: s.size}
	s.file = "" // the file's now
	n := f.add(s.parent, s.name, false, b)
	n.date = s.date
	reply(w, CodeOK, nil, "")
}

// chunk takes the next chunk of a local-policy session, written to the
// session's temp file outside f.mu (the session's own lock keeps its
// calls in turn). The checks are made before the body is read and again
// after, in the order the server's body-first reading gives: session,
// policy, index, length.
func (f *Fake) chunk(w http.ResponseWriter, r *http.Request) {
	sid, owner := r.PathValue("sid"), userOf(r)
	index, perr := strconv.Atoi(r.PathValue("index"))
	f.mu.Lock()
	s := f.live(sid, owner)
	f.mu.Unlock()
	if s == nil {
		io.Copy(io.Discard, r.Body)
		replySessionGone(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f.mu.Lock()
	var refuse func()
	next := s.next
	switch {
	case f.live(sid, owner) != s:
		refuse = func() { replySessionGone(w) }
	case s.policy.Type != "local":
		refuse = func() { reply(w, CodePolicyMismatch, nil, "Policy not match") }
	case perr != nil || index != next:
		refuse = func() {
			reply(w, CodeChunkOrder, nil, fmt.Sprintf("Chunk index %d out of order, expect %d", index, next))
		}
	}
	want, off, file := min(f.ChunkSize, s.size-s.received), s.received, s.file
	f.mu.Unlock()
	if refuse != nil {
		io.Copy(io.Discard, r.Body)
		refuse()
		return
	}
	body := &bodyReader{r: r.Body}
	got, err := writeAt(file, off, io.LimitReader(body, want))
	if body.err != nil {
		return // the client is gone
	}
	extra, rerr := io.Copy(io.Discard, r.Body) // too long: by how much
	if rerr != nil {
		return
	}
	got += extra
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.live(sid, owner) != s: // cancelled, expired or forgotten meanwhile
		replySessionGone(w)
	case err != nil:
		reply(w, codeIOFailed, nil, "Failed to write the chunk")
	case got != want:
		reply(w, CodeChunkLength, nil, fmt.Sprintf("Chunk size mismatch: want %d, got %d", want, got))
	default:
		s.received += want
		s.next++
		if s.received == s.size {
			f.finish(w, s) // the last chunk completes the file
			return
		}
		reply(w, CodeOK, nil, "")
	}
}

func (f *Fake) cancel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.liveUpload(w, r.PathValue("sid"), userOf(r)); s != nil {
		s.done = true
		s.discard()
		reply(w, CodeOK, nil, "")
	}
}

// onedriveLive finds an open OneDrive session, or nil (f.mu held).
func (f *Fake) onedriveLive(sid string) *uploadSession {
	s, ok := f.uploads[sid]
	if !ok || s.done || s.policy.Type != "onedrive" || !f.now().Before(s.expires) {
		return nil
	}
	return s
}

func onedriveGone(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, `{"error":{"code":"itemNotFound","message":"The upload session was not found"}}`)
}

func onedriveBadRange(w http.ResponseWriter, received int64) {
	w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
	fmt.Fprintf(w, `{"error":{"code":"invalidRange"},"nextExpectedRanges":["%d-"]}`, received)
}

// onedrivePut takes one byte range of an upload session, as Graph does:
// Content-Range "bytes a-b/total", in order, a multiple of 320 KiB but the
// last; 202 until complete, then 201. It needs no cookie: the URL is the
// capability. The bytes go to the session's temp file outside f.mu; the
// checks are made before and again after.
func (f *Fake) onedrivePut(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	s := f.onedriveLive(sid)
	f.mu.Unlock()
	if s == nil {
		io.Copy(io.Discard, r.Body)
		onedriveGone(w)
		return
	}
	if r.Header.Get("Cookie") != "" {
		// Graph is another host: a client sending the Cloudreve cookie there
		// leaks it. Refuse, so tests catch it.
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"invalidRequest","message":"unexpected cookie"}}`)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var a, b, total int64
	_, perr := fmt.Sscanf(r.Header.Get("Content-Range"), "bytes %d-%d/%d", &a, &b, &total)
	n := b - a + 1
	f.mu.Lock()
	live := f.onedriveLive(sid) == s
	received, size, file := s.received, s.size, s.file
	f.mu.Unlock()
	switch {
	case !live:
		io.Copy(io.Discard, r.Body)
		onedriveGone(w)
		return
	case perr != nil || total != size || a != received || n < 0:
		io.Copy(io.Discard, r.Body)
		onedriveBadRange(w, received)
		return
	}
	body := &bodyReader{r: r.Body}
	got, err := writeAt(file, a, io.LimitReader(body, n))
	if body.err != nil {
		return // the client is gone
	}
	extra, rerr := io.Copy(io.Discard, r.Body) // too long: by how much
	if rerr != nil {
		return
	}
	got += extra
	f.mu.Lock()
	defer f.mu.Unlock()
	last := b+1 == s.size
	switch {
	case f.onedriveLive(sid) != s: // expired or forgotten meanwhile
		onedriveGone(w)
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"code":"generalException","message":"write failed"}}`)
	case got != n:
		onedriveBadRange(w, s.received)
	case !last && n%(320<<10) != 0:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"invalidRequest","message":"fragment not a multiple of 320 KiB"}}`)
	case last:
		s.received += n
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"onedrive-item"}`)
	default:
		s.received += n
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"nextExpectedRanges":["%d-"]}`, s.received)
	}
}

// onedriveStatus tells where an upload session stands, as Graph does for
// a GET on the upload URL: the next expected byte.
func (f *Fake) onedriveStatus(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.uploads[r.PathValue("sid")]
	w.Header().Set("Content-Type", "application/json")
	if !ok || s.done || s.policy.Type != "onedrive" || !f.now().Before(s.expires) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"itemNotFound","message":"The upload session was not found"}}`)
		return
	}
	fmt.Fprintf(w, `{"expirationDateTime":%q,"nextExpectedRanges":["%d-"]}`, s.expires.UTC().Format(time.RFC3339), s.received)
}

// onedriveFinish is the callback that makes the file once every byte is
// at OneDrive; a 0-byte file needs no PUT at all.
func (f *Fake) onedriveFinish(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	sid := r.PathValue("sid")
	f.mu.Lock()
	s := f.live(sid, nil)
	f.mu.Unlock()
	if s != nil { // wait for a range being written
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.liveUpload(w, sid, nil) == nil {
		return
	}
	if s.policy.Type != "onedrive" {
		reply(w, CodePolicyMismatch, nil, "Policy not match")
		return
	}
	if s.received != s.size {
		reply(w, CodeBadParams, nil, "Uploaded file size does not match")
		return
	}
	f.finish(w, s)
}

// downloadURL makes a download session, as the server's
// CreateDownloadSession does for the local policy: a random session id
// kept (in the server's cache) for the link's lifetime, and a relative
// URL signed over its path.
func (f *Fake) downloadURL(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.files[r.PathValue("id")]
	if !ok || n.owner != userOf(r) {
		reply(w, CodeNotFound, nil, "File not exist")
		return
	}
	now := f.now()
	for id, s := range f.downloads { // the cache drops them too
		if now.Unix() > s.expires {
			delete(f.downloads, id)
		}
	}
	exp := now.Add(f.Faults.LinkTTL(LinkTTL)).Unix()
	sid := randomRunes(16)
	f.downloads[sid] = &downloadSession{fileID: n.id, expires: exp}
	u, sig := f.signURI("/api/v3/file/download/"+sid, exp)
	sum, _, _ := strings.Cut(sig, ":")
	// The padding-free part is in the link whether its "=" is encoded or not.
	f.secrets = append(f.secrets, strings.TrimRight(sum, "="))
	reply(w, CodeOK, u, "")
}

// serveFile serves a download session's file, as the server does: the
// sign middleware first (40005), then the session (404), then the bytes,
// with Range as http.ServeContent does it (suffix ranges, 416). No cookie.
func (f *Fake) serveFile(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	bad := f.checkSign(r.URL.Path, r.URL.Query().Get("sign"))
	s, known := f.downloads[r.PathValue("sid")]
	var n *node
	if known && f.now().Unix() <= s.expires { // as long as its sign, to the second
		n = f.files[s.fileID]
	}
	var name string
	var fl *os.File
	var size int64
	var err error
	if n != nil && bad == "" { // opened under f.mu: a delete meanwhile does not pull it away
		name, size = n.name, n.blob.size
		fl, err = n.blob.open()
	}
	f.mu.Unlock()
	switch {
	case bad != "":
		reply(w, CodeBadSignature, nil, bad)
	case n == nil:
		reply(w, CodeDownloadGone, nil, "Download session not exist")
	case err != nil:
		reply(w, codeIOFailed, nil, "Failed to open the file")
	default:
		defer fl.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+url.PathEscape(name)+`"`)
		http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(fl, 0, size))
	}
}

// srcList is the {items, dirs} of object calls.
type srcList struct {
	Items []string `json:"items"`
	Dirs  []string `json:"dirs"`
}

// objects resolves ids of u; code is non-zero when one is missing or is
// the root.
func (f *Fake) objects(u *user, s srcList) ([]*node, int) {
	var out []*node
	for _, id := range s.Items {
		n, ok := f.files[id]
		if !ok || n.owner != u {
			return nil, CodeObjectNotFound
		}
		out = append(out, n)
	}
	for _, id := range s.Dirs {
		n, ok := f.dirs[id]
		if !ok || n.owner != u {
			return nil, CodeObjectNotFound
		}
		if n == u.root {
			return nil, CodeRoot
		}
		out = append(out, n)
	}
	return out, 0
}

func (f *Fake) moveOrCopy(w http.ResponseWriter, r *http.Request, isCopy bool) {
	var body struct {
		Action string  `json:"action"`
		SrcDir string  `json:"src_dir"`
		Src    srcList `json:"src"`
		Dst    string  `json:"dst"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	u := userOf(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if (!isCopy && body.Action != "move") || body.SrcDir == "" || body.Dst == "" {
		reply(w, CodeBadParams, nil, "Parameter error")
		return
	}
	objs, code := f.objects(u, body.Src)
	srcDir, dst := lookupDir(u.root, body.SrcDir), lookupDir(u.root, body.Dst)
	switch {
	case code != 0:
		reply(w, code, nil, "Object not exist")
		return
	case srcDir == nil || dst == nil:
		reply(w, CodeObjectNotFound, nil, "Path not exist")
		return
	case len(objs) == 0 || (isCopy && len(objs) != 1):
		reply(w, CodeBadParams, nil, "Only one object can be copied at a time")
		return
	}
	// Like the server's update, scoped by src_dir: objects elsewhere are
	// skipped without a word.
	var act []*node
	for _, n := range objs {
		if n.parent != srcDir {
			continue
		}
		if child(dst, n.name, n.dir) != nil {
			reply(w, CodeExists, nil, "Object existed")
			return
		}
		act = append(act, n)
	}
	for _, n := range act {
		if isCopy {
			f.copyNode(n, dst)
			continue
		}
		// No check for a folder moved into its own descendant, which
		// leaves it unreachable, as on the server.
		detach(n)
		n.parent = dst
		dst.kids = append(dst.kids, n)
		n.date = f.now()
	}
	reply(w, CodeOK, nil, "")
}

func (f *Fake) copyNode(n, dst *node) {
	c := f.add(dst, n.name, n.dir, n.blob)
	if n.dir {
		c.policy = n.policy
		for _, k := range sortedKids(n) {
			f.copyNode(k, c)
		}
	}
}

func (f *Fake) move(w http.ResponseWriter, r *http.Request) { f.moveOrCopy(w, r, false) }
func (f *Fake) copy(w http.ResponseWriter, r *http.Request) { f.moveOrCopy(w, r, true) }

func (f *Fake) rename(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action  string  `json:"action"`
		Src     srcList `json:"src"`
		NewName string  `json:"new_name"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, code := f.objects(userOf(r), body.Src)
	switch {
	case body.Action != "rename" || (code == 0 && len(objs) != 1):
		reply(w, CodeBadParams, nil, "Parameter error")
	case code != 0:
		reply(w, code, nil, "Object not exist")
	case !validName(body.NewName):
		reply(w, CodeBadName, nil, "Invalid object name")
	case child(objs[0].parent, body.NewName, objs[0].dir) != nil:
		reply(w, CodeExists, nil, "Object existed")
	default:
		objs[0].name = body.NewName
		objs[0].date = f.now()
		reply(w, CodeOK, nil, "")
	}
}

func (f *Fake) remove(w http.ResponseWriter, r *http.Request) {
	var body srcList
	if !decodeJSON(w, r, &body) {
		return
	}
	u := userOf(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range body.Dirs {
		if n, ok := f.dirs[id]; ok && n == u.root {
			reply(w, CodeRoot, nil, "Root folder cannot be deleted")
			return
		}
	}
	for _, id := range body.Items {
		if n, ok := f.files[id]; ok && n.owner == u {
			f.drop(n)
		}
	}
	for _, id := range body.Dirs {
		if n, ok := f.dirs[id]; ok && n.owner == u {
			f.drop(n)
		}
	}
	reply(w, CodeOK, nil, "") // missing ids still answer 0
}

// update replaces a file's content with the body, streamed to a new temp
// file first (outside f.mu).
func (f *Fake) update(w http.ResponseWriter, r *http.Request) {
	body := &bodyReader{r: r.Body}
	b, err := f.store(body)
	if body.err != nil {
		return // the client is gone
	}
	u := userOf(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		reply(w, codeIOFailed, nil, "Failed to store the content")
		return
	}
	n, ok := f.files[r.PathValue("id")]
	switch {
	case !ok || n.owner != u:
		os.Remove(b.file)
		reply(w, CodeNotFound, nil, "File not exist")
	case f.used(u)-n.size()+b.size > f.QuotaBytes:
		os.Remove(b.file)
		reply(w, CodeNoCapacity, nil, "Insufficient capacity")
	default:
		f.release(n.blob)
		b.refs = 1
		n.blob, n.date = b, f.now()
		reply(w, CodeOK, nil, "")
	}
}
