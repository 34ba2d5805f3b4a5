// Package local is the embedded default driver: a folder of this machine's
// disk. Every access goes through os.Root, so nothing outside the folder is
// reachable: not with "..", not with absolute names, not through symbolic
// links. A link is served as what it points to when that is inside the root
// (by a relative target); a link leading out of the root, an absolute one or
// a dangling one is left out of listings and copies, and opening, writing or
// removing through it fails (ErrNotFound or ErrPermission), because os.Root
// refuses to follow it.
//
// Object.ID is the mount-relative path. Listing never reads file content;
// the hashes it reports are those of files the driver wrote itself, kept in
// an extended attribute with the size and time they are valid for (see
// hashAttr), so rclone and ETags get real md5s without hashing on PROPFIND.
package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bridge/drivers"
)

// Name is the driver's name in configuration files.
const Name = "local"

// Options are the [mounts.options] of a local mount.
type Options struct {
	// Root is the folder served; created if missing.
	Root string `toml:"root"`
}

// tempPrefix names upload files being written; they never show in listings
// and no client may create a name with it.
const tempPrefix = ".bridge-upload-"

// copyChunk is how much a copy moves between checks of its context; the
// kernel copies each chunk itself (copy_file_range), so it stays large.
const copyChunk = 16 << 20

// Driver serves one folder.
type Driver struct {
	root *os.Root
	dir  string
}

// New is the drivers.Factory of the local driver.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var opts Options
	if err := cfg.Decode(&opts); err != nil {
		return nil, fmt.Errorf("local: options: %w", err)
	}
	return Open(opts.Root)
}

// Open serves the folder dir, creating it if missing.
func Open(dir string) (*Driver, error) {
	if dir == "" {
		return nil, errors.New("local: option root is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("local: root: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("local: root: %w", err)
	}
	return &Driver{root: root, dir: dir}, nil
}

// Close releases the root folder.
func (d *Driver) Close() error { return d.root.Close() }

// Features: everything but links; bytes are served through Open.
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, EmptyFiles: true, SetModTime: true, Quota: true,
		ListsByPath: true, KeepsUploadFile: true}
}

// name turns a mount-relative path into an os.Root name. Cleaning it as an
// absolute path drops any leading "..", and os.Root guards the rest.
func name(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// mountPath is the inverse of name, for messages and IDs.
func mountPath(n string) string {
	if n == "." {
		return "/"
	}
	return "/" + n
}

// classify maps os errors onto the contract's kinds.
func classify(op, n string, err error) error {
	var kind error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("local: %s %s: %w", op, mountPath(n), err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ELOOP):
		kind = drivers.ErrNotFound
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		kind = drivers.ErrExist
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		kind = drivers.ErrPermission
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		kind = drivers.ErrQuota
	case errors.Is(err, syscall.EFBIG):
		kind = drivers.ErrTooLarge
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		kind = drivers.ErrInvalidName
	case strings.Contains(err.Error(), "path escapes from parent"):
		// os.Root's refusal has no exported sentinel.
		kind = drivers.ErrPermission
	default:
		return fmt.Errorf("local: %s %s: %v: %w", op, mountPath(n), err, drivers.ErrUnavailable)
	}
	return fmt.Errorf("local: %s %s: %v: %w", op, mountPath(n), err, kind)
}

// validName refuses names that are not one path element, and the names of
// the driver's own temp files.
func validName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") || strings.HasPrefix(n, tempPrefix) {
		return fmt.Errorf("local: name %q: %w", n, drivers.ErrInvalidName)
	}
	return nil
}

// tempName is a fresh hidden name in the folder dir.
func tempName(dir string) string {
	return path.Join(dir, tempPrefix+rand.Text())
}

func object(n string, fi fs.FileInfo) drivers.Object {
	o := drivers.Object{Name: path.Base(n), ModTime: fi.ModTime(), IsDir: fi.IsDir(), ID: mountPath(n)}
	if n == "." {
		o.Name = ""
	}
	if !fi.IsDir() {
		o.Size = fi.Size()
	}
	return o
}

// Root returns the served folder.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	fi, err := d.root.Stat(".")
	if err != nil {
		return drivers.Object{}, classify("stat", ".", err)
	}
	return object(".", fi), nil
}

// visible returns what a listing shows of the entry n: regular files and
// folders, reached through links only inside the root, and never temp files.
func (d *Driver) visible(n string) (fs.FileInfo, bool) {
	if strings.HasPrefix(path.Base(n), tempPrefix) {
		return nil, false
	}
	fi, err := d.root.Stat(n) // follows links, but only inside the root
	if err != nil {
		return nil, false // a dangling link, or one leading out of the root
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, false // sockets, devices: not files a client can use
	}
	return fi, true
}

// List reads the folder; see visible for what it leaves out.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	dn := name(dir.Path)
	f, err := d.root.Open(dn)
	if err != nil {
		return nil, classify("list", dn, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, classify("list", dn, err)
	}
	out := make([]drivers.Object, 0, len(entries))
	for i, e := range entries {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, classify("list", dn, err)
			}
		}
		n := path.Join(dn, e.Name())
		fi, ok := d.visible(n)
		if !ok {
			continue
		}
		o := object(n, fi)
		o.Hashes = d.hashesOf(n, fi)
		out = append(out, o)
	}
	return out, nil
}

// Link is not offered: the bridge reads through Open or OpenFile.
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	return drivers.Link{}, fmt.Errorf("local: link %s: %w", file.Path, drivers.ErrNotSupported)
}

// Open returns a section of the file; closing it closes the file.
func (d *Driver) Open(ctx context.Context, file drivers.Ref, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("local: open %s at %d: negative offset", file.Path, offset)
	}
	f, fi, err := d.openRegular("open", name(file.Path))
	if err != nil {
		return nil, err
	}
	if length < 0 {
		length = max(fi.Size()-offset, 0)
	}
	return struct {
		io.Reader
		io.Closer
	}{ctxReader{ctx, io.NewSectionReader(f, offset, length)}, f}, nil
}

// OpenFile implements drivers.FileOpener.
func (d *Driver) OpenFile(ctx context.Context, file drivers.Ref) (*os.File, error) {
	f, _, err := d.openRegular("open", name(file.Path))
	return f, err
}

// openRegular opens the regular file n for reading. O_NONBLOCK keeps a FIFO
// put there behind the bridge's back from blocking the open forever;
// regular files ignore it.
func (d *Driver) openRegular(op, n string) (*os.File, fs.FileInfo, error) {
	f, err := d.root.OpenFile(n, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, classify(op, n, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, classify(op, n, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("local: %s %s: not a file: %w", op, mountPath(n), drivers.ErrNotFound)
	}
	return f, fi, nil
}

// Mkdir creates a folder.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, n string) (drivers.Object, error) {
	if err := validName(n); err != nil {
		return drivers.Object{}, err
	}
	p := path.Join(name(parent.Path), n)
	if err := d.root.Mkdir(p, 0o755); err != nil {
		return drivers.Object{}, classify("mkdir", p, err)
	}
	return d.stat(p)
}

func (d *Driver) stat(p string) (drivers.Object, error) {
	fi, err := d.root.Stat(p)
	if err != nil {
		return drivers.Object{}, classify("stat", p, err)
	}
	o := object(p, fi)
	o.Hashes = d.hashesOf(p, fi)
	return o, nil
}

// exists reports whether p is taken (even by a dangling link).
func (d *Driver) exists(p string) bool {
	_, err := d.root.Lstat(p)
	return err == nil
}

// inside reports whether p is q or lies below it.
func inside(p, q string) bool {
	return p == q || q == "." || strings.HasPrefix(p, q+"/")
}

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	return d.Move(ctx, obj, drivers.Ref{Path: path.Dir(name(obj.Path))}, newName)
}

// Move renames across folders; the destination must be free.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	src, dst := name(obj.Path), path.Join(name(dstParent.Path), newName)
	switch {
	case src == ".":
		return drivers.Object{}, fmt.Errorf("local: move the root: %w", drivers.ErrPermission)
	case src == dst:
		return d.stat(dst) // renamed to its own name: nothing to do
	case inside(dst, src):
		return drivers.Object{}, fmt.Errorf("local: move %s into itself: %w", obj.Path, drivers.ErrPermission)
	case d.exists(dst):
		return drivers.Object{}, fmt.Errorf("local: move to %s: %w", mountPath(dst), drivers.ErrExist)
	}
	if sfi, err := d.root.Lstat(src); err == nil && sfi.IsDir() && d.within(path.Dir(dst), sfi) {
		return drivers.Object{}, fmt.Errorf("local: move %s into itself: %w", obj.Path, drivers.ErrPermission)
	}
	if err := d.root.Rename(src, dst); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			// Into itself through a link: rename(2) refuses with EINVAL.
			return drivers.Object{}, fmt.Errorf("local: move %s into itself: %v: %w", obj.Path, err, drivers.ErrPermission)
		}
		return drivers.Object{}, classify("move", src, err)
	}
	return d.stat(dst)
}

// Copy copies a file or a whole folder. A failed copy leaves nothing behind.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	src, dst := name(obj.Path), path.Join(name(dstParent.Path), newName)
	if inside(dst, src) {
		return drivers.Object{}, fmt.Errorf("local: copy %s into itself: %w", obj.Path, drivers.ErrPermission)
	}
	fi, err := d.root.Stat(src)
	if err != nil {
		return drivers.Object{}, classify("copy", src, err)
	}
	if d.exists(dst) {
		return drivers.Object{}, fmt.Errorf("local: copy to %s: %w", mountPath(dst), drivers.ErrExist)
	}
	if fi.IsDir() && d.within(path.Dir(dst), fi) {
		return drivers.Object{}, fmt.Errorf("local: copy %s into itself: %w", obj.Path, drivers.ErrPermission)
	}
	c := &copier{d: d, ctx: ctx, up: map[fileKey]bool{}, made: map[fileKey]bool{}}
	if fi.IsDir() {
		err = c.dir(src, dst, fi)
		if len(c.made) > 0 && err != nil {
			d.root.RemoveAll(dst) // ours: made by c.dir
		}
	} else {
		err = c.file(src, dst)
	}
	if err != nil {
		return drivers.Object{}, err
	}
	return d.stat(dst)
}

// within reports whether the folder dir is the folder src or lies inside
// it on disk, whatever links dir's path goes through. It climbs from dir by
// ".." (resolved by the kernel, not by the path) until it meets src or the
// root; it only stats what it climbs through.
func (d *Driver) within(dir string, src fs.FileInfo) bool {
	rfi, err := d.root.Stat(".")
	if err != nil {
		return false
	}
	f, err := d.root.Open(dir)
	if err != nil {
		return false // then the copy or move fails on dir itself
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return false
	}
	for range 4096 { // deeper than any path the kernel accepts
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			break
		}
		k := fileKey{uint64(st.Dev), uint64(st.Ino)}
		if k == keyOf(src) {
			unix.Close(fd)
			return true
		}
		if k == keyOf(rfi) {
			break
		}
		up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return false
		}
		fd = up
	}
	unix.Close(fd)
	return false
}

// fileKey identifies a folder on this machine, whatever path reaches it.
type fileKey struct{ dev, ino uint64 }

func keyOf(fi fs.FileInfo) fileKey {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}
	}
	return fileKey{uint64(st.Dev), uint64(st.Ino)}
}

// copier copies one tree. It remembers the folders on the way down, to stop
// at a link leading back up, and the folders it made, so that a copy into
// its own source (through a link) cannot copy itself forever.
type copier struct {
	d    *Driver
	ctx  context.Context
	up   map[fileKey]bool
	made map[fileKey]bool
}

func (c *copier) dir(src, dst string, fi fs.FileInfo) error {
	if err := c.ctx.Err(); err != nil {
		return classify("copy", src, err)
	}
	k := keyOf(fi)
	if c.up[k] || c.made[k] {
		return fmt.Errorf("local: copy %s: a link loops back into the copy: %w", mountPath(src), drivers.ErrPermission)
	}
	f, err := c.d.root.Open(src)
	if err != nil {
		return classify("copy", src, err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return classify("copy", src, err)
	}
	if err := c.d.root.Mkdir(dst, 0o755); err != nil {
		return classify("copy", dst, err)
	}
	dfi, err := c.d.root.Stat(dst)
	if err != nil {
		return classify("copy", dst, err)
	}
	c.made[keyOf(dfi)] = true
	c.up[k] = true
	defer delete(c.up, k)
	for _, e := range entries {
		s, t := path.Join(src, e.Name()), path.Join(dst, e.Name())
		efi, ok := c.d.visible(s) // copy what a listing shows, no more
		switch {
		case !ok:
		case efi.IsDir():
			err = c.dir(s, t, efi)
		default:
			err = c.file(s, t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// file copies one file through a hidden temp file, so that a reader never
// sees half a copy.
func (c *copier) file(src, dst string) error {
	in, fi, err := c.d.openRegular("copy", src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := tempName(path.Dir(dst))
	out, err := c.d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return classify("copy", dst, err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			c.d.root.Remove(tmp)
		}
	}()
	// Chunks of *os.File to *os.File keep the kernel's copy_file_range.
	for {
		if err := c.ctx.Err(); err != nil {
			return classify("copy", src, err)
		}
		n, err := io.CopyN(out, in, copyChunk)
		if err == io.EOF {
			break
		}
		if err != nil {
			return classify("copy", dst, err)
		}
		if n < copyChunk {
			break
		}
	}
	if err := c.d.root.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		return classify("copy", dst, err)
	}
	if h := readHashes(in, fi); h.MD5 != "" {
		if ofi, err := out.Stat(); err == nil && ofi.Size() == fi.Size() {
			writeHashes(out, ofi, h)
		}
	}
	if err := out.Close(); err != nil {
		return classify("copy", dst, err)
	}
	if err := c.d.root.Rename(tmp, dst); err != nil {
		return classify("copy", dst, err)
	}
	ok = true
	return nil
}

// ctxReader stops a long read or copy when the request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Remove deletes a file or a folder with its content.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	p := name(obj.Path)
	if p == "." {
		return fmt.Errorf("local: remove the root: %w", drivers.ErrPermission)
	}
	if _, err := d.root.Lstat(p); err != nil {
		return classify("remove", p, err)
	}
	if err := d.root.RemoveAll(p); err != nil {
		return classify("remove", p, err)
	}
	return nil
}

// Put writes the upload to a hidden temp file beside the target, syncs it
// and renames it over the target: a reader sees the old file or the new
// one, and a failure leaves the old one untouched.
func (d *Driver) Put(ctx context.Context, parent drivers.Ref, n string, up drivers.Upload) (drivers.Object, error) {
	if err := validName(n); err != nil {
		return drivers.Object{}, err
	}
	dir := name(parent.Path)
	dst := path.Join(dir, n)
	if fi, err := d.root.Stat(dst); err == nil && fi.IsDir() {
		return drivers.Object{}, fmt.Errorf("local: put %s: a folder: %w", mountPath(dst), drivers.ErrExist)
	}
	tmp := tempName(dir)
	if d.takeFile(up, tmp) {
		// The spool file is now tmp; finish as below, without copying.
		out, err := d.root.OpenFile(tmp, os.O_WRONLY, 0)
		if err == nil {
			if err = out.Chmod(0o644); err != nil { // spool files are private; stored files are not
				out.Close()
			}
		}
		if err != nil {
			d.root.Remove(tmp)
			return drivers.Object{}, classify("put", dst, err)
		}
		return d.finishPut(out, tmp, dst, up)
	}
	out, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return drivers.Object{}, classify("put", dst, err)
	}
	if _, err := io.Copy(out, ctxReader{ctx, io.NewSectionReader(up.Body, 0, up.Size)}); err != nil {
		out.Close()
		d.root.Remove(tmp)
		return drivers.Object{}, classify("put", dst, err)
	}
	return d.finishPut(out, tmp, dst, up)
}

// finishPut checks the written temp file's size, sets its time and hashes,
// syncs it and renames it over dst; on failure the temp file goes and dst
// is untouched.
func (d *Driver) finishPut(out *os.File, tmp, dst string, up drivers.Upload) (drivers.Object, error) {
	ok := false
	defer func() {
		if !ok {
			out.Close()
			d.root.Remove(tmp)
		}
	}()
	fi, err := out.Stat()
	if err != nil {
		return drivers.Object{}, classify("put", dst, err)
	}
	if fi.Size() != up.Size {
		// A short body would otherwise be stored as a truncated file.
		return drivers.Object{}, fmt.Errorf("local: put %s: got %d of %d bytes: %w", mountPath(dst), fi.Size(), up.Size, io.ErrUnexpectedEOF)
	}
	if !up.ModTime.IsZero() {
		if err := d.root.Chtimes(tmp, up.ModTime, up.ModTime); err != nil {
			return drivers.Object{}, classify("put", dst, err)
		}
	}
	if fi, err := out.Stat(); err == nil {
		writeHashes(out, fi, up.Hashes)
	}
	if err := out.Sync(); err != nil {
		return drivers.Object{}, classify("put", dst, err)
	}
	if err := out.Close(); err != nil {
		return drivers.Object{}, classify("put", dst, err)
	}
	if err := d.root.Rename(tmp, dst); err != nil {
		return drivers.Object{}, classify("put", dst, err)
	}
	ok = true
	return d.stat(dst)
}

// takeFile moves the upload's spool file into the root as tmp when both are
// on one file system: a rename instead of a copy of every byte. The target
// folder is opened through the root (so no link leads it outside) and the
// rename is relative to that folder's descriptor.
func (d *Driver) takeFile(up drivers.Upload, tmp string) bool {
	if up.Path == "" {
		return false
	}
	dir, err := d.root.Open(path.Dir(tmp))
	if err != nil {
		return false
	}
	defer dir.Close()
	if err := unix.Renameat(unix.AT_FDCWD, up.Path, int(dir.Fd()), path.Base(tmp)); err != nil {
		return false // another file system (EXDEV), or anything else: copy
	}
	return true
}

// Quota reports the space of the file system holding the root, asked
// through the root's own descriptor (it follows the folder if renamed).
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	f, err := d.root.Open(".")
	if err != nil {
		return drivers.Quota{}, classify("quota", ".", err)
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return drivers.Quota{}, classify("quota", ".", err)
	}
	unit := int64(st.Frsize)
	if unit <= 0 {
		unit = int64(st.Bsize)
	}
	total := int64(st.Blocks) * unit
	return drivers.Quota{
		Total: total,
		Used:  total - int64(st.Bfree)*unit,
		Free:  int64(st.Bavail) * unit,
	}, nil
}

// SetModTime changes a file's or folder's modification time.
func (d *Driver) SetModTime(ctx context.Context, obj drivers.Ref, t time.Time) (drivers.Object, error) {
	p := name(obj.Path)
	if err := d.root.Chtimes(p, t, t); err != nil {
		return drivers.Object{}, classify("set time", p, err)
	}
	return d.stat(p)
}
