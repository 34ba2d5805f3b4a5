// Package drivertest is the conformance suite every driver passes against
// its fake (in the spirit of gocloud.dev's blob/drivertest and rclone's
// fstests). A driver's test supplies a Harness; the suite is written once,
// so davfs can rely on the same behaviour from every provider.
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
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"bridge/drivers"
	"bridge/drivers/download"
	"bridge/tests/fakes/faults"
)

// Harness describes the driver under test.
type Harness struct {
	// NewDriver returns a driver over a fresh, empty root, talking to a
	// fake of its provider whose fault layer is set to p.Faults, and that
	// fake (nil for a driver with no remote provider, such as local). The
	// suite calls it once per profile and gives every case a folder of its
	// own.
	NewDriver func(t *testing.T, p Profile) (drivers.Driver, Provider)
	// ChunkSize is the provider's upload chunk size; 0 means 4 MiB.
	ChunkSize int64
	// PageSize is the provider's listing page size; 0 means no paging. The
	// suite lists a folder of max(2*PageSize+1, 25) files.
	PageSize int
	// ForbiddenNames are names the provider refuses: Put and Mkdir must
	// fail with drivers.ErrInvalidName and leave nothing behind.
	ForbiddenNames []string
	// HTTPClient fetches links; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Provider is the fake behind a driver, as far as the suite acts on it.
// *faults.Layer is one; a harness whose driver shares a clock with its
// fake wraps it so that Advance moves both.
type Provider interface {
	// Restart crashes and restarts the provider: it forgets sessions,
	// upload sessions and signed links, and answers in flight break off.
	Restart()
	// Advance moves the provider's clock (and the driver's, if they share
	// one) forward, so tokens and links expire between steps.
	Advance(d time.Duration)
}

// Profile is how rough the provider is during one run of the suite.
type Profile struct {
	Name   string
	Faults faults.Config
	// Step is how far the provider's clock moves before each case, with a
	// restart; 0: neither.
	Step time.Duration
}

// Profiles are the runs every driver passes: a kind provider, and a
// hostile one (faults.Hostile: 60-second tokens and links, a rate limit
// every endpoint enforces, occasional 5xx and cut downloads) that also
// restarts and moves its clock half a token lifetime between cases.
func Profiles() []Profile {
	h := faults.Hostile()
	return []Profile{
		{Name: "normal"},
		{Name: "hostile", Faults: h, Step: h.TokenTTL / 2},
	}
}

// NewUpload wraps data as a finished upload with its size and both hashes,
// as davfs hands it to Put.
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
	h     Harness
	d     drivers.Driver
	f     drivers.Features
	p     Provider
	fetch *download.Fetcher
}

// RunConformanceTests runs every case against the harness's driver, once
// per profile (Profiles).
func RunConformanceTests(t *testing.T, h Harness) {
	if h.NewDriver == nil {
		t.Fatal("drivertest: Harness.NewDriver is nil")
	}
	if h.ChunkSize <= 0 {
		h.ChunkSize = 4 << 20
	}
	if h.HTTPClient == nil {
		h.HTTPClient = http.DefaultClient
	}
	remote := true
	for _, p := range Profiles() {
		if !remote {
			t.Logf("profile %s: the driver has no remote provider to be hostile", p.Name)
			continue
		}
		t.Run(p.Name, func(t *testing.T) { remote = runProfile(t, h, p) })
	}
}

// runProfile runs the suite once; it reports whether the driver has a
// remote provider.
func runProfile(t *testing.T, h Harness, p Profile) bool {
	d, prov := h.NewDriver(t, p)
	s := &suite{h: h, d: d, f: d.Features(), p: prov, fetch: &download.Fetcher{Client: h.HTTPClient}}
	if lc, ok := d.(drivers.LinkChecker); ok {
		s.fetch.Check = lc.CheckDownload
	}
	if !s.f.Links {
		if _, ok := d.(drivers.Opener); !ok {
			t.Fatal("a driver without Features.Links must implement drivers.Opener")
		}
	}

	// Root runs first: it checks that the root starts empty, before the
	// other cases add their folders to it.
	var root drivers.Ref
	if !t.Run("Root", func(t *testing.T) { root = s.testRoot(t) }) {
		t.Fatal("Root failed; nothing else can run")
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
		{"ListsByPath", s.testListsByPath},
		{"ModTime", s.testModTime},
		{"Links", s.testLinks},
		{"LinkAfterRestart", s.testLinkAfterRestart},
		{"FileOpener", s.testFileOpener},
		{"Quota", s.testQuota},
	}
	for _, tc := range tests {
		if prov != nil && p.Step > 0 {
			// Between steps: tokens and links age, and the provider
			// restarts, forgetting its sessions and links.
			prov.Advance(p.Step)
			prov.Restart()
		}
		t.Run(tc.name, func(t *testing.T) {
			// Each case works in a folder of its own, so that none depends
			// on another's leftovers.
			tc.fn(t, s.mkdir(t, root, "t-"+tc.name))
		})
	}
	return prov != nil
}

func (s *suite) testRoot(t *testing.T) drivers.Ref {
	o, err := s.d.Root(t.Context())
	if err != nil {
		t.Fatalf("Root: %v", err)
	}
	if !o.IsDir {
		t.Fatalf("Root returned %+v, not a folder", o)
	}
	root := drivers.Ref{Path: "/", Object: o}
	if left := s.list(t, root); len(left) != 0 {
		t.Fatalf("the harness's root is not empty: %q", sortedNames(left))
	}
	return root
}

func child(parent drivers.Ref, o drivers.Object) drivers.Ref {
	return drivers.Ref{Path: path.Join(parent.Path, o.Name), Object: o}
}

func (s *suite) mkdir(t *testing.T, parent drivers.Ref, name string) drivers.Ref {
	t.Helper()
	o, err := s.d.Mkdir(t.Context(), parent, name)
	if err != nil {
		t.Fatalf("Mkdir %q in %s: %v", name, parent.Path, err)
	}
	if o.Name != name || !o.IsDir || o.ID == "" {
		t.Fatalf("Mkdir %q returned %+v, want a folder of that name with an ID", name, o)
	}
	return child(parent, o)
}

func (s *suite) put(t *testing.T, parent drivers.Ref, name string, data []byte) drivers.Ref {
	t.Helper()
	o, err := s.d.Put(t.Context(), parent, name, NewUpload(data))
	if err != nil {
		t.Fatalf("Put %q (%d bytes) in %s: %v", name, len(data), parent.Path, err)
	}
	checkFile(t, "Put", o, name, data)
	return child(parent, o)
}

// checkFile asserts what a driver returned for a file: name, size, an ID,
// and hashes only if they are the real ones (davfs serves them as ETags and
// checksums, so a wrong one corrupts clients' caches).
func checkFile(t *testing.T, op string, o drivers.Object, name string, data []byte) {
	t.Helper()
	if o.Name != name || o.IsDir || o.Size != int64(len(data)) || o.ID == "" {
		t.Fatalf("%s: object for %q is %+v, want a file of %d bytes with an ID", op, name, o, len(data))
	}
	want := NewUpload(data).Hashes
	if o.Hashes.MD5 != "" && o.Hashes.MD5 != want.MD5 {
		t.Fatalf("%s: %q has md5 %s, the content's is %s", op, name, o.Hashes.MD5, want.MD5)
	}
	if o.Hashes.SHA1 != "" && o.Hashes.SHA1 != want.SHA1 {
		t.Fatalf("%s: %q has sha1 %s, the content's is %s", op, name, o.Hashes.SHA1, want.SHA1)
	}
}

// list returns dir's entries by name, failing on an entry listed twice.
func (s *suite) list(t *testing.T, dir drivers.Ref) map[string]drivers.Object {
	t.Helper()
	objs, err := s.d.List(t.Context(), dir)
	if err != nil {
		t.Fatalf("List %s: %v", dir.Path, err)
	}
	out := make(map[string]drivers.Object, len(objs))
	for _, o := range objs {
		if _, dup := out[o.Name]; dup {
			t.Fatalf("List %s: %q listed twice", dir.Path, o.Name)
		}
		if o.Name == "" || o.ID == "" {
			t.Fatalf("List %s: entry without a name or an ID: %+v", dir.Path, o)
		}
		out[o.Name] = o
	}
	return out
}

// listed returns the entry name of dir, failing when it is missing.
func (s *suite) listed(t *testing.T, dir drivers.Ref, name string) drivers.Ref {
	t.Helper()
	all := s.list(t, dir)
	o, ok := all[name]
	if !ok {
		t.Fatalf("List %s: %q missing; listed %q", dir.Path, name, sortedNames(all))
	}
	return child(dir, o)
}

func sortedNames(m map[string]drivers.Object) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// read returns length bytes of file from offset (length < 0: to the end),
// through the driver's link or its opener.
func (s *suite) read(t *testing.T, file drivers.Ref, offset, length int64) []byte {
	t.Helper()
	b, err := s.tryRead(t.Context(), file, offset, length)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads file whole and compares it with want.
func (s *suite) readAll(t *testing.T, file drivers.Ref, want []byte) {
	t.Helper()
	got := s.read(t, file, 0, -1)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s reads %d bytes (md5 %x), want %d bytes (md5 %x)", file.Path, len(got), md5.Sum(got), len(want), md5.Sum(want))
	}
}

// tryRead is read returning its error, for the cases expecting one. Links
// are read as the bridge reads them (package download): the answer must
// be the file's bytes, a dead link is replaced once, and a stream that
// breaks is resumed at the same byte.
func (s *suite) tryRead(ctx context.Context, file drivers.Ref, offset, length int64) ([]byte, error) {
	if !s.f.Links {
		rc, err := s.d.(drivers.Opener).Open(ctx, file, offset, length)
		if err != nil {
			return nil, fmt.Errorf("Open %s at %d: %w", file.Path, offset, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file.Path, err)
		}
		return b, nil
	}
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) {
		l, err := s.d.Link(ctx, file)
		if err != nil {
			return l, fmt.Errorf("Link %s: %w", file.Path, err)
		}
		if l.URL == "" {
			return l, fmt.Errorf("Link %s: no URL", file.Path)
		}
		return l, nil
	}
	return s.readLinks(ctx, file, links, offset, length)
}

// readLinks reads [offset, offset+length) of file through links.
func (s *suite) readLinks(ctx context.Context, file drivers.Ref, links download.LinkFunc, offset, length int64) ([]byte, error) {
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return s.fetch.Open(ctx, links, file.Size, off, n)
	}
	end := file.Size
	if length >= 0 {
		end = min(offset+length, file.Size)
	}
	r := download.NewReader(ctx, open, file.Size, map[int64]int64{offset: end})
	defer r.Close()
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, end-offset))
	if err != nil {
		return nil, fmt.Errorf("read %s [%d,%d): %w", file.Path, offset, end, err)
	}
	return b, nil
}

func random(n int64) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (s *suite) testSizes(t *testing.T, dir drivers.Ref) {
	c := s.h.ChunkSize
	for _, size := range []int64{1, 2 * c, 2*c + 1, 20 << 20} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			name := fmt.Sprintf("size-%d.bin", size)
			data := random(size)
			if s.f.MaxFileSize > 0 && size > s.f.MaxFileSize {
				_, err := s.d.Put(t.Context(), dir, name, NewUpload(data))
				if !errors.Is(err, drivers.ErrTooLarge) {
					t.Fatalf("Put of %d bytes over MaxFileSize %d: %v, want ErrTooLarge", size, s.f.MaxFileSize, err)
				}
				return
			}
			f := s.put(t, dir, name, data)
			checkFile(t, "List", s.listed(t, dir, name).Object, name, data)
			s.readAll(t, f, data)
		})
	}
	t.Run("0", func(t *testing.T) {
		o, err := s.d.Put(t.Context(), dir, "empty.txt", NewUpload(nil))
		if !s.f.EmptyFiles {
			if !errors.Is(err, drivers.ErrNotSupported) && !errors.Is(err, drivers.ErrInvalidName) {
				t.Fatalf("without Features.EmptyFiles, Put of 0 bytes = %v, want ErrNotSupported", err)
			}
			if _, ok := s.list(t, dir)["empty.txt"]; ok {
				t.Fatal("a refused empty file is listed")
			}
			return
		}
		if err != nil {
			t.Fatalf("Put of 0 bytes: %v", err)
		}
		checkFile(t, "Put", o, "empty.txt", nil)
		checkFile(t, "List", s.listed(t, dir, "empty.txt").Object, "empty.txt", nil)
		s.readAll(t, child(dir, o), nil)
	})
}

// oddNames are legal everywhere but trip up URL, form and JSON encoding
// (and double decoding: "a%20b" must not come back as "a b").
var oddNames = []string{
	"中文 文件.txt", "with space.txt", "hash#1.txt", "100%.txt", "a%20b.txt",
	"a+b.txt", "a&b=c.txt", "it's.txt", "Ünïcödé ✓.txt",
}

func (s *suite) testNames(t *testing.T, dir drivers.Ref) {
	for _, n := range oddNames {
		s.put(t, dir, n, []byte(n))
	}
	sub := s.mkdir(t, dir, "folder #%+& 中文")
	s.put(t, sub, "inner file.txt", []byte("inner"))
	listed := s.list(t, dir)
	want := append(slices.Clone(oddNames), sub.Name)
	slices.Sort(want)
	if got := sortedNames(listed); !slices.Equal(got, want) {
		t.Fatalf("listed %q, want exactly %q", got, want)
	}
	for _, n := range oddNames {
		s.readAll(t, child(dir, listed[n]), []byte(n))
	}
	s.readAll(t, s.listed(t, sub, "inner file.txt"), []byte("inner"))
}

func (s *suite) testForbiddenNames(t *testing.T, dir drivers.Ref) {
	for _, n := range s.h.ForbiddenNames {
		if _, err := s.d.Put(t.Context(), dir, n, NewUpload([]byte("x"))); !errors.Is(err, drivers.ErrInvalidName) {
			t.Errorf("Put %q: %v, want ErrInvalidName", n, err)
		}
		if _, err := s.d.Mkdir(t.Context(), dir, n); !errors.Is(err, drivers.ErrInvalidName) {
			t.Errorf("Mkdir %q: %v, want ErrInvalidName", n, err)
		}
	}
	if left := s.list(t, dir); len(left) != 0 {
		t.Fatalf("refused names left entries behind: %q", sortedNames(left))
	}
}

func (s *suite) testNested(t *testing.T, dir drivers.Ref) {
	a := s.mkdir(t, dir, "a")
	b := s.mkdir(t, a, "b")
	c := s.mkdir(t, b, "c")
	s.put(t, c, "deep.txt", []byte("deep"))
	for _, step := range []struct {
		parent drivers.Ref
		name   string
		dir    bool
	}{{dir, "a", true}, {a, "b", true}, {b, "c", true}, {c, "deep.txt", false}} {
		got := s.listed(t, step.parent, step.name)
		if got.IsDir != step.dir {
			t.Fatalf("%s lists %s with IsDir %v", step.parent.Path, step.name, got.IsDir)
		}
	}
	// The listed refs, not the ones Mkdir returned, reach the file too.
	deep := s.listed(t, s.listed(t, s.listed(t, s.listed(t, dir, "a"), "b"), "c"), "deep.txt")
	s.readAll(t, deep, []byte("deep"))
}

func (s *suite) testMkdirExisting(t *testing.T, dir drivers.Ref) {
	s.mkdir(t, dir, "twice")
	if _, err := s.d.Mkdir(t.Context(), dir, "twice"); !errors.Is(err, drivers.ErrExist) {
		t.Fatalf("second Mkdir: %v, want ErrExist", err)
	}
	s.put(t, dir, "file", []byte("f"))
	if _, err := s.d.Mkdir(t.Context(), dir, "file"); !errors.Is(err, drivers.ErrExist) {
		t.Fatalf("Mkdir over a file: %v, want ErrExist", err)
	}
	if got := sortedNames(s.list(t, dir)); !slices.Equal(got, []string{"file", "twice"}) {
		t.Fatalf("after the refused Mkdirs the folder lists %q", got)
	}
	s.readAll(t, s.listed(t, dir, "file"), []byte("f"))
}

func (s *suite) testRename(t *testing.T, dir drivers.Ref) {
	f := s.put(t, dir, "old.txt", []byte("content"))
	o, err := s.d.Rename(t.Context(), f, "new name.txt")
	if err != nil {
		t.Fatalf("Rename file: %v", err)
	}
	checkFile(t, "Rename", o, "new name.txt", []byte("content"))
	d := s.mkdir(t, dir, "olddir")
	s.put(t, d, "x.txt", []byte("x"))
	od, err := s.d.Rename(t.Context(), d, "new dir")
	if err != nil || od.Name != "new dir" || !od.IsDir {
		t.Fatalf("Rename folder: %+v, %v", od, err)
	}
	if got := sortedNames(s.list(t, dir)); !slices.Equal(got, []string{"new dir", "new name.txt"}) {
		t.Fatalf("after the renames the folder lists %q", got)
	}
	s.readAll(t, child(dir, o), []byte("content"))
	s.readAll(t, s.listed(t, s.listed(t, dir, "new dir"), "x.txt"), []byte("x"))
}

func (s *suite) testMove(t *testing.T, dir drivers.Ref) {
	src := s.mkdir(t, dir, "src")
	dst := s.mkdir(t, dir, "dst")
	f := s.put(t, src, "f.txt", []byte("moved"))
	sub := s.mkdir(t, src, "sub")
	s.put(t, sub, "g.txt", []byte("g"))
	if !s.f.Move {
		if _, err := s.d.Move(t.Context(), f, dst, "f.txt"); !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Move without Features.Move: %v, want ErrNotSupported", err)
		}
		return
	}
	o, err := s.d.Move(t.Context(), f, dst, "f.txt")
	if err != nil {
		t.Fatalf("Move file: %v", err)
	}
	checkFile(t, "Move", o, "f.txt", []byte("moved"))
	if o, err := s.d.Move(t.Context(), sub, dst, "sub"); err != nil || o.Name != "sub" || !o.IsDir {
		t.Fatalf("Move folder: %+v %v", o, err)
	}
	if left := s.list(t, src); len(left) != 0 {
		t.Fatalf("source still lists %q", sortedNames(left))
	}
	s.readAll(t, s.listed(t, dst, "f.txt"), []byte("moved"))
	s.readAll(t, s.listed(t, s.listed(t, dst, "sub"), "g.txt"), []byte("g"))
}

func (s *suite) testMoveAndRename(t *testing.T, dir drivers.Ref) {
	src := s.mkdir(t, dir, "src")
	dst := s.mkdir(t, dir, "dst")
	f := s.put(t, src, "before.txt", []byte("both"))
	folder := s.mkdir(t, src, "folder before")
	s.put(t, folder, "in.txt", []byte("in"))
	if !s.f.Move {
		if _, err := s.d.Move(t.Context(), f, dst, "after #1.txt"); !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Move without Features.Move: %v, want ErrNotSupported", err)
		}
		return
	}
	o, err := s.d.Move(t.Context(), f, dst, "after #1.txt")
	if err != nil {
		t.Fatalf("Move+rename file: %v", err)
	}
	checkFile(t, "Move", o, "after #1.txt", []byte("both"))
	if o, err := s.d.Move(t.Context(), folder, dst, "folder after"); err != nil || o.Name != "folder after" || !o.IsDir {
		t.Fatalf("Move+rename folder: %+v %v", o, err)
	}
	if left := s.list(t, src); len(left) != 0 {
		t.Fatalf("source still lists %q", sortedNames(left))
	}
	if got := sortedNames(s.list(t, dst)); !slices.Equal(got, []string{"after #1.txt", "folder after"}) {
		t.Fatalf("destination lists %q", got)
	}
	s.readAll(t, s.listed(t, dst, "after #1.txt"), []byte("both"))
	s.readAll(t, s.listed(t, s.listed(t, dst, "folder after"), "in.txt"), []byte("in"))
}

func (s *suite) testCopy(t *testing.T, dir drivers.Ref) {
	data := random(3000)
	f := s.put(t, dir, "orig.bin", data)
	folder := s.mkdir(t, dir, "folder")
	s.put(t, folder, "in.txt", []byte("in"))
	s.put(t, s.mkdir(t, folder, "deeper"), "deep.txt", []byte("deep"))
	dst := s.mkdir(t, dir, "dst")

	t.Run("File", func(t *testing.T) {
		o, err := s.d.Copy(t.Context(), f, dst, "copy.bin")
		if !s.f.CopyFile {
			if !errors.Is(err, drivers.ErrNotSupported) {
				t.Fatalf("Copy file without Features.CopyFile: %v, want ErrNotSupported", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Copy file: %v", err)
		}
		checkFile(t, "Copy", o, "copy.bin", data)
		s.readAll(t, s.listed(t, dst, "copy.bin"), data)
	})
	t.Run("Folder", func(t *testing.T) {
		o, err := s.d.Copy(t.Context(), folder, dst, "folder copy")
		if !s.f.CopyDir {
			if !errors.Is(err, drivers.ErrNotSupported) {
				t.Fatalf("Copy folder without Features.CopyDir: %v, want ErrNotSupported", err)
			}
			return
		}
		if err != nil || o.Name != "folder copy" || !o.IsDir {
			t.Fatalf("Copy folder: %+v %v", o, err)
		}
		cp := s.listed(t, dst, "folder copy")
		if got := sortedNames(s.list(t, cp)); !slices.Equal(got, []string{"deeper", "in.txt"}) {
			t.Fatalf("copied folder lists %q", got)
		}
		s.readAll(t, s.listed(t, cp, "in.txt"), []byte("in"))
		s.readAll(t, s.listed(t, s.listed(t, cp, "deeper"), "deep.txt"), []byte("deep"))
	})
	t.Run("SourcesIntact", func(t *testing.T) {
		if got := sortedNames(s.list(t, dir)); !slices.Equal(got, []string{"dst", "folder", "orig.bin"}) {
			t.Fatalf("after the copies the folder lists %q", got)
		}
		s.readAll(t, s.listed(t, dir, "orig.bin"), data)
		src := s.listed(t, dir, "folder")
		s.readAll(t, s.listed(t, src, "in.txt"), []byte("in"))
		s.readAll(t, s.listed(t, s.listed(t, src, "deeper"), "deep.txt"), []byte("deep"))
	})
}

func (s *suite) testOverwrite(t *testing.T, dir drivers.Ref) {
	old := s.put(t, dir, "f.txt", []byte("the old, longer content"))
	up := NewUpload([]byte("new"))
	up.Replaces = &old.Object
	o, err := s.d.Put(t.Context(), dir, "f.txt", up)
	if err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	checkFile(t, "Put", o, "f.txt", []byte("new"))
	listed, err := s.d.List(t.Context(), dir)
	if err != nil {
		t.Fatalf("List %s: %v", dir.Path, err)
	}
	if len(listed) != 1 || listed[0].Name != "f.txt" {
		t.Fatalf("after an overwrite the folder lists %+v, want f.txt once", listed)
	}
	checkFile(t, "List", listed[0], "f.txt", []byte("new"))
	s.readAll(t, child(dir, listed[0]), []byte("new"))
	s.readAll(t, child(dir, o), []byte("new"))
}

func (s *suite) testRemove(t *testing.T, dir drivers.Ref) {
	keep := s.put(t, dir, "keep.txt", []byte("keep"))
	tree := s.mkdir(t, dir, "tree")
	sub := s.mkdir(t, tree, "sub")
	s.put(t, sub, "a.txt", []byte("a"))
	f := s.put(t, tree, "b.txt", []byte("b"))
	if err := s.d.Remove(t.Context(), f); err != nil {
		t.Fatalf("Remove file: %v", err)
	}
	if got := sortedNames(s.list(t, tree)); !slices.Equal(got, []string{"sub"}) {
		t.Fatalf("after removing b.txt the folder lists %q", got)
	}
	if err := s.d.Remove(t.Context(), tree); err != nil {
		t.Fatalf("Remove folder: %v", err)
	}
	if got := sortedNames(s.list(t, dir)); !slices.Equal(got, []string{"keep.txt"}) {
		t.Fatalf("after removing the tree the parent lists %q", got)
	}
	for _, gone := range []drivers.Ref{tree, sub} {
		if _, err := s.d.List(t.Context(), gone); !errors.Is(err, drivers.ErrNotFound) {
			t.Errorf("List of removed %s: %v, want ErrNotFound", gone.Path, err)
		}
	}
	s.readAll(t, keep, []byte("keep"))
}

func (s *suite) testRanges(t *testing.T, dir drivers.Ref) {
	c := s.h.ChunkSize
	size := 2*c + 12345
	data := random(size)
	f := s.put(t, dir, "ranges.bin", data)
	for _, r := range []struct {
		name        string
		off, length int64
	}{
		{"start", 0, 1000},
		{"first byte", 0, 1},
		{"middle", size / 2, 4096},
		{"across a chunk boundary", c - 10, 20},
		{"end", size - 777, 777},
		{"last byte", size - 1, 1},
		{"suffix", size - 5000, -1},
		{"from the middle to the end", c + 1, -1},
	} {
		t.Run(r.name, func(t *testing.T) {
			end := size
			if r.length >= 0 {
				end = r.off + r.length
			}
			got := s.read(t, f, r.off, r.length)
			if !bytes.Equal(got, data[r.off:end]) {
				t.Fatalf("[%d,%d): got %d bytes, not the %d right ones", r.off, end, len(got), end-r.off)
			}
		})
	}
}

func (s *suite) testNotFound(t *testing.T, dir drivers.Ref) {
	gone := s.put(t, dir, "gone.txt", []byte("x"))
	goneDir := s.mkdir(t, dir, "gonedir")
	other := s.mkdir(t, dir, "other")
	for _, r := range []drivers.Ref{gone, goneDir} {
		if err := s.d.Remove(t.Context(), r); err != nil {
			t.Fatalf("Remove %s: %v", r.Path, err)
		}
	}
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, drivers.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	check("Remove of a missing file", s.d.Remove(ctx, gone))
	check("Remove of a missing folder", s.d.Remove(ctx, goneDir))
	_, err := s.d.List(ctx, goneDir)
	check("List of a missing folder", err)
	_, err = s.tryRead(ctx, gone, 0, -1)
	check("reading a missing file", err)
	_, err = s.d.Rename(ctx, gone, "renamed")
	check("Rename of a missing file", err)
	if s.f.Move {
		_, err = s.d.Move(ctx, gone, other, "moved")
		check("Move of a missing file", err)
	}
	if s.f.CopyFile {
		_, err = s.d.Copy(ctx, gone, other, "copied")
		check("Copy of a missing file", err)
	}
	if left := s.list(t, other); len(left) != 0 {
		t.Fatalf("failed calls left %q behind", sortedNames(left))
	}
	if got := sortedNames(s.list(t, dir)); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("the folder lists %q", got)
	}
}

func (s *suite) testPaging(t *testing.T, dir drivers.Ref) {
	// Three pages: the first, one reached by a cursor, and a short last one.
	n := max(2*s.h.PageSize+1, 25)
	for i := range n {
		s.put(t, dir, fmt.Sprintf("entry-%04d.txt", i), []byte(strconv.Itoa(i)))
	}
	listed := s.list(t, dir) // fails on an entry listed twice
	if len(listed) != n {
		t.Fatalf("listed %d entries, want %d", len(listed), n)
	}
	for i := range n {
		name := fmt.Sprintf("entry-%04d.txt", i)
		o, ok := listed[name]
		if !ok {
			t.Fatalf("%s missing from the listing", name)
		}
		checkFile(t, "List", o, name, []byte(strconv.Itoa(i)))
	}
}

// byPath is a folder Ref as the bridge makes one for a driver that lists
// by path: the path alone, no ID.
func byPath(p string) drivers.Ref {
	return drivers.Ref{Path: p, Object: drivers.Object{Name: path.Base(p), IsDir: true}}
}

// testListsByPath holds a driver that declares Features.ListsByPath to
// it: a folder is listed by its path alone, a path that is not a folder
// fails with ErrNotFound (an empty listing would show folders that do not
// exist), and every method takes a folder Ref without an ID.
func (s *suite) testListsByPath(t *testing.T, dir drivers.Ref) {
	if !s.f.ListsByPath {
		t.Log("the driver does not declare ListsByPath; the bridge lists each ancestor for IDs")
		return
	}
	ctx := t.Context()
	a := s.mkdir(t, dir, "a")
	b := s.mkdir(t, a, "b")
	s.put(t, b, "in-b.txt", []byte("b"))
	s.mkdir(t, dir, "empty")
	s.put(t, dir, "file.txt", []byte("file"))
	// A folder holding only a file of its own name looks, listed, like
	// what some providers answer for a file's path.
	same := s.mkdir(t, dir, "same")
	s.put(t, same, "same", []byte("same"))

	names := func(objs []drivers.Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.Name)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		path string
		want []string
	}{
		{b.Path, []string{"in-b.txt"}},
		{path.Join(dir.Path, "empty"), nil},
		{same.Path, []string{"same"}},
		{a.Path, []string{"b"}},
	} {
		objs, err := s.d.List(ctx, byPath(c.path))
		if err != nil {
			t.Fatalf("List %s by path: %v", c.path, err)
		}
		if got := names(objs); !slices.Equal(got, c.want) {
			t.Fatalf("List %s by path: %q, want %q", c.path, got, c.want)
		}
	}
	for _, p := range []string{"missing", "file.txt", "a/missing", "file.txt/below", "same/same"} {
		full := path.Join(dir.Path, p)
		if objs, err := s.d.List(ctx, byPath(full)); !errors.Is(err, drivers.ErrNotFound) {
			t.Errorf("List %s by path: %d entries, %v; want ErrNotFound (not a folder)", full, len(objs), err)
		}
	}

	// The other methods, given a folder by its path.
	put, err := s.d.Put(ctx, byPath(b.Path), "put.txt", NewUpload([]byte("put")))
	if err != nil {
		t.Fatalf("Put into %s by path: %v", b.Path, err)
	}
	checkFile(t, "Put", put, "put.txt", []byte("put"))
	if _, err := s.d.Mkdir(ctx, byPath(b.Path), "made"); err != nil {
		t.Fatalf("Mkdir in %s by path: %v", b.Path, err)
	}
	if got := sortedNames(s.list(t, b)); !slices.Equal(got, []string{"in-b.txt", "made", "put.txt"}) {
		t.Fatalf("%s lists %q after Put and Mkdir by path", b.Path, got)
	}
	renamed, err := s.d.Rename(ctx, byPath(path.Join(b.Path, "made")), "renamed")
	if err != nil {
		t.Fatalf("Rename of %s/made by path: %v", b.Path, err)
	}
	if renamed.Name != "renamed" || !renamed.IsDir {
		t.Fatalf("Rename by path returned %+v", renamed)
	}
	if err := s.d.Remove(ctx, byPath(path.Join(b.Path, "renamed"))); err != nil {
		t.Fatalf("Remove of %s/renamed by path: %v", b.Path, err)
	}
	if s.f.Move {
		if _, err := s.d.Move(ctx, byPath(b.Path), byPath(path.Join(dir.Path, "empty")), "b"); err != nil {
			t.Fatalf("Move of %s into empty, both by path: %v", b.Path, err)
		}
		s.listed(t, s.listed(t, dir, "empty"), "b")
	}
	if got := sortedNames(s.list(t, a)); s.f.Move && len(got) != 0 || !s.f.Move && !slices.Equal(got, []string{"b"}) {
		t.Fatalf("%s lists %q", a.Path, got)
	}
}

func (s *suite) testModTime(t *testing.T, dir drivers.Ref) {
	// Providers keep seconds at best; the bridge needs no more.
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	near := func(got time.Time) bool { return got.Sub(when).Abs() <= time.Second }
	up := NewUpload([]byte("dated"))
	up.ModTime = when
	o, err := s.d.Put(t.Context(), dir, "dated.txt", up)
	if err != nil {
		t.Fatalf("Put with a ModTime: %v", err)
	}
	checkFile(t, "Put", o, "dated.txt", []byte("dated"))
	if s.f.SetModTime {
		if got := s.listed(t, dir, "dated.txt").ModTime; !near(got) {
			t.Errorf("Features.SetModTime, but Put with ModTime %v lists %v", when, got)
		}
	}
	if ms, ok := s.d.(drivers.ModTimeSetter); ok {
		f := s.put(t, dir, "later.txt", []byte("later"))
		o, err := ms.SetModTime(t.Context(), f, when)
		if err != nil {
			t.Fatalf("SetModTime: %v", err)
		}
		if !near(o.ModTime) {
			t.Errorf("SetModTime %v returned %v", when, o.ModTime)
		}
		if got := s.listed(t, dir, "later.txt").ModTime; !near(got) {
			t.Errorf("SetModTime %v, then listed %v", when, got)
		}
	}
}

func (s *suite) testLinks(t *testing.T, dir drivers.Ref) {
	f := s.put(t, dir, "linked.txt", []byte("linked"))
	if !s.f.Links {
		// The bridge reads through Open then; a link must not pretend.
		if _, err := s.d.Link(t.Context(), f); !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Link without Features.Links: %v, want ErrNotSupported", err)
		}
		return
	}
	asked := time.Now()
	l, err := s.d.Link(t.Context(), f)
	if err != nil {
		t.Fatalf("Link: %v", err)
	}
	if l.URL == "" {
		t.Fatal("Link returned no URL")
	}
	if !l.Expires.IsZero() && l.Expires.Before(asked.Add(-time.Hour)) {
		t.Fatalf("Link expires at %v, long before it was asked for (%v)", l.Expires, asked)
	}
	s.readAll(t, f, []byte("linked"))
}

// testLinkAfterRestart reads through a link obtained before the provider
// restarted (and forgot it): the bytes read must be the file's, through a
// fresh link, never the provider's error answer; and the old link itself
// must be recognised as not the file, or still give the file's bytes.
func (s *suite) testLinkAfterRestart(t *testing.T, dir drivers.Ref) {
	if !s.f.Links || s.p == nil {
		return // nothing is served through links, or nothing can restart
	}
	for _, size := range []int64{4, 47, 3000} {
		data := random(size)
		f := s.put(t, dir, fmt.Sprintf("kept-%d.bin", size), data)
		old, err := s.d.Link(t.Context(), f)
		if err != nil {
			t.Fatalf("Link: %v", err)
		}
		s.p.Restart()
		rc, err := s.fetch.Get(t.Context(), old, f.Size, 0, f.Size)
		if err == nil {
			got, rerr := io.ReadAll(rc)
			rc.Close()
			if rerr == nil && !bytes.Equal(got, data) {
				t.Fatalf("a link from before the restart answered %d other bytes (%q...) as the file's", len(got), got[:min(len(got), 40)])
			}
		} else if !errors.Is(err, download.ErrNotTheFile) && !errors.Is(err, drivers.ErrUnavailable) {
			t.Fatalf("the dead link's answer: %v, want ErrNotTheFile", err)
		}
		first := true
		links := func(ctx context.Context, fresh bool) (drivers.Link, error) {
			if first && !fresh {
				first = false
				return old, nil
			}
			return s.d.Link(ctx, f)
		}
		for _, r := range [][2]int64{{0, -1}, {1, 2}} {
			got, err := s.readLinks(t.Context(), f, links, r[0], r[1])
			end := size
			if r[1] >= 0 {
				end = r[0] + r[1]
			}
			if err != nil || !bytes.Equal(got, data[r[0]:end]) {
				t.Fatalf("reading [%d,%d) of %d bytes with a link from before the restart: %d bytes, %v", r[0], end, size, len(got), err)
			}
			first = true
		}
	}
}

func (s *suite) testFileOpener(t *testing.T, dir drivers.Ref) {
	fo, ok := s.d.(drivers.FileOpener)
	if !ok {
		return // optional: nothing to check
	}
	data := random(10000)
	f := s.put(t, dir, "local.bin", data)
	file, err := fo.OpenFile(t.Context(), f)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	defer file.Close()
	got, err := io.ReadAll(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("OpenFile reads %d bytes (%v), want the %d uploaded", len(got), err, len(data))
	}
}

func (s *suite) testQuota(t *testing.T, dir drivers.Ref) {
	q, err := s.d.Quota(t.Context())
	if !s.f.Quota {
		if !errors.Is(err, drivers.ErrNotSupported) {
			t.Fatalf("Quota without Features.Quota: %v, want ErrNotSupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Quota: %v", err)
	}
	// A negative field is unknown; known ones must fit together.
	if q.Total == 0 ||
		(q.Total > 0 && q.Used > q.Total) ||
		(q.Total > 0 && q.Free > q.Total) {
		t.Fatalf("Quota %+v is not sane", q)
	}
}

// DecodeOptions is a drivers.Config.Decode over opts, as the bridge's
// configuration would fill a driver's options from a [mounts.options]
// table (through TOML, so the options' toml tags are what count).
func DecodeOptions(opts map[string]any) func(v any) error {
	return func(v any) error {
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(opts); err != nil {
			return err
		}
		_, err := toml.Decode(buf.String(), v)
		return err
	}
}
