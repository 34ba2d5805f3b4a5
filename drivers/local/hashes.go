package local

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"bridge/drivers"
)

// hashAttr is the extended attribute in which the driver remembers the
// content hashes of files it wrote. The record carries the size and
// modification time it is valid for: a file changed behind the bridge's back
// no longer matches and simply has no hashes. File systems without user
// xattrs store nothing, which is allowed.
const hashAttr = "user.webdav-bridge.hashes"

func hashRecord(fi fs.FileInfo, h drivers.Hashes) string {
	return fmt.Sprintf("v1 %d %d %s %s", fi.Size(), fi.ModTime().UnixNano(), orDash(h.MD5), orDash(h.SHA1))
}

// orDash keeps a record's fields in place when a hash is unknown.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeHashes records h on the open file f, whose state is fi.
func writeHashes(f *os.File, fi fs.FileInfo, h drivers.Hashes) {
	if h.MD5 == "" && h.SHA1 == "" {
		return
	}
	unix.Fsetxattr(int(f.Fd()), hashAttr, []byte(hashRecord(fi, h)), 0)
}

// readHashes returns the hashes recorded on f if they are still valid for fi.
func readHashes(f *os.File, fi fs.FileInfo) drivers.Hashes {
	buf := make([]byte, 160)
	n, err := unix.Fgetxattr(int(f.Fd()), hashAttr, buf)
	if err != nil || n <= 0 {
		return drivers.Hashes{}
	}
	parts := strings.Fields(string(buf[:n]))
	if len(parts) != 5 || parts[0] != "v1" || parts[1] != fmt.Sprint(fi.Size()) || parts[2] != fmt.Sprint(fi.ModTime().UnixNano()) {
		return drivers.Hashes{}
	}
	return drivers.Hashes{MD5: strings.TrimPrefix(parts[3], "-"), SHA1: strings.TrimPrefix(parts[4], "-")}
}

// hashesOf opens the file at n (inside the root) to read its record; it
// never reads the content.
func (d *Driver) hashesOf(n string, fi fs.FileInfo) drivers.Hashes {
	if !fi.Mode().IsRegular() {
		return drivers.Hashes{}
	}
	f, _, err := d.openRegular("hashes", n)
	if err != nil {
		return drivers.Hashes{}
	}
	defer f.Close()
	return readHashes(f, fi)
}

// Hash implements drivers.Hasher: a file's md5 and sha1, read from its
// record or else computed from its content and recorded, so that only the
// first client to ask for checksums pays for reading the file (uploads
// compute no hash the driver does not need).
func (d *Driver) Hash(ctx context.Context, file drivers.Ref) (drivers.Hashes, error) {
	n := name(file.Path)
	f, fi, err := d.openRegular("hash", n)
	if err != nil {
		return drivers.Hashes{}, err
	}
	defer f.Close()
	if h := readHashes(f, fi); h.MD5 != "" && h.SHA1 != "" {
		return h, nil
	}
	m, s := md5.New(), sha1.New()
	if _, err := io.CopyBuffer(io.MultiWriter(m, s), ctxReader{ctx, f}, make([]byte, 1<<20)); err != nil {
		return drivers.Hashes{}, classify("hash", n, err)
	}
	after, err := f.Stat()
	if err != nil || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		return drivers.Hashes{}, fmt.Errorf("local: hash %s: the file changed while it was read: %w", file.Path, drivers.ErrUnavailable)
	}
	h := drivers.Hashes{MD5: hex.EncodeToString(m.Sum(nil)), SHA1: hex.EncodeToString(s.Sum(nil))}
	writeHashes(f, fi, h)
	return h, nil
}
