package cloudrevefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const cookieName = "cloudreve-session"

// Handler serves the API under /api/v3, the OneDrive-style upload URLs
// and the signed downloads.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.HandlerFunc) { mux.Handle(pattern, f.counted(name, h)) }
	route("POST /api/v3/user/session", "login", f.login)
	route("POST /api/v3/user/2fa", "2fa", f.twoFactor)
	route("GET /api/v3/user/storage", "storage", f.authed(f.storage))
	route("GET /api/v3/directory", "list", f.authed(f.list))
	route("GET /api/v3/directory/{path...}", "list", f.authed(f.list))
	route("PUT /api/v3/directory", "mkdir", f.authed(f.mkdir))
	route("PUT /api/v3/file/upload", "upload-session", f.authed(f.createUpload))
	route("POST /api/v3/file/upload/{sid}/{index}", "chunk", f.authed(f.chunk))
	route("DELETE /api/v3/file/upload/{sid}", "cancel", f.authed(f.cancel))
	route("PUT /onedrive/upload/{sid}", "onedrive-put", f.onedrivePut)
	route("POST /api/v3/callback/onedrive/finish/{sid}", "onedrive-finish", f.authed(f.onedriveFinish))
	route("PUT /api/v3/file/download/{id}", "download", f.authed(f.downloadURL))
	route("GET /api/v3/file/download/{key}", "dl", f.serveFile)
	route("PATCH /api/v3/object", "move", f.authed(f.move))
	route("POST /api/v3/object/copy", "copy", f.authed(f.copy))
	route("POST /api/v3/object/rename", "rename", f.authed(f.rename))
	route("DELETE /api/v3/object", "delete", f.authed(f.remove))
	route("PUT /api/v3/file/update/{id}", "update", f.authed(f.update))
	return mux
}

func (f *Fake) counted(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[name]++
		var hit *fault
		for _, ft := range f.faults {
			if ft.endpoint == name && ft.count > 0 {
				ft.count--
				hit = ft
				break
			}
		}
		f.mu.Unlock()
		if hit != nil {
			io.Copy(io.Discard, r.Body)
			if hit.status != 0 {
				http.Error(w, "injected failure", hit.status)
			} else {
				reply(w, hit.code, nil, "injected failure")
			}
			return
		}
		h(w, r)
	})
}

// authed requires a logged-in session cookie: {"code":401} otherwise.
func (f *Fake) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		f.mu.Lock()
		ok := err == nil && f.sessions[c.Value]
		f.mu.Unlock()
		if !ok {
			reply(w, CodeLoginRequired, nil, "Login required")
			return
		}
		h(w, r)
	}
}

// decodeJSON reads a JSON body; the server takes JSON only.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		reply(w, CodeBadParams, nil, "JSON body expected")
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		reply(w, CodeBadParams, nil, "Bad request body")
		return false
	}
	return true
}

func (f *Fake) userJSON() map[string]any {
	return map[string]any{"id": "l6hY", "user_name": f.User, "nickname": "bridge", "anonymous": false}
}

func (f *Fake) newCookie(w http.ResponseWriter, pending bool) {
	v := randomID()
	if pending {
		f.pending2FA[v] = true
	} else {
		f.sessions[v] = true
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/", HttpOnly: true, Expires: f.Now().Add(60 * 24 * time.Hour)})
}

func (f *Fake) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserName    string `json:"userName"`
		Password    string `json:"Password"` // capital P, as the server reads it
		CaptchaCode string `json:"captchaCode"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if body.UserName != f.User || body.Password != f.Password {
		reply(w, CodeCredentials, nil, "Wrong password or email address")
		return
	}
	if f.TOTPSecret != "" {
		f.newCookie(w, true)
		reply(w, CodeTwoFactor, nil, "2FA code required")
		return
	}
	f.newCookie(w, false)
	reply(w, CodeOK, f.userJSON(), "")
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
	if err != nil || !f.pending2FA[c.Value] {
		reply(w, CodeLoginRequired, nil, "Login required")
		return
	}
	good, _ := totp.ValidateCustom(body.Code, f.TOTPSecret, f.Now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if !good {
		reply(w, CodeCredentials, nil, "Incorrect 2FA code")
		return
	}
	delete(f.pending2FA, c.Value)
	f.sessions[c.Value] = true
	reply(w, CodeOK, f.userJSON(), "")
}

func (f *Fake) storage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	used := f.used()
	f.mu.Unlock()
	reply(w, CodeOK, map[string]any{"used": used, "free": f.QuotaBytes - used, "total": f.QuotaBytes}, "")
}

func (f *Fake) list(w http.ResponseWriter, r *http.Request) {
	p := "/" + r.PathValue("path")
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.lookupDir(p)
	if dir == nil {
		reply(w, CodeNotFound, nil, "Path not exist")
		return
	}
	objs := []any{}
	for _, k := range sortedKids(dir) {
		objs = append(objs, objectJSON(k))
	}
	reply(w, CodeOK, map[string]any{"parent": dir.id, "objects": objs, "policy": map[string]any{
		"id": dir.policy.ID, "name": dir.policy.Name, "type": dir.policy.Type, "max_size": 0, "file_type": []string{}}}, "")
}

func (f *Fake) mkdir(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Path string `json:"path"`
	}
	if !decodeJSON(w, r, &body) {
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
	f.mkdirAll(body.Path) // mkdir -p: an existing folder is fine
	reply(w, CodeOK, nil, "")
}

func (f *Fake) createUpload(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Path         string `json:"path"`
		Size         int64  `json:"size"`
		Name         string `json:"name"`
		PolicyID     string `json:"policy_id"`
		LastModified int64  `json:"last_modified"`
		MimeType     string `json:"mime_type"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.lookupDir(body.Path)
	switch {
	case !validName(body.Name):
		reply(w, CodeBadName, nil, "Invalid object name")
		return
	case dir == nil:
		reply(w, CodeObjectNotFound, nil, "Parent folder not exist")
		return
	case body.PolicyID != dir.policy.ID:
		reply(w, CodePolicyMismatch, nil, "Policy not match")
		return
	case child(dir, body.Name, false) != nil:
		reply(w, CodeExists, nil, "Object existed")
		return
	case body.Size < 0:
		reply(w, CodeBadParams, nil, "Bad size")
		return
	case f.used()+body.Size > f.QuotaBytes:
		reply(w, CodeNoCapacity, nil, "Insufficient capacity")
		return
	}
	for _, u := range f.uploads {
		if !u.done && u.parent == dir && u.name == body.Name {
			reply(w, CodeUploadExists, nil, "Upload session for this name exists")
			return
		}
	}
	u := &uploadSession{id: randomID(), parent: dir, name: body.Name, size: body.Size, policy: dir.policy,
		date: time.UnixMilli(body.LastModified), expires: f.Now().Add(time.Hour)}
	if body.LastModified <= 0 {
		u.date = f.Now()
	}
	f.uploads[u.id] = u
	data := map[string]any{"sessionID": u.id, "chunkSize": f.ChunkSize, "expires": u.expires.Unix()}
	if dir.policy.Type == "onedrive" {
		data["chunkSize"] = f.onedriveChunk()
		data["uploadURLs"] = []string{f.baseURL + "/onedrive/upload/" + u.id}
	}
	reply(w, CodeOK, data, "")
}

// onedriveChunk is the chunk size for OneDrive sessions: a multiple of
// 320 KiB, as Graph requires.
func (f *Fake) onedriveChunk() int64 {
	const unit = 320 << 10
	return max(unit, f.ChunkSize/unit*unit)
}

func (f *Fake) liveUpload(w http.ResponseWriter, sid string) *uploadSession {
	u, ok := f.uploads[sid]
	if !ok || u.done || f.Now().After(u.expires) {
		reply(w, CodeSessionGone, nil, "Upload session expired or not exist")
		return nil
	}
	return u
}

func (f *Fake) finish(u *uploadSession) *node {
	u.done = true
	n := f.add(u.parent, u.name, false, u.data)
	n.date = u.date
	return n
}

func (f *Fake) chunk(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	index, err := strconv.Atoi(r.PathValue("index"))
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.liveUpload(w, r.PathValue("sid"))
	if u == nil {
		return
	}
	if u.policy.Type != "local" {
		reply(w, CodePolicyMismatch, nil, "Policy not match")
		return
	}
	if err != nil || index != u.next {
		reply(w, CodeChunkOrder, nil, fmt.Sprintf("Chunk index %d out of order, expect %d", index, u.next))
		return
	}
	want := min(f.ChunkSize, u.size-int64(len(u.data)))
	if int64(len(data)) != want {
		reply(w, CodeChunkLength, nil, fmt.Sprintf("Chunk size mismatch: want %d, got %d", want, len(data)))
		return
	}
	u.data = append(u.data, data...)
	u.next++
	if int64(len(u.data)) == u.size {
		f.finish(u) // the last chunk completes the file
	}
	reply(w, CodeOK, nil, "")
}

func (f *Fake) cancel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.liveUpload(w, r.PathValue("sid")); u != nil {
		u.done = true
		reply(w, CodeOK, nil, "")
	}
}

// onedrivePut takes one byte range of an upload session, as Graph does:
// Content-Range "bytes a-b/total", in order, a multiple of 320 KiB but the
// last; 202 until complete, then 201.
func (f *Fake) onedrivePut(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[r.PathValue("sid")]
	if !ok || u.done || u.policy.Type != "onedrive" {
		http.Error(w, `{"error":{"code":"itemNotFound"}}`, http.StatusNotFound)
		return
	}
	var a, b, total int64
	if _, err := fmt.Sscanf(r.Header.Get("Content-Range"), "bytes %d-%d/%d", &a, &b, &total); err != nil ||
		total != u.size || a != u.received || b-a+1 != int64(len(data)) {
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		fmt.Fprintf(w, `{"error":{"code":"invalidRange"},"nextExpectedRanges":["%d-"]}`, u.received)
		return
	}
	last := b+1 == u.size
	if !last && int64(len(data))%(320<<10) != 0 {
		http.Error(w, `{"error":{"code":"invalidRequest","message":"fragment not a multiple of 320 KiB"}}`, http.StatusBadRequest)
		return
	}
	u.data = append(u.data, data...)
	u.received += int64(len(data))
	w.Header().Set("Content-Type", "application/json")
	if last {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"onedrive-item"}`)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"nextExpectedRanges":["%d-"]}`, u.received)
}

func (f *Fake) onedriveFinish(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.liveUpload(w, r.PathValue("sid"))
	if u == nil {
		return
	}
	if u.received != u.size {
		reply(w, CodeBadParams, nil, "Upload not complete")
		return
	}
	f.finish(u)
	reply(w, CodeOK, nil, "")
}

func (f *Fake) downloadURL(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.byID["f:"+r.PathValue("id")]
	if !ok {
		reply(w, CodeNotFound, nil, "File not exist")
		return
	}
	exp := f.Now().Add(600 * time.Second).Unix()
	k := n.id + "." + strconv.FormatInt(exp, 10)
	reply(w, CodeOK, "/api/v3/file/download/"+k+"?sign="+f.sign(k, exp), "")
}

func (f *Fake) serveFile(w http.ResponseWriter, r *http.Request) {
	k := r.PathValue("key")
	id, expText, _ := strings.Cut(k, ".")
	exp, _ := strconv.ParseInt(expText, 10, 64)
	f.mu.Lock()
	n, ok := f.byID["f:"+id]
	good := ok && r.URL.Query().Get("sign") == f.sign(k, exp) && f.Now().Unix() <= exp
	var content []byte
	if ok {
		content = n.content
	}
	f.mu.Unlock()
	if !good {
		reply(w, CodeCredentials, nil, "Signature expired or invalid")
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

// srcList is the {items, dirs} of object calls.
type srcList struct {
	Items []string `json:"items"`
	Dirs  []string `json:"dirs"`
}

func (f *Fake) objects(s srcList) ([]*node, bool) {
	var out []*node
	for _, id := range s.Items {
		n, ok := f.byID["f:"+id]
		if !ok {
			return nil, false
		}
		out = append(out, n)
	}
	for _, id := range s.Dirs {
		n, ok := f.byID["d:"+id]
		if !ok || n == f.root {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
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
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects(body.Src)
	srcDir, dst := f.lookupDir(body.SrcDir), f.lookupDir(body.Dst)
	if !ok || srcDir == nil || dst == nil || len(objs) == 0 {
		reply(w, CodeObjectNotFound, nil, "Object not exist")
		return
	}
	if isCopy && len(objs) != 1 {
		reply(w, CodeBadParams, nil, "Only one object can be copied at a time")
		return
	}
	for _, n := range objs {
		if n.parent != srcDir {
			reply(w, CodeObjectNotFound, nil, "Object not exist in src_dir")
			return
		}
		if child(dst, n.name, n.dir) != nil {
			reply(w, CodeExists, nil, "Object existed")
			return
		}
	}
	for _, n := range objs {
		if isCopy {
			f.copyNode(n, dst)
			continue
		}
		// Like the real server: no check for a folder moved into its own
		// descendant, which leaves it unreachable.
		for i, k := range n.parent.kids {
			if k == n {
				n.parent.kids = append(n.parent.kids[:i], n.parent.kids[i+1:]...)
				break
			}
		}
		n.parent = dst
		dst.kids = append(dst.kids, n)
		n.date = f.Now()
	}
	reply(w, CodeOK, nil, "")
}

func (f *Fake) copyNode(n, dst *node) {
	c := f.add(dst, n.name, n.dir, n.content)
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
	objs, ok := f.objects(body.Src)
	switch {
	case body.Action != "rename" || !ok || len(objs) != 1:
		reply(w, CodeObjectNotFound, nil, "Object not exist")
	case !validName(body.NewName):
		reply(w, CodeBadName, nil, "Invalid object name")
	case child(objs[0].parent, body.NewName, objs[0].dir) != nil:
		reply(w, CodeExists, nil, "Object existed")
	default:
		objs[0].name = body.NewName
		objs[0].date = f.Now()
		reply(w, CodeOK, nil, "")
	}
}

func (f *Fake) remove(w http.ResponseWriter, r *http.Request) {
	var body srcList
	if !decodeJSON(w, r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range body.Items {
		if n, ok := f.byID["f:"+id]; ok {
			f.drop(n)
		}
	}
	for _, id := range body.Dirs {
		if n, ok := f.byID["d:"+id]; ok && n != f.root {
			f.drop(n)
		}
	}
	reply(w, CodeOK, nil, "") // missing ids still answer 0
}

func (f *Fake) update(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.byID["f:"+r.PathValue("id")]
	if !ok {
		reply(w, CodeNotFound, nil, "File not exist")
		return
	}
	n.content, n.date = data, f.Now()
	reply(w, CodeOK, nil, "")
}
