package e2e

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// bridgeRSS is the bridge process's resident memory in bytes (Linux only:
// ok is false elsewhere).
func bridgeRSS(t *testing.T, b *bridge) (int64, bool) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0, false
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10, true
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", b.cmd.Process.Pid)
	return 0, false
}

// propValues returns the text of each property named local in a
// multistatus answer, whatever its namespace prefix.
func propValues(t *testing.T, body []byte, local string) []string {
	t.Helper()
	var out []string
	dec := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%v in %s", err, body)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == local {
			var v string
			if err := dec.DecodeElement(&v, &el); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
	}
}

// TestProppatchSizeLimits: a 2 MB PROPPATCH is refused with 413, stores
// nothing and costs the bridge no memory; PROPPATCHes that together pass a
// file's allowance (256 KiB) end in 507 with the earlier ones intact.
func TestProppatchSizeLimits(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		p := m.Path + "/props%20limits.txt"
		if resp, _ := b.admin(t, "PUT", p, []byte("some content")); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		defer b.admin(t, "DELETE", p, nil)
		patch := func(name string, size int) []byte {
			return []byte(`<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:e2e"><D:set><D:prop><Z:` +
				name + `>` + strings.Repeat("x", size) + `</Z:` + name + `></D:prop></D:set></D:propertyupdate>`)
		}
		big := patch("big", 2<<20)
		if resp, body := b.admin(t, "PROPPATCH", p, big); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("2 MB PROPPATCH: %d %s", resp.StatusCode, body)
		}
		// The same without a Content-Length (chunked): read up to the cap only.
		req, err := http.NewRequest("PROPPATCH", b.url+p, io.MultiReader(bytes.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(adminUser, adminPass)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked 2 MB PROPPATCH: %d", resp.StatusCode)
			}
		} // else the bridge closed the connection while the body was still being sent
		ask := []byte(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:e2e"><D:prop><Z:big/><Z:p0/><Z:p4/></D:prop></D:propfind>`)
		resp, body := b.admin(t, "PROPFIND", p, ask, "Depth", "0")
		if resp.StatusCode != http.StatusMultiStatus || bytes.Contains(body, []byte("xxxx")) {
			t.Fatalf("after 413: %d, %d bytes: something was stored", resp.StatusCode, len(body))
		}
		if rss, ok := bridgeRSS(t, b); ok && rss >= 64<<20 {
			t.Fatalf("bridge RSS %d MiB after the 2 MB PROPPATCH, want under 64 MiB", rss>>20)
		}
		// 60 kB each: four fit in 256 KiB, the fifth does not.
		for i := 0; i < 5; i++ {
			resp, body := b.admin(t, "PROPPATCH", p, patch(fmt.Sprintf("p%d", i), 60_000))
			want := "HTTP/1.1 200 OK"
			if i == 4 {
				want = "HTTP/1.1 507 Insufficient Storage"
			}
			if resp.StatusCode != http.StatusMultiStatus || !bytes.Contains(body, []byte(want)) {
				t.Fatalf("PROPPATCH %d: %d %s, want %s", i, resp.StatusCode, body, want)
			}
		}
		resp, body = b.admin(t, "PROPFIND", p, ask, "Depth", "0")
		if vals := propValues(t, body, "p0"); resp.StatusCode != http.StatusMultiStatus || len(vals) != 1 || len(vals[0]) != 60_000 {
			t.Fatalf("the first property after the 507: %d %d values", resp.StatusCode, len(vals))
		}
		if vals := propValues(t, body, "p4"); len(vals) != 1 || vals[0] != "" {
			t.Fatal("the refused property was stored")
		}
	})
}

// TestExplorerOrderKeepsModTime replays Windows Explorer (PUT of 0 bytes,
// LOCK, PROPPATCH of Win32LastModifiedTime, PUT of the content without a
// time, UNLOCK): the file's getlastmodified is the time Explorer sent, not
// the upload's.
func TestExplorerOrderKeepsModTime(t *testing.T) {
	const sent = "Thu, 02 Jan 2020 03:04:05 GMT"
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		p := m.Path + "/explorer%20time.txt"
		if resp, _ := b.admin(t, "PUT", p, []byte{}); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("empty PUT: %d", resp.StatusCode)
		}
		lock := `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>explorer</D:href></D:owner></D:lockinfo>`
		resp, _ := b.admin(t, "LOCK", p, []byte(lock), "Timeout", "Second-3600")
		token := resp.Header.Get("Lock-Token")
		if resp.StatusCode != 200 || token == "" {
			t.Fatalf("LOCK: %d %q", resp.StatusCode, token)
		}
		patch := `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>` +
			`<Z:Win32CreationTime>` + sent + `</Z:Win32CreationTime>` +
			`<Z:Win32LastAccessTime>` + sent + `</Z:Win32LastAccessTime>` +
			`<Z:Win32LastModifiedTime>` + sent + `</Z:Win32LastModifiedTime>` +
			`<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`
		resp, body := b.admin(t, "PROPPATCH", p, []byte(patch), "If", "("+token+")")
		if resp.StatusCode != 207 || !strings.Contains(string(body), "200 OK") || strings.Contains(string(body), "HTTP/1.1 4") {
			t.Fatalf("PROPPATCH: %d %s", resp.StatusCode, body)
		}
		content := []byte("content written by Explorer")
		if resp, _ := b.admin(t, "PUT", p, content, "If", "("+token+")"); resp.StatusCode != 204 && resp.StatusCode != 201 {
			t.Fatalf("content PUT: %d", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "UNLOCK", p, nil, "Lock-Token", token); resp.StatusCode != 204 {
			t.Fatalf("UNLOCK: %d", resp.StatusCode)
		}
		if resp, got := b.get(t, adminUser, adminPass, p); resp.StatusCode != 200 || !bytes.Equal(got, content) {
			t.Fatalf("GET: %d %q", resp.StatusCode, got)
		}
		ask := []byte(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/><D:getcontentlength/></D:prop></D:propfind>`)
		resp, body = b.admin(t, "PROPFIND", p, ask, "Depth", "0")
		if resp.StatusCode != http.StatusMultiStatus {
			t.Fatalf("PROPFIND: %d %s", resp.StatusCode, body)
		}
		if got := propValues(t, body, "getlastmodified"); len(got) != 1 || got[0] != sent {
			t.Fatalf("getlastmodified %q, want %q (Win32LastModifiedTime)", got, sent)
		}
		if got := propValues(t, body, "getcontentlength"); len(got) != 1 || got[0] != strconv.Itoa(len(content)) {
			t.Fatalf("getcontentlength %q", got)
		}
	})
}
