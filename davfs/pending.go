package davfs

import (
	"path"
	"strings"
	"sync"
	"time"

	"bridge/drivers"
)

// Explorer, Finder and RaiDrive create a file empty first (PUT of 0 bytes,
// or LOCK on a new name) and send its content with a second PUT. Providers
// that refuse empty files would fail the first step, so for them the bridge
// keeps a pending empty entry of its own, shown in listings and readable as
// 0 bytes, until content arrives, it is deleted, or the process ends.

// pendingPrefix marks the IDs of pending entries; provider IDs never hold NUL.
const pendingPrefix = "\x00pending:"

func isPending(o drivers.Object) bool { return strings.HasPrefix(o.ID, pendingPrefix) }

// pendingFiles holds the pending entries by mount path and folder.
type pendingFiles struct {
	mu sync.Mutex
	m  map[string]map[string]drivers.Object // "mount:dir" -> name -> object
}

func (p *pendingFiles) add(m *mount, rel string) drivers.Object {
	o := drivers.Object{Name: path.Base(rel), ID: pendingPrefix + rel, ModTime: time.Now()}
	key := cacheKey(m.path, path.Dir(rel))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]map[string]drivers.Object{}
	}
	if p.m[key] == nil {
		p.m[key] = map[string]drivers.Object{}
	}
	p.m[key][o.Name] = o
	return o
}

func (p *pendingFiles) remove(m *mount, rel string) {
	key := cacheKey(m.path, path.Dir(rel))
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m[key], path.Base(rel))
	if len(p.m[key]) == 0 {
		delete(p.m, key)
	}
}

// in returns the pending entries of a folder, for merging into a listing.
func (p *pendingFiles) in(m *mount, dir string) []drivers.Object {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []drivers.Object
	for _, o := range p.m[cacheKey(m.path, dir)] {
		out = append(out, o)
	}
	return out
}
