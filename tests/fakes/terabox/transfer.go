package teraboxfake

import (
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Transfer is one share/transfer the fake took: what was saved where, for
// tests asserting that a copy out of a share was made server-side (and
// that no byte of it went through an upload endpoint: BytesReceived).
type Transfer struct {
	ShareID  uint64
	Receiver int64    // uk of the account the copy went to
	Dest     string   // the destination folder's full path
	FsIDs    []uint64 // what was asked for
	Async    int
	TaskID   string // "" for a synchronous transfer
	Done     bool   // the copy was made (or failed): the task ended
	Errno    int    // 0, or the first failed item's errno (the task's task_errno)
	Saved    []string
	Files    int   // files copied, folders' content included
	Bytes    int64 // their size
}

// The transfer readings (section 3.5.4 and Baidu's task API):
//   - POST, query: shareid, from = the owner's uk (the document's example
//     passes the uk there, its table says "file ID"; the fake takes the
//     uk), async 0|1|2 (required), ondup fail|newcopy (default newcopy: a
//     taken name gets a _YYYYMMDD_HHMMSS suffix, as create's rtype 1),
//     sekey. Body: fsidlist (JSON array of fs_id, strings or numbers) or
//     filelist (JSON array of the owner's paths), and path: the receiving
//     account's folder (default "/", which is outside the app folder:
//     -7), -9 if it does not exist.
//   - The receiving account is the token's, never the share owner's.
//   - async 0 and 1 copy at once: errno 0 and the per-item errnos in
//     info[] (-8 a taken name with ondup=fail, -9 not in the share, -10 no
//     space), the copies in extra.list[] {from, from_fs_id, to, to_fs_id}.
//   - async 2 answers {task_id} (a number) and copies nothing yet: GET
//     /openapi/share/taskquery?taskid= answers status "pending", then
//     "running", and on the third query the copy is made and the status is
//     "success" (or "failed" with task_errno, the first failed item's),
//     with list[] as extra.list plus each item's errno; later queries
//     repeat the end. Only the receiving account's tokens may query a task
//     (another's or an unknown taskid: errno 2). Tasks survive restarts.
type task struct {
	id    string
	uk    int64 // the receiver's
	polls int
	job   transferJob
	rec   int // its Transfer in the log
	done  bool
	errno int
	list  []any
}

// transferJob is what a transfer copies, where.
type transferJob struct {
	sh    *share
	items []transferItem
	dest  *node
	to    *account
	ondup string
}

type transferItem struct {
	id   uint64
	from string // the path asked for, when given by path
}

// Transfers lists the transfers taken so far.
func (f *Fake) Transfers() []Transfer {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Transfer, len(f.sh.log))
	for i, t := range f.sh.log {
		t.FsIDs, t.Saved = slices.Clone(t.FsIDs), slices.Clone(t.Saved)
		out[i] = t
	}
	return out
}

// inAppOf resolves a full path inside account a's app folder, as inApp
// does for the main account (f.mu held).
func inAppOf(a *account, p string) (*node, int) {
	if !strings.HasPrefix(p, "/") {
		return nil, ErrnoBadName
	}
	p = path.Clean(p)
	app := fullPath(a.app)
	if p != app && !strings.HasPrefix(p, app+"/") {
		return nil, ErrnoBadName
	}
	n := lookup(a.app, strings.TrimPrefix(p, app))
	if n == nil {
		return nil, ErrnoNotFound
	}
	return n, 0
}

func (f *Fake) shareTransfer(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	q := r.URL.Query()
	shareID, serr := strconv.ParseUint(q.Get("shareid"), 10, 64)
	from, ferr := strconv.ParseInt(q.Get("from"), 10, 64)
	async, aerr := strconv.Atoi(q.Get("async"))
	ondup := q.Get("ondup")
	if serr != nil || ferr != nil || aerr != nil || async < 0 || async > 2 || (ondup != "" && ondup != "fail" && ondup != "newcopy") {
		apiError(w, ErrnoParams, "shareid, from (the owner's uk), async (0, 1 or 2) are required; ondup is fail or newcopy")
		return
	}
	if ondup == "" {
		ondup = "newcopy"
	}
	items, ok := transferItems(r.PostForm.Get("fsidlist"), r.PostForm.Get("filelist"))
	if !ok {
		apiError(w, ErrnoParams, "fsidlist or filelist (a JSON array) is required")
		return
	}
	dest := r.PostForm.Get("path")
	if dest == "" {
		dest = "/"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sh.init()
	sh := f.sh.byID[shareID]
	switch {
	case !f.alive(sh):
		apiError(w, ErrnoShareLink, "external link error: the link does not exist, was cancelled or has expired")
		return
	case from != sh.owner.uk:
		apiError(w, ErrnoParams, "from is not the share owner's uk")
		return
	case !f.keyed(w, sh, q.Get("sekey")):
		return
	}
	to := f.accountOf(r)
	dir, errno := inAppOf(to, dest)
	if errno == 0 && !dir.dir {
		errno = ErrnoNotFound
	}
	if errno != 0 {
		apiError(w, errno, "the destination folder is not allowed or does not exist")
		return
	}
	for i, it := range items {
		if it.from != "" {
			if n := f.sharePath(sh, it.from); n != nil {
				items[i].id = n.fsid
			}
		}
	}
	job := transferJob{sh: sh, items: items, dest: dir, to: to, ondup: ondup}
	rec := Transfer{ShareID: sh.id, Receiver: to.uk, Dest: fullPath(dir), Async: async}
	for _, it := range items {
		rec.FsIDs = append(rec.FsIDs, it.id)
	}
	if async == 2 {
		t := &task{id: strconv.FormatUint(f.sh.nextTk, 10), uk: to.uk, job: job, rec: len(f.sh.log)}
		f.sh.nextTk += 7
		f.sh.tasks[t.id] = t
		rec.TaskID = t.id
		f.sh.log = append(f.sh.log, rec)
		apiOK(w, map[string]any{"task_id": json.Number(t.id), "info": []any{}, "extra": map[string]any{}, "show_msg": ""})
		return
	}
	f.sh.log = append(f.sh.log, rec)
	list, _ := f.runTransfer(job, len(f.sh.log)-1)
	info := []any{}
	for _, it := range list {
		m := it.(map[string]any)
		info = append(info, map[string]any{"errno": m["errno"], "fsid": strconv.FormatUint(m["from_fs_id"].(uint64), 10), "path": m["from"]})
	}
	apiOK(w, map[string]any{"task_id": 0, "info": info, "extra": map[string]any{"list": list}, "show_msg": ""})
}

// transferItems reads fsidlist (fs_ids as strings or numbers) or
// filelist (paths).
func transferItems(fsids, files string) ([]transferItem, bool) {
	var out []transferItem
	switch {
	case fsids != "":
		var ids []json.RawMessage
		if json.Unmarshal([]byte(fsids), &ids) != nil {
			return nil, false
		}
		for _, raw := range ids {
			id := strings.Trim(string(raw), `"`)
			n, err := strconv.ParseUint(id, 10, 64)
			if err != nil {
				return nil, false
			}
			out = append(out, transferItem{id: n})
		}
	case files != "":
		var paths []string
		if json.Unmarshal([]byte(files), &paths) != nil {
			return nil, false
		}
		for _, p := range paths {
			out = append(out, transferItem{from: p})
		}
	}
	return out, len(out) > 0
}

// runTransfer makes the copies of a job and records them in Transfer rec;
// it returns the items' outcomes and the first failure's errno (f.mu
// held).
func (f *Fake) runTransfer(job transferJob, rec int) ([]any, int) {
	var list []any
	first := 0
	t := &f.sh.log[rec]
	for _, it := range job.items {
		n := f.byID[it.id]
		out := map[string]any{"from": it.from, "from_fs_id": it.id, "errno": 0}
		if n != nil {
			out["from"] = fullPath(n)
		}
		errno := f.transferOne(job, n, out, t)
		out["errno"] = errno
		if errno != 0 && first == 0 {
			first = errno
		}
		list = append(list, out)
	}
	t.Done, t.Errno = true, first
	return list, first
}

// transferOne copies one item into the job's folder, filling out; it
// returns the item's errno (f.mu held).
func (f *Fake) transferOne(job transferJob, n *node, out map[string]any, t *Transfer) int {
	dest := job.dest
	switch {
	case !f.alive(job.sh):
		return ErrnoShareLink
	case n == nil || !f.inShare(job.sh, n):
		return ErrnoNotFound
	case f.byID[dest.fsid] != dest:
		return ErrnoNotFound // the folder went meanwhile
	case within(dest, n):
		return ErrnoBadName // into itself
	}
	name := n.name
	if dest.kids[name] != nil {
		if job.ondup == "fail" {
			return ErrnoExists
		}
		name = f.suffixed(dest, name)
	}
	files, bytes := treeSize(n)
	if job.to.root == f.root && f.used()+bytes > f.QuotaBytes {
		return ErrnoNoSpace
	}
	c := f.copyTree(n, dest, name)
	out["to"], out["to_fs_id"] = fullPath(c), c.fsid
	t.Saved = append(t.Saved, fullPath(c))
	t.Files += files
	t.Bytes += bytes
	return 0
}

// treeSize counts the files below n (n included) and their bytes.
func treeSize(n *node) (int, int64) {
	if !n.dir {
		return 1, n.blob.size
	}
	files, bytes := 0, int64(0)
	for _, k := range n.kids {
		fl, b := treeSize(k)
		files += fl
		bytes += b
	}
	return files, bytes
}

func (f *Fake) taskQuery(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("taskid")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sh.init()
	t := f.sh.tasks[id]
	if t == nil || t.uk != f.accountOf(r).uk {
		apiError(w, ErrnoParams, "taskid invalid")
		return
	}
	t.polls++
	switch {
	case !t.done && t.polls == 1:
		apiOK(w, map[string]any{"status": "pending", "task_errno": 0, "progress": 0})
		return
	case !t.done && t.polls == 2:
		apiOK(w, map[string]any{"status": "running", "task_errno": 0, "progress": 50})
		return
	case !t.done:
		t.list, t.errno = f.runTransfer(t.job, t.rec)
		t.done = true
	}
	status := "success"
	if t.errno != 0 {
		status = "failed"
	}
	apiOK(w, map[string]any{"status": status, "task_errno": t.errno, "list": t.list, "total": len(t.list), "progress": 100})
}
