package gokuaifake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"bridge/tests/fakes/faults"
)

// Upload server prefixes: create_file hands out both, comma-separated.
var upPrefixes = []string{"/up", "/up-b"}

// Handler serves the m-api, the upload servers and the download links,
// each endpoint through the fault layer, and POST /__restart.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, kind faults.Kind, h http.HandlerFunc) {
		mux.Handle(pattern, f.Faults.Route(name, kind, h))
	}
	route("POST /m-api/oauth2/token2", "token", faults.Auth, f.token)
	route("GET /m-api/1/account/mount", "mount", faults.API, f.api(f.mounts))
	route("GET /m-api/1/file/ls", "ls", faults.API, f.api(f.ls))
	route("GET /m-api/2/file/info", "info", faults.API, f.api(f.info))
	route("GET /m-api/2/file/open", "download", faults.API, f.api(f.open))
	route("GET /dl/{blob}/{name}", "dl", faults.Download, f.serveLink)
	route("POST /m-api/2/file/create_folder", "create_folder", faults.API, f.api(f.createFolder))
	route("POST /m-api/2/file/create_file", "create_file", faults.API, f.api(f.createFile))
	route("GET /m-api/1/file/upload_server", "upload_server", faults.API, f.api(f.uploadServer))
	route("POST /m-api/1/file/copy", "copy", faults.API, f.api(f.copy))
	route("POST /m-api/1/file/move", "move", faults.API, f.api(f.move))
	route("POST /m-api/1/file/rename", "rename", faults.API, f.api(f.rename))
	route("POST /m-api/1/file/del", "del", faults.API, f.api(f.del))
	route("GET /m-api/2/file/search", "search", faults.API, f.api(f.search))
	for _, p := range upPrefixes {
		route("POST "+p+"/2/web_upload", "web_upload", faults.Upload, f.webUpload)
		route("POST "+p+"/upload_init", "upload_init", faults.API, f.upAuthed(f.uploadInit))
		route("PUT "+p+"/upload_part", "upload_part", faults.Upload, f.upAuthed(f.uploadPart))
		route("GET "+p+"/upload_req", "upload_req", faults.API, f.upAuthed(f.uploadReq))
		route("POST "+p+"/upload_finish", "upload_finish", faults.API, f.upAuthed(f.uploadFinish))
		route("POST "+p+"/upload_abort", "upload_abort", faults.API, f.upAuthed(f.uploadAbort))
	}
	inner := f.Faults.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server's own clock, for clients telling clock skew.
		w.Header().Set("Date", f.now().UTC().Format(http.TimeFormat))
		inner.ServeHTTP(w, r)
	})
}

// writeFault writes the layer's made-up failures in the provider's shapes.
func (f *Fake) writeFault(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/m-api/oauth2/"):
		code := "temporarily_unavailable"
		if status == http.StatusTooManyRequests {
			code = "slow_down"
		}
		writeJSON(w, status, map[string]any{"error": code, "error_description": msg})
	case strings.HasPrefix(r.URL.Path, "/dl/"):
		http.Error(w, msg, status)
	default:
		writeJSON(w, status, map[string]any{"error_code": status*100 + 1, "error_msg": msg})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// apiError answers {error_code, error_msg} with the code's HTTP class.
func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code/100, map[string]any{"error_code": code, "error_msg": msg})
}

// ok200 is the empty HTTP 200 of copy, move, rename and del.
func ok200(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }

// params are a call's parameters: the query of a GET, the form body of a
// POST (a POST's query string is ignored).
func params(r *http.Request) url.Values {
	if r.Method == http.MethodGet {
		return r.URL.Query()
	}
	r.ParseForm()
	return r.PostForm
}

// tokenOK checks an access token; it returns an error code or 0.
func (f *Fake) tokenOK(access string) (int, string) {
	if access == "" {
		return CodeBadParam, "token is required"
	}
	t, ok := f.tokens[access]
	if !ok {
		return CodeBadToken, "invalid token"
	}
	if !f.now().Before(t.expires) {
		return CodeTokenExpired, "token expired"
	}
	return 0, ""
}

// api checks the signature, the dateline and the token, then runs h with
// the call's parameters.
func (f *Fake) api(h func(w http.ResponseWriter, r *http.Request, p url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := params(r)
		if code, msg := f.checkSigned(p); code != 0 {
			apiError(w, code, msg)
			return
		}
		f.mu.Lock()
		code, msg := f.tokenOK(p.Get("token"))
		f.mu.Unlock()
		if code != 0 {
			apiError(w, code, msg)
			return
		}
		h(w, r, p)
	}
}

// Token endpoint.

func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	p := params(r)
	oauthErr := func(status int, code, msg string) {
		writeJSON(w, status, map[string]any{"error": code, "error_description": msg})
	}
	switch code, msg := f.checkSigned(p); code {
	case 0:
	case CodeBadSign:
		oauthErr(http.StatusUnauthorized, "invalid_sign", msg)
		return
	case CodeStaleDateline:
		oauthErr(http.StatusUnauthorized, "invalid_dateline", msg)
		return
	default:
		oauthErr(http.StatusBadRequest, "invalid_request", msg)
		return
	}
	if p.Get("client_id") != f.ClientID {
		oauthErr(http.StatusBadRequest, "invalid_client", "unknown client_id")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	grant := p.Get("grant_type")
	switch grant {
	case "password":
		if p.Get("username") != f.Username || p.Get("password") != md5hex(f.Password) {
			oauthErr(http.StatusBadRequest, "invalid_grant", "wrong username or password")
			return
		}
	case "refresh_token":
		old, ok := f.refresh[p.Get("refresh_token")]
		if !ok || old.used {
			oauthErr(http.StatusBadRequest, "invalid_grant", "refresh token invalid or used")
			return
		}
		delete(f.refresh, old.refresh)
		if !old.refreshExpires.IsZero() && !f.now().Before(old.refreshExpires) {
			oauthErr(http.StatusBadRequest, "invalid_grant", "refresh token expired")
			return
		}
		old.used = true
		delete(f.tokens, old.access)
	default:
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token")
		return
	}
	t := f.issue()
	f.grants[grant]++
	writeJSON(w, http.StatusOK, map[string]any{"access_token": t.access, "refresh_token": t.refresh,
		"expires_in": int(t.expires.Sub(f.now()) / time.Second)})
}

// Libraries.

func (f *Fake) mounts(w http.ResponseWriter, r *http.Request, p url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []any{}
	for _, l := range f.libs {
		list = append(list, map[string]any{"ent_id": l.entID, "org_id": l.orgID, "org_name": l.name,
			"mount_id": l.mountID, "org_type": l.orgType, "member_count": 1, "owner_member_id": 2,
			"org_logo_url": "", "size_org_total": l.total, "size_org_use": used(l),
			"storage_point": "", "storage_ethernet": 1})
	}
	writeJSON(w, http.StatusOK, map[string]any{"list": list})
}

// library reads mount_id; it answers the error itself and returns nil.
func (f *Fake) library(w http.ResponseWriter, p url.Values, key string) *library {
	id, err := strconv.Atoi(p.Get(key))
	if err != nil {
		apiError(w, CodeBadParam, key+" is required")
		return nil
	}
	lib := f.libByMount(id)
	if lib == nil {
		apiError(w, CodeNoLibrary, "library not found")
	}
	return lib
}

// target resolves mount_id plus fullpath or hash to an existing node.
func (f *Fake) target(w http.ResponseWriter, p url.Values) *node {
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return nil
	}
	if h := p.Get("hash"); h != "" {
		n := f.byHash[h]
		if n == nil || n.lib != lib {
			apiError(w, CodeNotFound, "file not found")
			return nil
		}
		return n
	}
	n := lookup(lib, p.Get("fullpath"))
	if n == nil {
		apiError(w, CodeNotFound, "file not found")
	}
	return n
}

func entryJSON(n *node, info bool) map[string]any {
	e := map[string]any{"hash": n.hash, "mount_id": n.lib.mountID, "dir": 0, "fullpath": fullpathOf(n),
		"filename": n.name, "filehash": "", "filesize": 0, "create_member_name": "我", "last_member_name": "我",
		"create_dateline": n.created.Unix(), "last_dateline": n.modified.Unix(), "lock": 0}
	if n.dir {
		e["dir"] = 1
	} else {
		e["filehash"], e["filesize"] = n.blob.sha1, n.blob.size
	}
	if info { // as documented, info's member ids are numbers, ls's strings
		e["create_member_id"], e["last_member_id"] = 1, 1
		if !n.dir {
			e["preview"], e["thumbnail"] = "", ""
		}
	} else {
		e["create_member_id"], e["last_member_id"] = "1", "1"
		e["thumbnail"] = ""
	}
	return e
}

func intParam(p url.Values, key string, def int) (int, bool) {
	v := p.Get(key)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

func (f *Fake) ls(w http.ResponseWriter, r *http.Request, p url.Values) {
	start, ok1 := intParam(p, "start", 0)
	size, ok2 := intParam(p, "size", 100)
	if !ok1 || !ok2 {
		apiError(w, CodeBadParam, "start and size must be numbers")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	full := p.Get("fullpath")
	if full != "" && !validPath(full) {
		apiError(w, CodeNotFound, "folder not found") // no way out of the library
		return
	}
	var kids []*node
	for _, k := range listed(lookup(lib, full)) {
		if p.Get("dir") != "1" || k.dir {
			kids = append(kids, k)
		}
	}
	switch p.Get("order") {
	case "filename":
		sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
	case "filesize":
		sort.Slice(kids, func(i, j int) bool {
			return sizeOf(kids[i]) < sizeOf(kids[j]) || (sizeOf(kids[i]) == sizeOf(kids[j]) && kids[i].name < kids[j].name)
		})
	default:
		sort.Slice(kids, func(i, j int) bool {
			if !kids[i].modified.Equal(kids[j].modified) {
				return kids[i].modified.After(kids[j].modified)
			}
			return kids[i].name < kids[j].name
		})
	}
	size = min(size, f.PageMax)
	list := []any{}
	for i := start; i < len(kids) && i < start+size; i++ {
		list = append(list, entryJSON(kids[i], false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(kids), "list": list})
}

// listed is what file/ls shows for the node at a fullpath. The document
// does not say what a path that is not a folder gives; the fake answers
// the harshest reading: nothing lists as an empty folder, and a file's
// path as that file alone.
func listed(n *node) []*node {
	switch {
	case n == nil:
		return nil
	case !n.dir:
		return []*node{n}
	}
	kids := make([]*node, 0, len(n.kids))
	for _, k := range n.kids {
		kids = append(kids, k)
	}
	return kids
}

func sizeOf(n *node) int64 {
	if n.blob == nil {
		return 0
	}
	return n.blob.size
}

func (f *Fake) info(w http.ResponseWriter, r *http.Request, p url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.target(w, p); n != nil {
		writeJSON(w, http.StatusOK, entryJSON(n, true))
	}
}

// Downloads.

func (f *Fake) linkSig(blobKey string, exp int64) string {
	m := hmac.New(sha256.New, f.linkKey)
	fmt.Fprintf(m, "%s|%d", blobKey, exp)
	return hex.EncodeToString(m.Sum(nil))
}

func (f *Fake) open(w http.ResponseWriter, r *http.Request, p url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.target(w, p)
	if n == nil {
		return
	}
	if n.dir {
		apiError(w, CodeBadParam, "a folder has no download address")
		return
	}
	key := fmt.Sprintf("%s:%d", n.blob.sha1, n.blob.size)
	exp := f.now().Add(f.Faults.LinkTTL(LinkTTL)).Unix()
	sig := f.linkSig(key, exp)
	f.secrets = append(f.secrets, sig)
	u := fmt.Sprintf("%s/dl/%s/%s?e=%d&s=%s", f.baseURL, key, url.PathEscape(n.name), exp, sig)
	writeJSON(w, http.StatusOK, map[string]any{"hash": n.hash, "filehash": n.blob.sha1,
		"filesize": strconv.FormatInt(n.blob.size, 10), "lock": 0, "uris": []string{u}})
}

func (f *Fake) serveLink(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("blob")
	exp, _ := strconv.ParseInt(r.URL.Query().Get("e"), 10, 64)
	f.mu.Lock()
	good := hmac.Equal([]byte(r.URL.Query().Get("s")), []byte(f.linkSig(key, exp))) && f.now().Unix() <= exp
	b := f.blobs[key]
	f.mu.Unlock()
	if !good || b == nil {
		apiError(w, 40303, "download address expired or invalid")
		return
	}
	file, err := os.Open(b.file)
	if err != nil {
		apiError(w, CodeNotFound, "file not found")
		return
	}
	defer file.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, file)
}

// Folders.

// parentFor resolves the parent folder of fullpath for a new entry and
// checks the name; it answers the error itself and returns nil.
func parentFor(w http.ResponseWriter, lib *library, fullpath string) (*node, string) {
	if fullpath == "" || !validPath(fullpath) {
		apiError(w, CodeBadParam, "fullpath is invalid")
		return nil, ""
	}
	name := path.Base(fullpath)
	if !validName(name) {
		apiError(w, CodeBadName, "invalid file name")
		return nil, ""
	}
	dirPath := path.Dir(fullpath)
	if dirPath == "." {
		dirPath = ""
	}
	parent := lookup(lib, dirPath)
	if parent == nil || !parent.dir {
		apiError(w, CodeNotFound, "parent folder not found")
		return nil, ""
	}
	return parent, name
}

func (f *Fake) createFolder(w http.ResponseWriter, r *http.Request, p url.Values) {
	overwrite := p.Get("overwrite") != "0" // default 1
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	parent, name := parentFor(w, lib, p.Get("fullpath"))
	if parent == nil {
		return
	}
	if ex, taken := parent.kids[name]; taken {
		switch {
		case ex.dir && overwrite:
			writeJSON(w, http.StatusOK, map[string]any{"hash": ex.hash, "fullpath": fullpathOf(ex)})
			return
		case overwrite:
			apiError(w, CodeExists, "a file has this name")
			return
		}
		name = twinName(parent, name)
		f.twins = append(f.twins, lib.name+"/"+path.Join(fullpathOf(parent), name))
	}
	n := f.newNode(parent, name, true, nil)
	writeJSON(w, http.StatusOK, map[string]any{"hash": n.hash, "fullpath": fullpathOf(n)})
}

// Uploads.

func isSHA1(s string) bool {
	if len(s) != 40 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// place stores content b at fullpath: overwrite replaces a file of that
// name (keeping its hash), otherwise the newcomer is renamed. hash, when
// set, is the new node's id. It returns the node, or an error code.
func (f *Fake) place(lib *library, fullpath string, b *blob, overwrite bool, hash string) (*node, int, string) {
	dirPath := path.Dir(fullpath)
	if dirPath == "." {
		dirPath = ""
	}
	parent := lookup(lib, dirPath)
	if parent == nil || !parent.dir {
		return nil, CodeNotFound, "parent folder not found"
	}
	name := path.Base(fullpath)
	if ex, taken := parent.kids[name]; taken {
		switch {
		case ex.dir:
			return nil, CodeExists, "a folder has this name"
		case overwrite:
			ex.blob, ex.modified = b, f.now()
			return ex, 0, ""
		}
		name = twinName(parent, name)
		f.twins = append(f.twins, lib.name+"/"+path.Join(fullpathOf(parent), name))
	}
	n := f.newNode(parent, name, false, b)
	if hash != "" && f.byHash[hash] == nil {
		delete(f.byHash, n.hash)
		n.hash = hash
		f.byHash[hash] = n
	}
	return n, 0, ""
}

// serverList is the upload servers, as create_file and upload_server
// hand them out: without a scheme when the fake is plain http.
func (f *Fake) serverList() string {
	base := f.baseURL
	if strings.HasPrefix(base, "http://") {
		base = strings.TrimPrefix(base, "http://")
	}
	var out []string
	for _, p := range upPrefixes {
		out = append(out, base+p)
	}
	return strings.Join(out, ",")
}

func (f *Fake) createFile(w http.ResponseWriter, r *http.Request, p url.Values) {
	sum := p.Get("filehash")
	size, err := strconv.ParseInt(p.Get("filesize"), 10, 64)
	if !isSHA1(sum) || err != nil || size < 0 {
		apiError(w, CodeBadParam, "filehash (40 lowercase hex) and filesize are required")
		return
	}
	overwrite := p.Get("overwrite") == "1" // default 0
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	fullpath := p.Get("fullpath")
	parent, name := parentFor(w, lib, fullpath)
	if parent == nil {
		return
	}
	if ex, taken := parent.kids[name]; taken && ex.dir {
		apiError(w, CodeExists, "a folder has this name")
		return
	}
	if lib.total >= 0 && used(lib)+size > lib.total {
		apiError(w, CodeQuota, "library is full")
		return
	}
	if b := f.knownBlob(sum, size); b != nil {
		n, code, msg := f.place(lib, fullpath, b, overwrite, "")
		if code != 0 {
			apiError(w, code, msg)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"state": 1, "hash": n.hash, "fullpath": fullpathOf(n), "server": ""})
		return
	}
	pd := &pending{hash: randomHex(20), lib: lib, fullpath: fullpath, filehash: sum, size: size,
		overwrite: overwrite, expires: f.now().Add(PendingTTL)}
	f.pending[pd.hash] = pd
	writeJSON(w, http.StatusOK, map[string]any{"state": 0, "hash": pd.hash, "fullpath": fullpath, "server": f.serverList()})
}

func (f *Fake) uploadServer(w http.ResponseWriter, r *http.Request, p url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.library(w, p, "mount_id") == nil {
		return
	}
	if p.Get("fullpath") == "" {
		apiError(w, CodeBadParam, "fullpath is required")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": f.serverList()})
}

// Copy, move, rename, delete.

// sources resolves fullpath or fullpaths ("|"-separated) in lib.
func sources(w http.ResponseWriter, lib *library, p url.Values) []*node {
	var paths []string
	switch {
	case p.Get("fullpaths") != "":
		paths = strings.Split(p.Get("fullpaths"), "|")
	case p.Get("fullpath") != "":
		paths = []string{p.Get("fullpath")}
	default:
		apiError(w, CodeBadParam, "fullpath or fullpaths is required")
		return nil
	}
	var out []*node
	for _, fp := range paths {
		if fp == "" {
			apiError(w, CodeLibraryRoot, "the library root cannot be changed")
			return nil
		}
		n := lookup(lib, fp)
		if n == nil {
			apiError(w, CodeNotFound, "file not found: "+fp)
			return nil
		}
		out = append(out, n)
	}
	return out
}

// targetDir reads target_fullpath (required, "" is the root).
func targetDir(w http.ResponseWriter, lib *library, p url.Values) *node {
	if _, given := p["target_fullpath"]; !given {
		apiError(w, CodeBadParam, "target_fullpath is required")
		return nil
	}
	dst := lookup(lib, p.Get("target_fullpath"))
	if dst == nil || !dst.dir {
		apiError(w, CodeNotFound, "target folder not found")
		return nil
	}
	return dst
}

func (f *Fake) copy(w http.ResponseWriter, r *http.Request, p url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	dstLib := lib
	if p.Get("target_mount_id") != "" {
		if dstLib = f.library(w, p, "target_mount_id"); dstLib == nil {
			return
		}
	}
	srcs := sources(w, lib, p)
	if srcs == nil {
		return
	}
	dst := targetDir(w, dstLib, p)
	if dst == nil {
		return
	}
	overwrite := p.Get("overwrite") == "1"
	var size int64
	for _, n := range srcs {
		if ex, taken := dst.kids[n.name]; taken && (n.dir || ex.dir || !overwrite || ex == n) {
			apiError(w, CodeExists, "name taken in the target folder: "+n.name)
			return
		}
		if n.dir && within(dst, n) {
			apiError(w, CodeBadParam, "cannot copy a folder into itself")
			return
		}
		size += treeSize(n)
	}
	if dstLib.total >= 0 && used(dstLib)+size > dstLib.total {
		apiError(w, CodeQuota, "library is full")
		return
	}
	for _, n := range srcs {
		if ex, taken := dst.kids[n.name]; taken {
			f.drop(ex) // overwrite=1 over a file
		}
		f.copyNode(n, dst)
		if p.Get("delete_from") == "1" {
			f.drop(n)
		}
	}
	ok200(w)
}

func treeSize(n *node) int64 {
	total := sizeOf(n)
	for _, k := range n.kids {
		total += treeSize(k)
	}
	return total
}

func (f *Fake) copyNode(n, dst *node) {
	c := f.newNode(dst, n.name, n.dir, n.blob)
	c.modified = n.modified
	for _, k := range n.kids {
		f.copyNode(k, c)
	}
}

func (f *Fake) move(w http.ResponseWriter, r *http.Request, p url.Values) {
	if p.Get("target_mount_id") != "" {
		apiError(w, CodeBadParam, "move works inside a library only; use copy with delete_from")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	srcs := sources(w, lib, p)
	if srcs == nil {
		return
	}
	dst := targetDir(w, lib, p)
	if dst == nil {
		return
	}
	for _, n := range srcs {
		if ex, taken := dst.kids[n.name]; taken && ex != n {
			apiError(w, CodeExists, "name taken in the target folder: "+n.name)
			return
		}
		if n.dir && within(dst, n) {
			apiError(w, CodeBadParam, "cannot move a folder into itself")
			return
		}
	}
	now := f.now()
	for _, n := range srcs {
		delete(n.parent.kids, n.name)
		n.parent.modified = now
		n.parent = dst
		dst.kids[n.name] = n
		dst.modified = now
	}
	ok200(w)
}

func (f *Fake) rename(w http.ResponseWriter, r *http.Request, p url.Values) {
	name := p.Get("newname")
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	srcs := sources(w, lib, url.Values{"fullpath": {p.Get("fullpath")}})
	if srcs == nil {
		return
	}
	n := srcs[0]
	if !validName(name) {
		apiError(w, CodeBadName, "invalid file name")
		return
	}
	if ex, taken := n.parent.kids[name]; taken && ex != n {
		apiError(w, CodeExists, "name taken")
		return
	}
	delete(n.parent.kids, n.name)
	n.name = name
	n.parent.kids[name] = n
	n.parent.modified = f.now()
	ok200(w)
}

func (f *Fake) del(w http.ResponseWriter, r *http.Request, p url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.library(w, p, "mount_id")
	if lib == nil {
		return
	}
	srcs := sources(w, lib, p)
	for _, n := range srcs {
		f.drop(n)
	}
	if srcs != nil {
		ok200(w)
	}
}

func (f *Fake) search(w http.ResponseWriter, r *http.Request, p url.Values) {
	keyword := p.Get("keyword")
	start, ok1 := intParam(p, "start", 0)
	size, ok2 := intParam(p, "size", 100)
	if keyword == "" || !ok1 || !ok2 {
		apiError(w, CodeBadParam, "keyword is required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var libs []*library
	if id, _ := strconv.Atoi(p.Get("mount_id")); id == 0 {
		libs = f.libs
	} else if lib := f.library(w, p, "mount_id"); lib != nil {
		libs = []*library{lib}
	} else {
		return
	}
	var hits []*node
	var walk func(n *node)
	walk = func(n *node) {
		if n.parent != nil && strings.Contains(strings.ToLower(n.name), strings.ToLower(keyword)) {
			hits = append(hits, n)
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	for _, l := range libs {
		base := lookup(l, p.Get("fullpath"))
		if base == nil {
			apiError(w, CodeNotFound, "folder not found")
			return
		}
		walk(base)
	}
	sort.Slice(hits, func(i, j int) bool { return fullpathOf(hits[i]) < fullpathOf(hits[j]) })
	list := []any{}
	for i := start; i < len(hits) && i < start+min(size, f.PageMax); i++ {
		list = append(list, entryJSON(hits[i], false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(hits), "list": list})
}

// upAuthed checks the upload server's x-gk-token header.
func (f *Fake) upAuthed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		code, msg := f.tokenOK(r.Header.Get("x-gk-token"))
		f.mu.Unlock()
		if code != 0 {
			io.Copy(io.Discard, r.Body)
			apiError(w, code, msg)
			return
		}
		h(w, r)
	}
}
