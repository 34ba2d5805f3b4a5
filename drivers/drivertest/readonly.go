package drivertest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"bridge/drivers"
	"bridge/drivers/download"
)

// ReadOnlyHarness describes a driver over content it cannot change (a
// share link): the suite checks that it shows Tree exactly and refuses
// every write.
type ReadOnlyHarness struct {
	// NewDriver returns a driver whose root shows exactly Tree, behind a
	// fake whose fault layer is set to p.Faults, and that fake.
	NewDriver func(t *testing.T, p Profile) (drivers.Driver, Provider)
	// Tree is the content, by slash path below the root ("a/b.txt");
	// folders are implied. One folder should hold more entries than a
	// listing page, and one file several MiB, so paging and ranged reads
	// are exercised.
	Tree map[string][]byte
	// HTTPClient fetches links; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// RunReadOnlyTests runs the read-only cases once per profile: features,
// listing of every folder (paging included), ranged reads of every file,
// not-found, and refusal of every write with ErrPermission.
func RunReadOnlyTests(t *testing.T, h ReadOnlyHarness) {
	if h.NewDriver == nil || len(h.Tree) == 0 {
		t.Fatal("drivertest: ReadOnlyHarness needs NewDriver and a Tree")
	}
	if h.HTTPClient == nil {
		h.HTTPClient = http.DefaultClient
	}
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			d, prov := h.NewDriver(t, p)
			s := &suite{d: d, f: d.Features(), p: prov, fetch: &download.Fetcher{Client: h.HTTPClient}}
			if lc, ok := d.(drivers.LinkChecker); ok {
				s.fetch.Check = lc.CheckDownload
			}
			cases := []struct {
				name string
				fn   func(t *testing.T, s *suite, tree map[string][]byte)
			}{
				{"Features", testReadOnlyFeatures},
				{"Listing", testReadOnlyListing},
				{"Ranges", testReadOnlyRanges},
				{"NotFound", testReadOnlyNotFound},
				{"Refusals", testReadOnlyRefusals},
			}
			for _, c := range cases {
				if prov != nil && p.Step > 0 {
					prov.Advance(p.Step)
					prov.Restart()
				}
				t.Run(c.name, func(t *testing.T) { c.fn(t, s, h.Tree) })
			}
		})
	}
}

func testReadOnlyFeatures(t *testing.T, s *suite, _ map[string][]byte) {
	if s.f.ReadOnly == "" {
		t.Fatalf("Features %+v: a read-only driver says why in ReadOnly", s.f)
	}
	if s.f.CopyFile || s.f.CopyDir || s.f.Move || s.f.SetModTime {
		t.Fatalf("Features %+v declare writes", s.f)
	}
}

// walk lists every folder of the tree from the root, checking each
// listing against the tree, and returns the files found.
func (s *suite) walk(t *testing.T, tree map[string][]byte) map[string]drivers.Ref {
	t.Helper()
	want := map[string]map[string]int64{"/": {}} // folder ("/", "/a/") -> name -> size (-1: folder)
	for p, data := range tree {
		segs := strings.Split(p, "/")
		key := "/"
		for i, seg := range segs {
			if want[key] == nil {
				want[key] = map[string]int64{}
			}
			if i == len(segs)-1 {
				want[key][seg] = int64(len(data))
				break
			}
			want[key][seg] = -1
			key += seg + "/"
		}
	}
	root, err := s.d.Root(t.Context())
	if err != nil || !root.IsDir {
		t.Fatalf("Root: %+v, %v", root, err)
	}
	files := map[string]drivers.Ref{}
	var visit func(dir drivers.Ref, key string)
	visit = func(dir drivers.Ref, key string) {
		objs, err := s.d.List(t.Context(), dir)
		if err != nil {
			t.Fatalf("List %s: %v", dir.Path, err)
		}
		got := map[string]int64{}
		for _, o := range objs {
			if _, dup := got[o.Name]; dup {
				t.Fatalf("List %s: %q twice (paging)", dir.Path, o.Name)
			}
			if o.ID == "" {
				t.Fatalf("List %s: %q has no ID", dir.Path, o.Name)
			}
			if o.IsDir {
				got[o.Name] = -1
			} else {
				got[o.Name] = o.Size
			}
		}
		if fmt.Sprint(sortedPairs(got)) != fmt.Sprint(sortedPairs(want[key])) {
			t.Fatalf("List %s = %v, want %v", dir.Path, sortedPairs(got), sortedPairs(want[key]))
		}
		for _, o := range objs {
			ref := drivers.Ref{Path: path.Join(dir.Path, o.Name), Object: o}
			if o.IsDir {
				visit(ref, key+o.Name+"/")
			} else {
				files[strings.TrimPrefix(ref.Path, "/")] = ref
			}
		}
	}
	visit(drivers.Ref{Path: "/", Object: root}, "/")
	return files
}

func sortedPairs(m map[string]int64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(out)
	return out
}

func testReadOnlyListing(t *testing.T, s *suite, tree map[string][]byte) {
	if files := s.walk(t, tree); len(files) != len(tree) {
		t.Fatalf("found %d files, want %d", len(files), len(tree))
	}
}

func testReadOnlyRanges(t *testing.T, s *suite, tree map[string][]byte) {
	files := s.walk(t, tree)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data, f := tree[n], files[n]
		size := int64(len(data))
		ranges := [][2]int64{{0, -1}}
		if size > 2 {
			ranges = append(ranges, [2]int64{0, 1}, [2]int64{size / 2, min(4096, size/2)}, [2]int64{size - 1, 1}, [2]int64{size - size/3, -1})
		}
		for _, r := range ranges {
			end := size
			if r[1] >= 0 {
				end = r[0] + r[1]
			}
			got, err := s.tryRead(t.Context(), f, r[0], r[1])
			if err != nil || !bytes.Equal(got, data[r[0]:end]) {
				t.Fatalf("%s [%d,%d): %v, %d bytes, not the right ones", n, r[0], end, err, len(got))
			}
		}
	}
}

func testReadOnlyNotFound(t *testing.T, s *suite, tree map[string][]byte) {
	root, err := s.d.Root(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	missing := drivers.Ref{Path: "/no-such-folder", Object: drivers.Object{Name: "no-such-folder", IsDir: true}}
	if _, err := s.d.List(t.Context(), missing); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("List of a missing folder: %v, want ErrNotFound", err)
	}
	objs, err := s.d.List(t.Context(), drivers.Ref{Path: "/", Object: root})
	if err != nil || slices.ContainsFunc(objs, func(o drivers.Object) bool { return o.Name == "no-such-folder" }) {
		t.Fatalf("the root: %v", err)
	}
}

func testReadOnlyRefusals(t *testing.T, s *suite, tree map[string][]byte) {
	files := s.walk(t, tree)
	var file drivers.Ref
	for _, f := range files {
		file = f
		break
	}
	root, err := s.d.Root(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := drivers.Ref{Path: "/", Object: root}
	ctx := t.Context()
	for name, try := range map[string]func() error{
		"Put":    func() error { _, err := s.d.Put(ctx, dir, "new.txt", NewUpload([]byte("x"))); return err },
		"Mkdir":  func() error { _, err := s.d.Mkdir(ctx, dir, "new"); return err },
		"Rename": func() error { _, err := s.d.Rename(ctx, file, "renamed"); return err },
		"Move":   func() error { _, err := s.d.Move(ctx, file, dir, "moved"); return err },
		"Copy":   func() error { _, err := s.d.Copy(ctx, file, dir, "copied"); return err },
		"Remove": func() error { return s.d.Remove(ctx, file) },
	} {
		if err := try(); !errors.Is(err, drivers.ErrPermission) {
			t.Errorf("%s on a read-only driver: %v, want ErrPermission", name, err)
		}
	}
	if after := s.walk(t, tree); len(after) != len(tree) {
		t.Fatalf("after the refused writes %d files, want %d", len(after), len(tree))
	}
}
