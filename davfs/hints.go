package davfs

import (
	"context"
	"fmt"
	"path"

	lru "github.com/hashicorp/golang-lru/v2"

	"bridge/drivers"
)

// folderHints remembers the IDs of folders seen in listings, for longer
// than the listings live. A cold folder of a driver that needs IDs is then
// listed by the ID it had, while its parent is listed again to confirm
// that the ID still names it: the two calls overlap instead of following
// each other, and a path n levels deep costs one round trip, not n. A
// hint is never served: a listing made with a hint the parent does not
// confirm is thrown away and made again.
type folderHints struct {
	lru *lru.Cache[string, drivers.Object]
}

// hintEntries bounds the hints: a folder object is about 100 bytes.
const hintEntries = 4096

func newFolderHints() *folderHints {
	c, _ := lru.New[string, drivers.Object](hintEntries) // errors only for a size < 1
	return &folderHints{lru: c}
}

// note keeps the folders among dir's entries, as just listed.
func (h *folderHints) note(mount, dir string, objs []drivers.Object) {
	for _, o := range objs {
		if o.IsDir && o.ID != "" {
			h.lru.Add(cacheKey(mount, path.Join(dir, o.Name)), o)
		}
	}
}

func (h *folderHints) get(mount, dir string) (drivers.Object, bool) {
	return h.lru.Get(cacheKey(mount, dir))
}

// has reports a hint for dir, without marking it used.
func (h *folderHints) has(mount, dir string) bool { return h.lru.Contains(cacheKey(mount, dir)) }

// listHinted lists dir by its hinted ID while ref confirms it. It reports
// false when there is no hint or the parent's listing is cached (ref
// then costs nothing), and when the hint was wrong; the caller then lists
// with ref as usual.
func (s *Server) listHinted(ctx context.Context, m *mount, dir string) ([]drivers.Object, drivers.Ref, bool, error) {
	hint, ok := s.hints.get(m.path, dir)
	if !ok {
		return nil, drivers.Ref{}, false, nil
	}
	if _, cached := s.cache.get(m.path, path.Dir(dir)); cached {
		return nil, drivers.Ref{}, false, nil
	}
	type listed struct {
		objs []drivers.Object
		err  error
	}
	done := make(chan listed, 1)
	go func() {
		objs, err := m.drv.List(ctx, drivers.Ref{Path: dir, Object: hint})
		done <- listed{objs, err}
	}()
	ref, err := s.ref(ctx, m, dir)
	guess := <-done
	if err != nil {
		return nil, drivers.Ref{}, false, err
	}
	if !ref.IsDir {
		return nil, drivers.Ref{}, false, fmt.Errorf("%s%s: %w", m.path, dir, errNotDir)
	}
	if ref.ID != hint.ID || guess.err != nil {
		return nil, ref, false, nil // the folder moved or changed: list it again
	}
	return guess.objs, ref, true, nil
}
