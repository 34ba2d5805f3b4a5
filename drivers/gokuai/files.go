package gokuai

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// pageSize is what file/ls is asked for (the document's default); a
// server giving fewer is paged by what it gives.
const pageSize = 100

// listParallel is how many file/ls pages are asked for at once once count
// tells how many there are.
const listParallel = 4

// entry is a file or folder as file/ls and file/info give it.
type entry struct {
	Hash     flex.ID  `json:"hash"`
	MountID  flex.Int `json:"mount_id"`
	Dir      flex.Int `json:"dir"`
	Fullpath flex.ID  `json:"fullpath"`
	Filename flex.ID  `json:"filename"`
	Filehash flex.ID  `json:"filehash"`
	Filesize flex.Int `json:"filesize"`
	Modified flex.Int `json:"last_dateline"`
}

func (e entry) object(mount int) drivers.Object {
	name := string(e.Filename)
	if name == "" {
		name = string(e.Fullpath)[strings.LastIndex(string(e.Fullpath), "/")+1:]
	}
	o := drivers.Object{Name: name, IsDir: e.Dir == 1, ID: objectID(mount, string(e.Hash), e.Dir == 1, string(e.Filehash))}
	if e.Modified > 0 {
		o.ModTime = time.Unix(int64(e.Modified), 0)
	}
	if !o.IsDir {
		o.Size = int64(e.Filesize)
		if isSHA1(string(e.Filehash)) {
			o.Hashes.SHA1 = strings.ToLower(string(e.Filehash))
		}
	}
	return o
}

// objectID: "<mount>:<hash>" for a folder, "<mount>:<hash>:<filehash>"
// for a file, so that new content is a new ID.
func objectID(mount int, hash string, dir bool, filehash string) string {
	id := strconv.Itoa(mount) + ":" + hash
	if !dir {
		id += ":" + strings.ToLower(filehash)
	}
	return id
}

func isSHA1(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// mountParams are the parameters naming l (fullpath left out at a
// library root, where it defaults to "").
func mountParams(l loc, full string) url.Values {
	p := url.Values{"mount_id": {strconv.Itoa(l.lib.MountID)}}
	if full != "" {
		p.Set("fullpath", full)
	}
	return p
}

// List returns a folder's entries, all pages joined; the mount root of
// the multi-library view lists the libraries. A listing is no proof that
// the folder exists (see the package comment): one that file/ls could
// also give for a path that is not a folder (empty, or a lone file of
// the folder's name) is checked in the parent's listing. A library root
// needs no check: it is there while its library is.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	l, err := d.locate(ctx, dir.Path)
	if err != nil {
		return nil, fmt.Errorf("gokuai: list %s: %w", dir.Path, err)
	}
	if l.top {
		return d.listLibraries(ctx, dir.Path)
	}
	objs, err := d.listPages(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("gokuai: list %s: %w", dir.Path, err)
	}
	if !l.libRoot() && drivers.Unproven(dir.Path, objs) {
		if _, err := drivers.FindInParent(ctx, dir.Path, true, d.List); err != nil {
			return nil, fmt.Errorf("gokuai: list %s: %w", dir.Path, err)
		}
	}
	return objs, nil
}

// listLibraries is the mount root of the multi-library view.
func (d *Driver) listLibraries(ctx context.Context, p string) ([]drivers.Object, error) {
	libs, err := d.libraries(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("gokuai: list %s: %w", p, err)
	}
	out := make([]drivers.Object, 0, len(libs))
	for _, lib := range libs {
		out = append(out, drivers.Object{Name: lib.Name, IsDir: true, ID: libraryID(lib)})
	}
	return out, nil
}

// listPages reads file/ls of l.full: the first page, then, when count
// says there is more, the rest in parallel (at the offsets the first
// page's length gives), then on one page at a time while a page is full
// or count says more, until an empty page or one with nothing new (a
// server ignoring start). A page shorter than the first before the end
// (the folder changed meanwhile) sends the listing on from where that
// page ended, one page at a time.
func (d *Driver) listPages(ctx context.Context, l loc) ([]drivers.Object, error) {
	first, err := d.lsPage(ctx, l, 0)
	if err != nil {
		return nil, err
	}
	pages := []lsPage{first}
	if per, total := len(first.List), int(first.Count); per > 0 && total > per {
		rest := make([]lsPage, (total-1)/per)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(listParallel)
		for i := range rest {
			g.Go(func() (err error) {
				rest[i], err = d.lsPage(gctx, l, (i+1)*len(first.List))
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		pages = append(pages, rest...)
	}
	seen := map[string]bool{}
	var out []drivers.Object
	add := func(list []entry) (fresh int) {
		for _, e := range list {
			if key := string(e.Hash) + "\x00" + string(e.Filename); !seen[key] {
				seen[key] = true
				out = append(out, e.object(l.lib.MountID))
				fresh++
			}
		}
		return fresh
	}
	start, last := 0, first
	for i, p := range pages {
		if i > 0 && start != i*len(first.List) {
			break // a short page before this one
		}
		if add(p.List) == 0 {
			return out, nil
		}
		start, last = start+len(p.List), p
	}
	for len(last.List) >= pageSize || int(last.Count) > start {
		p, err := d.lsPage(ctx, l, start)
		if err != nil {
			return nil, err
		}
		if add(p.List) == 0 {
			return out, nil
		}
		start, last = start+len(p.List), p
	}
	return out, nil
}

// lsPage is one page of file/ls, from the entry start on.
type lsPage struct {
	Count flex.Int `json:"count"`
	List  []entry  `json:"list"`
}

func (d *Driver) lsPage(ctx context.Context, l loc, start int) (lsPage, error) {
	var page lsPage
	p := mountParams(l, l.full)
	p.Set("start", strconv.Itoa(start))
	p.Set("size", strconv.Itoa(pageSize))
	p.Set("order", "filename")
	err := d.call(ctx, request{method: http.MethodGet, path: "/m-api/1/file/ls", params: p, out: &page})
	return page, err
}

// info reads one file or folder (file/info).
func (d *Driver) info(ctx context.Context, l loc, full string) (drivers.Object, error) {
	var e entry
	if err := d.call(ctx, request{method: http.MethodGet, path: "/m-api/2/file/info", params: mountParams(l, full), out: &e}); err != nil {
		return drivers.Object{}, err
	}
	if e.Hash == "" {
		return drivers.Object{}, fmt.Errorf("gokuai: file/info gave no hash: %w", drivers.ErrUnavailable)
	}
	return e.object(l.lib.MountID), nil
}

// Link asks file/open for a download address. Its lifetime is the
// document's 10 minutes, counted from before the request; the address is
// signed by the server and carries no account secret.
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	l, err := d.locate(ctx, file.Path)
	if err != nil {
		return drivers.Link{}, fmt.Errorf("gokuai: link %s: %w", file.Path, err)
	}
	if l.top || l.full == "" {
		return drivers.Link{}, fmt.Errorf("gokuai: link %s: a folder: %w", file.Path, drivers.ErrNotFound)
	}
	var out struct {
		URIs []string `json:"uris"`
	}
	asked := d.now()
	if err := d.call(ctx, request{method: http.MethodGet, path: "/m-api/2/file/open", params: mountParams(l, l.full), out: &out}); err != nil {
		return drivers.Link{}, fmt.Errorf("gokuai: link %s: %w", file.Path, err)
	}
	var u *url.URL
	if len(out.URIs) > 0 {
		if base, err := url.Parse(d.base + "/"); err == nil {
			u, err = base.Parse(out.URIs[0]) // a relative address is the API host's
			if err != nil {
				u = nil
			}
		}
	}
	if u == nil {
		return drivers.Link{}, fmt.Errorf("gokuai: link %s: no usable address in the answer: %w", file.Path, drivers.ErrUnavailable)
	}
	return drivers.Link{URL: u.String(), Expires: asked.Add(linkTTL), ClientSafe: true}, nil
}

// Mkdir creates a folder: create_folder would answer an existing folder
// as made (overwrite=1) or make a renamed twin (overwrite=0), so the name
// is looked up first, and a twin made by a concurrent creation is
// removed again.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	l, err := d.locate(ctx, parent.Path)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: mkdir %s in %s: %w", name, parent.Path, err)
	}
	if l.top {
		return drivers.Object{}, errRoot("mkdir " + name)
	}
	full := joinFull(l.full, name)
	if _, err := d.info(ctx, l, full); err == nil {
		return drivers.Object{}, fmt.Errorf("gokuai: mkdir %s: %w", full, drivers.ErrExist)
	} else if !isNotFound(err) {
		return drivers.Object{}, fmt.Errorf("gokuai: mkdir %s: %w", full, err)
	}
	return d.mkdir(ctx, l, full)
}

// mkdir makes the folder full, which was looked up and is free.
func (d *Driver) mkdir(ctx context.Context, l loc, full string) (drivers.Object, error) {
	var out struct {
		Hash     flex.ID `json:"hash"`
		Fullpath flex.ID `json:"fullpath"`
	}
	p := mountParams(l, full)
	p.Set("overwrite", "0")
	if err := d.call(ctx, request{method: http.MethodPost, path: "/m-api/2/file/create_folder", params: p, out: &out}); err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: mkdir %s: %w", full, err)
	}
	if out.Fullpath != "" && string(out.Fullpath) != full {
		d.discard(ctx, l, string(out.Fullpath))
		return drivers.Object{}, fmt.Errorf("gokuai: mkdir %s: made at the same time elsewhere: %w", full, drivers.ErrExist)
	}
	if out.Hash == "" {
		return d.info(ctx, l, full)
	}
	return drivers.Object{Name: baseName(full), IsDir: true, ID: objectID(l.lib.MountID, string(out.Hash), true, "")}, nil
}

func baseName(full string) string { return full[strings.LastIndex(full, "/")+1:] }

// discard removes a leftover of the driver's own, logging when it cannot.
func (d *Driver) discard(ctx context.Context, l loc, full string) {
	ctx = context.WithoutCancel(ctx)
	if err := d.del(ctx, l, full); err != nil && !isNotFound(err) {
		d.log.Warn().Str("library", l.lib.Name).Str("path", full).Str("error", err.Error()).Msg("gokuai: leftover not removed")
	}
}

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	l, err := d.changeable(ctx, "rename", obj.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.rename(ctx, l, l.full, newName); err != nil {
		return drivers.Object{}, err
	}
	return d.info(ctx, l, joinFull(parentFull(l.full), newName))
}

// joinFull is the fullpath of name in the folder dir.
func joinFull(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (d *Driver) rename(ctx context.Context, l loc, full, newName string) error {
	p := mountParams(l, full)
	p.Set("newname", newName)
	if err := d.call(ctx, request{method: http.MethodPost, path: "/m-api/1/file/rename", params: p}); err != nil {
		return fmt.Errorf("gokuai: rename %s to %s: %w", full, newName, err)
	}
	return nil
}

// changeable locates a path that may be renamed, moved or removed:
// neither the mount root nor a library.
func (d *Driver) changeable(ctx context.Context, op, p string) (loc, error) {
	l, err := d.locate(ctx, p)
	if err != nil {
		return loc{}, fmt.Errorf("gokuai: %s %s: %w", op, p, err)
	}
	if l.top || l.libRoot() {
		return loc{}, errLibrary(op, p)
	}
	return l, nil
}

// Remove deletes a file or a folder with its content.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	l, err := d.changeable(ctx, "remove", obj.Path)
	if err != nil {
		return err
	}
	if err := d.del(ctx, l, l.full); err != nil {
		return fmt.Errorf("gokuai: remove %s: %w", obj.Path, err)
	}
	return nil
}

func (d *Driver) del(ctx context.Context, l loc, full string) error {
	return d.call(ctx, request{method: http.MethodPost, path: "/m-api/1/file/del", params: mountParams(l, full)})
}

func isNotFound(err error) bool { return errors.Is(err, drivers.ErrNotFound) }

func isExist(err error) bool { return errors.Is(err, drivers.ErrExist) }
