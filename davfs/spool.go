package davfs

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"bridge/drivers"
)

// spoolPrefix names upload buffers (the pid after it is for people: a
// buffer's owner is known by its flock, which a pid cannot tell once the
// process is gone, unreaped, or its pid reused).
const spoolPrefix = "bridge-put-"

// spool buffers an upload body in a temp file, computing on the way the
// hashes the driver's protocol needs or the client asked to verify (and
// no others), so that the driver gets a finished file with known size and
// hashes.
type spool struct {
	f    *os.File
	md5  hash.Hash
	sha1 hash.Hash
	size int64

	writeBack int64 // write back to disk every this many bytes; 0: leave it to the kernel
	writing   int64 // offset up to which write-back was started
}

// writeBackWindow is how much of a kept upload may be in memory only: a
// sync of the whole file at the end would otherwise write it all while
// the client waits (a third of a 1 GiB PUT's time on this project's
// machine); written back as it arrives, it overlaps the transfer.
const writeBackWindow = 8 << 20

// spoolFor returns a new upload buffer for m: computing the hashes m's
// driver needs and extra, and written back as it fills where the driver
// keeps the file itself.
func (s *Server) spoolFor(m *mount, extra drivers.HashSet) (*spool, error) {
	sp, err := newSpool(s.opts.TempDir, m.features.UploadHashes|extra)
	if err == nil && m.features.KeepsUploadFile {
		sp.writeBack = writeBackWindow
	}
	return sp, err
}

func newSpool(dir string, need drivers.HashSet) (*spool, error) {
	f, err := os.CreateTemp(dir, spoolPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, fmt.Errorf("upload buffer: %w", err)
	}
	// Held while the buffer is open; the kernel drops it when the process
	// dies, however it dies.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("upload buffer: lock: %w", err)
	}
	sp := &spool{f: f}
	if need.Has(drivers.HashMD5) {
		sp.md5 = md5.New()
	}
	if need.Has(drivers.HashSHA1) {
		sp.sha1 = sha1.New()
	}
	return sp, nil
}

// parallelMin is the write size from which hashes are computed on other
// goroutines while the bytes go to disk: on big uploads hashing, not the
// disk, would otherwise set the pace.
const parallelMin = 64 << 10

func (sp *spool) Write(p []byte) (int, error) {
	var wg sync.WaitGroup
	for _, h := range [...]hash.Hash{sp.md5, sp.sha1} {
		switch {
		case h == nil:
		case len(p) >= parallelMin:
			wg.Add(1)
			go func() { h.Write(p); wg.Done() }()
		default:
			h.Write(p)
		}
	}
	n, err := sp.f.Write(p)
	wg.Wait()
	sp.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("upload buffer: %w", err)
	}
	if sp.writeBack > 0 && sp.size-sp.writing >= sp.writeBack {
		startWriteBack(sp.f, sp.writing, sp.size-sp.writing)
		sp.writing = sp.size
	}
	return n, nil
}

// readFrom fills the spool from r with large writes, so that the hashes
// can run beside the disk.
func (sp *spool) readFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{sp}, r, make([]byte, 1<<20))
}

// upload describes the finished buffer for a driver.
func (sp *spool) upload() drivers.Upload {
	return drivers.Upload{Body: sp.f, Path: sp.f.Name(), Size: sp.size, Hashes: sp.hashes()}
}

// hashes are the ones computed; the others are empty.
func (sp *spool) hashes() drivers.Hashes {
	var h drivers.Hashes
	if sp.md5 != nil {
		h.MD5 = hex.EncodeToString(sp.md5.Sum(nil))
	}
	if sp.sha1 != nil {
		h.SHA1 = hex.EncodeToString(sp.sha1.Sum(nil))
	}
	return h
}

// discard closes and removes the buffer; always called, success or not.
func (sp *spool) discard() {
	sp.f.Close()
	os.Remove(sp.f.Name())
}

// removeStaleSpools deletes the upload buffers no live process holds
// (their flock is free): what a crash, even a SIGKILL, left behind. Buffers
// of other live bridges, and of this one, are kept.
func removeStaleSpools(dir string, log zerolog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, spoolPrefix) {
			continue
		}
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue // a live bridge holds it
		}
		if err := os.Remove(p); err == nil {
			log.Info().Str("file", name).Msg("removed stale upload buffer")
		}
		f.Close()
	}
}
