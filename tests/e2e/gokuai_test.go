package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gokuaifake "bridge/tests/fakes/gokuai"
)

// TestGokuaiLibraries drives a Gokuai mount in its all-libraries view
// through its own bridge: the libraries are the mount's folders, its root
// takes no files, each library has its own quota, and a MOVE between
// libraries is done by the provider (copy with delete_from), so no byte of
// the file passes through the bridge.
func TestGokuaiLibraries(t *testing.T) {
	gk := gokuaifake.New()
	t.Cleanup(func() { gk.Close() })
	srv := httptest.NewServer(gk.Handler())
	t.Cleanup(srv.Close)
	gk.SetBaseURL(srv.URL)
	dir := t.TempDir()
	b, err := startBridge(dir, []Mount{{Path: "/g", Driver: "gokuai", Setup: func() (map[string]any, error) {
		return map[string]any{"base_url": srv.URL, "client_id": gk.ClientID, "client_secret": gk.ClientSecret,
			"username": gk.Username, "password": gk.Password}, nil
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("gokuai bridge's shutdown: %v", err)
		}
	})
	watch(t, b)

	resp, body := b.admin(t, "PROPFIND", "/g/", nil, "Depth", "1")
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND /g/: %d", resp.StatusCode)
	}
	for _, lib := range []string{gokuaifake.PersonalName, gokuaifake.TeamName} {
		if !strings.Contains(string(body), "/g/"+url.PathEscape(lib)+"/") && !strings.Contains(string(body), "/g/"+lib+"/") {
			t.Errorf("library %s not listed:\n%s", lib, body)
		}
	}

	// The mount root holds libraries only, and says so.
	for method, body := range map[string][]byte{"PUT": []byte("x"), "MKCOL": nil} {
		resp, body := b.admin(t, method, "/g/stray", body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "librar") {
			t.Errorf("%s at the mount root: %d %q, want 403 with the reason", method, resp.StatusCode, body)
		}
	}

	// Quota is per library.
	quota := func(p string) (avail, used int64) {
		t.Helper()
		resp, body := b.admin(t, "PROPFIND", p, []byte(`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>`+
			`<D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`), "Depth", "0")
		if resp.StatusCode != http.StatusMultiStatus {
			t.Fatalf("quota PROPFIND %s: %d", p, resp.StatusCode)
		}
		num := func(name string) int64 {
			m := regexp.MustCompile(name + `>(\d+)<`).FindSubmatch(body)
			if m == nil {
				t.Fatalf("no %s for %s:\n%s", name, p, body)
			}
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			return n
		}
		return num("quota-available-bytes"), num("quota-used-bytes")
	}
	data := bytes.Repeat([]byte("gokuai library move "), 60_000) // 1.2 MB
	if resp, _ := b.admin(t, "PUT", "/g/Team/move-me.bin", data); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT into Team: %d", resp.StatusCode)
	}
	teamFree, teamUsed := quota("/g/Team/")
	personalFree, _ := quota("/g/" + url.PathEscape(gokuaifake.PersonalName) + "/")
	if teamUsed != int64(len(data)) || teamFree != 50<<30-int64(len(data)) || personalFree != 20<<30 {
		t.Errorf("quota: Team %d free %d used, personal %d free; want each library's own", teamFree, teamUsed, personalFree)
	}

	// MOVE across libraries: the provider copies and deletes; the bridge
	// neither downloads nor uploads the file.
	before := gk.UploadBytes()
	calls := gk.Calls()
	resp, _ = b.admin(t, "MOVE", "/g/Team/move-me.bin", nil,
		"Destination", b.url+"/g/"+url.PathEscape(gokuaifake.PersonalName)+"/moved.bin")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("MOVE across libraries: %d", resp.StatusCode)
	}
	after := gk.Calls()
	if gk.UploadBytes() != before || after["dl"] != calls["dl"] || after["download"] != calls["download"] {
		t.Errorf("MOVE across libraries moved bytes through the bridge: upload bytes %d -> %d, calls %v -> %v",
			before, gk.UploadBytes(), calls, after)
	}
	if got, ok := gk.File("/" + gokuaifake.PersonalName + "/moved.bin"); !ok || !bytes.Equal(got, data) {
		t.Error("the moved file is not in the personal library with its content")
	}
	if _, ok := gk.File("/Team/move-me.bin"); ok {
		t.Error("the moved file is still in Team")
	}
	resp, got := b.admin(t, "GET", "/g/"+url.PathEscape(gokuaifake.PersonalName)+"/moved.bin", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET the moved file: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// TestRcloneChecksGokuaiBySHA1: Gokuai's filehash is the content's sha1,
// served as oc:checksums, so rclone verifies every file against a SHA1
// sum file of the source (rclone check by itself would pick md5, which
// Gokuai has not).
func TestRcloneChecksGokuaiBySHA1(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		if m.Driver != "gokuai" {
			t.Skip("a sha1-only provider's check")
		}
		src, files, _ := oddTree(t, m)
		if out, err := rcloneVendor(t, b, m, "owncloud", "copy", src, "b:sha1"); err != nil {
			t.Fatalf("copy: %v\n%s", err, out)
		}
		sums, err := rclone(t, b, m, "hashsum", "SHA1", src)
		if err != nil {
			t.Fatalf("hashsum of the source: %v\n%s", err, sums)
		}
		sumFile := filepath.Join(t.TempDir(), "SHA1SUMS")
		if err := os.WriteFile(sumFile, []byte(sums), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := rcloneVendor(t, b, m, "owncloud", "check", "--checkfile", "SHA1", sumFile, "b:sha1")
		if err != nil || !strings.Contains(out, "0 differences found") || strings.Contains(out, "could not be checked") ||
			!strings.Contains(out, fmt.Sprintf("%d matching files", len(files))) {
			t.Fatalf("check by SHA1: %v\n%s", err, out)
		}
		// A file changed behind the bridge's back is caught by its hash.
		if err := os.WriteFile(sumFile, []byte(strings.Replace(sums, sums[:40], strings.Repeat("0", 40), 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := rcloneVendor(t, b, m, "owncloud", "check", "--checkfile", "SHA1", sumFile, "b:sha1"); err == nil ||
			!strings.Contains(out, "1 differences found") {
			t.Fatalf("a wrong sum passed: %v\n%s", err, out)
		}
	})
}
