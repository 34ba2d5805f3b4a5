package deadprops

import (
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"bridge/cluster"
	"bridge/cluster/redistest"
)

// A backend opens the stores of one test: each call of open is a new
// handle over the same data (a restart of the bridge, or another
// instance), closed by close or at the end of the test.
type backend struct {
	name string
	make func(t *testing.T) (open func() (s Props, close func()))
}

var backends = []backend{
	{"bbolt", func(t *testing.T) func() (Props, func()) {
		file := filepath.Join(t.TempDir(), "props.db")
		return func() (Props, func()) {
			s, err := Open(file)
			if err != nil {
				t.Fatal(err)
			}
			return s, closer(t, s.Close)
		}
	}},
	{"redis", func(t *testing.T) func() (Props, func()) {
		srv := redistest.Start(t)
		prefix := redistest.Prefix(t)
		return func() (Props, func()) {
			r, err := cluster.Open(redistest.Context(t), srv.URL, prefix)
			if err != nil {
				t.Fatal(err)
			}
			return OpenRedis(r), closer(t, r.Close)
		}
	}},
}

// closer closes once, now or at the end of the test.
func closer(t *testing.T, close func() error) func() {
	var once sync.Once
	c := func() { once.Do(func() { close() }) }
	t.Cleanup(c)
	return c
}

// eachBackend runs test against every store.
func eachBackend(t *testing.T, test func(t *testing.T, open func() (Props, func()))) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.make(t)) })
	}
}

// openOne is the only store of a test.
func openOne(t *testing.T, open func() (Props, func())) Props {
	s, _ := open()
	return s
}

// withLimits is WithLimits of either store.
func withLimits(t *testing.T, p Props, l Limits) Props {
	switch s := p.(type) {
	case *Store:
		return s.WithLimits(l)
	case *RedisStore:
		return s.WithLimits(l)
	}
	t.Fatalf("no WithLimits on %T", p)
	return nil
}

func prop(local, val string) webdav.Property {
	return webdav.Property{XMLName: xml.Name{Space: "urn:t", Local: local}, InnerXML: []byte(val)}
}

func set(t *testing.T, s Props, path string, props ...webdav.Property) {
	t.Helper()
	if err := s.Patch(path, []webdav.Proppatch{{Props: props}}); err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, s Props, path, local string) string {
	t.Helper()
	m, err := s.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(m[xml.Name{Space: "urn:t", Local: local}].InnerXML)
}

func TestPropsFollowMoveCopyDelete(t *testing.T) { eachBackend(t, testPropsFollowMoveCopyDelete) }

func testPropsFollowMoveCopyDelete(t *testing.T, open func() (Props, func())) {
	s, closeS := open()
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
	closeS()
	s, _ = open() // properties survive a restart
	if value(t, s, "/m/c", "p") != "dir" {
		t.Fatal("lost across reopen")
	}
}

func TestModTimesOfAFolder(t *testing.T) { eachBackend(t, testModTimesOfAFolder) }

func testModTimesOfAFolder(t *testing.T, open func() (Props, func())) {
	s := openOne(t, open)
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

func TestLimitsRefuseAWholePatch(t *testing.T) { eachBackend(t, testLimitsRefuseAWholePatch) }

func testLimitsRefuseAWholePatch(t *testing.T, open func() (Props, func())) {
	s := openOne(t, open)
	if s.Limits() != DefaultLimits {
		t.Fatalf("limits of a new store: %+v", s.Limits())
	}
	l := withLimits(t, s, Limits{ResourceBytes: 100, ResourceProps: 3})
	if got := l.Limits(); got.RequestBytes != DefaultLimits.RequestBytes || got.ResourceBytes != 100 {
		t.Fatalf("zero fields are not the defaults: %+v", got)
	}
	set(t, l, "/m/f", prop("a", strings.Repeat("x", 40)))
	// Over the bytes: refused whole, the earlier property intact.
	err := l.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop("b", "small"), prop("c", strings.Repeat("y", 60))}}})
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
	tight := withLimits(t, s, Limits{ResourceBytes: 10, ResourceProps: 1})
	if err := tight.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop("b", "longer value")}}}); !errors.Is(err, ErrFull) {
		t.Fatalf("growing over lowered limits: %v", err)
	}
	if err := tight.Patch("/m/f", []webdav.Proppatch{{Remove: true, Props: []webdav.Property{prop("c", "")}}}); err != nil {
		t.Fatalf("shrinking over lowered limits: %v", err)
	}
}

func TestPatchedTimesFollowTheFile(t *testing.T) { eachBackend(t, testPatchedTimesFollowTheFile) }

func testPatchedTimesFollowTheFile(t *testing.T, open func() (Props, func())) {
	s := openOne(t, open)
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

func TestAnyIn(t *testing.T) { eachBackend(t, testAnyIn) }

func testAnyIn(t *testing.T, open func() (Props, func())) {
	s := openOne(t, open)
	set(t, s, "/m/a/f", prop("p", "1"))
	if err := s.SetModTime("/n/x", time.Unix(1, 0), 1); err != nil { // not a property
		t.Fatal(err)
	}
	want := map[string]bool{"/": true, "/m": true, "/m/a": true, "/m/a/f": true,
		"/m/a/f/g": false, "/m/ab": false, "/m/a-b": false, "/n": false, "/n/x": false}
	for p, w := range want {
		if got, err := s.AnyIn(p); err != nil || got != w {
			t.Fatalf("AnyIn(%s) = %v, %v; want %v", p, got, err, w)
		}
	}
	set(t, s, "/", prop("root", "r"))
	if err := s.Delete("/m/a/f"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AnyIn("/m"); got {
		t.Fatal("AnyIn(/m) after its only property went")
	}
	if got, _ := s.AnyIn("/"); !got {
		t.Fatal("AnyIn(/) misses the root's own property")
	}
}

// dump is everything a store holds, as "kind path" → value, for comparing
// stores.
func dump(t *testing.T, p Props) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := p.(Exporter).Export(func(rec Record) error {
		kind, v, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		if rec.Props != nil { // the JSON's order is a map's
			m, err := decode(v)
			if err != nil {
				return err
			}
			var list []string
			for n, p := range m {
				list = append(list, n.Space+" "+n.Local+" "+p.Lang+" "+string(p.InnerXML))
			}
			slices.Sort(list)
			v = []byte(strings.Join(list, "\n"))
		}
		key := kind + " " + rec.Path
		if _, dup := out[key]; dup {
			return fmt.Errorf("%s exported twice", key)
		}
		out[key] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// paths is the sorted paths of a dump's records of kind.
func paths(d map[string]string, kind string) []string {
	var out []string
	for k := range d {
		if p, ok := strings.CutPrefix(k, kind+" "); ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Names with glob characters, and siblings that sort between a folder and
// its children ("-" and "." come before "/"), must not leak into a
// subtree.
func TestAwkwardNames(t *testing.T) { eachBackend(t, testAwkwardNames) }

func testAwkwardNames(t *testing.T, open func() (Props, func())) {
	s := openOne(t, open)
	names := []string{"/m/a*", "/m/a*/x", "/m/a*/[y]/z", "/m/a*b", "/m/a", "/m/a-b/c", "/m/a.b",
		"/m/a0", "/m/a?/q", "/m/a\\/r", "/m/a*:s/t", "/m/é ü/v"}
	for i, p := range names {
		set(t, s, p, prop("p", p))
		if err := s.SetModTime(p, time.Unix(int64(i), 0), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Move("/m/a*", "/o/[moved]"); err != nil {
		t.Fatal(err)
	}
	d := dump(t, s)
	want := []string{"/m/a", "/m/a*:s/t", "/m/a*b", "/m/a-b/c", "/m/a.b", "/m/a0", "/m/a?/q", "/m/a\\/r",
		"/m/é ü/v", "/o/[moved]", "/o/[moved]/[y]/z", "/o/[moved]/x"}
	for _, kind := range []string{kindProps, kindTimes} {
		if got := paths(d, kind); !slices.Equal(got, want) {
			t.Fatalf("%s after Move:\n got %q\nwant %q", kind, got, want)
		}
	}
	if value(t, s, "/o/[moved]/[y]/z", "p") != "/m/a*/[y]/z" {
		t.Fatal("a moved record lost its value")
	}
	if mt, _ := s.ModTimes("/m/a?"); len(mt) != 1 || mt["q"].Size != 8 {
		t.Fatalf("ModTimes(/m/a?) = %v", mt)
	}
	if err := s.Delete("/m/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Copy("/m/a?", "/m/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("/m/a?"); err != nil {
		t.Fatal(err)
	}
	want = []string{"/m/a*:s/t", "/m/a*b", "/m/a-b/c", "/m/a.b", "/m/a/q", "/m/a0", "/m/a\\/r",
		"/m/é ü/v", "/o/[moved]", "/o/[moved]/[y]/z", "/o/[moved]/x"}
	if got := paths(dump(t, s), kindProps); !slices.Equal(got, want) {
		t.Fatalf("after Delete and Copy:\n got %q\nwant %q", got, want)
	}
	if err := s.Delete("/"); err != nil {
		t.Fatal(err)
	}
	if d := dump(t, s); len(d) != 0 {
		t.Fatalf("Delete(/) left %v", d)
	}
}
