package teraboxfake

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// UploadTTL is how long an upload session lives.
const UploadTTL = 24 * time.Hour

// parseBlocks reads a block_list: a JSON array of lowercase hex md5s.
func parseBlocks(s string) ([]string, bool) {
	var blocks []string
	if json.Unmarshal([]byte(s), &blocks) != nil || len(blocks) == 0 {
		return nil, false
	}
	for _, b := range blocks {
		if _, err := hex.DecodeString(b); err != nil || len(b) != 32 || strings.ToLower(b) != b {
			return nil, false
		}
	}
	return blocks, true
}

func (f *Fake) precreate(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	p := r.PostForm.Get("path")
	blocks, ok := parseBlocks(r.PostForm.Get("block_list"))
	if p == "" || r.PostForm.Get("autoinit") != "1" || !ok {
		apiError(w, ErrnoParams, "path, autoinit=1 and block_list (JSON array of md5) are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, name, errno := f.newPlace(p)
	if errno != 0 {
		apiError(w, errno, "bad path")
		return
	}
	for _, n := range f.byID { // dedup: the same blocks anywhere in the account
		if !n.dir && sameBlocks(n.blob.blocks, blocks) {
			if other := dir.kids[name]; other != nil {
				name = f.suffixed(dir, name)
			}
			c := f.newNode(dir, name, false)
			c.blob = n.blob
			info := f.entry(c)
			info["request_id"] = requestID()
			apiOK(w, map[string]any{"return_type": 2, "info": info})
			return
		}
	}
	s := &session{id: "N1-" + randomToken(""), path: fullPath(dir) + "/" + name, blocks: blocks,
		parts: map[int]*blob{}, expires: f.now().Add(UploadTTL)}
	f.sessions[s.id] = s
	todo := []int{}
	if len(blocks) > 1 { // one block is answered [], "equivalent to [0]"
		for i := range blocks {
			todo = append(todo, i)
		}
	}
	apiOK(w, map[string]any{"path": s.path, "uploadid": s.id, "return_type": 1, "block_list": todo})
}

// liveSession finds an upload session (f.mu held).
func (f *Fake) liveSession(id string) *session {
	s := f.sessions[id]
	if s != nil && !f.now().Before(s.expires) {
		s.drop()
		delete(f.sessions, id)
		return nil
	}
	return s
}

func (f *Fake) superfile2(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, true) {
		return
	}
	q := r.URL.Query()
	seq, err := strconv.Atoi(q.Get("partseq"))
	if q.Get("method") != "upload" || q.Get("app_id") != AppID || q.Get("path") == "" || q.Get("uploadid") == "" || err != nil {
		pcsError(w, http.StatusBadRequest, ErrnoParams, "method=upload, app_id=250528, path, uploadid and partseq are required")
		return
	}
	f.mu.Lock()
	s := f.liveSession(q.Get("uploadid"))
	var nblocks int
	var spath string
	if s != nil {
		nblocks, spath = len(s.blocks), s.path
	}
	f.mu.Unlock()
	switch {
	case s == nil:
		pcsError(w, http.StatusBadRequest, ErrnoNoUpload, "uploadid invalid")
		return
	case spath != q.Get("path"):
		pcsError(w, http.StatusBadRequest, ErrnoParams, "path differs from precreate's")
		return
	case seq < 0 || seq >= nblocks:
		pcsError(w, http.StatusBadRequest, ErrnoParams, "partseq out of range")
		return
	}
	body, err := fileField(r)
	if err != nil {
		pcsError(w, http.StatusBadRequest, ErrnoParams, err.Error())
		return
	}
	b, err := f.blobFrom(body)
	if err != nil {
		return // the connection broke
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received += b.size
	last := seq == nblocks-1
	if (!last && b.size != BlockSize) || (last && (b.size > BlockSize || (b.size == 0 && nblocks > 1))) {
		os.Remove(b.file)
		pcsError(w, http.StatusBadRequest, ErrnoBlockSize, "every block but the last must be exactly 4 MiB")
		return
	}
	if f.flip > 0 {
		f.flip--
		b = f.corrupt(b)
	}
	s = f.sessions[q.Get("uploadid")]
	if s == nil { // forgotten while the block came in
		os.Remove(b.file)
		pcsError(w, http.StatusBadRequest, ErrnoNoUpload, "uploadid invalid")
		return
	}
	if old := s.parts[seq]; old != nil {
		os.Remove(old.file)
	}
	s.parts[seq] = b
	apiOK(w, map[string]any{"md5": b.md5, "partseq": seq, "uploadid": s.id})
}

// corrupt rewrites a received block with its first byte changed.
func (f *Fake) corrupt(b *blob) *blob {
	data, err := os.ReadFile(b.file)
	if err != nil || len(data) == 0 {
		return b
	}
	data[0] ^= 0xff
	os.Remove(b.file)
	nb, err := f.blobFrom(strings.NewReader(string(data)))
	if err != nil {
		return b
	}
	return nb
}

// fileField returns the multipart field "file" of a superfile2 request.
func fileField(r *http.Request) (io.Reader, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, errors.New("the block must be sent as multipart/form-data")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, errors.New(`multipart field "file" missing`)
		}
		if part.FormName() == "file" {
			return part, nil
		}
	}
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	p := r.PostForm.Get("path")
	rtype := 1 // the document's default
	if v := r.PostForm.Get("rtype"); v != "" {
		var err error
		if rtype, err = strconv.Atoi(v); err != nil || rtype < 0 || rtype > 3 {
			apiError(w, ErrnoParams, "rtype must be 0..3")
			return
		}
	}
	if p == "" {
		apiError(w, ErrnoParams, "path is required")
		return
	}
	if r.PostForm.Get("isdir") == "1" {
		f.createDir(w, p, rtype)
		return
	}
	size, serr := strconv.ParseInt(r.PostForm.Get("size"), 10, 64)
	blocks, ok := parseBlocks(r.PostForm.Get("block_list"))
	if serr != nil || !ok || r.PostForm.Get("uploadid") == "" {
		apiError(w, ErrnoParams, "size, uploadid and block_list are required")
		return
	}
	f.mu.Lock()
	s := f.liveSession(r.PostForm.Get("uploadid"))
	if s == nil {
		f.mu.Unlock()
		apiError(w, ErrnoNoUpload, "uploadid invalid")
		return
	}
	if s.path != p || !sameBlocks(s.blocks, blocks) {
		f.mu.Unlock()
		apiError(w, ErrnoCreateFailed, "path or block_list differ from precreate's")
		return
	}
	parts := make([]*blob, len(blocks))
	var total int64
	for i := range blocks {
		b := s.parts[i]
		if b == nil {
			f.mu.Unlock()
			apiError(w, ErrnoBlockMissing, "block miss in superfile2")
			return
		}
		if b.md5 != blocks[i] {
			f.mu.Unlock()
			apiError(w, ErrnoCreateFailed, "a block's md5 differs from block_list")
			return
		}
		parts[i], total = b, total+b.size
	}
	if total != size {
		f.mu.Unlock()
		apiError(w, ErrnoCreateFailed, "size differs from the blocks'")
		return
	}
	if f.used()+size > f.QuotaBytes {
		f.mu.Unlock()
		apiError(w, ErrnoNoSpace, "no space left")
		return
	}
	f.mu.Unlock()
	b, err := f.concat(parts)
	if err != nil {
		apiError(w, ErrnoInternal, "internal error")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[s.id] != s { // forgotten, or created by another call meanwhile
		os.Remove(b.file)
		apiError(w, ErrnoNoUpload, "uploadid invalid")
		return
	}
	dir, name, errno := f.newPlace(p)
	if errno == 0 {
		name, errno = f.placeName(dir, name, rtype, blocks, false)
	}
	if errno != 0 {
		os.Remove(b.file)
		apiError(w, errno, "cannot create the file")
		return
	}
	s.drop()
	delete(f.sessions, s.id)
	if name == "" { // rtype 2 and the same content is there already
		n := dir.kids[path0(p)]
		f.answerCreated(w, n)
		return
	}
	if old := dir.kids[name]; old != nil {
		f.drop(old) // rtype 3
	}
	n := f.newNode(dir, name, false)
	n.blob = b
	f.answerCreated(w, n)
}

func path0(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// placeName applies rtype to a new entry's name in dir (f.mu held): the
// name to use, "" when rtype 2 finds the same content there (nothing to
// do), or an errno.
func (f *Fake) placeName(dir *node, name string, rtype int, blocks []string, isDir bool) (string, int) {
	other := dir.kids[name]
	if other == nil {
		return name, 0
	}
	switch rtype {
	case 0:
		return "", ErrnoExists
	case 2:
		if !isDir && !other.dir && sameBlocks(other.blob.blocks, blocks) {
			return "", 0
		}
		return f.suffixed(dir, name), 0
	case 3:
		if other.dir || isDir {
			return "", ErrnoExists // a folder is never overwritten
		}
		return name, 0
	}
	return f.suffixed(dir, name), 0
}

func (f *Fake) answerCreated(w http.ResponseWriter, n *node) {
	m := f.entry(n)
	m["name"] = fullPath(n)
	m["from_type"] = 1
	m["ctime"] = n.ctime.Unix()
	m["mtime"] = n.mtime.Unix()
	if n.dir {
		delete(m, "md5")
	}
	apiOK(w, m)
}

// createDir is create with isdir=1: a folder.
func (f *Fake) createDir(w http.ResponseWriter, p string, rtype int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, name, errno := f.newPlace(p)
	if errno == 0 {
		name, errno = f.placeName(dir, name, rtype, nil, true)
	}
	if errno != 0 {
		apiError(w, errno, "cannot create the folder")
		return
	}
	f.answerCreated(w, f.newNode(dir, name, true))
}
