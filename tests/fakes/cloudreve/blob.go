package cloudrevefake

import (
	"io"
	"os"
)

// blob is one immutable file content in a temp file of the fake's folder.
// Copies of a file share its blob; the last one dropped removes the temp
// file.
type blob struct {
	file string
	size int64
	refs int // files using it (f.mu)
}

// size is a file's length (0 for a folder).
func (n *node) size() int64 {
	if n.blob == nil {
		return 0
	}
	return n.blob.size
}

// open opens the blob's temp file for reading. Called under f.mu, the
// handle stays good after a release removes the file.
func (b *blob) open() (*os.File, error) { return os.Open(b.file) }

// store writes r into a new temp file. It needs no lock (f.dir never
// changes), so big bodies are not written under f.mu.
func (f *Fake) store(r io.Reader) (*blob, error) {
	out, err := os.CreateTemp(f.dir, "v-*")
	if err != nil {
		return nil, err
	}
	n, err := io.CopyBuffer(out, r, make([]byte, 256<<10))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return nil, err
	}
	return &blob{file: out.Name(), size: n}, nil
}

// release drops one file's use of b (f.mu held).
func (f *Fake) release(b *blob) {
	if b.refs--; b.refs <= 0 {
		os.Remove(b.file)
	}
}

// writeAt copies r into the existing file name from offset off on and
// returns how many bytes it wrote.
func writeAt(name string, off int64, r io.Reader) (int64, error) {
	fl, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(io.NewOffsetWriter(fl, off), r, make([]byte, 256<<10))
	if cerr := fl.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// discard removes what an upload session received (f.mu held).
func (s *uploadSession) discard() {
	if s.file != "" {
		os.Remove(s.file)
		s.file = ""
	}
}

// bodyReader reads a request body and remembers a failure to read it (the
// client went away), as opposed to a failure to write what it read.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
