package cloudreve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/drivertest"
	cloudrevefake "bridge/tests/fakes/cloudreve"
)

type env struct {
	fake  *cloudrevefake.Fake
	srv   *httptest.Server
	state string
	logs  *bytes.Buffer
}

func newFake(t *testing.T) *env {
	t.Helper()
	f := cloudrevefake.New()
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	return &env{fake: f, srv: srv, state: t.TempDir(), logs: &bytes.Buffer{}}
}

func (e *env) open(t *testing.T, extra map[string]any) *Driver {
	t.Helper()
	opts := map[string]any{"base_url": e.srv.URL, "username": e.fake.User, "password": e.fake.Password}
	for k, v := range extra {
		opts[k] = v
	}
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/cloudreve", StateDir: e.state, HTTPClient: e.srv.Client(), Logger: zerolog.New(e.logs),
		Decode: func(v any) error {
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(opts); err != nil {
				return err
			}
			_, err := toml.Decode(buf.String(), v)
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Driver)
}

func root() drivers.Ref {
	return drivers.Ref{Path: "/", Object: drivers.Object{ID: "d:/", IsDir: true}}
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T) drivers.Driver {
			e := newFake(t)
			e.fake.ChunkSize = 1 << 20
			return e.open(t, nil)
		},
		ChunkSize:      1 << 20,
		ForbiddenNames: cloudrevefake.ForbiddenNames,
	})
}

func TestConformanceOneDrivePolicy(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T) drivers.Driver {
			e := newFake(t)
			e.fake.ChunkSize = 320 << 10
			e.fake.UseOneDrive("/")
			return e.open(t, nil)
		},
		ChunkSize:      320 << 10,
		ForbiddenNames: cloudrevefake.ForbiddenNames,
	})
}

func TestDroppedSessionReLoginAndRetryOnce(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	if _, err := d.Quota(ctx); err != nil {
		t.Fatal(err)
	}
	e.fake.DropSessions()
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() { _, err := d.List(ctx, root()); errs <- err }()
	}
	for i := 0; i < 6; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("after a dropped session: %v", err)
		}
	}
	if n := e.fake.Calls()["login"]; n != 2 {
		t.Fatalf("%d logins, want 2 (start, and one shared re-login)", n)
	}
	// The session is kept: a restarted bridge does not log in again.
	d2 := e.open(t, nil)
	if _, err := d2.Quota(ctx); err != nil || e.fake.Calls()["login"] != 2 {
		t.Fatalf("restart: %v, %d logins", err, e.fake.Calls()["login"])
	}
	if fi, err := os.Stat(filepath.Join(e.state, "session.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v", fi, err)
	}
}

func TestTOTPLogin(t *testing.T) {
	e := newFake(t)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "cloudreve", AccountName: e.fake.User})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.TOTPSecret = key.Secret()
	d := e.open(t, map[string]any{"totp_secret": key.Secret()})
	if _, err := d.Quota(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["login"] != 1 || c["2fa"] != 1 {
		t.Fatalf("calls %v", c)
	}
	// Without the secret the account cannot be used, and says why.
	e2 := newFake(t)
	e2.fake.TOTPSecret = key.Secret()
	d2 := e2.open(t, nil)
	if _, err := d2.Quota(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) || !strings.Contains(err.Error(), "totp_secret") {
		t.Fatalf("no secret: %v", err)
	}
}

func TestBothUploadPolicies(t *testing.T) {
	e := newFake(t)
	e.fake.ChunkSize = 320 << 10
	e.fake.UseOneDrive("/od")
	d := e.open(t, nil)
	data := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB: several chunks
	ctx := context.Background()
	if _, err := d.Put(ctx, root(), "local.bin", drivertest.NewUpload(data)); err != nil {
		t.Fatal(err)
	}
	od, err := d.find(ctx, "/", "od", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, drivers.Ref{Path: "/od", Object: od}, "remote.bin", drivertest.NewUpload(data)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/local.bin", "/od/remote.bin"} {
		if got, _ := e.fake.File(p); !bytes.Equal(got, data) {
			t.Fatalf("%s: wrong content", p)
		}
	}
	if c := e.fake.Calls(); c["chunk"] != 4 || c["onedrive-put"] != 4 || c["onedrive-finish"] != 1 {
		t.Fatalf("calls %v: want 4 local chunks, 4 OneDrive ranges and 1 finish", c)
	}
}

func TestFailedOverwriteKeepsOldFileAndCancels(t *testing.T) {
	e := newFake(t)
	e.fake.ChunkSize = 320 << 10
	e.fake.Put("/f.bin", []byte("old content"))
	d := e.open(t, nil)
	ctx := context.Background()
	old, err := d.find(ctx, "/", "f.bin", false)
	if err != nil {
		t.Fatal(err)
	}
	e.fake.FailCode("chunk", cloudrevefake.CodeChunkLength, 1)
	up := drivertest.NewUpload(bytes.Repeat([]byte("n"), 1<<20))
	up.Replaces = &old
	if _, err := d.Put(ctx, root(), "f.bin", up); err == nil {
		t.Fatal("a failing upload succeeded")
	}
	if got, _ := e.fake.File("/f.bin"); string(got) != "old content" {
		t.Fatalf("old file lost: %q", got)
	}
	if e.fake.OpenUploads() != 0 || e.fake.Calls()["cancel"] != 1 {
		t.Fatalf("session left open: %v", e.fake.Calls())
	}
	objs, _ := d.List(ctx, root())
	if len(objs) != 1 {
		t.Fatalf("a partial object is visible: %+v", objs)
	}
}

// TestBridgeAnswers checks what a WebDAV client sees: 400 for a name the
// server forbids (before any upload starts) and 409 for moving a folder
// into its own descendant (which the server would accept).
func TestBridgeAnswers(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []davfs.Mount{{Path: "/c", Driver: d}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	do := func(method, p string, body io.Reader, hdr ...string) int {
		req, _ := http.NewRequest(method, hs.URL+p, body)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("PUT", "/c/bad%3Aname.txt", strings.NewReader("x")); code != 400 {
		t.Fatalf("forbidden name: %d, want 400", code)
	}
	if n := e.fake.Calls()["upload-session"]; n != 0 {
		t.Fatalf("an upload started for a forbidden name: %d", n)
	}
	do("MKCOL", "/c/a", nil)
	do("MKCOL", "/c/a/b", nil)
	if code := do("MOVE", "/c/a", nil, "Destination", "/c/a/b/a"); code != 409 {
		t.Fatalf("move into descendant: %d, want 409", code)
	}
	if n := e.fake.Calls()["move"]; n != 0 {
		t.Fatalf("the move reached the server: %d", n)
	}
	a, _ := d.find(context.Background(), "/", "a", true)
	if _, err := d.Move(context.Background(), drivers.Ref{Path: "/a", Object: a}, drivers.Ref{Path: "/a/b"}, "a"); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("driver move into descendant: %v", err)
	}
	for _, secret := range []string{e.fake.Password, "cloudreve-session="} {
		if strings.Contains(e.logs.String(), secret) {
			t.Fatalf("%q in the logs", secret)
		}
	}
}
