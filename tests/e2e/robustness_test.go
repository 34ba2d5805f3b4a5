package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// cutUpload starts a PUT that announces 8 MiB, sends 1 MiB and hangs up,
// as a client whose network drops does.
func cutUpload(t *testing.T, b *bridge, path string) {
	t.Helper()
	host := strings.TrimPrefix(b.url, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	auth, _ := http.NewRequest("PUT", b.url, nil)
	auth.SetBasicAuth(adminUser, adminPass)
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n",
		path, host, auth.Header.Get("Authorization"), 8<<20)
	if _, err := conn.Write(bytes.Repeat([]byte("N"), 1<<20)); err != nil {
		t.Fatal(err)
	}
}

// TestCutUploadLosesNothing: an upload cut short neither replaces the file
// it was overwriting, nor creates a file, nor leaves its spool file behind.
func TestCutUploadLosesNothing(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		old := []byte("the content before the cut upload")
		if resp, _ := b.admin(t, "PUT", m.Path+"/cut-victim.txt", old); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		cutUpload(t, b, m.Path+"/cut-victim.txt")
		cutUpload(t, b, m.Path+"/cut-new.txt")

		// The bridge notices the hang-up on its own schedule: wait (bounded)
		// until its spool folder is empty again.
		spool := filepath.Join(workDir, "tmp")
		var left []string
		for range 100 {
			left = nil
			filepath.WalkDir(spool, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, p)
				}
				return nil
			})
			if len(left) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(left) > 0 {
			t.Errorf("spool files left after cut uploads: %v", left)
		}
		if resp, got := b.get(t, adminUser, adminPass, m.Path+"/cut-victim.txt"); resp.StatusCode != 200 || !bytes.Equal(got, old) {
			t.Errorf("overwritten file after a cut upload: %d %.60q, want the old content", resp.StatusCode, got)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/cut-new.txt", nil, "Depth", "0"); resp.StatusCode != 404 {
			t.Errorf("a cut upload created its file: %d", resp.StatusCode)
		}
		keep(m, "cut-victim.txt", old)
	})
}

// TestConcurrentOverwrites: two clients replacing one file at once leave
// one of the two contents whole, never a mix.
func TestConcurrentOverwrites(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		bodies := [][]byte{bytes.Repeat([]byte("A"), 2<<20), bytes.Repeat([]byte("B"), 2<<20+1)}
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for round := range 3 {
			for i, body := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest("PUT", b.url+m.Path+"/race.bin", bytes.NewReader(body))
					req.SetBasicAuth(adminUser, adminPass)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						statuses[i] = -1
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				}()
			}
			wg.Wait()
			for i, s := range statuses {
				if s != 201 && s != 204 { // writes of one path wait for each other: never 423
					t.Errorf("round %d: PUT %c: %d", round, 'A'+i, s)
				}
			}
			resp, got := b.get(t, adminUser, adminPass, m.Path+"/race.bin")
			if resp.StatusCode != 200 || (!bytes.Equal(got, bodies[0]) && !bytes.Equal(got, bodies[1])) {
				t.Fatalf("round %d: after two concurrent PUTs: %d, %d bytes, neither whole body", round, resp.StatusCode, len(got))
			}
			if m.Backing != nil {
				if back, err := m.Backing("race.bin"); err != nil || !bytes.Equal(back, got) {
					t.Fatalf("round %d: behind the bridge %d bytes (%v), served %d", round, len(back), err, len(got))
				}
			}
		}
	})
}

// TestConditionalGETAfterOverwrite is a browser's or a sync client's cache
// check: validators taken before a file was replaced must not answer 304
// afterwards, or the client keeps the old bytes. Validators taken now must.
func TestConditionalGETAfterOverwrite(t *testing.T) {
	b := startShared(t)
	type seen struct{ etag, modified string }
	before := map[string]seen{}
	for _, m := range b.mounts {
		if resp, _ := b.admin(t, "PUT", m.Path+"/cond.txt", []byte("version one")); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("%s: PUT: %d", m.Path, resp.StatusCode)
		}
		resp, _ := b.admin(t, "HEAD", m.Path+"/cond.txt", nil)
		before[m.Path] = seen{resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")}
	}
	// HTTP dates count whole seconds: let the clock pass one, once for all
	// mounts, so that a replaced file can carry a later date.
	time.Sleep(1100 * time.Millisecond)
	for _, m := range b.mounts {
		t.Run(strings.TrimPrefix(m.Path, "/"), func(t *testing.T) {
			watch(t, b)
			old := before[m.Path]
			if resp, _ := b.admin(t, "PUT", m.Path+"/cond.txt", []byte("version two!")); resp.StatusCode != 201 && resp.StatusCode != 204 {
				t.Fatalf("overwrite: %d", resp.StatusCode)
			}
			// A redirect mount answers HEAD as GET, with its 302.
			head, _ := b.admin(t, "HEAD", m.Path+"/cond.txt", nil)
			if head.StatusCode == http.StatusOK && head.ContentLength != int64(len("version two!")) {
				t.Errorf("HEAD Content-Length %d, want %d", head.ContentLength, len("version two!"))
			} else if head.StatusCode != http.StatusOK && (m.Download != "redirect" || head.StatusCode != http.StatusFound) {
				t.Errorf("HEAD: %d", head.StatusCode)
			}
			if old.etag != "" {
				if head.Header.Get("ETag") == old.etag {
					t.Errorf("ETag %s unchanged by an overwrite", old.etag)
				}
				if resp, _ := b.admin(t, "GET", m.Path+"/cond.txt", nil, "If-None-Match", old.etag); resp.StatusCode == http.StatusNotModified {
					t.Errorf("GET with If-None-Match: the replaced file's ETag %s: 304", old.etag)
				}
			}
			if old.modified != "" {
				if resp, _ := b.admin(t, "GET", m.Path+"/cond.txt", nil, "If-Modified-Since", old.modified); resp.StatusCode == http.StatusNotModified {
					t.Errorf("GET with If-Modified-Since: %s (the Last-Modified before the overwrite): 304 Not Modified, so a client keeps the old content; Last-Modified now %q",
						old.modified, head.Header.Get("Last-Modified"))
				}
			}
			if etag := head.Header.Get("ETag"); etag != "" {
				if resp, _ := b.admin(t, "GET", m.Path+"/cond.txt", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
					t.Errorf("GET with If-None-Match: the current ETag: %d, want 304", resp.StatusCode)
				}
			}
			keep(m, "cond.txt", []byte("version two!"))
		})
	}
}

// TestChecksumMismatchStoresNothing: an upload whose OC-Checksum (sent by
// rclone's owncloud vendor and ownCloud clients) does not match its bytes
// was damaged on the way; it must neither replace the file nor create one.
func TestChecksumMismatchStoresNothing(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		old := []byte("checksummed original")
		if resp, _ := b.admin(t, "PUT", m.Path+"/sum.txt", old); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		for _, sum := range []string{"SHA1:0000000000000000000000000000000000000000", "MD5:00000000000000000000000000000000"} {
			for _, p := range []string{"/sum.txt", "/sum-new.txt"} {
				if resp, _ := b.admin(t, "PUT", m.Path+p, []byte("damaged on the way"), "OC-Checksum", sum); resp.StatusCode != http.StatusBadRequest {
					t.Errorf("PUT %s with a wrong %s: %d, want 400", p, sum, resp.StatusCode)
				}
			}
		}
		if resp, got := b.get(t, adminUser, adminPass, m.Path+"/sum.txt"); resp.StatusCode != 200 || !bytes.Equal(got, old) {
			t.Errorf("after refused uploads: %d %q, want the original", resp.StatusCode, got)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/sum-new.txt", nil, "Depth", "0"); resp.StatusCode != 404 {
			t.Errorf("a refused upload created its file: %d", resp.StatusCode)
		}
		keep(m, "sum.txt", old)
	})
}

// TestProviderDown runs a bridge of its own whose providers' fakes stop
// answering: requests to those mounts fail promptly with a gateway error,
// the other mount goes on serving, and /healthz says which mount is down.
func TestProviderDown(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	mounts := []Mount{
		{Path: "/local", Driver: "local", Setup: func() (map[string]any, error) { return map[string]any{"root": root}, nil }},
		disktopMount("/disktop-down", "", false),
		cloudreveMount("/cloudreve-down", "", false),
	}
	before := len(fakeServers)
	b, err := startBridge(dir, mounts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	watch(t, b)
	for _, m := range mounts {
		if resp, _ := b.admin(t, "PUT", m.Path+"/before.txt", []byte("up")); resp.StatusCode != 201 {
			t.Fatalf("%s up: PUT %d", m.Path, resp.StatusCode)
		}
	}
	for _, srv := range fakeServers[before:] {
		srv.Close()
	}
	for _, m := range mounts[1:] {
		for _, c := range []struct{ method, path string }{{"GET", "/before.txt"}, {"PUT", "/after.txt"}, {"PROPFIND", "/new-folder/"}, {"MKCOL", "/made"}} {
			var in []byte
			if c.method == "PUT" {
				in = []byte("x")
			}
			resp, body := b.admin(t, c.method, m.Path+c.path, in, "Depth", "1")
			if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("%s %s%s with the provider down: %d %.200q, want 502, 503 or 504", c.method, m.Path, c.path, resp.StatusCode, body)
			}
		}
	}
	if resp, body := b.get(t, adminUser, adminPass, "/local/before.txt"); resp.StatusCode != 200 || string(body) != "up" {
		t.Errorf("/local with the other providers down: %d %q", resp.StatusCode, body)
	}
	resp, body := b.request(t, "", "", "GET", "/healthz", nil)
	for _, want := range []string{`"path":"/local","ok":true`, `"path":"/disktop-down","ok":false`, `"path":"/cloudreve-down","ok":false`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("healthz (%d) lacks %s: %s", resp.StatusCode, want, body)
		}
	}
}
