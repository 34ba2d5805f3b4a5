package disccloudfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func openFile(name string) (*os.File, error) { return os.Open(name) }

// countingReader counts the bytes an upload's body delivers.
type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingReader) Close() error { return c.r.Close() }

// upload takes one multipart POST: the file streams into a temp file, the
// fields are read wherever they are in the body, and only then is the call
// checked (PHP sees the request once it is all received).
func (f *Fake) upload(w http.ResponseWriter, r *http.Request) {
	r.Body = countingReader{r: r.Body, n: &f.uploadBytes}
	fields := form{}
	var data, fname string
	var size int64
	drop := func() {
		if data != "" {
			os.Remove(data)
		}
	}
	mr, err := r.MultipartReader()
	for err == nil {
		p, perr := mr.NextPart()
		if perr == io.EOF {
			break
		}
		if perr != nil {
			err = perr
			break
		}
		if p.FormName() == "upload_file" && data == "" {
			fname = p.FileName()
			if data, err = f.store(p); err == nil {
				var fi os.FileInfo
				if fi, err = os.Stat(data); err == nil {
					size = fi.Size()
				}
			}
			continue
		}
		v, _ := io.ReadAll(io.LimitReader(p, 1<<20))
		fields[p.FormName()] = cleanField(string(v))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil && data == "" && fields["access_token"] == "" {
		f.fail(w, MsgNoUpload)
		return
	}
	if !f.checkToken(w, fields) {
		drop()
		return
	}
	switch {
	case err != nil || data == "":
		drop()
		f.fail(w, MsgNoUpload)
		return
	case size == 0:
		drop()
		f.fail(w, MsgZeroSize)
		return
	case f.maxUpload > 0 && size > f.maxUpload:
		drop()
		f.failUpload(w, fname, size, fmt.Sprintf("The file is too large. Maximum upload filesize is %d bytes.", f.maxUpload))
		return
	case f.maxStorage > 0 && f.used()+size > f.maxStorage:
		drop()
		f.failUpload(w, fname, size, "You have reached the maximum permitted storage for your account.")
		return
	}
	dir, ok := f.location(fields["folder_id"], false)
	if !ok {
		drop()
		f.failUpload(w, fname, size, "Could not find the folder defined by folder_id.")
		return
	}
	name := f.uploadName(fname)
	if name == "" {
		name = "file"
	}
	fl := f.addFile(dir, f.freeName(dir, name), size, data)
	info := f.baseURL + "/" + fl.short + "~i?" + randomHex(16)
	f.reply(w, map[string]any{"response": "File uploaded", "data": []any{map[string]any{
		"name": fl.name, "size": i64(fl.size), "type": "application/octet-stream", "error": nil,
		"url": f.baseURL + "/" + fl.short, "delete_url": f.baseURL + "/" + fl.short + "~d?" + randomHex(16),
		"info_url": info, "delete_type": "DELETE", "delete_hash": randomHex(16), "hash": randomHex(16),
		"stats_url": f.baseURL + "/" + fl.short + "~s", "short_url": fl.short, "file_id": itoa(fl.id),
		"unique_hash": randomHex(32), "url_html": "", "url_bbcode": "",
	}}})
}

// failUpload answers an upload refused by the account's restrictions:
// the envelope says error, and so does the file's entry, as the site
// uploader's answer does.
func (f *Fake) failUpload(w http.ResponseWriter, name string, size int64, msg string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"_status": "error", "response": msg, "_datetime": f.date(f.now()),
		"data": []any{map[string]any{"name": name, "size": i64(size), "error": msg}}})
}

// deadPage is what the site answers for an unknown or expired download
// token: its HTML error page, with HTTP 200.
const deadPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Error - DiscCloud</title></head>
<body><div class="container"><h1>Error</h1>
<p>The download link has expired or is invalid. Please go back to the file page and try again.</p>
</div></body></html>
`

// serveFile is the download URL: /{short}?download_token=...
func (f *Fake) serveFile(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("download_token")
	f.mu.Lock()
	var fl *file
	if dt, ok := f.downloads[t]; ok && f.now().Before(dt.expires) {
		if c, ok := f.files[dt.fileID]; ok && !c.trashed && f.alive(c.folder) && c.short == r.PathValue("short") {
			fl = c
		}
	}
	busy := fl != nil && f.downloadSlots > 0 && f.activeDL >= f.downloadSlots
	if fl != nil && !busy {
		f.activeDL++
	}
	var name, data string
	if fl != nil {
		name, data = fl.name, fl.data
	}
	f.mu.Unlock()
	switch {
	case fl == nil:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush() // sent chunked: no Content-Length to give it away
		io.WriteString(w, deadPage)
		return
	case busy:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "<html><body>Too many concurrent downloads.</body></html>\n")
		return
	}
	defer func() {
		f.mu.Lock()
		f.activeDL--
		f.mu.Unlock()
	}()
	file, err := os.Open(data)
	if err != nil {
		http.Error(w, "gone", http.StatusInternalServerError)
		return
	}
	defer file.Close()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	if !rangeHonoured(r.Header.Get("Range")) {
		r.Header.Del("Range") // the whole file, with 200
	}
	http.ServeContent(w, r, "", time.Time{}, file)
}

// rangeHonoured is the site's quirk: only one range that starts after 0 is
// answered 206; bytes=0-N, suffix ranges and range sets get the whole file.
func rangeHonoured(h string) bool {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return false
	}
	first, _, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return err == nil && n > 0
}

func (f *Fake) urlUploadAdd(w http.ResponseWriter, fm form) {
	if !f.urlUploads {
		f.fail(w, MsgNoURLUpload)
		return
	}
	if fm["file_url_base64"] == "" {
		f.fail(w, "Please provide the file_url_base64 param.")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(fm["file_url_base64"])
	u, uerr := url.Parse(string(raw))
	if err != nil || uerr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.fail(w, "Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.")
		return
	}
	dir, ok := f.location(fm["folder_id"], false)
	if !ok {
		f.fail(w, "Could not find the folder defined by folder_id.")
		return
	}
	f.nextSched++
	s := &scheduled{id: f.nextSched, url: string(raw), folder: dir, status: "pending", created: f.now()}
	f.sched[s.id] = s
	if !f.closed {
		f.bg.Add(1)
		go f.runURLUpload(s, f.fetch)
	}
	f.reply(w, map[string]any{"response": "File download from URL scheduled",
		"data": map[string]any{"scheduled_item_id": s.id, "url": s.url}})
}

// runURLUpload is the site's background downloader.
func (f *Fake) runURLUpload(s *scheduled, client *http.Client) {
	defer f.bg.Done()
	f.mu.Lock()
	s.status, s.started = "downloading", f.now()
	f.mu.Unlock()
	failed := func(why string) {
		f.mu.Lock()
		s.status, s.err, s.finished = "failed", why, f.now()
		f.mu.Unlock()
	}
	resp, err := client.Get(s.url)
	if err != nil {
		failed("Could not download the file.")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		failed(fmt.Sprintf("The remote server answered %d.", resp.StatusCode))
		return
	}
	name := ""
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		name = params["filename"]
	}
	if name == "" {
		if u, err := url.Parse(s.url); err == nil {
			name = path.Base(u.Path)
		}
	}
	f.mu.Lock()
	limit := f.maxUpload
	f.mu.Unlock()
	body := io.Reader(resp.Body)
	if limit > 0 {
		body = io.LimitReader(resp.Body, limit+1)
	}
	data, err := f.store(body)
	if err != nil {
		failed("Could not store the file.")
		return
	}
	fi, err := os.Stat(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err != nil || fi.Size() == 0:
		os.Remove(data)
		s.status, s.err = "failed", MsgZeroSize
	case limit > 0 && fi.Size() > limit:
		os.Remove(data)
		s.status, s.err = "failed", "The file is too large."
	case !f.alive(s.folder):
		os.Remove(data)
		s.status, s.err = "failed", MsgNoFolder
	default:
		n := f.uploadName(name)
		if n == "" || n == "/" || n == "." {
			n = "file"
		}
		s.file = f.addFile(s.folder, f.freeName(s.folder, n), fi.Size(), data)
		s.status, s.total = "complete", fi.Size()
	}
	s.finished = f.now()
}

func (f *Fake) urlUploadStatus(w http.ResponseWriter, fm form) {
	if fm["scheduled_item_id"] == "" {
		f.fail(w, "Please provide the scheduled_item_id param.")
		return
	}
	id, _ := strconv.Atoi(fm["scheduled_item_id"])
	s, ok := f.sched[id]
	if !ok {
		f.fail(w, "Could not find the scheduled item.")
		return
	}
	date := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return f.date(t)
	}
	data := map[string]any{"scheduled_item_id": s.id, "status": s.status, "created": date(s.created),
		"started": date(s.started), "finished": date(s.finished), "total_size": s.total, "downloaded_file": nil}
	if s.err != "" {
		data["error"] = s.err
	}
	if s.file != nil {
		data["downloaded_file"] = map[string]any{"file_id": s.file.id, "name": s.file.name, "size": s.file.size,
			"url": f.baseURL + "/" + s.file.short + "/" + url.PathEscape(s.file.name)}
	}
	f.reply(w, map[string]any{"response": "Scheduled URL file download found", "data": data})
}
