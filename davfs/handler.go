package davfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html/template"
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

	"bridge/auth"
	"bridge/davfs/locks"
	"bridge/drivers"
	"bridge/drivers/download"
)

// writeMethods are refused to read-only users.
var writeMethods = map[string]bool{
	"PUT": true, "DELETE": true, "MKCOL": true, "COPY": true, "MOVE": true,
	"PROPPATCH": true, "LOCK": true, "UNLOCK": true,
}

// readOnlyMount is why nothing may be written at t (a share link's
// mount), or "".
func readOnlyMount(t target) string {
	if t.m == nil || t.m.features.ReadOnly == "" {
		return ""
	}
	return "read-only mount: " + t.m.features.ReadOnly
}

// creates are the methods that can bring a new name into being.
var creates = map[string]bool{"PUT": true, "MKCOL": true, "LOCK": true, "PROPPATCH": true}

// refusedMacMetadata reports a Finder metadata name on a mount that
// refuses them.
func refusedMacMetadata(t target) bool {
	if t.m == nil || !t.m.noMacMD {
		return false
	}
	base := path.Base(t.rel)
	return strings.HasPrefix(base, "._") || base == ".DS_Store"
}

// ServeHTTP serves the share. The user, if any, comes from the request's
// context (auth.WithUser); visibility and read-only are enforced here.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := s.resolve(ctx, r.URL.Path)
	if isNotFound(err) && (r.Method == "PUT" || r.Method == "MKCOL") {
		if clean, cerr := cleanPath(r.URL.Path); cerr == nil && strings.Count(clean, "/") == 1 {
			err = errFixedFolder // new names directly in the share root
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if u := auth.UserFrom(ctx); u != nil && u.ReadOnly && writeMethods[r.Method] {
		writeStatus(w, http.StatusForbidden, "read-only user")
		return
	}
	if why := readOnlyMount(t); why != "" && writeMethods[r.Method] && r.Method != "COPY" {
		// COPY reads its source; its destination is checked with it.
		writeStatus(w, http.StatusForbidden, why)
		return
	}
	if creates[r.Method] && refusedMacMetadata(t) {
		writeError(w, errMacMetadata)
		return
	}
	if creates[r.Method] && r.Method != "PROPPATCH" {
		// A new name must be one every client can list: one with a
		// control character or invalid UTF-8 would make its folder's
		// PROPFIND unreadable to some of them.
		if err := checkNewName(t.full); err != nil {
			writeError(w, err)
			return
		}
	}
	switch r.Method {
	case "GET", "HEAD", "POST":
		s.serveGet(w, r, t)
	case "PUT":
		s.servePut(w, r, t)
	case "DELETE":
		s.serveDelete(w, r, t)
	case "MKCOL":
		s.serveMkcol(w, r, t)
	case "COPY", "MOVE":
		s.serveCopyMove(w, r, t)
	case "PROPFIND":
		s.servePropfind(w, r, t)
	case "OPTIONS":
		s.serveOptions(w, r, t)
	case "LOCK":
		s.serveLock(w, r, t)
	case "PROPPATCH":
		s.serveProppatch(w, r, t)
	case "UNLOCK":
		s.serveUnlock(w, r, t)
	default:
		w.Header().Set("Allow", "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK")
		writeStatus(w, http.StatusMethodNotAllowed, "")
	}
}

// serveOptions answers what can be done at a path, as x/net would, except
// that a folder also takes GET and HEAD (the bridge lists it as HTML), the
// share root and mount roots cannot be deleted, copied or moved, and a
// read-only user is offered no writing method.
func (s *Server) serveOptions(w http.ResponseWriter, r *http.Request, t target) {
	methods := []string{"OPTIONS", "LOCK", "PUT", "MKCOL"} // a new name
	fi, err := s.statInfo(r.Context(), t)
	switch {
	case err == nil && fi.IsDir():
		methods = []string{"OPTIONS", "GET", "HEAD", "DELETE", "PROPPATCH", "COPY", "MOVE", "LOCK", "UNLOCK", "PROPFIND"}
	case err == nil:
		methods = []string{"OPTIONS", "GET", "HEAD", "PUT", "DELETE", "PROPPATCH", "COPY", "MOVE", "LOCK", "UNLOCK", "PROPFIND"}
	case !isNotFound(err):
		writeError(w, err)
		return
	}
	if t.isShareRoot() || t.isMountRoot() {
		// Fixed folders: never deleted, copied or moved (403).
		methods = slices.DeleteFunc(methods, func(m string) bool { return m == "DELETE" || m == "COPY" || m == "MOVE" })
	}
	if u := auth.UserFrom(r.Context()); (u != nil && u.ReadOnly) || readOnlyMount(t) != "" {
		methods = slices.DeleteFunc(methods, func(m string) bool { return writeMethods[m] && m != "COPY" })
		if u != nil && u.ReadOnly {
			methods = slices.DeleteFunc(methods, func(m string) bool { return m == "COPY" })
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	w.Header().Set("DAV", "1, 2")
	w.Header().Set("MS-Author-Via", "DAV")
	w.WriteHeader(http.StatusOK)
}

// delegate hands the request to x/net/webdav with the cleaned path.
func (s *Server) delegate(w http.ResponseWriter, r *http.Request, t target) {
	r2 := r.Clone(r.Context())
	p := t.full
	if strings.HasSuffix(r.URL.Path, "/") && p != "/" {
		p += "/"
	}
	r2.URL.Path, r2.URL.RawPath = p, ""
	s.dav.ServeHTTP(w, r2)
}

func (s *Server) servePropfind(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	depth := r.Header.Get("Depth")
	if (depth == "" || strings.EqualFold(depth, "infinity")) && !s.opts.PropfindInfinity {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`)
		return
	}
	// A folder known by a hint is listed first: its listing and its
	// ancestors' (which the stat below needs) then go out together. A
	// failure here is met again, and answered, below.
	if depth == "1" && !t.isShareRoot() && s.hints.has(t.m.path, t.rel) {
		s.list(ctx, t.m, t.rel)
	}
	// Look the target (and, for Depth 1, its listing) up here so that a
	// provider failure gets its own status; x/net would answer 405 or 500.
	fi, err := s.statInfo(ctx, t)
	if err != nil {
		writeError(w, err)
		return
	}
	if fi.IsDir() && depth == "1" && !t.isShareRoot() {
		if _, err := s.list(ctx, t.m, t.rel); err != nil {
			writeError(w, err)
			return
		}
	}
	r, body, err := s.readPropfind(r, t)
	if err != nil {
		writeError(w, err)
		return
	}
	if namesChecksums(body) {
		r = r.WithContext(context.WithValue(r.Context(), checksumsKey{}, true))
	}
	if r, err = s.withPropfindLocks(r, t, depth); err != nil {
		writeError(w, err)
		return
	}
	if !s.xnetPropfindOnly && s.fastPropfind(w, r, t, fi, depth, body) {
		return
	}
	// x/net flushes its XML encoder after every response element; a large
	// buffer turns thousands of small writes into a few big ones.
	fixer := &supportedLockFixer{w: w}
	bw := &bufferedWriter{ResponseWriter: w}
	bw.buf = bufio.NewWriterSize(fixer, 64<<10)
	s.delegate(bw, r, t)
	bw.buf.Flush()
	fixer.Flush()
}

// bufferedWriter buffers a response body.
type bufferedWriter struct {
	http.ResponseWriter
	buf *bufio.Writer
}

func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	fi, err := s.statInfo(ctx, t)
	if err != nil {
		writeError(w, err)
		return
	}
	if fi.IsDir() {
		if !strings.HasSuffix(r.URL.Path, "/") {
			// The listing's relative links (./name/, ../) resolve against
			// the slash form only.
			u := *r.URL
			u.Path, u.RawPath = r.URL.Path+"/", ""
			if r.URL.RawPath != "" {
				u.RawPath = r.URL.RawPath + "/"
			}
			http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
			return
		}
		s.serveListing(w, r, t)
		return
	}
	// An uploaded page (.html, .svg) must not run script in the bridge's
	// origin, where browsers send the Basic credentials by themselves.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox")
	ref := drivers.Ref{Path: t.rel, Object: fi.obj}
	if t.m.redirect && t.m.features.Links && !isPending(fi.obj) && fi.obj.Size > 0 {
		l, ok, err := s.redirectLink(ctx, t.m, ref)
		if err != nil {
			s.logFailure(r, err)
			writeError(w, err)
			return
		}
		if ok {
			http.Redirect(w, r, l.URL, http.StatusFound)
			return
		}
	}
	etag, _ := fi.ETag(ctx)
	w.Header().Set("ETag", etag)
	// A provider without times gets no Last-Modified: the stand-in time
	// (process start) would make If-Modified-Since answer 304 for a file
	// replaced since; the ETag still changes with the content.
	lastModified := fi.modTime
	if fi.obj.ModTime.IsZero() {
		lastModified = time.Time{}
	}
	w.Header().Set("Content-Type", contentType(fi.name))
	w.Header().Set("Accept-Ranges", "bytes")
	if !sanitizeRange(r, fi.obj.Size) {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(fi.obj.Size, 10))
		writeStatus(w, http.StatusRequestedRangeNotSatisfiable, "")
		return
	}
	if fo, ok := t.m.drv.d.(drivers.FileOpener); ok && !isPending(fi.obj) {
		// A local file: ServeContent on the *os.File lets the kernel send it.
		f, err := fo.OpenFile(ctx, ref)
		t.m.drv.done(OpOpen, err)
		if err != nil {
			writeError(w, err)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, fi.name, lastModified, f)
		return
	}
	rd := download.NewReader(ctx, s.openerFor(t.m, ref), fi.obj.Size, download.RangeEnds(r.Header.Get("Range"), fi.obj.Size))
	defer rd.Close()
	if r.Method != http.MethodHead && fi.obj.Size > 0 && r.Header.Get("If-None-Match") == "" {
		// Open the stream before answering, so that a provider failure is
		// a proper status instead of a truncated 200.
		if err := rd.Prime(firstRangeStart(rd.Ends())); err != nil {
			s.logFailure(r, err)
			writeError(w, err)
			return
		}
	}
	http.ServeContent(bigCopies{w}, r, fi.name, lastModified, rd)
	if err := rd.Err(); err != nil && ctx.Err() == nil {
		// The status is out already: the client sees a short body, and
		// the log says why rather than calling it an ordinary answer.
		s.log.Error().Str("error", Redact(err.Error())).Str("method", r.Method).Str("path", path.Clean(r.URL.Path)).
			Int64("at_byte", rd.Pos()).Int64("size", rd.Size()).Msg("download broke off mid-body")
	}
}

// firstRangeStart is where the response's bytes will begin when the
// request asks for exactly one range, else 0.
func firstRangeStart(ends map[int64]int64) int64 {
	if len(ends) == 1 {
		for start := range ends {
			return start
		}
	}
	return 0
}

var listingTemplate = template.Must(template.New("listing").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Path}}</title></head>
<body><h1>{{.Path}}</h1>
<table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>
{{if ne .Path "/"}}<tr><td><a href="../">../</a></td><td></td><td></td></tr>{{end}}
{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td>{{.Size}}</td><td>{{.Modified}}</td></tr>
{{end}}</table></body></html>
`))

type listingEntry struct {
	Name, Href, Size, Modified string
}

// serveListing answers GET on a folder with a plain HTML page, for browsers.
func (s *Server) serveListing(w http.ResponseWriter, r *http.Request, t target) {
	infos, err := s.readdir(r.Context(), t)
	if err != nil {
		writeError(w, err)
		return
	}
	data := struct {
		Path    string
		Entries []listingEntry
	}{Path: t.full}
	for _, fi := range infos {
		e := listingEntry{Name: fi.Name(), Href: (&url.URL{Path: "./" + fi.Name()}).String(), Modified: fi.ModTime().UTC().Format(time.RFC3339)}
		if fi.IsDir() {
			e.Name += "/"
			e.Href += "/"
		} else {
			e.Size = strconv.FormatInt(fi.Size(), 10)
		}
		data.Entries = append(data.Entries, e)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	listingTemplate.Execute(w, data)
}

// lockedOr confirms locks and answers the failure; ok reports success.
func (s *Server) lockedOr(w http.ResponseWriter, r *http.Request, c writeCheck) (func(), bool) {
	release, status, err := s.confirmLocks(r, c)
	if err != nil {
		s.refuseWrite(w, r, status, err)
		return nil, false
	}
	return release, true
}

// refuseWrite answers a write that confirmLocks refused: a refusal (412,
// 423) with its reason, a failure (the shared state unreachable) logged
// and answered with its kind's text only, as every other failure is.
func (s *Server) refuseWrite(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.logFailure(r, err)
		_, msg := statusOf(err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "30")
		}
		writeStatus(w, status, msg)
		return
	}
	writeStatus(w, status, err.Error())
}

func (s *Server) servePut(w http.ResponseWriter, r *http.Request, t target) {
	ctx := r.Context()
	if t.isShareRoot() {
		writeError(w, errFixedFolder)
		return
	}
	check := writeCheck{reqPath: t.full, serialize: []string{t.full}, targets: []locks.Target{writeOf(t.full)}}
	if _, err := s.statInfo(ctx, t); isNotFound(err) {
		check.targets = append(check.targets, membersOf(t.full))
	}
	release, ok := s.lockedOr(w, r, check)
	if !ok {
		return
	}
	defer release()
	// Everything that can be refused is refused before the body is read
	// (a client sending Expect: 100-continue sends nothing at all).
	if _, _, err := s.putTarget(ctx, t); err != nil {
		writeError(w, err)
		return
	}
	expected, err := expectedLength(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if expected >= 0 {
		if err := checkSize(t.m, expected); err != nil && !errors.Is(err, drivers.ErrNotSupported) {
			writeError(w, err)
			return
		}
		if err := s.checkQuota(ctx, t, expected); err != nil {
			writeError(w, err)
			return
		}
	}
	sp, err := s.spoolFor(t.m, checksumsAsked(r.Header.Get("OC-Checksum")))
	if err != nil {
		writeError(w, err)
		return
	}
	defer sp.discard()
	if _, err := sp.readFrom(r.Body); err != nil {
		// Nothing is stored and the old file stays. A client that went
		// away gets no answer, but the log must not call it a 200.
		s.log.Warn().Str("method", r.Method).Str("path", path.Clean(r.URL.Path)).Int64("received", sp.size).
			Int64("expected", expected).Msg("PUT body ended early (client abort); nothing stored")
		if ctx.Err() != nil {
			w.WriteHeader(499)
			return
		}
		writeStatus(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	if expected >= 0 && sp.size != expected {
		writeStatus(w, http.StatusBadRequest, fmt.Sprintf("received %d bytes, announced %d", sp.size, expected))
		return
	}
	if err := verifyChecksum(r.Header.Get("OC-Checksum"), sp.upload().Hashes); err != nil {
		writeError(w, err)
		return
	}
	modTime := parseMtime(r.Header.Get("X-OC-Mtime"))
	obj, created, err := s.putKeepingPatchedTime(ctx, t, sp, modTime)
	if err != nil {
		s.logFailure(r, err)
		writeError(w, err)
		return
	}
	if !modTime.IsZero() && (t.m.features.SetModTime || s.keepsTimes(t.m)) {
		w.Header().Set("X-OC-Mtime", "accepted")
	}
	etag, _ := s.info(obj.Name, obj).ETag(ctx)
	w.Header().Set("ETag", etag)
	if created {
		writeStatus(w, http.StatusCreated, "")
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
}

// parseMtime reads ownCloud's X-OC-Mtime (Unix seconds, maybe fractional).
func parseMtime(h string) time.Time {
	if h == "" {
		return time.Time{}
	}
	f, err := strconv.ParseFloat(h, 64)
	if err != nil || f <= 0 {
		return time.Time{}
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, t target) {
	release, ok := s.lockedOr(w, r, writeCheck{reqPath: t.full, serialize: []string{t.full},
		targets: []locks.Target{treeOf(t.full), membersOf(t.full)}})
	if !ok {
		return
	}
	defer release()
	if err := s.remove(r.Context(), t); err != nil {
		s.logFailure(r, err)
		writeError(w, err)
		return
	}
	// RFC 4918 section 6.1: a lock goes with its root.
	s.forgetLocks(r, func(ctx context.Context) error { return s.locks.Delete(ctx, t.full) })
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveMkcol(w http.ResponseWriter, r *http.Request, t target) {
	if r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody) {
		// RFC 4918 9.3: a body we do not understand is 415.
		if n, _ := io.CopyN(io.Discard, r.Body, 1); n > 0 {
			writeStatus(w, http.StatusUnsupportedMediaType, "MKCOL with a body")
			return
		}
	}
	release, ok := s.lockedOr(w, r, writeCheck{reqPath: t.full, serialize: []string{t.full},
		targets: []locks.Target{writeOf(t.full), membersOf(t.full)}})
	if !ok {
		return
	}
	defer release()
	err := s.mkdir(r.Context(), t)
	switch {
	case err == nil:
		writeStatus(w, http.StatusCreated, "")
	case errors.Is(err, drivers.ErrExist), t.isMountRoot():
		writeStatus(w, http.StatusMethodNotAllowed, "already exists")
	default:
		s.logFailure(r, err)
		writeError(w, err)
	}
}

func (s *Server) serveCopyMove(w http.ResponseWriter, r *http.Request, src target) {
	ctx := r.Context()
	move := r.Method == "MOVE"
	if src.isShareRoot() || src.isMountRoot() {
		writeError(w, errFixedFolder)
		return
	}
	hdr := r.Header.Get("Destination")
	u, err := url.Parse(hdr)
	if hdr == "" || err != nil {
		writeStatus(w, http.StatusBadRequest, "missing or malformed Destination")
		return
	}
	if u.Host != "" && u.Host != r.Host {
		writeError(w, errBadGateway)
		return
	}
	dst, err := s.resolve(ctx, u.Path)
	if isNotFound(err) {
		err = errNoParent // a mount the user cannot see does not exist
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if why := readOnlyMount(dst); why != "" {
		writeStatus(w, http.StatusForbidden, why)
		return
	}
	if refusedMacMetadata(dst) {
		writeError(w, errMacMetadata)
		return
	}
	if err := checkNewName(dst.full); err != nil {
		writeError(w, err)
		return
	}
	// RFC 4918 10.6: no Overwrite header means T (x/net reads it as F,
	// golang/go#66059).
	overwrite := true
	switch r.Header.Get("Overwrite") {
	case "", "T", "t":
	case "F", "f":
		overwrite = false
	default:
		writeStatus(w, http.StatusBadRequest, "Overwrite must be T or F")
		return
	}
	deep := true
	switch d := strings.ToLower(r.Header.Get("Depth")); {
	case d == "" || d == "infinity":
	case d == "0" && !move:
		deep = false
	default:
		writeStatus(w, http.StatusBadRequest, "bad Depth for "+r.Method)
		return
	}
	// RFC 4918 9.8.5/9.9.4: onto itself is 403, whatever the locks say
	// (taking a lock on src and dst would otherwise collide and say 423).
	if src.full == dst.full {
		writeError(w, errSameResource)
		return
	}
	release, ok := s.lockedOr(w, r, copyMoveCheck(src.full, dst.full, move))
	if !ok {
		return
	}
	defer release()
	created, err := s.transfer(ctx, src, dst, move, overwrite, deep)
	if err != nil {
		s.logFailure(r, err)
		writeError(w, err)
		return
	}
	switch {
	case move: // RFC 4918 section 7.6: locks do not move with the resource
		s.forgetLocks(r, func(ctx context.Context) error { return s.locks.Move(ctx, src.full, dst.full) })
	case !created: // the overwritten destination was deleted first
		s.forgetLocks(r, func(ctx context.Context) error { return s.locks.Delete(ctx, dst.full) })
	}
	if created {
		writeStatus(w, http.StatusCreated, "")
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
}

// copyMoveCheck is what a COPY or MOVE writes: the destination and its
// folder and, for a MOVE, the source tree and its folder.
func copyMoveCheck(src, dst string, move bool) writeCheck {
	c := writeCheck{reqPath: src, serialize: []string{dst}, targets: []locks.Target{treeOf(dst), membersOf(dst)}}
	if move {
		c.serialize = append(c.serialize, src)
		c.targets = append(c.targets, treeOf(src), membersOf(src))
	}
	return c
}

// forgetLocks drops the locks a finished write did away with. The write
// happened whatever the lock system says, so a failure is logged, not
// answered; it runs even when the client has gone.
func (s *Server) forgetLocks(r *http.Request, drop func(ctx context.Context) error) {
	if err := drop(context.WithoutCancel(r.Context())); err != nil {
		s.log.Error().Str("error", err.Error()).Str("method", r.Method).Str("path", path.Clean(r.URL.Path)).Msg("dropping locks failed")
	}
}

// logFailure logs a failed write with its full (provider-side) error; the
// client only gets the error's kind. Drivers keep secrets out of errors.
func (s *Server) logFailure(r *http.Request, err error) {
	status, _ := statusOf(err)
	ev := s.log.Warn()
	if status >= 500 {
		ev = s.log.Error()
	}
	ev.Str("error", Redact(err.Error())).Str("method", r.Method).Str("path", path.Clean(r.URL.Path)).Msg(fmt.Sprintf("%s failed", r.Method))
}

// checkNewName refuses a name that a write would create with control
// characters (0x00-0x1F, 0x7F) or invalid UTF-8: XML cannot carry them
// in a PROPFIND answer, and some clients choke on the replacement.
func checkNewName(full string) error {
	name := path.Base(full)
	if !utf8.ValidString(name) {
		return fmt.Errorf("%q: %w", name, errBadName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q: %w", name, errBadName)
		}
	}
	return nil
}

// expectedLength is the length a PUT announces: Content-Length, or for a
// chunked body Finder's X-Expected-Entity-Length; -1 when neither says.
// It serves the early checks (size, quota) and is verified against what
// arrives.
func expectedLength(r *http.Request) (int64, error) {
	if r.ContentLength >= 0 {
		return r.ContentLength, nil
	}
	v := r.Header.Get("X-Expected-Entity-Length")
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1, fmt.Errorf("X-Expected-Entity-Length %q: %w", v, errBadRequest)
	}
	return n, nil
}

// sanitizeRange makes a request's Range header what RFC 9110 §14.2 lets a
// server act on, before http.ServeContent reads it: a header that is not a
// valid bytes range set (bytes=abc, bytes=5-1) is ignored, so the whole
// file is sent with 200; specs that cannot be satisfied (a suffix of 0
// bytes, a start past the end) are dropped. It returns false when no spec
// is left of a valid header: 416.
func sanitizeRange(r *http.Request, size int64) bool {
	h := r.Header.Get("Range")
	if h == "" {
		return true
	}
	specs, ok := download.ParseRange(h)
	if !ok {
		r.Header.Del("Range") // invalid, or another unit: ignored
		return true
	}
	var keep []string
	for _, spec := range specs {
		if spec.Satisfiable(size) {
			keep = append(keep, spec.String())
		}
	}
	if len(keep) == 0 {
		return false
	}
	r.Header.Set("Range", "bytes="+strings.Join(keep, ","))
	return true
}

// bigCopies is a ResponseWriter whose ReadFrom (what ServeContent's copy
// calls) moves a provider's stream in 256 KiB steps: net/http's own falls
// back to 32 KiB reads and writes for anything but a file, and the
// system calls of those dominated a proxied download's CPU.
type bigCopies struct{ http.ResponseWriter }

// copyBuffers are bigCopies' buffers, one per download in flight.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (w bigCopies) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{w.ResponseWriter}, r, *buf)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w bigCopies) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides the ResponseWriter's own ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }
