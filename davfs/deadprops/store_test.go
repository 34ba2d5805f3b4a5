package deadprops

import (
	"encoding/xml"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/webdav"
)

func prop(local, val string) webdav.Property {
	return webdav.Property{XMLName: xml.Name{Space: "urn:t", Local: local}, InnerXML: []byte(val)}
}

func set(t *testing.T, s *Store, path string, props ...webdav.Property) {
	t.Helper()
	if err := s.Patch(path, []webdav.Proppatch{{Props: props}}); err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, s *Store, path, local string) string {
	t.Helper()
	m, err := s.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(m[xml.Name{Space: "urn:t", Local: local}].InnerXML)
}

func TestPropsFollowMoveCopyDelete(t *testing.T) {
	file := filepath.Join(t.TempDir(), "props.db")
	s, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	set(t, s, "/m/a", prop("p", "dir"))
	set(t, s, "/m/a/f", prop("p", "file"), prop("q", "2"))
	set(t, s, "/m/ab", prop("p", "sibling"))
	if err := s.Patch("/m/a/f", []webdav.Proppatch{{Remove: true, Props: []webdav.Property{prop("q", "")}}}); err != nil {
		t.Fatal(err)
	}
	if v := value(t, s, "/m/a/f", "q"); v != "" {
		t.Fatalf("removed property still there: %q", v)
	}
	if err := s.Copy("/m/a", "/m/c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Move("/m/a", "/m/b"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/m/b": "dir", "/m/b/f": "file", "/m/c/f": "file", "/m/a/f": "", "/m/ab": "sibling"} {
		if got := value(t, s, path, "p"); got != want {
			t.Fatalf("%s: %q, want %q", path, got, want)
		}
	}
	if err := s.Delete("/m/b"); err != nil {
		t.Fatal(err)
	}
	if value(t, s, "/m/b/f", "p") != "" || value(t, s, "/m/ab", "p") != "sibling" {
		t.Fatal("delete took the wrong keys")
	}
	s.Close()
	s, err = Open(file) // properties survive a restart
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if value(t, s, "/m/c", "p") != "dir" {
		t.Fatal("lost across reopen")
	}
}

func TestModTimesOfAFolder(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Unix(1700000000, 5)
	for p, size := range map[string]int64{"/m/a": 1, "/m/b": 2, "/m/sub/c": 3, "/m/sub/deep/d": 4, "/m/z": 5, "/mm/x": 6} {
		if err := s.SetModTime(p, at.Add(time.Duration(size)*time.Second), size); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ModTimes("/m")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["a"].Size != 1 || got["b"].Size != 2 || got["z"].Size != 5 || !got["z"].Time.Equal(at.Add(5*time.Second)) {
		t.Fatalf("ModTimes(/m) = %v, want a, b and z only", got)
	}
	if err := s.Move("/m/sub", "/m/moved"); err != nil {
		t.Fatal(err)
	}
	if mt, ok, _ := s.ModTimeAt("/m/moved/deep/d"); !ok || mt.Size != 4 {
		t.Fatalf("after Move: %v %v", mt, ok)
	}
	if err := s.CopyProps("/m/a", "/o/a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.ModTimeAt("/o/a"); ok {
		t.Fatal("CopyProps copied a kept time")
	}
	if err := s.Delete("/m"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ModTimes("/m/moved/deep"); len(got) != 0 {
		t.Fatalf("after Delete: %v", got)
	}
}

func TestLimitsRefuseAWholePatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Limits() != DefaultLimits {
		t.Fatalf("limits of a new store: %+v", s.Limits())
	}
	l := s.WithLimits(Limits{ResourceBytes: 100, ResourceProps: 3})
	if got := l.Limits(); got.RequestBytes != DefaultLimits.RequestBytes || got.ResourceBytes != 100 {
		t.Fatalf("zero fields are not the defaults: %+v", got)
	}
	set(t, l, "/m/f", prop("a", strings.Repeat("x", 40)))
	// Over the bytes: refused whole, the earlier property intact.
	err = l.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop("b", "small"), prop("c", strings.Repeat("y", 60))}}})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("over the bytes: %v", err)
	}
	if value(t, l, "/m/f", "b") != "" || value(t, l, "/m/f", "a") == "" {
		t.Fatal("a refused patch changed something")
	}
	// Over the count.
	set(t, l, "/m/f", prop("b", "1"), prop("c", "2"))
	if err := l.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop("d", "3")}}}); !errors.Is(err, ErrFull) {
		t.Fatalf("over the count: %v", err)
	}
	// At the limits a value can still be replaced, and properties removed.
	set(t, l, "/m/f", prop("b", "9"))
	if err := l.Patch("/m/f", []webdav.Proppatch{{Remove: true, Props: []webdav.Property{prop("a", "")}}}); err != nil {
		t.Fatal(err)
	}
	// Limits lowered below what a resource holds: it may only shrink.
	tight := s.WithLimits(Limits{ResourceBytes: 10, ResourceProps: 1})
	if err := tight.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop("b", "longer value")}}}); !errors.Is(err, ErrFull) {
		t.Fatalf("growing over lowered limits: %v", err)
	}
	if err := tight.Patch("/m/f", []webdav.Proppatch{{Remove: true, Props: []webdav.Property{prop("c", "")}}}); err != nil {
		t.Fatalf("shrinking over lowered limits: %v", err)
	}
}

func TestPatchedTimesFollowTheFile(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.SetPatchedTime("/m/a/f", at); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.PatchedTime("/m/a/f"); err != nil || !ok || !got.Equal(at) {
		t.Fatalf("PatchedTime: %v %v %v", got, ok, err)
	}
	if err := s.Move("/m/a", "/m/b"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.PatchedTime("/m/a/f"); ok {
		t.Fatal("still at the old path after Move")
	}
	if got, ok, _ := s.PatchedTime("/m/b/f"); !ok || !got.Equal(at) {
		t.Fatal("did not follow Move")
	}
	if err := s.ClearPatchedTime("/m/b/f"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.PatchedTime("/m/b/f"); ok {
		t.Fatal("cleared, still there")
	}
	s.SetPatchedTime("/m/b/g", at)
	s.Delete("/m/b")
	if _, ok, _ := s.PatchedTime("/m/b/g"); ok {
		t.Fatal("outlived Delete")
	}
}
