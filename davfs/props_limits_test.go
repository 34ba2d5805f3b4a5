package davfs

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bridge/davfs/deadprops"
	"bridge/drivers"
)

// openStore opens a property store for one test, with limits l.
func openStore(t *testing.T, l deadprops.Limits) *deadprops.Store {
	t.Helper()
	s, err := deadprops.Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.WithLimits(l)
}

// setProps is a PROPPATCH body setting name=value pairs in urn:z.
func setProps(kv ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>`)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "<Z:%s>%s</Z:%s>", kv[i], kv[i+1], kv[i])
	}
	b.WriteString(`</D:prop></D:set></D:propertyupdate>`)
	return b.String()
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestProppatchBodyOverTheLimit(t *testing.T) {
	const limit = 4096
	store := openStore(t, deadprops.Limits{RequestBytes: limit})
	e := newEnv(t, Options{Props: store}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("x")), http.StatusCreated)
	big := setProps("big", strings.Repeat("v", 3*limit))

	// Content-Length says it: 413 before a byte is read.
	body := &countingReader{r: strings.NewReader(big)}
	req := httptest.NewRequest("PROPPATCH", "/m/f", body)
	req.ContentLength = int64(len(big))
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || body.n != 0 {
		t.Fatalf("with Content-Length: %d after reading %d bytes, want 413 after none", rec.Code, body.n)
	}
	// Chunked: read no further than the limit.
	body = &countingReader{r: strings.NewReader(big)}
	req = httptest.NewRequest("PROPPATCH", "/m/f", body)
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || body.n > limit+1 {
		t.Fatalf("chunked: %d after reading %d bytes, want 413 after at most %d", rec.Code, body.n, limit+1)
	}
	// And over HTTP.
	wantStatus(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(big)), http.StatusRequestEntityTooLarge)
	if props, err := store.Get("/m/f"); err != nil || len(props) != 0 {
		t.Fatalf("stored after 413: %v %v", props, err)
	}
	// Under the limit it is an ordinary PROPPATCH.
	wantStatus(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(setProps("small", "v"))), http.StatusMultiStatus)
	if props, _ := store.Get("/m/f"); len(props) != 1 {
		t.Fatalf("small PROPPATCH stored %v", props)
	}
}

// Without a store PROPPATCH is refused, but x/net would still read the
// body whole first: the cap holds there too.
func TestProppatchBodyCappedWithoutAStore(t *testing.T) {
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("x")), http.StatusCreated)
	big := setProps("big", strings.Repeat("v", int(deadprops.DefaultLimits.RequestBytes)))
	wantStatus(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(big)), http.StatusRequestEntityTooLarge)
}

// propstats returns, per property "space local", the status its propstat
// gives, from a PROPPATCH answer.
func propstats(t *testing.T, resp *http.Response) map[string]string {
	t.Helper()
	wantStatus(t, resp, http.StatusMultiStatus)
	out := map[string]string{}
	for _, props := range multistatus(t, readBody(t, resp)) {
		for k := range props {
			name, status, _ := strings.Cut(k, "|")
			out[name] = status
		}
	}
	return out
}

func TestProppatchOverTheResourceLimit(t *testing.T) {
	store := openStore(t, deadprops.Limits{ResourceBytes: 1000})
	e := newEnv(t, Options{Props: store}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())})
	wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("x")), http.StatusCreated)
	first := strings.Repeat("a", 500)
	if got := propstats(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(setProps("first", first)))); got["urn:z first"] != "HTTP/1.1 200 OK" {
		t.Fatalf("first PROPPATCH: %v", got)
	}
	// Two more of 300 bytes would make more than 1000, and the removal in
	// the same request fails with them (RFC 4918 9.2: all or nothing).
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">` +
		`<D:set><D:prop><Z:b>` + strings.Repeat("b", 300) + `</Z:b><Z:c>` + strings.Repeat("c", 300) + `</Z:c></D:prop></D:set>` +
		`<D:remove><D:prop><Z:other/></D:prop></D:remove></D:propertyupdate>`
	got := propstats(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(patch)))
	if got["urn:z b"] != "HTTP/1.1 507 Insufficient Storage" || got["urn:z c"] != "HTTP/1.1 507 Insufficient Storage" || got["urn:z other"] != "HTTP/1.1 424 Failed Dependency" {
		t.Fatalf("over the limit: %v", got)
	}
	props, err := store.Get("/m/f")
	if err != nil || len(props) != 1 || string(props[xml.Name{Space: "urn:z", Local: "first"}].InnerXML) != first {
		t.Fatalf("after a refused PROPPATCH the store holds %d properties (%v), want the first one only", len(props), err)
	}
	// Another resource has its own allowance.
	wantStatus(t, e.do(t, "PUT", "/m/g", strings.NewReader("x")), http.StatusCreated)
	if got := propstats(t, e.do(t, "PROPPATCH", "/m/g", strings.NewReader(setProps("b", strings.Repeat("b", 300))))); got["urn:z b"] != "HTTP/1.1 200 OK" {
		t.Fatalf("another file: %v", got)
	}
}

func TestManySmallProppatchesStopAtTheCap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		want  int // properties stored when the cap is reached
	}{
		// 256 properties of a few bytes: the count is the limit.
		{"count", "v", 256},
		// 2000-byte values, 2009 bytes with their names: 130 fit in 256 KiB.
		{"bytes", strings.Repeat("v", 2000), 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t, deadprops.Limits{})
			e := newEnv(t, Options{Props: store}, Mount{Path: "/m", Driver: newMemDriver(t, allFeatures())})
			wantStatus(t, e.do(t, "PUT", "/m/f", strings.NewReader("x")), http.StatusCreated)
			stored := 0
			for i := 0; i < 300; i++ {
				name := fmt.Sprintf("p%03d", i)
				got := propstats(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(setProps(name, tc.value))))
				if got["urn:z "+name] == "HTTP/1.1 507 Insufficient Storage" {
					break
				}
				if got["urn:z "+name] != "HTTP/1.1 200 OK" {
					t.Fatalf("PROPPATCH %d: %v", i, got)
				}
				stored++
			}
			props, _ := store.Get("/m/f")
			if stored != tc.want || len(props) != tc.want {
				t.Fatalf("%d PROPPATCHes succeeded, %d properties stored; want %d", stored, len(props), tc.want)
			}
			// A value may still be replaced at the cap.
			if got := propstats(t, e.do(t, "PROPPATCH", "/m/f", strings.NewReader(setProps("p000", tc.value)))); got["urn:z p000"] != "HTTP/1.1 200 OK" {
				t.Fatalf("replacing at the cap: %v", got)
			}
		})
	}
}

// noSetter is a driver without drivers.ModTimeSetter.
type noSetter struct{ drivers.Driver }

// stamping gives an uploaded file the upload's time, as real providers do
// (memDriver keeps a replaced file's time), or the client's when it honours
// Upload.ModTime.
type stamping struct {
	*memDriver
	honour bool
}

func (d stamping) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	o, err := d.memDriver.Put(ctx, parent, name, up)
	if err != nil {
		return o, err
	}
	when := time.Now()
	if d.honour && !up.ModTime.IsZero() {
		when = up.ModTime
	}
	return d.memDriver.SetModTime(ctx, drivers.Ref{Object: o}, when)
}

// TestExplorerOrderKeepsTheTime replays Windows Explorer: PUT of 0 bytes,
// LOCK, PROPPATCH of Win32LastModifiedTime, PUT of the content without a
// time, UNLOCK. The content keeps the PROPPATCH'ed time.
func TestExplorerOrderKeepsTheTime(t *testing.T) {
	const sent = "Thu, 02 Jan 2020 03:04:05 GMT"
	sentTime, _ := http.ParseTime(sent)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (drivers.Driver, *memDriver)
	}{
		{"provider without times", func(t *testing.T) (drivers.Driver, *memDriver) {
			d := newMemDriver(t, allFeatures())
			d.noTimes = true
			return noSetter{d}, nil
		}},
		{"provider without empty files", func(t *testing.T) (drivers.Driver, *memDriver) {
			f := allFeatures()
			f.EmptyFiles = false
			d := newMemDriver(t, f)
			d.noTimes = true
			return noSetter{d}, nil
		}},
		{"ModTimeSetter", func(t *testing.T) (drivers.Driver, *memDriver) {
			d := newMemDriver(t, allFeatures())
			return stamping{memDriver: d}, d
		}},
		{"ModTimeSetter, Put honours the time", func(t *testing.T) (drivers.Driver, *memDriver) {
			f := allFeatures()
			f.SetModTime = true
			d := newMemDriver(t, f)
			return stamping{memDriver: d, honour: true}, d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drv, mem := tc.setup(t)
			e := newEnv(t, Options{Props: openStore(t, deadprops.Limits{})}, Mount{Path: "/m", Driver: drv})
			modified := func() string {
				t.Helper()
				resp := e.do(t, "PROPFIND", "/m/doc.txt", nil, "Depth", "0")
				wantStatus(t, resp, http.StatusMultiStatus)
				for _, props := range multistatus(t, readBody(t, resp)) {
					return props["DAV: getlastmodified|HTTP/1.1 200 OK"]
				}
				return ""
			}
			wantStatus(t, e.do(t, "PUT", "/m/doc.txt", strings.NewReader("")), http.StatusCreated)
			lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
			resp := e.do(t, "LOCK", "/m/doc.txt", strings.NewReader(lockBody))
			wantStatus(t, resp, http.StatusOK)
			token := resp.Header.Get("Lock-Token")
			patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>` +
				`<Z:Win32CreationTime>` + sent + `</Z:Win32CreationTime>` +
				`<Z:Win32LastModifiedTime>` + sent + `</Z:Win32LastModifiedTime>` +
				`<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`
			if got := propstats(t, e.do(t, "PROPPATCH", "/m/doc.txt", strings.NewReader(patch), "If", "("+token+")")); got["urn:schemas-microsoft-com: Win32LastModifiedTime"] != "HTTP/1.1 200 OK" {
				t.Fatalf("PROPPATCH: %v", got)
			}
			resp = e.do(t, "PUT", "/m/doc.txt", strings.NewReader("the real content"), "If", "("+token+")")
			if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
				t.Fatalf("content PUT: %d", resp.StatusCode)
			}
			wantStatus(t, e.do(t, "UNLOCK", "/m/doc.txt", nil, "Lock-Token", token), http.StatusNoContent)
			if got := modified(); got != sent {
				t.Fatalf("getlastmodified after the content PUT: %q, want %q", got, sent)
			}
			if mem != nil {
				mem.mu.Lock()
				n := mem.child("root", "doc.txt")
				at := n.modTime
				mem.mu.Unlock()
				if !at.Equal(sentTime) {
					t.Fatalf("the driver's time: %v, want %v", at, sentTime)
				}
			}
			// The time was for that content: a later PUT without one gets
			// its own.
			wantStatus(t, e.do(t, "PUT", "/m/doc.txt", strings.NewReader("edited elsewhere")), http.StatusNoContent)
			if got, _ := http.ParseTime(modified()); time.Since(got) > time.Minute {
				t.Fatalf("a later plain PUT kept the old time: %v", got)
			}
		})
	}
}

// A time the PUT carries itself (X-OC-Mtime) wins over a PROPPATCH'ed one.
func TestPutTimeWinsOverPatchedTime(t *testing.T) {
	d := newMemDriver(t, allFeatures())
	d.noTimes = true
	e := newEnv(t, Options{Props: openStore(t, deadprops.Limits{})}, Mount{Path: "/m", Driver: noSetter{d}})
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("")), http.StatusCreated)
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:lastmodified>Thu, 02 Jan 2020 03:04:05 GMT</D:lastmodified></D:prop></D:set></D:propertyupdate>`
	wantStatus(t, e.do(t, "PROPPATCH", "/m/f.txt", strings.NewReader(patch)), http.StatusMultiStatus)
	wantStatus(t, e.do(t, "PUT", "/m/f.txt", strings.NewReader("content"), "X-OC-Mtime", "1700000000"), http.StatusNoContent)
	resp := e.do(t, "PROPFIND", "/m/f.txt", nil, "Depth", "0")
	wantStatus(t, resp, http.StatusMultiStatus)
	for _, props := range multistatus(t, readBody(t, resp)) {
		if got := props["DAV: getlastmodified|HTTP/1.1 200 OK"]; got != "Tue, 14 Nov 2023 22:13:20 GMT" {
			t.Fatalf("getlastmodified %q, want X-OC-Mtime's", got)
		}
	}
}
