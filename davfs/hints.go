package davfs

import (
	"context"
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

// refListed returns dir's ref and, when a hint for dir was confirmed by
// it, dir's listing made by the hinted ID at the same time (ok true).
// Without a hint, or with the parent's listing cached (the ref then costs
// nothing), the ref alone is looked up; a listing the ref does not
// confirm is dropped, and the caller lists with the ref as usual.
func (s *Server) refListed(ctx context.Context, m *mount, dir string) (ref drivers.Ref, objs []drivers.Object, ok bool, err error) {
	hint, hinted := s.hints.get(m.path, dir)
	if _, cached := s.cache.get(m.path, path.Dir(dir)); !hinted || cached {
		ref, err = s.ref(ctx, m, dir)
		return ref, nil, false, err
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
	ref, err = s.ref(ctx, m, dir)
	guess := <-done
	if err != nil || !ref.IsDir || ref.ID != hint.ID || guess.err != nil {
		return ref, nil, false, err // the folder moved or changed: list it again
	}
	return ref, guess.objs, true, nil
}
