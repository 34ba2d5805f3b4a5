package terabox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
	teraboxfake "bridge/tests/fakes/terabox"
)

// TestFileManagerItemErrors: filemanager answers errno 0 at the top and
// the failure in the item; each is mapped to its kind.
func TestFileManagerItemErrors(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	e.fake.Put("/a.txt", []byte("a"))
	e.fake.Put("/b.txt", []byte("b"))
	e.fake.Mkdir("/dir")
	r := drivertest.Root(t, e.drv)
	a := drivertest.Listed(t, e.drv, r, "a.txt")
	dir := drivertest.Listed(t, e.drv, r, "dir")
	gone := drivers.Ref{Path: "/gone.txt", Object: drivers.Object{Name: "gone.txt", ID: "1"}}
	goneDir := drivers.Ref{Path: "/nodir", Object: drivers.Object{Name: "nodir", ID: "2", IsDir: true}}
	for _, c := range []struct {
		what string
		err  error
		want error
	}{
		{"rename onto a taken name", second(e.drv.Rename(ctx, a, "b.txt")), drivers.ErrExist},
		{"rename to a bad name", second(e.drv.Rename(ctx, a, "a:b")), drivers.ErrInvalidName},
		{"rename a missing file", second(e.drv.Rename(ctx, gone, "x")), drivers.ErrNotFound},
		{"move into a missing folder", second(e.drv.Move(ctx, a, goneDir, "a.txt")), drivers.ErrNotFound},
		{"copy onto a taken name", second(e.drv.Copy(ctx, a, r, "b.txt")), drivers.ErrExist},
		{"copy a folder into itself", second(e.drv.Copy(ctx, dir, dir, "dir")), drivers.ErrInvalidName},
		{"remove a missing file", e.drv.Remove(ctx, gone), drivers.ErrNotFound},
		{"mkdir over a file", second(e.drv.Mkdir(ctx, r, "a.txt")), drivers.ErrExist},
		{"put a bad name", second(e.drv.Put(ctx, r, "what?", upload([]byte("x")))), drivers.ErrInvalidName},
	} {
		if !errors.Is(e.noteErr(c.err), c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
	if got, _ := e.fake.File("/a.txt"); string(got) != "a" {
		t.Fatal("a failed call changed a.txt")
	}
}

func second[T any](_ T, err error) error { return err }

// TestStatusesThroughTheBridge: the per-item errnos become WebDAV
// statuses, and no answer to a WebDAV client carries the access token
// (downloads are proxied).
func TestStatusesThroughTheBridge(t *testing.T) {
	e := newEnv(t, faults.Config{})
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.New(e.logs),
		Mounts: []davfs.Mount{{Path: "/d", Driver: e.drv, Redirect: true}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	e.fake.Put("/a.txt", []byte("content of a"))
	e.fake.Put("/gone.txt", []byte("g"))
	var answers strings.Builder
	do := func(method, p string, hdr ...string) int {
		req, _ := http.NewRequest(method, hs.URL+p, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirect followed
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&answers, "%v\n%s\n", resp.Header, b)
		return resp.StatusCode
	}
	if code := do("PROPFIND", "/d/", "Depth", "1"); code != http.StatusMultiStatus {
		t.Fatalf("PROPFIND: %d", code)
	}
	if code := do("GET", "/d/a.txt"); code != http.StatusOK {
		t.Fatalf("GET: %d, want 200 (proxied, never a redirect)", code)
	}
	// Behind the bridge's back: c.txt appears, gone.txt goes.
	e.fake.Put("/c.txt", []byte("c"))
	e.fake.Delete("/gone.txt")
	for _, c := range []struct {
		method, path string
		hdr          []string
		want         int
	}{
		{"MOVE", "/d/a.txt", []string{"Destination", hs.URL + "/d/c.txt", "Overwrite", "F"}, http.StatusConflict},
		{"MOVE", "/d/gone.txt", []string{"Destination", hs.URL + "/d/h.txt"}, http.StatusNotFound},
		{"MKCOL", "/d/bad:name", nil, http.StatusBadRequest},
		{"PUT", "/d/star*", nil, http.StatusBadRequest},
	} {
		if code := do(c.method, c.path, c.hdr...); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.want)
		}
	}
	for _, secret := range e.fake.Secrets() {
		if strings.Contains(answers.String(), secret) {
			t.Fatalf("an answer to the WebDAV client holds a secret:\n%s", answers.String())
		}
	}
}

// TestErrorsHoldNoSecrets: failures of every kind (5xx, rate limits, a
// dead token, cut answers, refused names) give errors without the tokens.
func TestErrorsHoldNoSecrets(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	r := drivertest.Root(t, e.drv)
	e.fake.Put("/a.txt", []byte("a"))
	a := drivertest.Listed(t, e.drv, r, "a.txt")
	e.fake.Fail("list", http.StatusBadGateway, maxAttempts)
	_, err := e.drv.List(ctx, r)
	e.noteErr(err)
	e.fake.FailErrno("quota", teraboxfake.ErrnoRateLimited, 100)
	_, err = e.drv.Quota(ctx)
	if !errors.Is(e.noteErr(err), drivers.ErrRateLimited) {
		t.Fatalf("rate limited: %v", err)
	}
	e.fake.Cut("download", 10)
	_, err = e.drv.Link(ctx, a)
	if !errors.Is(e.noteErr(err), drivers.ErrUnavailable) {
		t.Fatalf("cut link answers: %v", err)
	}
	e.fake.FailErrno("filemanager", -6, 10)
	_, err = e.drv.Rename(ctx, a, "b.txt")
	if !errors.Is(e.noteErr(err), drivers.ErrAuthExpired) {
		t.Fatalf("a token refused after a refresh: %v", err)
	}
	e.fake.Cut("create", 1)
	_, err = e.drv.Mkdir(ctx, r, "x")
	e.noteErr(err)
	e.fake.RevokeRefreshTokens()
	_, err = e.drv.List(ctx, r)
	if !errors.Is(e.noteErr(err), drivers.ErrAuthExpired) {
		t.Fatalf("revoked: %v", err)
	}
	// The cleanup checks every noted error and log line for secrets.
}

// TestAppFolderReadings: the root option mounts any folder (the
// document's other reading of the app folder); app_name finds "<name>-"
// and tolerates the "<name> - <id>" form.
func TestAppFolderReadings(t *testing.T) {
	e := newEnv(t, faults.Config{})
	e.fake.Put("/sub/inner.txt", []byte("inner"))
	d := e.open(t, "", "root", e.fake.AppDir()+"/sub")
	objs, err := d.List(context.Background(), drivertest.Root(t, d))
	if err != nil || len(objs) != 1 || objs[0].Name != "inner.txt" {
		t.Fatalf("root option: %+v %v", objs, err)
	}
	for name, want := range map[string]bool{"BridgeTest-": true, "BridgeTest - 12345": true, "BridgeTest-12345": true,
		"BridgeTestX-": false, "Other-": false, "BridgeTest": false} {
		if isAppFolder(name, "BridgeTest") != want {
			t.Errorf("isAppFolder(%q) = %v", name, !want)
		}
	}
}

// TestColdPropfindListsTheFolderAlone: the driver lists by path, so a cold
// PROPFIND of a deep folder costs its own listing, not its ancestors'; an
// empty one costs a filemetas more (an empty listing proves nothing).
func TestColdPropfindListsTheFolderAlone(t *testing.T) {
	e := newEnv(t, faults.Config{})
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.New(e.logs),
		Mounts: []davfs.Mount{{Path: "/d", Driver: e.drv}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	e.fake.Put("/a/b/c/x.txt", []byte("x"))
	e.fake.Mkdir("/a/b/empty")
	// The driver finds the app folder once, on its first call.
	if _, err := e.drv.List(t.Context(), drivers.Ref{Path: "/", Object: drivers.Object{IsDir: true}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path             string
		lists, filemetas int
		status           int
	}{
		{"/d/a/b/c/", 1, 0, http.StatusMultiStatus},
		{"/d/a/b/empty/", 1, 1, http.StatusMultiStatus},
		// Nothing there: its own listing fails, then its parent's tells.
		{"/d/a/b/nope/", 2, 0, http.StatusNotFound},
	} {
		before := e.fake.Calls()
		status := drivertest.Do(t, "PROPFIND", hs.URL+c.path, "Depth", "1")
		after := e.fake.Calls()
		lists, metas := after["list"]-before["list"], after["filemetas"]-before["filemetas"]
		if status != c.status || lists != c.lists || metas != c.filemetas {
			t.Errorf("PROPFIND %s: %d with %d list and %d filemetas calls, want %d with %d and %d",
				c.path, status, lists, metas, c.status, c.lists, c.filemetas)
		}
	}
}
