package davfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"bridge/davfs/deadprops"
	"bridge/drivers"
	"bridge/drivers/download"
)

// parentRef returns the folder that holds t; the share root and the mount
// roots themselves have no parent that may be written.
func (s *Server) parentRef(ctx context.Context, t target) (drivers.Ref, error) {
	if t.isShareRoot() || t.isMountRoot() {
		return drivers.Ref{}, errFixedFolder
	}
	ref, err := s.ref(ctx, t.m, path.Dir(t.rel))
	if isNotFound(err) || (err == nil && !ref.IsDir) {
		return drivers.Ref{}, fmt.Errorf("%s: %w", t.full, errNoParent)
	}
	return ref, err
}

// mkdir creates the folder t.
func (s *Server) mkdir(ctx context.Context, t target) error {
	parent, err := s.parentRef(ctx, t)
	if err != nil {
		return err
	}
	if _, err := s.stat(ctx, t.m, t.rel); err == nil {
		return fmt.Errorf("%s: %w", t.full, drivers.ErrExist)
	} else if !isNotFound(err) {
		return err
	}
	obj, err := t.m.drv.Mkdir(ctx, parent, path.Base(t.rel))
	if err != nil {
		s.cache.forget(t.m.path, parent.Path)
		return fmt.Errorf("%s: mkdir: %w", t.full, err)
	}
	if obj.IsDir {
		// Known empty: no listing call. Kept before the parent shows the
		// folder, so that a DELETE that finds it drops this too.
		s.cache.add(t.m.path, t.rel, newListing(nil))
	}
	s.recordNew(t.m, t.rel, obj)
	return nil
}

// recordNew puts a created or changed object into its parent's listing so
// that the client sees its own change at once.
func (s *Server) recordNew(m *mount, rel string, obj drivers.Object) {
	if obj.Name == "" {
		obj.Name = path.Base(rel)
	}
	s.cache.entryChanged(m.path, path.Dir(rel), obj)
	s.links.forgetPath(m, rel)
}

// recordGone removes rel (and everything cached below it).
func (s *Server) recordGone(m *mount, rel string) {
	s.cache.entryRemoved(m.path, path.Dir(rel), path.Base(rel))
	s.cache.forgetTree(m.path, rel)
	s.links.forgetPath(m, rel)
	s.pendingChanged(s.pending.removeTree(m, rel))
}

// pendingChanged logs a pending-entry store failure after the provider's
// operation succeeded (the entry may show until the store is back).
func (s *Server) pendingChanged(err error) {
	if err != nil {
		s.log.Error().Str("error", err.Error()).Msg("pending empty entries not updated")
	}
}

// remove deletes t with everything below it.
func (s *Server) remove(ctx context.Context, t target) error {
	if t.isShareRoot() || t.isMountRoot() {
		return errFixedFolder
	}
	ref, err := s.ref(ctx, t.m, t.rel)
	if err != nil {
		return err
	}
	if isPending(ref.Object) {
		if err := s.pending.remove(t.m, t.rel); err != nil {
			return fmt.Errorf("%s: %w", t.full, err)
		}
		s.recordGone(t.m, t.rel)
		return nil
	}
	if err := t.m.drv.Remove(ctx, ref); err != nil {
		s.cache.forget(t.m.path, path.Dir(t.rel))
		return fmt.Errorf("%s: remove: %w", t.full, err)
	}
	s.recordGone(t.m, t.rel)
	s.propsChanged(func(st deadprops.Props) error { return st.Delete(t.full) })
	return nil
}

// propsChanged applies a change to the dead-property store after the
// provider's operation succeeded; a store failure is logged, not answered,
// since the operation itself is done.
func (s *Server) propsChanged(fn func(deadprops.Props) error) {
	if s.opts.Props == nil {
		return
	}
	if err := fn(s.opts.Props); err != nil {
		s.log.Error().Err(err).Msg("dead property store")
	}
}

// putTarget checks where a PUT goes before its body is read: the parent
// folder must exist and no folder may stand at the name. It returns the
// parent and the file being replaced, if any.
func (s *Server) putTarget(ctx context.Context, t target) (drivers.Ref, *drivers.Object, error) {
	if t.isMountRoot() {
		return drivers.Ref{}, nil, errIsFolder
	}
	parent, err := s.parentRef(ctx, t)
	if err != nil {
		return drivers.Ref{}, nil, err
	}
	old, err := s.stat(ctx, t.m, t.rel)
	switch {
	case err == nil && old.IsDir:
		return drivers.Ref{}, nil, fmt.Errorf("%s: %w", t.full, errIsFolder)
	case err == nil:
		return parent, &old, nil
	case isNotFound(err):
		return parent, nil, nil
	default:
		return drivers.Ref{}, nil, err
	}
}

// checkSize refuses what the mount cannot store before bytes are sent.
func checkSize(m *mount, size int64) error {
	if size == 0 && !m.features.EmptyFiles {
		return fmt.Errorf("%s stores no empty files: %w", m.path, drivers.ErrNotSupported)
	}
	if max := m.features.MaxFileSize; max > 0 && size > max {
		return fmt.Errorf("%d bytes, the limit of %s is %d: %w", size, m.path, max, drivers.ErrTooLarge)
	}
	return nil
}

// put stores a finished spool as the file t. created reports a new name.
func (s *Server) put(ctx context.Context, t target, sp *spool, modTime time.Time) (obj drivers.Object, created bool, err error) {
	parent, old, err := s.putTarget(ctx, t)
	if err != nil {
		return drivers.Object{}, false, err
	}
	wasPending := old != nil && isPending(*old)
	if wasPending {
		old = nil // nothing at the provider to replace
	}
	if sp.size == 0 && !t.m.features.EmptyFiles && old == nil {
		obj, err := s.pending.add(t.m, t.rel, modTime)
		if err != nil {
			return drivers.Object{}, false, fmt.Errorf("%s: %w", t.full, err)
		}
		s.recordNew(t.m, t.rel, obj)
		return obj, !wasPending, nil
	}
	obj, err = s.putInto(ctx, t.m, parent, path.Base(t.rel), sp, modTime, old)
	if err == nil && wasPending {
		s.pendingChanged(s.pending.remove(t.m, t.rel))
		created = true
	}
	if err != nil {
		return drivers.Object{}, false, fmt.Errorf("%s: %w", t.full, err)
	}
	return obj, created || old == nil, nil
}

// putInto uploads sp as name into parent and records it.
func (s *Server) putInto(ctx context.Context, m *mount, parent drivers.Ref, name string, sp *spool, modTime time.Time, old *drivers.Object) (drivers.Object, error) {
	if err := checkSize(m, sp.size); err != nil {
		return drivers.Object{}, err
	}
	up := sp.upload()
	up.ModTime = modTime
	up.Replaces = old
	if up.Size >= progressMin {
		up.Body = &progressReader{r: up.Body, size: up.Size, start: time.Now(),
			log: s.log.With().Str("mount", m.path).Str("path", path.Join(parent.Path, name)).Logger()}
	}
	obj, err := m.drv.Put(ctx, parent, name, up)
	rel := path.Join(parent.Path, name)
	if err != nil {
		s.cache.forget(m.path, parent.Path)
		s.links.forgetPath(m, rel)
		return drivers.Object{}, fmt.Errorf("upload: %w", err)
	}
	if obj.Name == "" {
		obj.Name = name
	}
	if modTime.IsZero() {
		modTime = time.Now()
	}
	obj = s.keepTime(m, rel, obj, modTime)
	s.recordNew(m, rel, obj)
	return obj, nil
}

// transfer copies or moves src to dst, server-side where the provider
// can. It answers whether dst was created (rather than replaced).
func (s *Server) transfer(ctx context.Context, src, dst target, move, overwrite bool, deep bool) (created bool, err error) {
	if src.isShareRoot() || src.isMountRoot() || dst.isShareRoot() || dst.isMountRoot() {
		return false, errFixedFolder
	}
	if src.full == dst.full {
		return false, errSameResource
	}
	srcRef, err := s.ref(ctx, src.m, src.rel)
	if err != nil {
		return false, err
	}
	if srcRef.IsDir && strings.HasPrefix(dst.full, src.full+"/") {
		return false, fmt.Errorf("%s into %s: %w", src.full, dst.full, errIntoItself)
	}
	dstParent, err := s.parentRef(ctx, dst)
	if err != nil {
		return false, err
	}
	old, err := s.stat(ctx, dst.m, dst.rel)
	switch {
	case err == nil && !overwrite:
		return false, fmt.Errorf("%s: %w", dst.full, errDestExists)
	case err != nil && !isNotFound(err):
		return false, err
	}
	exists := err == nil
	name := path.Base(dst.rel)
	if isPending(srcRef.Object) {
		return s.transferPending(ctx, src, dst, move, exists, old)
	}
	do := func() error {
		if src.m == dst.m {
			return s.transferWithin(ctx, src.m, srcRef, dstParent, name, move, deep)
		}
		if err := s.copyTree(ctx, src.m, srcRef, dst.m, dstParent, name, deep); err != nil {
			return err
		}
		// Properties go along before remove forgets the source's.
		s.propsChanged(func(st deadprops.Props) error { return st.CopyProps(src.full, dst.full) })
		if move {
			return s.remove(ctx, src)
		}
		return nil
	}
	if exists {
		err = s.replacing(ctx, dst, old, do)
	} else {
		err = do()
	}
	// Paths below both ends changed meaning; their listings are re-read.
	s.cache.forgetTree(dst.m.path, dst.rel)
	if err != nil {
		s.cache.forget(dst.m.path, dstParent.Path)
		return false, err
	}
	if src.m == dst.m && srcRef.IsDir && deep {
		// The provider's own move or copy knows nothing of the bridge's
		// pending empty entries inside the folder; they go along here.
		s.pendingChanged(s.pending.carryTree(src.m, src.rel, dst.rel, !move))
	}
	if move {
		s.recordGone(src.m, src.rel)
	}
	if src.m == dst.m {
		s.propsChanged(func(st deadprops.Props) error {
			if move {
				return st.Move(src.full, dst.full)
			}
			return st.Copy(src.full, dst.full)
		})
	}
	// The provider's answer carries its own time; the kept one, which
	// moved along with the properties, goes back into the listing.
	if l, ok := s.cache.get(dst.m.path, path.Dir(dst.rel)); ok {
		if o, ok := l.get(path.Base(dst.rel)); ok {
			l.put(s.withKeptTime(dst.m, dst.rel, o))
		}
	}
	return !exists, nil
}

// replacing runs fn with the existing destination old out of the way. A
// folder is deleted first (RFC 4918's Overwrite: T). A file is renamed
// aside and deleted only once fn has succeeded, and put back if it fails:
// editors save by MOVE over the original, which must not be lost.
func (s *Server) replacing(ctx context.Context, dst target, old drivers.Object, fn func() error) error {
	if old.IsDir {
		if err := s.remove(ctx, dst); err != nil {
			return err
		}
		return fn()
	}
	oldRef := drivers.Ref{Path: dst.rel, Object: old}
	aside := path.Base(dst.rel) + ".bridge-old-" + randomSuffix()
	moved, err := dst.m.drv.Rename(ctx, oldRef, aside)
	if err != nil {
		return fmt.Errorf("%s: set aside: %w", dst.full, err)
	}
	asideRef := drivers.Ref{Path: path.Join(path.Dir(dst.rel), aside), Object: moved}
	s.recordGone(dst.m, dst.rel)
	if err := fn(); err != nil {
		if _, rerr := dst.m.drv.Rename(context.WithoutCancel(ctx), asideRef, path.Base(dst.rel)); rerr != nil {
			s.log.Error().Err(rerr).Str("path", dst.full).Str("kept_as", aside).Msg("could not restore the replaced file")
		}
		s.cache.forget(dst.m.path, path.Dir(dst.rel))
		return err
	}
	if err := dst.m.drv.Remove(ctx, asideRef); err != nil {
		s.log.Warn().Err(err).Str("path", asideRef.Path).Msg("could not remove the replaced file")
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// transferWithin moves or copies inside one mount with the provider's own
// operations, falling back where a feature is missing.
func (s *Server) transferWithin(ctx context.Context, m *mount, src, dstParent drivers.Ref, name string, move, deep bool) error {
	dstRel := path.Join(dstParent.Path, name)
	if move {
		var obj drivers.Object
		var err error
		switch {
		case path.Dir(src.Path) == dstParent.Path:
			obj, err = m.drv.Rename(ctx, src, name)
		case m.features.Move:
			obj, err = m.drv.Move(ctx, src, dstParent, name)
		default:
			if err := s.copyTree(ctx, m, src, m, dstParent, name, true); err != nil {
				return err
			}
			if err := m.drv.Remove(ctx, src); err != nil {
				return fmt.Errorf("%s%s: remove after copy: %w", m.path, src.Path, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s%s: move: %w", m.path, src.Path, err)
		}
		s.recordNew(m, dstRel, obj)
		return nil
	}
	return s.copyTree(ctx, m, src, m, dstParent, name, deep)
}

// copyTree copies src (of mount sm) into dstParent (of mount dm) as name:
// with one provider call where both are one mount and the provider copies
// that kind of object, otherwise folder by folder, each file server-side
// where it can be and through a temp file where it cannot (across mounts,
// or a provider without copy).
//
// A folder copy that fails part-way is removed again, so that the client's
// error means that nothing was copied (RFC 4918 9.8.8 allows a partial copy
// only as a 207 naming every failed member, which clients such as Explorer
// and Finder do not show) and a MOVE built on it leaves its source whole.
func (s *Server) copyTree(ctx context.Context, sm *mount, src drivers.Ref, dm *mount, dstParent drivers.Ref, name string, deep bool) error {
	var made *drivers.Ref
	err := s.copyNode(ctx, sm, src, dm, dstParent, name, deep, &made)
	if err != nil && made != nil {
		// The request may be gone; the cleanup must still run.
		if rerr := dm.drv.Remove(context.WithoutCancel(ctx), *made); rerr != nil {
			s.log.Error().Str("error", Redact(rerr.Error())).Str("path", dm.path+made.Path).Msg("could not remove a partial folder copy")
		}
		s.recordGone(dm, made.Path)
		s.cache.forget(dm.path, dstParent.Path)
	}
	return err
}

// copyNode is copyTree's recursion; made is set to the first folder it
// creates, the one to remove if the copy fails.
func (s *Server) copyNode(ctx context.Context, sm *mount, src drivers.Ref, dm *mount, dstParent drivers.Ref, name string, deep bool, made **drivers.Ref) error {
	dstRel := path.Join(dstParent.Path, name)
	if isPending(src.Object) {
		return s.streamCopy(ctx, sm, src, dm, dstParent, name)
	}
	if sm == dm && ((src.IsDir && deep && dm.features.CopyDir) || (!src.IsDir && dm.features.CopyFile)) {
		obj, err := dm.drv.Copy(ctx, src, dstParent, name)
		if err != nil {
			return fmt.Errorf("%s%s: copy: %w", dm.path, src.Path, err)
		}
		s.recordNew(dm, dstRel, obj)
		return nil
	}
	if done, err := s.serverCopy(ctx, sm, src, dm, dstParent, name, deep); done || err != nil {
		return err
	}
	if !src.IsDir {
		return s.streamCopy(ctx, sm, src, dm, dstParent, name)
	}
	dir, err := dm.drv.Mkdir(ctx, dstParent, name)
	if err != nil {
		return fmt.Errorf("%s%s: mkdir: %w", dm.path, dstRel, err)
	}
	s.recordNew(dm, dstRel, dir)
	dirRef := drivers.Ref{Path: dstRel, Object: dir}
	if *made == nil {
		*made = &dirRef
	}
	if !deep {
		return nil
	}
	l, err := s.list(ctx, sm, src.Path)
	if err != nil {
		return err
	}
	for _, child := range l.sorted() {
		childRef := drivers.Ref{Path: path.Join(src.Path, child.Name), Object: child}
		if err := s.copyNode(ctx, sm, childRef, dm, dirRef, child.Name, true, made); err != nil {
			return err
		}
	}
	return nil
}

// serverCopy has the destination's provider take the object from another
// mount by itself (drivers.ServerCopier: a TeraBox account saving a
// share), files and whole folders alike; done is false when it cannot and
// the bridge must copy.
func (s *Server) serverCopy(ctx context.Context, sm *mount, src drivers.Ref, dm *mount, dstParent drivers.Ref, name string, deep bool) (done bool, err error) {
	sc, ok := dm.drv.d.(drivers.ServerCopier)
	if !ok || sm == dm || (src.IsDir && !deep) {
		return false, nil
	}
	obj, err := sc.CopyFrom(withCall(ctx, dm.path, OpCopy), sm.drv.d, src, dstParent, name)
	dm.drv.done(OpCopy, err)
	rel := path.Join(dstParent.Path, name)
	switch {
	case errors.Is(err, drivers.ErrNotSupported):
		return false, nil
	case err != nil:
		s.cache.forget(dm.path, dstParent.Path)
		return false, fmt.Errorf("%s%s: copy from %s%s: %w", dm.path, rel, sm.path, src.Path, err)
	}
	if obj.Name == "" {
		obj.Name = name
	}
	s.recordNew(dm, rel, obj)
	return true, nil
}

// streamCopy reads a file from one mount into a spool and uploads it.
func (s *Server) streamCopy(ctx context.Context, sm *mount, src drivers.Ref, dm *mount, dstParent drivers.Ref, name string) error {
	if src.Size == 0 && !dm.features.EmptyFiles {
		rel := path.Join(dstParent.Path, name)
		obj, err := s.pending.add(dm, rel, src.ModTime)
		if err != nil {
			return err
		}
		s.recordNew(dm, rel, obj)
		return nil
	}
	if err := checkSize(dm, src.Size); err != nil {
		return err
	}
	if done, err := s.importCopy(ctx, sm, src, dm, dstParent, name); done || err != nil {
		return err
	}
	sp, err := s.spoolFor(dm, 0)
	if err != nil {
		return err
	}
	defer sp.discard()
	r := download.NewReader(ctx, s.openerFor(sm, src), src.Size, nil)
	defer r.Close()
	if _, err := io.Copy(sp, r); err != nil {
		return fmt.Errorf("%s%s: read for copy: %w", sm.path, src.Path, err)
	}
	if sp.size != src.Size {
		return fmt.Errorf("%s%s: read %d of %d bytes: %w", sm.path, src.Path, sp.size, src.Size, drivers.ErrUnavailable)
	}
	_, err = s.putInto(ctx, dm, dstParent, name, sp, src.ModTime, nil)
	if err != nil {
		return fmt.Errorf("%s%s: %w", dm.path, path.Join(dstParent.Path, name), err)
	}
	return nil
}

// importCopy has the destination's provider fetch the source's link by
// itself (drivers.URLImporter), so a copy between clouds costs the bridge
// no bandwidth. Only links safe to hand out are given away; done is false
// when the copy must be streamed instead (no importer, no such link, or the
// provider refused the URL).
func (s *Server) importCopy(ctx context.Context, sm *mount, src drivers.Ref, dm *mount, dstParent drivers.Ref, name string) (done bool, err error) {
	imp, ok := dm.drv.d.(drivers.URLImporter)
	if !ok || !sm.features.Links || src.Size == 0 {
		return false, nil
	}
	l, err := s.link(ctx, sm, src, true) // fresh: the provider may start late
	if err != nil || !l.ClientSafe || (!l.Expires.IsZero() && !time.Now().Before(l.usableUntil())) {
		return false, nil // streaming will say what is wrong with the source
	}
	rel := path.Join(dstParent.Path, name)
	obj, err := imp.ImportURL(withCall(ctx, dm.path, OpImport), dstParent, name, l.Link, src.Size)
	dm.drv.done(OpImport, err)
	switch {
	case errors.Is(err, drivers.ErrNotSupported):
		s.log.Info().Str("path", dm.path+rel).Str("reason", Redact(err.Error())).Msg("provider refused the URL import; streaming the copy")
		return false, nil
	case err != nil:
		s.cache.forget(dm.path, dstParent.Path)
		return false, fmt.Errorf("%s%s: import: %w", dm.path, rel, err)
	}
	if obj.Name == "" {
		obj.Name = name
	}
	modTime := src.ModTime
	if modTime.IsZero() {
		modTime = time.Now()
	}
	s.recordNew(dm, rel, s.keepTime(dm, rel, obj, modTime))
	return true, nil
}

// transferPending copies or moves a pending empty entry: only the bridge
// knows it, so only the bridge's records change (or, on a mount that
// stores empty files, a real empty file is made).
func (s *Server) transferPending(ctx context.Context, src, dst target, move, exists bool, old drivers.Object) (bool, error) {
	if exists {
		if err := s.remove(ctx, dst); err != nil {
			return false, err
		}
	}
	sp, err := s.spoolFor(dst.m, 0)
	if err != nil {
		return false, err
	}
	defer sp.discard()
	if _, _, err := s.put(ctx, dst, sp, time.Time{}); err != nil {
		return false, err
	}
	if move {
		s.pendingChanged(s.pending.remove(src.m, src.rel))
		s.recordGone(src.m, src.rel)
	}
	return !exists, nil
}
