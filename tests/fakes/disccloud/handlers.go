package disccloudfake

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"bridge/tests/fakes/faults"
)

// Handler serves the API under /api/v2/ and the download URLs (/{short}),
// each through the fault layer, and POST /__restart.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(p, name string, kind faults.Kind, h http.HandlerFunc) {
		mux.Handle("POST /api/v2/"+p, f.Faults.Route(name, kind, h))
	}
	route("authorize", "authorize", faults.Auth, f.authorize)
	route("disable_access_token", "disable-token", faults.API, f.api(f.disableToken))
	route("account/info", "account-info", faults.API, f.api(f.accountInfo))
	route("account/package", "account-package", faults.API, f.api(f.accountPackage))
	route("folder/listing", "listing", faults.API, f.api(f.listing))
	route("folder/create", "folder-create", faults.API, f.api(f.folderCreate))
	route("folder/info", "folder-info", faults.API, f.api(f.folderInfo))
	route("folder/edit", "folder-edit", faults.API, f.api(f.folderEdit))
	route("folder/move", "folder-move", faults.API, f.api(f.folderMove))
	route("folder/delete", "folder-delete", faults.API, f.api(f.folderDelete))
	route("file/upload", "upload", faults.Upload, f.upload)
	route("file/download", "download", faults.API, f.api(f.downloadURL))
	route("file/info", "file-info", faults.API, f.api(f.fileInfo))
	route("file/edit", "file-edit", faults.API, f.api(f.fileEdit))
	route("file/move", "file-move", faults.API, f.api(f.fileMove))
	route("file/copy", "file-copy", faults.API, f.api(f.fileCopy))
	route("file/delete", "file-delete", faults.API, f.api(f.fileDelete))
	route("file/url_upload_add", "url-upload-add", faults.API, f.api(f.urlUploadAdd))
	route("file/url_upload_status", "url-upload-status", faults.API, f.api(f.urlUploadStatus))
	mux.Handle("GET /{short}", f.Faults.Route("dl", faults.Download, http.HandlerFunc(f.serveFile)))
	return f.Faults.Handler(mux)
}

// form is a call's POST fields, trimmed and stripped of tags.
type form map[string]string

func (fm form) has(k string) bool { _, ok := fm[k]; return ok }

// readForm reads the POST fields only (the query string is ignored).
func readForm(r *http.Request) form {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.ParseMultipartForm(1 << 20)
	} else {
		r.ParseForm()
	}
	out := form{}
	for k, vs := range r.PostForm {
		if len(vs) > 0 {
			out[k] = cleanField(vs[0])
		}
	}
	return out
}

func (f *Fake) date(t time.Time) string { return t.In(f.Zone).Format(DateFormat) }

// reply writes the success envelope; fields are added at the top level.
func (f *Fake) reply(w http.ResponseWriter, fields map[string]any) {
	body := map[string]any{"_status": "success", "_datetime": f.date(f.now())}
	for k, v := range fields {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// fail writes an error the site's way: HTTP 200.
func (f *Fake) fail(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"_status": "error", "response": msg, "_datetime": f.date(f.now())})
}

// checkToken validates and renews a call's token; it answers the error
// itself and returns false when the call may not go on. f.mu is held.
func (f *Fake) checkToken(w http.ResponseWriter, fm form) bool {
	switch {
	case fm["access_token"] == "":
		f.fail(w, MsgNoToken)
		return false
	case fm["account_id"] == "":
		f.fail(w, MsgNoAccount)
		return false
	}
	t, ok := f.tokens[fm["access_token"]]
	now := f.now()
	if !ok || fm["account_id"] != f.AccountID || now.Sub(t.lastUsed) > f.idleTTL() {
		if ok {
			delete(f.tokens, fm["access_token"])
		}
		f.fail(w, MsgBadToken)
		return false
	}
	t.lastUsed = now
	return true
}

// api wraps a call that needs a valid token; the handler runs under f.mu.
func (f *Fake) api(h func(w http.ResponseWriter, fm form)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fm := readForm(r)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.checkToken(w, fm) {
			h(w, fm)
		}
	}
}

func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	fm := readForm(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	var good bool
	if f.AccountLogin {
		good = fm["username"] == f.Username && fm["password"] == f.Password && f.Password != ""
	} else {
		good = len(fm["key1"]) == 64 && len(fm["key2"]) == 64 && fm["key1"] == f.Key1 && fm["key2"] == f.Key2
	}
	if !good {
		f.fail(w, MsgBadLogin)
		return
	}
	// Authorizing deletes every other token of the user.
	f.tokens = map[string]*token{}
	t := randomHex(64)
	f.tokens[t] = &token{lastUsed: f.now()}
	f.secrets = append(f.secrets, t)
	f.reply(w, map[string]any{"data": map[string]any{"access_token": t, "account_id": f.AccountID}})
}

func (f *Fake) disableToken(w http.ResponseWriter, fm form) {
	delete(f.tokens, fm["access_token"])
	f.reply(w, map[string]any{"response": "Token removed or no longer available."})
}

func (f *Fake) accountInfo(w http.ResponseWriter, fm form) {
	f.reply(w, map[string]any{"data": map[string]any{
		"id": f.AccountID, "username": f.Username, "level_id": "20", "email": "bridge@example.com",
		"lastlogindate": f.date(f.now()), "lastloginip": "127.0.0.1", "status": "active", "title": "Mx",
		"firstname": "Bridge", "lastname": "Fake", "languageId": "1", "datecreated": nil, "lastPayment": nil,
		"paidExpiryDate": nil, "storageLimitOverride": nil,
	}})
}

func (f *Fake) accountPackage(w http.ResponseWriter, fm form) {
	f.reply(w, map[string]any{"data": map[string]any{
		"id": "20", "label": "Premium Account", "max_upload_size": i64(f.maxUpload), "can_upload": "1",
		"wait_between_downloads": "0", "download_speed": "0", "max_storage_bytes": i64(f.maxStorage),
		"show_site_adverts": "0", "show_upgrade_screen": "1", "days_to_keep_inactive_files": "0",
		"concurrent_uploads": "100", "concurrent_downloads": itoa(f.downloadSlots), "downloads_per_24_hours": "0",
		"download_size_per_24_hours": "0", "max_download_filesize_allowed": "0", "max_remote_download_urls": "50",
		"level_type": "paid user", "on_upgrade_page": "0",
	}})
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

func idOrNull(d *folder) any {
	if d == nil {
		return nil
	}
	return itoa(d.id)
}

func (f *Fake) folderJSON(d *folder) map[string]any {
	var updated any
	if !d.updated.IsZero() {
		updated = f.date(d.updated)
	}
	return map[string]any{
		"id": itoa(d.id), "parentId": idOrNull(d.parent), "folderName": d.name,
		"totalSize": i64(f.totalSize(d)), "isPublic": d.isPublic, "accessPassword": nil,
		"date_added": f.date(d.added), "date_updated": updated,
		"url_folder":      f.baseURL + "/folder/" + itoa(d.id) + "/" + url.PathEscape(strings.ReplaceAll(d.name, " ", "_")),
		"total_downloads": 0, "child_folder_count": len(f.subfolders(d)), "file_count": len(f.filesIn(d)),
	}
}

func (f *Fake) fileJSON(fl *file) map[string]any {
	status := "active"
	if fl.trashed {
		status = "trash"
	}
	ext := strings.TrimPrefix(path.Ext(fl.name), ".")
	ctype := mime.TypeByExtension(path.Ext(fl.name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return map[string]any{
		"id": itoa(fl.id), "filename": fl.name, "shortUrl": fl.short, "fileType": ctype, "extension": ext,
		"fileSize": i64(fl.size), "status": status, "downloads": "0", "folderId": idOrNull(fl.folder),
		"keywords": "", "uploadedDate": f.date(fl.uploaded), "url_file": f.baseURL + "/" + fl.short,
	}
}

// location reads a folder given where things are put or listed: blank
// (or "0" when zeroRoot) is the root.
func (f *Fake) location(v string, zeroRoot bool) (*folder, bool) {
	if v == "" || (zeroRoot && v == "0") {
		return nil, true
	}
	return f.folderByID(v)
}

// destination reads a folder given where things are moved or copied: the
// literal "null" is the root; "0" and blanks are not folders.
func (f *Fake) destination(v string) (*folder, bool) {
	if v == "null" {
		return nil, true
	}
	return f.folderByID(v)
}

func (f *Fake) folderByID(v string) (*folder, bool) {
	id, err := strconv.Atoi(v)
	if err != nil {
		return nil, false
	}
	d, ok := f.folders[id]
	if !ok || !f.reachable(d) {
		return nil, false
	}
	return d, true
}

func (f *Fake) fileByID(v string) *file {
	id, err := strconv.Atoi(v)
	if err != nil {
		return nil
	}
	fl, ok := f.files[id]
	if !ok || fl.trashed || !f.alive(fl.folder) {
		return nil
	}
	return fl
}

func (f *Fake) listing(w http.ResponseWriter, fm form) {
	dir, ok := f.location(fm["parent_folder_id"], true)
	if !ok {
		f.fail(w, MsgNoFolder)
		return
	}
	folders, files := []any{}, []any{}
	for _, d := range f.subfolders(dir) {
		folders = append(folders, f.folderJSON(d))
	}
	for _, fl := range f.filesIn(dir) {
		files = append(files, f.fileJSON(fl))
	}
	f.reply(w, map[string]any{"data": map[string]any{"folders": folders, "files": files}})
}

func (f *Fake) folderCreate(w http.ResponseWriter, fm form) {
	name := fm["folder_name"]
	if name == "" {
		f.fail(w, "Please provide the folder_name param.")
		return
	}
	parent, ok := f.location(fm["parent_id"], false)
	if !ok {
		f.fail(w, "Could not find the parent folder defined by parent_id.")
		return
	}
	// Nothing stops a second folder of one name.
	d := f.addFolder(parent, name)
	if v := fm["is_public"]; v == "1" || v == "2" {
		d.isPublic = v
	}
	f.reply(w, map[string]any{"response": "Folder successfully created.", "data": f.folderJSON(d)})
}

func (f *Fake) folderInfo(w http.ResponseWriter, fm form) {
	d, ok := f.folderByID(fm["folder_id"])
	if !ok {
		f.fail(w, MsgNoFolder)
		return
	}
	f.reply(w, map[string]any{"data": f.folderJSON(d)})
}

func (f *Fake) folderEdit(w http.ResponseWriter, fm form) {
	d, ok := f.folderByID(fm["folder_id"])
	if !ok {
		f.fail(w, MsgNoFolder)
		return
	}
	if fm.has("parent_id") && fm["parent_id"] != "" {
		parent, ok := f.destination(fm["parent_id"])
		if !ok {
			f.fail(w, "Could not find the destination folder id defined by parent_id.")
			return
		}
		d.parent = parent // no check for a move into its own subtree
	}
	if n := fm["folder_name"]; n != "" {
		d.name = n
	}
	if v := fm["is_public"]; v == "0" || v == "1" || v == "2" {
		d.isPublic = v
	}
	d.updated = f.now()
	f.reply(w, map[string]any{"response": "Folder successfully updated.", "data": f.folderJSON(d)})
}

func (f *Fake) folderMove(w http.ResponseWriter, fm form) {
	if fm["folder_id"] == "" {
		f.fail(w, "Please provide the folder_id param.")
		return
	}
	d, ok := f.folderByID(fm["folder_id"])
	if !ok {
		f.fail(w, MsgNoFolder)
		return
	}
	if fm["new_parent_folder_id"] == "" {
		f.fail(w, "Please provide the new_parent_folder_id param.")
		return
	}
	parent, ok := f.destination(fm["new_parent_folder_id"])
	if !ok {
		f.fail(w, "Could not find the destination folder id defined by new_parent_folder_id.")
		return
	}
	d.parent = parent // no check for a move into its own subtree
	d.updated = f.now()
	f.reply(w, map[string]any{"response": "Folder successfully moved.", "data": f.folderJSON(d)})
}

func (f *Fake) folderDelete(w http.ResponseWriter, fm form) {
	d, ok := f.folderByID(fm["folder_id"])
	if !ok {
		f.fail(w, MsgNoFolder)
		return
	}
	d.trashed = true
	f.reply(w, map[string]any{"response": "Folder successfully set as deleted."})
}

func (f *Fake) fileInfo(w http.ResponseWriter, fm form) {
	if fm["file_id"] == "" {
		f.fail(w, "Please provide the file_id param.")
		return
	}
	id, _ := strconv.Atoi(fm["file_id"])
	fl, ok := f.files[id]
	if !ok {
		f.fail(w, MsgNoFile)
		return
	}
	f.reply(w, map[string]any{"data": f.fileJSON(fl)}) // a trashed file shows status "trash"
}

func (f *Fake) fileEdit(w http.ResponseWriter, fm form) {
	fl := f.fileByID(fm["file_id"])
	if fl == nil {
		f.fail(w, MsgNoFile)
		return
	}
	if v := fm["folder_id"]; v != "" {
		dst, ok := f.destination(v)
		if !ok {
			f.fail(w, "Could not find the destination folder id defined by folder_id.")
			return
		}
		fl.folder = dst
	}
	if n := fm["filename"]; n != "" {
		fl.name = n // no renaming on a taken name here
	}
	f.reply(w, map[string]any{"response": "File successfully updated.", "data": f.fileJSON(fl)})
}

func (f *Fake) fileMove(w http.ResponseWriter, fm form) {
	fl := f.fileByID(fm["file_id"])
	switch {
	case fm["file_id"] == "":
		f.fail(w, "Please provide the file_id param.")
		return
	case fl == nil:
		f.fail(w, MsgNoFile)
		return
	case fm["new_parent_folder_id"] == "":
		f.fail(w, "Please provide the new_parent_folder_id param.")
		return
	}
	dst, ok := f.destination(fm["new_parent_folder_id"])
	if !ok {
		f.fail(w, "Could not find the destination folder id defined by new_parent_folder_id.")
		return
	}
	fl.folder = dst
	f.reply(w, map[string]any{"response": "File successfully moved.", "data": f.fileJSON(fl)})
}

func (f *Fake) fileCopy(w http.ResponseWriter, fm form) {
	fl := f.fileByID(fm["file_id"])
	switch {
	case fm["file_id"] == "":
		f.fail(w, "Please provide the file_id param.")
		return
	case fl == nil:
		f.fail(w, MsgNoFile)
		return
	case fm["copy_to_folder_id"] == "":
		f.fail(w, "Please provide the copy_to_folder_id param.")
		return
	}
	dst, ok := f.destination(fm["copy_to_folder_id"])
	if !ok {
		f.fail(w, "Could not find the destination folder id defined by copy_to_folder_id.")
		return
	}
	if f.maxStorage > 0 && f.used()+fl.size > f.maxStorage {
		f.fail(w, "You have reached the maximum permitted storage for your account.")
		return
	}
	src, err := openFile(fl.data)
	if err != nil {
		f.fail(w, "Could not copy file.")
		return
	}
	data, err := f.store(src)
	src.Close()
	if err != nil {
		f.fail(w, "Could not copy file.")
		return
	}
	cp := f.addFile(dst, f.freeName(dst, fl.name), fl.size, data)
	f.reply(w, map[string]any{"response": "File successfully copyied.",
		"original_file": map[string]any{"data": f.fileJSON(fl)},
		"new_file":      map[string]any{"data": f.fileJSON(cp)}})
}

func (f *Fake) fileDelete(w http.ResponseWriter, fm form) {
	fl := f.fileByID(fm["file_id"])
	if fl == nil {
		f.fail(w, MsgNoFile)
		return
	}
	fl.trashed = true
	f.reply(w, map[string]any{"response": "File successfully set as deleted.", "data": f.fileJSON(fl)})
}

func (f *Fake) downloadURL(w http.ResponseWriter, fm form) {
	if fm["file_id"] == "" && fm["short_url"] == "" {
		f.fail(w, "Please provide the file_id param.")
		return
	}
	fl := f.fileByID(fm["file_id"])
	if fm["file_id"] == "" {
		for _, c := range f.files {
			if c.short == fm["short_url"] && !c.trashed && f.alive(c.folder) {
				fl = c
			}
		}
	}
	if fl == nil {
		f.fail(w, MsgNoFile)
		return
	}
	t := randomHex(32)
	f.downloads[t] = &dlToken{fileID: fl.id, expires: f.now().Add(f.Faults.LinkTTL(LinkTTL))}
	f.secrets = append(f.secrets, t)
	f.reply(w, map[string]any{"data": map[string]any{"file_id": itoa(fl.id), "filename": fl.name,
		"download_url": f.baseURL + "/" + fl.short + "?download_token=" + t}})
}
