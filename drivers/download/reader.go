package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"bridge/drivers"
)

// OpenFunc opens a stream of a file's bytes [off, off+n) (n < 0: to the
// end).
type OpenFunc func(ctx context.Context, off, n int64) (io.ReadCloser, error)

// maxResumes bounds how often one reader reopens a stream that broke
// without a byte of progress since the last break: a provider that cuts a
// tenth of its answers cuts a one-byte rest four times in a row once in
// ten thousand, which a long read must survive; one that makes no
// progress at all is given up on.
const maxResumes = 5

// skipAhead is how far a forward seek is served by reading on instead of
// opening a new stream.
const skipAhead = 256 << 10

// Reader is a lazy io.ReadSeekCloser over a remote file of known size.
// Nothing is fetched until the first Read; a seek only moves the position.
// When a stream breaks it reopens at the same byte (the opener replaces a
// link the provider no longer honours), a few times at most.
type Reader struct {
	ctx  context.Context
	open OpenFunc
	size int64
	// ends maps the start of each range the client asked for to its end, so
	// the stream opened for a range asks the provider for exactly that range.
	ends map[int64]int64

	pos     int64
	body    io.ReadCloser
	bodyPos int64 // position of body's next byte
	bodyEnd int64 // where body's bytes end
	resumes int   // breaks in a row at the same byte
	brokeAt int64 // where the last break was
	err     error // the error that ended reading, if any
}

// NewReader reads a file of size bytes through open. ends (from
// RangeEnds, may be nil) are the ranges a client asked for.
func NewReader(ctx context.Context, open OpenFunc, size int64, ends map[int64]int64) *Reader {
	return &Reader{ctx: ctx, open: open, size: size, ends: ends}
}

// Size is the file's size.
func (r *Reader) Size() int64 { return r.size }

// Ends are the ranges the reader was told about.
func (r *Reader) Ends() map[int64]int64 { return r.ends }

// Pos is the position of the next byte Read returns.
func (r *Reader) Pos() int64 { return r.pos }

// Err is the error that ended reading early (nil after a clean end).
func (r *Reader) Err() error { return r.err }

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

func (r *Reader) read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body != nil && r.pos != r.bodyPos {
		if gap := r.pos - r.bodyPos; gap > 0 && gap <= skipAhead && r.pos < r.bodyEnd {
			if _, err := io.CopyN(io.Discard, r.body, gap); err == nil {
				r.bodyPos = r.pos
			}
		}
		if r.pos != r.bodyPos {
			r.body.Close()
			r.body = nil
		}
	}
	for {
		if r.body == nil {
			r.bodyEnd = r.size
			n := int64(-1)
			if end, ok := r.ends[r.pos]; ok {
				r.bodyEnd, n = end, end-r.pos
			}
			body, err := r.open(r.ctx, r.pos, n)
			if err != nil {
				return 0, err
			}
			r.body, r.bodyPos = body, r.pos
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		r.bodyPos = r.pos
		if err == nil || n > 0 {
			return n, nil
		}
		r.body.Close()
		r.body = nil
		switch {
		case r.ctx.Err() != nil:
			return 0, r.ctx.Err()
		case errors.Is(err, io.EOF) && r.pos >= r.size:
			return 0, io.EOF
		case errors.Is(err, io.EOF) && r.pos == r.bodyEnd:
			// A bounded stream ended where asked; open the next one.
		default:
			// Cut short or failed mid-body: resume at r.pos.
			if r.pos > r.brokeAt || r.resumes == 0 {
				r.resumes, r.brokeAt = 0, r.pos // progress since the last break
			}
			if r.resumes >= maxResumes {
				return 0, fmt.Errorf("stream broke at byte %d of %d, %d times in a row: %w", r.pos, r.size, r.resumes+1, drivers.ErrUnavailable)
			}
			r.resumes++
		}
	}
}

// Prime opens the stream at off, so that a provider failure is known
// before a client is answered.
func (r *Reader) Prime(off int64) error {
	if off >= r.size {
		return nil
	}
	r.pos = off
	_, err := r.Read(nil)
	return err
}

func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("seek: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.pos = abs
	return abs, nil
}

func (r *Reader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// RangeSpec is one range of a Range header's bytes set; First or Last is
// -1 where the spec leaves it out ("bytes=-500" has only Last: a suffix).
type RangeSpec struct{ First, Last int64 }

// ParseRange reads a Range header's bytes range set. ok is false when the
// header is not one (another unit, a malformed spec, last before first):
// RFC 9110 section 14.2 lets a server ignore such a header.
func ParseRange(h string) (specs []RangeSpec, ok bool) {
	set, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return nil, false
	}
	for _, spec := range strings.Split(set, ",") {
		first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
		if !found || (first == "" && last == "") {
			return nil, false
		}
		r := RangeSpec{First: -1, Last: -1}
		for _, f := range []struct {
			text string
			v    *int64
		}{{first, &r.First}, {last, &r.Last}} {
			if f.text == "" {
				continue
			}
			n, err := strconv.ParseInt(f.text, 10, 64)
			if err != nil || n < 0 {
				return nil, false
			}
			*f.v = n
		}
		if r.First >= 0 && r.Last >= 0 && r.Last < r.First {
			return nil, false
		}
		specs = append(specs, r)
	}
	return specs, true
}

// Satisfiable reports whether the spec can select bytes of a file of size
// bytes: a suffix of 0 bytes, or a start past the end, cannot.
func (r RangeSpec) Satisfiable(size int64) bool {
	if r.First < 0 {
		return r.Last != 0
	}
	return r.First < size
}

// String is the spec as a Range header writes it.
func (r RangeSpec) String() string {
	s := ""
	if r.First >= 0 {
		s = strconv.FormatInt(r.First, 10)
	}
	s += "-"
	if r.Last >= 0 {
		s += strconv.FormatInt(r.Last, 10)
	}
	return s
}

// RangeEnds parses a Range header into start → end (exclusive) for a file
// of the given size; unparseable headers give no hints.
func RangeEnds(h string, size int64) map[int64]int64 {
	specs, ok := ParseRange(h)
	if !ok || size <= 0 {
		return nil
	}
	out := map[int64]int64{}
	for _, r := range specs {
		var start, end int64
		switch {
		case r.First < 0:
			start, end = max(size-r.Last, 0), size
		default:
			start, end = r.First, size
			if r.Last >= 0 {
				end = min(r.Last+1, size)
			}
		}
		if start < end {
			out[start] = end
		}
	}
	return out
}
