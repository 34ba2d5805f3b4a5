package disktopfake

import (
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
)

// blob is one immutable content (a file version or a received upload
// part) in a temp file of the fake's folder. Files that are copies of one
// another (manage copy, instant uploads) share their blob; the last one
// dropped removes its temp file.
type blob struct {
	file string
	size int64
	md5  string // of the content, lowercase hex
	refs int    // files using it (f.mu)
}

// open opens the blob's temp file for reading. Called under f.mu, the
// handle stays good after a release removes the file.
func (b *blob) open() (*os.File, error) { return os.Open(b.file) }

// store writes r into a new temp file, hashing it as it goes. It needs no
// lock (f.dir never changes), so big bodies are not written under f.mu.
func (f *Fake) store(r io.Reader) (*blob, error) {
	out, err := os.CreateTemp(f.dir, "v-*")
	if err != nil {
		return nil, err
	}
	h := md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(out, h), r, make([]byte, 256<<10))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return nil, err
	}
	return &blob{file: out.Name(), size: n, md5: hex.EncodeToString(h.Sum(nil))}, nil
}

// concat joins upload parts into one new blob, by copying file to file.
func (f *Fake) concat(parts []*blob) (*blob, error) {
	var readers []io.Reader
	for _, p := range parts {
		fl, err := p.open()
		if err != nil {
			return nil, err
		}
		defer fl.Close()
		readers = append(readers, io.NewSectionReader(fl, 0, p.size))
	}
	return f.store(io.MultiReader(readers...))
}

// release drops one file's use of b (f.mu held).
func (f *Fake) release(b *blob) {
	if b.refs--; b.refs <= 0 {
		os.Remove(b.file)
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
