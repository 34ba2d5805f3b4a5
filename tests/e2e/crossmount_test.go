package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestCrossMountCopyMove moves bytes between providers with WebDAV COPY and
// MOVE, each mount to the next in the list: the bridge copies through itself
// and must neither lose nor alter a byte, nor leave a moved source behind.
func TestCrossMountCopyMove(t *testing.T) {
	b := startShared(t)
	if len(b.mounts) < 2 {
		t.Skip("one mount only")
	}
	for i, src := range b.mounts {
		dst := b.mounts[(i+1)%len(b.mounts)]
		t.Run(strings.TrimPrefix(src.Path, "/")+"-to-"+strings.TrimPrefix(dst.Path, "/"), func(t *testing.T) {
			watch(t, b)
			data := randomBytes(1<<20 + 17)
			small := []byte("small file")
			put := func(p string, body []byte) {
				t.Helper()
				if resp, _ := b.admin(t, "PUT", p, body); resp.StatusCode != 201 && resp.StatusCode != 204 {
					t.Fatalf("PUT %s: %d", p, resp.StatusCode)
				}
			}
			mustGet := func(p string, want []byte) {
				t.Helper()
				if resp, got := b.get(t, adminUser, adminPass, p); resp.StatusCode != 200 || !bytes.Equal(got, want) {
					t.Fatalf("GET %s: %d, %d bytes, want %d", p, resp.StatusCode, len(got), len(want))
				}
			}
			gone := func(p string) {
				t.Helper()
				if resp, _ := b.admin(t, "PROPFIND", p, nil, "Depth", "0"); resp.StatusCode != 404 {
					t.Fatalf("%s still answers %d after a MOVE", p, resp.StatusCode)
				}
			}
			transfer := func(method, from, to string) {
				t.Helper()
				resp, body := b.admin(t, method, from, nil, "Destination", b.url+to, "Overwrite", "F")
				if resp.StatusCode != 201 {
					t.Fatalf("%s %s to %s: %d %.300s", method, from, to, resp.StatusCode, body)
				}
			}

			put(src.Path+"/xm-file.bin", data)
			transfer("COPY", src.Path+"/xm-file.bin", dst.Path+"/xm-copied.bin")
			mustGet(dst.Path+"/xm-copied.bin", data)
			mustGet(src.Path+"/xm-file.bin", data)
			transfer("MOVE", src.Path+"/xm-file.bin", dst.Path+"/xm-moved.bin")
			mustGet(dst.Path+"/xm-moved.bin", data)
			gone(src.Path + "/xm-file.bin")

			// A folder with a subfolder, an empty file and names to escape.
			if resp, _ := b.admin(t, "MKCOL", src.Path+"/xm%20dir", nil); resp.StatusCode != 201 {
				t.Fatalf("MKCOL: %d", resp.StatusCode)
			}
			if resp, _ := b.admin(t, "MKCOL", src.Path+"/xm%20dir/sub%20%23", nil); resp.StatusCode != 201 {
				t.Fatalf("MKCOL: %d", resp.StatusCode)
			}
			tree := map[string][]byte{"a+b & c.txt": small, "sub #/中文.bin": data, "empty": {}}
			for name, body := range tree {
				put(src.Path+"/xm%20dir/"+escapePath(name), body)
			}
			transfer("COPY", src.Path+"/xm%20dir/", dst.Path+"/xm%20dir%20copy/")
			transfer("MOVE", src.Path+"/xm%20dir/", dst.Path+"/xm%20dir%20moved/")
			for name, body := range tree {
				mustGet(dst.Path+"/xm%20dir%20copy/"+escapePath(name), body)
				mustGet(dst.Path+"/xm%20dir%20moved/"+escapePath(name), body)
			}
			gone(src.Path + "/xm%20dir/")
			for name, body := range tree {
				keep(dst, "xm dir moved/"+name, body)
			}
			keep(dst, "xm-moved.bin", data)

			// Overwrite: F refuses an existing destination, T replaces it.
			put(src.Path+"/xm-other.bin", small)
			if resp, _ := b.admin(t, "COPY", src.Path+"/xm-other.bin", nil, "Destination", b.url+dst.Path+"/xm-moved.bin", "Overwrite", "F"); resp.StatusCode != http.StatusPreconditionFailed {
				t.Fatalf("COPY onto an existing file with Overwrite: F: %d, want 412", resp.StatusCode)
			}
			mustGet(dst.Path+"/xm-moved.bin", data)
			if resp, _ := b.admin(t, "COPY", src.Path+"/xm-other.bin", nil, "Destination", b.url+dst.Path+"/xm-copied.bin", "Overwrite", "T"); resp.StatusCode != 204 {
				t.Fatalf("COPY onto an existing file with Overwrite: T: %d, want 204", resp.StatusCode)
			}
			mustGet(dst.Path+"/xm-copied.bin", small)
		})
	}
}

// TestManyEntries fills one folder past a provider's listing page (disktop
// lists 200 per page) and checks that rclone and a Depth 1 PROPFIND see
// every entry, once.
func TestManyEntries(t *testing.T) {
	const n = 450
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		if resp, _ := b.admin(t, "MKCOL", m.Path+"/many", nil); resp.StatusCode != 201 {
			t.Fatalf("MKCOL: %d", resp.StatusCode)
		}
		want := map[string]int64{}
		var mu sync.Mutex
		var failed []string
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					name := fmt.Sprintf("f %03d.txt", i)
					body := bytes.Repeat([]byte("x"), i%7)
					req, _ := http.NewRequest("PUT", b.url+m.Path+"/many/"+escapePath(name), bytes.NewReader(body))
					req.SetBasicAuth(adminUser, adminPass)
					resp, err := http.DefaultClient.Do(req)
					mu.Lock()
					if err != nil || (resp.StatusCode != 201 && resp.StatusCode != 204) {
						failed = append(failed, fmt.Sprintf("%s: %v %v", name, err, resp))
					}
					want[name] = int64(len(body))
					mu.Unlock()
					if resp != nil {
						resp.Body.Close()
					}
				}
			}()
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		if len(failed) > 0 {
			t.Fatalf("%d PUTs failed, first: %s", len(failed), failed[0])
		}

		listed, _ := lsjson(t, b, m, "b:many")
		if len(listed) != n {
			t.Errorf("rclone lsjson: %d files, want %d", len(listed), n)
		}
		for name, size := range want {
			if got, ok := listed[name]; !ok || got != size {
				t.Errorf("rclone lsjson: %q size %d (listed %v), want %d", name, got, ok, size)
			}
		}
		resp, body := b.admin(t, "PROPFIND", m.Path+"/many/", nil, "Depth", "1")
		if got := strings.Count(string(body), "<D:href>") + strings.Count(string(body), "<d:href>"); resp.StatusCode != 207 || got != n+1 {
			t.Errorf("PROPFIND Depth 1: %d, %d hrefs, want %d", resp.StatusCode, got, n+1)
		}
		if out, err := rclone(t, b, m, "purge", "b:many"); err != nil {
			t.Fatalf("purge: %v\n%s", err, out)
		}
	})
}

// TestCopyIntoDiscCloudByURLImport: a COPY from a mount whose links may be
// handed out (Disk.Top) into DiscCloud is the site's url_upload_add: the
// site fetches the file itself, and no byte passes through the bridge.
func TestCopyIntoDiscCloudByURLImport(t *testing.T) {
	b := startShared(t)
	var src, dst *Mount
	for i := range b.mounts {
		switch b.mounts[i].Path {
		case "/disktop":
			src = &b.mounts[i]
		case "/disccloud":
			dst = &b.mounts[i]
		}
	}
	if src == nil || dst == nil || dst.UploadBytes == nil {
		t.Fatal("the /disktop and /disccloud mounts are part of the harness")
	}
	watch(t, b)
	data := randomBytes(3<<20 + 5)
	if resp, _ := b.admin(t, "PUT", "/disktop/import-src.bin", data); resp.StatusCode != 201 && resp.StatusCode != 204 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	before := dst.UploadBytes()
	resp, _ := b.admin(t, "COPY", "/disktop/import-src.bin", nil, "Destination", b.url+"/disccloud/imported.bin", "Overwrite", "T")
	if resp.StatusCode != 201 && resp.StatusCode != 204 {
		t.Fatalf("COPY into DiscCloud: %d", resp.StatusCode)
	}
	if n := dst.UploadBytes() - before; n != 0 {
		t.Fatalf("%d bytes were uploaded to DiscCloud: the copy went through the bridge", n)
	}
	if got, err := dst.Backing("imported.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the imported file behind the bridge: %v, %d bytes", err, len(got))
	}
	if resp, got := b.get(t, adminUser, adminPass, "/disccloud/imported.bin"); resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET the imported file: %d, %d bytes", resp.StatusCode, len(got))
	}
	keep(*dst, "imported.bin", data)
}
