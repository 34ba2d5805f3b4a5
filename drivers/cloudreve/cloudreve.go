// Package cloudreve is the driver for Cloudreve v3 community servers
// (../shared/providers/cloudreve-v3.md, checked against 3.8.3 as recorded
// in NOTES.md).
//
// Listing is by path, every other operation by id; files and folders have
// separate id spaces, so Object.ID is "f:<id>" or "d:<id>". Every answer
// is HTTP 200 with a JSON code, which classify (client.go) maps onto the
// contract's kinds.
//
// Where the documents are unclear or the server surprising, the driver
// takes these readings (tolerating both where there are two):
//   - base_url is the site ("https://cloud.example.com", maybe with a path
//     prefix); a trailing "/api/v3" is accepted and dropped.
//   - Login: JSON {"userName","Password","captchaCode"} with a capital P
//     (the only spelling the server reads). Code 203 asks for a second
//     factor: the code is computed from totp_secret and posted to
//     /user/2fa with the cookie of the first step; the cookie of whichever
//     step set one is kept. A session_cookie option is used until the
//     server refuses it. The cookie is kept in the state dir (0600, atomic)
//     with the base_url and username it belongs to.
//   - A call answered {"code":401} logs in again (once for all concurrent
//     callers that saw the same session fail) and is retried once. A
//     refused login is remembered for a minute (loginBackoff) instead of
//     being retried on every call.
//   - A non-200 answer carrying the JSON envelope is read by its code; one
//     without it is a proxy's error (429 → ErrRateLimited, else
//     ErrUnavailable).
//   - Retries go through the drivers' shared pacer (drivers/pacer): a
//     proxy's 429 or 5xx is retried with backoff, honouring Retry-After up
//     to 30 s (longer: 503 + Retry-After to the client); a lost connection
//     only for GETs, chunks and download URLs, never for a move, copy,
//     rename, delete, mkdir or upload session, whose lost answer may hide
//     a success. A login meets the same rules; a refused one is
//     remembered for a minute.
//   - Dates are RFC 3339 (the server's); "2006-01-02 15:04:05" is read
//     too, anything else is a zero time. Ids may come as strings or numbers.
//   - Download URLs are relative ("/api/v3/file/download/..."): they are
//     joined to base_url keeping its path prefix; an absolute URL is used
//     as it is. They carry their signature and need no cookie, so links
//     are ClientSafe (download = "redirect" is allowed). A link's expiry
//     is the one its signature carries (sign=<sig>:<unix time>), never an
//     assumed 600 s: servers set download_timeout as they like. A dead
//     link (expired signature, or a download session the server forgot in
//     a restart) answers HTTP 200 with the JSON envelope; CheckDownload
//     recognises it so the bridge never serves it as the file's bytes.
//   - mkdir is mkdir -p on the server and succeeds on an existing folder,
//     and DELETE answers 0 for a missing id: Mkdir and Remove read the
//     parent's listing first to answer ErrExist and ErrNotFound.
//   - move and copy act on the objects whose parent is src_dir and answer
//     0 even when they skipped one; src_dir is always the parent of the
//     Ref's path, and the result is looked for in the destination's
//     listing (ErrNotFound when it is not there). copy keeps names and
//     takes one object, so a copy under a new name is copy then rename
//     (through a temporary folder when the old name is taken at the
//     destination).
//   - Uploads follow the parent's policy from its last listing (refreshed
//     on 40035): "local" posts chunks of exactly chunkSize in order (a
//     0-byte file posts one empty chunk 0); "onedrive" PUTs Content-Range
//     pieces of chunkSize to uploadURLs[0] without the cookie (200, 201 and
//     202 all count as taken; after a cut or a 5xx a GET on the URL gives
//     nextExpectedRanges, as on Graph, and the upload goes on from there),
//     then posts the finish callback (with the cookie, which the server
//     does not need). Other policies are ErrNotSupported. A failed or
//     cancelled upload deletes its session.
//   - The server refuses an existing name (40004), so an overwrite uploads
//     under a hidden temporary name and swaps (old aside, new into place,
//     old deleted; a failed swap puts the old one back). A 40004 for a
//     file the bridge did not know of is treated as an overwrite of it; a
//     40054 (a crashed upload's session holds the name) goes through a
//     temporary name too. Temporary names keep the extension, which a
//     policy may restrict.
//   - Rename, move and copy reset the server's date, so modification times
//     are not kept (Features.SetModTime is false; the bridge keeps them),
//     though new uploads send last_modified from the client's X-OC-Mtime.
//   - The server accepts moving a folder into its own descendant and
//     orphans it: Move (and Copy) refuse that with ErrPermission.
//   - Names with \ ? * < " : > / | or a trailing space (40052) are refused
//     with ErrInvalidName before any call.
package cloudreve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
const Name = "cloudreve"

// Options are the [mounts.options] of a Cloudreve mount.
type Options struct {
	BaseURL    string `toml:"base_url"`
	Username   string `toml:"username"` // the account's email
	Password   string `toml:"password"`
	TOTPSecret string `toml:"totp_secret"` // base32, when the account has a second factor
	// SessionCookie is an existing cloudreve-session value, used instead of
	// logging in until the server refuses it.
	SessionCookie string `toml:"session_cookie"`
}

// Driver is one Cloudreve account.
type Driver struct {
	opts   Options
	api    string   // base_url + "/api/v3"
	site   *url.URL // base_url, for relative download URLs
	client *http.Client
	log    zerolog.Logger
	state  drivers.State // the session record (sessionRecord)
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error // waits between retries
	gate   pacer.Gate                                       // a rate limit met by one call holds the others back

	login *auth.Relogin[string] // the session cookie, one login for all callers

	polMu    sync.Mutex
	policies map[string]policy // by folder path, from listings
}

// policy is a folder's storage policy as listings give it.
type policy struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	MaxSize int64  `json:"max_size"`
}

// New is the drivers.Factory of Cloudreve. It logs in at once unless it
// has a session; a failed login does not fail the mount (Check reports it
// and calls retry it).
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, fmt.Errorf("cloudreve: %w", err)
	}
	if o.BaseURL == "" || (o.SessionCookie == "" && (o.Username == "" || o.Password == "")) {
		return nil, errors.New("cloudreve: base_url and username and password (or session_cookie) are required")
	}
	o.BaseURL = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(o.BaseURL, "/"), "/api/v3"), "/")
	site, err := url.Parse(o.BaseURL)
	if err != nil || (site.Scheme != "http" && site.Scheme != "https") || site.Host == "" {
		return nil, errors.New("cloudreve: base_url must be an http or https URL")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	d := &Driver{opts: o, api: o.BaseURL + "/api/v3", site: site, client: client, log: cfg.Logger,
		now: time.Now, sleep: pacer.Sleep, policies: map[string]policy{}}
	d.state = cfg.StateOf()
	d.login = &auth.Relogin[string]{Login: d.runLogin, Key: func(c string) string { return c },
		Refused: func(err error) bool { return errors.Is(err, drivers.ErrAuthExpired) },
		Backoff: loginBackoff, Now: func() time.Time { return d.now() }}
	d.login.ShareThrough(d.state, sessionRecord, d.savedCookie)
	d.login.Set(o.SessionCookie)
	if b, err := d.state.Load(ctx, sessionRecord); err != nil {
		return nil, fmt.Errorf("cloudreve: %w", err)
	} else if c := d.savedCookie(b); c != "" {
		d.login.Set(c)
	}
	if d.login.Peek() == "" {
		if _, err := d.relogin(ctx, ""); err != nil {
			d.log.Warn().Str("error", err.Error()).Msg("cloudreve: login at start failed; calls will retry it")
		}
	}
	return d, nil
}

// Features of Cloudreve.
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true,
		ListsByPath: true} // GET /directory{path}; ids are looked up lazily (splitID)
}

// fail wraps err with what was being done, classified.
func fail(op, p string, err error) error {
	if p != "" {
		op += " " + p
	}
	return fmt.Errorf("cloudreve: %s: %w", op, classify(err))
}

// validName is the server's rule (40052), checked before any call.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || utf8.RuneCountInString(name) > 255 ||
		strings.ContainsAny(name, `\?*<":>/|`) || strings.HasSuffix(name, " ") {
		return fmt.Errorf(`cloudreve: name %q: Cloudreve refuses names with \ ? * < " : > / |, a trailing space or over 255 characters: %w`, name, drivers.ErrInvalidName)
	}
	return nil
}

func clean(p string) string { return path.Clean("/" + p) }

// named fills ref's Name from its path: a Ref is only promised its path,
// ID and IsDir.
func named(ref drivers.Ref) drivers.Ref {
	ref.Path = clean(ref.Path)
	ref.Name = path.Base(ref.Path)
	return ref
}

// dirURL is the listing path of a folder, each segment escaped.
func dirURL(p string) string {
	var segs []string
	for _, s := range strings.Split(clean(p), "/") {
		if s != "" {
			segs = append(segs, url.PathEscape(s))
		}
	}
	return "/directory/" + strings.Join(segs, "/")
}

// within reports whether p is base or below it.
func within(p, base string) bool {
	p, base = clean(p), clean(base)
	return p == base || base == "/" || strings.HasPrefix(p, base+"/")
}

type object struct {
	ID   flex.ID `json:"id"`
	Name string  `json:"name"`
	Size int64   `json:"size"`
	Type string  `json:"type"`
	Date string  `json:"date"`
}

func parseDate(s string) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if t, err := time.ParseInLocation(time.DateTime, s, time.Local); err == nil {
		return t
	}
	return time.Time{}
}

func (o object) toObject() drivers.Object {
	obj := drivers.Object{Name: o.Name, Size: o.Size, ModTime: parseDate(o.Date), IsDir: o.Type == "dir"}
	if obj.IsDir {
		obj.ID, obj.Size = "d:"+string(o.ID), 0
	} else {
		obj.ID = "f:" + string(o.ID)
	}
	return obj
}

// Root is the drive's root; operations never address it by id.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	return drivers.Object{ID: "d:/", IsDir: true}, nil
}

// List reads a folder (all entries at once; the server has no paging) and
// remembers its storage policy for uploads.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	objs, err := d.list(ctx, dir.Path)
	if err != nil {
		return nil, fail("list", dir.Path, err)
	}
	return objs, nil
}

func (d *Driver) list(ctx context.Context, dir string) ([]drivers.Object, error) {
	var out struct {
		Objects []object `json:"objects"`
		Policy  policy   `json:"policy"`
	}
	if err := d.call(ctx, request{method: http.MethodGet, path: dirURL(dir), out: &out}); err != nil {
		return nil, err
	}
	d.polMu.Lock()
	if len(d.policies) > 4096 {
		d.policies = map[string]policy{} // a cache, not a record of every folder
	}
	d.policies[clean(dir)] = out.Policy
	d.polMu.Unlock()
	objs := make([]drivers.Object, 0, len(out.Objects))
	for _, o := range out.Objects {
		if o.Name != "" && o.ID != "" {
			objs = append(objs, o.toObject())
		}
	}
	return objs, nil
}

// find lists parent and returns the entry called name of the kind asked.
func (d *Driver) find(ctx context.Context, parent, name string, isDir bool) (drivers.Object, error) {
	objs, err := d.list(ctx, parent)
	if err != nil {
		return drivers.Object{}, err
	}
	for _, o := range objs {
		if o.Name == name && o.IsDir == isDir {
			return o, nil
		}
	}
	return drivers.Object{}, fmt.Errorf("%s is not listed: %w", path.Join(clean(parent), name), drivers.ErrNotFound)
}

// splitID returns the server's id of ref and whether it is a folder. An
// object the driver has just made carries no id yet (see lazyID): it is
// looked up by path, in its folder's listing, the first time one is needed.
func (d *Driver) splitID(ctx context.Context, ref drivers.Ref) (string, bool, error) {
	kind, id, ok := strings.Cut(ref.ID, ":")
	if ref.ID == "" || kind == lazyKind {
		p := clean(ref.Path)
		if p == "/" {
			return "", false, fmt.Errorf("the root has no id: %w", drivers.ErrNotFound)
		}
		o, err := d.find(ctx, path.Dir(p), path.Base(p), ref.IsDir)
		if err != nil {
			return "", false, err
		}
		kind, id, ok = strings.Cut(o.ID, ":")
	}
	if !ok || id == "" || id == "/" || (kind != "f" && kind != "d") {
		return "", false, fmt.Errorf("%s has no id: %w", ref.Path, drivers.ErrNotFound)
	}
	return id, kind == "d", nil
}

// lazyKind marks the ID of an object the driver made (an upload, a new
// folder) without learning the server's id: Cloudreve's answers do not
// carry it, and listing the whole folder to find it would make every
// upload cost more the fuller its folder is.
const lazyKind = "new"

// lazyID is such an ID; unique, so that caches keyed by ID never mix
// two versions of one path.
func lazyID(p string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return lazyKind + ":" + hex.EncodeToString(b) + ":" + p
}

// srcOf is the {items, dirs} naming ref.
func (d *Driver) srcOf(ctx context.Context, ref drivers.Ref) (map[string][]string, error) {
	id, isDir, err := d.splitID(ctx, ref)
	if err != nil {
		return nil, err
	}
	if isDir {
		return map[string][]string{"items": {}, "dirs": {id}}, nil
	}
	return map[string][]string{"items": {id}, "dirs": {}}, nil
}

// Link asks for a signed download URL and makes it absolute.
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	id, isDir, err := d.splitID(ctx, file)
	if err == nil && isDir {
		err = fmt.Errorf("a folder has no link: %w", drivers.ErrNotFound)
	}
	if err != nil {
		return drivers.Link{}, fail("link", file.Path, err)
	}
	var rel string
	asked := d.now()
	if err := d.call(ctx, request{method: http.MethodPut, path: "/file/download/" + url.PathEscape(id), out: &rel}); err != nil {
		return drivers.Link{}, fail("link", file.Path, err)
	}
	u, err := d.resolve(rel)
	if err != nil {
		return drivers.Link{}, fail("link", file.Path, err)
	}
	return drivers.Link{URL: u, Expires: signExpiry(u, asked), ClientSafe: true}, nil
}

// signExpiry reads a download URL's expiry from its signature, which the
// server writes as sign=<signature>:<unix time>. A URL without one is
// taken to live no longer than the request at hand (Expires = asked): its
// lifetime is not guessed.
func signExpiry(rawURL string, asked time.Time) time.Time {
	u, err := url.Parse(rawURL)
	if err != nil {
		return asked
	}
	sign := u.Query().Get("sign")
	i := strings.LastIndexByte(sign, ':')
	if i < 0 {
		return asked
	}
	secs, err := strconv.ParseInt(sign[i+1:], 10, 64)
	if err != nil || secs <= 0 {
		return asked
	}
	return time.Unix(secs, 0)
}

// CheckDownload recognises a dead link's answer (drivers.LinkChecker): the
// server answers HTTP 200 with its JSON envelope and a non-zero code
// ({"code":404,"msg":"Download session not exist"} after a restart,
// 40005 for an expired signature) where the file should be. The file
// itself comes as an attachment (Content-Disposition), which the error
// never does, so a file holding such JSON is still served; from a server
// that sends no Content-Disposition it would be refused (502), the safe
// side.
func (d *Driver) CheckDownload(resp *http.Response, head []byte) error {
	if strings.HasPrefix(strings.TrimSpace(strings.ToLower(resp.Header.Get("Content-Disposition"))), "attachment") {
		return nil
	}
	trimmed := bytes.TrimSpace(head)
	if len(trimmed) == 0 || trimmed[0] != '{' || len(head) >= 512 {
		return nil
	}
	var env map[string]json.RawMessage
	if json.Unmarshal(trimmed, &env) != nil {
		return nil
	}
	var code int
	var msg string
	if json.Unmarshal(env["code"], &code) != nil || code == 0 || json.Unmarshal(env["msg"], &msg) != nil {
		return nil
	}
	for k := range env {
		if k != "code" && k != "msg" && k != "data" && k != "error" {
			return nil
		}
	}
	return fmt.Errorf("the link answered the server's error code %d instead of the file", code)
}

// resolve makes a download URL absolute: a path is joined to base_url
// (keeping a path prefix of a server behind a reverse proxy).
func (d *Driver) resolve(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return "", errors.New("the server gave no usable download URL")
	}
	if u.IsAbs() {
		return raw, nil
	}
	if strings.HasPrefix(raw, "/") {
		return d.opts.BaseURL + raw, nil
	}
	return d.site.JoinPath("/").ResolveReference(u).String(), nil
}

// Mkdir creates a folder; an existing name (file or folder) is ErrExist,
// since the server's mkdir -p would succeed on a folder and add a folder
// beside a file.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	p := path.Join(clean(parent.Path), name)
	if err := validName(name); err != nil {
		return drivers.Object{}, err
	}
	objs, err := d.list(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, fail("mkdir", p, err)
	}
	for _, o := range objs {
		if o.Name == name {
			return drivers.Object{}, fail("mkdir", p, drivers.ErrExist)
		}
	}
	return d.mkdir(ctx, parent.Path, name)
}

// mkdir creates a folder without checking the name is free.
func (d *Driver) mkdir(ctx context.Context, parent, name string) (drivers.Object, error) {
	p := path.Join(clean(parent), name)
	if err := d.call(ctx, request{method: http.MethodPut, path: "/directory", json: map[string]string{"path": p}}); err != nil {
		return drivers.Object{}, fail("mkdir", p, err)
	}
	// The answer carries no id; it is looked up when first needed.
	return drivers.Object{Name: name, IsDir: true, ID: lazyID(p), ModTime: d.now()}, nil
}

// Rename renames in place (the server resets the date).
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	obj = named(obj)
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	if err := d.rename(ctx, obj, newName); err != nil {
		return drivers.Object{}, fail("rename", obj.Path, err)
	}
	o := obj.Object
	o.Name, o.ModTime = newName, d.now()
	return o, nil
}

func (d *Driver) rename(ctx context.Context, obj drivers.Ref, newName string) error {
	src, err := d.srcOf(ctx, obj)
	if err != nil {
		return err
	}
	return d.call(ctx, request{method: http.MethodPost, path: "/object/rename",
		json: map[string]any{"action": "rename", "src": src, "new_name": newName}})
}

// tempName is a hidden name for an object in transit; it keeps name's
// extension, since a policy may restrict extensions.
func tempName(name, what string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return ".bridge-" + what + "-" + hex.EncodeToString(b) + path.Ext(name)
}

// moveInto moves obj (keeping its name) from the folder of its path into
// dst: src_dir must be its real parent, or the server skips it.
func (d *Driver) moveInto(ctx context.Context, obj drivers.Ref, dst string) error {
	src, err := d.srcOf(ctx, obj)
	if err != nil {
		return err
	}
	return d.call(ctx, request{method: http.MethodPatch, path: "/object",
		json: map[string]any{"action": "move", "src_dir": clean(path.Dir(clean(obj.Path))), "src": src, "dst": clean(dst)}})
}

// Move moves obj into dstParent as newName. A folder is never moved into
// itself or its descendants (ErrPermission): the server would accept it
// and orphan the subtree. A new name is given in the source folder first
// (through a temporary name when it is taken there), and undone if the
// move fails.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	obj = named(obj)
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	if obj.IsDir && within(dstParent.Path, obj.Path) {
		return drivers.Object{}, fail("move", obj.Path, fmt.Errorf("into itself (%s): %w", dstParent.Path, drivers.ErrPermission))
	}
	srcDir := path.Dir(clean(obj.Path))
	if clean(dstParent.Path) == srcDir {
		if newName == obj.Name {
			return obj.Object, nil
		}
		return d.Rename(ctx, obj, newName)
	}
	cur := obj
	if newName != obj.Name {
		step := newName
		err := d.rename(ctx, cur, step)
		if errors.Is(classify(err), drivers.ErrExist) {
			step = tempName(newName, "move")
			err = d.rename(ctx, cur, step)
		}
		if err != nil {
			return drivers.Object{}, fail("move", obj.Path, err)
		}
		cur.Path, cur.Name = path.Join(srcDir, step), step
	}
	err := d.moveInto(ctx, cur, dstParent.Path)
	var moved drivers.Object
	if err == nil {
		// The server answers 0 even when it skipped the object (no longer
		// in src_dir): the destination's listing tells.
		moved, err = d.find(ctx, dstParent.Path, cur.Name, cur.IsDir)
	}
	if err != nil {
		if cur.Name != obj.Name {
			if rerr := d.rename(context.WithoutCancel(ctx), cur, obj.Name); rerr != nil {
				d.log.Warn().Str("path", cur.Path).Str("error", classify(rerr).Error()).Msg("cloudreve: a failed move left an object renamed")
			}
		}
		return drivers.Object{}, fail("move", obj.Path, err)
	}
	cur.Path, cur.Object = path.Join(clean(dstParent.Path), cur.Name), moved
	if cur.Name != newName {
		if err := d.rename(ctx, cur, newName); err != nil {
			return drivers.Object{}, fail("move", obj.Path, err)
		}
		moved.Name, moved.ModTime = newName, d.now()
	}
	return moved, nil
}

// copyInto copies one object (keeping its name) into dst and finds the
// copy there.
func (d *Driver) copyInto(ctx context.Context, obj drivers.Ref, dst string) (drivers.Object, error) {
	src, err := d.srcOf(ctx, obj)
	if err != nil {
		return drivers.Object{}, err
	}
	body := map[string]any{"src_dir": clean(path.Dir(clean(obj.Path))), "src": src, "dst": clean(dst)}
	if err := d.call(ctx, request{method: http.MethodPost, path: "/object/copy", json: body}); err != nil {
		return drivers.Object{}, err
	}
	return d.find(ctx, dst, obj.Name, obj.IsDir)
}

// Copy copies obj (one server call: copy takes one object) into
// dstParent as newName. The server keeps names, so a new name is a rename
// of the copy, made in a temporary folder when the old name is taken at
// the destination.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	obj = named(obj)
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	if obj.IsDir && within(dstParent.Path, obj.Path) {
		return drivers.Object{}, fail("copy", obj.Path, fmt.Errorf("into itself (%s): %w", dstParent.Path, drivers.ErrPermission))
	}
	if _, _, err := d.splitID(ctx, obj); err != nil {
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	dst := clean(dstParent.Path)
	if newName == obj.Name {
		o, err := d.copyInto(ctx, obj, dst)
		if err != nil {
			return drivers.Object{}, fail("copy", obj.Path, err)
		}
		return o, nil
	}
	objs, err := d.list(ctx, dst)
	if err != nil {
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	taken := false
	for _, o := range objs {
		taken = taken || (o.Name == obj.Name && o.IsDir == obj.IsDir)
	}
	via := dst
	if taken {
		tmp, err := d.mkdir(ctx, dst, tempName("", "copy"))
		if err != nil {
			return drivers.Object{}, err
		}
		via = path.Join(dst, tmp.Name)
		defer d.cleanup(ctx, drivers.Ref{Path: via, Object: tmp})
	}
	c, err := d.copyInto(ctx, obj, via)
	if err != nil {
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	cref := drivers.Ref{Path: path.Join(via, c.Name), Object: c}
	if err := d.rename(ctx, cref, newName); err != nil {
		if !taken {
			d.cleanup(ctx, cref)
		}
		return drivers.Object{}, fail("copy", obj.Path, err)
	}
	cref.Path, cref.Name = path.Join(via, newName), newName
	if taken {
		if err := d.moveInto(ctx, cref, dst); err != nil {
			return drivers.Object{}, fail("copy", obj.Path, err)
		}
	}
	c.Name, c.ModTime = newName, d.now()
	return c, nil
}

// cleanup removes an object the driver made for a step that failed or
// finished; it runs even when the request was cancelled.
func (d *Driver) cleanup(ctx context.Context, obj drivers.Ref) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	src, err := d.srcOf(ctx, obj)
	if err == nil {
		err = d.call(ctx, request{method: http.MethodDelete, path: "/object", json: src})
	}
	if err != nil {
		d.log.Warn().Str("path", obj.Path).Str("error", classify(err).Error()).Msg("cloudreve: a temporary object was left behind")
	}
}

// Remove deletes obj (a folder with its content). The server answers 0
// for a missing id, so the parent is listed first: a name no longer there
// is ErrNotFound, and the listed object is the one deleted.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	obj = named(obj)
	if clean(obj.Path) == "/" {
		return fail("remove", "/", drivers.ErrPermission)
	}
	cur, err := d.find(ctx, path.Dir(clean(obj.Path)), obj.Name, obj.IsDir)
	if err != nil {
		return fail("remove", obj.Path, err)
	}
	src, err := d.srcOf(ctx, drivers.Ref{Path: obj.Path, Object: cur})
	if err == nil {
		err = d.call(ctx, request{method: http.MethodDelete, path: "/object", json: src})
	}
	if err != nil {
		return fail("remove", obj.Path, err)
	}
	return nil
}

// Quota reports the account's storage.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	var out struct {
		Used  int64 `json:"used"`
		Free  int64 `json:"free"`
		Total int64 `json:"total"`
	}
	if err := d.call(ctx, request{method: http.MethodGet, path: "/user/storage", out: &out}); err != nil {
		return drivers.Quota{}, fail("quota", "", err)
	}
	return drivers.Quota{Total: out.Total, Used: out.Used, Free: out.Free}, nil
}

// Check tells /healthz whether the session works (a refused login is
// ErrAuthExpired).
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.Quota(ctx)
	return err
}

var _ drivers.Checker = (*Driver)(nil)

// itoa is strconv.Itoa, for chunk indexes.
func itoa(i int) string { return strconv.Itoa(i) }
