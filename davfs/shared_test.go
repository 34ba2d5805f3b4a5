package davfs

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"bridge/cluster"
	"bridge/cluster/redistest"
	"bridge/drivers"
)

// sharedPair is two bridge instances over one provider account sharing one
// Redis, as behind a load balancer.
func sharedPair(t *testing.T, srv *redistest.Server, d drivers.Driver) (a, b *testEnv) {
	t.Helper()
	prefix := redistest.Prefix(t)
	var envs []*testEnv
	for range 2 {
		r, err := cluster.Open(context.Background(), srv.URL, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		e := newEnv(t, Options{Shared: r}, Mount{Path: "/m", Driver: d})
		t.Cleanup(func() { e.srv.Close() })
		envs = append(envs, e)
	}
	return envs[0], envs[1]
}

func listed(t *testing.T, e *testEnv, dir, name string) bool {
	t.Helper()
	resp := e.do(t, "PROPFIND", dir, nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	return strings.Contains(readBody(t, resp), name)
}

// A folder B has cached shows a file written through A as soon as A's
// PUT is answered, and no longer shows it once A's DELETE is answered:
// invalidation, not the cache's TTL (30 s).
func TestSharedListingInvalidatedBeforeTheWriteIsAnswered(t *testing.T) {
	srv := redistest.Start(t)
	d := newMemDriver(t, allFeatures())
	seed(t, d, "dir", 3)
	a, b := sharedPair(t, srv, d)
	for i := range 20 {
		if listed(t, b, "/m/dir/", "new.txt") {
			t.Fatal("listed before it exists")
		}
		calls := b.srv.ProviderCalls("/m")[OpList]
		if listed(t, b, "/m/dir/", "new.txt"); b.srv.ProviderCalls("/m")[OpList] != calls {
			t.Fatal("B's second PROPFIND was not served from its cache")
		}
		wantStatus(t, a.do(t, "PUT", "/m/dir/new.txt", strings.NewReader("x")), http.StatusCreated)
		if !listed(t, b, "/m/dir/", "new.txt") {
			t.Fatalf("round %d: B's cached listing hides the file A just wrote", i)
		}
		wantStatus(t, a.do(t, "DELETE", "/m/dir/new.txt", nil), http.StatusNoContent)
		if listed(t, b, "/m/dir/", "new.txt") {
			t.Fatalf("round %d: B still lists the file A just deleted", i)
		}
	}
	// A MOVE of the folder through B: A's listings of it and below go.
	listed(t, a, "/m/dir/", "f000.txt")
	wantStatus(t, b.do(t, "MOVE", "/m/dir/", nil, "Destination", "/m/moved/"), http.StatusCreated)
	resp := a.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusNotFound)
}

// A pending empty entry (a provider without empty files) made through A
// is listed and readable through B, and B's content PUT replaces it.
func TestSharedPendingEntries(t *testing.T) {
	srv := redistest.Start(t)
	f := allFeatures()
	f.EmptyFiles = false
	d := newMemDriver(t, f)
	a, b := sharedPair(t, srv, d)
	wantStatus(t, a.do(t, "PUT", "/m/New Text Document.txt", strings.NewReader("")), http.StatusCreated)
	if !listed(t, b, "/m/", "New%20Text%20Document.txt") {
		t.Fatal("B does not list A's pending entry")
	}
	wantStatus(t, b.do(t, "GET", "/m/New Text Document.txt", nil), http.StatusOK)
	wantStatus(t, b.do(t, "PUT", "/m/New Text Document.txt", strings.NewReader("typed")), http.StatusCreated)
	if got, ok := d.file("/New Text Document.txt"); !ok || string(got) != "typed" {
		t.Fatalf("provider has %q %v", got, ok)
	}
	// Pending inside a folder moved through B follows it for A.
	wantStatus(t, a.do(t, "MKCOL", "/m/f/", nil), http.StatusCreated)
	wantStatus(t, a.do(t, "PUT", "/m/f/empty.txt", strings.NewReader("")), http.StatusCreated)
	wantStatus(t, b.do(t, "MOVE", "/m/f/", nil, "Destination", "/m/g/"), http.StatusCreated)
	if !listed(t, a, "/m/g/", "empty.txt") {
		t.Fatal("the pending entry did not follow its folder")
	}
	wantStatus(t, a.do(t, "DELETE", "/m/g/empty.txt", nil), http.StatusNoContent)
	if listed(t, b, "/m/g/", "empty.txt") {
		t.Fatal("B lists a pending entry A deleted")
	}
	if n := b.srv.ProviderCalls("/m")[OpPut] + a.srv.ProviderCalls("/m")[OpPut]; n != 1 {
		t.Fatalf("%d uploads, want 1 (the empty ones stay with the bridge)", n)
	}
}

// With Redis gone, what needs it answers 503, never a local guess.
func TestSharedStateDownAnswers503(t *testing.T) {
	srv := redistest.Start(t)
	f := allFeatures()
	f.EmptyFiles = false
	d := newMemDriver(t, f)
	seed(t, d, "dir", 1)
	a, _ := sharedPair(t, srv, d)
	srv.Stop()
	wantStatus(t, a.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1"), http.StatusServiceUnavailable)
	wantStatus(t, a.do(t, "PUT", "/m/empty.txt", strings.NewReader("")), http.StatusServiceUnavailable)
	// A write refused because the shared holds cannot be taken: the
	// kind's words only, never Redis's error (which names its socket).
	resp := a.do(t, "PUT", "/m/dir/f000.txt", strings.NewReader("x"))
	wantStatus(t, resp, http.StatusServiceUnavailable)
	if body := readBody(t, resp); body != "503 Service Unavailable: shared state unavailable\n" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("body %q, Retry-After %q", body, resp.Header.Get("Retry-After"))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.srv.pending.removeTree(a.srv.mounts["/m"], "/dir")
			if !errors.Is(err, drivers.ErrStateUnavailable) {
				t.Errorf("removeTree: %v", err)
			}
		}()
	}
	wg.Wait()
}

// overlapDetector is a provider that notices two uploads of one name at
// once (which a real one answers with "name exists", or a second file).
type overlapDetector struct {
	*memDriver
	mu       sync.Mutex
	inFlight map[string]int
	overlaps int
}

func (o *overlapDetector) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	o.mu.Lock()
	o.inFlight[name]++
	if o.inFlight[name] > 1 {
		o.overlaps++
	}
	o.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	defer func() {
		o.mu.Lock()
		o.inFlight[name]--
		o.mu.Unlock()
	}()
	return o.memDriver.Put(ctx, parent, name, up)
}

// Writes of one path through two instances take turns, as through one.
func TestSharedWritesOfOnePathTakeTurns(t *testing.T) {
	srv := redistest.Start(t)
	d := &overlapDetector{memDriver: newMemDriver(t, allFeatures()), inFlight: map[string]int{}}
	a, b := sharedPair(t, srv, d)
	var wg sync.WaitGroup
	for i := range 16 {
		e := a
		if i%2 == 1 {
			e = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", e.http.URL+"/m/same.txt", strings.NewReader(strings.Repeat("x", i)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
				t.Errorf("PUT %d: %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if d.overlaps != 0 {
		t.Fatalf("%d uploads of one path overlapped across two instances", d.overlaps)
	}
}

// A mount path may hold ":"; its invalidations still name the folder.
func TestSharedInvalidationOfAMountWithAColon(t *testing.T) {
	c := newListCache(16, time.Minute)
	c.add("/a:b", "/x:y", newListing(nil))
	c.add("/a:b", "/other", newListing(nil))
	inv := &invalidator{self: "me", cache: c}
	if sender, id, ok := inv.apply("other-instance 7 1 /a:b:/x:y"); !ok || sender != "other-instance" || id != "7" {
		t.Fatalf("apply: %q %q %v", sender, id, ok)
	}
	if _, ok := c.get("/a:b", "/x:y"); ok {
		t.Fatal("the folder named by the message is still cached")
	}
	if _, ok := c.get("/a:b", "/other"); !ok {
		t.Fatal("another folder was dropped")
	}
}
