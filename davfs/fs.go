package davfs

import (
	"context"
	"encoding/xml"
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"time"

	"golang.org/x/net/webdav"

	"bridge/davfs/deadprops"
	"bridge/drivers"
	"bridge/drivers/download"
)

// fileSystem is the Server seen as a webdav.FileSystem, for the methods
// x/net/webdav serves itself (PROPFIND, PROPPATCH, LOCK, OPTIONS). Opening
// a file never contacts the provider: PROPFIND opens every entry it lists.
type fileSystem Server

func (f *fileSystem) srv() *Server { return (*Server)(f) }

// pathErr turns not-found into what os.IsNotExist recognizes, as x/net
// expects, keeping other errors as they are.
func pathErr(op, name string, err error) error {
	if isNotFound(err) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return err
}

func (f *fileSystem) Mkdir(ctx context.Context, name string, perm os.FileMode) error {
	t, err := f.srv().resolve(ctx, name)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	return pathErr("mkdir", name, f.srv().mkdir(ctx, t))
}

func (f *fileSystem) RemoveAll(ctx context.Context, name string) error {
	t, err := f.srv().resolve(ctx, name)
	if err != nil {
		return pathErr("remove", name, err)
	}
	return pathErr("remove", name, f.srv().remove(ctx, t))
}

func (f *fileSystem) Rename(ctx context.Context, oldName, newName string) error {
	src, err := f.srv().resolve(ctx, oldName)
	if err != nil {
		return pathErr("rename", oldName, err)
	}
	dst, err := f.srv().resolve(ctx, newName)
	if err != nil {
		return pathErr("rename", newName, err)
	}
	_, err = f.srv().transfer(ctx, src, dst, true, true, true)
	return err
}

func (f *fileSystem) Stat(ctx context.Context, name string) (os.FileInfo, error) {
	t, err := f.srv().resolve(ctx, name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	fi, err := f.srv().statInfo(ctx, t)
	return fi, pathErr("stat", name, err)
}

func (f *fileSystem) OpenFile(ctx context.Context, name string, flag int, perm os.FileMode) (webdav.File, error) {
	s := f.srv()
	t, err := s.resolve(ctx, name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	fi, err := s.statInfo(ctx, t)
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 && (isNotFound(err) || (err == nil && !fi.IsDir() && flag&os.O_TRUNC != 0)) {
		// LOCK on an unmapped URL creates an empty file through here.
		return &writeFile{s: s, ctx: ctx, t: t, name: path.Base(t.full)}, nil
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if fi.IsDir() {
		return &dirFile{s: s, ctx: ctx, t: t, info: fi}, nil
	}
	ref := drivers.Ref{Path: t.rel, Object: fi.obj}
	return &readFile{s: s, ctx: ctx, t: t, info: fi, Reader: download.NewReader(ctx, s.openerFor(t.m, ref), fi.obj.Size, nil)}, nil
}

// statInfo describes the share root, a mount root or an object.
func (s *Server) statInfo(ctx context.Context, t target) (*fileInfo, error) {
	if t.isShareRoot() {
		return &fileInfo{name: "/", obj: drivers.Object{IsDir: true}, modTime: s.started}, nil
	}
	o, err := s.stat(ctx, t.m, t.rel)
	if err != nil {
		return nil, err
	}
	return s.info(path.Base(t.full), o), nil
}

func (s *Server) info(name string, o drivers.Object) *fileInfo {
	mt := o.ModTime
	if mt.IsZero() {
		mt = s.started // providers without times: stable for the process
	}
	return &fileInfo{name: name, obj: o, modTime: mt}
}

// fileInfo is an os.FileInfo that also answers content type (from the
// extension; content is never read for it) and ETag.
type fileInfo struct {
	name    string
	obj     drivers.Object
	modTime time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.obj.Size }
func (fi *fileInfo) ModTime() time.Time { return fi.modTime }
func (fi *fileInfo) IsDir() bool        { return fi.obj.IsDir }
func (fi *fileInfo) Sys() any           { return nil }
func (fi *fileInfo) Mode() os.FileMode {
	if fi.obj.IsDir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// ContentType implements webdav.ContentTyper.
func (fi *fileInfo) ContentType(ctx context.Context) (string, error) {
	return contentType(fi.name), nil
}

func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// ETag implements webdav.ETager: the md5 when the provider has a real one,
// otherwise a hash of size and time (as nginx's), which change with the
// content. Not the provider's id: a driver may answer an upload with a
// placeholder id (Cloudreve), and the same file would then have another
// ETag once listed again, or on another bridge instance.
func (fi *fileInfo) ETag(ctx context.Context) (string, error) {
	var buf [66]byte
	return string(fi.appendETag(buf[:0])), nil
}

// appendETag appends the ETag, quotes included.
func (fi *fileInfo) appendETag(b []byte) []byte {
	b = append(b, '"')
	if fi.obj.Hashes.MD5 != "" {
		b = append(b, fi.obj.Hashes.MD5...)
	} else {
		h := fnv.New64a()
		var buf [64]byte
		h.Write(strconv.AppendInt(append(buf[:0], 0), fi.obj.Size, 10))
		h.Write(strconv.AppendInt(append(buf[:0], 0), fi.modTime.UnixNano(), 10))
		b = strconv.AppendUint(b, h.Sum64(), 16)
	}
	return append(b, '"')
}

var errIsDir = errors.New("is a folder")

// readFile is a file opened for reading: a lazy ranged stream.
type readFile struct {
	s    *Server
	ctx  context.Context
	t    target
	info *fileInfo
	*download.Reader
}

// DeadProps implements webdav.DeadPropsHolder.
// Content hashes are served as oc:checksums beside the stored properties,
// and during a PROPFIND the locks as DAV:lockdiscovery.
func (f *readFile) DeadProps() (map[xml.Name]webdav.Property, error) {
	props, err := f.s.deadProps(f.t.full)
	if err != nil {
		return nil, err
	}
	props = lockDiscoveryProp(f.ctx, props, f.t.full)
	if p, ok := checksumProp(f.s.hashesFor(f.ctx, f.t, f.info.obj)); ok {
		if props == nil {
			props = map[xml.Name]webdav.Property{}
		}
		props[ocChecksums] = p
	}
	return props, nil
}

// Patch implements webdav.DeadPropsHolder.
func (f *readFile) Patch(patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	return f.s.patchProps(f.ctx, f.t, patches)
}

// deadProps returns what PROPPATCH stored for the share path.
func (s *Server) deadProps(key string) (map[xml.Name]webdav.Property, error) {
	if s.opts.Props == nil {
		return nil, nil
	}
	return s.opts.Props.Get(key)
}

// patchProps stores a PROPPATCH; without a store every change is refused,
// as x/net does for files that hold no dead properties. One that would
// take the resource over the store's limits stores nothing (507). A
// modification time set by Explorer or a client of DAV:lastmodified is
// also applied to the object where the driver can.
func (s *Server) patchProps(ctx context.Context, t target, patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	status := http.StatusOK
	if s.opts.Props == nil {
		status = http.StatusForbidden
	} else if err := s.opts.Props.Patch(t.full, patches); errors.Is(err, deadprops.ErrFull) {
		return s.fullPropstats(t, err, patches), nil
	} else if err != nil {
		return nil, err
	} else {
		s.applyModTime(ctx, t, patches)
	}
	pstat := webdav.Propstat{Status: status}
	for _, p := range patches {
		for _, prop := range p.Props {
			pstat.Props = append(pstat.Props, webdav.Property{XMLName: prop.XMLName})
		}
	}
	return []webdav.Propstat{pstat}, nil
}

func (f *readFile) Stat() (os.FileInfo, error)         { return f.info, nil }
func (f *readFile) Readdir(int) ([]os.FileInfo, error) { return nil, fs.ErrInvalid }
func (f *readFile) Write([]byte) (int, error)          { return 0, fs.ErrPermission }

// dirFile is a folder opened for listing.
type dirFile struct {
	s    *Server
	ctx  context.Context
	t    target
	info *fileInfo
	read []os.FileInfo
	pos  int
}

func (f *dirFile) Stat() (os.FileInfo, error)     { return f.info, nil }
func (f *dirFile) Read([]byte) (int, error)       { return 0, errIsDir }
func (f *dirFile) Write([]byte) (int, error)      { return 0, errIsDir }
func (f *dirFile) Seek(int64, int) (int64, error) { return 0, nil }
func (f *dirFile) Close() error                   { return nil }

// Readdir lists the folder from the cached listing (one provider listing
// when cold, none when warm).
func (f *dirFile) Readdir(count int) ([]os.FileInfo, error) {
	if f.read == nil {
		infos, err := f.s.readdir(f.ctx, f.t)
		if err != nil {
			return nil, err
		}
		f.read = infos
	}
	rest := f.read[f.pos:]
	if count <= 0 {
		f.pos = len(f.read)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n := min(count, len(rest))
	f.pos += n
	return rest[:n], nil
}

// readdir lists a folder of the share: the visible mounts at the root, or
// a mount's folder from its cached listing.
func (s *Server) readdir(ctx context.Context, t target) ([]os.FileInfo, error) {
	if t.isShareRoot() {
		var out []os.FileInfo
		for _, m := range s.visibleMounts(ctx) {
			out = append(out, &fileInfo{name: m.path[1:], obj: drivers.Object{Name: m.path[1:], IsDir: true}, modTime: s.started})
		}
		return out, nil
	}
	l, err := s.list(ctx, t.m, t.rel)
	if err != nil {
		return nil, err
	}
	objs := l.sorted()
	out := make([]os.FileInfo, len(objs))
	for i, o := range objs {
		out[i] = s.info(o.Name, o)
	}
	return out, nil
}

// writeFile is a file being created through the webdav.FileSystem
// interface (OpenFile with O_CREATE): its bytes are spooled and uploaded
// on Close.
type writeFile struct {
	s    *Server
	ctx  context.Context
	t    target
	name string
	sp   *spool
}

func (f *writeFile) Write(p []byte) (int, error) {
	if f.sp == nil {
		sp, err := f.s.spoolFor(f.t.m, 0)
		if err != nil {
			return 0, err
		}
		f.sp = sp
	}
	return f.sp.Write(p)
}

func (f *writeFile) Close() error {
	if f.sp == nil {
		return f.s.createEmpty(f.ctx, f.t)
	}
	defer f.sp.discard()
	_, _, err := f.s.put(f.ctx, f.t, f.sp, time.Time{})
	return err
}

func (f *writeFile) Read([]byte) (int, error)           { return 0, fs.ErrPermission }
func (f *writeFile) Seek(int64, int) (int64, error)     { return 0, fs.ErrInvalid }
func (f *writeFile) Readdir(int) ([]os.FileInfo, error) { return nil, fs.ErrInvalid }
func (f *writeFile) Stat() (os.FileInfo, error) {
	var size int64
	if f.sp != nil {
		size = f.sp.size
	}
	return &fileInfo{name: f.name, obj: drivers.Object{Name: f.name, Size: size}, modTime: time.Now()}, nil
}
