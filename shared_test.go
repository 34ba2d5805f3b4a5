package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"bridge/cluster/redistest"
)

// Two instances built from one configuration with shared_state, over the
// same folder: what one grants or stores, the other honours.
func TestTwoInstancesShareLocksPropsAndListings(t *testing.T) {
	srv := redistest.Start(t)
	c, _ := testConfig(t, "shared_state = \""+srv.URL+"\"\nshared_prefix = \""+redistest.Prefix(t)+"\"\n")
	var urls []string
	for range 2 {
		h, closeAll, err := buildHandler(context.Background(), c, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(h)
		t.Cleanup(func() { hs.Close(); closeAll() })
		urls = append(urls, hs.URL)
	}
	do := func(instance int, method, path, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, urls[instance]+path, strings.NewReader(body))
		req.SetBasicAuth("u", "pw")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		return resp
	}
	text := func(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }
	want := func(r *http.Response, code int) {
		t.Helper()
		if r.StatusCode != code {
			t.Fatalf("%s %s: %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, code, text(r))
		}
	}

	// Listings: B's cached folder shows A's new file at once.
	want(do(1, "PROPFIND", "/local/", "", "Depth", "1"), http.StatusMultiStatus)
	want(do(0, "PUT", "/local/a.txt", "one"), http.StatusCreated)
	if r := do(1, "PROPFIND", "/local/", "", "Depth", "1"); !strings.Contains(text(r), "a.txt") {
		t.Fatal("instance B does not list the file written through A")
	}

	// Locks: taken through A, honoured by B.
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>u</D:owner></D:lockinfo>`
	r := do(0, "LOCK", "/local/a.txt", lockBody, "Timeout", "Second-600")
	want(r, http.StatusOK)
	token := r.Header.Get("Lock-Token")
	want(do(1, "PUT", "/local/a.txt", "two"), http.StatusLocked)
	want(do(1, "LOCK", "/local/a.txt", lockBody), http.StatusLocked)
	want(do(1, "PUT", "/local/a.txt", "two", "If", "("+token+")"), http.StatusNoContent)
	want(do(1, "UNLOCK", "/local/a.txt", "", "Lock-Token", token), http.StatusNoContent)
	want(do(0, "PUT", "/local/a.txt", "three"), http.StatusNoContent)

	// Dead properties: set through A, read through B.
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop><x:color>blue</x:color></D:prop></D:set></D:propertyupdate>`
	want(do(0, "PROPPATCH", "/local/a.txt", patch), http.StatusMultiStatus)
	find := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:x="urn:x"><D:prop><x:color/></D:prop></D:propfind>`
	if r := do(1, "PROPFIND", "/local/a.txt", find, "Depth", "0"); !strings.Contains(text(r), "blue") {
		t.Fatal("instance B does not see the property set through A")
	}

	// The balancer's check: ready while Redis answers, and then what
	// needs Redis answers 503, never a local guess.
	want(do(0, "GET", "/readyz", ""), http.StatusOK)
	srv.Stop()
	want(do(0, "GET", "/readyz", ""), http.StatusServiceUnavailable)
	want(do(1, "PUT", "/local/b.txt", "x"), http.StatusServiceUnavailable)
	want(do(1, "LOCK", "/local/a.txt", lockBody), http.StatusServiceUnavailable)
}
