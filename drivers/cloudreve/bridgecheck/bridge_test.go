// Package bridgecheck_test checks what a WebDAV client sees of a Cloudreve
// mount: the bridge's answers for the names Cloudreve forbids and for
// moving a folder into its own descendant. It is a package of its own so
// that the driver's tests do not depend on davfs.
package bridgecheck_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/cloudreve"
	"bridge/drivers/drivertest"
	cloudrevefake "bridge/tests/fakes/cloudreve"
)

func TestBridgeAnswers(t *testing.T) {
	f := cloudrevefake.New()
	fs := drivertest.Serve(t, f)
	logs := &drivertest.LogBuffer{}
	opts := map[string]any{"base_url": fs.URL, "username": f.User, "password": f.Password}
	d, err := cloudreve.New(context.Background(), drivers.Config{
		MountPath: "/c", StateDir: t.TempDir(), HTTPClient: fs.Client(), Logger: zerolog.New(logs),
		Decode: drivertest.DecodeOptions(opts),
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.New(logs),
		Mounts: []davfs.Mount{{Path: "/c", Driver: d, Redirect: true}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, p string, body io.Reader, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+p, body)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	for _, name := range []string{"bad%3Aname.txt", "what%3F.txt", "star%2A", "trailing%20"} {
		if code := do("PUT", "/c/"+name, strings.NewReader("x")).StatusCode; code != http.StatusBadRequest {
			t.Errorf("PUT %s: %d, want 400", name, code)
		}
	}
	if n := f.Calls()["upload-session"]; n != 0 {
		t.Fatalf("an upload started for a forbidden name: %d", n)
	}

	for _, p := range []string{"/c/a", "/c/a/b"} {
		if code := do("MKCOL", p, nil).StatusCode; code != http.StatusCreated {
			t.Fatalf("MKCOL %s: %d", p, code)
		}
	}
	if code := do("MOVE", "/c/a", nil, "Destination", hs.URL+"/c/a/b/a").StatusCode; code != http.StatusConflict && code != http.StatusForbidden {
		t.Fatalf("MOVE into a descendant: %d, want 409 or 403", code)
	}
	if n := f.Calls()["move"]; n != 0 || f.Orphans() != 0 {
		t.Fatalf("the move reached the server (%d calls, %d orphans)", n, f.Orphans())
	}

	// Links are signed and relative: the redirect goes to the server's
	// download URL, without the session cookie.
	if code := do("PUT", "/c/a/f.txt", strings.NewReader("hello")).StatusCode; code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	resp := do("GET", "/c/a/f.txt", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, fs.URL+"/api/v3/file/download/") {
		t.Fatalf("GET: %d Location %q", resp.StatusCode, loc)
	}
	if !logs.AssertNoSecrets(t, f.Secrets()) {
		t.FailNow()
	}
}
