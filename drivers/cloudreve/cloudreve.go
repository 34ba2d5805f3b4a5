// Package cloudreve is the driver for Cloudreve v3 community servers
// (../shared/providers/cloudreve-v3.md, checked against 3.8.3 as recorded
// in NOTES.md).
//
// Every answer is HTTP 200 with a JSON code; listing is by path, other
// operations by id (files and folders have separate id spaces, so
// Object.ID is "f:<id>" or "d:<id>"). Decisions where the documents are
// silent or the server is surprising:
//   - A session cookie (cloudreve-session) comes from logging in (with the
//     TOTP code computed from totp_secret when the server asks for a second
//     factor), is kept in the mount's state dir, and is renewed by logging in
//     again when a call answers 401; the call is then retried once.
//     Concurrent callers share one login.
//   - Names with \ ? * < " : > / | or a trailing space are refused before
//     any upload (ErrInvalidName → 400).
//   - Uploads refuse an existing name, so an overwrite uploads under a
//     temporary name, deletes the old file and renames the new one. Rename
//     resets a file's date, so modification times are not kept
//     (Features.SetModTime is false), though new uploads send last_modified.
//   - Mkdir is mkdir -p on the server, which succeeds on an existing folder:
//     the driver checks the parent's listing first to answer ErrExist.
//   - DELETE of a missing id answers 0: Remove checks the parent's listing
//     first to answer ErrNotFound.
//   - copy takes one object and keeps names: a copy under a new name goes
//     through a temporary folder (copy, rename, move).
//   - The server accepts moving a folder into its own descendant and orphans
//     it: Move refuses that (ErrPermission).
//   - Download URLs are relative; resolved against base_url they carry their
//     own signature and no cookie, so download = "redirect" is allowed.
package cloudreve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"bridge/auth"
	"bridge/drivers"
)

// Name is the driver's name in configuration files.
const Name = "cloudreve"

// Options are the [mounts.options] of a Cloudreve mount.
type Options struct {
	BaseURL    string `toml:"base_url"`
	Username   string `toml:"username"` // the account's email
	Password   string `toml:"password"`
	TOTPSecret string `toml:"totp_secret"` // when the account has a second factor
	// SessionCookie is an existing cloudreve-session value, used instead of
	// logging in until the server drops it.
	SessionCookie string `toml:"session_cookie"`
}

const cookieName = "cloudreve-session"

// Driver is one Cloudreve account.
type Driver struct {
	opts   Options
	client *http.Client
	log    zerolog.Logger
	file   string // where the session cookie is kept
	now    func() time.Time

	mu     sync.Mutex
	cookie string
	gen    int // bumped by each login, so one 401 logs in once

	polMu    sync.Mutex
	policies map[string]policy // by folder path, from listings
}

type policy struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// New is the drivers.Factory of Cloudreve.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, err
	}
	if o.BaseURL == "" || (o.SessionCookie == "" && (o.Username == "" || o.Password == "")) {
		return nil, errors.New("cloudreve: options base_url and username and password (or session_cookie) are required")
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	d := &Driver{opts: o, client: cfg.HTTPClient, log: cfg.Logger, now: time.Now,
		file: filepath.Join(cfg.StateDir, "session.json"), policies: map[string]policy{}}
	var saved struct{ Cookie string }
	if b, err := os.ReadFile(d.file); err == nil && json.Unmarshal(b, &saved) == nil {
		d.cookie = saved.Cookie
	}
	if d.cookie == "" {
		d.cookie = o.SessionCookie
	}
	if d.cookie == "" {
		// Log in at start; a failure is reported and retried on first use.
		if err := d.login(ctx, 0); err != nil {
			d.log.Warn().Str("error", err.Error()).Msg("cloudreve: login at start failed; retrying on first use")
		}
	}
	return d, nil
}

// Features of Cloudreve.
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true}
}

// codeError is a JSON code other than 0.
type codeError struct {
	Code int
	Msg  string
}

func (e *codeError) Error() string { return fmt.Sprintf("cloudreve: code %d: %s", e.Code, e.Msg) }

// classify maps the server's codes onto the contract's kinds: the one place
// that knows them.
func classify(err error) error {
	var ce *codeError
	if !errors.As(err, &ce) {
		return err
	}
	var kind error
	switch ce.Code {
	case 40004, 40054:
		kind = drivers.ErrExist
	case 40016, 40044:
		kind = drivers.ErrNotFound
	case 40049:
		kind = drivers.ErrTooLarge
	case 40051:
		kind = drivers.ErrQuota
	case 40052:
		kind = drivers.ErrInvalidName
	case 40053:
		kind = drivers.ErrPermission
	case 401, 203, 40005, 40020:
		kind = drivers.ErrAuthExpired
	default:
		kind = drivers.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ce, kind)
}

// do sends one request and decodes the envelope's data into out. cookie
// and the login generation it belongs to are returned for 401 handling.
func (d *Driver) do(ctx context.Context, method, p string, body any, raw []byte, out any) (*http.Response, error) {
	var rd io.Reader
	ct := ""
	switch {
	case body != nil:
		b, _ := json.Marshal(body)
		rd, ct = bytes.NewReader(b), "application/json"
	case raw != nil:
		rd, ct = bytes.NewReader(raw), "application/octet-stream"
	}
	req, err := http.NewRequestWithContext(ctx, method, d.opts.BaseURL+"/api/v3"+p, rd)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	d.mu.Lock()
	if d.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: d.cookie})
	}
	d.mu.Unlock()
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cloudreve: %s %s: connection failed: %w", method, strings.SplitN(p, "?", 2)[0], drivers.ErrUnavailable)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("cloudreve: %s: HTTP %d: %w", strings.SplitN(p, "?", 2)[0], resp.StatusCode, drivers.ErrUnavailable)
	}
	var env struct {
		Code int             `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return resp, fmt.Errorf("cloudreve: %s: answer is not JSON: %w", p, drivers.ErrUnavailable)
	}
	if env.Code != 0 {
		return resp, &codeError{Code: env.Code, Msg: env.Msg}
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return resp, fmt.Errorf("cloudreve: %s: unexpected answer: %w", p, drivers.ErrUnavailable)
		}
	}
	return resp, nil
}

// call is do with the session: a 401 logs in again (once for all callers)
// and the call is retried once.
func (d *Driver) call(ctx context.Context, method, p string, body any, raw []byte, out any) error {
	d.mu.Lock()
	gen := d.gen
	d.mu.Unlock()
	_, err := d.do(ctx, method, p, body, raw, out)
	var ce *codeError
	if errors.As(err, &ce) && ce.Code == 401 {
		if err := d.login(ctx, gen); err != nil {
			return classify(err)
		}
		_, err = d.do(ctx, method, p, body, raw, out)
	}
	return classify(err)
}

// login signs in unless another caller already did since generation gen.
func (d *Driver) login(ctx context.Context, gen int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen != gen {
		return nil // someone logged in meanwhile
	}
	if d.opts.Username == "" {
		return fmt.Errorf("cloudreve: the session cookie was refused and no username is configured: %w", drivers.ErrAuthExpired)
	}
	d.cookie = ""
	body := map[string]string{"userName": d.opts.Username, "Password": d.opts.Password, "captchaCode": ""}
	cookie, err := d.loginStep(ctx, "/user/session", body)
	var ce *codeError
	if errors.As(err, &ce) && ce.Code == 203 {
		if d.opts.TOTPSecret == "" {
			return fmt.Errorf("cloudreve: the account asks for a second factor and no totp_secret is configured: %w", drivers.ErrAuthExpired)
		}
		code, gerr := totp.GenerateCode(d.opts.TOTPSecret, d.now())
		if gerr != nil {
			return fmt.Errorf("cloudreve: totp_secret: %v: %w", gerr, drivers.ErrAuthExpired)
		}
		d.cookie = cookie
		var c2 string
		c2, err = d.loginStep(ctx, "/user/2fa", map[string]string{"code": code})
		if c2 != "" {
			cookie = c2
		}
	}
	if err != nil {
		return fmt.Errorf("cloudreve: login: %w", classify(err))
	}
	d.cookie = cookie
	d.gen++
	if err := auth.WriteFileAtomic(d.file, struct{ Cookie string }{cookie}); err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("cloudreve: session not saved")
	}
	return nil
}

// loginStep posts a login form and returns the session cookie it set (or
// the one already held).
func (d *Driver) loginStep(ctx context.Context, p string, body any) (string, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.BaseURL+"/api/v3"+p, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if d.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: d.cookie})
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("connection failed: %w", drivers.ErrUnavailable)
	}
	defer resp.Body.Close()
	var env struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&env) != nil {
		return "", fmt.Errorf("HTTP %d: %w", resp.StatusCode, drivers.ErrUnavailable)
	}
	cookie := d.cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			cookie = c.Value
		}
	}
	if env.Code != 0 {
		return cookie, &codeError{Code: env.Code, Msg: env.Msg}
	}
	return cookie, nil
}

// validName is the server's rule (40052), checked before any call.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `\?*<":>/|`) || strings.HasSuffix(name, " ") {
		return fmt.Errorf("cloudreve: name %q: %w", name, drivers.ErrInvalidName)
	}
	return nil
}

// dirURL is the listing path of a folder, each segment escaped.
func dirURL(p string) string {
	var segs []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if s != "" {
			segs = append(segs, url.PathEscape(s))
		}
	}
	return "/directory/" + strings.Join(segs, "/")
}

func clean(p string) string { return path.Clean("/" + p) }

type object struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Size int64     `json:"size"`
	Type string    `json:"type"`
	Date time.Time `json:"date"`
}

func (o object) toObject() drivers.Object {
	obj := drivers.Object{Name: o.Name, Size: o.Size, ModTime: o.Date, IsDir: o.Type == "dir"}
	if obj.IsDir {
		obj.ID, obj.Size = "d:"+o.ID, 0
	} else {
		obj.ID = "f:" + o.ID
	}
	return obj
}

// Root is the drive's root.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	return drivers.Object{ID: "d:/", IsDir: true}, nil
}

// List reads a folder (all entries at once; the server has no paging).
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	var out struct {
		Objects []object `json:"objects"`
		Policy  policy   `json:"policy"`
	}
	if err := d.call(ctx, http.MethodGet, dirURL(dir.Path), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("cloudreve: list %s: %w", dir.Path, err)
	}
	d.polMu.Lock()
	d.policies[clean(dir.Path)] = out.Policy
	d.polMu.Unlock()
	objs := make([]drivers.Object, len(out.Objects))
	for i, o := range out.Objects {
		objs[i] = o.toObject()
	}
	return objs, nil
}

// find lists parent and returns the entry called name (of the kind asked).
func (d *Driver) find(ctx context.Context, parent string, name string, isDir bool) (drivers.Object, error) {
	objs, err := d.List(ctx, drivers.Ref{Path: parent})
	if err != nil {
		return drivers.Object{}, err
	}
	for _, o := range objs {
		if o.Name == name && o.IsDir == isDir {
			return o, nil
		}
	}
	return drivers.Object{}, fmt.Errorf("cloudreve: %s: %w", path.Join(parent, name), drivers.ErrNotFound)
}

func splitID(ref drivers.Ref) (string, bool, error) {
	if len(ref.ID) < 3 || ref.ID == "d:/" {
		return "", false, fmt.Errorf("cloudreve: %s has no id: %w", ref.Path, drivers.ErrNotFound)
	}
	return ref.ID[2:], ref.ID[0] == 'd', nil
}

func srcOf(ref drivers.Ref) (map[string][]string, error) {
	id, isDir, err := splitID(ref)
	if err != nil {
		return nil, err
	}
	if isDir {
		return map[string][]string{"items": {}, "dirs": {id}}, nil
	}
	return map[string][]string{"items": {id}, "dirs": {}}, nil
}

// Link asks for a signed download URL; it is relative to base_url.
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	id, isDir, err := splitID(file)
	if err != nil || isDir {
		return drivers.Link{}, fmt.Errorf("cloudreve: link %s: %w", file.Path, drivers.ErrNotFound)
	}
	var rel string
	if err := d.call(ctx, http.MethodPut, "/file/download/"+url.PathEscape(id), nil, nil, &rel); err != nil {
		return drivers.Link{}, fmt.Errorf("cloudreve: link %s: %w", file.Path, err)
	}
	base, _ := url.Parse(d.opts.BaseURL + "/")
	u, err := base.Parse(rel)
	if err != nil {
		return drivers.Link{}, fmt.Errorf("cloudreve: link %s: bad URL: %w", file.Path, drivers.ErrUnavailable)
	}
	return drivers.Link{URL: u.String(), Expires: d.now().Add(600 * time.Second), ClientSafe: true}, nil
}

// Mkdir creates a folder; an existing name (file or folder) is ErrExist.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	if err := validName(name); err != nil {
		return drivers.Object{}, err
	}
	objs, err := d.List(ctx, parent)
	if err != nil {
		return drivers.Object{}, err
	}
	for _, o := range objs {
		if o.Name == name {
			return drivers.Object{}, fmt.Errorf("cloudreve: mkdir %s: %w", path.Join(parent.Path, name), drivers.ErrExist)
		}
	}
	p := path.Join(clean(parent.Path), name)
	if err := d.call(ctx, http.MethodPut, "/directory", map[string]string{"path": p}, nil, nil); err != nil {
		return drivers.Object{}, fmt.Errorf("cloudreve: mkdir %s: %w", p, err)
	}
	return d.find(ctx, parent.Path, name, true)
}

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	src, err := srcOf(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	body := map[string]any{"action": "rename", "src": src, "new_name": newName}
	if err := d.call(ctx, http.MethodPost, "/object/rename", body, nil, nil); err != nil {
		return drivers.Object{}, fmt.Errorf("cloudreve: rename %s: %w", obj.Path, err)
	}
	o := obj.Object
	o.Name, o.ModTime = newName, d.now()
	return o, nil
}

func tempName(name string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return ".bridge-" + hex.EncodeToString(b) + "-" + name
}

// move moves obj (keeping its name) into dst.
func (d *Driver) move(ctx context.Context, obj drivers.Ref, dst string) error {
	src, err := srcOf(obj)
	if err != nil {
		return err
	}
	body := map[string]any{"action": "move", "src_dir": clean(path.Dir(obj.Path)), "src": src, "dst": clean(dst)}
	if err := d.call(ctx, http.MethodPatch, "/object", body, nil, nil); err != nil {
		return fmt.Errorf("cloudreve: move %s: %w", obj.Path, err)
	}
	return nil
}

// Move moves obj into dstParent as newName (rename first, in the source
// folder, through a temporary name if the new one is taken there).
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if obj.IsDir && (clean(dstParent.Path) == clean(obj.Path) || strings.HasPrefix(clean(dstParent.Path)+"/", clean(obj.Path)+"/")) {
		return drivers.Object{}, fmt.Errorf("cloudreve: move %s into itself: %w", obj.Path, drivers.ErrPermission)
	}
	cur := obj
	if newName != obj.Name {
		step := newName
		o, err := d.Rename(ctx, cur, step)
		if errors.Is(err, drivers.ErrExist) {
			step = tempName(newName)
			o, err = d.Rename(ctx, cur, step)
		}
		if err != nil {
			return drivers.Object{}, err
		}
		cur = drivers.Ref{Path: path.Join(path.Dir(obj.Path), step), Object: o}
	}
	if err := d.move(ctx, cur, dstParent.Path); err != nil {
		return drivers.Object{}, err
	}
	if cur.Name != newName {
		return d.Rename(ctx, drivers.Ref{Path: path.Join(dstParent.Path, cur.Name), Object: cur.Object}, newName)
	}
	return cur.Object, nil
}

// copyInto copies one object (keeping its name) into dst and finds the copy.
func (d *Driver) copyInto(ctx context.Context, obj drivers.Ref, dst string) (drivers.Object, error) {
	src, err := srcOf(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	body := map[string]any{"src_dir": clean(path.Dir(obj.Path)), "src": src, "dst": clean(dst)}
	if err := d.call(ctx, http.MethodPost, "/object/copy", body, nil, nil); err != nil {
		return drivers.Object{}, fmt.Errorf("cloudreve: copy %s: %w", obj.Path, err)
	}
	return d.find(ctx, dst, obj.Name, obj.IsDir)
}

// Copy copies obj into dstParent as newName; a new name goes through a
// temporary folder (copy keeps names and takes one object).
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if newName == obj.Name {
		return d.copyInto(ctx, obj, dstParent.Path)
	}
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	tmp, err := d.Mkdir(ctx, dstParent, tempName("copy"))
	if err != nil {
		return drivers.Object{}, err
	}
	tmpRef := drivers.Ref{Path: path.Join(dstParent.Path, tmp.Name), Object: tmp}
	defer func() {
		if err := d.Remove(context.WithoutCancel(ctx), tmpRef); err != nil {
			d.log.Warn().Str("error", err.Error()).Str("path", tmpRef.Path).Msg("cloudreve: temporary copy folder left behind")
		}
	}()
	c, err := d.copyInto(ctx, obj, tmpRef.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	c, err = d.Rename(ctx, drivers.Ref{Path: path.Join(tmpRef.Path, c.Name), Object: c}, newName)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.move(ctx, drivers.Ref{Path: path.Join(tmpRef.Path, newName), Object: c}, dstParent.Path); err != nil {
		return drivers.Object{}, err
	}
	return c, nil
}

// Remove deletes obj; the server answers 0 for a missing id, so the parent
// is listed first to report ErrNotFound.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	if _, err := d.find(ctx, path.Dir(clean(obj.Path)), obj.Name, obj.IsDir); err != nil {
		return err
	}
	src, err := srcOf(obj)
	if err != nil {
		return err
	}
	if err := d.call(ctx, http.MethodDelete, "/object", src, nil, nil); err != nil {
		return fmt.Errorf("cloudreve: remove %s: %w", obj.Path, err)
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
	if err := d.call(ctx, http.MethodGet, "/user/storage", nil, nil, &out); err != nil {
		return drivers.Quota{}, fmt.Errorf("cloudreve: quota: %w", err)
	}
	return drivers.Quota{Total: out.Total, Used: out.Used, Free: out.Free}, nil
}

// Check tells /healthz whether the session works.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.Quota(ctx)
	return err
}
