// Package disccloud is the driver for DiscCloud and other YetiShare sites,
// through the site's "File Upload API" v2
// (../shared/providers/disccloud-yetishare.md, with the facts NOTES.md
// adds).
//
// The API works by ids: folders and files have separate id spaces, so
// Object.ID is "d:<id>" or "f:<id>" (the root is "d:root"). Every answer
// is HTTP 200 with "_status"; classify (client.go) reads the site's error
// messages, its only codes.
//
// Readings where the documents leave room (tolerating both where there
// are two):
//   - Authorization: /authorize with key1 + key2, or username + password
//     when no keys are configured. The site deletes every other token of
//     the account when it authorizes, and a token dies after an hour
//     unused; there is no refresh. So the mount keeps one token for all its
//     callers (in the state dir, 0600, with the api_base and a fingerprint
//     of the credentials it belongs to), and only when a call is answered
//     "Could not validate access_token" does it authorize again: once for
//     every caller that saw that token refused, and the call is sent again
//     once. A refused /authorize is remembered for a minute. Two mounts of
//     one account would log each other out on every call: give each
//     account one mount. (auth.TokenStore is for OAuth refresh tokens,
//     which the site has none of.)
//   - Errors: HTTP 200 with _status "error" (or "status", as the
//     document's sample writes it) and a "response" message; a refused
//     upload may carry its message in data[0].error. Real HTTP statuses
//     (429, 5xx) are passing failures, retried through drivers/pacer
//     (honouring Retry-After); a lost connection is retried only for reads.
//   - Numbers may be strings or numbers, ids too, and null. Dates are
//     "Y-m-d H:i:s" in the site's zone (time_zone: an IANA name or an
//     offset such as "+02:00"; default UTC). Files' dates are read from
//     uploadedDate when the site sends it; else they have none.
//   - The root is a blank folder id where things are listed, created or
//     uploaded, and the literal "null" where they are moved or copied to.
//   - Listings are whole (no paging); objects whose status is not
//     "active" are left out. Trashed objects count as not found.
//   - Names: the site strips spaces around every field and HTML tags from
//     it, and an upload also loses a leading dot, double quotes and
//     backslashes. Such names (and "<", over 255 bytes) are refused with
//     ErrInvalidName before any call, for files and folders alike. Should
//     the site alter an uploaded name anyway (the other reading of
//     "quotes" strips apostrophes too), the upload is renamed to the name
//     asked for with /file/edit, which keeps it.
//   - An upload to a taken name is renamed "a (2).txt" by the site (taken
//     case-insensitively), and nothing stops a second folder of one name
//     nor a folder moved into its own subfolder. So: Put with Replaces
//     uploads under a temporary name and swaps (drivers/uploads.Replace);
//     an upload the site renamed is given its name back (and a file of
//     that name the bridge did not know of is replaced the same way);
//     Mkdir lists the parent first (ErrExist) and runs one at a time per
//     mount; Move and Copy refuse a folder into itself (ErrPermission).
//   - Zero-byte files are refused by the site: Features.EmptyFiles is
//     false (the bridge keeps pending empty entries) and Put of 0 bytes is
//     ErrNotSupported. The package's max_upload_size (/account/package,
//     read at start and every ten minutes) makes a larger Put fail with
//     ErrTooLarge before any byte is sent.
//   - Uploads are one multipart POST (the site has no chunked upload),
//     streamed from the temp file with a computed Content-Length.
//   - Downloads: /file/download gives the short URL with a download_token,
//     "valid about 24 h" by NOTES.md but not by the answer, so a Link's
//     Expires is when it was asked for (never cached). Links are not
//     ClientSafe: the site answers an expired token with an HTML page
//     (HTTP 200), bytes=0-N with 200 and the whole file, and too many
//     parallel downloads with 429, none of which a WebDAV client should
//     meet. The bridge's download.Fetcher copes with the 200 (it reads the
//     first bytes and closes the stream; no request could get bytes from 0
//     otherwise); CheckDownload makes the HTML page a dead link.
//   - Copy: /file/copy for files (then /file/edit for a new name); folders
//     are not copied server-side (Features.CopyDir is false: the bridge
//     recurses).
//   - ImportURL: /file/url_upload_add then /file/url_upload_status, polled
//     with backoff; a refusal or a failed import is ErrNotSupported (the
//     bridge then streams the copy), the result's size is checked.
//   - Quota: max_storage_bytes of the package (0 = unlimited: Total -1);
//     Used is the root listing's files plus its folders' totalSize.
package disccloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"bridge/auth"
	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

// Name is the driver's name in configuration files.
const Name = "disccloud"

// Options are the [mounts.options] of a DiscCloud mount.
type Options struct {
	// APIBase is the site's API, "https://disccloud.com/api/v2/" (a site
	// URL without /api/v2 gets it added).
	APIBase string `toml:"api_base"`
	// Key1 and Key2 are the account's two API keys.
	Key1 string `toml:"key1"`
	Key2 string `toml:"key2"`
	// Username and Password are for sites set to account login.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// TimeZone is the zone of the site's dates (IANA name or "+02:00").
	TimeZone string `toml:"time_zone"`
}

// rootID is the root's Object.ID.
const rootID = "d:root"

// packageTTL is how long the account's package limits are trusted.
const packageTTL = 10 * time.Minute

// Driver is one DiscCloud account.
type Driver struct {
	opts   Options
	api    string // ends in "/"
	loc    *time.Location
	client *http.Client
	log    zerolog.Logger
	state  drivers.State // the session record (sessionRecord)
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	gate   pacer.Gate

	auth *auth.Relogin[session] // the token, one /authorize for all callers

	pkgMu sync.Mutex
	pkg   packageInfo

	mkdirMu sync.Mutex // one Mkdir at a time: the site allows twins
}

// New is the drivers.Factory of DiscCloud. It authorizes at once unless
// the state dir holds a token, and reads the package's limits; failures
// do not fail the mount (Check reports them, calls retry them).
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, fmt.Errorf("disccloud: %w", err)
	}
	if o.APIBase == "" || ((o.Key1 == "" || o.Key2 == "") && (o.Username == "" || o.Password == "")) {
		return nil, errors.New("disccloud: api_base and key1 and key2 (or username and password) are required")
	}
	api, err := apiBase(o.APIBase)
	if err != nil {
		return nil, err
	}
	loc, err := zone(o.TimeZone)
	if err != nil {
		return nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	d := &Driver{opts: o, api: api, loc: loc, client: client, log: cfg.Logger, now: time.Now, sleep: pacer.Sleep}
	d.auth = &auth.Relogin[session]{Login: d.runAuthorize, Key: func(s session) string { return s.token },
		Refused: func(err error) bool { return errors.Is(err, drivers.ErrAuthExpired) },
		Backoff: authBackoff, Now: func() time.Time { return d.now() }}
	d.state = cfg.StateOf()
	d.auth.ShareThrough(d.state, sessionRecord, d.savedSessionOf)
	if b, err := d.state.Load(ctx, sessionRecord); err != nil {
		return nil, fmt.Errorf("disccloud: %w", err)
	} else if s := d.savedSessionOf(b); s.token != "" {
		d.auth.Set(s)
	}
	if _, err := d.session(ctx); err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("disccloud: authorize at start failed; calls will retry it")
	} else if _, err := d.packageLimits(ctx); err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("disccloud: the package's limits are unknown; uploads check them later")
	}
	return d, nil
}

// apiBase normalises api_base to ".../api/v2/".
func apiBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("disccloud: api_base must be an http or https URL")
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/api/v2") {
		p += "/api/v2"
	}
	u.Path, u.RawQuery, u.Fragment = p+"/", "", ""
	return u.String(), nil
}

// zone reads time_zone: "" is UTC, "+02:00"/"-0530" an offset, else an
// IANA name.
func zone(tz string) (*time.Location, error) {
	tz = strings.TrimSpace(tz)
	if tz == "" || strings.EqualFold(tz, "UTC") {
		return time.UTC, nil
	}
	if tz[0] == '+' || tz[0] == '-' {
		digits := strings.ReplaceAll(tz[1:], ":", "")
		if len(digits) == 4 {
			h, err1 := strconv.Atoi(digits[:2])
			m, err2 := strconv.Atoi(digits[2:])
			if err1 == nil && err2 == nil && h <= 14 && m < 60 {
				secs := h*3600 + m*60
				if tz[0] == '-' {
					secs = -secs
				}
				return time.FixedZone(tz, secs), nil
			}
		}
		return nil, fmt.Errorf("disccloud: time_zone %q is not an offset like +02:00", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("disccloud: time_zone %q: %v", tz, err)
	}
	return loc, nil
}

// Features of a YetiShare site.
func (d *Driver) Features() drivers.Features {
	d.pkgMu.Lock()
	max := d.pkg.maxUpload
	d.pkgMu.Unlock()
	return drivers.Features{CopyFile: true, CopyDir: false, Move: true, Links: true, EmptyFiles: false,
		SetModTime: false, Quota: true, MaxFileSize: max,
		ProxyOnly: "the site answers a dead link with an HTML page (HTTP 200) and bytes=0-N with the whole file; only the bridge reads through both"}
}

// fail wraps err with what was being done, classified.
func fail(op, p string, err error) error {
	if p != "" {
		op += " " + p
	}
	return fmt.Errorf("disccloud: %s: %w", op, classify(err))
}

// validName refuses the names the site would store under another name.
func validName(name string) error {
	switch {
	case name == "" || name == "." || name == ".." || len(name) > 255 || !utf8.ValidString(name),
		strings.ContainsAny(name, "/\\\"<"),
		strings.HasPrefix(name, "."),
		strings.TrimSpace(name) != name,
		strings.IndexFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf(`disccloud: name %q: the site drops a leading dot, quotes, backslashes, "<" and surrounding spaces: %w`, name, drivers.ErrInvalidName)
	}
	return nil
}

func clean(p string) string { return path.Clean("/" + p) }

// within reports whether p is base or below it.
func within(p, base string) bool {
	p, base = clean(p), clean(base)
	return p == base || base == "/" || strings.HasPrefix(p, base+"/")
}

// idOf returns ref's site id and whether it is a folder; the root has id
// "" and isDir true.
func idOf(ref drivers.Ref) (id string, isDir bool, err error) {
	if ref.ID == rootID || (ref.ID == "" && clean(ref.Path) == "/") {
		return "", true, nil
	}
	kind, id, ok := strings.Cut(ref.ID, ":")
	if !ok || id == "" || (kind != "d" && kind != "f") {
		return "", false, fmt.Errorf("%s has no id: %w", ref.Path, drivers.ErrNotFound)
	}
	return id, kind == "d", nil
}

// folderID is ref's folder id as a location (blank: the root).
func folderID(ref drivers.Ref) (string, error) {
	id, isDir, err := idOf(ref)
	if err == nil && !isDir {
		err = fmt.Errorf("%s is not a folder: %w", ref.Path, drivers.ErrNotFound)
	}
	return id, err
}

// destination is a folder id as a move or copy target ("null": the root).
func destination(id string) string {
	if id == "" {
		return "null"
	}
	return id
}

// folderJSON is a folder as the site describes it.
type folderJSON struct {
	ID          flex.ID  `json:"id"`
	ParentID    flex.ID  `json:"parentId"`
	Name        string   `json:"folderName"`
	TotalSize   flex.Int `json:"totalSize"`
	DateAdded   string   `json:"date_added"`
	DateUpdated string   `json:"date_updated"`
}

// fileJSON is a file as the site describes it.
type fileJSON struct {
	ID        flex.ID  `json:"id"`
	Name      string   `json:"filename"`
	Size      flex.Int `json:"fileSize"`
	Status    string   `json:"status"`
	FolderID  flex.ID  `json:"folderId"`
	Uploaded  string   `json:"uploadedDate"`
	Uploaded2 string   `json:"date_uploaded"`
}

func (d *Driver) date(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(s), d.loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

func (d *Driver) folderObject(f folderJSON) drivers.Object {
	t := d.date(f.DateUpdated)
	if t.IsZero() {
		t = d.date(f.DateAdded)
	}
	return drivers.Object{Name: f.Name, IsDir: true, ID: "d:" + string(f.ID), ModTime: t}
}

func (d *Driver) fileObject(f fileJSON) drivers.Object {
	t := d.date(f.Uploaded)
	if t.IsZero() {
		t = d.date(f.Uploaded2)
	}
	return drivers.Object{Name: f.Name, Size: int64(f.Size), ID: "f:" + string(f.ID), ModTime: t}
}

// Root is the account's root folder.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	return drivers.Object{ID: rootID, IsDir: true}, nil
}

// listing is one folder's answer.
type listing struct {
	Folders []folderJSON `json:"folders"`
	Files   []fileJSON   `json:"files"`
}

func (d *Driver) listing(ctx context.Context, dir drivers.Ref) (listing, error) {
	id, err := folderID(dir)
	if err != nil {
		return listing{}, err
	}
	var l listing
	err = d.call(ctx, request{path: "folder/listing", params: url.Values{"parent_folder_id": {id}}, data: &l})
	return l, err
}

// List reads a folder whole (the site has no paging).
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	objs, err := d.list(ctx, dir)
	if err != nil {
		return nil, fail("list", dir.Path, err)
	}
	return objs, nil
}

func (d *Driver) list(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	l, err := d.listing(ctx, dir)
	if err != nil {
		return nil, err
	}
	objs := make([]drivers.Object, 0, len(l.Folders)+len(l.Files))
	for _, f := range l.Folders {
		if f.ID != "" && f.Name != "" {
			objs = append(objs, d.folderObject(f))
		}
	}
	for _, f := range l.Files {
		if f.ID != "" && f.Name != "" && (f.Status == "" || f.Status == "active") {
			objs = append(objs, d.fileObject(f))
		}
	}
	return objs, nil
}

// Mkdir creates a folder. The site would make a second folder of a taken
// name, so the parent is listed first (ErrExist for a file or folder of
// that name), and Mkdirs of one mount run one at a time.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	p := path.Join(clean(parent.Path), name)
	if err := validName(name); err != nil {
		return drivers.Object{}, err
	}
	pid, err := folderID(parent)
	if err != nil {
		return drivers.Object{}, fail("mkdir", p, err)
	}
	d.mkdirMu.Lock()
	defer d.mkdirMu.Unlock()
	objs, err := d.list(ctx, parent)
	if err != nil {
		return drivers.Object{}, fail("mkdir", p, err)
	}
	for _, o := range objs {
		if o.Name == name {
			return drivers.Object{}, fail("mkdir", p, drivers.ErrExist)
		}
	}
	var f folderJSON
	params := url.Values{"folder_name": {name}, "is_public": {"0"}}
	if pid != "" {
		params.Set("parent_id", pid)
	}
	if err := d.call(ctx, request{path: "folder/create", params: params, data: &f}); err != nil {
		return drivers.Object{}, fail("mkdir", p, err)
	}
	if f.ID == "" {
		return drivers.Object{}, fail("mkdir", p, errors.New("no folder id in the answer"))
	}
	o := d.folderObject(f)
	if o.Name != name {
		d.cleanup(ctx, drivers.Ref{Path: p, Object: o})
		return drivers.Object{}, fail("mkdir", p, fmt.Errorf("the site named it %q: %w", o.Name, drivers.ErrInvalidName))
	}
	return o, nil
}

// Rename renames in place (/file/edit or /folder/edit).
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	o, err := d.edit(ctx, obj, newName, "", false)
	if err != nil {
		return drivers.Object{}, fail("rename", obj.Path, err)
	}
	return o, nil
}

// edit renames obj (newName != "") and/or moves it into the folder dst
// (move set; dst "" is the root) in one call, and checks the answer.
func (d *Driver) edit(ctx context.Context, obj drivers.Ref, newName, dst string, move bool) (drivers.Object, error) {
	id, isDir, err := idOf(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	if id == "" {
		return drivers.Object{}, fmt.Errorf("the root: %w", drivers.ErrPermission)
	}
	var (
		o        drivers.Object
		gotName  string
		gotPlace string
	)
	if isDir {
		params := url.Values{"folder_id": {id}}
		if newName != "" {
			params.Set("folder_name", newName)
		}
		if move {
			params.Set("parent_id", destination(dst))
		}
		var f folderJSON
		if err := d.call(ctx, request{path: "folder/edit", params: params, data: &f}); err != nil {
			return drivers.Object{}, err
		}
		o, gotName, gotPlace = d.folderObject(f), f.Name, string(f.ParentID)
	} else {
		params := url.Values{"file_id": {id}}
		if newName != "" {
			params.Set("filename", newName)
		}
		if move {
			params.Set("folder_id", destination(dst))
		}
		var f fileJSON
		if err := d.call(ctx, request{path: "file/edit", params: params, data: &f}); err != nil {
			return drivers.Object{}, err
		}
		o, gotName, gotPlace = d.fileObject(f), f.Name, string(f.FolderID)
	}
	if o.ID == "d:" || o.ID == "f:" {
		o.ID = obj.ID // an answer without the object: trust the call
	}
	if newName != "" && gotName != "" && gotName != newName {
		return o, fmt.Errorf("the site named it %q: %w", gotName, drivers.ErrInvalidName)
	}
	if move && gotName != "" && gotPlace != dst {
		return o, fmt.Errorf("the site put it in folder %q, not %q: %w", gotPlace, dst, drivers.ErrUnavailable)
	}
	if o.Name == "" {
		o.Name = newName
	}
	if !isDir && o.Size == 0 {
		o.Size = obj.Size
	}
	return o, nil
}

// Move moves obj into dstParent as newName in one edit call. A folder is
// never moved into itself or below: the site would accept it and lose the
// subtree.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	if obj.IsDir && within(dstParent.Path, obj.Path) {
		return drivers.Object{}, fail("move", obj.Path, fmt.Errorf("into itself (%s): %w", dstParent.Path, drivers.ErrPermission))
	}
	dst, err := folderID(dstParent)
	if err != nil {
		return drivers.Object{}, fail("move", obj.Path, err)
	}
	rename := ""
	if newName != path.Base(clean(obj.Path)) {
		rename = newName
	}
	o, err := d.edit(ctx, obj, rename, dst, true)
	if err != nil {
		return drivers.Object{}, fail("move", obj.Path, err)
	}
	return o, nil
}

// Copy copies a file server-side (/file/copy, then /file/edit for its new
// name); folders are the bridge's to recurse (Features.CopyDir false).
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	id, isDir, err := idOf(obj)
	if err == nil && isDir {
		err = fmt.Errorf("folders are not copied server-side: %w", drivers.ErrNotSupported)
	}
	if err != nil {
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	dst, err := folderID(dstParent)
	if err != nil {
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	var out struct {
		New struct {
			Data fileJSON `json:"data"`
		} `json:"new_file"`
	}
	rq := request{path: "file/copy", params: url.Values{"file_id": {id}, "copy_to_folder_id": {destination(dst)}}, whole: &out}
	if err := d.call(ctx, rq); err != nil {
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	if out.New.Data.ID == "" {
		return drivers.Object{}, fail("copy", obj.Path, errors.New("no new file in the answer"))
	}
	c := d.fileObject(out.New.Data)
	cref := drivers.Ref{Path: path.Join(clean(dstParent.Path), c.Name), Object: c}
	if c.Name != newName {
		o, err := d.edit(ctx, cref, newName, "", false)
		if err != nil {
			d.cleanup(ctx, cref)
			return drivers.Object{}, fail("copy", obj.Path, err)
		}
		c = o
	}
	return c, nil
}

// Remove moves obj to the site's trash (a folder with its content).
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	if err := d.remove(ctx, obj); err != nil {
		return fail("remove", obj.Path, err)
	}
	return nil
}

func (d *Driver) remove(ctx context.Context, obj drivers.Ref) error {
	id, isDir, err := idOf(obj)
	if err != nil {
		return err
	}
	switch {
	case id == "":
		return fmt.Errorf("the root: %w", drivers.ErrPermission)
	case isDir:
		return d.call(ctx, request{path: "folder/delete", params: url.Values{"folder_id": {id}}})
	default:
		return d.call(ctx, request{path: "file/delete", params: url.Values{"file_id": {id}}})
	}
}

// cleanup removes an object the driver made for a step that failed; it
// runs even when the request was cancelled.
func (d *Driver) cleanup(ctx context.Context, obj drivers.Ref) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := d.remove(ctx, obj); err != nil && !errors.Is(classify(err), drivers.ErrNotFound) {
		d.log.Warn().Str("path", obj.Path).Str("error", classify(err).Error()).Msg("disccloud: a temporary object was left behind")
	}
}

// packageInfo is what the driver uses of /account/package.
type packageInfo struct {
	maxUpload  int64
	maxStorage int64
	at         time.Time
}

// packageLimits returns the package's limits, read at most every
// packageTTL.
func (d *Driver) packageLimits(ctx context.Context) (packageInfo, error) {
	d.pkgMu.Lock()
	p := d.pkg
	d.pkgMu.Unlock()
	if !p.at.IsZero() && d.now().Sub(p.at) < packageTTL {
		return p, nil
	}
	var out struct {
		MaxUpload  flex.Int `json:"max_upload_size"`
		MaxStorage flex.Int `json:"max_storage_bytes"`
	}
	if err := d.call(ctx, request{path: "account/package", data: &out}); err != nil {
		return p, err
	}
	p = packageInfo{maxUpload: int64(out.MaxUpload), maxStorage: int64(out.MaxStorage), at: d.now()}
	d.pkgMu.Lock()
	d.pkg = p
	d.pkgMu.Unlock()
	return p, nil
}

// Quota is the package's storage and what the root holds.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	p, err := d.packageLimits(ctx)
	if err != nil {
		return drivers.Quota{}, fail("quota", "", err)
	}
	l, err := d.listing(ctx, drivers.Ref{Path: "/", Object: drivers.Object{ID: rootID, IsDir: true}})
	if err != nil {
		return drivers.Quota{}, fail("quota", "", err)
	}
	var used int64
	for _, f := range l.Folders {
		used += int64(f.TotalSize)
	}
	for _, f := range l.Files {
		if f.Status == "" || f.Status == "active" {
			used += int64(f.Size)
		}
	}
	q := drivers.Quota{Total: -1, Used: used, Free: -1}
	if p.maxStorage > 0 {
		q.Total, q.Free = p.maxStorage, max(0, p.maxStorage-used)
	}
	return q, nil
}

// Check tells /healthz whether the token works (a refused /authorize is
// ErrAuthExpired).
func (d *Driver) Check(ctx context.Context) error {
	if err := d.call(ctx, request{path: "account/info"}); err != nil {
		return fail("check", "", err)
	}
	return nil
}

var (
	_ drivers.Checker     = (*Driver)(nil)
	_ drivers.LinkChecker = (*Driver)(nil)
	_ drivers.URLImporter = (*Driver)(nil)
)
