package cloudreve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/drivers/pacer"
	cloudrevefake "bridge/tests/fakes/cloudreve"
)

type env struct {
	fake  *cloudrevefake.Fake
	srv   *httptest.Server
	state string
	logs  *drivertest.LogBuffer
}

func newFake(t *testing.T) *env {
	t.Helper()
	f := cloudrevefake.New()
	srv := drivertest.Serve(t, f)
	return &env{fake: f, srv: srv, state: t.TempDir(), logs: &drivertest.LogBuffer{}}
}

func (e *env) options(extra map[string]any) map[string]any {
	return drivertest.MergeOptions(map[string]any{"base_url": e.srv.URL, "username": e.fake.User, "password": e.fake.Password}, extra)
}

func (e *env) open(t *testing.T, extra map[string]any) *Driver {
	t.Helper()
	d, err := e.tryOpen(extra)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *env) tryOpen(extra map[string]any) (*Driver, error) {
	opts := e.options(extra)
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/cloudreve", StateDir: e.state, HTTPClient: e.srv.Client(), Logger: zerolog.New(e.logs),
		Decode: drivertest.DecodeOptions(opts),
	})
	if err != nil {
		return nil, err
	}
	dd := d.(*Driver)
	dd.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } // no real waits
	return dd, nil
}

func root() drivers.Ref {
	return drivers.Ref{Path: "/", Object: drivers.Object{ID: "d:/", IsDir: true}}
}

// ref lists the parent of p and returns p's entry.
func ref(t *testing.T, d *Driver, p string, isDir bool) drivers.Ref {
	t.Helper()
	dir, name := filepath.Split(p)
	o, err := d.find(context.Background(), dir, name, isDir)
	if err != nil {
		t.Fatal(err)
	}
	return drivers.Ref{Path: p, Object: o}
}

// checkNoSecrets fails when a password, TOTP secret, cookie or download
// signature the fake knows is in the logs or in errs.
func (e *env) checkNoSecrets(t *testing.T, errs ...error) {
	t.Helper()
	if !e.logs.AssertNoSecrets(t, e.fake.Secrets(), errs...) {
		t.FailNow()
	}
}

// conformanceDriver is the harness's driver: a fake with p's faults, and
// a driver reading the fake's clock (so a step of the suite ages the
// session cookie on both sides).
func conformanceDriver(t *testing.T, p drivertest.Profile, chunk int64, onedrive bool) (*env, *Driver) {
	e := newFake(t)
	e.fake.ChunkSize = chunk
	e.fake.Faults.SetConfig(p.Faults)
	if onedrive {
		e.fake.UseOneDrive("/")
	}
	d := e.open(t, nil)
	d.now = e.fake.Faults.Now
	d.sleep = pacer.Sleep // a rate limit runs on real time: wait it out
	return e, d
}

func TestConformance(t *testing.T) {
	var envs []*env
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e, d := conformanceDriver(t, p, 1<<20, false)
			envs = append(envs, e)
			return d, e.fake.Faults
		},
		ChunkSize:      1 << 20,
		ForbiddenNames: cloudrevefake.ForbiddenNames,
		HTTPClient:     http.DefaultClient,
	})
	for _, e := range envs {
		e.checkNoSecrets(t)
		if n := e.fake.OpenUploads(); n != 0 {
			t.Fatalf("%d upload sessions left open", n)
		}
	}
	if hostile := envs[len(envs)-1].fake.Faults; hostile.Restarts() == 0 || hostile.Injected()["auth-429"] == 0 {
		t.Fatalf("the hostile run restarted %d times and made %v: not hostile", hostile.Restarts(), hostile.Injected())
	}
}

func TestConformanceOneDrivePolicy(t *testing.T) {
	var envs []*env
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e, d := conformanceDriver(t, p, 320<<10, true)
			envs = append(envs, e)
			return d, e.fake.Faults
		},
		ChunkSize:      320 << 10,
		ForbiddenNames: cloudrevefake.ForbiddenNames,
	})
	for _, e := range envs {
		if c := e.fake.Calls(); c["chunk"] != 0 || c["onedrive-finish"] == 0 {
			t.Fatalf("the OneDrive policy was not used: %v", c)
		}
	}
}

func TestDroppedSessionReLoginAndRetryOnce(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	if n := e.fake.Calls()["login"]; n != 1 {
		t.Fatalf("%d logins at start, want 1", n)
	}
	if _, err := d.Quota(ctx); err != nil {
		t.Fatal(err)
	}
	e.fake.DropSessions() // a server restart
	// The new login is held until every caller has been refused, so all
	// of them need it.
	const callers = 8
	hold := make(chan struct{})
	e.fake.Inject(cloudrevefake.Fault{Endpoint: "login", Hold: hold})
	errs := make(chan error, callers)
	for range callers {
		go func() { _, err := d.List(ctx, root()); errs <- err }()
	}
	for e.fake.Calls()["list"] < callers {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("after a dropped session: %v", err)
		}
	}
	c := e.fake.Calls()
	if c["login"] != 2 {
		t.Fatalf("%d logins, want 2 (start, and one shared by %d callers)", c["login"], callers)
	}
	if c["list"] != 2*callers {
		t.Fatalf("%d listings, want %d (each caller retried once)", c["list"], 2*callers)
	}
	// The session is kept: a restarted bridge does not log in again.
	d2 := e.open(t, nil)
	if _, err := d2.Quota(ctx); err != nil || e.fake.Calls()["login"] != 2 {
		t.Fatalf("restart: %v, %d logins", err, e.fake.Calls()["login"])
	}
	fi, err := os.Stat(filepath.Join(e.state, "session.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v", fi, err)
	}
	// Another account's saved session is not reused.
	e.fake.AddUser("other@example.com", "other-password", "")
	if _, err := e.open(t, map[string]any{"username": "other@example.com", "password": "other-password"}).Quota(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls()["login"]; n != 3 {
		t.Fatalf("%d logins, want 3: a different username logs in", n)
	}
	e.checkNoSecrets(t)
}

func TestRetryIsOnlyOnce(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	e.fake.FailCode("list", 401, 2) // refused again after the new login
	_, err := d.List(context.Background(), root())
	if !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("twice refused: %v, want ErrAuthExpired", err)
	}
	if c := e.fake.Calls(); c["list"] != 2 || c["login"] != 2 {
		t.Fatalf("calls %v: want 2 listings and 2 logins", c)
	}
}

func TestTOTPLogin(t *testing.T) {
	e := newFake(t)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "cloudreve", AccountName: e.fake.User})
	if err != nil {
		t.Fatal(err)
	}
	// The fake's clock stands still (the driver's login at start uses the
	// real clock, close to it); then the driver's clock is set to the same
	// instant, and to another one.
	when := time.Now()
	e.fake.SetClock(func() time.Time { return when })
	e.fake.TOTPSecret = key.Secret()
	d := e.open(t, map[string]any{"totp_secret": strings.ToLower(key.Secret())})
	d.now = func() time.Time { return when }
	e.fake.DropSessions()
	if _, err := d.Quota(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["login"] != 2 || c["2fa"] != 2 {
		t.Fatalf("calls %v: want two logins, each with its second factor", c)
	}

	// A code from another time is refused: the driver uses its clock.
	d.now = func() time.Time { return when.Add(-10 * time.Minute) }
	e.fake.DropSessions()
	if _, err := d.Quota(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("stale code: %v, want ErrAuthExpired", err)
	}

	// Without the secret the account cannot be used, says why, and the
	// refusal is remembered rather than retried on every call.
	e2 := newFake(t)
	e2.fake.TOTPSecret = key.Secret()
	d2 := e2.open(t, nil)
	for range 3 {
		if _, err := d2.Quota(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) || !strings.Contains(err.Error(), "totp_secret") {
			t.Fatalf("no secret: %v", err)
		}
	}
	if err := d2.Check(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("Check: %v", err)
	}
	if n := e2.fake.Calls()["login"]; n != 1 {
		t.Fatalf("%d logins, want 1 (refusals are remembered for a minute)", n)
	}
	e.checkNoSecrets(t)
}

func TestWrongPassword(t *testing.T) {
	e := newFake(t)
	d := e.open(t, map[string]any{"password": "not-the-password"})
	err := d.Check(context.Background())
	if !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("Check: %v, want ErrAuthExpired", err)
	}
	if strings.Contains(e.logs.String()+err.Error(), "not-the-password") {
		t.Fatal("the password is in the logs or the error")
	}
}

func TestSessionCookieOption(t *testing.T) {
	e := newFake(t)
	// Get a real cookie with a first driver that has no state dir to share.
	d0 := e.open(t, nil)
	cookie := d0.login.Peek()
	os.Remove(filepath.Join(e.state, "session.json"))
	d := e.open(t, map[string]any{"username": nil, "password": nil, "session_cookie": cookie})
	if _, err := d.Quota(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls()["login"]; n != 1 {
		t.Fatalf("%d logins, want only the first driver's", n)
	}
	e.fake.DropSessions()
	if _, err := d.Quota(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("refused cookie without credentials: %v, want ErrAuthExpired", err)
	}
}

func TestBaseURLForms(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/a.txt", []byte("hello"))
	d := e.open(t, map[string]any{"base_url": e.srv.URL + "/api/v3/"})
	l, err := d.Link(context.Background(), ref(t, d, "/a.txt", false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.URL, e.srv.URL+"/api/v3/file/download/") || !l.ClientSafe {
		t.Fatalf("link %+v", l)
	}
	// A server behind a path prefix: its relative URLs lack the prefix.
	d.opts.BaseURL = "https://example.com/cloud"
	if got, _ := d.resolve("/api/v3/file/download/k?sign=s"); got != "https://example.com/cloud/api/v3/file/download/k?sign=s" {
		t.Fatalf("resolve: %s", got)
	}
	if got, _ := d.resolve("https://cdn.example.com/x?sign=s"); got != "https://cdn.example.com/x?sign=s" {
		t.Fatalf("resolve absolute: %s", got)
	}
	if _, err := e.tryOpen(map[string]any{"base_url": "cloud.example.com"}); err == nil {
		t.Fatal("a base_url without a scheme was accepted")
	}
}

func TestLinkExpiresOnTheClock(t *testing.T) {
	e := newFake(t)
	now := time.Now()
	e.fake.SetClock(func() time.Time { return now })
	data := bytes.Repeat([]byte("0123456789"), 1000)
	e.fake.Put("/v.bin", data)
	d := e.open(t, nil)
	l, err := d.Link(context.Background(), ref(t, d, "/v.bin", false))
	if err != nil {
		t.Fatal(err)
	}
	// The expiry is the one inside the signature, to the second.
	if want := now.Add(cloudrevefake.LinkTTL); l.Expires.Unix() != want.Unix() {
		t.Fatalf("Expires %v, want %v (from the link's sign)", l.Expires, want)
	}
	get := func(rng string) (int, []byte) { return drivertest.Get(t, l.URL, rng) } // no cookie
	if code, b := get("bytes=-10"); code != http.StatusPartialContent || !bytes.Equal(b, data[len(data)-10:]) {
		t.Fatalf("suffix range: %d %q", code, b)
	}
	if code, _ := get("bytes=20000-"); code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: %d", code)
	}
	e.fake.Advance(599 * time.Second)
	if code, b := get("bytes=5-9"); code != http.StatusPartialContent || string(b) != "56789" {
		t.Fatalf("before expiry: %d %q", code, b)
	}
	e.fake.Advance(2 * time.Second)
	if code, b := get(""); code != http.StatusOK || !strings.Contains(string(b), `"code":40005`) {
		t.Fatalf("after expiry: %d %s", code, b)
	}
	e.checkNoSecrets(t)
}

func TestBothUploadPolicies(t *testing.T) {
	e := newFake(t)
	e.fake.ChunkSize = 320 << 10
	e.fake.UseOneDrive("/od")
	d := e.open(t, nil)
	data := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB: four chunks of 320 KiB
	ctx := context.Background()
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	up := drivertest.NewUpload(data)
	up.ModTime = when
	if _, err := d.Put(ctx, root(), "local.bin", up); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, ref(t, d, "/od", true), "remote.bin", up); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/local.bin", "/od/remote.bin"} {
		if got, _ := e.fake.File(p); !bytes.Equal(got, data) {
			t.Fatalf("%s: wrong content", p)
		}
		if got := ref(t, d, p, false).ModTime; !got.Equal(when) {
			t.Fatalf("%s: date %v, want last_modified %v", p, got, when)
		}
	}
	if c := e.fake.Calls(); c["chunk"] != 4 || c["onedrive-put"] != 4 || c["onedrive-finish"] != 1 || c["cancel"] != 0 {
		t.Fatalf("calls %v: want 4 local chunks, 4 OneDrive ranges and 1 finish", c)
	}
	// Empty files: one empty chunk; no range at all.
	if _, err := d.Put(ctx, root(), "empty", drivertest.NewUpload(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, ref(t, d, "/od", true), "empty", drivertest.NewUpload(nil)); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["chunk"] != 5 || c["onedrive-put"] != 4 || c["onedrive-finish"] != 2 {
		t.Fatalf("calls %v after the empty files", c)
	}
	e.checkNoSecrets(t)
}

// overwriteFailure overwrites /f.bin of a fake whose upload breaks as
// inject says, and checks that nothing was lost or left behind.
func overwriteFailure(t *testing.T, onedrive bool, inject cloudrevefake.Fault) {
	e := newFake(t)
	e.fake.ChunkSize = 320 << 10
	dir := "/"
	if onedrive {
		e.fake.UseOneDrive("/od")
		dir = "/od/"
	}
	e.fake.Put(dir+"f.bin", []byte("old content"))
	d := e.open(t, nil)
	ctx := context.Background()
	parent := root()
	if onedrive {
		parent = ref(t, d, "/od", true)
	}
	old := ref(t, d, dir+"f.bin", false)
	e.fake.Inject(inject)
	up := drivertest.NewUpload(bytes.Repeat([]byte("n"), 1<<20))
	up.Replaces = &old.Object
	_, err := d.Put(ctx, parent, "f.bin", up)
	if err == nil {
		t.Fatal("a failing upload succeeded")
	}
	if got, _ := e.fake.File(dir + "f.bin"); string(got) != "old content" {
		t.Fatalf("old file lost: %q", got)
	}
	if n, c := e.fake.OpenUploads(), e.fake.Calls(); n != 0 || c["cancel"] != 1 {
		t.Fatalf("session left open (%d): calls %v", n, c)
	}
	objs, _ := d.List(ctx, parent)
	if len(objs) != 1 {
		t.Fatalf("a partial object is visible: %+v", objs)
	}
	// The next attempt works and replaces it.
	if _, err := d.Put(ctx, parent, "f.bin", up); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File(dir + "f.bin"); len(got) != 1<<20 {
		t.Fatalf("after the retry: %d bytes", len(got))
	}
	if objs, _ := d.List(ctx, parent); len(objs) != 1 {
		t.Fatalf("after the retry the folder lists %+v", objs)
	}
}

func TestOverwriteSafeUnderFailure(t *testing.T) {
	t.Run("third chunk refused", func(t *testing.T) {
		overwriteFailure(t, false, cloudrevefake.Fault{Endpoint: "chunk", Skip: 2, Code: cloudrevefake.CodeChunkLength})
	})
	t.Run("connection cut during a chunk", func(t *testing.T) {
		overwriteFailure(t, false, cloudrevefake.Fault{Endpoint: "chunk", Skip: 1, Cut: true})
	})
	t.Run("proxy error on a chunk", func(t *testing.T) {
		overwriteFailure(t, false, cloudrevefake.Fault{Endpoint: "chunk", Status: http.StatusBadGateway, Times: maxAttempts})
	})
	t.Run("OneDrive range refused", func(t *testing.T) {
		overwriteFailure(t, true, cloudrevefake.Fault{Endpoint: "onedrive-put", Skip: 1, Times: maxAttempts, Status: http.StatusInternalServerError})
	})
	t.Run("OneDrive finish refused", func(t *testing.T) {
		overwriteFailure(t, true, cloudrevefake.Fault{Endpoint: "onedrive-finish", Code: 40001})
	})
}

func TestOverwriteSwapFailureRestoresOld(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/f.txt", []byte("old"))
	d := e.open(t, nil)
	old := ref(t, d, "/f.txt", false)
	// Renames: old aside (ok), new into place (refused), old back (ok).
	e.fake.Inject(cloudrevefake.Fault{Endpoint: "rename", Skip: 1, Code: 50001})
	up := drivertest.NewUpload([]byte("new"))
	up.Replaces = &old.Object
	if _, err := d.Put(context.Background(), root(), "f.txt", up); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Put: %v, want ErrUnavailable", err)
	}
	if got, _ := e.fake.File("/f.txt"); string(got) != "old" {
		t.Fatalf("old file: %q", got)
	}
	if objs, _ := d.List(context.Background(), root()); len(objs) != 1 {
		t.Fatalf("the folder lists %+v", objs)
	}
}

func TestPutOverAFileTheBridgeDidNotKnow(t *testing.T) {
	e := newFake(t)
	d := e.open(t, nil)
	e.fake.Put("/f.txt", []byte("made elsewhere"))
	o, err := d.Put(context.Background(), root(), "f.txt", drivertest.NewUpload([]byte("mine")))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/f.txt"); string(got) != "mine" || o.Name != "f.txt" {
		t.Fatalf("content %q, object %+v", got, o)
	}
}

func TestForbiddenNamesBeforeAnyCall(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/dir/f.txt", []byte("x"))
	d := e.open(t, nil)
	ctx := context.Background()
	f, dir := ref(t, d, "/dir/f.txt", false), ref(t, d, "/dir", true)
	before := e.fake.Calls()
	for _, name := range cloudrevefake.ForbiddenNames {
		_, err1 := d.Put(ctx, dir, name, drivertest.NewUpload([]byte("x")))
		_, err2 := d.Mkdir(ctx, dir, name)
		_, err3 := d.Rename(ctx, f, name)
		_, err4 := d.Move(ctx, f, root(), name)
		_, err5 := d.Copy(ctx, f, root(), name)
		for i, err := range []error{err1, err2, err3, err4, err5} {
			if !errors.Is(err, drivers.ErrInvalidName) {
				t.Fatalf("%q (op %d): %v, want ErrInvalidName", name, i, err)
			}
		}
	}
	after := e.fake.Calls()
	for k, v := range after {
		if before[k] != v {
			t.Fatalf("forbidden names reached the server: %v, then %v", before, after)
		}
	}
}

func TestMoveIntoDescendantRefused(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/a/b/c/f.txt", []byte("x"))
	d := e.open(t, nil)
	ctx := context.Background()
	a := ref(t, d, "/a", true)
	for _, dst := range []string{"/a", "/a/b", "/a/b/c"} {
		if _, err := d.Move(ctx, a, ref(t, d, dst, true), "a2"); !errors.Is(err, drivers.ErrPermission) {
			t.Fatalf("move /a into %s: %v, want ErrPermission", dst, err)
		}
		if _, err := d.Copy(ctx, a, ref(t, d, dst, true), "a2"); !errors.Is(err, drivers.ErrPermission) {
			t.Fatalf("copy /a into %s: %v, want ErrPermission", dst, err)
		}
	}
	if c := e.fake.Calls(); c["move"] != 0 || c["copy"] != 0 || c["rename"] != 0 {
		t.Fatalf("calls %v: a refused move reached the server", c)
	}
	if e.fake.Orphans() != 0 || !e.fake.Exists("/a/b/c/f.txt", false) {
		t.Fatal("the tree was damaged")
	}
	// A sibling whose name starts the same is not a descendant.
	e.fake.Put("/ab/g.txt", []byte("g"))
	if _, err := d.Move(ctx, a, ref(t, d, "/ab", true), "a"); err != nil {
		t.Fatalf("move /a into /ab: %v", err)
	}
	if !e.fake.Exists("/ab/a/b/c/f.txt", false) {
		t.Fatal("the move did not happen")
	}
}

func TestCopyIsOneCallPerObject(t *testing.T) {
	e := newFake(t)
	for _, p := range []string{"/src/1.txt", "/src/2.txt", "/src/3.txt", "/tree/x/y.txt"} {
		e.fake.Put(p, []byte(p))
	}
	e.fake.Put("/dst/keep", nil)
	d := e.open(t, nil)
	ctx := context.Background()
	dst := ref(t, d, "/dst", true)
	for _, n := range []string{"1.txt", "2.txt", "3.txt"} {
		if _, err := d.Copy(ctx, ref(t, d, "/src/"+n, false), dst, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Copy(ctx, ref(t, d, "/tree", true), dst, "tree"); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls()["copy"]; n != 4 {
		t.Fatalf("%d copy calls for 3 files and a folder, want 4", n)
	}
	if got, _ := e.fake.File("/dst/tree/x/y.txt"); string(got) != "/tree/x/y.txt" {
		t.Fatalf("copied tree: %q", got)
	}
	// A copy beside its source under a new name goes through a temporary
	// folder, which is gone afterwards.
	if _, err := d.Copy(ctx, ref(t, d, "/src/1.txt", false), ref(t, d, "/src", true), "1 copy.txt"); err != nil {
		t.Fatal(err)
	}
	objs, _ := d.List(ctx, ref(t, d, "/src", true))
	if len(objs) != 4 {
		t.Fatalf("/src lists %+v", objs)
	}
	if got, _ := e.fake.File("/src/1 copy.txt"); string(got) != "/src/1.txt" {
		t.Fatalf("copy: %q", got)
	}
}

func TestIDSpacesAreSeparate(t *testing.T) {
	// The fake numbers files and folders separately: folder 2 (the first
	// below the root) and file 2 share an id string, and removing one must
	// not touch the other.
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	if _, err := d.Mkdir(ctx, root(), "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, root(), "f1", drivertest.NewUpload([]byte("1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, root(), "f2", drivertest.NewUpload([]byte("2"))); err != nil {
		t.Fatal(err)
	}
	objs, err := d.List(ctx, root()) // the server's ids (Put and Mkdir do not learn them)
	if err != nil {
		t.Fatal(err)
	}
	var dir, f drivers.Object
	for _, o := range objs {
		switch o.Name {
		case "d":
			dir = o
		case "f2":
			f = o
		}
	}
	if dir.ID[2:] != f.ID[2:] || dir.ID == f.ID {
		t.Fatalf("folder %s and file %s: want one server id, two object ids", dir.ID, f.ID)
	}
	if err := d.Remove(ctx, drivers.Ref{Path: "/f2", Object: f}); err != nil {
		t.Fatal(err)
	}
	if !e.fake.Exists("/d", true) || e.fake.Exists("/f2", false) {
		t.Fatal("the wrong object was removed")
	}
	if _, err := d.Rename(ctx, drivers.Ref{Path: "/d", Object: dir}, "e"); err != nil || !e.fake.Exists("/e", true) {
		t.Fatalf("rename of the folder: %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/f.txt", []byte("x"))
	d := e.open(t, nil)
	ctx := context.Background()
	for _, c := range []struct {
		fault cloudrevefake.Fault
		want  error
	}{
		// Passing failures that outlast the retries.
		{cloudrevefake.Fault{Endpoint: "list", Status: http.StatusBadGateway, Times: maxAttempts}, drivers.ErrUnavailable},
		{cloudrevefake.Fault{Endpoint: "list", Status: http.StatusTooManyRequests, Times: int(maxRetryWait/time.Second) + 1}, drivers.ErrRateLimited},
		{cloudrevefake.Fault{Endpoint: "list", Cut: true, Times: maxAttempts}, drivers.ErrUnavailable},
		{cloudrevefake.Fault{Endpoint: "list", Code: 40016}, drivers.ErrNotFound},
		{cloudrevefake.Fault{Endpoint: "list", Code: 50001}, drivers.ErrUnavailable},
	} {
		e.fake.Inject(c.fault)
		if _, err := d.List(ctx, root()); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.fault, err, c.want)
		}
	}
	e.fake.SetLimits(10, 0)
	if _, err := d.Put(ctx, root(), "big", drivertest.NewUpload(make([]byte, 100))); !errors.Is(err, drivers.ErrQuota) {
		t.Errorf("over quota: %v", err)
	}
	e.fake.SetLimits(1<<40, 50)
	d.policies = map[string]policy{}
	if _, err := d.Put(ctx, root(), "big", drivertest.NewUpload(make([]byte, 100))); !errors.Is(err, drivers.ErrTooLarge) {
		t.Errorf("over max_size: %v", err)
	}
	if n := e.fake.Calls()["upload-session"]; n != 1 {
		t.Errorf("%d upload sessions: the policy's max_size should refuse before asking", n)
	}
	if _, err := d.Rename(ctx, ref(t, d, "/f.txt", false), "f.txt"); !errors.Is(err, drivers.ErrExist) {
		t.Errorf("rename onto itself: %v", err)
	}
}

func TestCancelledUploadDeletesSession(t *testing.T) {
	e := newFake(t)
	e.fake.ChunkSize = 320 << 10
	d := e.open(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	// The body cancels the request when the second chunk is read.
	data := make([]byte, 1<<20)
	body := &cancelAt{ReaderAt: bytes.NewReader(data), at: 320 << 10, cancel: cancel}
	up := drivertest.NewUpload(data)
	up.Body = body
	if _, err := d.Put(ctx, root(), "c.bin", up); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v, want context.Canceled", err)
	}
	if n := e.fake.OpenUploads(); n != 0 || e.fake.Calls()["cancel"] != 1 {
		t.Fatalf("%d sessions open, calls %v", n, e.fake.Calls())
	}
	if e.fake.Exists("/c.bin", false) {
		t.Fatal("a cancelled upload is visible")
	}
}

// cancelAt cancels a context when a read reaches offset at.
type cancelAt struct {
	io.ReaderAt
	at     int64
	cancel func()
}

func (c *cancelAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.at {
		c.cancel()
		return 0, context.Canceled
	}
	return c.ReaderAt.ReadAt(p, off)
}

func TestSessionDroppedMidUpload(t *testing.T) {
	for _, onedrive := range []bool{false, true} {
		e := newFake(t)
		e.fake.ChunkSize = 320 << 10
		parent, endpoint := root(), "chunk"
		d := e.open(t, nil)
		if onedrive {
			e.fake.UseOneDrive("/od")
			parent, endpoint = ref(t, d, "/od", true), "onedrive-finish"
		}
		// The server restarts between two calls of the upload: the call is
		// refused with 401 before it is processed, as on the server.
		e.fake.Inject(cloudrevefake.Fault{Endpoint: endpoint, Skip: 1 - btoi(onedrive), Code: 401})
		data := bytes.Repeat([]byte("z"), 1<<20)
		if _, err := d.Put(context.Background(), parent, "f.bin", drivertest.NewUpload(data)); err != nil {
			t.Fatalf("onedrive %v: %v", onedrive, err)
		}
		if got, _ := e.fake.File(parent.Path + "/f.bin"); !bytes.Equal(got, data) {
			t.Fatalf("onedrive %v: wrong content", onedrive)
		}
		if n := e.fake.Calls()["login"]; n != 2 {
			t.Fatalf("onedrive %v: %d logins, want 2", onedrive, n)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRefsWithoutNames(t *testing.T) {
	// The contract promises a Ref's path, ID and IsDir, not its Name.
	e := newFake(t)
	e.fake.Put("/a/f.txt", []byte("f"))
	e.fake.Put("/b/keep", nil)
	d := e.open(t, nil)
	ctx := context.Background()
	bare := func(p string, isDir bool) drivers.Ref {
		r := ref(t, d, p, isDir)
		r.Name = ""
		return r
	}
	if _, err := d.Copy(ctx, bare("/a/f.txt", false), bare("/b", true), "f.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Move(ctx, bare("/a/f.txt", false), bare("/b", true), "g.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Rename(ctx, bare("/b/g.txt", false), "h.txt"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, bare("/b/f.txt", false)); err != nil {
		t.Fatal(err)
	}
	if !e.fake.Exists("/b/h.txt", false) || e.fake.Exists("/b/f.txt", false) || e.fake.Exists("/a/f.txt", false) {
		t.Fatal("wrong tree")
	}
}

func TestStaleUploadSessionDoesNotBlockTheName(t *testing.T) {
	// A bridge that crashed mid-upload left a session for the name; the
	// server refuses new sessions for it (40054) until that one expires.
	e := newFake(t)
	d := e.open(t, nil)
	ctx := context.Background()
	pol, err := d.policyOf(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.createSession(ctx, "/", "f.txt", drivertest.NewUpload([]byte("lost")), pol); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, root(), "f.txt", drivertest.NewUpload([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/f.txt"); string(got) != "new" {
		t.Fatalf("content %q", got)
	}
	if objs, _ := d.List(ctx, root()); len(objs) != 1 {
		t.Fatalf("the folder lists %+v", objs)
	}
}

func TestOneDriveRangesResume(t *testing.T) {
	for _, c := range []struct {
		name        string
		fault       cloudrevefake.Fault
		puts, stats int
	}{
		// The range arrived but the answer was lost: no range is sent twice.
		{"answer cut", cloudrevefake.Fault{Endpoint: "onedrive-put", Skip: 1, Cut: true}, 4, 1},
		// The range was refused: it is sent again.
		{"range refused", cloudrevefake.Fault{Endpoint: "onedrive-put", Skip: 2, Times: 2, Status: http.StatusServiceUnavailable}, 6, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newFake(t)
			e.fake.ChunkSize = 320 << 10
			e.fake.UseOneDrive("/")
			d := e.open(t, nil)
			e.fake.Inject(c.fault)
			data := bytes.Repeat([]byte("r"), 1<<20) // 4 ranges
			if _, err := d.Put(context.Background(), root(), "f.bin", drivertest.NewUpload(data)); err != nil {
				t.Fatal(err)
			}
			if got, _ := e.fake.File("/f.bin"); !bytes.Equal(got, data) {
				t.Fatal("wrong content")
			}
			if calls := e.fake.Calls(); calls["onedrive-put"] != c.puts || calls["onedrive-status"] != c.stats || calls["cancel"] != 0 {
				t.Fatalf("calls %v, want %d ranges and %d status requests", calls, c.puts, c.stats)
			}
		})
	}
}

func TestOverwriteWithAStaleReplaces(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/f.txt", []byte("first"))
	d := e.open(t, nil)
	ctx := context.Background()
	stale := ref(t, d, "/f.txt", false)
	e.fake.Put("/f.txt", []byte("second, from another client")) // a new id
	up := drivertest.NewUpload([]byte("third"))
	up.Replaces = &stale.Object
	if _, err := d.Put(ctx, root(), "f.txt", up); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/f.txt"); string(got) != "third" {
		t.Fatalf("content %q", got)
	}
	if objs, _ := d.List(ctx, root()); len(objs) != 1 {
		t.Fatalf("the folder lists %+v", objs)
	}
	// And when the old file is simply gone, the new one takes the name.
	gone := ref(t, d, "/f.txt", false)
	if err := d.Remove(ctx, gone); err != nil {
		t.Fatal(err)
	}
	up.Replaces = &gone.Object
	if _, err := d.Put(ctx, root(), "f.txt", up); err != nil {
		t.Fatal(err)
	}
	if objs, _ := d.List(ctx, root()); len(objs) != 1 || objs[0].Name != "f.txt" {
		t.Fatalf("the folder lists %+v", objs)
	}
}

func TestMoveOfAnObjectMovedElsewhere(t *testing.T) {
	// The server skips an object that is not in src_dir and answers 0: the
	// driver must not report a move that did not happen.
	e := newFake(t)
	e.fake.Put("/a/f.txt", []byte("f"))
	e.fake.Put("/b/keep", nil)
	e.fake.Put("/c/keep", nil)
	d := e.open(t, nil)
	ctx := context.Background()
	f := ref(t, d, "/a/f.txt", false)
	if _, err := d.Move(ctx, f, ref(t, d, "/c", true), "f.txt"); err != nil {
		t.Fatal(err)
	}
	// f still says /a/f.txt: stale.
	if _, err := d.Move(ctx, f, ref(t, d, "/b", true), "g.txt"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("move with a stale path: %v, want ErrNotFound", err)
	}
	if !e.fake.Exists("/c/f.txt", false) || e.fake.Exists("/b/g.txt", false) {
		t.Fatal("wrong tree")
	}
}

// An upload learns nothing by listing its folder (Cloudreve's answers
// carry no id; it is looked up only when an operation needs it), so it
// costs the same calls into a folder of 2,000 entries as into an empty one.
func TestUploadCostDoesNotGrowWithTheFolder(t *testing.T) {
	e := newFake(t)
	for i := range 2000 {
		e.fake.Put(fmt.Sprintf("/full/f%04d.txt", i), []byte("x"))
	}
	e.fake.Put("/empty/.keep", nil)
	d := e.open(t, nil)
	ctx := context.Background()
	cost := func(dir string) map[string]int {
		ref := drivers.Ref{Path: dir, Object: drivers.Object{Name: dir[1:], IsDir: true}}
		if _, err := d.List(ctx, ref); err != nil { // the bridge has listed it before a PUT
			t.Fatal(err)
		}
		before := e.fake.Calls()
		o, err := d.Put(ctx, ref, "new.bin", drivertest.NewUpload([]byte("new content")))
		if err != nil {
			t.Fatal(err)
		}
		after := e.fake.Calls()
		delta := map[string]int{}
		for k, v := range after {
			if v != before[k] {
				delta[k] = v - before[k]
			}
		}
		// The object is usable: its id is found when first needed.
		if _, err := d.Rename(ctx, drivers.Ref{Path: dir + "/new.bin", Object: o}, "renamed.bin"); err != nil {
			t.Fatalf("rename of a fresh upload: %v", err)
		}
		if got, ok := e.fake.File(dir + "/renamed.bin"); !ok || string(got) != "new content" {
			t.Fatal("the fresh upload was not renamed")
		}
		return delta
	}
	empty, full := cost("/empty"), cost("/full")
	if fmt.Sprint(empty) != fmt.Sprint(full) || empty["list"] != 0 {
		t.Fatalf("upload calls: empty folder %v, 2,000 entries %v; want the same, and no listing", empty, full)
	}
}

// Cloudreve lists by path, so the bridge's cold PROPFIND of a deep folder
// is that folder's listing alone (the ancestors are not listed to learn
// ids), and a MOVE of it afterwards still finds its id.
func TestBridgeColdPropfindListsOnlyTheFolder(t *testing.T) {
	e := newFake(t)
	e.fake.Put("/a/b/c/x.txt", []byte("x"))
	d := e.open(t, nil)
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []davfs.Mount{{Path: "/c", Driver: d}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	do := func(method, p string, hdr ...string) int {
		req, _ := http.NewRequest(method, hs.URL+p, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	before := e.fake.Calls()["list"]
	if st := do("PROPFIND", "/c/a/b/c/", "Depth", "1"); st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND: %d", st)
	}
	if n := e.fake.Calls()["list"] - before; n != 1 {
		t.Fatalf("cold PROPFIND of /a/b/c made %d list calls, want 1", n)
	}
	if st := do("MOVE", "/c/a/b/c/", "Destination", hs.URL+"/c/a/moved/"); st != http.StatusCreated {
		t.Fatalf("MOVE of the folder found by path: %d", st)
	}
	if got, ok := e.fake.File("/a/moved/x.txt"); !ok || string(got) != "x" {
		t.Fatal("the moved folder's file is not there")
	}
}
