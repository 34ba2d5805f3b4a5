package teraboxfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxListNum is the most entries one list page holds.
const MaxListNum = 1000

// inApp resolves a full path inside the app folder (f.mu held). errno is
// -7 for a path outside it, -9 for one that does not exist.
func (f *Fake) inApp(p string) (*node, int) {
	if !strings.HasPrefix(p, "/") {
		return nil, ErrnoBadName
	}
	p = path.Clean(p)
	app := fullPath(f.appRoot)
	if p != app && !strings.HasPrefix(p, app+"/") {
		return nil, ErrnoBadName
	}
	n := lookup(f.appRoot, strings.TrimPrefix(p, app))
	if n == nil {
		return nil, ErrnoNotFound
	}
	return n, 0
}

// newPlace resolves where a new entry at full path p would go: its folder
// and name (f.mu held).
func (f *Fake) newPlace(p string) (*node, string, int) {
	if !strings.HasPrefix(p, "/") || path.Clean(p) == fullPath(f.appRoot) {
		return nil, "", ErrnoBadName
	}
	name := path.Base(path.Clean(p))
	if !validName(name) {
		return nil, "", ErrnoBadName
	}
	dir, errno := f.inApp(path.Dir(path.Clean(p)))
	if errno != 0 {
		return nil, "", errno
	}
	if !dir.dir {
		return nil, "", ErrnoNotFound
	}
	return dir, name, 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// entry is a file or folder as list and filemetas show it.
func (f *Fake) entry(n *node) map[string]any {
	m := map[string]any{"fs_id": n.fsid, "path": fullPath(n), "server_filename": n.name, "isdir": boolInt(n.dir),
		"category": 6, "server_mtime": n.mtime.Unix(), "server_ctime": n.ctime.Unix(), "local_mtime": n.mtime.Unix(),
		"local_ctime": n.ctime.Unix(), "share": 0, "unlist": 0, "owner_type": 0, "oper_id": 0, "size": 0}
	if n.dir {
		m["dir_empty"] = boolInt(len(n.kids) == 0)
	} else {
		m["size"] = n.blob.size
		m["md5"] = scramble(n.blob.md5)
	}
	return m
}

func (f *Fake) uinfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	uk := f.accountOf(r).uk
	f.mu.Unlock()
	apiOK(w, map[string]any{"uk": uk, "uname": "bridge@example.com", "avatar_url": "", "vip_type": 0,
		"use_type": 0, "user_type": 1, "errmsg": ""})
}

func (f *Fake) quota(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	used := f.used()
	f.mu.Unlock()
	apiOK(w, map[string]any{"total": f.QuotaBytes, "used": used})
}

func (f *Fake) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, perr := strconv.Atoi(q.Get("page"))
	num, nerr := strconv.Atoi(q.Get("num"))
	if q.Get("dir") == "" || perr != nil || nerr != nil || page < 1 || num < 1 {
		apiError(w, ErrnoParams, "dir, page (from 1) and num are required")
		return
	}
	num = min(num, MaxListNum)
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, errno := f.inApp(q.Get("dir"))
	if errno != 0 {
		apiError(w, errno, "dir not found or not allowed")
		return
	}
	kids := make([]*node, 0, len(dir.kids))
	for _, k := range dir.kids {
		kids = append(kids, k)
	}
	if !dir.dir {
		kids = append(kids, dir) // a file's path lists the file alone
	}
	less := func(i, j int) bool { return kids[i].name < kids[j].name }
	switch q.Get("order") {
	case "time":
		less = func(i, j int) bool {
			return kids[i].mtime.Before(kids[j].mtime) || (kids[i].mtime.Equal(kids[j].mtime) && kids[i].name < kids[j].name)
		}
	case "size":
		less = func(i, j int) bool {
			return size(kids[i]) < size(kids[j]) || (size(kids[i]) == size(kids[j]) && kids[i].name < kids[j].name)
		}
	}
	sort.Slice(kids, less)
	if q.Get("desc") == "1" {
		for i, j := 0, len(kids)-1; i < j; i, j = i+1, j-1 {
			kids[i], kids[j] = kids[j], kids[i]
		}
	}
	out := []any{}
	for i := (page - 1) * num; i < len(kids) && i < page*num; i++ {
		out = append(out, f.entry(kids[i]))
	}
	apiOK(w, map[string]any{"list": out, "guid_info": "", "guid": 0})
}

func size(n *node) int64 {
	if n.dir {
		return 0
	}
	return n.blob.size
}

func (f *Fake) filemetas(w http.ResponseWriter, r *http.Request) {
	var targets []string
	if err := json.Unmarshal([]byte(r.URL.Query().Get("target")), &targets); err != nil || len(targets) == 0 {
		apiError(w, ErrnoParams, "target must be a JSON array of paths")
		return
	}
	withLink := r.URL.Query().Get("dlink") == "1"
	f.mu.Lock()
	defer f.mu.Unlock()
	info := []any{}
	for _, t := range targets {
		n, errno := f.inApp(t)
		if errno != 0 {
			continue // unknown targets are left out
		}
		m := f.entry(n)
		m["filename"] = n.name
		m["errno"] = 0
		if withLink && !n.dir {
			m["dlink"] = f.dlink(n)
		}
		info = append(info, m)
	}
	apiOK(w, map[string]any{"info": info})
}

// dlink makes a download link (f.mu held); access_tokens must be
// appended to it.
func (f *Fake) dlink(n *node) string { return f.dlinkAs(n, f.UserID, "pr") }

// dlinkAs makes a download link of owner uk's file n, rt "pr" for one's
// own files, "sh" for a share's (f.mu held).
func (f *Fake) dlinkAs(n *node, uk int64, rt string) string {
	ttl := f.Faults.LinkTTL(time.Hour)
	expires := strconv.Itoa(int(ttl/time.Second)) + "s"
	switch {
	case ttl%time.Hour == 0:
		expires = strconv.Itoa(int(ttl/time.Hour)) + "h"
	case ttl%time.Minute == 0:
		expires = strconv.Itoa(int(ttl/time.Minute)) + "m"
	}
	dstime := f.now().Unix()
	sign := f.linkSign(n.fsid, dstime, expires)
	f.secrets = append(f.secrets, sign)
	return fmt.Sprintf("%s/file/%s?fid=%d-250528-%d&rt=%s&sign=%s&expires=%s&chkv=1&chkbd=1&chkpc=&dp-logid=%s&dp-callid=0&dstime=%d&r=%s&vip=2",
		f.baseURL, n.blob.md5, uk, n.fsid, rt, sign, expires, requestID(), dstime, randomHex(4))
}

func (f *Fake) download(w http.ResponseWriter, r *http.Request) {
	var ids []uint64
	if r.URL.Query().Get("type") != "dlink" || json.Unmarshal([]byte(r.URL.Query().Get("fidlist")), &ids) != nil || len(ids) == 0 {
		apiError(w, ErrnoParams, "fidlist (JSON array of fs_id) and type=dlink are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	links := []any{}
	for _, id := range ids {
		n := f.byID[id]
		if n == nil || n.dir || !within(n, f.appRoot) {
			continue
		}
		links = append(links, map[string]any{"fs_id": strconv.FormatUint(id, 10), "dlink": f.dlink(n)})
	}
	apiOK(w, map[string]any{"dlink": links})
}

// serveDlink serves a dlink with access_tokens appended, with Range.
func (f *Fake) serveDlink(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var uk int64
	var fsid uint64
	if _, err := fmt.Sscanf(q.Get("fid"), "%d-250528-%d", &uk, &fsid); err != nil {
		http.Error(w, "bad fid", http.StatusBadRequest)
		return
	}
	dstime, _ := strconv.ParseInt(q.Get("dstime"), 10, 64)
	ttl, err := time.ParseDuration(q.Get("expires"))
	f.mu.Lock()
	good := err == nil && q.Get("sign") == f.linkSign(fsid, dstime, q.Get("expires")) &&
		f.now().Before(time.Unix(dstime, 0).Add(ttl))
	t, known := f.tokens[q.Get("access_tokens")]
	tokenOK := known && f.now().Before(t.expires)
	n := f.byID[fsid]
	var file string
	if n != nil && !n.dir && n.blob.md5 == r.PathValue("md5") {
		file = n.blob.file
	}
	f.mu.Unlock()
	switch {
	case !good:
		http.Error(w, "link expired or sign invalid", http.StatusForbidden)
		return
	case !tokenOK:
		http.Error(w, "access_tokens missing or invalid", http.StatusForbidden)
		return
	case file == "":
		http.Error(w, "file not found", http.StatusNotFound)
		return
	}
	fl, err := os.Open(file)
	if err != nil {
		http.Error(w, "file not found", http.StatusNotFound)
		return
	}
	defer fl.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, fl)
}

// fileOp is one filemanager item.
type fileOp struct {
	Path    string `json:"path"`
	Dest    string `json:"dest"`
	NewName string `json:"newname"`
}

func (f *Fake) filemanager(w http.ResponseWriter, r *http.Request) {
	opera := r.URL.Query().Get("opera")
	async := r.URL.Query().Get("async")
	r.ParseForm()
	raw := r.PostForm.Get("filelist")
	var items []fileOp
	switch opera {
	case "delete":
		var paths []string
		if json.Unmarshal([]byte(raw), &paths) != nil {
			apiError(w, ErrnoParams, "filelist must be a JSON array of paths")
			return
		}
		for _, p := range paths {
			items = append(items, fileOp{Path: p})
		}
	case "copy", "move", "rename":
		if json.Unmarshal([]byte(raw), &items) != nil {
			apiError(w, ErrnoParams, "filelist must be a JSON array of objects")
			return
		}
	default:
		apiError(w, ErrnoParams, "opera must be copy, move, rename or delete")
		return
	}
	if len(items) == 0 {
		apiError(w, ErrnoParams, "filelist is empty")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	info := []any{}
	for _, it := range items {
		errno := f.fileOp(opera, it)
		info = append(info, map[string]any{"errno": errno, "path": it.Path})
	}
	if async == "2" {
		apiOK(w, map[string]any{"info": []any{}, "taskid": requestID()})
		return
	}
	apiOK(w, map[string]any{"info": info})
}

// fileOp runs one filemanager item and returns its errno (f.mu held).
func (f *Fake) fileOp(opera string, it fileOp) int {
	n, errno := f.inApp(it.Path)
	if errno != 0 {
		return errno
	}
	if n == f.appRoot {
		return ErrnoBadName
	}
	if opera == "delete" {
		f.drop(n)
		return 0
	}
	if !validName(it.NewName) {
		return ErrnoBadName
	}
	dest := n.parent
	if opera != "rename" {
		d, errno := f.inApp(it.Dest)
		if errno != 0 {
			return errno
		}
		if !d.dir {
			return ErrnoNotFound
		}
		if n.dir && within(d, n) {
			return ErrnoBadName // into itself
		}
		dest = d
	}
	if other := dest.kids[it.NewName]; other != nil && (opera == "copy" || other != n) {
		return ErrnoExists
	}
	if opera == "copy" {
		f.copyTree(n, dest, it.NewName)
		return 0
	}
	delete(n.parent.kids, n.name)
	n.parent, n.name = dest, it.NewName
	dest.kids[n.name] = n
	return 0
}
