package davfs

import (
	"context"
	"encoding/xml"
	"net/http"
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

// applyModTime sets the object's time from a modification-time property in
// patches, when the driver can; otherwise the property is only stored.
func (s *Server) applyModTime(ctx context.Context, t target, patches []webdav.Proppatch) {
	if t.m == nil || t.isMountRoot() {
		return
	}
	setter, ok := t.m.drv.d.(drivers.ModTimeSetter)
	if !ok {
		return
	}
	for _, p := range patches {
		if p.Remove {
			continue
		}
		for _, prop := range p.Props {
			if !modTimeProps[prop.XMLName] {
				continue
			}
			when, ok := parsePropTime(string(prop.InnerXML))
			if !ok {
				continue
			}
			ref, err := s.ref(ctx, t.m, t.rel)
			if err != nil {
				return
			}
			obj, err := setter.SetModTime(ctx, ref, when)
			t.m.drv.done("setmodtime", err)
			if err != nil {
				s.log.Warn().Str("error", Redact(err.Error())).Str("path", t.full).Msg("could not set the modification time; kept as a property")
				return
			}
			s.recordNew(t.m, t.rel, obj)
			return
		}
	}
}
