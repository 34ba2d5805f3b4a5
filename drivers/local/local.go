// Package local is the embedded default driver: a folder of this machine's
// disk. Every access goes through os.Root, so nothing outside the folder is
// reachable: not with "..", not through symbolic links (a link that leads
// out of the root is listed by its own name but cannot be opened, and
// os.Root refuses to follow it), not with absolute names.
//
// Object.ID is the mount-relative path. It never reads content to list a
// folder; the hashes it reports are those of files it wrote itself, kept in
// an extended attribute (see hashAttr).
package local

import (
	"context"
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

// tempPrefix names upload files being written; they never show in listings.
const tempPrefix = ".bridge-upload-"

// Driver serves one folder.
type Driver struct {
	root *os.Root
	dir  string
}

// New is the drivers.Factory of the local driver.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var opts Options
	if err := cfg.Decode(&opts); err != nil {
		return nil, err
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
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, EmptyFiles: true, SetModTime: true, Quota: true}
}

// name turns a mount-relative path into an os.Root name.
func name(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// classify maps os errors onto the contract's kinds.
func classify(op, p string, err error) error {
	var kind error
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		kind = drivers.ErrNotFound
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		kind = drivers.ErrExist
	case errors.Is(err, fs.ErrPermission):
		kind = drivers.ErrPermission
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		kind = drivers.ErrQuota
	case errors.Is(err, syscall.EFBIG):
		kind = drivers.ErrTooLarge
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		kind = drivers.ErrInvalidName
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("local: %s %s: %w", op, p, err)
	case strings.Contains(err.Error(), "escapes from parent") || strings.Contains(err.Error(), "path escapes"):
		kind = drivers.ErrPermission
	default:
		return fmt.Errorf("local: %s %s: %v: %w", op, p, err, drivers.ErrUnavailable)
	}
	return fmt.Errorf("local: %s %s: %v: %w", op, p, err, kind)
}

// validName refuses names that are not one path element.
func validName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") || strings.HasPrefix(n, tempPrefix) {
		return fmt.Errorf("local: name %q: %w", n, drivers.ErrInvalidName)
	}
	return nil
}

func object(n string, fi fs.FileInfo) drivers.Object {
	o := drivers.Object{Name: path.Base("/" + n), ModTime: fi.ModTime(), IsDir: fi.IsDir(), ID: "/" + strings.TrimPrefix(n, "./")}
	if n == "." {
		o.Name, o.ID = "", "/"
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
		return drivers.Object{}, classify("stat", "/", err)
	}
	return object(".", fi), nil
}

// List reads the folder. Symbolic links are listed as what they point to
// when that is inside the root, and left out when it is not.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	f, err := d.root.Open(name(dir.Path))
	if err != nil {
		return nil, classify("list", dir.Path, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, classify("list", dir.Path, err)
	}
	out := make([]drivers.Object, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		n := path.Join(name(dir.Path), e.Name())
		fi, err := d.root.Stat(n) // follows links, but only inside the root
		if err != nil {
			continue // a dangling link, or one leading out of the root
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			continue // sockets, devices: not files a client can use
		}
		o := object(n, fi)
		o.Hashes = d.hashesOf(n, fi)
		out = append(out, o)
	}
	return out, nil
}

// Link is not offered: the bridge reads through Open.
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	return drivers.Link{}, fmt.Errorf("local: links: %w", drivers.ErrNotSupported)
}

// Open returns a section of the file.
func (d *Driver) Open(ctx context.Context, file drivers.Ref, offset, length int64) (io.ReadCloser, error) {
	f, err := d.root.Open(name(file.Path))
	if err != nil {
		return nil, classify("open", file.Path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, classify("open", file.Path, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("local: open %s: a folder: %w", file.Path, drivers.ErrNotFound)
	}
	if length < 0 {
		length = max(fi.Size()-offset, 0)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
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

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	return d.Move(ctx, obj, drivers.Ref{Path: path.Dir(obj.Path)}, newName)
}

// Move renames across folders; the destination must be free.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	src, dst := name(obj.Path), path.Join(name(dstParent.Path), newName)
	if d.exists(dst) {
		return drivers.Object{}, fmt.Errorf("local: move to %s: %w", dst, drivers.ErrExist)
	}
	if err := d.root.Rename(src, dst); err != nil {
		return drivers.Object{}, classify("move", obj.Path, err)
	}
	return d.stat(dst)
}

// Copy copies a file or a whole folder.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if err := validName(newName); err != nil {
		return drivers.Object{}, err
	}
	src, dst := name(obj.Path), path.Join(name(dstParent.Path), newName)
	if d.exists(dst) {
		return drivers.Object{}, fmt.Errorf("local: copy to %s: %w", dst, drivers.ErrExist)
	}
	if err := d.copyTree(ctx, src, dst); err != nil {
		d.root.RemoveAll(dst)
		return drivers.Object{}, err
	}
	return d.stat(dst)
}

func (d *Driver) copyTree(ctx context.Context, src, dst string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := d.root.Stat(src)
	if err != nil {
		return classify("copy", src, err)
	}
	if !fi.IsDir() {
		return d.copyFile(ctx, src, dst, fi)
	}
	if err := d.root.Mkdir(dst, 0o755); err != nil {
		return classify("copy", dst, err)
	}
	f, err := d.root.Open(src)
	if err != nil {
		return classify("copy", src, err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return classify("copy", src, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if err := d.copyTree(ctx, path.Join(src, e.Name()), path.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader stops a long copy when the request is cancelled.
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

func (d *Driver) copyFile(ctx context.Context, src, dst string, fi fs.FileInfo) error {
	in, err := d.root.Open(src)
	if err != nil {
		return classify("copy", src, err)
	}
	defer in.Close()
	out, err := d.root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return classify("copy", dst, err)
	}
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		out.Close()
		return classify("copy", dst, err)
	}
	if err := d.root.Chtimes(dst, fi.ModTime(), fi.ModTime()); err != nil {
		out.Close()
		return classify("copy", dst, err)
	}
	if h := readHashes(in, fi); h.MD5 != "" {
		if ofi, err := out.Stat(); err == nil {
			writeHashes(out, ofi, h)
		}
	}
	if err := out.Close(); err != nil {
		return classify("copy", dst, err)
	}
	return nil
}

// Remove deletes a file or a folder with its content.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	p := name(obj.Path)
	if p == "." {
		return fmt.Errorf("local: remove the root: %w", drivers.ErrPermission)
	}
	if !d.exists(p) {
		return fmt.Errorf("local: remove %s: %w", obj.Path, drivers.ErrNotFound)
	}
	if err := d.root.RemoveAll(p); err != nil {
		return classify("remove", obj.Path, err)
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
		return drivers.Object{}, fmt.Errorf("local: put %s: a folder: %w", dst, drivers.ErrExist)
	}
	tmp := path.Join(dir, fmt.Sprintf("%s%d-%s", tempPrefix, time.Now().UnixNano(), n))
	if len(path.Base(tmp)) > 255 {
		tmp = path.Join(dir, fmt.Sprintf("%s%d", tempPrefix, time.Now().UnixNano()))
	}
	if d.takeFile(up, tmp) {
		// The spool file is now tmp; finish as below, without copying.
		out, err := d.root.OpenFile(tmp, os.O_WRONLY, 0)
		if err == nil {
			err = out.Chmod(0o644) // temp files are private; stored files are not
		}
		if err != nil {
			if out != nil {
				out.Close()
			}
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

// finishPut sets the time and hashes of the written temp file, syncs it and
// renames it over dst; on failure the temp file goes and dst is untouched.
func (d *Driver) finishPut(out *os.File, tmp, dst string, up drivers.Upload) (drivers.Object, error) {
	ok := false
	defer func() {
		if !ok {
			out.Close()
			d.root.Remove(tmp)
		}
	}()
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

// Quota reports the file system's space.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return drivers.Quota{}, classify("quota", "/", err)
	}
	total := int64(st.Blocks) * st.Bsize
	free := int64(st.Bavail) * st.Bsize
	used := total - int64(st.Bfree)*st.Bsize
	return drivers.Quota{Total: total, Used: used, Free: free}, nil
}

// SetModTime changes a file's or folder's modification time.
func (d *Driver) SetModTime(ctx context.Context, obj drivers.Ref, t time.Time) (drivers.Object, error) {
	p := name(obj.Path)
	if err := d.root.Chtimes(p, t, t); err != nil {
		return drivers.Object{}, classify("set time", obj.Path, err)
	}
	return d.stat(p)
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

// OpenFile implements drivers.FileOpener.
func (d *Driver) OpenFile(ctx context.Context, file drivers.Ref) (*os.File, error) {
	f, err := d.root.Open(name(file.Path))
	if err != nil {
		return nil, classify("open", file.Path, err)
	}
	return f, nil
}
