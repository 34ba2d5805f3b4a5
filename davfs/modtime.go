package davfs

import (
	"context"
	"encoding/xml"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/net/webdav"

	"bridge/drivers"
)

// Properties through which clients set a modification time.
var modTimeProps = map[xml.Name]bool{
	{Space: "urn:schemas-microsoft-com:", Local: "Win32LastModifiedTime"}: true, // Windows Explorer
	{Space: "DAV:", Local: "lastmodified"}:                                true,
}

// parsePropTime reads the HTTP-date Explorer sends, or RFC 3339.
func parsePropTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, err := http.ParseTime(s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// patchedModTime returns the time a modification-time property set in
// patches gives, if any.
func patchedModTime(patches []webdav.Proppatch) (time.Time, bool) {
	for _, p := range patches {
		if p.Remove {
			continue
		}
		for _, prop := range p.Props {
			if !modTimeProps[prop.XMLName] {
				continue
			}
			if when, ok := parsePropTime(string(prop.InnerXML)); ok {
				return when, true
			}
		}
	}
	return time.Time{}, false
}

// applyModTime sets the object's time from a modification-time property in
// patches, through the driver where it can and in the bridge's records where
// the provider keeps no times; otherwise the property is only stored. On an
// empty file the time is also kept for the content PUT that follows
// (Explorer's order; putKeepingPatchedTime).
func (s *Server) applyModTime(ctx context.Context, t target, patches []webdav.Proppatch) {
	if t.m == nil || t.isMountRoot() {
		return
	}
	when, ok := patchedModTime(patches)
	if !ok {
		return
	}
	ref, err := s.ref(ctx, t.m, t.rel)
	if err != nil {
		return
	}
	obj := ref.Object
	if !obj.IsDir && obj.Size == 0 {
		s.notePatchedTime(t, when)
	}
	setter, canSet := t.m.drv.d.(drivers.ModTimeSetter)
	canSet = canSet && !isPending(obj) // nothing at the provider yet
	if !canSet && !s.keepsTimes(t.m) {
		return
	}
	if canSet {
		set, err := setter.SetModTime(ctx, ref, when)
		t.m.drv.done("setmodtime", err)
		if err != nil {
			s.log.Warn().Str("error", Redact(err.Error())).Str("path", t.full).Msg("could not set the modification time; kept as a property")
		} else {
			obj = set
		}
	}
	// Where the provider keeps no times, the bridge does.
	s.recordNew(t.m, t.rel, s.keepTime(t.m, t.rel, obj, when))
}

// Providers that cannot store a client's modification time (Disk.Top keeps
// none, Cloudreve resets it on rename) would show every file with a time
// the client did not give it, so rclone re-uploads everything to set times
// and Explorer shows dates that mean nothing. For their mounts the bridge
// keeps the time itself, in the property store: the client's time (X-OC-Mtime,
// Win32LastModifiedTime, DAV:lastmodified) or the upload's, with the file's
// size, so that a file replaced behind the bridge's back falls back to the
// provider's own time. The records follow MOVE and COPY like properties.

// keepsTimes reports whether the bridge keeps the times of m's files.
func (s *Server) keepsTimes(m *mount) bool {
	return s.opts.Props != nil && !m.features.SetModTime
}

// withKeptTimes gives the files of dir's listing the times the bridge
// keeps for them. The driver's slice is not changed.
func (s *Server) withKeptTimes(m *mount, dir string, objs []drivers.Object) []drivers.Object {
	if !s.keepsTimes(m) {
		return objs
	}
	kept, err := s.opts.Props.ModTimes(path.Join(m.path, dir))
	if err != nil {
		s.log.Error().Err(err).Msg("kept modification times")
		return objs
	}
	if len(kept) == 0 {
		return objs
	}
	out := make([]drivers.Object, len(objs))
	for i, o := range objs {
		if mt, ok := kept[o.Name]; ok && !o.IsDir && mt.Size == o.Size {
			o.ModTime = mt.Time
		}
		out[i] = o
	}
	return out
}

// withKeptTime is withKeptTimes for one object at rel.
func (s *Server) withKeptTime(m *mount, rel string, o drivers.Object) drivers.Object {
	if !s.keepsTimes(m) || o.IsDir || isPending(o) {
		return o
	}
	mt, ok, err := s.opts.Props.ModTimeAt(path.Join(m.path, rel))
	if err != nil {
		s.log.Error().Err(err).Msg("kept modification times")
	}
	if ok && mt.Size == o.Size {
		o.ModTime = mt.Time
	}
	return o
}

// keepTime records when as the time of the file o at rel, on a mount whose
// provider cannot store it, and returns o with that time.
func (s *Server) keepTime(m *mount, rel string, o drivers.Object, when time.Time) drivers.Object {
	if !s.keepsTimes(m) || o.IsDir || isPending(o) {
		return o
	}
	if err := s.opts.Props.SetModTime(path.Join(m.path, rel), when, o.Size); err != nil {
		s.log.Error().Err(err).Str("path", path.Join(m.path, rel)).Msg("could not keep the modification time")
		return o
	}
	o.ModTime = when
	return o
}
