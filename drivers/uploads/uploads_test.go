package uploads

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"bridge/drivers"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		size, part int64
		want       []Part
	}{
		{0, 4, nil},
		{1, 4, []Part{{0, 0, 1}}},
		{4, 4, []Part{{0, 0, 4}}},
		{9, 4, []Part{{0, 0, 4}, {1, 4, 4}, {2, 8, 1}}},
		{5, 0, []Part{{0, 0, 5}}},
	}
	for _, c := range cases {
		if got := Split(c.size, c.part); !slices.Equal(got, c.want) {
			t.Errorf("Split(%d, %d) = %v, want %v", c.size, c.part, got, c.want)
		}
	}
	// Past 2^32 bytes and 2^31 parts' offsets stay exact.
	big := Split(5<<30+3, 4<<20)
	last := big[len(big)-1]
	if len(big) != 1281 || last.Offset != 1280*(4<<20) || last.End() != 5<<30+3 {
		t.Fatalf("5 GiB + 3: %d parts, last %+v", len(big), last)
	}
}

// countingReaderAt records the largest single read, to show parts are
// read in small pieces rather than whole.
type countingReaderAt struct {
	r       io.ReaderAt
	maxRead atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	for {
		m := c.maxRead.Load()
		if int64(len(p)) <= m || c.maxRead.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	return c.r.ReadAt(p, off)
}

func TestPartReaderReadsByOffset(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB
	body := &countingReaderAt{r: bytes.NewReader(data)}
	var got bytes.Buffer
	for _, p := range Split(int64(len(data)), 300_000) {
		r := p.Reader(body)
		buf := make([]byte, 32<<10)
		if _, err := io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{r}, buf); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("parts do not rebuild the file")
	}
	if m := body.maxRead.Load(); m > 32<<10 {
		t.Fatalf("a read of %d bytes: parts must be streamed, not loaded", m)
	}
}

func TestEachBoundsAndStopsAtFirstError(t *testing.T) {
	parts := Split(100, 1)
	var running, peak atomic.Int32
	var done atomic.Int32
	err := Each(t.Context(), parts, 4, func(ctx context.Context, p Part) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		done.Add(1)
		return nil
	})
	if err != nil || done.Load() != 100 || peak.Load() > 4 {
		t.Fatalf("err %v, done %d, peak %d (want nil, 100, <=4)", err, done.Load(), peak.Load())
	}

	boom := errors.New("boom")
	var started atomic.Int32
	err = Each(t.Context(), parts, 2, func(ctx context.Context, p Part) error {
		started.Add(1)
		switch {
		case p.Index < 3:
			return nil
		case p.Index == 3:
			return boom
		}
		<-ctx.Done() // the later ones wait until the failure cancels them
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Each = %v, want the first error", err)
	}
	if s := started.Load(); s > 6 {
		t.Fatalf("%d parts started after a failure at part 3 with 2 in flight", s)
	}
}

// fakeDir is a folder of named objects for Replace.
type fakeDir struct {
	mu        sync.Mutex
	files     map[string]string // name -> content id
	failNames map[string]bool   // renames to these names fail
	removed   []string
}

func (f *fakeDir) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := path.Base(obj.Path)
	c, ok := f.files[old]
	if !ok {
		return drivers.Object{}, drivers.ErrNotFound
	}
	if f.failNames[newName] || (strings.HasPrefix(newName, ".bridge-") && f.failNames["aside"]) {
		return drivers.Object{}, drivers.ErrUnavailable
	}
	delete(f.files, old)
	f.files[newName] = c
	return drivers.Object{Name: newName, ID: c}, nil
}

func (f *fakeDir) Remove(ctx context.Context, obj drivers.Ref) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path.Base(obj.Path))
	f.removed = append(f.removed, path.Base(obj.Path))
	return nil
}

func (f *fakeDir) put(name, content string) (drivers.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[name] = content
	return drivers.Object{Name: name, ID: content}, nil
}

func TestReplace(t *testing.T) {
	parent := drivers.Ref{Path: "/dir"}
	old := drivers.Object{Name: "a.txt", ID: "old"}
	run := func(f *fakeDir, uploadErr error) (drivers.Object, error) {
		return Replace(t.Context(), f, parent, "a.txt", old, func(ctx context.Context, tmp string) (drivers.Object, error) {
			if uploadErr != nil {
				return drivers.Object{}, uploadErr
			}
			return f.put(tmp, "new")
		}, zerolog.Nop())
	}
	for _, c := range []struct {
		name      string
		uploadErr error
		fail      map[string]bool
		want      map[string]string
		wantErr   bool
	}{
		{name: "ok", want: map[string]string{"a.txt": "new"}},
		{name: "upload fails", uploadErr: drivers.ErrQuota, want: map[string]string{"a.txt": "old"}, wantErr: true},
		{name: "aside fails", fail: map[string]bool{"aside": true}, want: map[string]string{"a.txt": "old"}, wantErr: true},
		{name: "final rename fails", fail: map[string]bool{"a.txt": true}, want: map[string]string{"a.txt": "old"}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeDir{files: map[string]string{"a.txt": "old"}, failNames: c.fail}
			if c.name == "final rename fails" {
				// Only the new file's rename fails; the old one may go back.
				f.failNames = nil
				orig := f
				wrapped := &failFirstInto{fakeDir: orig, name: "a.txt"}
				_, err := Replace(t.Context(), wrapped, parent, "a.txt", old, func(ctx context.Context, tmp string) (drivers.Object, error) {
					return orig.put(tmp, "new")
				}, zerolog.Nop())
				if err == nil || !maps.Equal(orig.files, c.want) {
					t.Fatalf("err %v, files %v, want error and %v", err, orig.files, c.want)
				}
				return
			}
			o, err := run(f, c.uploadErr)
			if (err != nil) != c.wantErr || !maps.Equal(f.files, c.want) {
				t.Fatalf("err %v, files %v; want error %v and %v", err, f.files, c.wantErr, c.want)
			}
			if err == nil && (o.Name != "a.txt" || o.ID != "new") {
				t.Fatalf("Replace returned %+v", o)
			}
		})
	}
}

// failFirstInto fails the first rename into name (the new file's), so the
// old file's way back succeeds.
type failFirstInto struct {
	*fakeDir
	name   string
	failed bool
}

func (f *failFirstInto) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	if newName == f.name && !f.failed {
		f.failed = true
		return drivers.Object{}, drivers.ErrUnavailable
	}
	return f.fakeDir.Rename(ctx, obj, newName)
}
