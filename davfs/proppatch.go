package davfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/net/webdav"

	"bridge/davfs/deadprops"
	"bridge/drivers"
)

// PROPPATCH limits. x/net parses a PROPPATCH body whole into memory and
// everything it parses would be stored, served back by every PROPFIND and
// kept in props.db, which bbolt never shrinks: one 50 MB property cost
// 300 MB of memory. So the body is capped before x/net sees it (413), and
// what one resource may hold is capped in the store (507 in the
// multistatus, nothing of the request stored: RFC 4918 9.2).

// errPropsFull is a PROPPATCH that would take a resource's dead
// properties over the limits.
var errPropsFull = fmt.Errorf("no room for more dead properties on this resource: %w", drivers.ErrQuota)

// propLimits are the store's limits, or the defaults without a store (the
// body cap still holds: x/net reads the body before it refuses).
func (s *Server) propLimits() deadprops.Limits {
	if s.opts.Props == nil {
		return deadprops.DefaultLimits
	}
	return s.opts.Props.Limits()
}

// serveProppatch reads the body up to the limit, then hands the request to
// x/net. A body over the limit is 413: with a Content-Length that says so,
// before a byte is read; otherwise as soon as the limit is passed.
func (s *Server) serveProppatch(w http.ResponseWriter, r *http.Request, t target) {
	limit := s.propLimits().RequestBytes
	tooLarge := fmt.Errorf("PROPPATCH body over %d bytes: %w", limit, drivers.ErrTooLarge)
	if r.ContentLength > limit {
		writeError(w, tooLarge)
		return
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var over *http.MaxBytesError
		switch {
		case errors.As(err, &over):
			writeError(w, tooLarge)
			return
		case err != nil:
			if r.Context().Err() == nil {
				writeStatus(w, http.StatusBadRequest, "could not read the request body")
			}
			return
		}
	}
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	s.proppatchUnderLocks(w, r, t)
}

// fullPropstats answers a PROPPATCH refused for the limits: every property
// it sets gets 507, every one it removes 424 (it failed with the others).
func (s *Server) fullPropstats(t target, err error, patches []webdav.Proppatch) []webdav.Propstat {
	s.log.Warn().Str("error", err.Error()).Str("path", t.full).Msg("PROPPATCH refused: over the dead-property limits")
	status, _ := statusOf(errPropsFull)
	lim := s.propLimits()
	full := webdav.Propstat{Status: status, ResponseDescription: fmt.Sprintf(
		"the dead properties of one resource are limited to %d bytes and %d properties", lim.ResourceBytes, lim.ResourceProps)}
	dep := webdav.Propstat{Status: http.StatusFailedDependency}
	for _, p := range patches {
		for _, prop := range p.Props {
			if p.Remove {
				dep.Props = append(dep.Props, webdav.Property{XMLName: prop.XMLName})
			} else {
				full.Props = append(full.Props, webdav.Property{XMLName: prop.XMLName})
			}
		}
	}
	var out []webdav.Propstat
	for _, ps := range []webdav.Propstat{full, dep} {
		if len(ps.Props) > 0 {
			out = append(out, ps)
		}
	}
	return out
}

// notePatchedTime keeps a time a client set by PROPPATCH on the empty
// file t, for the content PUT that follows (putKeepingPatchedTime).
func (s *Server) notePatchedTime(t target, when time.Time) {
	if err := s.opts.Props.SetPatchedTime(t.full, when); err != nil {
		s.log.Error().Err(err).Str("path", t.full).Msg("could not keep the PROPPATCH'ed time")
	}
}

// putKeepingPatchedTime is s.put for a PUT request. Windows Explorer makes
// a file empty, sets its times by PROPPATCH and only then PUTs the content,
// with no time of its own: without this the upload's time would replace
// the one the client set. So a PUT without X-OC-Mtime onto an empty file
// whose time was set by PROPPATCH keeps that time: through the upload
// (drivers that honour Upload.ModTime), the driver's ModTimeSetter, or
// else the bridge's record. A PUT that stores content uses the time up,
// so a later plain PUT gets its own.
func (s *Server) putKeepingPatchedTime(ctx context.Context, t target, sp *spool, modTime time.Time) (drivers.Object, bool, error) {
	when, patched := s.patchedTime(t)
	keep := false
	if patched && modTime.IsZero() {
		if old, err := s.stat(ctx, t.m, t.rel); err == nil && !old.IsDir && old.Size == 0 {
			keep, modTime = true, when
		}
	}
	obj, created, err := s.put(ctx, t, sp, modTime)
	if err != nil || !patched {
		return obj, created, err
	}
	if keep {
		obj = s.setDriverTime(ctx, t, obj, when)
	}
	if sp.size > 0 {
		if err := s.opts.Props.ClearPatchedTime(t.full); err != nil {
			s.log.Error().Err(err).Str("path", t.full).Msg("could not forget the PROPPATCH'ed time")
		}
	}
	return obj, created, nil
}

// patchedTime returns the time kept by notePatchedTime for t, if any.
func (s *Server) patchedTime(t target) (time.Time, bool) {
	if s.opts.Props == nil || t.m == nil {
		return time.Time{}, false
	}
	when, ok, err := s.opts.Props.PatchedTime(t.full)
	if err != nil {
		s.log.Error().Err(err).Str("path", t.full).Msg("PROPPATCH'ed times")
	}
	return when, ok && err == nil
}

// setDriverTime gives the file just uploaded the time when through the
// driver's ModTimeSetter, where its Put does not take a time itself.
func (s *Server) setDriverTime(ctx context.Context, t target, obj drivers.Object, when time.Time) drivers.Object {
	setter, ok := t.m.drv.d.(drivers.ModTimeSetter)
	if !ok || t.m.features.SetModTime || isPending(obj) {
		return obj
	}
	set, err := setter.SetModTime(ctx, drivers.Ref{Path: t.rel, Object: obj}, when)
	t.m.drv.done("setmodtime", err)
	if err != nil {
		s.log.Warn().Str("error", Redact(err.Error())).Str("path", t.full).Msg("could not set the modification time")
		return obj
	}
	if set.Name == "" {
		set.Name = obj.Name
	}
	set = s.keepTime(t.m, t.rel, set, when)
	s.recordNew(t.m, t.rel, set)
	return set
}
