package teraboxfake

import (
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
)

// blob is one immutable file version (or one received block) in a temp
// file of the fake's folder, with what the service knows of it.
type blob struct {
	file   string
	size   int64
	md5    string   // of the content
	blocks []string // md5 of each 4 MiB block: the dedup key
}

// blobFrom writes r into a new temp file; it needs no lock (f.dir never
// changes), so large bodies are not written under f.mu.
func (f *Fake) blobFrom(r io.Reader) (*blob, error) {
	out, err := os.CreateTemp(f.dir, "v*")
	if err != nil {
		return nil, err
	}
	name := out.Name()
	b := &blob{file: name}
	whole, block := md5.New(), md5.New()
	var inBlock int64
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		p := buf[:n]
		for len(p) > 0 {
			take := min(int64(len(p)), BlockSize-inBlock)
			block.Write(p[:take])
			inBlock += take
			if inBlock == BlockSize {
				b.blocks = append(b.blocks, hex.EncodeToString(block.Sum(nil)))
				block.Reset()
				inBlock = 0
			}
			p = p[take:]
		}
		if n > 0 {
			whole.Write(buf[:n])
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return nil, err
			}
			b.size += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			os.Remove(name)
			return nil, rerr
		}
	}
	if inBlock > 0 || b.size == 0 {
		b.blocks = append(b.blocks, hex.EncodeToString(block.Sum(nil)))
	}
	b.md5 = hex.EncodeToString(whole.Sum(nil))
	return b, out.Close()
}

// concat joins received blocks into one new version.
func (f *Fake) concat(parts []*blob) (*blob, error) {
	var readers []io.Reader
	var files []*os.File
	defer func() {
		for _, fl := range files {
			fl.Close()
		}
	}()
	for _, p := range parts {
		fl, err := os.Open(p.file)
		if err != nil {
			return nil, err
		}
		files = append(files, fl)
		readers = append(readers, fl)
	}
	return f.blobFrom(io.MultiReader(readers...))
}

// drop removes an upload session's received blocks.
func (s *session) drop() {
	for _, p := range s.parts {
		os.Remove(p.file)
	}
}

// sameBlocks reports whether two block lists are equal.
func sameBlocks(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
