// Package drivertest is the conformance suite every driver passes against
// its fake (in the spirit of gocloud.dev's blob/drivertest and rclone's
// fstests). A driver's test supplies a Harness; the suite is written once.
package drivertest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"testing"
	"time"

	"bridge/drivers"
)

// Harness describes the driver under test.
type Harness struct {
	// NewDriver returns a driver over a fresh, empty root.
	NewDriver func(t *testing.T) drivers.Driver
	// ChunkSize is the provider's upload chunk size; 0 means 4 MiB.
	ChunkSize int64
	// PageSize is the provider's listing page size; 0 means no paging.
	PageSize int
	// ForbiddenNames are names the provider refuses: Put and Mkdir must
	// fail with drivers.ErrInvalidName and leave nothing behind.
	ForbiddenNames []string
	// HTTPClient fetches links; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// NewUpload wraps data as a finished upload with its size and hashes.
func NewUpload(data []byte) drivers.Upload {
	m, s := md5.Sum(data), sha1.Sum(data)
	return drivers.Upload{
		Body:   bytes.NewReader(data),
		Size:   int64(len(data)),
		Hashes: drivers.Hashes{MD5: hex.EncodeToString(m[:]), SHA1: hex.EncodeToString(s[:])},
	}
}

// suite is one run's state.
type suite struct {
	h   Harness
	d   drivers.Driver
	f   drivers.Features
	ctx context.Context
}

// RunConformanceTests runs the suite.
func RunConformanceTests(t *testing.T, h Harness) {
	if h.ChunkSize == 0 {
		h.ChunkSize = 4 << 20
	}
	if h.HTTPClient == nil {
		h.HTTPClient = http.DefaultClient
	}
	d := h.NewDriver(t)
	s := &suite{h: h, d: d, f: d.Features(), ctx: context.Background()}
	if !s.f.Links {
		if _, ok := d.(drivers.Opener); !ok {
			t.Fatal("a driver without links must implement drivers.Opener")
		}
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, dir drivers.Ref)
	}{
		{"Sizes", s.testSizes},
		{"Names", s.testNames},
		{"ForbiddenNames", s.testForbiddenNames},
		{"NestedFolders", s.testNested},
		{"MkdirExisting", s.testMkdirExisting},
		{"Rename", s.testRename},
		{"Move", s.testMove},
		{"MoveAndRename", s.testMoveAndRename},
		{"Copy", s.testCopy},
		{"Overwrite", s.testOverwrite},
		{"RecursiveRemove", s.testRemove},
		{"Ranges", s.testRanges},
		{"NotFound", s.testNotFound},
		{"Paging", s.testPaging},
		{"Quota", s.testQuota},
	}
	root := s.root(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each case works in a folder of its own, so that none depends
			// on another's leftovers.
			tc.fn(t, s.mkdir(t, root, "t-"+tc.name))
		})
	}
}

func (s *suite) root(t *testing.T) drivers.Ref {
	t.Helper()
	o, err := s.d.Root(s.ctx)
	if err != nil {
		t.Fatalf("Root: %v", err)
	}
	if !o.IsDir {
		o.IsDir = true
	}
	return drivers.Ref{Path: "/", Object: o}
}

func child(parent drivers.Ref, o drivers.Object) drivers.Ref {
	return drivers.Ref{Path: path.Join(parent.Path, o.Name), Object: o}
}

func (s *suite) mkdir(t *testing.T, parent drivers.Ref, name string) drivers.Ref {
	t.Helper()
	o, err := s.d.Mkdir(s.ctx, parent, name)
	if err != nil {
		t.Fatalf("Mkdir %s in %s: %v", name, parent.Path, err)
	}
	if o.Name != name || !o.IsDir {
		t.Fatalf("Mkdir %s returned %+v", name, o)
	}
	return child(parent, o)
}

func (s *suite) put(t *testing.T, parent drivers.Ref, name string, data []byte) drivers.Ref {
	t.Helper()
	o, err := s.d.Put(s.ctx, parent, name, NewUpload(data))
	if err != nil {
		t.Fatalf("Put %s (%d bytes) in %s: %v", name, len(data), parent.Path, err)
	}
	s.checkObject(t, o, name, data)
	return child(parent, o)
}

// checkObject asserts what a driver returned for a file: name, size, and
// hashes only if they are the real ones.
func (s *suite) checkObject(t *testing.T, o drivers.Object, name string, data []byte) {
	t.Helper()
	up := NewUpload(data)
	if o.Name != name || o.IsDir || o.Size != int64(len(data)) {
		t.Fatalf("object for %s: %+v, want a file of %d bytes", name, o, len(data))
	}
	if o.Hashes.MD5 != "" && o.Hashes.MD5 != up.Hashes.MD5 {
		t.Fatalf("%s: md5 %s is not the content's %s", name, o.Hashes.MD5, up.Hashes.MD5)
	}
	if o.Hashes.SHA1 != "" && o.Hashes.SHA1 != up.Hashes.SHA1 {
		t.Fatalf("%s: sha1 %s is not the content's %s", name, o.Hashes.SHA1, up.Hashes.SHA1)
	}
}

func (s *suite) list(t *testing.T, dir drivers.Ref) map[string]drivers.Object {
	t.Helper()
	objs, err := s.d.List(s.ctx, dir)
	if err != nil {
		t.Fatalf("List %s: %v", dir.Path, err)
	}
	out := map[string]drivers.Object{}
	for _, o := range objs {
		if _, dup := out[o.Name]; dup {
			t.Fatalf("List %s: %q listed twice", dir.Path, o.Name)
		}
		out[o.Name] = o
	}
	return out
}

func names(m map[string]drivers.Object) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// read returns length bytes of file from offset (length < 0: to the end),
// through the driver's link or its opener.
func (s *suite) read(t *testing.T, file drivers.Ref, offset, length int64) []byte {
	t.Helper()
	if !s.f.Links {
		rc, err := s.d.(drivers.Opener).Open(s.ctx, file, offset, length)
		if err != nil {
			t.Fatalf("Open %s at %d: %v", file.Path, offset, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %s: %v", file.Path, err)
		}
		return b
	}
	l, err := s.d.Link(s.ctx, file)
	if err != nil {
		t.Fatalf("Link %s: %v", file.Path, err)
	}
	if !l.Expires.IsZero() && !l.Expires.After(time.Now()) {
		t.Fatalf("Link %s already expired at %v", file.Path, l.Expires)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, l.URL, nil)
	if err != nil {
		t.Fatalf("Link %s: bad URL: %v", file.Path, err)
	}
	for k, vs := range l.Header {
		req.Header[k] = vs
	}
	ranged := offset > 0 || length >= 0
	if ranged {
		end := ""
		if length >= 0 {
			end = fmt.Sprint(offset + length - 1)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%s", offset, end))
	}
	resp, err := s.h.HTTPClient.Do(req)
	if err != nil {
		t.Fatalf("GET link of %s: %v", file.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read link of %s: %v", file.Path, err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && ranged:
		return b
	case resp.StatusCode == http.StatusOK:
		// Some providers ignore Range; the bridge copes, so may we.
		if offset > int64(len(b)) {
			t.Fatalf("link of %s: 200 with %d bytes, asked from %d", file.Path, len(b), offset)
		}
		b = b[offset:]
		if length >= 0 && length < int64(len(b)) {
			b = b[:length]
		}
		return b
	default:
		t.Fatalf("GET link of %s (Range %q): status %d", file.Path, req.Header.Get("Range"), resp.StatusCode)
		return nil
	}
}

func random(n int64) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (s *suite) testSizes(t *testing.T, dir drivers.Ref) {
	c := s.h.ChunkSize
	for _, size := range []int64{1, 2 * c, 2*c + 1, 20 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := random(size)
			f := s.put(t, dir, fmt.Sprintf("size-%d.bin", size), data)
			got := s.read(t, f, 0, -1)
			if md5.Sum(got) != md5.Sum(data) {
				t.Fatalf("read back %d bytes, not the %d uploaded", len(got), size)
			}
			if o := s.list(t, dir)[f.Name]; o.Size != size {
				t.Fatalf("listed size %d, want %d", o.Size, size)
			}
		})
	}
	t.Run("0", func(t *testing.T) {
		o, err := s.d.Put(s.ctx, dir, "empty.txt", NewUpload(nil))
		if !s.f.EmptyFiles {
			if !errors.Is(err, drivers.ErrNotSupported) && !errors.Is(err, drivers.ErrInvalidName) {
				t.Fatalf("a provider without empty files: Put of 0 bytes = %v, want ErrNotSupported", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Put of 0 bytes: %v", err)
		}
		s.checkObject(t, o, "empty.txt", nil)
		if got := s.read(t, child(dir, o), 0, -1); len(got) != 0 {
			t.Fatalf("empty file reads %d bytes", len(got))
		}
	})
}

// oddNames are legal everywhere but trip up URL and form encoding.
var oddNames = []string{"中文 文件.txt", "with space.txt", "hash#1.txt", "100%.txt", "a+b.txt", "a&b=c.txt", "it's.txt", "Ünïcödé ✓.txt"}

func (s *suite) testNames(t *testing.T, dir drivers.Ref) {
	for _, n := range oddNames {
		s.put(t, dir, n, []byte(n))
	}
	sub := s.mkdir(t, dir, "folder #%+& 中文")
	s.put(t, sub, "inner file.txt", []byte("inner"))
	listed := s.list(t, dir)
	for _, n := range append(oddNames, sub.Name) {
		if _, ok := listed[n]; !ok {
			t.Fatalf("%q not listed back; listed %q", n, names(listed))
		}
	}
	for _, n := range oddNames {
		if got := s.read(t, child(dir, listed[n]), 0, -1); string(got) != n {
			t.Fatalf("%q reads %q", n, got)
		}
	}
	if _, ok := s.list(t, sub)["inner file.txt"]; !ok {
		t.Fatal("file inside an oddly named folder not listed")
	}
}

func (s *suite) testForbiddenNames(t *testing.T, dir drivers.Ref) {
	for _, n := range s.h.ForbiddenNames {
		if _, err := s.d.Put(s.ctx, dir, n, NewUpload([]byte("x"))); !errors.Is(err, drivers.ErrInvalidName) {
			t.Errorf("Put %q: %v, want ErrInvalidName", n, err)
		}
		if _, err := s.d.Mkdir(s.ctx, dir, n); !errors.Is(err, drivers.ErrInvalidName) {
			t.Errorf("Mkdir %q: %v, want ErrInvalidName", n, err)
		}
	}
	if left := s.list(t, dir); len(left) != 0 {
		t.Fatalf("refused names left entries behind: %q", names(left))
	}
}

func (s *suite) testNested(t *testing.T, dir drivers.Ref) {
	a := s.mkdir(t, dir, "a")
	b := s.mkdir(t, a, "b")
	c := s.mkdir(t, b, "c")
	s.put(t, c, "deep.txt", []byte("deep"))
	for parent, want := range map[*drivers.Ref]string{&dir: "a", &a: "b", &b: "c", &c: "deep.txt"} {
		if _, ok := s.list(t, *parent)[want]; !ok {
			t.Fatalf("%s does not list %s", parent.Path, want)
		}
	}
}

func (s *suite) testMkdirExisting(t *testing.T, dir drivers.Ref) {
	s.mkdir(t, dir, "twice")
	if _, err := s.d.Mkdir(s.ctx, dir, "twice"); !errors.Is(err, drivers.ErrExist) {
		t.Fatalf("second Mkdir: %v, want ErrExist", err)
	}
}

func (s *suite) testRename(t *testing.T, dir drivers.Ref) {
	f := s.put(t, dir, "old.txt", []byte("content"))
	o, err := s.d.Rename(s.ctx, f, "new name.txt")
	if err != nil || o.Name != "new name.txt" {
		t.Fatalf("Rename file: %+v, %v", o, err)
	}
	d := s.mkdir(t, dir, "olddir")
	s.put(t, d, "x.txt", []byte("x"))
	od, err := s.d.Rename(s.ctx, d, "newdir")
	if err != nil || od.Name != "newdir" || !od.IsDir {
		t.Fatalf("Rename folder: %+v, %v", od, err)
	}
	listed := s.list(t, dir)
	if _, ok := listed["old.txt"]; ok {
		t.Fatal("old name still listed")
	}
	if got := s.read(t, child(dir, listed["new name.txt"]), 0, -1); string(got) != "content" {
		t.Fatalf("renamed file reads %q", got)
	}
	if _, ok := s.list(t, child(dir, listed["newdir"]))["x.txt"]; !ok {
		t.Fatal("renamed folder lost its content")
	}
}

func (s *suite) testMove(t *testing.T, dir drivers.Ref) {
	src := s.mkdir(t, dir, "src")
	dst := s.mkdir(t, dir, "dst")
	f := s.put(t, src, "f.txt", []byte("moved"))
	sub := s.mkdir(t, src, "sub")
	s.put(t, sub, "g.txt", []byte("g"))
	if !s.f.Move {
		if _, err := s.d.Move(s.ctx, f, dst, "f.txt"); !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Move without the feature: %v, want ErrNotSupported", err)
		}
		return
	}
	if o, err := s.d.Move(s.ctx, f, dst, "f.txt"); err != nil || o.Name != "f.txt" {
		t.Fatalf("Move file: %+v %v", o, err)
	}
	if o, err := s.d.Move(s.ctx, sub, dst, "sub"); err != nil || !o.IsDir {
		t.Fatalf("Move folder: %+v %v", o, err)
	}
	if left := s.list(t, src); len(left) != 0 {
		t.Fatalf("source still lists %q", names(left))
	}
	listed := s.list(t, dst)
	if got := s.read(t, child(dst, listed["f.txt"]), 0, -1); string(got) != "moved" {
		t.Fatalf("moved file reads %q", got)
	}
	if _, ok := s.list(t, child(dst, listed["sub"]))["g.txt"]; !ok {
		t.Fatal("moved folder lost its content")
	}
}

func (s *suite) testMoveAndRename(t *testing.T, dir drivers.Ref) {
	src := s.mkdir(t, dir, "src")
	dst := s.mkdir(t, dir, "dst")
	f := s.put(t, src, "before.txt", []byte("both"))
	if !s.f.Move {
		if _, err := s.d.Move(s.ctx, f, dst, "after #1.txt"); !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Move without the feature: %v, want ErrNotSupported", err)
		}
		return
	}
	o, err := s.d.Move(s.ctx, f, dst, "after #1.txt")
	if err != nil || o.Name != "after #1.txt" {
		t.Fatalf("Move+rename: %+v %v", o, err)
	}
	if got := s.read(t, child(dst, s.list(t, dst)["after #1.txt"]), 0, -1); string(got) != "both" {
		t.Fatalf("reads %q", got)
	}
	if len(s.list(t, src)) != 0 {
		t.Fatal("source not empty")
	}
}

func (s *suite) testCopy(t *testing.T, dir drivers.Ref) {
	f := s.put(t, dir, "orig.txt", []byte("copied bytes"))
	folder := s.mkdir(t, dir, "folder")
	s.put(t, folder, "in.txt", []byte("in"))
	dst := s.mkdir(t, dir, "dst")

	o, err := s.d.Copy(s.ctx, f, dst, "copy.txt")
	if !s.f.CopyFile {
		if !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Copy file without the feature: %v, want ErrNotSupported", err)
		}
	} else {
		if err != nil {
			t.Fatalf("Copy file: %v", err)
		}
		s.checkObject(t, o, "copy.txt", []byte("copied bytes"))
		if got := s.read(t, child(dst, o), 0, -1); string(got) != "copied bytes" {
			t.Fatalf("copy reads %q", got)
		}
	}
	od, err := s.d.Copy(s.ctx, folder, dst, "folder copy")
	if !s.f.CopyDir {
		if !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Copy folder without the feature: %v, want ErrNotSupported", err)
		}
	} else {
		if err != nil || !od.IsDir {
			t.Fatalf("Copy folder: %+v %v", od, err)
		}
		in := s.list(t, child(dst, od))["in.txt"]
		if got := s.read(t, child(child(dst, od), in), 0, -1); string(got) != "in" {
			t.Fatalf("copied folder's file reads %q", got)
		}
	}
	// The sources are intact.
	listed := s.list(t, dir)
	if got := s.read(t, child(dir, listed["orig.txt"]), 0, -1); string(got) != "copied bytes" {
		t.Fatalf("source reads %q after copy", got)
	}
	if _, ok := s.list(t, child(dir, listed["folder"]))["in.txt"]; !ok {
		t.Fatal("source folder lost its file")
	}
}

func (s *suite) testOverwrite(t *testing.T, dir drivers.Ref) {
	old := s.put(t, dir, "f.txt", []byte("old content"))
	up := NewUpload([]byte("new"))
	up.Replaces = &old.Object
	o, err := s.d.Put(s.ctx, dir, "f.txt", up)
	if err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	s.checkObject(t, o, "f.txt", []byte("new"))
	listed, err := s.d.List(s.ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, e := range listed {
		if e.Name == "f.txt" {
			count++
		}
	}
	if count != 1 || len(listed) != 1 {
		t.Fatalf("after overwrite the folder lists %d entries, %d named f.txt", len(listed), count)
	}
	if got := s.read(t, child(dir, o), 0, -1); string(got) != "new" {
		t.Fatalf("overwritten file reads %q", got)
	}
}

func (s *suite) testRemove(t *testing.T, dir drivers.Ref) {
	tree := s.mkdir(t, dir, "tree")
	sub := s.mkdir(t, tree, "sub")
	s.put(t, sub, "a.txt", []byte("a"))
	f := s.put(t, tree, "b.txt", []byte("b"))
	if err := s.d.Remove(s.ctx, f); err != nil {
		t.Fatalf("Remove file: %v", err)
	}
	if err := s.d.Remove(s.ctx, tree); err != nil {
		t.Fatalf("Remove folder: %v", err)
	}
	if left := s.list(t, dir); len(left) != 0 {
		t.Fatalf("parent still lists %q", names(left))
	}
	if _, err := s.d.List(s.ctx, tree); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("List of a removed folder: %v, want ErrNotFound", err)
	}
}

func (s *suite) testRanges(t *testing.T, dir drivers.Ref) {
	size := 2*s.h.ChunkSize + 12345
	data := random(size)
	f := s.put(t, dir, "ranges.bin", data)
	mid := size / 2
	for _, r := range []struct {
		name        string
		off, length int64
	}{
		{"start", 0, 1000},
		{"middle", mid, 4096},
		{"end", size - 777, 777},
		{"suffix to the end", size - 5000, -1},
		{"across a chunk boundary", s.h.ChunkSize - 10, 20},
	} {
		got := s.read(t, f, r.off, r.length)
		end := size
		if r.length >= 0 {
			end = r.off + r.length
		}
		if !bytes.Equal(got, data[r.off:end]) {
			t.Fatalf("%s [%d,%d): got %d bytes, not the right ones", r.name, r.off, end, len(got))
		}
	}
}

func (s *suite) testNotFound(t *testing.T, dir drivers.Ref) {
	gone := s.put(t, dir, "gone.txt", []byte("x"))
	goneDir := s.mkdir(t, dir, "gonedir")
	if err := s.d.Remove(s.ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := s.d.Remove(s.ctx, goneDir); err != nil {
		t.Fatal(err)
	}
	if err := s.d.Remove(s.ctx, gone); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Remove of a missing file: %v, want ErrNotFound", err)
	}
	if _, err := s.d.List(s.ctx, goneDir); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("List of a missing folder: %v, want ErrNotFound", err)
	}
	if _, err := s.d.Rename(s.ctx, gone, "other"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Rename of a missing file: %v, want ErrNotFound", err)
	}
	if s.f.Links {
		if _, err := s.d.Link(s.ctx, gone); !errors.Is(err, drivers.ErrNotFound) {
			t.Errorf("Link of a missing file: %v, want ErrNotFound", err)
		}
	} else if _, err := s.d.(drivers.Opener).Open(s.ctx, gone, 0, -1); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Open of a missing file: %v, want ErrNotFound", err)
	}
}

func (s *suite) testPaging(t *testing.T, dir drivers.Ref) {
	n := max(s.h.PageSize+1, 25)
	for i := 0; i < n; i++ {
		s.put(t, dir, fmt.Sprintf("entry-%04d.txt", i), []byte(fmt.Sprint(i)))
	}
	listed := s.list(t, dir)
	if len(listed) != n {
		t.Fatalf("listed %d entries, want %d", len(listed), n)
	}
	for i := 0; i < n; i++ {
		if _, ok := listed[fmt.Sprintf("entry-%04d.txt", i)]; !ok {
			t.Fatalf("entry %d missing", i)
		}
	}
}

func (s *suite) testQuota(t *testing.T, dir drivers.Ref) {
	q, err := s.d.Quota(s.ctx)
	if !s.f.Quota {
		if !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Quota without the feature: %v, want ErrNotSupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Quota: %v", err)
	}
	if q.Used < 0 || (q.Total >= 0 && q.Used > q.Total) || (q.Total >= 0 && q.Free > q.Total) {
		t.Fatalf("Quota %+v is not sane", q)
	}
}
