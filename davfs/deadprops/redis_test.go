package deadprops

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"bridge/cluster"
	"bridge/cluster/redistest"
	"bridge/drivers"
)

// instances opens n RedisStores on separate connection pools over one
// server and prefix: n bridge instances.
func instances(t *testing.T, srv *redistest.Server, n int) []*RedisStore {
	t.Helper()
	prefix := redistest.Prefix(t)
	out := make([]*RedisStore, n)
	for i := range out {
		r, err := cluster.Open(redistest.Context(t), srv.URL, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		out[i] = OpenRedis(r)
	}
	return out
}

func TestInstancesSeeEachOther(t *testing.T) {
	srv := redistest.Start(t)
	in := instances(t, srv, 2)
	a, b := in[0], in[1]

	set(t, a, "/m/d/f", prop("p", "from a"))
	if v := value(t, b, "/m/d/f", "p"); v != "from a" {
		t.Fatalf("b reads %q after a's Patch", v)
	}
	at := time.Unix(1700000000, 42)
	if err := a.SetModTime("/m/d/f", at, 7); err != nil {
		t.Fatal(err)
	}
	if mt, _ := b.ModTimes("/m/d"); !mt["f"].Time.Equal(at) || mt["f"].Size != 7 {
		t.Fatalf("b's ModTimes after a's SetModTime: %v", mt)
	}
	if err := b.SetPatchedTime("/m/d/g", at); err != nil {
		t.Fatal(err)
	}
	if pt, ok, _ := a.PatchedTime("/m/d/g"); !ok || !pt.Equal(at) {
		t.Fatalf("a's PatchedTime after b's: %v %v", pt, ok)
	}

	// A subtree moved through b is where a looks for it, and gone from
	// where it was.
	if err := b.Move("/m/d", "/m/e"); err != nil {
		t.Fatal(err)
	}
	if v := value(t, a, "/m/e/f", "p"); v != "from a" {
		t.Fatalf("a reads %q at the new path", v)
	}
	if mt, ok, _ := a.ModTimeAt("/m/e/f"); !ok || mt.Size != 7 {
		t.Fatalf("a's kept time at the new path: %v %v", mt, ok)
	}
	if _, ok, _ := a.PatchedTime("/m/e/g"); !ok {
		t.Fatal("the patched time did not move for a")
	}
	if any, _ := a.AnyIn("/m/d"); any {
		t.Fatal("a still sees properties at the old path")
	}
	if mt, _ := a.ModTimes("/m/d"); len(mt) != 0 {
		t.Fatalf("a still sees kept times at the old path: %v", mt)
	}
	if err := a.Delete("/m"); err != nil {
		t.Fatal(err)
	}
	if any, _ := b.AnyIn("/"); any {
		t.Fatal("b sees properties after a deleted everything")
	}
}

// Instances patching one resource at once each keep what they set: a
// Patch reads, checks limits and writes, and must not write over a change
// made in between.
func TestConcurrentPatchesLoseNothing(t *testing.T) {
	srv := redistest.Start(t)
	in := instances(t, srv, 2)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		s := in[w%len(in)].WithLimits(Limits{ResourceProps: 1000})
		wg.Go(func() {
			for i := range each {
				p := prop(fmt.Sprintf("w%d-%d", w, i), "v")
				if err := s.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{p}}}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m, err := in[0].Get("/m/f")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != writers*each {
		t.Fatalf("%d properties, want %d", len(m), writers*each)
	}
}

// The limits hold across instances: two of them cannot together take a
// resource over the count each checks.
func TestLimitsHoldAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	in := instances(t, srv, 2)
	const limit = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	full := 0
	for w := range 2 {
		s := in[w].WithLimits(Limits{ResourceProps: limit})
		wg.Go(func() {
			for i := range limit {
				err := s.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop(fmt.Sprintf("w%d-%d", w, i), "v")}}})
				if errors.Is(err, ErrFull) {
					mu.Lock()
					full++
					mu.Unlock()
				} else if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	m, _ := in[1].Get("/m/f")
	if len(m) != limit || full != limit {
		t.Fatalf("%d properties stored and %d patches refused; want %d and %d", len(m), full, limit, limit)
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := instances(t, srv, 1)[0]
	set(t, s, "/m/f", prop("p", "1"))
	srv.Stop()
	at := time.Unix(1, 0)
	calls := map[string]func() error{
		"Get":              func() error { _, err := s.Get("/m/f"); return err },
		"Patch":            func() error { return s.Patch("/m/f", []webdav.Proppatch{{Props: []webdav.Property{prop("q", "2")}}}) },
		"Delete":           func() error { return s.Delete("/m") },
		"Copy":             func() error { return s.Copy("/m", "/n") },
		"Move":             func() error { return s.Move("/m", "/n") },
		"CopyProps":        func() error { return s.CopyProps("/m", "/n") },
		"AnyIn":            func() error { _, err := s.AnyIn("/m"); return err },
		"SetModTime":       func() error { return s.SetModTime("/m/f", at, 1) },
		"ModTimes":         func() error { _, err := s.ModTimes("/m"); return err },
		"ModTimeAt":        func() error { _, _, err := s.ModTimeAt("/m/f"); return err },
		"SetPatchedTime":   func() error { return s.SetPatchedTime("/m/f", at) },
		"PatchedTime":      func() error { _, _, err := s.PatchedTime("/m/f"); return err },
		"ClearPatchedTime": func() error { return s.ClearPatchedTime("/m/f") },
		"Export":           func() error { return s.Export(func(Record) error { return nil }) },
		"Import":           func() error { return s.Import(Record{Path: "/m/g", Patched: &at}) },
	}
	var wg sync.WaitGroup // each call waits out go-redis's retries
	for name, call := range calls {
		wg.Go(func() {
			if err := call(); !errors.Is(err, drivers.ErrStateUnavailable) {
				t.Errorf("%s with Redis stopped: %v, want ErrStateUnavailable", name, err)
			}
		})
	}
	wg.Wait()
}

// The index of folders stays exact: once everything is deleted, no key of
// the store is left behind in Redis.
func TestNoKeysLeftBehind(t *testing.T) {
	srv := redistest.Start(t)
	s := instances(t, srv, 1)[0]
	for _, p := range []string{"/", "/m", "/m/a", "/m/a/b/c", "/n/x"} {
		set(t, s, p, prop("p", p))
		if err := s.SetModTime(p, time.Unix(5, 0), 5); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPatchedTime(p, time.Unix(6, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Copy("/m", "/o"); err != nil {
		t.Fatal(err)
	}
	ctx := redistest.Context(t)
	keys, err := s.r.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, s.r.Key("props")+":") {
			t.Fatalf("key %q outside the store's prefix", k)
		}
	}
	if err := s.Move("/m/a", "/m/z"); err != nil {
		t.Fatal(err)
	}
	if err := s.Patch("/", []webdav.Proppatch{{Remove: true, Props: []webdav.Property{prop("p", "")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearPatchedTime("/"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/n", "/o", "/m"} {
		if err := s.Delete(p); err != nil {
			t.Fatal(err)
		}
	}
	d := dump(t, s)
	if len(d) != 1 || d[kindTimes+" /"] == "" {
		t.Fatalf("left: %v, want the root's kept time only", d)
	}
	if err := s.Delete("/"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.r.Client().DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("%d keys left (%v)", n, err)
	}
}

// A Redis store does what props.db does: the same random operations on
// both leave both with the same records and the same answers.
func TestRedisBehavesAsBbolt(t *testing.T) {
	srv := redistest.Start(t)
	red := instances(t, srv, 2)
	bolt, err := Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	lim := Limits{ResourceProps: 3, ResourceBytes: 40}
	stores := []Props{bolt.WithLimits(lim), red[0].WithLimits(lim), red[1].WithLimits(lim)}

	rnd := rand.New(rand.NewPCG(19, 1))
	segs := []string{"a", "a-b", "a.b", "a0", "a*", "[b]", "c?", `d\e`, "f:g"}
	randPath := func() string {
		if rnd.IntN(20) == 0 {
			return "/"
		}
		p := "/m"
		for range rnd.IntN(4) {
			p += "/" + segs[rnd.IntN(len(segs))]
		}
		return p
	}
	for step := range 600 {
		p, q := randPath(), randPath()
		at := time.Unix(int64(rnd.IntN(1e9)), int64(rnd.IntN(1e9)))
		size := int64(rnd.IntN(100))
		var patches []webdav.Proppatch
		for range 1 + rnd.IntN(2) {
			patches = append(patches, webdav.Proppatch{Remove: rnd.IntN(3) == 0,
				Props: []webdav.Property{prop(segs[rnd.IntN(4)], strings.Repeat("v", rnd.IntN(20)))}})
		}
		ops := []struct {
			name string
			do   func(Props) error
		}{
			{"Patch " + p, func(s Props) error { return s.Patch(p, patches) }},
			{"SetModTime " + p, func(s Props) error { return s.SetModTime(p, at, size) }},
			{"SetPatchedTime " + p, func(s Props) error { return s.SetPatchedTime(p, at) }},
			{"ClearPatchedTime " + p, func(s Props) error { return s.ClearPatchedTime(p) }},
			{"Delete " + p, func(s Props) error { return s.Delete(p) }},
			{"Copy " + p + " " + q, func(s Props) error { return s.Copy(p, q) }},
			{"Move " + p + " " + q, func(s Props) error { return s.Move(p, q) }},
			{"CopyProps " + p + " " + q, func(s Props) error { return s.CopyProps(p, q) }},
		}
		op := ops[[]int{0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7}[rnd.IntN(11)]]
		// The instances take turns writing; the other one reads.
		writer, reader := stores[1+step%2], stores[2-step%2]
		errB, errR := op.do(stores[0]), op.do(writer)
		if errors.Is(errB, ErrFull) != errors.Is(errR, ErrFull) || (errB == nil) != (errR == nil) {
			t.Fatalf("step %d, %s: bbolt %v, redis %v", step, op.name, errB, errR)
		}
		if want, got := dump(t, stores[0]), dump(t, reader); !reflect.DeepEqual(want, got) {
			t.Fatalf("step %d, %s:\nbbolt %v\nredis %v", step, op.name, want, got)
		}
		for _, path := range []string{p, q, "/m", "/"} {
			compareReads(t, step, path, stores[0], reader)
		}
	}
}

// compareReads checks that two stores answer the reads of path alike.
func compareReads(t *testing.T, step int, path string, a, b Props) {
	t.Helper()
	type answer struct {
		Props   string
		Any     bool
		Times   map[string][2]int64
		At      [2]int64
		AtOK    bool
		Patched int64
		PatchOK bool
	}
	read := func(s Props) answer {
		var ans answer
		m, err := s.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		var list []string
		for n, p := range m {
			list = append(list, n.Local+"="+string(p.InnerXML))
		}
		slices.Sort(list)
		ans.Props = strings.Join(list, " ")
		if ans.Any, err = s.AnyIn(path); err != nil {
			t.Fatal(err)
		}
		times, err := s.ModTimes(path)
		if err != nil {
			t.Fatal(err)
		}
		ans.Times = map[string][2]int64{}
		for n, mt := range times {
			ans.Times[n] = [2]int64{mt.Time.UnixNano(), mt.Size}
		}
		mt, ok, err := s.ModTimeAt(path)
		if err != nil {
			t.Fatal(err)
		}
		ans.At, ans.AtOK = [2]int64{mt.Time.UnixNano(), mt.Size}, ok
		pt, ok, err := s.PatchedTime(path)
		if err != nil {
			t.Fatal(err)
		}
		ans.Patched, ans.PatchOK = pt.UnixNano(), ok
		return ans
	}
	x, y := read(a), read(b)
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("step %d, reads of %s:\nbbolt %+v\nredis %+v", step, path, x, y)
	}
}
