// Package uploads holds what every driver's upload protocol shares: cutting
// a finished temp file into parts that are read by offset (so memory stays
// flat whatever the file's size), sending parts in parallel with a bound,
// and replacing an existing file without ever leaving its name empty.
package uploads

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"
)

// Part is one piece of an upload.
type Part struct {
	Index  int // 0-based
	Offset int64
	Size   int64
}

// Reader returns the part's bytes of body. It reads the temp file by
// offset as it is consumed, holding no copy, and can be rewound (Seek) to
// send the part again.
func (p Part) Reader(body io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(body, p.Offset, p.Size)
}

// End is the offset just past the part's last byte.
func (p Part) End() int64 { return p.Offset + p.Size }

// Split cuts size bytes into parts of partSize, the last one shorter. An
// empty file has no parts.
func Split(size, partSize int64) []Part {
	if size <= 0 {
		return nil
	}
	if partSize <= 0 {
		partSize = size
	}
	n := (size + partSize - 1) / partSize
	parts := make([]Part, 0, n)
	for i := int64(0); i < n; i++ {
		off := i * partSize
		parts = append(parts, Part{Index: int(i), Offset: off, Size: min(partSize, size-off)})
	}
	return parts
}

// Each calls fn for every part, at most parallel at a time (at least one),
// in order of index. It returns the first error; the context of the calls
// still running is cancelled then, and no further part is started.
func Each(ctx context.Context, parts []Part, parallel int, fn func(ctx context.Context, p Part) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, p := range parts {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, p) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return context.Cause(ctx) // cancelled before a part could fail
}
