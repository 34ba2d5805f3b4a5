package davfs

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"bridge/drivers"
)

// listing is one folder's entries as last listed (or as changed since by
// writes through the bridge, so a client sees its own change at once).
type listing struct {
	mu      sync.RWMutex
	entries map[string]drivers.Object
	order   []drivers.Object // sorted entries, kept until the listing changes
	gen     uint64           // counts the changes, so a render of an older state is not kept
	encoded *encodedEntries  // the entries as PROPFIND answers them, kept until the listing changes
	asked   string           // the variant last asked for and not kept
}

// encodedEntries is a listing's entries rendered as the <D:response>s of
// a Depth 1 PROPFIND, for one set of requested properties: a warm PROPFIND
// of a big folder then writes bytes instead of encoding every entry again.
type encodedEntries struct {
	variant string // the base path and requested properties it was made for
	xml     []byte
}

// rendering returns the entries kept rendered for variant, if any, and
// otherwise whether rendering them to keep pays: the same variant was
// asked for before with no change since. The first answer of a listing
// streams from a pooled buffer instead. A cold PROPFIND then allocates
// nothing the size of its answer, and a folder that changes between
// every two PROPFINDs is never rendered for nothing.
func (l *listing) rendering(variant string) (xml []byte, keep bool, gen uint64) {
	l.mu.RLock()
	e, asked, gen := l.encoded, l.asked, l.gen
	l.mu.RUnlock()
	if e != nil && e.variant == variant {
		return e.xml, false, gen
	}
	if asked == variant {
		return nil, true, gen
	}
	l.mu.Lock()
	if l.gen == gen {
		l.asked = variant
	}
	l.mu.Unlock()
	return nil, false, gen
}

// keep keeps xml as the entries rendered for variant, unless the listing
// changed since gen. One variant is kept (the last one made): clients ask
// the same properties of a folder again and again, and the bytes cost as
// much memory as the entries themselves.
func (l *listing) keep(variant string, gen uint64, xml []byte) {
	l.mu.Lock()
	if l.gen == gen {
		l.encoded = &encodedEntries{variant, xml}
	}
	l.mu.Unlock()
}

func newListing(objs []drivers.Object) *listing {
	l := &listing{entries: make(map[string]drivers.Object, len(objs))}
	for _, o := range objs {
		if _, dup := l.entries[o.Name]; !dup && o.Name != "" {
			l.entries[o.Name] = o
		}
	}
	return l
}

func (l *listing) get(name string) (drivers.Object, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	o, ok := l.entries[name]
	return o, ok
}

// sorted returns the entries by name, a stable order for clients. The
// order is computed once per change of the listing (a warm PROPFIND of a
// big folder would otherwise sort it each time); callers must not modify
// the slice.
func (l *listing) sorted() []drivers.Object {
	l.mu.RLock()
	out := l.order
	l.mu.RUnlock()
	if out != nil {
		return out
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.order == nil {
		out := make([]drivers.Object, 0, len(l.entries))
		for _, o := range l.entries {
			out = append(out, o)
		}
		slices.SortFunc(out, func(a, b drivers.Object) int { return strings.Compare(a.Name, b.Name) })
		l.order = out
	}
	return l.order
}

func (l *listing) put(o drivers.Object) {
	l.mu.Lock()
	l.entries[o.Name] = o
	l.changed()
	l.mu.Unlock()
}

func (l *listing) remove(name string) {
	l.mu.Lock()
	delete(l.entries, name)
	l.changed()
	l.mu.Unlock()
}

// changed drops what was derived from the entries; l.mu is held.
func (l *listing) changed() {
	l.order = nil
	l.encoded = nil
	l.asked = ""
	l.gen++
}

// listCache keeps folder listings by "mountpath:dir" in an LRU with a TTL.
//
// A listing read from the provider may predate a change that lands while
// the call is under way: kept as it came, it would hide that change (a
// folder just made would not exist for the next request, and a MKCOL below
// it would answer 409). So every listing call is a flight the cache knows
// of while it runs: changes made through the bridge meanwhile are applied
// to it when it lands, and a folder dropped meanwhile (changed in ways the
// bridge cannot replay) makes it stale, answered but not kept.
type listCache struct {
	lru *expirable.LRU[string, *listing]
	// changed, when set, tells other bridge instances that a folder
	// changed through this one (tree: it and all below it).
	changed func(mount, dir string, tree bool)
	// drops counts dropped folders; it names the listing flights that
	// requests may share, so that none joins one that started before a
	// folder was dropped.
	drops atomic.Uint64

	mu      sync.Mutex // held while the cache or a flight changes
	flights map[*flight]struct{}
}

// flight is one folder's listing call under way.
type flight struct {
	key   string
	edits []func(*listing) // changes made through the bridge meanwhile
	stale bool             // the folder was dropped meanwhile
}

func newListCache(entries int, ttl time.Duration) *listCache {
	return &listCache{
		lru:     expirable.NewLRU[string, *listing](entries, nil, ttl),
		flights: map[*flight]struct{}{},
	}
}

func cacheKey(mount, dir string) string { return mount + ":" + dir }

func (c *listCache) get(mount, dir string) (*listing, bool) {
	return c.lru.Get(cacheKey(mount, dir))
}

func (c *listCache) add(mount, dir string, l *listing) { c.lru.Add(cacheKey(mount, dir), l) }

// flightKey names the listing call of dir that concurrent requests share.
func (c *listCache) flightKey(mount, dir string) string {
	return "list:" + cacheKey(mount, dir) + "@" + strconv.FormatUint(c.drops.Load(), 10)
}

// takeOff registers a listing call of dir about to be made.
func (c *listCache) takeOff(mount, dir string) *flight {
	f := &flight{key: cacheKey(mount, dir)}
	c.mu.Lock()
	c.flights[f] = struct{}{}
	c.mu.Unlock()
	return f
}

// land ends flight f with its listing l (nil: the call failed): the
// changes made meanwhile are applied to l, which is kept unless its
// folder was dropped meanwhile.
func (c *listCache) land(f *flight, l *listing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, f)
	if l == nil {
		return
	}
	for _, edit := range f.edits {
		edit(l)
	}
	if !f.stale {
		c.lru.Add(f.key, l)
	}
}

// edit applies a change to dir's cached listing and to its listings under
// way; c.mu is held.
func (c *listCache) edit(mount, dir string, fn func(*listing)) {
	key := cacheKey(mount, dir)
	for f := range c.flights {
		if f.key == key {
			f.edits = append(f.edits, fn)
		}
	}
	if l, ok := c.lru.Peek(key); ok {
		fn(l)
	}
}

// entryChanged records obj as the entry name of dir.
func (c *listCache) entryChanged(mount, dir string, obj drivers.Object) {
	c.mu.Lock()
	c.edit(mount, dir, func(l *listing) { l.put(obj) })
	c.mu.Unlock()
	c.tell(mount, dir, false)
}

// tell passes a change on to the other instances, if any.
func (c *listCache) tell(mount, dir string, tree bool) {
	if c.changed != nil {
		c.changed(mount, dir, tree)
	}
}

// entryRemoved drops name from dir's listing.
func (c *listCache) entryRemoved(mount, dir, name string) {
	c.mu.Lock()
	c.edit(mount, dir, func(l *listing) { l.remove(name) })
	c.mu.Unlock()
	c.tell(mount, dir, false)
}

// forgetTree drops the listings of dir and of every folder below it:
// after a move or delete their paths no longer name the same folders.
func (c *listCache) forgetTree(mount, dir string) {
	c.dropTree(mount, dir)
	c.tell(mount, dir, true)
}

// dropTree is forgetTree without telling anyone.
func (c *listCache) dropTree(mount, dir string) {
	key := cacheKey(mount, dir)
	prefix := key + "/"
	if dir == "/" {
		prefix = key
	}
	c.dropWhere(func(k string) bool { return k == key || strings.HasPrefix(k, prefix) })
}

// forget drops one folder's listing (when the outcome of a write is unknown).
func (c *listCache) forget(mount, dir string) {
	c.drop(mount, dir)
	c.tell(mount, dir, false)
}

// drop is forget without telling anyone.
func (c *listCache) drop(mount, dir string) {
	key := cacheKey(mount, dir)
	c.dropWhere(func(k string) bool { return k == key })
}

// purge drops everything (other instances' news was lost).
func (c *listCache) purge() {
	c.dropWhere(func(string) bool { return true })
}

// dropWhere drops the listings whose keys match, cached or under way.
func (c *listCache) dropWhere(match func(key string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drops.Add(1)
	for f := range c.flights {
		if match(f.key) {
			f.stale = true
		}
	}
	for _, k := range c.lru.Keys() {
		if match(k) {
			c.lru.Remove(k)
		}
	}
}
