package local

import (
	"fmt"
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
	return fmt.Sprintf("v1 %d %d %s %s", fi.Size(), fi.ModTime().UnixNano(), h.MD5, h.SHA1)
}

// writeHashes records h on the open file f, whose state is fi.
func writeHashes(f *os.File, fi fs.FileInfo, h drivers.Hashes) {
	if h.MD5 == "" || h.SHA1 == "" {
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
	return drivers.Hashes{MD5: parts[3], SHA1: parts[4]}
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
