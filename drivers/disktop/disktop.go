// Package disktop is the driver for the Disk.Top open platform
// (../shared/providers/disktop.md).
//
// Listing is by path (GET /v1/files, pages of 200: the first, then the rest
// in parallel, so 10,000 entries cost 50 calls); everything else is by id
// (manage, download) or by parent path (folder, precreate). Folders and
// files have separate id spaces, so Object.ID is "d<id>" or "f<id>".
// Listings carry md5 (a real content hash) but no times.
//
// Where the document is silent, the choices (the fake enforces them; the
// driver tolerates the other readings where it can):
//   - Errors are classified by HTTP status first, errno second: the
//     document lists no errnos.
//   - precreate on a taken name is refused, so an overwrite uploads under a
//     temporary name, then deletes the old file and renames the new one: a
//     failed upload leaves the old file as it was.
//   - manage move and copy keep names; a move+rename is a rename then a move
//     (through a temporary name if the new name is taken at the source), a
//     copy+rename goes through a temporary folder (copy, rename, move).
//   - The chunk endpoint gets the Bearer token too: the document lists no
//     Authorization for it, and a server that ignores it loses nothing.
//   - A 0-byte file has 0 parts and is made by complete.
//
// Tokens: `bridge login` stores them under the mount's state dir; the
// refresh token rotates on every use and is written to disk before the new
// access token is used (auth.TokenStore). A refused refresh token puts the
// mount in "needs login" (ErrAuthExpired: 503 and /healthz).
package disktop

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
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"bridge/auth"
	"bridge/drivers"
)

// Name is the driver's name in configuration files.
const Name = "disktop"

// Options are the [mounts.options] of a Disk.Top mount.
type Options struct {
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"` // optional with PKCE
	Scope        string `toml:"scope"`
	// APIBase is the open platform's address (tests point it at the fake).
	APIBase string `toml:"api_base"`
	// UploadConcurrency is how many parts go up at once.
	UploadConcurrency int `toml:"upload_concurrency"`
	// RefreshToken seeds the token store when it is empty (e.g. a token
	// made elsewhere); it rotates at once and the stored one is used after.
	RefreshToken string `toml:"refresh_token"`
}

const (
	defaultAPIBase = "https://openapi.disk.top"
	pageLimit      = 200
	listParallel   = 4
	maxAttempts    = 4
)

// Driver is one Disk.Top account.
type Driver struct {
	opts   Options
	client *http.Client
	tokens *auth.TokenStore
	oauth  *oauth2.Config
	log    zerolog.Logger
	mount  string
	sleep  func(ctx context.Context, d time.Duration) error
}

// New is the drivers.Factory of Disk.Top.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, err
	}
	if o.ClientID == "" {
		return nil, errors.New("disktop: option client_id is required")
	}
	if o.Scope == "" {
		o.Scope = "user.read files.app_data"
	}
	if o.APIBase == "" {
		o.APIBase = defaultAPIBase
	}
	o.APIBase = strings.TrimSuffix(o.APIBase, "/")
	if o.UploadConcurrency <= 0 {
		o.UploadConcurrency = 4
	}
	d := &Driver{opts: o, client: cfg.HTTPClient, log: cfg.Logger, mount: cfg.MountPath, sleep: sleepCtx}
	d.oauth = &oauth2.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		Scopes:       strings.Fields(o.Scope),
		Endpoint: oauth2.Endpoint{
			AuthURL:       o.APIBase + "/oauth/authorize",
			TokenURL:      o.APIBase + "/oauth/token",
			DeviceAuthURL: o.APIBase + "/oauth/device-code",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
	ts, err := auth.NewTokenStore(filepath.Join(cfg.StateDir, "token.json"), d.oauth, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("disktop: %w", err)
	}
	ts.Seed(o.RefreshToken)
	d.tokens = ts
	if !ts.HasToken() {
		d.log.Warn().Msg("disktop: no token yet: run `bridge login " + cfg.MountPath + "`")
	}
	return d, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Features of Disk.Top.
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true}
}

// apiError is an error answer of the platform.
type apiError struct {
	Status int
	Errno  int    `json:"errno"`
	Msg    string `json:"errmsg"`
	retry  time.Duration
}

func (e *apiError) Error() string {
	return fmt.Sprintf("disktop: HTTP %d errno %d: %s", e.Status, e.Errno, e.Msg)
}

// classify maps the platform's answers onto the contract's error kinds: the
// one place that knows them.
func classify(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		if errors.Is(err, auth.ErrNeedsLogin) {
			return fmt.Errorf("%w: %w", err, drivers.ErrAuthExpired)
		}
		return err
	}
	var kind error
	switch {
	case ae.Status == http.StatusNotFound || ae.Errno/100 == 404:
		kind = drivers.ErrNotFound
	case ae.Status == http.StatusConflict || ae.Errno/100 == 409:
		kind = drivers.ErrExist
	case ae.Status == http.StatusForbidden || ae.Errno/100 == 403:
		kind = drivers.ErrPermission
	case ae.Status == http.StatusUnauthorized:
		kind = drivers.ErrAuthExpired
	case ae.Status == http.StatusInsufficientStorage || ae.Errno/100 == 507:
		kind = drivers.ErrQuota
	case ae.Status == http.StatusRequestEntityTooLarge:
		kind = drivers.ErrTooLarge
	case ae.Status == http.StatusTooManyRequests:
		kind = drivers.ErrRateLimited
		if ae.retry > 0 {
			return drivers.WithRetryAfter(fmt.Errorf("%w: %w", ae, kind), ae.retry)
		}
	case ae.Status == http.StatusBadRequest && strings.Contains(ae.Msg, "name"):
		kind = drivers.ErrInvalidName
	case ae.Status >= 500:
		kind = drivers.ErrUnavailable
	default:
		kind = drivers.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ae, kind)
}

// call sends one API request with the Bearer token and decodes data into
// out. A 401 refreshes the token once; 429 and 5xx are retried with backoff.
// body, when not nil, is sent as a form.
func (d *Driver) call(ctx context.Context, method, endpoint string, form url.Values, out any) error {
	return d.callRaw(ctx, method, endpoint, form, nil, "", out)
}

func (d *Driver) callRaw(ctx context.Context, method, endpoint string, form url.Values, raw []byte, contentType string, out any) error {
	refreshed := false
	for attempt := 1; ; attempt++ {
		before := d.tokens.NeedsLogin()
		tok, err := d.tokens.Token(ctx)
		if err != nil {
			if !before && d.tokens.NeedsLogin() {
				d.log.Error().Str("mount", d.mount).Msg("disktop: the provider refused the refresh token; the mount answers 503 until `bridge login " + d.mount + "` is run")
			}
			return classify(err)
		}
		var body io.Reader
		switch {
		case form != nil:
			body = strings.NewReader(form.Encode())
			contentType = "application/x-www-form-urlencoded"
		case raw != nil:
			body = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
		if err != nil {
			return err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := d.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt < maxAttempts {
				if err := d.sleep(ctx, backoff(attempt)); err != nil {
					return err
				}
				continue
			}
			// The error may quote the URL; say which call failed instead.
			return fmt.Errorf("disktop: %s %s: connection failed: %w", method, shortPath(endpoint), drivers.ErrUnavailable)
		}
		err = decode(resp, out)
		var ae *apiError
		if errors.As(err, &ae) {
			switch {
			case ae.Status == http.StatusUnauthorized && !refreshed:
				d.tokens.Rejected(tok.AccessToken)
				refreshed = true
				continue
			case (ae.Status == http.StatusTooManyRequests || ae.Status >= 500) && attempt < maxAttempts:
				wait := backoff(attempt)
				if ae.retry > 0 {
					wait = ae.retry
				}
				if err := d.sleep(ctx, wait); err != nil {
					return err
				}
				continue
			}
		}
		if err != nil {
			return classify(err)
		}
		return nil
	}
}

func backoff(attempt int) time.Duration {
	return time.Duration(100<<attempt) * time.Millisecond
}

func shortPath(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Path
	}
	return "?"
}

// decode reads an {errno, errmsg, data} envelope.
func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("disktop: reading answer: %w", drivers.ErrUnavailable)
	}
	var env struct {
		Errno int             `json:"errno"`
		Msg   string          `json:"errmsg"`
		Data  json.RawMessage `json:"data"`
	}
	jerr := json.Unmarshal(b, &env)
	if resp.StatusCode != http.StatusOK || jerr != nil || env.Errno != 0 {
		ae := &apiError{Status: resp.StatusCode, Errno: env.Errno, Msg: env.Msg}
		if jerr != nil && resp.StatusCode == http.StatusOK {
			ae.Status, ae.Msg = http.StatusBadGateway, "answer is not JSON"
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			ae.retry = time.Duration(secs) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("disktop: unexpected answer: %v: %w", err, drivers.ErrUnavailable)
	}
	return nil
}

// apiPath is the platform's path for a mount-relative path.
func apiPath(p string) string {
	if p == "" {
		return "/"
	}
	return path.Clean("/" + p)
}

func (d *Driver) url(p string, q url.Values) string {
	u := d.opts.APIBase + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Root is the sandbox (or disk) root.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	if _, err := d.tokens.Token(ctx); err != nil {
		return drivers.Object{}, classify(err)
	}
	return drivers.Object{ID: "d/", IsDir: true}, nil
}

type listPage struct {
	Folders []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"folders"`
	Files []fileInfo `json:"files"`
	Total int        `json:"total"`
}

type fileInfo struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
}

func (fi fileInfo) object() drivers.Object {
	o := drivers.Object{Name: fi.Name, Size: fi.Size, ID: "f" + strconv.FormatInt(fi.ID, 10)}
	if len(fi.MD5) == 32 {
		o.Hashes.MD5 = strings.ToLower(fi.MD5)
	}
	return o
}

func (d *Driver) page(ctx context.Context, dir string, n int) (listPage, error) {
	var p listPage
	q := url.Values{"path": {apiPath(dir)}, "page": {strconv.Itoa(n)}, "limit": {strconv.Itoa(pageLimit)}}
	err := d.call(ctx, http.MethodGet, d.url("/v1/files", q), nil, &p)
	return p, err
}

// List reads the first page, then the others in parallel.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	first, err := d.page(ctx, dir.Path, 1)
	if err != nil {
		return nil, fmt.Errorf("disktop: list %s: %w", dir.Path, err)
	}
	pages := make([]listPage, max(1, (first.Total+pageLimit-1)/pageLimit))
	pages[0] = first
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listParallel)
	for i := 1; i < len(pages); i++ {
		g.Go(func() error {
			p, err := d.page(gctx, dir.Path, i+1)
			pages[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("disktop: list %s: %w", dir.Path, err)
	}
	seen := map[string]bool{}
	var out []drivers.Object
	for _, p := range pages {
		for _, f := range p.Folders {
			o := drivers.Object{Name: f.Name, IsDir: true, ID: "d" + strconv.FormatInt(f.ID, 10)}
			if !seen[o.ID] {
				seen[o.ID] = true
				out = append(out, o)
			}
		}
		for _, f := range p.Files {
			o := f.object()
			if !seen[o.ID] {
				seen[o.ID] = true
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// numericID returns the platform id of an object and whether it is a file.
func numericID(ref drivers.Ref) (string, bool, error) {
	if len(ref.ID) < 2 || (ref.ID[0] != 'f' && ref.ID[0] != 'd') || ref.ID == "d/" {
		return "", false, fmt.Errorf("disktop: %s has no id: %w", ref.Path, drivers.ErrNotFound)
	}
	return ref.ID[1:], ref.ID[0] == 'f', nil
}

// Link asks for a signed download URL (valid 10 minutes, no secret in it).
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	id, isFile, err := numericID(file)
	if err != nil || !isFile {
		return drivers.Link{}, fmt.Errorf("disktop: link %s: %w", file.Path, drivers.ErrNotFound)
	}
	var out struct {
		URL       string `json:"url"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := d.call(ctx, http.MethodGet, d.url("/v1/files/"+id+"/download", nil), nil, &out); err != nil {
		return drivers.Link{}, fmt.Errorf("disktop: link %s: %w", file.Path, err)
	}
	if out.ExpiresIn <= 0 {
		out.ExpiresIn = 600
	}
	return drivers.Link{URL: out.URL, Expires: time.Now().Add(time.Duration(out.ExpiresIn) * time.Second), ClientSafe: true}, nil
}

// Mkdir creates a folder.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	var out struct {
		FolderID int64 `json:"folder_id"`
	}
	form := url.Values{"parent_path": {apiPath(parent.Path)}, "name": {name}}
	if err := d.call(ctx, http.MethodPost, d.url("/v1/files/folder", nil), form, &out); err != nil {
		return drivers.Object{}, fmt.Errorf("disktop: mkdir %s: %w", path.Join(parent.Path, name), err)
	}
	return drivers.Object{Name: name, IsDir: true, ID: "d" + strconv.FormatInt(out.FolderID, 10)}, nil
}

// manage runs one manage action on one object.
func (d *Driver) manage(ctx context.Context, action string, obj drivers.Ref, extra url.Values) error {
	id, isFile, err := numericID(obj)
	if err != nil {
		return err
	}
	form := url.Values{"action": {action}}
	if isFile {
		form.Set("file_ids[]", id)
	} else {
		form.Set("folder_ids[]", id)
	}
	for k, v := range extra {
		form[k] = v
	}
	if err := d.call(ctx, http.MethodPost, d.url("/v1/files/manage", nil), form, nil); err != nil {
		return fmt.Errorf("disktop: %s %s: %w", action, obj.Path, err)
	}
	return nil
}

func renamed(obj drivers.Ref, name string) drivers.Object {
	o := obj.Object
	o.Name = name
	return o
}

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	if err := d.manage(ctx, "rename", obj, url.Values{"new_name": {newName}}); err != nil {
		return drivers.Object{}, err
	}
	return renamed(obj, newName), nil
}

func tempName(name string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return ".bridge-" + hex.EncodeToString(b) + "-" + name
}

// Move moves obj into dstParent as newName: manage keeps names, so a new
// name is given first, in the source folder.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	cur := obj
	if newName != obj.Name {
		step := newName
		o, err := d.Rename(ctx, cur, step)
		if errors.Is(err, drivers.ErrExist) {
			step = tempName(newName) // the new name is taken at the source
			o, err = d.Rename(ctx, cur, step)
		}
		if err != nil {
			return drivers.Object{}, err
		}
		cur = drivers.Ref{Path: path.Join(path.Dir(obj.Path), step), Object: o}
	}
	if err := d.manage(ctx, "move", cur, url.Values{"dest_path": {apiPath(dstParent.Path)}}); err != nil {
		return drivers.Object{}, err
	}
	if cur.Name != newName {
		moved := drivers.Ref{Path: path.Join(dstParent.Path, cur.Name), Object: cur.Object}
		return d.Rename(ctx, moved, newName)
	}
	return renamed(cur, newName), nil
}

// Copy copies obj into dstParent as newName. manage copy keeps names, so a
// copy under a new name (which would collide with its source when both are
// in one folder) is made in a temporary folder, renamed there and moved into
// place; the temporary folder goes afterwards.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if newName == obj.Name {
		return d.copyInto(ctx, obj, dstParent)
	}
	tmpName := tempName("copy")
	tmp, err := d.Mkdir(ctx, dstParent, tmpName)
	if err != nil {
		return drivers.Object{}, err
	}
	tmpRef := drivers.Ref{Path: path.Join(dstParent.Path, tmpName), Object: tmp}
	defer func() {
		if err := d.Remove(context.WithoutCancel(ctx), tmpRef); err != nil {
			d.log.Warn().Str("error", err.Error()).Str("path", tmpRef.Path).Msg("disktop: temporary copy folder left behind")
		}
	}()
	c, err := d.copyInto(ctx, obj, tmpRef)
	if err != nil {
		return drivers.Object{}, err
	}
	c, err = d.Rename(ctx, drivers.Ref{Path: path.Join(tmpRef.Path, c.Name), Object: c}, newName)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.manage(ctx, "move", drivers.Ref{Path: path.Join(tmpRef.Path, newName), Object: c},
		url.Values{"dest_path": {apiPath(dstParent.Path)}}); err != nil {
		return drivers.Object{}, err
	}
	return c, nil
}

// copyInto copies obj into dstParent under its own name and finds the copy
// by listing dstParent (manage answers no ids).
func (d *Driver) copyInto(ctx context.Context, obj, dstParent drivers.Ref) (drivers.Object, error) {
	if err := d.manage(ctx, "copy", obj, url.Values{"dest_path": {apiPath(dstParent.Path)}}); err != nil {
		return drivers.Object{}, err
	}
	objs, err := d.List(ctx, dstParent)
	if err != nil {
		return drivers.Object{}, err
	}
	for _, o := range objs {
		if o.Name == obj.Name && o.IsDir == obj.IsDir {
			return o, nil
		}
	}
	return drivers.Object{}, fmt.Errorf("disktop: copy of %s not found in %s: %w", obj.Path, dstParent.Path, drivers.ErrUnavailable)
}

// Remove deletes obj.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	return d.manage(ctx, "delete", obj, nil)
}

// Quota reports the account's storage.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	var out struct {
		Total int64 `json:"total_bytes"`
		Used  int64 `json:"used_bytes"`
		Free  int64 `json:"free_bytes"`
	}
	if err := d.call(ctx, http.MethodGet, d.url("/v1/user/quota", nil), nil, &out); err != nil {
		return drivers.Quota{}, fmt.Errorf("disktop: quota: %w", err)
	}
	return drivers.Quota{Total: out.Total, Used: out.Used, Free: out.Free}, nil
}

// Check tells /healthz whether the tokens still work.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.Quota(ctx)
	return err
}
