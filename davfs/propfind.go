package davfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/webdav"

	"bridge/davfs/locks"
)

// The common PROPFIND — Depth 0 or 1, all properties or a list of live
// ones, on a folder where nobody stored dead properties — is written here
// directly: x/net/webdav spends most of such a request in its generic XML
// encoder. Anything else (dead properties, quota, propname, include) goes
// to x/net. TestFastPropfindMatchesXNet holds the two to the same output.

// propfindBody is the part of a PROPFIND body the fast path understands.
type propfindBody struct {
	XMLName  xml.Name   `xml:"DAV: propfind"`
	Allprop  *struct{}  `xml:"DAV: allprop"`
	Propname *struct{}  `xml:"DAV: propname"`
	Include  *struct{}  `xml:"DAV: include"`
	Prop     *propNames `xml:"DAV: prop"`
}

// propNames collects the names of the requested properties.
type propNames []xml.Name

func (p *propNames) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			*p = append(*p, el.Name)
			if err := d.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

var (
	davResourceType  = xml.Name{Space: "DAV:", Local: "resourcetype"}
	davDisplayName   = xml.Name{Space: "DAV:", Local: "displayname"}
	davContentLength = xml.Name{Space: "DAV:", Local: "getcontentlength"}
	davLastModified  = xml.Name{Space: "DAV:", Local: "getlastmodified"}
	davContentType   = xml.Name{Space: "DAV:", Local: "getcontenttype"}
	davETag          = xml.Name{Space: "DAV:", Local: "getetag"}
	davSupportedLock = xml.Name{Space: "DAV:", Local: "supportedlock"}
	davLockDiscovery = xml.Name{Space: "DAV:", Local: "lockdiscovery"}
)

// allProps is what allprop returns, as x/net does: files get all, folders
// the ones that apply to them (ocChecksums only where hashes are known).
var allProps = []xml.Name{davResourceType, davDisplayName, davContentLength, davLastModified,
	davContentType, davETag, davSupportedLock, davLockDiscovery, ocChecksums}

// fastPropfind serves the request if it is of the common kind and reports
// whether it did. body is the request body, already read.
func (s *Server) fastPropfind(w http.ResponseWriter, r *http.Request, t target, fi *fileInfo, depth string, body []byte) bool {
	if depth != "0" && depth != "1" {
		return false
	}
	var names []xml.Name // nil: allprop
	if len(bytes.TrimSpace(body)) > 0 {
		var pf propfindBody
		if err := xml.Unmarshal(body, &pf); err != nil || pf.Propname != nil || pf.Include != nil {
			return false // x/net answers errors and the rarer forms
		}
		if pf.Prop != nil {
			if len(*pf.Prop) == 0 {
				return false
			}
			names = *pf.Prop
			for _, n := range names {
				if n == quotaAvailable || n == quotaUsed {
					return false
				}
			}
		} else if pf.Allprop == nil {
			return false
		}
	}
	if s.opts.Props != nil {
		if any, err := s.opts.Props.AnyIn(t.full); err != nil || any {
			return false
		}
	}
	held := propfindLocksFrom(r.Context())
	checksums := slices.Contains(names, ocChecksums)
	var children []*fileInfo
	var listed *listing           // children to write from the listing
	var rendered []byte           // the children's answers, kept with the listing
	var variant string            // what rendered is kept for
	keep, gen := false, uint64(0) // render the children to keep them
	if depth == "1" && fi.IsDir() {
		if t.isShareRoot() || checksums || held.any() {
			// The mounts, hashes found on demand, lockdiscovery: not kept.
			infos, err := s.readdir(r.Context(), t)
			if err != nil {
				return false
			}
			for _, c := range infos {
				children = append(children, c.(*fileInfo))
			}
		} else {
			l, err := s.list(r.Context(), t.m, t.rel)
			if err != nil {
				return false
			}
			variant = propfindVariant(t.full, names)
			if rendered, keep, gen = l.rendering(variant); rendered == nil {
				listed = l
			}
		}
	}

	if checksums {
		fi = s.withHashes(r.Context(), t, fi)
		for i, c := range children {
			children[i] = s.withHashes(r.Context(), target{full: path.Join(t.full, c.name), m: t.m, rel: path.Join(t.rel, c.name)}, c)
		}
	}

	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	bw := propfindWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // drop the ResponseWriter
		propfindWriters.Put(bw)
	}()
	bw.WriteString(`<?xml version="1.0" encoding="UTF-8"?><D:multistatus xmlns:D="DAV:">`)
	base := t.full
	scratch := appendResponse(nil, base, fi, names, t.isShareRoot(), held)
	bw.Write(scratch)
	for _, c := range children {
		scratch = appendResponse(scratch[:0], path.Join(base, c.name), c, names, false, held)
		bw.Write(scratch)
	}
	if listed != nil {
		objs := listed.sorted()
		var kept []byte
		for i, o := range objs {
			scratch = appendResponse(scratch[:0], t.full+"/"+o.Name, s.info(o.Name, o), names, false, nil)
			bw.Write(scratch)
			if keep {
				if i == 0 {
					// Sized from the first entry, so that the slice seldom
					// grows (each growth copies all so far).
					kept = make([]byte, 0, len(scratch)*len(objs)*9/8)
				}
				kept = append(kept, scratch...)
			}
		}
		if keep {
			if cap(kept) > len(kept)+len(kept)/2 {
				kept = bytes.Clone(kept) // kept for long: not much spare capacity
			}
			listed.keep(variant, gen, kept)
		}
	}
	bw.Write(rendered)
	bw.WriteString(`</D:multistatus>`)
	bw.Flush()
	return true
}

// propfindVariant names what a folder's rendered entries depend on
// besides the entries: where the folder is (hrefs) and what was asked.
func propfindVariant(base string, names []xml.Name) string {
	if names == nil {
		return base + "\x00allprop"
	}
	var b strings.Builder
	b.WriteString(base)
	for _, n := range names {
		b.WriteString("\x00")
		b.WriteString(n.Space)
		b.WriteString(" ")
		b.WriteString(n.Local)
	}
	return b.String()
}

// propfindWriters are the answers' 64 KiB buffers, reused: allocating and
// clearing one per request was a third of a Depth 0 PROPFIND's cost.
var propfindWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// withHashes is fi with the hashes hashesFor finds (a copy: the cached
// fileInfo is shared).
func (s *Server) withHashes(ctx context.Context, t target, fi *fileInfo) *fileInfo {
	h := s.hashesFor(ctx, t, fi.obj)
	if h == fi.obj.Hashes {
		return fi
	}
	c := *fi
	c.obj.Hashes = h
	return &c
}

// appendValue appends a live property's XML content to b, and reports
// false where the property does not apply (x/net answers those 404). p is
// the share path of the resource. Values are appended, never made into
// strings: a cold PROPFIND of thousands of entries would otherwise
// allocate for every property of every entry.
func appendValue(b []byte, n xml.Name, p string, fi *fileInfo, isRoot bool, held *propfindLocks) ([]byte, bool) {
	dir := fi.IsDir()
	switch n {
	case davResourceType:
		if dir {
			return append(b, `<D:collection xmlns:D="DAV:"/>`...), true
		}
		return b, true
	case davDisplayName:
		if isRoot {
			return b, true
		}
		return appendEscaped(b, fi.name), true
	case davLastModified:
		return fi.modTime.UTC().AppendFormat(b, http.TimeFormat), true
	case davSupportedLock:
		return append(b, locks.SupportedLockXML()...), true
	case davLockDiscovery:
		return append(b, held.discovery(p)...), true
	case davContentLength:
		return strconv.AppendInt(b, fi.obj.Size, 10), !dir
	case davContentType:
		return appendEscaped(b, contentType(fi.name)), !dir
	case davETag:
		if dir {
			return b, false
		}
		if md5 := fi.obj.Hashes.MD5; md5 != "" && !plainText(md5) {
			e, _ := fi.ETag(nil) // a provider's odd md5: escaped
			return appendEscaped(b, e), true
		}
		return fi.appendETag(b), true
	case ocChecksums:
		if !dir {
			if c := appendChecksums(b, fi.obj.Hashes); len(c) > len(b) {
				return c, true
			}
		}
	}
	return b, false
}

// appendResponse appends the <D:response> of the resource at share path p.
// Appending to one slice is cheaper than a writer's call per piece, which
// counts with tens of thousands of entries.
func appendResponse(b []byte, p string, fi *fileInfo, names []xml.Name, isRoot bool, held *propfindLocks) []byte {
	b = append(b, `<D:response><D:href>`...)
	b = appendHref(b, p, fi.IsDir())
	b = append(b, `</D:href><D:propstat><D:prop>`...)
	var missing []xml.Name
	props := names
	if names == nil {
		props = allProps
	}
	for _, n := range props {
		var ok bool
		if b, ok = appendProp(b, n, p, fi, isRoot, held); !ok && names != nil {
			missing = append(missing, n)
		}
	}
	b = append(b, `</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`...)
	if len(missing) > 0 {
		b = append(b, `<D:propstat><D:prop>`...)
		for _, n := range missing {
			b = appendClose(appendOpen(b, n), n)
		}
		b = append(b, `</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>`...)
	}
	return append(b, `</D:response>`...)
}

// appendHref appends the escaped href of the resource at share path p,
// as url.URL's EscapedPath would write it, with a slash after a folder.
// Names of plain characters, the common case, take no allocation.
func appendHref(b []byte, p string, dir bool) []byte {
	if plainPath(p) {
		b = append(b, p...)
	} else {
		b = appendEscaped(b, (&url.URL{Path: p}).EscapedPath())
	}
	if dir && p != "/" {
		b = append(b, '/')
	}
	return b
}

// plainPath reports whether p needs no escaping in a URL path (nor in
// XML): letters, digits, "-._~/" only.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0) {
			return false
		}
	}
	return p != "*"
}

// appendProp appends one live property element, or nothing where it does
// not apply (reported false).
func appendProp(b []byte, n xml.Name, p string, fi *fileInfo, isRoot bool, held *propfindLocks) ([]byte, bool) {
	start := len(b)
	b, ok := appendValue(appendOpen(b, n), n, p, fi, isRoot, held)
	if !ok {
		return b[:start], false
	}
	return appendClose(b, n), true
}

// appendOpen and appendClose append a property's tags.
func appendOpen(b []byte, n xml.Name) []byte {
	if n.Space == "DAV:" {
		b = append(b, "<D:"...)
		b = append(b, n.Local...)
		return append(b, '>')
	}
	b = append(b, '<')
	b = append(b, n.Local...)
	b = append(b, ` xmlns="`...)
	b = appendEscaped(b, n.Space)
	return append(b, `">`...)
}

func appendClose(b []byte, n xml.Name) []byte {
	if n.Space == "DAV:" {
		b = append(b, "</D:"...)
	} else {
		b = append(b, "</"...)
	}
	b = append(b, n.Local...)
	return append(b, '>')
}

// appendEscaped appends s as XML character data (see escape).
func appendEscaped(b []byte, s string) []byte {
	if plainText(s) {
		return append(b, s...)
	}
	return append(b, escape(s)...)
}

// plainText reports whether s is XML character data as it is.
func plainText(s string) bool { return xmlSafe(s) && !strings.ContainsAny(s, "&<>") }

// textEscaper escapes XML character data as x/net does (quotes stay).
var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes s XML character data. Characters XML cannot carry at all
// (control characters, invalid UTF-8: a name made behind the bridge's back
// may hold them) become U+FFFD, as encoding/xml does, so no name can make
// a folder's listing unreadable.
func escape(s string) string {
	if !xmlSafe(s) {
		s = strings.Map(func(r rune) rune {
			if !xmlChar(r) {
				return utf8.RuneError
			}
			return r
		}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	}
	return textEscaper.Replace(s)
}

// xmlSafe reports whether every character of s may stand in XML 1.0.
func xmlSafe(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !xmlChar(r) {
			return false
		}
	}
	return true
}

// xmlChar is XML 1.0's Char production.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// propfindLocks are the locks a PROPFIND shows in DAV:lockdiscovery, asked
// of the lock system once for the whole request (the target and, for
// Depth 1, what is below it) and kept in its context for both writers.
type propfindLocks struct {
	locks []locks.Lock
	now   time.Time
}

type propfindLocksKey struct{}

// withPropfindLocks looks up the locks a PROPFIND of t at depth can show.
func (s *Server) withPropfindLocks(r *http.Request, t target, depth string) (*http.Request, error) {
	d := locks.DepthInfinity
	if depth == "0" {
		d = locks.DepthZero
	}
	ls, err := s.locks.Locks(r.Context(), t.full, d)
	if err != nil {
		return nil, fmt.Errorf("locks of %s: %w", t.full, err)
	}
	held := &propfindLocks{locks: ls, now: time.Now()}
	return r.WithContext(context.WithValue(r.Context(), propfindLocksKey{}, held)), nil
}

// any reports whether the request shows any lock at all.
func (h *propfindLocks) any() bool { return h != nil && len(h.locks) > 0 }

// propfindLocksFrom returns the request's locks; nil outside a PROPFIND.
func propfindLocksFrom(ctx context.Context) *propfindLocks {
	held, _ := ctx.Value(propfindLocksKey{}).(*propfindLocks)
	return held
}

// discovery is the content of p's DAV:lockdiscovery: the locks covering it.
func (h *propfindLocks) discovery(p string) string {
	if h == nil {
		return ""
	}
	var covering []locks.Lock
	for _, l := range h.locks {
		if l.Covers(p) {
			covering = append(covering, l)
		}
	}
	return locks.LockDiscoveryXML(covering, h.now)
}

// lockDiscoveryProp adds p's DAV:lockdiscovery to the dead properties x/net
// shows during a PROPFIND (x/net has no finder of its own for it, and
// refuses it in PROPPATCH as a live property).
func lockDiscoveryProp(ctx context.Context, props map[xml.Name]webdav.Property, p string) map[xml.Name]webdav.Property {
	held := propfindLocksFrom(ctx)
	if held == nil {
		return props
	}
	if props == nil {
		props = map[xml.Name]webdav.Property{}
	}
	props[davLockDiscovery] = webdav.Property{XMLName: davLockDiscovery, InnerXML: []byte(held.discovery(p))}
	return props
}

// xnetSupportedLock is x/net's DAV:supportedlock, which offers exclusive
// locks only; supportedLockFixer puts the bridge's (shared ones too) in its
// place as x/net's answer goes out.
const xnetSupportedLock = `<D:lockentry xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`

// supportedLockFixer is a writer that replaces xnetSupportedLock in what
// passes through, holding back a tail that may be the start of one.
type supportedLockFixer struct {
	w    io.Writer
	tail []byte
}

func (f *supportedLockFixer) Write(p []byte) (int, error) {
	buf := append(f.tail, p...)
	buf = bytes.ReplaceAll(buf, []byte(xnetSupportedLock), []byte(locks.SupportedLockXML()))
	keep := min(len(buf), len(xnetSupportedLock)-1)
	f.tail = append([]byte(nil), buf[len(buf)-keep:]...)
	if _, err := f.w.Write(buf[:len(buf)-keep]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held back.
func (f *supportedLockFixer) Flush() error {
	_, err := f.w.Write(f.tail)
	f.tail = nil
	return err
}
