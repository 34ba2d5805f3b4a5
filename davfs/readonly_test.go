package davfs

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"bridge/drivers"
)

// A mount whose driver declares itself read-only (a share link) refuses
// every write with the driver's reason before calling it, offers no
// writing method, and can still be read and copied from.
func TestReadOnlyMount(t *testing.T) {
	f := allFeatures()
	f.ReadOnly = "a share link is read-only"
	share := newMemDriver(t, f)
	share.add("root", "movie.mkv", false, []byte("frames"))
	dir := share.add("root", "album", true, nil)
	share.add(dir.id, "a.jpg", false, []byte("jpeg"))
	own := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/share", Driver: share}, Mount{Path: "/own", Driver: own})

	for _, c := range []struct{ method, path string }{
		{"PUT", "/share/new.txt"}, {"PUT", "/share/movie.mkv"}, {"MKCOL", "/share/d"}, {"DELETE", "/share/movie.mkv"},
		{"PROPPATCH", "/share/movie.mkv"}, {"LOCK", "/share/movie.mkv"}, {"MOVE", "/share/movie.mkv"},
	} {
		resp := e.do(t, c.method, c.path, strings.NewReader(""), "Destination", e.http.URL+"/own/moved.mkv")
		if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "share link is read-only") {
			t.Errorf("%s %s: %d %q, want 403 with the reason", c.method, c.path, resp.StatusCode, body)
		}
	}
	resp := e.do(t, "COPY", "/own/", nil, "Destination", e.http.URL+"/share/own-copy/")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("COPY into the share: %d, want 403", resp.StatusCode)
	}
	if got, ok := share.file("/movie.mkv"); !ok || string(got) != "frames" {
		t.Fatal("the share changed")
	}
	resp = e.do(t, "OPTIONS", "/share/movie.mkv", nil)
	allow := resp.Header.Get("Allow")
	for _, m := range []string{"PUT", "DELETE", "MOVE", "PROPPATCH", "LOCK", "MKCOL"} {
		if strings.Contains(allow, m) {
			t.Errorf("OPTIONS on a read-only mount offers %s: %s", m, allow)
		}
	}
	if !strings.Contains(allow, "GET") || !strings.Contains(allow, "COPY") {
		t.Errorf("OPTIONS on a read-only mount: %s, want GET and COPY", allow)
	}
	wantStatus(t, e.do(t, "COPY", "/share/album/", nil, "Destination", e.http.URL+"/own/album/"), http.StatusCreated)
	if got, ok := own.file("/album/a.jpg"); !ok || string(got) != "jpeg" {
		t.Fatal("the copy out of the share is missing")
	}
}

// takingDriver saves another memDriver's objects server-side, as a
// TeraBox account saves a share (share/transfer).
type takingDriver struct {
	*memDriver
	takes, puts atomic.Int32
}

func (d *takingDriver) CopyFrom(ctx context.Context, src drivers.Driver, obj, dstParent drivers.Ref, name string) (drivers.Object, error) {
	from, ok := src.(*memDriver)
	if !ok {
		return drivers.Object{}, drivers.ErrNotSupported
	}
	d.takes.Add(1)
	from.mu.Lock()
	n, err := from.node(obj)
	from.mu.Unlock()
	if err != nil {
		return drivers.Object{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var clone func(n *memNode, parent, name string) *memNode
	clone = func(n *memNode, parent, name string) *memNode {
		c := d.add(parent, name, n.dir, n.data)
		for _, k := range from.nodes {
			if k.parent == n.id && k.id != "root" {
				clone(k, c.id, k.name)
			}
		}
		return c
	}
	return d.obj(clone(n, d.idOf(dstParent), name)), nil
}

func (d *takingDriver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	d.puts.Add(1)
	return d.memDriver.Put(ctx, parent, name, up)
}

// A COPY into a mount whose provider can take the source by itself is
// one server-side call, folders included: nothing is read or uploaded.
func TestCrossMountCopyByServerCopier(t *testing.T) {
	src := newMemDriver(t, allFeatures())
	dir := src.add("root", "album", true, nil)
	src.add(dir.id, "a.jpg", false, []byte("jpeg"))
	src.add(dir.id, "b.jpg", false, []byte("more jpeg"))
	dst := &takingDriver{memDriver: newMemDriver(t, allFeatures())}
	e := newEnv(t, Options{}, Mount{Path: "/src", Driver: src}, Mount{Path: "/dst", Driver: dst})
	wantStatus(t, e.do(t, "COPY", "/src/album/", nil, "Destination", e.http.URL+"/dst/saved/"), http.StatusCreated)
	if dst.takes.Load() != 1 || dst.puts.Load() != 0 || src.linkGets.Load() != 0 {
		t.Fatalf("takes %d, puts %d, source reads %d: want one server-side copy", dst.takes.Load(), dst.puts.Load(), src.linkGets.Load())
	}
	if got, ok := dst.file("/saved/b.jpg"); !ok || string(got) != "more jpeg" {
		t.Fatal("the saved folder lacks its files")
	}
	resp := e.do(t, "PROPFIND", "/dst/saved/", nil, "Depth", "1")
	if b := readBody(t, resp); !strings.Contains(b, "a.jpg") {
		t.Fatalf("the saved folder is not listed: %s", b)
	}
}
