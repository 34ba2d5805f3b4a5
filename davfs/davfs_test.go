package davfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/auth"
	"bridge/davfs/deadprops"
	"bridge/drivers"
)

type testEnv struct {
	srv     *Server
	http    *httptest.Server
	tempDir string
}

func newEnv(t *testing.T, opts Options, mounts ...Mount) *testEnv {
	t.Helper()
	opts.Mounts = mounts
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	opts.Logger = zerolog.Nop()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &testEnv{srv: s, http: hs, tempDir: opts.TempDir}
}

func (e *testEnv) do(t *testing.T, method, p string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+p, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %q", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, readBody(t, resp))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// seed puts files into the driver directly, behind the bridge's back.
func seed(t *testing.T, d *memDriver, dir string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	parent := d.add("root", dir, true, nil)
	for i := 0; i < n; i++ {
		d.add(parent.id, fmt.Sprintf("f%03d.txt", i), false, []byte(fmt.Sprint(i)))
	}
}

func TestPropfindCostsOnlyListingCalls(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	seed(t, d, "dir", 50)
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})

	resp := e.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	body := readBody(t, resp)
	if n := strings.Count(body, "<D:response>"); n != 51 {
		t.Fatalf("cold PROPFIND listed %d responses, want 51", n)
	}
	// Cold: the mount root's listing (to find dir) and dir's own; no
	// per-entry call, no content read.
	cold := e.srv.ProviderCalls("/m")
	if cold[OpList] != 2 || cold[OpLink] != 0 || cold[OpOpen] != 0 || cold[OpRoot] != 1 {
		t.Fatalf("cold PROPFIND calls = %v, want 1 root, 2 lists, nothing else", cold)
	}
	if !strings.Contains(body, "<D:getcontenttype>text/plain; charset=utf-8</D:getcontenttype>") {
		t.Fatalf("content type not from extension: %s", body[:400])
	}
	resp = e.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	readBody(t, resp)
	if warm := e.srv.ProviderCalls("/m"); fmt.Sprint(warm) != fmt.Sprint(cold) {
		t.Fatalf("warm PROPFIND made provider calls: before %v, after %v", cold, warm)
	}
}

func TestConcurrentColdListingIsShared(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	seed(t, d, "dir", 3)
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	d.listDelay = make(chan struct{})
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PROPFIND", e.http.URL+"/m/", nil)
			req.Header.Set("Depth", "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	time.Sleep(100 * time.Millisecond) // let them pile up on the cold folder
	close(d.listDelay)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusMultiStatus {
			t.Fatalf("status %d", s)
		}
	}
	if n := e.srv.ProviderCalls("/m")[OpList]; n != 1 {
		t.Fatalf("8 concurrent cold PROPFINDs made %d list calls, want 1", n)
	}
}

func TestWritesUpdateTheCache(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{CacheTTL: time.Hour}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PROPFIND", "/m/", nil, "Depth", "1"), http.StatusMultiStatus)
	wantStatus(t, e.do(t, "MKCOL", "/m/new", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/new/a.txt", strings.NewReader("hello")), http.StatusCreated)
	before := e.srv.ProviderCalls("/m")[OpList]
	resp := e.do(t, "PROPFIND", "/m/new/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	if body := readBody(t, resp); !strings.Contains(body, "a.txt") {
		t.Fatalf("own PUT not visible: %s", body)
	}
	if after := e.srv.ProviderCalls("/m")[OpList]; after != before {
		t.Fatalf("listing a folder made by MKCOL cost %d list calls", after-before)
	}
	wantStatus(t, e.do(t, "DELETE", "/m/new/a.txt", nil), http.StatusNoContent)
	wantStatus(t, e.do(t, "GET", "/m/new/a.txt", nil), http.StatusNotFound)
}

func TestRangesThroughLinks(t *testing.T) {
	data := randomBytes(300_000)
	for _, tc := range []struct {
		name  string
		setup func(d *memDriver)
	}{
		{"plain", func(d *memDriver) {}},
		{"provider ignores Range", func(d *memDriver) { d.ignoreRange = true }},
		{"link refused once", func(d *memDriver) { d.forbidLinks.Store(1) }},
		{"body cut mid-stream", func(d *memDriver) { d.cutAfter.Store(70_000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newMemDriver(t, allFeatures())
			e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
			wantStatus(t, e.do(t, "PUT", "/m/v.bin", bytes.NewReader(data)), http.StatusCreated)
			tc.setup(d)
			for _, r := range []struct {
				hdr        string
				start, end int
			}{{"bytes=0-99999", 0, 100000}, {"bytes=150000-150099", 150000, 150100}, {"bytes=-1000", 299000, 300000}, {"", 0, 300000}} {
				var resp *http.Response
				if r.hdr == "" {
					resp = e.do(t, "GET", "/m/v.bin", nil)
					wantStatus(t, resp, http.StatusOK)
				} else {
					resp = e.do(t, "GET", "/m/v.bin", nil, "Range", r.hdr)
					wantStatus(t, resp, http.StatusPartialContent)
				}
				if got := readBody(t, resp); got != string(data[r.start:r.end]) {
					t.Fatalf("%q: got %d bytes, not the right ones", r.hdr, len(got))
				}
			}
			if n := e.srv.ProviderCalls("/m")[OpLink]; tc.name != "link refused once" && n != 1 {
				t.Fatalf("link calls = %d, want 1 (reused until near expiry)", n)
			} else if tc.name == "link refused once" && n != 2 {
				t.Fatalf("link calls = %d, want 2 (one refresh)", n)
			}
		})
	}
}

func TestMultiRangeAndUnsatisfiable(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	data := randomBytes(5000)
	wantStatus(t, e.do(t, "PUT", "/m/f.bin", bytes.NewReader(data)), http.StatusCreated)
	resp := e.do(t, "GET", "/m/f.bin", nil, "Range", "bytes=0-9,100-109")
	wantStatus(t, resp, http.StatusPartialContent)
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for _, want := range [][]byte{data[0:10], data[100:110]} {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(part)
		if !bytes.Equal(got, want) {
			t.Fatalf("part %q = %x, want %x", part.Header.Get("Content-Range"), got, want)
		}
	}
	wantStatus(t, e.do(t, "GET", "/m/f.bin", nil, "Range", "bytes=9000-9100"), http.StatusRequestedRangeNotSatisfiable)
}

func TestRedirectOnlyWhenAsked(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/r", Driver: d, Redirect: true}, Mount{Path: "/p", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/p/f.txt", strings.NewReader("x")), http.StatusCreated)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.http.URL + "/r/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), d.srv.URL) {
		t.Fatalf("redirect mount: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = client.Get(e.http.URL + "/p/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || readBody(t, resp) != "x" {
		t.Fatalf("proxy mount answered %d", resp.StatusCode)
	}
}

func TestCopyAndMoveAreServerSide(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "MKCOL", "/m/a", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "MKCOL", "/m/b", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/a/f.txt", strings.NewReader("one")), http.StatusCreated)
	base := e.srv.ProviderCalls("/m")

	wantStatus(t, e.do(t, "COPY", "/m/a/f.txt", nil, "Destination", "/m/b/g.txt"), http.StatusCreated)
	wantStatus(t, e.do(t, "COPY", "/m/a", nil, "Destination", e.http.URL+"/m/c"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/c", nil, "Destination", "/m/b/c2"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/b/g.txt", nil, "Destination", "/m/b/h.txt"), http.StatusCreated)
	calls := e.srv.ProviderCalls("/m")
	if calls[OpCopy]-base[OpCopy] != 2 || calls[OpMove]-base[OpMove] != 1 || calls[OpRename]-base[OpRename] != 1 ||
		calls[OpPut] != base[OpPut] || calls[OpLink] != base[OpLink] {
		t.Fatalf("calls before %v after %v: want 2 copies, 1 move, 1 rename, no upload or download", base, calls)
	}
	for p, want := range map[string]string{"/a/f.txt": "one", "/b/h.txt": "one", "/b/c2/f.txt": "one"} {
		if got, ok := d.file(p); !ok || string(got) != want {
			t.Fatalf("%s = %q, %v", p, got, ok)
		}
	}
	if _, ok := d.file("/c"); ok {
		t.Fatal("moved folder still at its source")
	}
}

func TestCopyMoveFallbacks(t *testing.T) {
	d := newMemDriver(t, drivers.Features{Links: true, EmptyFiles: true}) // no copy, no move
	other := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d}, Mount{Path: "/o", Driver: other})
	wantStatus(t, e.do(t, "MKCOL", "/m/a", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "MKCOL", "/m/b", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/a/f.txt", strings.NewReader("one")), http.StatusCreated)

	wantStatus(t, e.do(t, "COPY", "/m/a", nil, "Destination", "/m/c"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/c", nil, "Destination", "/m/b/c"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/a", nil, "Destination", "/o/a"), http.StatusCreated)
	for drv, files := range map[*memDriver]map[string]string{d: {"/b/c/f.txt": "one"}, other: {"/a/f.txt": "one"}} {
		for p, want := range files {
			if got, ok := drv.file(p); !ok || string(got) != want {
				t.Fatalf("%s = %q, %v", p, got, ok)
			}
		}
	}
	for _, gone := range []string{"/c", "/a"} {
		if _, ok := d.file(gone); ok {
			t.Fatalf("%s still there after MOVE", gone)
		}
	}
	if n := e.srv.ProviderCalls("/m")[OpCopy]; n != 0 {
		t.Fatalf("%d copy calls to a driver without copy", n)
	}
}

func TestCopyMoveRules(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "MKCOL", "/m/a", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/x", strings.NewReader("new")), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/y", strings.NewReader("old")), http.StatusCreated)

	wantStatus(t, e.do(t, "MOVE", "/m/a", nil, "Destination", "/m/a/sub"), http.StatusConflict)
	wantStatus(t, e.do(t, "MOVE", "/m/x", nil, "Destination", "/m/y", "Overwrite", "F"), http.StatusPreconditionFailed)
	wantStatus(t, e.do(t, "MOVE", "/m/x", nil, "Destination", "/m/nope/y"), http.StatusConflict)
	wantStatus(t, e.do(t, "COPY", "/m/x", nil, "Destination", "/m/x"), http.StatusForbidden)
	wantStatus(t, e.do(t, "MOVE", "/m/x", nil, "Destination", "/m/x"), http.StatusForbidden)
	wantStatus(t, e.do(t, "MOVE", "/m/a", nil, "Destination", "/m/a/"), http.StatusForbidden)
	wantStatus(t, e.do(t, "COPY", "/m/x", nil, "Destination", "http://elsewhere.example/m/z"), http.StatusBadGateway)
	// No Overwrite header means T (RFC 4918), unlike x/net.
	wantStatus(t, e.do(t, "MOVE", "/m/x", nil, "Destination", "/m/y"), http.StatusNoContent)
	if got, _ := d.file("/y"); string(got) != "new" {
		t.Fatalf("y = %q", got)
	}
	if n := len(d.nodes); n != 3 { // root, a, y: the set-aside copy is gone
		t.Fatalf("%d nodes left, want 3", n)
	}
	wantStatus(t, e.do(t, "MOVE", "/m", nil, "Destination", "/m2"), http.StatusForbidden)
}

func TestFailedOverwriteKeepsOldFile(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("old")), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/g", strings.NewReader("new")), http.StatusCreated)
	d.mu.Lock()
	var g string
	for id, n := range d.nodes {
		if n.name == "g" {
			g = id
		}
	}
	d.mu.Unlock()
	// The move's source vanishes behind the bridge's back: the provider
	// fails the move, and the set-aside original must come back.
	d.mu.Lock()
	delete(d.nodes, g)
	d.mu.Unlock()
	resp := e.do(t, "MOVE", "/m/g", nil, "Destination", "/m/f")
	if resp.StatusCode < 400 {
		t.Fatalf("MOVE of a vanished file answered %d", resp.StatusCode)
	}
	if got, ok := d.file("/f"); !ok || string(got) != "old" {
		t.Fatalf("overwritten file lost: %q %v", got, ok)
	}
}

func TestPutFailuresMapToStatuses(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		retry  string
	}{
		{fmt.Errorf("x: %w", drivers.ErrQuota), http.StatusInsufficientStorage, ""},
		{fmt.Errorf("x: %w", drivers.ErrTooLarge), http.StatusRequestEntityTooLarge, ""},
		{fmt.Errorf("x: %w", drivers.ErrInvalidName), http.StatusBadRequest, ""},
		{drivers.WithRetryAfter(drivers.ErrRateLimited, 7*time.Second), http.StatusServiceUnavailable, "7"},
		{fmt.Errorf("upload to https://up.example/?sig=SECRETSIG: %w", drivers.ErrUnavailable), http.StatusBadGateway, ""},
		{fmt.Errorf("x: %w", drivers.ErrAuthExpired), http.StatusServiceUnavailable, "30"},
	} {
		d := newMemDriver(t, allFeatures())
		e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
		wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("old")), http.StatusCreated)
		d.failPut = tc.err
		resp := e.do(t, "PUT", "/m/f", strings.NewReader("new content"))
		body := readBody(t, resp)
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retry {
			t.Fatalf("%v: status %d Retry-After %q, want %d %q", tc.err, resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.retry)
		}
		if strings.Contains(body, "SECRETSIG") {
			t.Fatalf("error body leaks the provider's detail: %q", body)
		}
		if got, _ := d.file("/f"); string(got) != "old" {
			t.Fatalf("failed overwrite changed the file to %q", got)
		}
		if left, _ := os.ReadDir(e.tempDir); len(left) != 0 {
			t.Fatalf("temp files left after a failed PUT: %v", left)
		}
	}
}

func TestPutRules(t *testing.T) {
	d := newMemDriver(t, drivers.Features{Links: true, MaxFileSize: 10})
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/m/missing/f", strings.NewReader("x")), http.StatusConflict)
	wantStatus(t, e.do(t, "PUT", "/m/big", strings.NewReader("more than ten bytes")), http.StatusRequestEntityTooLarge)
	wantStatus(t, e.do(t, "PUT", "/m/empty", strings.NewReader("")), http.StatusCreated) // pending, see TestEmptyFirst...
	wantStatus(t, e.do(t, "PUT", "/m", strings.NewReader("x")), http.StatusMethodNotAllowed)
	wantStatus(t, e.do(t, "PUT", "/top.txt", strings.NewReader("x")), http.StatusForbidden)
	wantStatus(t, e.do(t, "MKCOL", "/m/dir", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/dir", strings.NewReader("x")), http.StatusMethodNotAllowed)
	wantStatus(t, e.do(t, "MKCOL", "/m/dir", nil), http.StatusMethodNotAllowed)
	wantStatus(t, e.do(t, "MKCOL", "/m/x/y", nil), http.StatusConflict)
	if n := e.srv.ProviderCalls("/m")[OpPut]; n != 0 {
		t.Fatalf("%d uploads for refused PUTs", n)
	}
}

func TestBadRequests(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PROPFIND", "/m/", nil, "Depth", "infinity"), http.StatusForbidden)
	wantStatus(t, e.do(t, "PROPFIND", "/m/", nil), http.StatusForbidden)
	wantStatus(t, e.do(t, "PROPFIND", "/m/", strings.NewReader("<propfind><oops"), "Depth", "0"), http.StatusBadRequest)
	wantStatus(t, e.do(t, "GET", "/m/a%00b", nil), http.StatusBadRequest)
	wantStatus(t, e.do(t, "GET", "/m/../m/x", nil), http.StatusBadRequest)
	wantStatus(t, e.do(t, "GET", "/nomount/x", nil), http.StatusNotFound)
	resp := e.do(t, "GET", "/", nil)
	wantStatus(t, resp, http.StatusOK)
	if body := readBody(t, resp); !strings.Contains(body, `href="./m/"`) {
		t.Fatalf("root listing: %s", body)
	}
}

func TestVisibilityAndReadOnly(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	s, err := New(Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []Mount{{Path: "/a", Driver: d}, {Path: "/b", Driver: newMemDriver(t, allFeatures())}}})
	if err != nil {
		t.Fatal(err)
	}
	user := &auth.User{Name: "u", Mounts: []string{"/a"}, ReadOnly: true}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), user)))
	}))
	defer hs.Close()
	e := &testEnv{srv: s, http: hs}
	resp := e.do(t, "PROPFIND", "/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	if body := readBody(t, resp); strings.Contains(body, "/b/") || !strings.Contains(body, "/a/") {
		t.Fatalf("root lists: %s", body)
	}
	wantStatus(t, e.do(t, "PROPFIND", "/b/", nil, "Depth", "0"), http.StatusNotFound)
	for _, m := range []string{"PUT", "MKCOL", "DELETE", "PROPPATCH", "LOCK", "UNLOCK"} {
		wantStatus(t, e.do(t, m, "/a/x", nil), http.StatusForbidden)
	}
	wantStatus(t, e.do(t, "COPY", "/a/x", nil, "Destination", "/a/y"), http.StatusForbidden)
	wantStatus(t, e.do(t, "MOVE", "/a/x", nil, "Destination", "/a/y"), http.StatusForbidden)
	resp = e.do(t, "OPTIONS", "/a/", nil)
	wantStatus(t, resp, http.StatusOK)
	if allow := resp.Header.Get("Allow"); allow != "OPTIONS, GET, HEAD, PROPFIND" {
		t.Fatalf("OPTIONS on a folder for a read-only user: Allow %q", allow)
	}
}

func TestOptions(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("x")), http.StatusCreated)
	wantStatus(t, e.do(t, "MKCOL", "/m/dir", nil), http.StatusCreated)
	for p, want := range map[string]string{
		"/":        "OPTIONS, GET, HEAD, PROPPATCH, LOCK, UNLOCK, PROPFIND",
		"/m/":      "OPTIONS, GET, HEAD, PROPPATCH, LOCK, UNLOCK, PROPFIND",
		"/m/dir/":  "OPTIONS, GET, HEAD, DELETE, PROPPATCH, COPY, MOVE, LOCK, UNLOCK, PROPFIND",
		"/m/f.txt": "OPTIONS, GET, HEAD, PUT, DELETE, PROPPATCH, COPY, MOVE, LOCK, UNLOCK, PROPFIND",
		"/m/new":   "OPTIONS, LOCK, PUT, MKCOL",
	} {
		resp := e.do(t, "OPTIONS", p, nil)
		wantStatus(t, resp, http.StatusOK)
		if got := resp.Header.Get("Allow"); got != want {
			t.Errorf("OPTIONS %s: Allow %q, want %q", p, got, want)
		}
		if dav := resp.Header.Get("DAV"); dav != "1, 2" {
			t.Errorf("OPTIONS %s: DAV %q", p, dav)
		}
	}
}

func TestLockedResourceNeedsToken(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>`
	resp := e.do(t, "LOCK", "/m/f.txt", strings.NewReader(lockBody))
	wantStatus(t, resp, http.StatusCreated)
	token := resp.Header.Get("Lock-Token")
	if token == "" {
		t.Fatal("no Lock-Token")
	}
	if _, ok := d.file("/f.txt"); !ok {
		t.Fatal("LOCK on an unmapped URL made no empty file")
	}
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("x")), http.StatusLocked)
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("x"), "If", "("+token+")"), http.StatusNoContent)
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("x"), "If", "(<opaquelocktoken:bogus>)"), http.StatusPreconditionFailed)
	wantStatus(t, e.do(t, "UNLOCK", "/m/f.txt", nil, "Lock-Token", token), http.StatusNoContent)
	wantStatus(t, e.do(t, "DELETE", "/m/f.txt", nil), http.StatusNoContent)
}

func TestStaleSpoolsRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, spoolPrefix+"999999999-123")
	foreign := filepath.Join(dir, "unrelated")
	for _, f := range []string{stale, foreign} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Options{TempDir: dir, Logger: zerolog.Nop()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale upload buffer survived the start")
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatal("a file that is not ours was removed")
	}
}

// A mount whose driver keeps the upload file (the local one, which syncs
// it before the rename) gets a buffer written back to disk as it fills,
// a window at a time; other mounts leave the buffer to the page cache.
func TestSpoolWritesBackForKeepingDrivers(t *testing.T) {
	s, err := New(Options{TempDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), (2*writeBackWindow+writeBackWindow/2)/16)
	for _, keeps := range []bool{true, false} {
		sp, err := s.spoolFor(&mount{features: drivers.Features{KeepsUploadFile: keeps}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.readFrom(struct{ io.Reader }{bytes.NewReader(body)}); err != nil { // as a request body: no WriteTo
			t.Fatal(err)
		}
		want := int64(0)
		if keeps {
			want = 2 * writeBackWindow
		}
		if sp.writing != want {
			t.Errorf("keeps the file %v: write-back started up to %d, want %d", keeps, sp.writing, want)
		}
		got, err := os.ReadFile(sp.f.Name())
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("keeps the file %v: buffer holds %d bytes (%v), want the %d sent", keeps, len(got), err, len(body))
		}
		sp.discard()
	}
}

// TestSpoolsAreKnownByTheirLockNotTheirPid: a buffer some process holds
// open survives another bridge's start, whatever pid its name says; one
// nobody holds goes, even when its name has a live pid (an unreaped or
// reused one).
func TestSpoolsAreKnownByTheirLockNotTheirPid(t *testing.T) {
	dir := t.TempDir()
	held, err := newSpool(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.discard()
	orphan := filepath.Join(dir, fmt.Sprintf("%s%d-orphan", spoolPrefix, os.Getpid()))
	if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{TempDir: dir, Logger: zerolog.Nop()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(held.f.Name()); err != nil {
		t.Fatal("a buffer in use was removed")
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatal("a buffer nobody holds survived the start (its name has a live pid)")
	}
}

func TestProviderFailureOnPropfind(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: &failingList{d}})
	wantStatus(t, e.do(t, "PROPFIND", "/m/", nil, "Depth", "1"), http.StatusBadGateway)
}

type failingList struct{ *memDriver }

func (f *failingList) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	return nil, fmt.Errorf("boom: %w", drivers.ErrUnavailable)
}

func TestQuotaOnlyWhenAsked(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	resp := e.do(t, "PROPFIND", "/m/", nil, "Depth", "0")
	wantStatus(t, resp, http.StatusMultiStatus)
	if body := readBody(t, resp); strings.Contains(body, "quota") || e.srv.ProviderCalls("/m")[OpQuota] != 0 {
		t.Fatalf("allprop asked for quota: %s", body)
	}
	ask := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`
	for i := 0; i < 2; i++ {
		resp = e.do(t, "PROPFIND", "/m/", strings.NewReader(ask), "Depth", "0")
		wantStatus(t, resp, http.StatusMultiStatus)
		body := readBody(t, resp)
		if !strings.Contains(body, "<D:quota-available-bytes>1073741824</D:quota-available-bytes>") ||
			!strings.Contains(body, "<D:quota-used-bytes>0</D:quota-used-bytes>") {
			t.Fatalf("quota missing: %s", body)
		}
	}
	if n := e.srv.ProviderCalls("/m")[OpQuota]; n != 1 {
		t.Fatalf("%d quota calls, want 1 (cached)", n)
	}
}

func TestRedact(t *testing.T) {
	in := `GET https://dl.example/f?id=3&sig=abc123&exp=9: status 403; access_token=tok.en refresh_token: "r1" Authorization: Bearer`
	out := Redact(in)
	for _, secret := range []string{"abc123", "tok.en", "r1"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%q survives in %q", secret, out)
		}
	}
	if !strings.Contains(out, "id=3") || !strings.Contains(out, "exp=9") {
		t.Fatalf("harmless parts lost: %q", out)
	}
}

func TestDeadPropsFollowMoveAndCopy(t *testing.T) {
	store, err := deadprops.Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := newEnv(t, Options{Props: store}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())}, Mount{Path: "/o", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("x")), http.StatusCreated)
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>`
	wantStatus(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(patch)), http.StatusMultiStatus)
	ask := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:colour/></D:prop></D:propfind>`
	has := func(p string) bool {
		resp := e.do(t, "PROPFIND", p, strings.NewReader(ask), "Depth", "0")
		if resp.StatusCode == http.StatusNotFound {
			return false
		}
		wantStatus(t, resp, http.StatusMultiStatus)
		return strings.Contains(readBody(t, resp), ">blue</")
	}
	if !has("/m/f") {
		t.Fatal("property not stored")
	}
	wantStatus(t, e.do(t, "COPY", "/m/f", nil, "Destination", "/m/g"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/f", nil, "Destination", "/m/h"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/h", nil, "Destination", "/o/h"), http.StatusCreated)
	if !has("/m/g") || !has("/o/h") || has("/m/f") || has("/m/h") {
		t.Fatal("properties did not follow COPY and MOVE")
	}
	wantStatus(t, e.do(t, "DELETE", "/o/h", nil), http.StatusNoContent)
	wantStatus(t, e.do(t, "PUT", "/o/h", strings.NewReader("y")), http.StatusCreated)
	if has("/o/h") {
		t.Fatal("a deleted file's properties came back with a new file of its name")
	}
}

func TestOwnCloudChecksumsAndMtime(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	// sha1("hello")
	wantStatus(t, e.do(t, "PUT", "/m/bad", strings.NewReader("hello"), "OC-Checksum", "SHA1:0000000000000000000000000000000000000000"), http.StatusBadRequest)
	if _, ok := d.file("/bad"); ok || e.srv.ProviderCalls("/m")[OpPut] != 0 {
		t.Fatal("a body failing its checksum was stored")
	}
	resp := e.do(t, "PUT", "/m/good", strings.NewReader("hello"), "OC-Checksum", "SHA1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d MD5:5d41402abc4b2a76b9719d911017c592", "X-OC-Mtime", "1700000000")
	wantStatus(t, resp, http.StatusCreated)
	if resp.Header.Get("X-OC-Mtime") != "" {
		t.Fatal("X-OC-Mtime accepted by a driver that cannot set times")
	}
}

func TestQuotaRefusesBeforeTheBody(t *testing.T) {
	d := newMemDriver(t, allFeatures()) // 1 GiB free
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	req, _ := http.NewRequest("PUT", e.http.URL+"/m/huge", strings.NewReader("tiny"))
	req.ContentLength = 2 << 30 // the body would never come
	req.Header.Set("Expect", "100-continue")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("over-quota PUT: %v %v", resp, err)
	}
	if n := e.srv.ProviderCalls("/m")[OpPut]; n != 0 {
		t.Fatalf("%d uploads", n)
	}
}

func TestExplorerSetsModTime(t *testing.T) {
	store, err := deadprops.Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := newEnv(t, Options{Props: store}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "PUT", "/m/doc.txt", strings.NewReader("x")), http.StatusCreated)
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>` +
		`<Z:Win32LastModifiedTime>Thu, 02 Jan 2020 03:04:05 GMT</Z:Win32LastModifiedTime>` +
		`<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`
	resp := e.do(t, "PROPPATCH", "/m/doc.txt", strings.NewReader(patch))
	wantStatus(t, resp, http.StatusMultiStatus)
	if body := readBody(t, resp); strings.Contains(body, "403") || strings.Contains(body, "409") {
		t.Fatalf("PROPPATCH refused: %s", body)
	}
	resp = e.do(t, "HEAD", "/m/doc.txt", nil)
	if lm := resp.Header.Get("Last-Modified"); lm != "Thu, 02 Jan 2020 03:04:05 GMT" {
		t.Fatalf("Last-Modified %q after Win32LastModifiedTime", lm)
	}
}

func TestEmptyFirstThenContentOnProviderWithoutEmptyFiles(t *testing.T) {
	f := allFeatures()
	f.EmptyFiles = false
	d := newMemDriver(t, f)
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	// Explorer: PUT 0 bytes, LOCK, PUT content, UNLOCK.
	wantStatus(t, e.do(t, "PUT", "/m/New Text Document.txt", strings.NewReader("")), http.StatusCreated)
	resp := e.do(t, "PROPFIND", "/m/", nil, "Depth", "1")
	if body := readBody(t, resp); !strings.Contains(body, "New%20Text%20Document.txt") {
		t.Fatalf("pending file not listed: %s", body)
	}
	if resp := e.do(t, "GET", "/m/New Text Document.txt", nil); resp.StatusCode != 200 || readBody(t, resp) != "" {
		t.Fatalf("pending file GET: %d", resp.StatusCode)
	}
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	resp = e.do(t, "LOCK", "/m/New Text Document.txt", strings.NewReader(lockBody))
	wantStatus(t, resp, http.StatusOK)
	token := resp.Header.Get("Lock-Token")
	wantStatus(t, e.do(t, "PUT", "/m/New Text Document.txt", strings.NewReader("typed text"), "If", "("+token+")"), http.StatusCreated)
	wantStatus(t, e.do(t, "UNLOCK", "/m/New Text Document.txt", nil, "Lock-Token", token), http.StatusNoContent)
	if got, ok := d.file("/New Text Document.txt"); !ok || string(got) != "typed text" {
		t.Fatalf("provider has %q %v", got, ok)
	}
	if n := e.srv.ProviderCalls("/m")[OpPut]; n != 1 {
		t.Fatalf("%d uploads, want 1 (the empty one stays with the bridge)", n)
	}
	// LOCK on a new name, then delete it: the provider never hears of it.
	resp = e.do(t, "LOCK", "/m/tmp.txt", strings.NewReader(lockBody))
	wantStatus(t, resp, http.StatusCreated)
	tmpToken := resp.Header.Get("Lock-Token")
	wantStatus(t, e.do(t, "MOVE", "/m/tmp.txt", nil, "Destination", "/m/tmp2.txt", "If", "("+tmpToken+")"), http.StatusCreated)
	wantStatus(t, e.do(t, "GET", "/m/tmp2.txt", nil), http.StatusOK)
	wantStatus(t, e.do(t, "DELETE", "/m/tmp2.txt", nil), http.StatusNoContent)
	wantStatus(t, e.do(t, "GET", "/m/tmp2.txt", nil), http.StatusNotFound)
	calls := e.srv.ProviderCalls("/m")
	if calls[OpPut] != 1 || calls[OpRemove] != 0 {
		t.Fatalf("pending entries reached the provider: %v", calls)
	}
}

func TestMacOSMetadataRefusedPerMount(t *testing.T) {
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures()), RefuseMacOSMetadata: true},
		Mount{Path: "/ok", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "PUT", "/m/._photo.jpg", strings.NewReader("x")), http.StatusForbidden)
	wantStatus(t, e.do(t, "PUT", "/m/.DS_Store", strings.NewReader("x")), http.StatusForbidden)
	wantStatus(t, e.do(t, "PUT", "/m/photo.jpg", strings.NewReader("x")), http.StatusCreated)
	wantStatus(t, e.do(t, "COPY", "/m/photo.jpg", nil, "Destination", "/m/._photo.jpg"), http.StatusForbidden)
	wantStatus(t, e.do(t, "PUT", "/ok/.DS_Store", strings.NewReader("x")), http.StatusCreated)
}

func TestHealthAndProgress(t *testing.T) {
	var logs bytes.Buffer
	d := newMemDriver(t, allFeatures())
	s, err := New(Options{TempDir: t.TempDir(), Logger: zerolog.New(&logs),
		Mounts: []Mount{{Path: "/ok", Driver: d}, {Path: "/expired", Driver: &needsLogin{d}}}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Health(context.Background())
	if len(h) != 2 || !h[0].OK || h[1].OK || !h[1].NeedsLogin || strings.Contains(h[1].Error, "SECRET") {
		t.Fatalf("health %+v", h)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	e := &testEnv{srv: s, http: hs}
	wantStatus(t, e.do(t, "PUT", "/ok/big.bin", bytes.NewReader(randomBytes(progressMin+1))), http.StatusCreated)
	if n := strings.Count(logs.String(), `"message":"upload progress"`); n < 2 || n > 10 || !strings.Contains(logs.String(), `"percent":100`) {
		t.Fatalf("%d progress lines, want 2 to 10 ending at 100%%:\n%s", n, logs.String())
	}
	wantStatus(t, e.do(t, "PROPFIND", "/expired/", nil, "Depth", "0"), http.StatusServiceUnavailable)
}

type needsLogin struct{ *memDriver }

func (n *needsLogin) Check(ctx context.Context) error {
	return fmt.Errorf("refresh token SECRET revoked: %w", drivers.ErrAuthExpired)
}

func (n *needsLogin) Root(ctx context.Context) (drivers.Object, error) {
	return drivers.Object{}, n.Check(ctx)
}

// multistatus parses a PROPFIND answer into href -> "ns local|status" -> inner XML.
func multistatus(t *testing.T, body string) map[string]map[string]string {
	t.Helper()
	var ms struct {
		Responses []struct {
			Href      string `xml:"href"`
			Propstats []struct {
				Prop struct {
					Any []struct {
						XMLName xml.Name
						Inner   string `xml:",innerxml"`
					} `xml:",any"`
				} `xml:"prop"`
				Status string `xml:"status"`
			} `xml:"propstat"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal([]byte(body), &ms); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	out := map[string]map[string]string{}
	for _, r := range ms.Responses {
		props := map[string]string{}
		for _, ps := range r.Propstats {
			for _, p := range ps.Prop.Any {
				// Namespace prefixes differ between writers; compare text.
				inner := p.Inner
				if strings.Contains(inner, "collection") {
					inner = "collection"
				} else if strings.Contains(inner, "lockentry") {
					inner = "lockentry"
				} else if strings.Contains(inner, "checksum") {
					inner = inner[strings.Index(inner, ">")+1 : strings.LastIndex(inner, "<")]
				}
				props[p.XMLName.Space+" "+p.XMLName.Local+"|"+ps.Status] = inner
			}
		}
		out[r.Href] = props
	}
	return out
}

func TestFastPropfindMatchesXNet(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	fast := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	slow := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	slow.srv.xnetPropfindOnly = true
	wantStatus(t, fast.do(t, "MKCOL", "/m/dir%20%231", nil), http.StatusCreated)
	for _, n := range []string{"a.txt", "中文 & <odd>.mp4", "100%.bin", "a;b,c:d@e+f=g$h~i.txt"} {
		wantStatus(t, fast.do(t, "PUT", "/m/dir%20%231/"+url.PathEscape(n), strings.NewReader(n)), http.StatusCreated)
	}
	bodies := []string{
		"",
		`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`,
		`<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:oc="http://owncloud.org/ns"><D:prop><D:getcontentlength/><D:resourcetype/><D:getetag/><oc:checksums/><D:creationdate/><X:unknown xmlns:X="urn:x"/></D:prop></D:propfind>`,
	}
	for _, p := range []string{"/", "/m/", "/m/dir%20%231/", "/m/dir%20%231/a.txt"} {
		for _, depth := range []string{"0", "1"} {
			for _, body := range bodies {
				a := fast.do(t, "PROPFIND", p, strings.NewReader(body), "Depth", depth)
				b := slow.do(t, "PROPFIND", p, strings.NewReader(body), "Depth", depth)
				wantStatus(t, a, http.StatusMultiStatus)
				wantStatus(t, b, http.StatusMultiStatus)
				ga, gb := multistatus(t, readBody(t, a)), multistatus(t, readBody(t, b))
				if fmt.Sprint(ga) != fmt.Sprint(gb) {
					t.Fatalf("PROPFIND %s Depth %s %q:\nfast  %v\nx/net %v", p, depth, body, ga, gb)
				}
			}
		}
	}
}

// A warm Depth 1 PROPFIND writes the folder's entries as rendered once
// and kept with the listing (from its second answer on: a cold one
// streams); every change through the bridge (new file,
// overwrite, delete, a lock, other properties asked) must show at once,
// as x/net would answer it from scratch.
func TestWarmPropfindFollowsChanges(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	fast := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	slow := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	slow.srv.xnetPropfindOnly = true
	wantStatus(t, fast.do(t, "MKCOL", "/m/dir", nil), http.StatusCreated)
	wantStatus(t, fast.do(t, "PUT", "/m/dir/a.txt", strings.NewReader("a")), http.StatusCreated)
	const lengthOK, etagOK = "DAV: getcontentlength|HTTP/1.1 200 OK", "DAV: getetag|HTTP/1.1 200 OK"
	props := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:getetag/></D:prop></D:propfind>`
	same := func(step, body string) map[string]map[string]string {
		t.Helper()
		slow.srv.cache.purge() // x/net from scratch
		var got map[string]map[string]string
		for range 3 { // the first streams, the second keeps what it writes, the third is the kept one
			a := fast.do(t, "PROPFIND", "/m/dir/", strings.NewReader(body), "Depth", "1")
			wantStatus(t, a, http.StatusMultiStatus)
			got = multistatus(t, readBody(t, a))
		}
		b := slow.do(t, "PROPFIND", "/m/dir/", strings.NewReader(body), "Depth", "1")
		wantStatus(t, b, http.StatusMultiStatus)
		if want := multistatus(t, readBody(t, b)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s, %q:\nkept  %v\nx/net %v", step, body, got, want)
		}
		l, ok := fast.srv.cache.get("/m", "/dir")
		if !ok || l.encoded == nil {
			t.Fatalf("%s: the folder's answer was not kept", step)
		}
		return got
	}
	same("first", "")
	etag := same("first, other properties", props)["/m/dir/a.txt"][etagOK]

	wantStatus(t, fast.do(t, "PUT", "/m/dir/b.txt", strings.NewReader("bb")), http.StatusCreated)
	if got := same("after a new file", props); got["/m/dir/b.txt"][lengthOK] != "2" {
		t.Fatalf("new file: %v", got)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time, whatever the clock's step
	wantStatus(t, fast.do(t, "PUT", "/m/dir/a.txt", strings.NewReader("aaa")), http.StatusNoContent)
	got := same("after an overwrite", props)
	if got["/m/dir/a.txt"][lengthOK] != "3" || got["/m/dir/a.txt"][etagOK] == etag {
		t.Fatalf("overwrite: %v, ETag was %s", got, etag)
	}
	wantStatus(t, fast.do(t, "DELETE", "/m/dir/b.txt", nil), http.StatusNoContent)
	if got := same("after a delete", ""); got["/m/dir/b.txt"] != nil {
		t.Fatalf("deleted file still listed: %v", got)
	}

	// A lock shows in lockdiscovery (the other server has no such lock).
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	lock := fast.do(t, "LOCK", "/m/dir/a.txt", strings.NewReader(lockBody), "Timeout", "Second-60")
	wantStatus(t, lock, http.StatusOK)
	token := strings.Trim(lock.Header.Get("Lock-Token"), "<>")
	a := fast.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1")
	wantStatus(t, a, http.StatusMultiStatus)
	if body := readBody(t, a); !strings.Contains(body, token) {
		t.Fatalf("warm PROPFIND does not show the lock %s: %s", token, body)
	}
	wantStatus(t, fast.do(t, "UNLOCK", "/m/dir/a.txt", nil, "Lock-Token", "<"+token+">"), http.StatusNoContent)
	a = fast.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1")
	if body := readBody(t, a); strings.Contains(body, token) {
		t.Fatalf("warm PROPFIND still shows the released lock: %s", body)
	}
}

// A time set by PROPPATCH (Explorer after a copy) shows in the folder's
// kept answer at once.
func TestWarmPropfindShowsPatchedTime(t *testing.T) {
	store, err := deadprops.Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := newEnv(t, Options{Props: store}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "MKCOL", "/m/dir", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/dir/doc.txt", strings.NewReader("x")), http.StatusCreated)
	const when = "Thu, 02 Jan 2020 03:04:05 GMT"
	listed := func() string {
		resp := e.do(t, "PROPFIND", "/m/dir/", nil, "Depth", "1")
		wantStatus(t, resp, http.StatusMultiStatus)
		return readBody(t, resp)
	}
	for range 2 {
		if strings.Contains(listed(), when) {
			t.Fatal("time shown before it was set")
		}
	}
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>` +
		`<Z:Win32LastModifiedTime>` + when + `</Z:Win32LastModifiedTime></D:prop></D:set></D:propertyupdate>`
	wantStatus(t, e.do(t, "PROPPATCH", "/m/dir/doc.txt", strings.NewReader(patch)), http.StatusMultiStatus)
	if body := listed(); !strings.Contains(body, "<D:getlastmodified>"+when+"</D:getlastmodified>") {
		t.Fatalf("PROPPATCH'ed time not listed: %s", body)
	}
}

// A folder copy across mounts that fails on one member (a name the target
// provider refuses) leaves nothing at the destination, and a MOVE built on
// it leaves its source whole.
func TestFailedFolderCopyLeavesNothing(t *testing.T) {
	src := newMemDriver(t, allFeatures())
	dst := newMemDriver(t, allFeatures())
	dst.forbidden = "|"
	e := newEnv(t, Options{}, Mount{Path: "/s", Driver: src}, Mount{Path: "/d", Driver: dst})
	wantStatus(t, e.do(t, "MKCOL", "/s/dir", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "MKCOL", "/s/dir/sub", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/s/dir/a.txt", strings.NewReader("a")), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/s/dir/sub/z|z.txt", strings.NewReader("z")), http.StatusCreated)
	for _, method := range []string{"COPY", "MOVE"} {
		resp := e.do(t, method, "/s/dir", nil, "Destination", "/d/dir")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d, want 400 for the refused name", method, resp.StatusCode)
		}
		if n := len(dst.nodes); n != 1 {
			t.Fatalf("%s: %d nodes at the destination, want only its root", method, n)
		}
		wantStatus(t, e.do(t, "PROPFIND", "/d/dir", nil, "Depth", "0"), http.StatusNotFound)
		for p, want := range map[string]string{"/dir/a.txt": "a", "/dir/sub/z|z.txt": "z"} {
			if got, ok := src.file(p); !ok || string(got) != want {
				t.Fatalf("after %s, source %s = %q, %v", method, p, got, ok)
			}
		}
	}
}

// A provider without times: no Last-Modified on GET, so If-Modified-Since
// cannot keep a client on a replaced file's old content.
func TestNoLastModifiedWithoutProviderTimes(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	d.noTimes = true
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("one")), http.StatusCreated)
	resp := e.do(t, "GET", "/m/f.txt", nil)
	wantStatus(t, resp, http.StatusOK)
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		t.Fatalf("Last-Modified %q from a provider without times", lm)
	}
	since := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	wantStatus(t, e.do(t, "GET", "/m/f.txt", nil, "If-Modified-Since", since), http.StatusOK)
}

// Pending empty entries (on a provider without empty files) follow their
// folder when it is moved or copied, and go when it is deleted.
func TestPendingEntriesFollowTheirFolder(t *testing.T) {
	f := allFeatures()
	f.EmptyFiles = false
	d := newMemDriver(t, f)
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "MKCOL", "/m/a", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "MKCOL", "/m/a/sub", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "PUT", "/m/a/sub/empty.txt", strings.NewReader("")), http.StatusCreated)
	wantStatus(t, e.do(t, "COPY", "/m/a", nil, "Destination", "/m/c"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/a", nil, "Destination", "/m/b"), http.StatusCreated)
	wantStatus(t, e.do(t, "GET", "/m/b/sub/empty.txt", nil), http.StatusOK)
	wantStatus(t, e.do(t, "GET", "/m/c/sub/empty.txt", nil), http.StatusOK)
	wantStatus(t, e.do(t, "GET", "/m/a/sub/empty.txt", nil), http.StatusNotFound)
	wantStatus(t, e.do(t, "DELETE", "/m/b", nil), http.StatusNoContent)
	wantStatus(t, e.do(t, "MKCOL", "/m/b", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "MKCOL", "/m/b/sub", nil), http.StatusCreated)
	wantStatus(t, e.do(t, "GET", "/m/b/sub/empty.txt", nil), http.StatusNotFound)
}

// On a provider that keeps no times, the bridge keeps the client's: from
// X-OC-Mtime and Win32LastModifiedTime, across MOVE, COPY (also to another
// such mount) and a restart, and not for a file replaced behind its back.
func TestBridgeKeepsModTimesForProvidersWithout(t *testing.T) {
	dir := t.TempDir()
	store, err := deadprops.Open(filepath.Join(dir, "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f := allFeatures()
	f.SetModTime = false
	d, other := newMemDriver(t, f), newMemDriver(t, f)
	d.noTimes, other.noTimes = true, true
	mounts := []Mount{{Path: "/m", Driver: d}, {Path: "/o", Driver: other}}
	e := newEnv(t, Options{Props: store}, mounts...)
	modified := func(e *testEnv, p string) string {
		t.Helper()
		resp := e.do(t, "PROPFIND", p, nil, "Depth", "0")
		wantStatus(t, resp, http.StatusMultiStatus)
		for _, props := range multistatus(t, readBody(t, resp)) {
			return props["DAV: getlastmodified|HTTP/1.1 200 OK"]
		}
		return ""
	}
	const given = "Tue, 14 Nov 2023 22:13:20 GMT" // 1700000000
	resp := e.do(t, "PUT", "/m/f.txt", strings.NewReader("hello"), "X-OC-Mtime", "1700000000")
	wantStatus(t, resp, http.StatusCreated)
	if resp.Header.Get("X-OC-Mtime") != "accepted" {
		t.Fatal("X-OC-Mtime not accepted though the bridge keeps it")
	}
	if got := modified(e, "/m/f.txt"); got != given {
		t.Fatalf("after PUT: %q, want %q", got, given)
	}
	wantStatus(t, e.do(t, "COPY", "/m/f.txt", nil, "Destination", "/m/g.txt"), http.StatusCreated)
	wantStatus(t, e.do(t, "MOVE", "/m/f.txt", nil, "Destination", "/m/sub.txt"), http.StatusCreated)
	wantStatus(t, e.do(t, "COPY", "/m/g.txt", nil, "Destination", "/o/g.txt"), http.StatusCreated)
	for _, p := range []string{"/m/g.txt", "/m/sub.txt", "/o/g.txt"} {
		if got := modified(e, p); got != given {
			t.Fatalf("%s: %q, want %q", p, got, given)
		}
	}
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32LastModifiedTime>Wed, 01 Jan 2020 10:00:00 GMT</Z:Win32LastModifiedTime></D:prop></D:set></D:propertyupdate>`
	wantStatus(t, e.do(t, "PROPPATCH", "/m/g.txt", strings.NewReader(patch)), http.StatusMultiStatus)
	if got := modified(e, "/m/g.txt"); got != "Wed, 01 Jan 2020 10:00:00 GMT" {
		t.Fatalf("after Win32LastModifiedTime: %q", got)
	}
	// A new server over the same store: the times are still there.
	e2 := newEnv(t, Options{Props: store}, mounts...)
	if got := modified(e2, "/m/sub.txt"); got != given {
		t.Fatalf("after a restart: %q, want %q", got, given)
	}
	// Replaced behind the bridge's back (another size): not the kept time.
	d.mu.Lock()
	d.child("root", "sub.txt").data = []byte("changed elsewhere")
	d.mu.Unlock()
	e3 := newEnv(t, Options{Props: store}, mounts...)
	if got := modified(e3, "/m/sub.txt"); got == given {
		t.Fatal("a kept time outlived the file it was kept for")
	}
	// Gone with DELETE: a new file of the name gets its upload time.
	wantStatus(t, e3.do(t, "DELETE", "/m/g.txt", nil), http.StatusNoContent)
	wantStatus(t, e3.do(t, "PUT", "/m/g.txt", strings.NewReader("new")), http.StatusCreated)
	if got, _ := http.ParseTime(modified(e3, "/m/g.txt")); time.Since(got) > time.Minute {
		t.Fatalf("a new file's time: %v", got)
	}
}

func TestLockAnswersTheMappedStatusAndLogs(t *testing.T) {
	const lockBody = `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	var logs syncLog
	serve := func(d drivers.Driver) *httptest.Server {
		s, err := New(Options{TempDir: t.TempDir(), Logger: zerolog.New(&logs), Mounts: []Mount{{Path: "/m", Driver: d}}})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s)
		t.Cleanup(hs.Close)
		return hs
	}
	do := func(hs *httptest.Server, method, p, body string) *http.Response {
		req, _ := http.NewRequest(method, hs.URL+p, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	// The provider fails while LOCK creates the empty file of a new name:
	// the answer is its mapped status, not a 201 for a file never made.
	d := newMemDriver(t, allFeatures())
	hs := serve(d)
	d.failPut = drivers.WithRetryAfter(fmt.Errorf("put: %w", drivers.ErrRateLimited), 7*time.Second)
	resp := do(hs, "LOCK", "/m/new.txt", lockBody)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("LOCK with the provider rate limiting: %d Retry-After %q, want 503 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(logs.String(), "LOCK failed") || !strings.Contains(logs.String(), "rate limited") {
		t.Fatalf("the failed LOCK is not logged: %s", logs.String())
	}
	d.failPut = nil
	// The lock of the failed LOCK was released: a PUT without a token works.
	if resp := do(hs, "PUT", "/m/new.txt", "x"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT after the failed LOCK: %d, want 201 (no lock left behind)", resp.StatusCode)
	}

	// The provider fails while LOCK looks the name up: its mapped status.
	hs = serve(&failingList{newMemDriver(t, allFeatures())})
	if resp := do(hs, "LOCK", "/m/other.txt", lockBody); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("LOCK with the provider down: %d, want 502", resp.StatusCode)
	}
	// A working LOCK on a new name answers 201 with its token.
	hs = serve(newMemDriver(t, allFeatures()))
	resp = do(hs, "LOCK", "/m/ok.txt", lockBody)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Lock-Token") == "" {
		t.Fatalf("LOCK: %d, token %q", resp.StatusCode, resp.Header.Get("Lock-Token"))
	}
}

// syncLog is a log sink safe for concurrent writers.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestParallelWritesOfOneNameAreNotLocked(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	run := func(method, p string, body func(i int) io.Reader) []int {
		var wg sync.WaitGroup
		codes := make([]int, 6)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(method, e.http.URL+p, body(i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		return codes
	}
	created := 0
	for _, c := range run("MKCOL", "/m/dir", func(int) io.Reader { return nil }) {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusMethodNotAllowed: // it exists by then
		default:
			t.Fatalf("parallel MKCOLs of one path: %d (no lock is held anywhere)", c)
		}
	}
	if created != 1 {
		t.Fatalf("%d MKCOLs created the folder, want 1", created)
	}
	for _, c := range run("PUT", "/m/dir/f.txt", func(i int) io.Reader { return strings.NewReader(strings.Repeat("x", i+1)) }) {
		if c != http.StatusCreated && c != http.StatusNoContent {
			t.Fatalf("parallel PUTs of one path: %d (no lock is held anywhere)", c)
		}
	}
}

// On a driver that lists by path, a cold PROPFIND of a deep folder costs
// its own listing only: no ancestor is listed to learn an ID.
func TestColdPropfindOnAPathListingDriver(t *testing.T) {
	f := allFeatures()
	f.ListsByPath = true
	d := newMemDriver(t, f)
	a := d.add("root", "a", true, nil)
	b := d.add(a.id, "b", true, nil)
	c := d.add(b.id, "c", true, nil)
	d.add(c.id, "x.txt", false, []byte("x"))
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})

	resp := e.do(t, "PROPFIND", "/m/a/b/c/", nil, "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	if body := readBody(t, resp); !strings.Contains(body, "/m/a/b/c/x.txt") {
		t.Fatalf("listing lacks the file: %s", body)
	}
	if calls := e.srv.ProviderCalls("/m"); calls[OpList] != 1 {
		t.Fatalf("cold PROPFIND of /a/b/c: %v, want one listing call", calls)
	}
	// A file or a missing path still answers right, through its parent.
	wantStatus(t, e.do(t, "PROPFIND", "/m/a/b/c/x.txt", nil, "Depth", "0"), http.StatusMultiStatus)
	wantStatus(t, e.do(t, "PROPFIND", "/m/a/b/nope/", nil, "Depth", "0"), http.StatusNotFound)
	wantStatus(t, e.do(t, "MKCOL", "/m/a/b/c/x.txt/sub", nil), http.StatusConflict)
	// The folder found by path can be moved (the driver looks its ID up).
	wantStatus(t, e.do(t, "MOVE", "/m/a/b/c/", nil, "Destination", e.http.URL+"/m/a/c2/"), http.StatusCreated)
	if _, ok := d.file("/a/c2/x.txt"); !ok {
		t.Fatal("the moved folder's file is not there")
	}
}
