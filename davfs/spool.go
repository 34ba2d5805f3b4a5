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
	"syscall"

	"github.com/rs/zerolog"

	"bridge/drivers"
)

// spoolPrefix names upload buffers; the pid after it tells whether the
// process that wrote one is still alive.
const spoolPrefix = "bridge-put-"

// spool buffers an upload body in a temp file, hashing it on the way, so
// that the driver gets a finished file with known size and hashes.
type spool struct {
	f    *os.File
	md5  hash.Hash
	sha1 hash.Hash
	size int64
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, spoolPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, fmt.Errorf("upload buffer: %w", err)
	}
	return &spool{f: f, md5: md5.New(), sha1: sha1.New()}, nil
}

// parallelMin is the write size from which the two hashes are computed on
// other goroutines while the bytes go to disk: on big uploads hashing, not
// the disk, would otherwise set the pace.
const parallelMin = 64 << 10

func (sp *spool) Write(p []byte) (int, error) {
	var wg sync.WaitGroup
	if len(p) >= parallelMin {
		wg.Add(2)
		go func() { sp.md5.Write(p); wg.Done() }()
		go func() { sp.sha1.Write(p); wg.Done() }()
	} else {
		sp.md5.Write(p)
		sp.sha1.Write(p)
	}
	n, err := sp.f.Write(p)
	wg.Wait()
	sp.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("upload buffer: %w", err)
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
	return drivers.Upload{
		Body: sp.f,
		Path: sp.f.Name(),
		Size: sp.size,
		Hashes: drivers.Hashes{
			MD5:  hex.EncodeToString(sp.md5.Sum(nil)),
			SHA1: hex.EncodeToString(sp.sha1.Sum(nil)),
		},
	}
}

// discard closes and removes the buffer; always called, success or not.
func (sp *spool) discard() {
	sp.f.Close()
	os.Remove(sp.f.Name())
}

// removeStaleSpools deletes upload buffers whose process is gone: they are
// what a crash left behind. Buffers of other live bridges are kept.
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
		pidText, _, _ := strings.Cut(strings.TrimPrefix(name, spoolPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			continue // its bridge is still running
		}
		if err := os.Remove(filepath.Join(dir, name)); err == nil {
			log.Info().Str("file", name).Msg("removed stale upload buffer")
		}
	}
}
