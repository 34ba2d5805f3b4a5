package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuthentication(t *testing.T) {
	b := theBridge(t)
	for _, c := range []struct{ user, pass string }{{"", ""}, {adminUser, "not-the-password"}, {"nobody", adminPass}} {
		resp, body := b.request(t, c.user, c.pass, "PROPFIND", "/", nil, "Depth", "0")
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
			t.Fatalf("user %q: %d %q", c.user, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if c.pass != "" && strings.Contains(string(body), c.pass) {
			t.Fatal("password echoed in a 401 body")
		}
	}
}

func TestReadOnlyUser(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		if resp, _ := b.admin(t, "PUT", m.Path+"/ro.txt", []byte("keep")); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("setup: %d", resp.StatusCode)
		}
		dest := []string{"Destination", b.url + m.Path + "/ro-copy.txt"}
		for _, c := range []struct {
			method string
			hdr    []string
		}{{"PUT", nil}, {"MKCOL", nil}, {"DELETE", nil}, {"MOVE", dest}, {"COPY", dest}, {"PROPPATCH", nil}} {
			path := m.Path + "/ro.txt"
			if c.method == "MKCOL" {
				path = m.Path + "/ro-dir"
			}
			resp, _ := b.request(t, readerUser, readerPass, c.method, path, []byte("x"), c.hdr...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("reader %s: %d, want 403", c.method, resp.StatusCode)
			}
		}
		resp, body := b.request(t, readerUser, readerPass, "GET", m.Path+"/ro.txt", nil)
		if resp.StatusCode != 200 || string(body) != "keep" {
			t.Fatalf("reader GET: %d %q", resp.StatusCode, body)
		}
	})
}

func TestHiddenMount(t *testing.T) {
	b := theBridge(t)
	resp, body := b.request(t, limitedUser, limitedPass, "PROPFIND", "/", nil, "Depth", "1")
	if resp.StatusCode != http.StatusMultiStatus || strings.Contains(string(body), hiddenMount) {
		t.Fatalf("root for limited user: %d, lists hidden: %v", resp.StatusCode, strings.Contains(string(body), hiddenMount))
	}
	if resp, body := b.admin(t, "PROPFIND", "/", nil, "Depth", "1"); !strings.Contains(string(body), hiddenMount) {
		t.Fatalf("admin does not see %s: %d", hiddenMount, resp.StatusCode)
	}
	for _, method := range []string{"GET", "PROPFIND", "PUT", "DELETE"} {
		resp, _ := b.request(t, limitedUser, limitedPass, method, hiddenMount+"/x", []byte("x"), "Depth", "0")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("limited %s %s/x: %d, want 404", method, hiddenMount, resp.StatusCode)
		}
	}
}

// rawRequest sends a request line exactly as given, so no client library
// cleans or re-encodes the path.
func rawRequest(t *testing.T, b *bridge, method, target string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(b.url, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(method, b.url+"/", nil)
	req.SetBasicAuth(adminUser, adminPass)
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nDepth: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		method, target, strings.TrimPrefix(b.url, "http://"), req.Header.Get("Authorization"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

func TestPathTricksNeverEscape(t *testing.T) {
	b := theBridge(t)
	// A sentinel beside the mount folders: no path trick may read or delete it.
	sentinel := filepath.Join(workDir, "sentinel.txt")
	const secret = "SENTINEL-CONTENT-8d1f"
	os.WriteFile(sentinel, []byte(secret), 0o644)
	for _, m := range b.mounts {
		for _, p := range []string{
			m.Path + "/../sentinel.txt",
			m.Path + "/%2e%2e/sentinel.txt",
			m.Path + "/..%2fsentinel.txt",
			m.Path + "/%2e%2e%2fsentinel.txt",
			m.Path + "/%2e%2e%2f%2e%2e%2fsentinel.txt",
			m.Path + "/x%00/../../sentinel.txt",
			m.Path + "/a%00b",
			"/..%2f..%2fsentinel.txt",
		} {
			for _, method := range []string{"GET", "DELETE", "PROPFIND"} {
				status, body := rawRequest(t, b, method, p)
				if strings.Contains(body, secret) || (status >= 200 && status < 300) {
					t.Errorf("%s %s: %d %q", method, p, status, body)
				}
				if status != 400 && status != 403 && status != 404 {
					t.Errorf("%s %s: status %d, want 400, 403 or 404", method, p, status)
				}
			}
		}
	}
	if data, err := os.ReadFile(sentinel); err != nil || string(data) != secret {
		t.Fatalf("sentinel changed: %v %q", err, data)
	}
}

func TestMalformedRequests(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/", []byte("<D:propfind xmlns:D='DAV:'><D:prop><unclosed"), "Depth", "0"); resp.StatusCode != 400 {
			t.Errorf("malformed PROPFIND XML: %d, want 400", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/", nil, "Depth", "infinity"); resp.StatusCode != 403 {
			t.Errorf("Depth: infinity: %d, want 403", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "PUT", m.Path+"/no/such/folder/f.txt", []byte("x")); resp.StatusCode != 409 {
			t.Errorf("PUT into a missing folder: %d, want 409", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "MOVE", m.Path+"/", nil, "Destination", b.url+"/elsewhere"); resp.StatusCode != 403 {
			t.Errorf("MOVE of a mount root: %d, want 403", resp.StatusCode)
		}
	})
}
