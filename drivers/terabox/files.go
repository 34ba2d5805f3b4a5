package terabox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// entry is a file or folder as list, filemetas, precreate and create
// give it. Its md5 is scrambled and never read.
type entry struct {
	FsID           flex.ID  `json:"fs_id"`
	Path           string   `json:"path"`
	ServerFilename string   `json:"server_filename"`
	Filename       string   `json:"filename"`
	Size           flex.Int `json:"size"`
	IsDir          flex.Int `json:"isdir"`
	ServerMtime    flex.Int `json:"server_mtime"`
	Mtime          flex.Int `json:"mtime"`
	Dlink          string   `json:"dlink"`
}

func (e entry) object() drivers.Object {
	name := e.ServerFilename
	if name == "" {
		name = e.Filename
	}
	if name == "" {
		name = path.Base(e.Path)
	}
	o := drivers.Object{Name: name, Size: int64(e.Size), IsDir: e.IsDir == 1, ID: string(e.FsID)}
	if o.IsDir {
		o.Size = 0
	}
	mt := e.ServerMtime
	if mt <= 0 {
		mt = e.Mtime
	}
	if mt > 0 {
		o.ModTime = time.Unix(int64(mt), 0)
	}
	return o
}

// listPage reads one page of a folder by its full path.
func (d *Driver) listPage(ctx context.Context, dir string, page, num int) ([]entry, error) {
	var out struct {
		List []entry `json:"list"`
	}
	q := url.Values{"dir": {dir}, "page": {strconv.Itoa(page)}, "num": {strconv.Itoa(num)}, "order": {"name"}}
	err := d.do(ctx, request{op: "list", method: http.MethodGet, path: "/openapi/api/list", query: q, resend: true}, &out)
	return out.List, err
}

// listAll reads every page of a folder by its full path, until a page
// shorter than asked.
func (d *Driver) listAll(ctx context.Context, dir string) ([]drivers.Object, error) {
	seen := map[string]bool{}
	var out []drivers.Object
	for page := 1; ; page++ {
		entries, err := d.listPage(ctx, dir, page, d.pageSize)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			o := e.object()
			if o.ID == "" || o.Name == "" || seen[o.ID] {
				continue
			}
			seen[o.ID] = true
			out = append(out, o)
		}
		if len(entries) < d.pageSize {
			return out, nil
		}
	}
}

// List returns every entry of dir. A listing that could be of a path
// that is not a folder (empty, or a lone file of the folder's name: see
// the package comment) is checked with filemetas.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	p, err := d.full(ctx, dir.Path)
	if err != nil {
		return nil, err
	}
	objs, err := d.listAll(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("terabox: list %s: %w", dir.Path, err)
	}
	if path.Clean("/"+dir.Path) != "/" && drivers.Unproven(p, objs) {
		e, err := d.stat(ctx, p)
		if err == nil && !e.object().IsDir {
			err = fmt.Errorf("%s is a file: %w", path.Base(p), drivers.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("terabox: list %s: %w", dir.Path, err)
		}
	}
	return objs, nil
}

// stat finds one object by its full path (filemetas leaves unknown paths
// out: ErrNotFound).
func (d *Driver) stat(ctx context.Context, full string) (entry, error) {
	target, _ := json.Marshal([]string{full})
	var out struct {
		Info []entry `json:"info"`
	}
	q := url.Values{"target": {string(target)}}
	if err := d.do(ctx, request{op: "filemetas", method: http.MethodGet, path: "/openapi/api/filemetas", query: q, resend: true}, &out); err != nil {
		return entry{}, err
	}
	for _, e := range out.Info {
		if e.Path == "" || e.Path == full {
			return e, nil
		}
	}
	return entry{}, fmt.Errorf("terabox: %s: %w", path.Base(full), drivers.ErrNotFound)
}

// Link asks for a dlink by fs_id and appends the access token, so it is
// never ClientSafe. It expires when the dlink says (from its dstime) or
// the token does, whichever comes first.
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	if file.IsDir {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: a folder: %w", file.Path, drivers.ErrNotFound)
	}
	id := file.ID
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		p, err := d.full(ctx, file.Path)
		if err != nil {
			return drivers.Link{}, err
		}
		e, err := d.stat(ctx, p)
		if err != nil {
			return drivers.Link{}, fmt.Errorf("terabox: link %s: %w", file.Path, err)
		}
		id = string(e.FsID)
	}
	var out struct {
		Dlink []struct {
			FsID  flex.ID `json:"fs_id"`
			Dlink string  `json:"dlink"`
		} `json:"dlink"`
	}
	asked := d.now()
	q := url.Values{"fidlist": {"[" + id + "]"}, "type": {"dlink"}}
	if err := d.do(ctx, request{op: "download", method: http.MethodGet, path: "/openapi/api/download", query: q, resend: true}, &out); err != nil {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: %w", file.Path, err)
	}
	var dlink string
	for _, l := range out.Dlink {
		if string(l.FsID) == id {
			dlink = l.Dlink
		}
	}
	if dlink == "" {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: %w", file.Path, drivers.ErrNotFound)
	}
	return d.tokenLink(ctx, dlink, asked, file.Path)
}

// tokenLink makes a dlink usable: the access token appended (so the link
// is never ClientSafe), expiring when the dlink says or the token does,
// whichever comes first. what names the file for errors.
func (d *Driver) tokenLink(ctx context.Context, dlink string, asked time.Time, what string) (drivers.Link, error) {
	u, err := url.Parse(dlink)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: no usable dlink in the answer: %w", what, drivers.ErrUnavailable)
	}
	tok, err := d.tokens.Token(ctx)
	if err != nil {
		return drivers.Link{}, classify(err)
	}
	sep := "&"
	if u.RawQuery == "" {
		sep = "?"
	}
	l := drivers.Link{URL: dlink + sep + "access_tokens=" + url.QueryEscape(tok.AccessToken),
		Expires: dlinkExpiry(u.Query(), asked)}
	if !tok.Expiry.IsZero() && tok.Expiry.Before(l.Expires) {
		l.Expires = tok.Expiry
	}
	return l, nil
}

// dlinkExpiry is when a dlink stops working: its expires ("1h", "8h",
// "600s", or seconds) counted from its dstime (never later than asked);
// without expires, asked (the link serves the request at hand only).
func dlinkExpiry(q url.Values, asked time.Time) time.Time {
	v := q.Get("expires")
	ttl, err := time.ParseDuration(v)
	if err != nil {
		secs, serr := strconv.ParseInt(v, 10, 64)
		if serr != nil || secs <= 0 {
			return asked
		}
		ttl = time.Duration(secs) * time.Second
	}
	from := asked
	if ds, err := strconv.ParseInt(q.Get("dstime"), 10, 64); err == nil && ds > 0 && time.Unix(ds, 0).Before(asked) {
		from = time.Unix(ds, 0)
	}
	return from.Add(ttl)
}

// Mkdir makes a folder: create with isdir=1, refusing a taken name.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	dir, err := d.full(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	target := dir + "/" + name
	var out entry
	form := url.Values{"path": {target}, "isdir": {"1"}, "rtype": {"0"}, "size": {"0"}}
	op := "mkdir " + path.Join(parent.Path, name)
	if err := d.do(ctx, request{op: "create", method: http.MethodPost, path: "/openapi/api/create", form: form}, &out); err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, err)
	}
	if out.Path != "" && out.Path != target {
		// Made under another name in spite of rtype 0: the name is taken.
		d.discard(ctx, drivers.Ref{Path: path.Join(parent.Path, path.Base(out.Path)), Object: out.object()})
		return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, drivers.ErrExist)
	}
	o := out.object()
	o.Name, o.IsDir = name, true
	if o.ID == "" {
		e, err := d.stat(ctx, target)
		if err != nil {
			return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, err)
		}
		o.ID = string(e.FsID)
	}
	return o, nil
}

// manage runs one filemanager item and reads its own errno: the
// top-level errno may be 0 while the item failed.
func (d *Driver) manage(ctx context.Context, opera, op string, item any) error {
	list, _ := json.Marshal([]any{item})
	var out struct {
		Info []struct {
			Errno flex.Int `json:"errno"`
		} `json:"info"`
	}
	q := url.Values{"opera": {opera}, "async": {"0"}}
	rq := request{op: op, method: http.MethodPost, path: "/openapi/api/filemanager", query: q, form: url.Values{"filelist": {string(list)}}}
	if err := d.do(ctx, rq, &out); err != nil {
		return fmt.Errorf("terabox: %s: %w", op, err)
	}
	for _, it := range out.Info {
		if it.Errno != 0 {
			return fmt.Errorf("terabox: %s: %w", op, classify(&apiError{op: opera, Status: http.StatusOK, Errno: int(it.Errno), json: true}))
		}
	}
	return nil
}

type moveItem struct {
	Path    string `json:"path"`
	Dest    string `json:"dest,omitempty"`
	NewName string `json:"newname"`
}

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	p, err := d.full(ctx, obj.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.manage(ctx, "rename", "rename "+obj.Path, moveItem{Path: p, NewName: newName}); err != nil {
		return drivers.Object{}, err
	}
	o := obj.Object
	o.Name = newName
	return o, nil
}

// Move moves and renames in one call.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	p, err := d.full(ctx, obj.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	dest, err := d.full(ctx, dstParent.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.manage(ctx, "move", "move "+obj.Path, moveItem{Path: p, Dest: dest, NewName: newName}); err != nil {
		return drivers.Object{}, err
	}
	o := obj.Object
	o.Name = newName
	return o, nil
}

// Copy copies a file or a whole folder; the copy's fs_id is looked up.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	p, err := d.full(ctx, obj.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	dest, err := d.full(ctx, dstParent.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	op := "copy " + obj.Path
	if err := d.manage(ctx, "copy", op, moveItem{Path: p, Dest: dest, NewName: newName}); err != nil {
		return drivers.Object{}, err
	}
	e, err := d.stat(ctx, dest+"/"+newName)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: %s: the copy: %w", op, err)
	}
	o := e.object()
	o.Name = newName
	return o, nil
}

// Remove deletes obj (a folder with its content).
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	p, err := d.full(ctx, obj.Path)
	if err != nil {
		return err
	}
	if strings.TrimSuffix(p, "/") == strings.TrimSuffix(d.root, "/") {
		return fmt.Errorf("terabox: remove %s: the mount root: %w", obj.Path, drivers.ErrPermission)
	}
	return d.manage(ctx, "delete", "delete "+obj.Path, p)
}

// discard deletes a stray object, logging (not failing) when it cannot.
func (d *Driver) discard(ctx context.Context, obj drivers.Ref) {
	if err := d.Remove(context.WithoutCancel(ctx), obj); err != nil {
		d.log.Warn().Str("path", obj.Path).Str("error", err.Error()).Msg("terabox: stray object left behind")
	}
}
