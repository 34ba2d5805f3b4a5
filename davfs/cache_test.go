package davfs

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowListing starts a Depth 1 PROPFIND of /m/one/ whose provider listing
// has read the folder but not yet answered, and returns a function that
// lets that answer through and waits for the PROPFIND. Only the first
// listing call is held.
func slowListing(t *testing.T, e *testEnv, d *memDriver) (release func()) {
	t.Helper()
	hold := make(chan struct{})
	var held atomic.Bool
	d.afterList = func() {
		if held.CompareAndSwap(false, true) {
			<-hold
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp := e.do(t, "PROPFIND", "/m/one/", nil, "Depth", "1")
		resp.Body.Close()
	}()
	for end := time.Now().Add(5 * time.Second); !held.Load(); {
		if time.Now().After(end) {
			t.Fatal("the listing of /m/one/ never started")
		}
		time.Sleep(time.Millisecond)
	}
	return func() { close(hold); <-done }
}

// oneFolder makes /one on a driver that needs IDs, with the mount root
// listed and /one not.
func oneFolder(t *testing.T) (*testEnv, *memDriver, string) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	d.mu.Lock()
	one := d.add("root", "one", true, nil).id
	d.mu.Unlock()
	wantStatus(t, e.do(t, "PROPFIND", "/m/", nil, "Depth", "1"), http.StatusMultiStatus)
	return e, d, one
}

// A folder made through the bridge while its parent's listing is on its way
// exists for the next request, though the provider's answer predates it:
// the cache applies the change to the listing when it lands. (rclone makes
// nested/one/two and at once MKCOLs nested/one/two/three; kept as it came,
// the listing answered that with 409.)
func TestChangeDuringAListingIsNotLost(t *testing.T) {
	e, d, one := oneFolder(t)
	release := slowListing(t, e, d)
	// A MKCOL that checked /one before this listing started ends now.
	d.mu.Lock()
	two := d.obj(d.add(one, "two", true, nil))
	d.mu.Unlock()
	e.srv.recordNew(e.srv.mounts["/m"], "/one/two", two)
	release()

	wantStatus(t, e.do(t, "MKCOL", "/m/one/two/three/", nil), http.StatusCreated)
	lists := e.srv.ProviderCalls("/m")[OpList]
	if body := readBody(t, e.do(t, "PROPFIND", "/m/one/", nil, "Depth", "1")); !strings.Contains(body, "/m/one/two/") {
		t.Errorf("PROPFIND /m/one/ after the listing landed does not show two: %s", body)
	}
	if n := e.srv.ProviderCalls("/m")[OpList] - lists; n != 0 {
		t.Errorf("the listing that landed was not kept: %d more list calls", n)
	}
}

// A folder dropped while its listing is on its way (another instance
// changed it, or a write's outcome is unknown) is listed again: a request
// made after the drop does not share the earlier call, and that call's
// answer is not kept.
func TestDroppedFolderIsNotServedFromAnEarlierListing(t *testing.T) {
	e, d, one := oneFolder(t)
	release := slowListing(t, e, d)
	d.mu.Lock()
	d.add(one, "behind.txt", false, []byte("x"))
	d.mu.Unlock()
	e.srv.cache.drop("/m", "/one")

	req, _ := http.NewRequest("PROPFIND", e.http.URL+"/m/one/", nil)
	req.Header.Set("Depth", "1")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		release()
		t.Fatalf("PROPFIND after the drop waited for the earlier listing: %v", err)
	}
	if body := readBody(t, resp); !strings.Contains(body, "behind.txt") {
		t.Errorf("PROPFIND after the drop shared the earlier listing: %s", body)
	}
	release()
	if body := readBody(t, e.do(t, "PROPFIND", "/m/one/", nil, "Depth", "1")); !strings.Contains(body, "behind.txt") {
		t.Errorf("the earlier listing was kept over the later one: %s", body)
	}
}
