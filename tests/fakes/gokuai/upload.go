package gokuaifake

import (
	"crypto/sha1"
	"encoding/hex"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
)

// The upload server's chunked protocol (NOTES.md): upload_init,
// upload_part (in order, inclusive ranges, CRC32), upload_req,
// upload_finish (202 while merging), upload_abort.

func (f *Fake) uploadInit(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	name, err := url.QueryUnescape(h.Get("x-gk-upload-filename"))
	size, serr := strconv.ParseInt(h.Get("x-gk-upload-filesize"), 10, 64)
	mount, merr := strconv.Atoi(h.Get("x-gk-upload-mountid"))
	if err != nil || serr != nil || merr != nil || h.Get("x-gk-upload-pathhash") == "" || h.Get("x-gk-upload-filehash") == "" {
		apiError(w, CodeBadParam, "x-gk-upload-pathhash, -filename, -filehash, -filesize and -mountid are required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pd := f.pending[h.Get("x-gk-upload-pathhash")]
	if pd == nil || f.now().After(pd.expires) {
		apiError(w, CodeNotFound, "unknown x-gk-upload-pathhash: call create_file first")
		return
	}
	if pd.lib.mountID != mount || path.Base(pd.fullpath) != name || pd.filehash != h.Get("x-gk-upload-filehash") || pd.size != size {
		apiError(w, CodeBadParam, "the upload headers do not match create_file")
		return
	}
	if pd.done != nil {
		writeJSON(w, http.StatusAccepted, pd.done)
		return
	}
	for _, s := range f.upSess {
		if s.p == pd && s.done == nil {
			writeJSON(w, http.StatusOK, map[string]any{"session": s.id})
			return
		}
	}
	file, err := os.CreateTemp(f.dir, "upload-*")
	if err != nil {
		apiError(w, 50001, "no space on the upload server")
		return
	}
	s := &session{id: randomHex(16), p: pd, file: file}
	f.upSess[s.id] = s
	writeJSON(w, http.StatusOK, map[string]any{"session": s.id})
}

// sessionOf finds the call's session (x-gk-upload-session); the caller
// holds f.mu.
func (f *Fake) sessionOf(w http.ResponseWriter, r *http.Request) *session {
	s := f.upSess[r.Header.Get("x-gk-upload-session")]
	if s == nil {
		apiError(w, CodeNoSession, "upload session not found")
	}
	return s
}

func expectJSON(w http.ResponseWriter, received int64, msg string) {
	writeJSON(w, http.StatusConflict, map[string]any{"error_code": CodeOffset, "error_msg": msg,
		"expect": strconv.FormatInt(received, 10)})
}

// session finds the call's session (x-gk-upload-session) and locks it:
// one call at a time per session, so parts come strictly in order. A
// session's fields are written holding both its lock and f.mu, read
// holding either.
func (f *Fake) session(w http.ResponseWriter, r *http.Request) *session {
	f.mu.Lock()
	s := f.sessionOf(w, r)
	f.mu.Unlock()
	if s != nil {
		s.mu.Lock()
	}
	return s
}

func (f *Fake) uploadPart(w http.ResponseWriter, r *http.Request) {
	defer io.Copy(io.Discard, r.Body)
	startS, endS, found := strings.Cut(r.Header.Get("x-gk-upload-range"), "-")
	start, err1 := strconv.ParseInt(startS, 10, 64)
	end, err2 := strconv.ParseInt(endS, 10, 64)
	crc, err3 := strconv.ParseUint(r.Header.Get("x-gk-upload-crc"), 10, 32)
	if !found || err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start {
		apiError(w, CodeBadParam, "x-gk-upload-range (start-end, inclusive) and x-gk-upload-crc (decimal CRC32) are required")
		return
	}
	s := f.session(w, r)
	if s == nil {
		return
	}
	defer s.mu.Unlock()
	f.mu.Lock()
	done, received := s.done != nil, s.received
	if !done && start != received {
		f.conflicts++
	}
	f.mu.Unlock()
	switch {
	case done:
		writeJSON(w, http.StatusAccepted, map[string]any{})
		return
	case start != received:
		expectJSON(w, received, "range does not start at the bytes received")
		return
	case end >= s.p.size:
		apiError(w, CodeBadParam, "range ends after x-gk-upload-filesize")
		return
	case end-start+1 > f.MaxPartSize:
		apiError(w, CodeBadParam, "part larger than the server takes")
		return
	}
	sum := crc32.NewIEEE()
	n, err := io.Copy(io.NewOffsetWriter(s.file, start), io.TeeReader(io.LimitReader(r.Body, end-start+2), sum))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploadBytes += n
	switch {
	case err != nil:
		return // the client went away, or the server restarted: nothing was received
	case n != end-start+1:
		apiError(w, CodeBadParam, "the body's length does not match x-gk-upload-range")
		return
	case uint64(sum.Sum32()) != crc:
		apiError(w, CodeBadCRC, "crc mismatch")
		return
	}
	if f.loseNextPart {
		f.loseNextPart = false
	} else {
		s.received = end + 1
	}
	if s.received == s.p.size {
		writeJSON(w, http.StatusAccepted, map[string]any{})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (f *Fake) uploadReq(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.sessionOf(w, r); s != nil {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strconv.FormatInt(s.received, 10))
	}
}

func (f *Fake) uploadFinish(w http.ResponseWriter, r *http.Request) {
	s := f.session(w, r)
	if s == nil {
		return
	}
	defer s.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.upSess[s.id] != s {
		apiError(w, CodeNoSession, "upload session not found")
		return
	}
	if s.done != nil {
		writeJSON(w, http.StatusOK, s.done)
		return
	}
	if s.received < s.p.size {
		expectJSON(w, s.received, "upload incomplete")
		return
	}
	if s.polls < f.FinishPolls {
		s.polls++
		writeJSON(w, http.StatusAccepted, map[string]any{"state": "merging"})
		return
	}
	fail := func(code int, msg string) {
		s.file.Close()
		os.Remove(s.file.Name())
		delete(f.upSess, s.id)
		apiError(w, code, msg)
	}
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(s.file, 0, s.p.size)); err != nil {
		fail(50001, "merge failed")
		return
	}
	if hex.EncodeToString(h.Sum(nil)) != s.p.filehash {
		fail(CodeBadHash, "the content does not match filehash")
		return
	}
	if lib := s.p.lib; lib.total >= 0 && used(lib)+s.p.size > lib.total {
		fail(CodeQuota, "library is full")
		return
	}
	s.file.Close()
	b := f.storeBlob(s.file.Name(), s.p.size, s.p.filehash)
	n, code, msg := f.place(s.p.lib, s.p.fullpath, b, s.p.overwrite, s.p.hash)
	if code != 0 {
		delete(f.upSess, s.id)
		apiError(w, code, msg)
		return
	}
	s.done = map[string]any{"hash": n.hash, "fullpath": fullpathOf(n), "filehash": b.sha1, "filesize": b.size}
	s.p.done = s.done
	writeJSON(w, http.StatusOK, s.done)
}

func (f *Fake) uploadAbort(w http.ResponseWriter, r *http.Request) {
	s := f.session(w, r)
	if s == nil {
		return
	}
	defer s.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.done == nil {
		s.file.Close()
		os.Remove(s.file.Name())
	}
	delete(f.upSess, s.id)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// webUpload is the document's multipart upload ({server}/2/web_upload):
// token, mount_id, path, name, overwrite, filefield=file, file.
func (f *Fake) webUpload(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		apiError(w, CodeBadParam, "multipart/form-data expected")
		return
	}
	defer r.MultipartForm.RemoveAll()
	v := r.MultipartForm.Value
	get := func(k string) string {
		if len(v[k]) > 0 {
			return v[k][0]
		}
		return ""
	}
	files := r.MultipartForm.File[get("filefield")]
	if get("filefield") != "file" || len(files) != 1 || get("name") == "" {
		apiError(w, CodeBadParam, "filefield=file, file and name are required")
		return
	}
	src, err := files[0].Open()
	if err != nil {
		apiError(w, CodeBadParam, "unreadable file")
		return
	}
	defer src.Close()
	tmp, err := os.CreateTemp(f.dir, "web-*")
	if err != nil {
		apiError(w, 50001, "no space")
		return
	}
	h := sha1.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	tmp.Close()
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	fullpath := path.Join(get("path"), get("name"))
	mount, _ := strconv.Atoi(get("mount_id"))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploadBytes += n
	fail := func(code int, msg string) {
		os.Remove(tmp.Name())
		writeJSON(w, code/100, map[string]any{"error_code": code, "error_msg": msg, "fullpath": fullpath})
	}
	if code, msg := f.tokenOK(get("token")); code != 0 {
		fail(code, msg)
		return
	}
	lib := f.libByMount(mount)
	switch {
	case lib == nil:
		fail(CodeNoLibrary, "library not found")
		return
	case !validName(get("name")):
		fail(CodeBadName, "invalid file name")
		return
	case lib.total >= 0 && used(lib)+n > lib.total:
		fail(CodeQuota, "library is full")
		return
	}
	b := f.storeBlob(tmp.Name(), n, hex.EncodeToString(h.Sum(nil)))
	node, code, msg := f.place(lib, fullpath, b, get("overwrite") == "1", "")
	if code != 0 {
		writeJSON(w, code/100, map[string]any{"error_code": code, "error_msg": msg, "fullpath": fullpath})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hash": node.hash, "filesize": n, "fullpath": fullpathOf(node)})
}
