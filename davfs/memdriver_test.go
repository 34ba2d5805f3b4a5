package davfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bridge/drivers"
)

// memDriver is an in-memory provider for davfs tests: features can be
// switched off to exercise the bridge's fallbacks, and its links are real
// HTTP URLs that expire, can ignore Range, or fail.
type memDriver struct {
	mu       sync.Mutex
	features drivers.Features
	nodes    map[string]*memNode // by id
	nextID   int
	srv      *httptest.Server
	now      func() time.Time

	ignoreRange   bool         // links answer 200 with everything
	forbidLinks   atomic.Int32 // this many link GETs answer 403 first
	cutAfter      atomic.Int64 // a link GET sends at most this many bytes then cuts (0: off)
	linkGets      atomic.Int64
	failPut       error
	listDelay     chan struct{} // when set, List waits for it
	afterList     func()        // when set, List calls it once it has read the folder (an answer still on its way)
	listsNow      atomic.Int32  // List calls running
	listsMax      atomic.Int32  // the most that ran at once
	removedOnFail bool
	forbidden     string         // Put and Mkdir refuse names holding any of these
	noTimes       bool           // objects carry no modification time
	lastHashes    drivers.Hashes // what the last Put was given
}

type memNode struct {
	id      string
	parent  string
	name    string
	dir     bool
	data    []byte
	modTime time.Time
}

func newMemDriver(t *testing.T, f drivers.Features) *memDriver {
	d := &memDriver{features: f, nodes: map[string]*memNode{}, now: time.Now}
	d.nodes["root"] = &memNode{id: "root", dir: true}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serveLink))
	t.Cleanup(d.srv.Close)
	return d
}

func allFeatures() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true}
}

func (d *memDriver) serveLink(w http.ResponseWriter, r *http.Request) {
	d.linkGets.Add(1)
	if d.forbidLinks.Load() > 0 {
		d.forbidLinks.Add(-1)
		http.Error(w, "expired", http.StatusForbidden)
		return
	}
	exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	if d.now().Unix() > exp {
		http.Error(w, "expired", http.StatusForbidden)
		return
	}
	d.mu.Lock()
	n, ok := d.nodes[r.URL.Query().Get("id")]
	var data []byte
	if ok {
		data = n.data
	}
	d.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if d.ignoreRange {
		r.Header.Del("Range")
	}
	if cut := d.cutAfter.Load(); cut > 0 {
		d.cutAfter.Store(0)
		w = &cuttingWriter{ResponseWriter: w, left: cut}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// cuttingWriter stops writing after left bytes and breaks the connection.
type cuttingWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		p = p[:c.left]
		c.ResponseWriter.Write(p)
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(p))
	return c.ResponseWriter.Write(p)
}

func (d *memDriver) obj(n *memNode) drivers.Object {
	o := drivers.Object{Name: n.name, Size: int64(len(n.data)), ModTime: n.modTime, IsDir: n.dir, ID: n.id}
	if d.noTimes {
		o.ModTime = time.Time{}
	}
	return o
}

func (d *memDriver) checkName(name string) error {
	if d.forbidden != "" && strings.ContainsAny(name, d.forbidden) {
		return fmt.Errorf("mem: %q: %w", name, drivers.ErrInvalidName)
	}
	return nil
}

func (d *memDriver) node(ref drivers.Ref) (*memNode, error) {
	n, ok := d.nodes[ref.ID]
	if ref.ID == "" && d.features.ListsByPath { // a path-listing provider
		n, ok = d.nodes["root"], true
		for _, seg := range strings.Split(strings.Trim(ref.Path, "/"), "/") {
			if seg != "" && n != nil {
				n = d.child(n.id, seg)
			}
		}
		ok = n != nil && n.dir == ref.IsDir
	}
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", ref.Path, drivers.ErrNotFound)
	}
	return n, nil
}

// idOf is a folder Ref's id, looked up by path when it has none (as a
// path-listing provider's driver does). Called with d.mu held.
func (d *memDriver) idOf(ref drivers.Ref) string {
	if n, err := d.node(ref); err == nil {
		return n.id
	}
	return ref.ID
}

func (d *memDriver) child(parent, name string) *memNode {
	for _, n := range d.nodes {
		if n.parent == parent && n.name == name && n.id != "root" {
			return n
		}
	}
	return nil
}

func (d *memDriver) add(parent, name string, dir bool, data []byte) *memNode {
	d.nextID++
	n := &memNode{id: "n" + strconv.Itoa(d.nextID), parent: parent, name: name, dir: dir, data: data, modTime: d.now().Truncate(time.Second)}
	d.nodes[n.id] = n
	return n
}

func (d *memDriver) Features() drivers.Features { return d.features }

func (d *memDriver) Root(ctx context.Context) (drivers.Object, error) {
	return drivers.Object{ID: "root", IsDir: true}, nil
}

func (d *memDriver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	now := d.listsNow.Add(1)
	defer d.listsNow.Add(-1)
	for max := d.listsMax.Load(); now > max && !d.listsMax.CompareAndSwap(max, now); max = d.listsMax.Load() {
	}
	if d.listDelay != nil {
		<-d.listDelay
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	parent, err := d.node(dir)
	if err != nil {
		return nil, err
	}
	var out []drivers.Object
	for _, n := range d.nodes {
		if n.parent == parent.id && n.id != "root" {
			out = append(out, d.obj(n))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if d.afterList != nil {
		d.mu.Unlock()
		d.afterList()
		d.mu.Lock()
	}
	return out, nil
}

func (d *memDriver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	if !d.features.Links {
		return drivers.Link{}, drivers.ErrNotSupported
	}
	exp := d.now().Add(10 * time.Minute)
	return drivers.Link{
		URL:        fmt.Sprintf("%s/dl?id=%s&exp=%d&sig=SECRETSIG", d.srv.URL, file.ID, exp.Unix()),
		Expires:    exp,
		ClientSafe: true,
	}, nil
}

func (d *memDriver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	if err := d.checkName(name); err != nil {
		return drivers.Object{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.child(d.idOf(parent), name) != nil {
		return drivers.Object{}, drivers.ErrExist
	}
	return d.obj(d.add(d.idOf(parent), name, true, nil)), nil
}

func (d *memDriver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.node(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	if d.child(n.parent, newName) != nil {
		return drivers.Object{}, drivers.ErrExist
	}
	n.name = newName
	return d.obj(n), nil
}

func (d *memDriver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if !d.features.Move {
		return drivers.Object{}, drivers.ErrNotSupported
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.node(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	n.parent, n.name = d.idOf(dstParent), newName
	return d.obj(n), nil
}

func (d *memDriver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if (obj.IsDir && !d.features.CopyDir) || (!obj.IsDir && !d.features.CopyFile) {
		return drivers.Object{}, drivers.ErrNotSupported
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.node(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	return d.obj(d.copyNode(n, d.idOf(dstParent), newName)), nil
}

func (d *memDriver) copyNode(n *memNode, parent, name string) *memNode {
	c := d.add(parent, name, n.dir, append([]byte(nil), n.data...))
	var kids []*memNode
	for _, k := range d.nodes {
		if k.parent == n.id && k.id != "root" {
			kids = append(kids, k)
		}
	}
	for _, k := range kids {
		d.copyNode(k, c.id, k.name)
	}
	return c
}

func (d *memDriver) Remove(ctx context.Context, obj drivers.Ref) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.node(obj)
	if err != nil {
		return err
	}
	d.removeNode(n)
	return nil
}

func (d *memDriver) removeNode(n *memNode) {
	for _, k := range d.nodes {
		if k.parent == n.id && k.id != "root" {
			d.removeNode(k)
		}
	}
	delete(d.nodes, n.id)
}

func (d *memDriver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	if d.failPut != nil {
		return drivers.Object{}, d.failPut
	}
	if err := d.checkName(name); err != nil {
		return drivers.Object{}, err
	}
	data, err := io.ReadAll(io.NewSectionReader(up.Body, 0, up.Size))
	if err != nil {
		return drivers.Object{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastHashes = up.Hashes
	if old := d.child(d.idOf(parent), name); old != nil {
		old.data = data
		return d.obj(old), nil
	}
	return d.obj(d.add(d.idOf(parent), name, false, data)), nil
}

func (d *memDriver) Quota(ctx context.Context) (drivers.Quota, error) {
	return drivers.Quota{Total: 1 << 30, Used: 0, Free: 1 << 30}, nil
}

// file returns the content at a slash path, for assertions.
func (d *memDriver) file(p string) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.nodes["root"]
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == "" {
			continue
		}
		cur = d.child(cur.id, seg)
		if cur == nil {
			return nil, false
		}
	}
	return cur.data, true
}

func (d *memDriver) SetModTime(ctx context.Context, obj drivers.Ref, t time.Time) (drivers.Object, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.node(obj)
	if err != nil {
		return drivers.Object{}, err
	}
	n.modTime = t
	return d.obj(n), nil
}
