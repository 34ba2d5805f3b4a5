package disccloud

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/drivers"
	"bridge/drivers/download"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestReauthorizeAfterIdleExpiry(t *testing.T) {
	e := newFake(t)
	e.fake.SetIdleTTL(time.Hour)
	d := e.open(t, nil)
	ctx := context.Background()
	for _, step := range []time.Duration{0, 59 * time.Minute, 59 * time.Minute} {
		e.fake.Advance(step) // each use renews the token: no new /authorize
		if _, err := d.List(ctx, root()); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.Calls()["authorize"]; n != 1 {
		t.Fatalf("%d authorizations while the token was used within the hour, want 1", n)
	}
	e.fake.Advance(61 * time.Minute)
	if _, err := d.List(ctx, root()); err != nil {
		t.Fatalf("after an idle hour: %v", err)
	}
	c := e.fake.Calls()
	if c["authorize"] != 2 || c["listing"] != 5 {
		t.Fatalf("calls %v: want 2 authorizations and the refused listing sent again once (5)", c)
	}
	if e.fake.Tokens() != 1 {
		t.Fatalf("%d live tokens, want 1", e.fake.Tokens())
	}
	// A restarted bridge reuses the saved token.
	d2 := e.open(t, nil)
	if _, err := d2.List(ctx, root()); err != nil || e.fake.Calls()["authorize"] != 2 {
		t.Fatalf("restart: %v, %d authorizations", err, e.fake.Calls()["authorize"])
	}
	e.checkNoSecrets(t)
}

func TestOneAuthorizeFor50ConcurrentCallers(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	e.fake.Advance(2 * time.Hour) // the token died of idleness
	// The new /authorize is held until all callers have been refused, so
	// every one of them needs it.
	const callers = 50
	hold := make(chan struct{})
	e.fake.Faults.Inject(faults.Fault{Endpoint: "authorize", Hold: hold})
	errs := make(chan error, callers)
	for range callers {
		go func() { _, err := d.List(ctx, root()); errs <- err }()
	}
	for e.fake.Calls()["listing"] < callers {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("after the idle expiry: %v", err)
		}
	}
	c := e.fake.Calls()
	if c["authorize"] != 2 {
		t.Fatalf("%d authorizations, want 2 (start, and one for %d callers)", c["authorize"], callers)
	}
	if c["listing"] != 2*callers {
		t.Fatalf("%d listings, want %d (each caller sent again once)", c["listing"], 2*callers)
	}
}

func TestRangeQuirkGivesTheRightBytes(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	data := randomBytes(300_000)
	size := int64(len(data))
	f := drivertest.Put(t, d, root(), "r.bin", data)
	l, err := d.Link(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if l.ClientSafe {
		t.Fatal("a link whose answers need checking is ClientSafe")
	}
	// The site's quirk, as a bare client sees it.
	for _, c := range []struct {
		rng    string
		status int
		n      int64
	}{{"bytes=0-9", 200, size}, {"bytes=-10", 200, size}, {"bytes=100-199", 206, 100}} {
		req, _ := http.NewRequest(http.MethodGet, l.URL, nil)
		req.Header.Set("Range", c.rng)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || int64(len(b)) != c.n {
			t.Fatalf("%s: %d with %d bytes, want %d with %d", c.rng, resp.StatusCode, len(b), c.status, c.n)
		}
	}
	// Read as the bridge reads: offset 0, the middle, and a client's suffix
	// range (bytes=-1000, which the bridge asks as an explicit range).
	fetch := &download.Fetcher{Client: http.DefaultClient, Check: d.CheckDownload}
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) { return d.Link(ctx, f) }
	for _, c := range []struct {
		name   string
		header string
	}{{"start", "bytes=0-999"}, {"middle", "bytes=150000-150999"}, {"suffix", "bytes=-1000"}} {
		ends := download.RangeEnds(c.header, size)
		for start, end := range ends {
			r := download.NewReader(context.Background(), func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
				return fetch.Open(ctx, links, size, off, n)
			}, size, ends)
			r.Seek(start, io.SeekStart)
			got, err := io.ReadAll(io.LimitReader(r, end-start))
			r.Close()
			if err != nil || !bytes.Equal(got, data[start:end]) {
				t.Fatalf("%s [%d,%d): %d bytes, %v: not the right ones", c.name, start, end, len(got), err)
			}
		}
	}
}

func TestDownload429BacksOff(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	f := drivertest.Put(t, d, root(), "busy.bin", []byte("busy content"))
	e.fake.Faults.Fail("dl", http.StatusTooManyRequests, 2)
	fetch := &download.Fetcher{Client: http.DefaultClient, Check: d.CheckDownload}
	l, err := d.Link(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := fetch.Get(context.Background(), l, f.Size, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "content" || e.fake.Calls()["dl"] != 3 {
		t.Fatalf("got %q after %d tries, want \"content\" after 3", got, e.fake.Calls()["dl"])
	}
}

func TestHTMLAnswerIsNeverContent(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	data := randomBytes(5000)
	f := drivertest.Put(t, d, root(), "f.bin", data)
	old, err := d.Link(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	e.fake.ForgetDownloads() // the download token is dead: the site answers 200 with its HTML page
	fetch := &download.Fetcher{Client: http.DefaultClient, Check: d.CheckDownload}
	if _, err := fetch.Get(context.Background(), old, f.Size, 0, f.Size); !errors.Is(err, download.ErrNotTheFile) {
		t.Fatalf("the dead link's HTML page: %v, want ErrNotTheFile", err)
	}
	first := true
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) {
		if first && !fresh {
			first = false
			return old, nil
		}
		return d.Link(ctx, f)
	}
	rc, err := fetch.Open(context.Background(), links, f.Size, 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data[100:150]) {
		t.Fatal("a fresh link after the HTML page did not give the file's bytes")
	}
	if n := e.fake.Calls()["download"]; n != 2 {
		t.Fatalf("%d links asked, want 2 (the dead one, one fresh)", n)
	}
	// An HTML file is served as an attachment and read as content.
	page := []byte("<!DOCTYPE html><html><body>my own page</body></html>")
	h := drivertest.Put(t, d, root(), "page.html", page)
	l, err := d.Link(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	rc, err = fetch.Get(context.Background(), l, h.Size, 0, h.Size)
	if err != nil {
		t.Fatalf("an HTML file: %v", err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, page) {
		t.Fatal("the HTML file's bytes differ")
	}
	// Without the attachment header, HTML is a dead link even when its
	// length happens to match.
	resp := &http.Response{Header: http.Header{"Content-Type": {"text/plain"}}}
	if d.CheckDownload(resp, []byte("<!DOCTYPE html><html>")) == nil {
		t.Fatal("a sniffed HTML page was taken for content")
	}
}

func TestTooLargeSendsNoByte(t *testing.T) {
	e := newFake(t)
	e.fake.SetPackage(1000, 0, 4)
	d := e.open(t, nil)
	if m := d.Features().MaxFileSize; m != 1000 {
		t.Fatalf("Features.MaxFileSize %d, want the package's 1000", m)
	}
	_, err := d.Put(context.Background(), root(), "big.bin", drivertest.NewUpload(randomBytes(1001)))
	if !errors.Is(err, drivers.ErrTooLarge) {
		t.Fatalf("Put over the package's limit: %v, want ErrTooLarge", err)
	}
	if n, c := e.fake.UploadBytes(), e.fake.Calls()["upload"]; n != 0 || c != 0 {
		t.Fatalf("%d bytes in %d upload calls reached the site, want none", n, c)
	}
	// Empty files are the bridge's to keep pending: refused before a call.
	if _, err := d.Put(context.Background(), root(), "empty.txt", drivertest.NewUpload(nil)); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("Put of 0 bytes: %v, want ErrNotSupported", err)
	}
	// A limit lowered since it was read: the site's refusal is ErrTooLarge too.
	d.pkg.maxUpload = 0
	_, err = d.Put(context.Background(), root(), "big.bin", drivertest.NewUpload(randomBytes(1001)))
	if !errors.Is(err, drivers.ErrTooLarge) || len(e.fake.Names("/")) != 0 {
		t.Fatalf("the site's refusal: %v, folder %q", err, e.fake.Names("/"))
	}
}

func TestOverwriteLeavesOneFile(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	old := drivertest.Put(t, d, root(), "a.txt", []byte("the old, longer content"))
	up := drivertest.NewUpload([]byte("new"))
	up.Replaces = &old.Object
	o, err := d.Put(ctx, root(), "a.txt", up)
	if err != nil || o.Name != "a.txt" || o.Size != 3 {
		t.Fatalf("overwrite: %+v %v", o, err)
	}
	if got := e.fake.Names("/"); !slices.Equal(got, []string{"a.txt"}) {
		t.Fatalf("after the overwrite the site holds %q, want a.txt once", got)
	}
	if b, _ := e.fake.File("/a.txt"); string(b) != "new" {
		t.Fatalf("content %q", b)
	}
	// A file the bridge did not know of is replaced, not twinned.
	if err := e.fake.Put("/b.txt", []byte("behind the bridge's back")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, root(), "b.txt", drivertest.NewUpload([]byte("from the bridge"))); err != nil {
		t.Fatal(err)
	}
	// Names differing in case only are two files (the site would rename
	// the second "A (2).txt").
	drivertest.Put(t, d, root(), "A.txt", []byte("upper"))
	if got := e.fake.Names("/"); !slices.Equal(got, []string{"A.txt", "a.txt", "b.txt"}) {
		t.Fatalf("the site holds %q", got)
	}
	for p, want := range map[string]string{"/a.txt": "new", "/A.txt": "upper", "/b.txt": "from the bridge"} {
		if b, _ := e.fake.File(p); string(b) != want {
			t.Fatalf("%s holds %q, want %q", p, b, want)
		}
	}
	// A failed upload keeps the old file under its name.
	e.fake.Faults.Fail("upload", http.StatusBadRequest, 1)
	up = drivertest.NewUpload([]byte("lost"))
	cur, _ := d.List(ctx, root())
	for _, c := range cur {
		if c.Name == "a.txt" {
			up.Replaces = &c
		}
	}
	if _, err := d.Put(ctx, root(), "a.txt", up); err == nil {
		t.Fatal("a refused upload succeeded")
	}
	if b, _ := e.fake.File("/a.txt"); string(b) != "new" || len(e.fake.Names("/")) != 3 {
		t.Fatalf("after a failed overwrite: %q, %q", b, e.fake.Names("/"))
	}
}

func TestNamesTheSiteWouldAlter(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	for _, n := range ForbiddenNames {
		if _, err := d.Put(ctx, root(), n, drivertest.NewUpload([]byte("x"))); !errors.Is(err, drivers.ErrInvalidName) {
			t.Fatalf("Put %q: %v, want ErrInvalidName", n, err)
		}
	}
	if c := e.fake.Calls()["upload"]; c != 0 {
		t.Fatalf("%d uploads of refused names", c)
	}
	// The other reading of "quotes": the site drops apostrophes too. The
	// upload is renamed back with /file/edit, which keeps them.
	e.fake.StripApostrophes = true
	drivertest.Put(t, d, root(), "it's.txt", []byte("kept"))
	if got := e.fake.Names("/"); !slices.Equal(got, []string{"it's.txt"}) {
		t.Fatalf("the site holds %q", got)
	}
}

func TestFoldersTheSiteWouldBreak(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	a, err := d.Mkdir(ctx, root(), "a")
	if err != nil {
		t.Fatal(err)
	}
	aref := drivers.Ref{Path: "/a", Object: a}
	b, err := d.Mkdir(ctx, aref, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mkdir(ctx, root(), "a"); !errors.Is(err, drivers.ErrExist) {
		t.Fatalf("a second folder a: %v, want ErrExist", err)
	}
	if _, err := d.Move(ctx, aref, drivers.Ref{Path: "/a/b", Object: b}, "a"); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("moving a folder into its subfolder: %v, want ErrPermission", err)
	}
	if _, err := d.Copy(ctx, aref, root(), "a2"); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("folder copy: %v, want ErrNotSupported (the bridge recurses)", err)
	}
	if got := e.fake.Names("/"); !slices.Equal(got, []string{"a"}) || e.fake.Orphans() != 0 {
		t.Fatalf("the site holds %q with %d orphans", got, e.fake.Orphans())
	}
	// Moving to the root uses the site's "null".
	o, err := d.Move(ctx, drivers.Ref{Path: "/a/b", Object: b}, root(), "b top")
	if err != nil || o.Name != "b top" || !e.fake.Exists("/b top", true) {
		t.Fatalf("move to the root: %+v %v", o, err)
	}
}

func TestImportURLPassesNoByteThroughTheDriver(t *testing.T) {
	e := newFake(t)
	data := randomBytes(1 << 20)
	var served atomic.Int64
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := w.Write(data)
		served.Add(int64(n))
	}))
	defer src.Close()
	// Every byte the driver moves is counted.
	counter := &countingTransport{base: e.srv.Client().Transport}
	d, err := New(context.Background(), drivers.Config{StateDir: e.state, HTTPClient: &http.Client{Transport: counter},
		Logger: zerolog.Nop(), Decode: drivertest.DecodeOptions(e.options(nil))})
	if err != nil {
		t.Fatal(err)
	}
	dd := d.(*Driver)
	dd.sleep = func(ctx context.Context, _ time.Duration) error { return sleepBriefly(ctx) }
	ctx := context.Background()
	dir, err := dd.Mkdir(ctx, root(), "imports")
	if err != nil {
		t.Fatal(err)
	}
	dref := drivers.Ref{Path: "/imports", Object: dir}
	link := drivers.Link{URL: src.URL + "/files/source.bin?sig=abc", ClientSafe: true}
	o, err := dd.ImportURL(ctx, dref, "imported.bin", link, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "imported.bin" || o.Size != int64(len(data)) {
		t.Fatalf("ImportURL returned %+v", o)
	}
	if got, ok := e.fake.File("/imports/imported.bin"); !ok || !bytes.Equal(got, data) {
		t.Fatal("the imported file's content differs")
	}
	if got := e.fake.Names("/imports"); !slices.Equal(got, []string{"imported.bin"}) {
		t.Fatalf("the folder holds %q", got)
	}
	if n := counter.bytes.Load(); n > 64<<10 || served.Load() != int64(len(data)) {
		t.Fatalf("%d bytes through the driver, %d served to the site: the site must fetch the file itself", n, served.Load())
	}
	if counter.calls(src.Listener.Addr().String()) != 0 {
		t.Fatal("the driver fetched the source itself")
	}
	// A wrong size is not kept; a refused or failed import is
	// ErrNotSupported (the bridge streams then).
	if _, err := dd.ImportURL(ctx, dref, "short.bin", link, int64(len(data))+1); err == nil || !slices.Equal(e.fake.Names("/imports"), []string{"imported.bin"}) {
		t.Fatalf("a size mismatch: %v, folder %q", err, e.fake.Names("/imports"))
	}
	gone := drivers.Link{URL: src.URL + "/nothing", ClientSafe: true}
	src.Config.Handler = http.NotFoundHandler()
	if _, err := dd.ImportURL(ctx, dref, "gone.bin", gone, 10); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("a source that fails: %v, want ErrNotSupported", err)
	}
	e.fake.SetURLUploads(false)
	if _, err := dd.ImportURL(ctx, dref, "off.bin", link, 10); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("a site without URL imports: %v, want ErrNotSupported", err)
	}
	if _, err := dd.ImportURL(ctx, dref, "h.bin", drivers.Link{URL: link.URL, Header: http.Header{"Authorization": {"x"}}}, 10); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("a link needing headers: %v, want ErrNotSupported", err)
	}
}

func TestTimeZoneOfDates(t *testing.T) {
	e := newFake(t)
	e.fake.Zone = time.FixedZone("site", 9*3600)
	now := time.Date(2024, 9, 19, 4, 48, 19, 0, time.UTC)
	e.fake.SetClock(func() time.Time { return now })
	ctx := context.Background()
	d := e.open(t, map[string]any{"time_zone": "+09:00"})
	drivertest.Put(t, d, root(), "dated.txt", []byte("x"))
	if _, err := d.Mkdir(ctx, root(), "dir"); err != nil {
		t.Fatal(err)
	}
	objs, err := d.List(ctx, root())
	if err != nil || len(objs) != 2 {
		t.Fatalf("%v %v", objs, err)
	}
	for _, o := range objs {
		if !o.ModTime.Equal(now) {
			t.Fatalf("%s dated %v, want %v", o.Name, o.ModTime, now)
		}
	}
	if _, err := e.tryOpen(map[string]any{"time_zone": "+9"}); err == nil {
		t.Fatal("a malformed time_zone was accepted")
	}
}

func TestRefusedCredentials(t *testing.T) {
	e := newFake(t)
	wrong := strings.Repeat("0", 64)
	d := e.open(t, map[string]any{"key2": wrong})
	for range 3 {
		if err := d.Check(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
			t.Fatalf("Check with a wrong key: %v, want ErrAuthExpired", err)
		}
	}
	if n := e.fake.Calls()["authorize"]; n != 1 {
		t.Fatalf("%d authorizations, want 1 (a refusal is remembered)", n)
	}
	if strings.Contains(e.logs.String(), wrong) {
		t.Fatal("the key is in the logs")
	}
	// A site set to account login.
	e2 := newFake(t)
	e2.fake.AccountLogin = true
	d2 := e2.open(t, map[string]any{"key1": nil, "key2": nil, "username": e2.fake.Username, "password": e2.fake.Password})
	if err := d2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tryOpen(map[string]any{"key2": nil}); err == nil {
		t.Fatal("a mount without key2 or a password was accepted")
	}
	e.checkNoSecrets(t)
	e2.checkNoSecrets(t)
}

func TestQuota(t *testing.T) {
	e := newFake(t)
	e.fake.SetPackage(1<<30, 1<<20, 4)
	d := e.open(t, nil)
	ctx := context.Background()
	drivertest.Put(t, d, root(), "a.bin", randomBytes(1000))
	sub, _ := d.Mkdir(ctx, root(), "sub")
	drivertest.Put(t, d, drivers.Ref{Path: "/sub", Object: sub}, "b.bin", randomBytes(2000))
	q, err := d.Quota(ctx)
	if err != nil || q.Total != 1<<20 || q.Used != 3000 || q.Free != 1<<20-3000 {
		t.Fatalf("quota %+v %v", q, err)
	}
}

func TestAPIBaseForms(t *testing.T) {
	for in, want := range map[string]string{
		"https://disccloud.com/api/v2/":   "https://disccloud.com/api/v2/",
		"https://disccloud.com/api/v2":    "https://disccloud.com/api/v2/",
		"https://disccloud.com":           "https://disccloud.com/api/v2/",
		"https://example.com/site/api/v2": "https://example.com/site/api/v2/",
	} {
		if got, err := apiBase(in); err != nil || got != want {
			t.Errorf("apiBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := apiBase("disccloud.com"); err == nil {
		t.Error("an api_base without a scheme was accepted")
	}
}

// countingTransport counts the bytes of every request and answer body,
// and the requests per host.
type countingTransport struct {
	base  http.RoundTripper
	bytes atomic.Int64
	mu    sync.Mutex
	hosts map[string]int
}

func (c *countingTransport) calls(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[host]
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.hosts == nil {
		c.hosts = map[string]int{}
	}
	c.hosts[req.URL.Host]++
	c.mu.Unlock()
	if req.ContentLength > 0 {
		c.bytes.Add(req.ContentLength)
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.bytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func sleepBriefly(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Millisecond):
		return nil
	}
}
