package disktop

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
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

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/drivertest"
	disktopfake "bridge/tests/fakes/disktop"
)

// env is a fake on loopback and a driver logged in to it.
type env struct {
	fake  *disktopfake.Fake
	srv   *httptest.Server
	drv   *Driver
	state string
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, chunk int64) *env {
	t.Helper()
	f := disktopfake.New()
	f.ChunkSize = chunk
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	_, refresh := f.IssueToken()
	e := &env{fake: f, srv: srv, state: t.TempDir(), logs: &bytes.Buffer{}}
	e.drv = e.open(t, refresh)
	return e
}

// open builds a driver over the env's state dir (a restart of the bridge).
func (e *env) open(t *testing.T, seed string) *Driver {
	t.Helper()
	opts := map[string]any{"client_id": e.fake.ClientID, "client_secret": e.fake.ClientSecret,
		"api_base": e.srv.URL, "refresh_token": seed}
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/disktop", StateDir: e.state, HTTPClient: e.srv.Client(),
		Logger: zerolog.New(e.logs),
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
	dd := d.(*Driver)
	dd.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } // no real waits in tests
	return dd
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver:      func(t *testing.T) drivers.Driver { return newEnv(t, 1<<20).drv },
		ChunkSize:      1 << 20,
		PageSize:       pageLimit,
		ForbiddenNames: disktopfake.ForbiddenNames,
	})
}

func root(t *testing.T, d *Driver) drivers.Ref {
	o, err := d.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return drivers.Ref{Path: "/", Object: o}
}

func TestTenThousandEntriesCostFiftyListCalls(t *testing.T) {
	e := newEnv(t, 1<<20)
	for i := 0; i < 10000; i++ {
		e.fake.Put(fmt.Sprintf("/big/f%05d", i), []byte("x"))
	}
	objs, err := e.drv.List(context.Background(), drivers.Ref{Path: "/big", Object: drivers.Object{ID: "d?", IsDir: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 10000 {
		t.Fatalf("%d entries", len(objs))
	}
	if n := e.fake.Calls()["list"]; n != 50 {
		t.Fatalf("%d list calls, want 50", n)
	}
}

func TestDedupSendsNoBytes(t *testing.T) {
	e := newEnv(t, 1<<20)
	data := bytes.Repeat([]byte("dedup"), 300000)
	e.fake.Put("/elsewhere.bin", data)
	o, err := e.drv.Put(context.Background(), root(t, e.drv), "copy.bin", drivertest.NewUpload(data))
	if err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["part"] != 0 || c["complete"] != 0 || c["precreate"] != 1 {
		t.Fatalf("dedup hit sent bytes: %v", c)
	}
	if got, _ := e.fake.File("/copy.bin"); !bytes.Equal(got, data) || o.Size != int64(len(data)) {
		t.Fatal("dedup copy has the wrong content")
	}
}

func TestPartFailuresAreRetriedAndMissingPartsResent(t *testing.T) {
	e := newEnv(t, 1<<20)
	data := make([]byte, 20<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	e.fake.Fail("part", http.StatusInternalServerError, 2)
	e.fake.Fail("part", http.StatusTooManyRequests, 1)
	e.fake.LoseParts(2) // complete answers 425 until they are sent again
	if _, err := e.drv.Put(context.Background(), root(t, e.drv), "big.bin", drivertest.NewUpload(data)); err != nil {
		t.Fatal(err)
	}
	got, _ := e.fake.File("/big.bin")
	want, have := md5.Sum(data), md5.Sum(got)
	if hex.EncodeToString(want[:]) != hex.EncodeToString(have[:]) {
		t.Fatal("uploaded content differs")
	}
	if c := e.fake.Calls(); c["part"] != 25 || c["complete"] != 2 || c["parts"] != 1 || e.fake.OpenUploads() != 0 {
		t.Fatalf("calls %v, open uploads %d: want 20 parts + 3 retried + 2 re-sent after a 425", c, e.fake.OpenUploads())
	}
}

func TestFailedOverwriteKeepsOldFileAndAborts(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/f.bin", []byte("old content"))
	objs, _ := e.drv.List(context.Background(), root(t, e.drv))
	e.fake.Fail("part", http.StatusBadGateway, 100)
	up := drivertest.NewUpload(bytes.Repeat([]byte("n"), 3<<20))
	up.Replaces = &objs[0]
	if _, err := e.drv.Put(context.Background(), root(t, e.drv), "f.bin", up); err == nil {
		t.Fatal("upload with failing parts succeeded")
	}
	if got, _ := e.fake.File("/f.bin"); string(got) != "old content" {
		t.Fatalf("old file lost: %q", got)
	}
	if e.fake.OpenUploads() != 0 || e.fake.Calls()["abort"] != 1 {
		t.Fatalf("session not aborted: %v", e.fake.Calls())
	}
	listed, _ := e.drv.List(context.Background(), root(t, e.drv))
	if len(listed) != 1 {
		t.Fatalf("a partial object is visible: %+v", listed)
	}
}

func TestExpiredAccessTokenRefreshedAndRotationSurvivesRestart(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireAccessTokens()
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatalf("expired token not refreshed transparently: %v", err)
	}
	// The rotated refresh token is on disk: a restarted bridge (no seed)
	// carries on, and the old seed is dead.
	saved, err := os.ReadFile(filepath.Join(e.state, "token.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(e.state, "token.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}
	e.fake.ExpireAccessTokens()
	d2 := e.open(t, "")
	if _, err := d2.Quota(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(saved, &tok)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token saved")
	}
}

func TestConcurrentCallersRefreshOnce(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	e.drv.Quota(ctx)
	e.fake.ExpireAccessTokens()
	before := e.fake.Calls()["token"]
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() { _, err := e.drv.Quota(ctx); errs <- err }()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.Calls()["token"] - before; n != 1 {
		t.Fatalf("%d refreshes for 8 concurrent callers, want 1", n)
	}
}

func TestRevokedRefreshTokenNeedsLogin(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	e.drv.Quota(ctx)
	e.fake.RevokeRefreshTokens()
	_, err := e.drv.List(ctx, root(t, e.drv))
	if err == nil || !strings.Contains(err.Error(), "login") {
		t.Fatalf("revoked: %v", err)
	}
	if err := e.drv.Check(ctx); err == nil || !isAuthExpired(err) {
		t.Fatalf("Check: %v, want ErrAuthExpired", err)
	}
	if n := strings.Count(e.logs.String(), "bridge login /disktop"); n != 1 {
		t.Fatalf("%d needs-login log lines, want exactly 1:\n%s", n, e.logs.String())
	}
	for _, secret := range []string{e.fake.ClientSecret, "at-", "rt-"} {
		if strings.Contains(e.logs.String(), secret) || strings.Contains(err.Error(), secret) {
			t.Fatalf("%q in logs or errors", secret)
		}
	}
}

func isAuthExpired(err error) bool { return errorsIs(err, drivers.ErrAuthExpired) }

func TestLinkExpiresAndHonoursRange(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/v.bin", []byte("0123456789"))
	objs, _ := e.drv.List(context.Background(), root(t, e.drv))
	l, err := e.drv.Link(context.Background(), drivers.Ref{Path: "/v.bin", Object: objs[0]})
	if err != nil || !l.ClientSafe || strings.Contains(l.URL, "Bearer") {
		t.Fatalf("link %+v %v", l, err)
	}
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", l.URL, nil)
		req.Header.Set("Range", "bytes=2-4")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 206 || body != "234" {
		t.Fatalf("range: %d %q", code, body)
	}
	now := time.Now().Add(11 * time.Minute)
	e.fake.Now = func() time.Time { return now }
	if code, _ := get(); code != http.StatusForbidden {
		t.Fatalf("expired link answered %d", code)
	}
}

var errorsIs = func(err, target error) bool { return errors.Is(err, target) }

func TestBridgePropfindColdAndWarm(t *testing.T) {
	e := newEnv(t, 1<<20)
	for i := 0; i < 10000; i++ {
		e.fake.Put(fmt.Sprintf("/big/f%05d.jpg", i), []byte("x"))
	}
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []davfs.Mount{{Path: "/d", Driver: e.drv}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	propfind := func() {
		req, _ := http.NewRequest("PROPFIND", hs.URL+"/d/big/", nil)
		req.Header.Set("Depth", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMultiStatus {
			t.Fatalf("PROPFIND: %d", resp.StatusCode)
		}
	}
	propfind()
	// Cold: one page for the mount root (to find big/), 50 for big/.
	if n := e.fake.Calls()["list"]; n != 51 {
		t.Fatalf("cold PROPFIND made %d list calls, want 1 + 50", n)
	}
	propfind()
	if n := e.fake.Calls()["list"]; n != 51 {
		t.Fatalf("warm PROPFIND made %d more list calls, want 0", n-51)
	}
}

func TestDeviceLogin(t *testing.T) {
	e := newEnv(t, 1<<20)
	state := t.TempDir()
	e.state = state
	d := e.open(t, "") // no token yet
	if err := d.Check(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("before login: %v", err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- d.Login(context.Background(), pw, drivers.LoginOptions{}); pw.Close() }()
	// Read what the user sees, approve the code as the user would.
	out := &strings.Builder{}
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "Waiting") {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("login output: %v (%q)", err, out.String())
		}
		out.Write(buf[:n])
	}
	var code string
	fmt.Sscanf(out.String()[strings.Index(out.String(), "enter the code ")+len("enter the code "):], "%s", &code)
	if !e.fake.ApproveDevice(code) {
		t.Fatalf("no pending device code %q in %q", code, out.String())
	}
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("after login: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(state, "token.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
}

func TestAuthCodeLoginWithPKCE(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.state = t.TempDir()
	d := e.open(t, "")
	d.oauth.ClientSecret = "" // a public client: PKCE alone must do
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- d.Login(context.Background(), pw, drivers.LoginOptions{AuthCode: true}); pw.Close() }()
	out := &strings.Builder{}
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "Waiting") {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(buf[:n])
	}
	go io.Copy(io.Discard, pr)
	var authURL string
	for _, f := range strings.Fields(out.String()) {
		if strings.HasPrefix(f, "http") && strings.Contains(f, "/oauth/authorize") {
			authURL = f
		}
	}
	if !strings.Contains(authURL, "code_challenge_method=S256") {
		t.Fatalf("no PKCE in %q", authURL)
	}
	// The "browser": follow the consent redirect to the loopback callback.
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("after login: %v", err)
	}
}

func TestDownloadCutMidBodyResumesThroughTheBridge(t *testing.T) {
	e := newEnv(t, 1<<20)
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i % 251)
	}
	e.fake.Put("/movie.mp4", data)
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []davfs.Mount{{Path: "/d", Driver: e.drv}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	e.fake.Cut("dl", 1)
	resp, err := http.Get(hs.URL + "/d/movie.mp4")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET after a cut: %v, %d of %d bytes, equal %v", err, len(got), len(data), bytes.Equal(got, data))
	}
	if n := e.fake.Calls()["dl"]; n != 2 {
		t.Fatalf("%d download requests, want 2 (one cut, one resumed)", n)
	}
}
