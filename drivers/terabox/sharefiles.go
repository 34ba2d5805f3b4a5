package terabox

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// withKey sets a share/list call's session key.
func withKey(q url.Values, sess shareSession) { q.Set("sekey", sess.Sekey) }

// listPage reads one page of share/list: the shared items (root, which
// ignores paging) or a folder by its owner's path.
func (s *Share) listPage(ctx context.Context, dir string, page int) ([]entry, error) {
	var out struct {
		List []entry `json:"list"`
	}
	q := url.Values{"shorturl": {s.link.surl}, "page": {strconv.Itoa(page)}, "num": {strconv.Itoa(s.acct.pageSize)},
		"order": {"asc"}, "by": {"name"}}
	if dir == "" {
		q.Set("root", "1")
	} else {
		q.Set("dir", dir)
	}
	err := s.call(ctx, request{op: "share list", method: http.MethodGet, path: "/openapi/share/list", query: q, resend: true}, &out, withKey)
	return out.List, err
}

// listRoot lists the shared items (one call: the root is not paged) and
// keeps them by name for mapping paths.
func (s *Share) listRoot(ctx context.Context) ([]entry, error) {
	entries, err := s.listPage(ctx, "", 1)
	if err != nil {
		return nil, err
	}
	roots := make(map[string]entry, len(entries))
	for _, e := range entries {
		roots[e.object().Name] = e
	}
	s.mu.Lock()
	s.roots = roots
	s.mu.Unlock()
	return entries, nil
}

// listDir reads every page of a folder by its owner's path, until a page
// shorter than asked, or one that brings nothing new (a server that
// ignores paging there too).
func (s *Share) listDir(ctx context.Context, dir string) ([]entry, error) {
	seen := map[string]bool{}
	var out []entry
	for page := 1; ; page++ {
		entries, err := s.listPage(ctx, dir, page)
		if err != nil {
			return nil, err
		}
		fresh := 0
		for _, e := range entries {
			if id := string(e.FsID); id != "" && !seen[id] {
				seen[id] = true
				fresh++
				out = append(out, e)
			}
		}
		if len(entries) < s.acct.pageSize || fresh == 0 {
			return out, nil
		}
	}
}

// ownerPath maps a mount path below the root onto the owner's path:
// /<item>/rest is the shared item's path, as the root listing gave it,
// followed by rest.
func (s *Share) ownerPath(ctx context.Context, p string) (string, error) {
	segs := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	s.mu.Lock()
	top, ok := s.roots[segs[0]]
	s.mu.Unlock()
	if !ok {
		if _, err := s.listRoot(ctx); err != nil {
			return "", err
		}
		s.mu.Lock()
		top, ok = s.roots[segs[0]]
		s.mu.Unlock()
	}
	switch {
	case !ok || (top.IsDir != 1 && len(segs) > 1):
		return "", fmt.Errorf("terabox: %s: not in the share: %w", p, drivers.ErrNotFound)
	case top.Path == "":
		return "", fmt.Errorf("terabox: %s: the share's listing gives no paths: %w", p, drivers.ErrUnavailable)
	}
	return path.Join(append([]string{top.Path}, segs[1:]...)...), nil
}

// objects turns share entries into objects, each once.
func objects(entries []entry) []drivers.Object {
	seen := map[string]bool{}
	out := make([]drivers.Object, 0, len(entries))
	for _, e := range entries {
		o := e.object()
		if o.ID == "" || o.Name == "" || seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		out = append(out, o)
	}
	return out
}

// List returns every entry of a folder of the share.
func (s *Share) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	var entries []entry
	var err error
	if path.Clean("/"+dir.Path) == "/" {
		entries, err = s.listRoot(ctx)
	} else {
		var owner string
		if owner, err = s.ownerPath(ctx, dir.Path); err == nil {
			entries, err = s.listDir(ctx, owner)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("terabox: list %s: %w", dir.Path, err)
	}
	return objects(entries), nil
}

// fsidOf is a share object's fs_id: its ID, or looked up in its folder's
// listing when the Ref has none.
func (s *Share) fsidOf(ctx context.Context, obj drivers.Ref) (string, error) {
	if _, err := strconv.ParseUint(obj.ID, 10, 64); err == nil {
		return obj.ID, nil
	}
	name := path.Base(obj.Path)
	parent := drivers.Ref{Path: path.Dir(path.Clean("/" + obj.Path)), Object: drivers.Object{IsDir: true}}
	objs, err := s.List(ctx, parent)
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		if o.Name == name {
			return o.ID, nil
		}
	}
	return "", fmt.Errorf("terabox: %s: not in the share: %w", obj.Path, drivers.ErrNotFound)
}

// Link asks share/download for a file's dlink and appends the access
// token, as for the account's own files (never ClientSafe).
func (s *Share) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	if file.IsDir {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: a folder: %w", file.Path, drivers.ErrNotFound)
	}
	id, err := s.fsidOf(ctx, file)
	if err != nil {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: %w", file.Path, err)
	}
	var out struct {
		List []struct {
			FsID  flex.ID `json:"fs_id"`
			Dlink string  `json:"dlink"`
		} `json:"list"`
	}
	asked := s.acct.now()
	rq := request{op: "share download", method: http.MethodGet, path: "/openapi/share/download",
		query: url.Values{"fid_list": {"[" + id + "]"}}, resend: true}
	err = s.call(ctx, rq, &out, func(q url.Values, sess shareSession) {
		q.Set("shareid", sess.ShareID)
		q.Set("uk", sess.UK)
		q.Set("sekey", sess.Sekey)
	})
	if err != nil {
		return drivers.Link{}, fmt.Errorf("terabox: link %s: %w", file.Path, err)
	}
	for _, l := range out.List {
		if string(l.FsID) == id && l.Dlink != "" {
			return s.acct.tokenLink(ctx, l.Dlink, asked, file.Path)
		}
	}
	return drivers.Link{}, fmt.Errorf("terabox: link %s: not in the share: %w", file.Path, drivers.ErrNotFound)
}
