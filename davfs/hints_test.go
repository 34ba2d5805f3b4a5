package davfs

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// deepTree makes /a/b/c/in-c.txt on a driver that needs IDs and returns
// the env and the driver, with /m/a/b/c/ listed once (cold: each ancestor
// in turn).
func deepTree(t *testing.T) (*testEnv, *memDriver) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	d.mu.Lock()
	c := d.add(d.add(d.add("root", "a", true, nil).id, "b", true, nil).id, "c", true, nil)
	d.add(c.id, "in-c.txt", false, []byte("c"))
	d.mu.Unlock()
	body := readBody(t, e.do(t, "PROPFIND", "/m/a/b/c/", nil, "Depth", "1"))
	if !strings.Contains(body, "in-c.txt") {
		t.Fatalf("first PROPFIND: %s", body)
	}
	if max := d.listsMax.Load(); max != 1 {
		t.Fatalf("the first, hintless PROPFIND ran %d lists at once", max)
	}
	return e, d
}

// Once the listings have expired, a cold PROPFIND of /m/a/b/c/ lists the
// folder and its three ancestors at once (by the IDs they had), with the
// same four calls as the first time.
func TestColdListingOverlapsItsAncestors(t *testing.T) {
	e, d := deepTree(t)
	lists := func() int64 { return e.srv.ProviderCalls("/m")[OpList] }
	if n := lists(); n != 4 {
		t.Fatalf("first PROPFIND: %d lists, want 4", n)
	}
	e.srv.cache.forgetTree("/m", "/")
	d.listDelay = make(chan struct{})
	go func() { // let them go once all four wait, or after 2 s
		for end := time.Now().Add(2 * time.Second); d.listsNow.Load() < 4 && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
		close(d.listDelay)
	}()
	resp := e.do(t, "PROPFIND", "/m/a/b/c/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	if body := readBody(t, resp); !strings.Contains(body, "in-c.txt") {
		t.Fatalf("cold PROPFIND: %s", body)
	}
	if max := d.listsMax.Load(); max != 4 {
		t.Errorf("cold PROPFIND ran at most %d lists at once, want 4 (the folder and its ancestors together)", max)
	}
	if n := lists(); n != 8 {
		t.Errorf("cold PROPFIND made %d lists, want 4 like the first", n-4)
	}
}

// A hint the parent no longer confirms is thrown away: the folder was
// replaced behind the bridge's back, and its new content is what shows.
func TestWrongFolderHintIsNotServed(t *testing.T) {
	e, d := deepTree(t)
	e.srv.cache.forgetTree("/m", "/")
	d.mu.Lock()
	var b, old string
	for id, n := range d.nodes {
		switch n.name {
		case "b":
			b = id
		case "c":
			old = id
		}
	}
	delete(d.nodes, old)
	d.add(d.add(b, "c", true, nil).id, "new-in-c.txt", false, []byte("new"))
	d.mu.Unlock()
	body := readBody(t, e.do(t, "PROPFIND", "/m/a/b/c/", nil, "Depth", "1"))
	if !strings.Contains(body, "new-in-c.txt") || strings.Contains(body, ">in-c.txt") {
		t.Fatalf("PROPFIND after c was replaced: %s", body)
	}
	if n := e.srv.ProviderCalls("/m")[OpList]; n != 4+5 {
		t.Errorf("PROPFIND after c was replaced made %d lists, want 5 (the hinted one wasted)", n-4)
	}
}
