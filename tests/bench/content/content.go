// Package content makes the benchmark's file bodies: any number of bytes,
// determined by a seed, readable at any offset without being stored. Two
// seeds never give the same 1 MiB block, so no provider can skip an upload
// by deduplication, and a 5 GiB download can be checked byte for byte
// against the seed instead of against a 5 GiB reference file.
package content

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
)

// BlockSize is the unit that carries the seed and its own index.
const BlockSize = 1 << 20

const poolSize = 8 << 20

var (
	poolOnce sync.Once
	pool     []byte
)

// randomPool is 8 MiB of fixed pseudo-random bytes that every block is a
// window of (so making content costs a copy, not a random generator).
func randomPool() []byte {
	poolOnce.Do(func() {
		r := rand.New(rand.NewPCG(0x627269646765, 0x62656e6368))
		pool = make([]byte, poolSize)
		for i := 0; i < poolSize; i += 8 {
			binary.LittleEndian.PutUint64(pool[i:], r.Uint64())
		}
	})
	return pool
}

// Content is Size bytes made from Seed.
type Content struct {
	Seed uint64
	Size int64
}

// New is the content of seed, size bytes long.
func New(seed uint64, size int64) Content { return Content{Seed: seed, Size: size} }

// part writes the bytes of block i from offset in on into dst (at most
// to the block's end).
func (c Content) part(i, in int64, dst []byte) {
	p := randomPool()
	// A window of the pool starting at an offset drawn from (seed,
	// block), so that blocks differ in more than their header.
	h := (c.Seed*0x9E3779B97F4A7C15 ^ uint64(i)*0xC2B2AE3D27D4EB4F) * 0x165667B19E3779F9
	start := int64(h>>20) % (poolSize - BlockSize)
	copy(dst, p[start+in:start+BlockSize])
	if in < 16 {
		var head [16]byte
		binary.LittleEndian.PutUint64(head[0:], c.Seed)
		binary.LittleEndian.PutUint64(head[8:], uint64(i))
		copy(dst, head[in:])
	}
}

// ReadAt is io.ReaderAt.
func (c Content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("content: negative offset %d", off)
	}
	if off >= c.Size {
		return 0, io.EOF
	}
	n := 0
	for len(p) > 0 && off < c.Size {
		i, in := off/BlockSize, off%BlockSize
		want := min(int64(len(p)), BlockSize-in, c.Size-off)
		c.part(i, in, p[:want])
		p, off, n = p[want:], off+want, n+int(want)
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// Reader reads the whole content from the start.
func (c Content) Reader() *io.SectionReader { return io.NewSectionReader(c, 0, c.Size) }

// Compare reads r to its end and reports whether it holds exactly the
// bytes of c from off on, up to length bytes; the error says where they
// first differ.
func (c Content) Compare(r io.Reader, off, length int64) error {
	got := make([]byte, 4<<20)
	want := make([]byte, 4<<20)
	pos := off
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			if pos+int64(n) > off+length {
				return fmt.Errorf("more than the %d bytes asked for (at least %d)", length, pos+int64(n)-off)
			}
			if _, werr := c.ReadAt(want[:n], pos); werr != nil && werr != io.EOF {
				return werr
			}
			if !bytes.Equal(got[:n], want[:n]) {
				for j := range n {
					if got[j] != want[j] {
						return fmt.Errorf("byte %d differs (got %#x, want %#x)", pos+int64(j), got[j], want[j])
					}
				}
			}
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", pos-off, err)
		}
	}
	if pos != off+length {
		return fmt.Errorf("%d bytes, want %d", pos-off, length)
	}
	return nil
}
