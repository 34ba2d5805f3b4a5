package teraboxfake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"bridge/tests/fakes/faults"
)

// shareRoutes adds the share endpoints (section 3.5), on the API host,
// open to every account's token.
func (f *Fake) shareRoutes(route router) {
	route("POST /openapi/share/verify", "verify", faults.API, apiHost, f.anyAccount(f.shareVerify))
	route("GET /openapi/api/shorturlinfo", "shorturlinfo", faults.API, apiHost, f.anyAccount(f.shortURLInfo))
	route("GET /openapi/share/list", "sharelist", faults.API, apiHost, f.anyAccount(f.shareList))
	route("GET /openapi/share/download", "sharedownload", faults.API, apiHost, f.anyAccount(f.shareDownload))
	route("POST /openapi/share/transfer", "transfer", faults.API, apiHost, f.anyAccount(f.shareTransfer))
	route("GET /openapi/share/taskquery", "taskquery", faults.API, apiHost, f.anyAccount(f.taskQuery))
}

// liveShare finds a live share by its surl, or answers 105 itself (f.mu
// held).
func (f *Fake) liveShare(w http.ResponseWriter, surl string) *share {
	f.sh.init()
	sh := f.sh.byCode[surl]
	if surl == "" || !f.alive(sh) {
		apiError(w, ErrnoShareLink, "external link error: the link does not exist, was cancelled or has expired")
		return nil
	}
	return sh
}

// keyed checks a share call's sekey and answers -9 itself (f.mu held).
func (f *Fake) keyed(w http.ResponseWriter, sh *share, sekey string) bool {
	if !f.keyOK(sh, sekey) {
		apiError(w, ErrnoShareKey, "sekey (spd) missing, incorrect or expired: verify the extraction code again")
		return false
	}
	return true
}

func (f *Fake) shareVerify(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	surl := r.URL.Query().Get("surl")
	if surl == "" {
		apiError(w, ErrnoParams, "surl is required")
		return
	}
	pwd, given := r.PostForm["pwd"]
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := f.liveShare(w, surl)
	if sh == nil {
		return
	}
	code := ""
	if given {
		code = pwd[0]
	}
	if (code != "" && !pwdFormat.MatchString(code)) || code != sh.pwd {
		apiError(w, ErrnoShareCode, "error in extraction code")
		return
	}
	key := url.QueryEscape(f.newShareKey(sh))
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: key, Path: "/", HttpOnly: true})
	apiOK(w, map[string]any{"randsk": key, "show_msg": "Request Success"})
}

// shareEntry is a shared file or folder as the share calls show it;
// asText gives every number as a string (shorturlinfo, sharedownload).
func (f *Fake) shareEntry(n *node, asText bool) map[string]any {
	m := f.entry(n)
	delete(m, "dir_empty")
	delete(m, "unlist")
	delete(m, "owner_type")
	delete(m, "oper_id")
	m["thumbs"] = map[string]any{}
	if asText {
		for k, v := range m {
			switch x := v.(type) {
			case int:
				m[k] = strconv.Itoa(x)
			case int64:
				m[k] = strconv.FormatInt(x, 10)
			case uint64:
				m[k] = strconv.FormatUint(x, 10)
			}
		}
		m["dlink"] = ""
	}
	return m
}

func (f *Fake) shortURLInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	short := q.Get("shorturl")
	if short == "" || q.Get("root") != "1" {
		apiError(w, ErrnoParams, "shorturl and root=1 are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	surl := ""
	if short[0] == '1' {
		surl = short[1:] // shorturlinfo takes what follows "/s/"
	}
	sh := f.liveShare(w, surl)
	if sh == nil || !f.keyed(w, sh, q.Get("spd")) {
		return
	}
	list := []any{}
	for _, n := range f.liveItems(sh) {
		list = append(list, f.shareEntry(n, true))
	}
	apiOK(w, map[string]any{"shareid": sh.id, "uk": sh.owner.uk, "uk_str": strconv.FormatInt(sh.owner.uk, 10),
		"dir": "", "type": 0, "page": 1, "root": 1, "fcount": len(list), "list": list, "share_username": "fr***nd",
		"ctime": sh.made.Unix(), "timestamp": f.now().Unix(), "expiredtype": 0, "country": "JP", "head_url": ""})
}

func (f *Fake) shareList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, perr := strconv.Atoi(q.Get("page"))
	num, nerr := strconv.Atoi(q.Get("num"))
	root := q.Get("root") == "1"
	if q.Get("shorturl") == "" || perr != nil || nerr != nil || page < 1 || num < 1 || (!root && q.Get("dir") == "") {
		apiError(w, ErrnoParams, "shorturl, page (from 1), num and root=1 or dir are required")
		return
	}
	order, by := q.Get("order"), q.Get("by")
	if (order != "" && order != "asc" && order != "desc") || (by != "" && by != "name" && by != "time" && by != "size") {
		apiError(w, ErrnoParams, "order is asc or desc, by is name, time or size")
		return
	}
	num = min(num, MaxListNum)
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := f.liveShare(w, q.Get("shorturl"))
	if sh == nil || !f.keyed(w, sh, q.Get("sekey")) {
		return
	}
	var kids []*node
	if root {
		kids = f.liveItems(sh)
	} else {
		dir := f.sharePath(sh, q.Get("dir"))
		if dir == nil || !dir.dir {
			apiError(w, ErrnoNotFound, "dir not found in the share")
			return
		}
		for _, k := range dir.kids {
			kids = append(kids, k)
		}
	}
	sortNodes(kids, by, order != "asc")
	out := []any{}
	for i, n := range kids {
		if root || (i >= (page-1)*num && i < page*num) {
			out = append(out, f.shareEntry(n, false))
		}
	}
	apiOK(w, map[string]any{"list": out, "share_id": sh.id, "uk": sh.owner.uk, "server_time": f.now().Unix(),
		"cfrom_id": 0, "newno": "", "show_msg": ""})
}

// sortNodes orders a listing by name, time or size (ties by name).
func sortNodes(kids []*node, by string, desc bool) {
	less := func(a, b *node) bool { return a.name < b.name }
	switch by {
	case "time":
		less = func(a, b *node) bool { return a.mtime.Before(b.mtime) || (a.mtime.Equal(b.mtime) && a.name < b.name) }
	case "size":
		less = func(a, b *node) bool { return size(a) < size(b) || (size(a) == size(b) && a.name < b.name) }
	}
	sort.Slice(kids, func(i, j int) bool {
		if desc {
			return less(kids[j], kids[i])
		}
		return less(kids[i], kids[j])
	})
}

func (f *Fake) shareDownload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ids []uint64
	shareID, serr := strconv.ParseUint(q.Get("shareid"), 10, 64)
	uk, uerr := strconv.ParseInt(q.Get("uk"), 10, 64)
	if serr != nil || uerr != nil || json.Unmarshal([]byte(q.Get("fid_list")), &ids) != nil || len(ids) == 0 {
		apiError(w, ErrnoParams, "shareid, uk and fid_list (JSON array of fs_id) are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sh.init()
	sh := f.sh.byID[shareID]
	if !f.alive(sh) {
		apiError(w, ErrnoShareLink, "external link error: the link does not exist, was cancelled or has expired")
		return
	}
	if uk != sh.owner.uk {
		apiError(w, ErrnoParams, "uk is not the share's owner")
		return
	}
	if !f.keyed(w, sh, q.Get("sekey")) {
		return
	}
	list := []any{}
	for _, id := range ids {
		n := f.byID[id]
		if n == nil || n.dir || !f.inShare(sh, n) {
			continue
		}
		m := f.shareEntry(n, true)
		m["dlink"] = f.dlinkAs(n, sh.owner.uk, "sh")
		list = append(list, m)
	}
	apiOK(w, map[string]any{"shareid": sh.id, "uk": sh.owner.uk, "list": list, "prod_type": "share",
		"timestamp": f.now().Unix(), "fcount": len(list)})
}
