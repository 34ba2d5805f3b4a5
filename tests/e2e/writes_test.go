package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// parallel sends n requests at once and returns their statuses.
func parallel(t *testing.T, b *bridge, n int, method, path string, body func(i int) []byte) []int {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body(i))
			}
			req, _ := http.NewRequest(method, b.url+path, rd)
			req.SetBasicAuth(adminUser, adminPass)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes[i] = -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	return codes
}

// TestParallelWritesOfOnePath: writes of one path with no WebDAV lock
// anywhere wait for each other instead of answering 423 (rclone's
// parallel transfers make the same parent folders).
func TestParallelWritesOfOnePath(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		codes := parallel(t, b, 10, "MKCOL", m.Path+"/par-dir", nil)
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusMethodNotAllowed:
			default:
				t.Fatalf("10 parallel MKCOLs: %v, want one 201 and 405s", codes)
			}
		}
		if created != 1 {
			t.Fatalf("10 parallel MKCOLs: %v, want exactly one 201", codes)
		}
		bodies := make([][]byte, 20)
		for i := range bodies {
			bodies[i] = bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		}
		codes = parallel(t, b, 20, "PUT", m.Path+"/par-dir/one.txt", func(i int) []byte { return bodies[i] })
		for _, c := range codes {
			if c != http.StatusCreated && c != http.StatusNoContent {
				t.Fatalf("20 parallel PUTs of one path: %v, want all 2xx", codes)
			}
		}
		resp, got := b.get(t, adminUser, adminPass, m.Path+"/par-dir/one.txt")
		whole := false
		for _, body := range bodies {
			whole = whole || bytes.Equal(got, body)
		}
		if resp.StatusCode != 200 || !whole {
			t.Fatalf("after 20 parallel PUTs: %d, %d bytes, not one of the bodies whole", resp.StatusCode, len(got))
		}
		keep(m, "par-dir/one.txt", got)
	})
}

// TestNamesThatWouldBreakAListing: names with control characters or
// invalid UTF-8 are refused with 400 on every mount; a folder holding
// such names made behind the bridge's back still lists as valid XML.
func TestNamesThatWouldBreakAListing(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		b.admin(t, "PUT", m.Path+"/names-src.txt", []byte("x"))
		for _, name := range []string{"bell%07.txt", "nl%0Aname.txt", "del%7F.txt", "latin1-%E9t%E9.txt", "%FF%FE"} {
			if resp, _ := b.admin(t, "PUT", m.Path+"/"+name, []byte("x")); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("PUT %s: %d, want 400", name, resp.StatusCode)
			}
			if resp, _ := b.admin(t, "MKCOL", m.Path+"/"+name, nil); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("MKCOL %s: %d, want 400", name, resp.StatusCode)
			}
			for _, method := range []string{"COPY", "MOVE"} {
				if resp, _ := b.admin(t, method, m.Path+"/names-src.txt", nil, "Destination", b.url+m.Path+"/"+name); resp.StatusCode != http.StatusBadRequest {
					t.Errorf("%s to %s: %d, want 400", method, name, resp.StatusCode)
				}
			}
		}
		b.admin(t, "DELETE", m.Path+"/names-src.txt", nil)
		if m.Driver != "local" {
			return
		}
		// Planted directly in the local root (in a folder made through the
		// bridge, so its cached parent knows it): the folder still lists.
		if resp, _ := b.admin(t, "MKCOL", m.Path+"/planted", nil); resp.StatusCode != 201 {
			t.Fatalf("MKCOL planted: %d", resp.StatusCode)
		}
		dir := filepath.Join(workDir, "local-root", "planted")
		for _, name := range []string{"ctl\x01name.txt", "bad\xffutf8.txt", "fine.txt"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("p"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The bridge cached planted/ as empty when it made it: a server-side
		// copy is a folder it has not listed yet.
		if resp, _ := b.admin(t, "COPY", m.Path+"/planted", nil, "Destination", b.url+m.Path+"/planted-copy"); resp.StatusCode != 201 {
			t.Fatalf("COPY planted: %d", resp.StatusCode)
		}
		for _, user := range [][2]string{{adminUser, adminPass}, {readerUser, readerPass}} {
			resp, body := b.request(t, user[0], user[1], "PROPFIND", m.Path+"/planted-copy/", nil, "Depth", "1")
			if resp.StatusCode != http.StatusMultiStatus {
				t.Fatalf("PROPFIND of a folder with planted names (%s): %d", user[0], resp.StatusCode)
			}
			var ms struct {
				Responses []struct {
					Href string `xml:"href"`
				} `xml:"response"`
			}
			if err := xml.Unmarshal(body, &ms); err != nil {
				t.Fatalf("the listing of a folder with planted names is not XML: %v\n%q", err, body)
			}
			if len(ms.Responses) != 4 {
				t.Fatalf("listed %d responses, want the folder and its 3 files", len(ms.Responses))
			}
		}
	})
}

// TestShortPutStoresNothing: a PUT whose body ends before its
// Content-Length (the client half-closes) keeps the old file, stores
// nothing, and is not logged as a success.
func TestShortPutStoresNothing(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		old := []byte("the old content, whole")
		if resp, _ := b.admin(t, "PUT", m.Path+"/short.txt", old); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		from := len(b.logs.String()) // earlier requests may have come from the same port
		host := strings.TrimPrefix(b.url, "http://")
		conn, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		client := conn.LocalAddr().String() // the log's "remote" of this request
		auth, _ := http.NewRequest("PUT", b.url, nil)
		auth.SetBasicAuth(adminUser, adminPass)
		fmt.Fprintf(conn, "PUT %s/short.txt HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: 100\r\n\r\n0123456789",
			m.Path, host, auth.Header.Get("Authorization"))
		conn.(*net.TCPConn).CloseWrite()
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			if resp.StatusCode < 400 {
				t.Errorf("the short PUT was answered %d", resp.StatusCode)
			}
			resp.Body.Close()
		}
		conn.Close()
		// The bridge logs the request once it has given up on it.
		var logged bool
		for range 50 {
			for _, line := range strings.Split(b.logs.String()[from:], "\n") {
				var rec struct {
					Msg    string `json:"message"`
					Method string `json:"method"`
					Path   string `json:"path"`
					Status int    `json:"status"`
					Remote string `json:"remote"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Method == "PUT" && rec.Remote == client && rec.Path == m.Path+"/short.txt" {
					logged = true
					if rec.Status < 400 {
						t.Errorf("the short PUT is logged as %d: %s", rec.Status, line)
					}
				}
			}
			if logged {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !logged {
			t.Error("the short PUT was never logged")
		}
		if resp, got := b.get(t, adminUser, adminPass, m.Path+"/short.txt"); resp.StatusCode != 200 || !bytes.Equal(got, old) {
			t.Errorf("after a short PUT: %d %q, want the old content", resp.StatusCode, got)
		}
		keep(m, "short.txt", old)
	})
}

// TestExpectedEntityLength: Finder's chunked PUT announces its length in
// X-Expected-Entity-Length; a body of another length stores nothing.
func TestExpectedEntityLength(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		put := func(announced int, body string) int {
			req, _ := http.NewRequest("PUT", b.url+m.Path+"/finder.txt", io.NopCloser(strings.NewReader(body))) // no length: chunked
			req.SetBasicAuth(adminUser, adminPass)
			req.Header.Set("X-Expected-Entity-Length", fmt.Sprint(announced))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := put(100000, "short"); code != http.StatusBadRequest {
			t.Fatalf("5 bytes announced as 100000: %d, want 400", code)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/finder.txt", nil, "Depth", "0"); resp.StatusCode != 404 {
			t.Fatalf("the refused PUT stored a file: %d", resp.StatusCode)
		}
		if code := put(5, "whole"); code != http.StatusCreated {
			t.Fatalf("5 bytes announced as 5: %d, want 201", code)
		}
		keep(m, "finder.txt", []byte("whole"))
	})
}

// TestInvalidRangesAreIgnored: RFC 9110 §14.2: an invalid Range header is
// ignored (200, the whole file); a valid one that cannot be satisfied is
// 416.
func TestInvalidRangesAreIgnored(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		data := []byte("0123456789abcdef")
		b.admin(t, "PUT", m.Path+"/ranges.txt", data)
		for _, c := range []struct {
			rng    string
			status int
			body   string
		}{
			{"bytes=5-1", 200, string(data)},
			{"bytes=abc", 200, string(data)},
			{"items=0-1", 200, string(data)},
			{"bytes=-0", 416, ""},
			{"bytes=100-", 416, ""},
			{"bytes=2-4", 206, "234"},
			{"bytes=-3", 206, "def"},
		} {
			resp, body := b.admin(t, "GET", m.Path+"/ranges.txt", nil, "Range", c.rng)
			if resp.StatusCode == http.StatusFound { // a redirect mount: the provider answers Range
				return
			}
			if resp.StatusCode != c.status || (c.status != 416 && string(body) != c.body) {
				t.Errorf("Range %q: %d %q, want %d %q", c.rng, resp.StatusCode, body, c.status, c.body)
			}
		}
		keep(m, "ranges.txt", data)
	})
}
