package davfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteBack has the kernel start writing n bytes of f from off to
// disk, without waiting for it. It is advice: a failure shows in the
// driver's sync.
func startWriteBack(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
