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
// 0 bytes, until content arrives, it is deleted, or the process ends (with
// server.shared_state, the entries live in Redis, seen by every instance:
// redisPending).

// pendingStore holds the pending entries. A store that cannot be reached
// fails (503); the in-memory one never does.
type pendingStore interface {
	add(m *mount, rel string, modTime time.Time) (drivers.Object, error)
	remove(m *mount, rel string) error
	in(m *mount, dir string) ([]drivers.Object, error)
	removeTree(m *mount, rel string) error
	carryTree(m *mount, from, to string, keep bool) error
}

// newPending is the entry a PUT of 0 bytes at rel leaves.
func newPending(rel string, modTime time.Time) drivers.Object {
	if modTime.IsZero() {
		modTime = time.Now()
	}
	return drivers.Object{Name: path.Base(rel), ID: pendingPrefix + rel, ModTime: modTime}
}

// pendingPrefix marks the IDs of pending entries; provider IDs never hold NUL.
const pendingPrefix = "\x00pending:"

func isPending(o drivers.Object) bool { return strings.HasPrefix(o.ID, pendingPrefix) }

// pendingFiles holds the pending entries by mount path and folder.
type pendingFiles struct {
	mu sync.Mutex
	m  map[string]map[string]drivers.Object // "mount:dir" -> name -> object
}

// add records an empty file at rel with the client's modification time
// (now when it gave none), so that a sync client finds the time it set.
func (p *pendingFiles) add(m *mount, rel string, modTime time.Time) (drivers.Object, error) {
	o := newPending(rel, modTime)
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
	return o, nil
}

func (p *pendingFiles) remove(m *mount, rel string) error {
	key := cacheKey(m.path, path.Dir(rel))
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m[key], path.Base(rel))
	if len(p.m[key]) == 0 {
		delete(p.m, key)
	}
	return nil
}

// in returns the pending entries of a folder, for merging into a listing.
func (p *pendingFiles) in(m *mount, dir string) ([]drivers.Object, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []drivers.Object
	for _, o := range p.m[cacheKey(m.path, dir)] {
		out = append(out, o)
	}
	return out, nil
}

// underKey reports whether key names the folder rel of mount m or one below it.
func underKey(key, mount, rel string) bool {
	return key == cacheKey(mount, rel) || strings.HasPrefix(key, cacheKey(mount, strings.TrimSuffix(rel, "/")+"/"))
}

// removeTree forgets the pending entries inside the folder rel, which is
// gone: a folder made again at that path must not show them.
func (p *pendingFiles) removeTree(m *mount, rel string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key := range p.m {
		if underKey(key, m.path, rel) {
			delete(p.m, key)
		}
	}
	return nil
}

// carryTree gives the folder to (on the same mount) the pending entries of
// the folder from, which the provider moved or copied without them; a move
// (keep false) takes them away from from.
func (p *pendingFiles) carryTree(m *mount, from, to string, keep bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	moved := map[string]map[string]drivers.Object{}
	for key, entries := range p.m {
		if !underKey(key, m.path, from) {
			continue
		}
		dir := strings.TrimPrefix(key, cacheKey(m.path, ""))
		newDir := path.Join(to, strings.TrimPrefix(dir, from))
		out := map[string]drivers.Object{}
		for name, o := range entries {
			o.ID = pendingPrefix + path.Join(newDir, name)
			out[name] = o
		}
		moved[cacheKey(m.path, newDir)] = out
		if !keep {
			delete(p.m, key)
		}
	}
	for key, entries := range moved {
		if p.m[key] == nil {
			p.m[key] = map[string]drivers.Object{}
		}
		for name, o := range entries {
			p.m[key][name] = o
		}
	}
	return nil
}
