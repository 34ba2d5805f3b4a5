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
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/drivertest"
	disktopfake "bridge/tests/fakes/disktop"
)

// env is a fake on loopback and a driver logged in to it.
type env struct {
	fake  *disktopfake.Fake
	srv   *httptest.Server
	clock *drivertest.Clock
	drv   *Driver
	state string
	logs  *drivertest.LogBuffer
	// waits records every wait the drivers asked for (a test acts "while"
	// the driver waits with waits.OnWait).
	waits *drivertest.Waits
	mu    sync.Mutex // for what a test's transport counts
	// transport, when set, wraps every request of the drivers.
	transport func(next http.RoundTripper) http.RoundTripper
}

func newEnv(t *testing.T, chunk int64) *env {
	t.Helper()
	f := disktopfake.New()
	f.ChunkSize = chunk
	clock := drivertest.NewClock(time.Unix(1_800_000_000, 0))
	f.SetClock(clock.Now)
	srv := drivertest.Serve(t, f)
	_, refresh := f.IssueToken()
	e := &env{fake: f, srv: srv, clock: clock, state: t.TempDir(), logs: &drivertest.LogBuffer{},
		waits: &drivertest.Waits{}}
	// No credential the fake ever handed out may reach a log line.
	t.Cleanup(func() { e.logs.AssertNoSecrets(t, f.Secrets()) })
	e.drv = e.open(t, refresh)
	return e
}

// open builds a driver over the env's state dir (a restart of the bridge).
func (e *env) open(t *testing.T, seed string) *Driver {
	t.Helper()
	opts := map[string]any{"client_id": e.fake.ClientID, "client_secret": e.fake.ClientSecret,
		"api_base": e.srv.URL, "refresh_token": seed}
	client := &http.Client{Transport: drivertest.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		var next http.RoundTripper = e.srv.Client().Transport
		if e.transport != nil {
			next = e.transport(next)
		}
		return next.RoundTrip(r)
	})}
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/disktop", StateDir: e.state, HTTPClient: client,
		Logger: zerolog.New(e.logs),
		Decode: drivertest.DecodeOptions(opts),
	})
	if err != nil {
		t.Fatal(err)
	}
	dd := d.(*Driver)
	dd.now = e.clock.Now
	dd.tokens.SetClock(e.clock.Now)
	dd.sleep = e.waits.Sleep // no real waits in tests
	return dd
}

func TestConformance(t *testing.T) {
	var envs []*env
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e := newEnv(t, 1<<20)
			e.fake.Faults.SetConfig(p.Faults)
			if p.Faults.RateLimit > 0 {
				e.drv.sleep = sleepCtx // a rate limit runs on real time: wait it out
			}
			envs = append(envs, e)
			return e.drv, drivertest.SharedClock(e.fake.Faults, e.clock)
		},
		ChunkSize:      1 << 20,
		PageSize:       pageLimit,
		ForbiddenNames: disktopfake.ForbiddenNames,
	})
	if hostile := envs[len(envs)-1].fake.Faults; hostile.Restarts() == 0 || hostile.Injected()["auth-429"] == 0 {
		t.Fatalf("the hostile run restarted %d times and made %v: not hostile", hostile.Restarts(), hostile.Injected())
	}
}

func TestTenThousandEntriesCostFiftyListCalls(t *testing.T) {
	e := newEnv(t, 1<<20)
	for i := 0; i < 10000; i++ {
		e.fake.Put(fmt.Sprintf("/big/f%05d", i), []byte("x"))
	}
	objs, err := e.drv.List(context.Background(), drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "big"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 10000 {
		t.Fatalf("%d entries", len(objs))
	}
	if n := e.fake.Calls()["list"]; n != 1+50 { // the root, to find big, then big
		t.Fatalf("%d list calls, want 1 + 50", n)
	}
}

func TestDedupSendsNoBytes(t *testing.T) {
	e := newEnv(t, 1<<20)
	data := bytes.Repeat([]byte("dedup"), 300000)
	e.fake.Put("/elsewhere.bin", data)
	o, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "copy.bin", drivertest.NewUpload(data))
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
	e.fake.Cut("part", 1)    // the connection breaks before the answer
	e.fake.LoseParts(19, 20) // complete answers 425 until they are sent again
	if _, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "big.bin", drivertest.NewUpload(data)); err != nil {
		t.Fatal(err)
	}
	got, _ := e.fake.File("/big.bin")
	want, have := md5.Sum(data), md5.Sum(got)
	if hex.EncodeToString(want[:]) != hex.EncodeToString(have[:]) {
		t.Fatal("uploaded content differs")
	}
	if c := e.fake.Calls(); c["part"] != 20+4+2 || c["complete"] != 2 || c["parts"] != 1 || e.fake.OpenUploads() != 0 {
		t.Fatalf("calls %v, open uploads %d: want 20 parts + 4 retried + 2 re-sent after a 425", c, e.fake.OpenUploads())
	}
}

func TestLostAnswerToCompleteIsCheckedNotRetried(t *testing.T) {
	e := newEnv(t, 1<<20)
	data := bytes.Repeat([]byte("c"), 3<<20)
	e.fake.Cut("complete", 1) // the file is made; the answer breaks off
	o, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "c.bin", drivertest.NewUpload(data))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/c.bin"); !bytes.Equal(got, data) || o.Name != "c.bin" || o.ID == "" {
		t.Fatalf("put answered %+v", o)
	}
	if c := e.fake.Calls(); c["complete"] != 1 || c["abort"] != 0 {
		t.Fatalf("calls %v: complete must not be sent twice nor the session aborted", c)
	}
	// A 502 from complete is retried, as the document says.
	e.fake.Fail("complete", http.StatusBadGateway, 1)
	if _, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "d.bin", drivertest.NewUpload(data[1:])); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["complete"] != 3 || c["abort"] != 0 {
		t.Fatalf("calls %v after a 502 from complete", c)
	}
}

func TestFailedOverwriteKeepsOldFileAndAborts(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/f.bin", []byte("old content"))
	old := drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "f.bin")
	e.fake.Fail("part", http.StatusBadGateway, 100)
	up := drivertest.NewUpload(bytes.Repeat([]byte("n"), 3<<20))
	up.Replaces = &old.Object
	if _, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "f.bin", up); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("upload with failing parts: %v, want ErrUnavailable", err)
	}
	if got, _ := e.fake.File("/f.bin"); string(got) != "old content" {
		t.Fatalf("old file lost: %q", got)
	}
	if e.fake.OpenUploads() != 0 || e.fake.Calls()["abort"] != 1 {
		t.Fatalf("session not aborted: %v", e.fake.Calls())
	}
	listedNow, _ := e.drv.List(context.Background(), drivertest.Root(t, e.drv))
	if len(listedNow) != 1 {
		t.Fatalf("a partial object is visible: %+v", listedNow)
	}
}

func TestOverwriteFailingAtTheRenameKeepsOldFile(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/f.bin", []byte("old content"))
	old := drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "f.bin")
	up := drivertest.NewUpload([]byte("new content"))
	up.Replaces = &old.Object
	// The upload works; then the manage calls: the old file goes aside
	// (1), the new one fails to take the name (2, retried up to 5), the old
	// one gets its name back (6), the new one is deleted (7).
	var manage int
	e.transport = func(next http.RoundTripper) http.RoundTripper {
		return drivertest.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/manage") {
				e.mu.Lock()
				manage++
				n := manage
				e.mu.Unlock()
				if n >= 2 && n <= 5 {
					return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
						Body: io.NopCloser(strings.NewReader(`{"errno":50301,"errmsg":"busy"}`)), Request: r}, nil
				}
			}
			return next.RoundTrip(r)
		})
	}
	if _, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "f.bin", up); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("overwrite: %v, want ErrUnavailable", err)
	}
	if got, _ := e.fake.File("/f.bin"); string(got) != "old content" {
		t.Fatalf("old file lost: %q", got)
	}
	if objs, _ := e.drv.List(context.Background(), drivertest.Root(t, e.drv)); len(objs) != 1 {
		t.Fatalf("left behind: %+v", objs)
	}
}

func TestOverwriteReplacesContent(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/f.bin", []byte("old content"))
	old := drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "f.bin")
	up := drivertest.NewUpload(bytes.Repeat([]byte("new"), 1<<20))
	up.Replaces = &old.Object
	o, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "f.bin", up)
	if err != nil || o.Name != "f.bin" {
		t.Fatalf("%+v %v", o, err)
	}
	if got, _ := e.fake.File("/f.bin"); !bytes.Equal(got, bytes.Repeat([]byte("new"), 1<<20)) {
		t.Fatal("content not replaced")
	}
	if objs, _ := e.drv.List(context.Background(), drivertest.Root(t, e.drv)); len(objs) != 1 || objs[0].ID != o.ID {
		t.Fatalf("listing after overwrite: %+v, put answered %+v", objs, o)
	}
}

func TestExpiredAccessTokenRefreshedAndRotationSurvivesRestart(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	tokenFile := filepath.Join(e.state, "token.json")
	// Every API call must carry the access token of the pair on disk: the
	// rotated refresh token is saved before its access token is used.
	var used []string
	e.transport = func(next http.RoundTripper) http.RoundTripper {
		return drivertest.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); bearer != "" {
				var saved struct {
					AccessToken string `json:"access_token"`
				}
				b, _ := os.ReadFile(tokenFile)
				json.Unmarshal(b, &saved)
				if saved.AccessToken != bearer {
					t.Errorf("%s used an access token that is not on disk", r.URL.Path)
				}
				used = append(used, bearer)
			}
			return next.RoundTrip(r)
		})
	}
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatal(err)
	}
	// The token runs out mid-session on the clock: refreshed before use.
	e.clock.Advance(59 * time.Minute)
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatalf("token near expiry not refreshed: %v", err)
	}
	// The platform drops the access token early: the 401 is answered by a
	// refresh and the call goes through.
	e.fake.ExpireAccessTokens()
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatalf("expired token not refreshed transparently: %v", err)
	}
	if c := e.fake.Calls(); c["token"] != 3 || c["quota"] != 4 {
		t.Fatalf("calls %v: want 3 refreshes (seed, expiry, 401) and 4 quota calls (one 401)", c)
	}
	if len(used) != 4 || used[0] == used[1] || used[1] == used[3] {
		t.Fatalf("access tokens used: %d", len(used))
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	// A restarted bridge carries on with the rotated token from disk; the
	// seed in its configuration is long dead and ignored.
	e.transport = nil
	e.clock.Advance(2 * time.Hour)
	d2 := e.open(t, "")
	if _, err := d2.Quota(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestConcurrentCallersRefreshOnce(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	e.drv.Quota(ctx)
	e.fake.ExpireAccessTokens()
	before := e.fake.Calls()["token"]
	drivertest.Concurrently(t, 8, func() error { _, err := e.drv.Quota(ctx); return err })
	if n := e.fake.Calls()["token"] - before; n != 1 {
		t.Fatalf("%d refreshes for 8 concurrent callers, want 1", n)
	}
}

func TestRevokedRefreshTokenNeedsLogin(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	e.drv.Quota(ctx)
	e.fake.RevokeRefreshTokens()
	_, err := e.drv.List(ctx, drivertest.Root(t, e.drv))
	if !errors.Is(err, drivers.ErrAuthExpired) || !strings.Contains(err.Error(), "login") {
		t.Fatalf("revoked: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := e.drv.Check(ctx); !errors.Is(err, drivers.ErrAuthExpired) {
			t.Fatalf("Check: %v, want ErrAuthExpired", err)
		}
	}
	if n := e.fake.Calls()["token"]; n != 2 {
		t.Fatalf("%d token calls: a dead refresh token is tried once, not on every request", n)
	}
	if n := strings.Count(e.logs.String(), "bridge login -config FILE /disktop"); n != 1 {
		t.Fatalf("%d needs-login log lines, want exactly 1:\n%s", n, e.logs.String())
	}
	if !e.logs.AssertNoSecrets(t, e.fake.Secrets(), err) {
		t.FailNow()
	}
	// `bridge login` (another process) writes new tokens: the running
	// mount recovers without a restart.
	_, refresh := e.fake.IssueToken()
	other := e.open(t, "")
	if err := other.tokens.Save(&oauth2.Token{RefreshToken: refresh}); err != nil {
		t.Fatal(err)
	}
	if err := e.drv.Check(ctx); err != nil {
		t.Fatalf("after a new login: %v", err)
	}
}

func TestFailedMoveKeepsTheOldName(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/a.txt", []byte("a"))
	a := drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "a.txt")
	gone := drivers.Ref{Path: "/gone", Object: drivers.Object{Name: "gone", ID: "d999", IsDir: true}}
	if _, err := e.drv.Move(context.Background(), a, gone, "b.txt"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("move into a missing folder: %v", err)
	}
	if _, ok := e.fake.File("/a.txt"); !ok {
		t.Fatal("a failed move+rename left the file renamed")
	}
}

func TestNeedsLoginThroughTheBridge(t *testing.T) {
	e := newEnv(t, 1<<20)
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []davfs.Mount{{Path: "/d", Driver: e.drv}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	e.fake.RevokeRefreshTokens() // the user revoked the app
	req, _ := http.NewRequest("PROPFIND", hs.URL+"/d/", nil)
	req.Header.Set("Depth", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("PROPFIND on a mount that needs login: %d, want 503", resp.StatusCode)
	}
	if h := s.Health(context.Background()); len(h) != 1 || h[0].OK || !h[0].NeedsLogin {
		t.Fatalf("health %+v", h)
	}
}

func TestLinkExpiresAndHonoursRange(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Put("/v.bin", []byte("0123456789"))
	l, err := e.drv.Link(context.Background(), drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "v.bin"))
	if err != nil || !l.ClientSafe || !l.Expires.Equal(e.clock.Now().Add(600*time.Second)) {
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
	e.clock.Advance(11 * time.Minute)
	if code, _ := get(); code != http.StatusForbidden {
		t.Fatalf("expired link answered %d", code)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	r := drivertest.Root(t, e.drv)
	e.fake.Put("/a.txt", []byte("a"))
	if _, err := e.drv.Mkdir(ctx, r, "a.txt"); !errors.Is(err, drivers.ErrExist) {
		t.Fatalf("mkdir over a file: %v", err)
	}
	if _, err := e.drv.Mkdir(ctx, r, "a:b"); !errors.Is(err, drivers.ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	gone := drivers.Ref{Path: "/gone", Object: drivers.Object{Name: "gone", ID: "f999999"}}
	if err := e.drv.Remove(ctx, gone); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("remove a missing id: %v", err)
	}
	// 429 with Retry-After: 1 is waited out while the waits add up to no
	// more than maxRetryWait; then it goes back to the bridge.
	e.fake.Fail("list", http.StatusTooManyRequests, 100)
	_, err := e.drv.List(ctx, r)
	if !errors.Is(err, drivers.ErrRateLimited) {
		t.Fatalf("429s: %v", err)
	}
	if d, ok := drivers.RetryAfter(err); !ok || d != time.Second {
		t.Fatalf("retry after %v %v", d, ok)
	}
	if n, want := e.fake.Calls()["list"], int(maxRetryWait/time.Second)+1; n != want {
		t.Fatalf("%d list calls, want %d (429 waits out Retry-After up to %v)", n, want, maxRetryWait)
	}
	e.fake.Fail("quota", http.StatusBadGateway, 10) // no Retry-After: attempts run out
	if _, err := e.drv.Quota(ctx); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("5xx: %v", err)
	}
}

// TestTolerantReadings serves the document's other readings (ids and
// numbers as strings, pages smaller than asked for, no total) and checks
// the driver copes.
func TestTolerantReadings(t *testing.T) {
	var calls int
	entries := 450
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/token":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"a","refresh_token":"r2","expires_in":"3600"}`)
		case "/v1/files":
			calls++
			var page, per int
			fmt.Sscan(r.URL.Query().Get("page"), &page)
			per = 100 // the server caps pages at 100 and gives no total
			var files []string
			for i := (page - 1) * per; i < entries && i < page*per; i++ {
				files = append(files, fmt.Sprintf(`{"id":"%d","name":"f%d","size":"3","md5":"ABCDEF0123456789ABCDEF0123456789"}`, i+1, i))
			}
			fmt.Fprintf(w, `{"errno":0,"data":{"folders":null,"files":[%s]}}`, strings.Join(files, ","))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	d, err := New(context.Background(), drivers.Config{MountPath: "/t", StateDir: t.TempDir(), HTTPClient: srv.Client(),
		Logger: zerolog.Nop(), Decode: drivertest.DecodeOptions(map[string]any{"client_id": "c", "api_base": srv.URL, "refresh_token": "r"})})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := d.List(context.Background(), drivers.Ref{Path: "/", Object: drivers.Object{ID: "d/", IsDir: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 450 || calls != 5 || objs[0].ID != "f1" || objs[0].Size != 3 || objs[0].Hashes.MD5 != "abcdef0123456789abcdef0123456789" {
		t.Fatalf("%d entries in %d calls, first %+v", len(objs), calls, objs[0])
	}
}

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
	propfind := func(p string) {
		if st := drivertest.Do(t, "PROPFIND", hs.URL+p, "Depth", "1"); st != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %s: %d", p, st)
		}
	}
	propfind("/d/big/")
	// Cold: big/'s 50 pages; the driver lists by path, so the mount root
	// is not listed to find big/.
	if n := e.fake.Calls()["list"]; n != 50 {
		t.Fatalf("cold PROPFIND made %d list calls, want 50", n)
	}
	propfind("/d/big/")
	if n := e.fake.Calls()["list"]; n != 50 {
		t.Fatalf("warm PROPFIND made %d more list calls, want 0", n-50)
	}

	// A deep folder costs its own listing alone; an empty one its parent's
	// too (an empty listing is no proof that a folder exists).
	e.fake.Put("/a/b/c/x.txt", []byte("x"))
	if _, err := e.drv.Mkdir(context.Background(), drivers.Ref{Path: "/a/b", Object: drivers.Object{Name: "b", IsDir: true}}, "empty"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path  string
		calls int
	}{{"/d/a/b/c/", 1}, {"/d/a/b/empty/", 2}} {
		before := e.fake.Calls()["list"]
		propfind(c.path)
		if n := e.fake.Calls()["list"] - before; n != c.calls {
			t.Errorf("cold PROPFIND of %s made %d list calls, want %d", c.path, n, c.calls)
		}
	}
}

// login runs the device flow on a driver without tokens; approve runs at
// each poll wait with the user code shown and the wait asked for.
func deviceLogin(t *testing.T, e *env, approve func(code string, n int, wait time.Duration)) (*Driver, string, error) {
	t.Helper()
	e.state = t.TempDir()
	d := e.open(t, "") // no token yet
	out := &drivertest.LogBuffer{}
	n := 0
	e.waits.OnWait(func(wait time.Duration) {
		n++
		s := out.String()
		i := strings.Index(s, "enter the code ")
		if i < 0 {
			t.Errorf("no code shown before polling: %q", s)
			return
		}
		var code string
		fmt.Sscan(s[i+len("enter the code "):], &code)
		approve(code, n, wait)
	})
	err := d.Login(context.Background(), out, drivers.LoginOptions{})
	e.waits.OnWait(nil)
	return d, out.String(), err
}

func TestDeviceLogin(t *testing.T) {
	e := newEnv(t, 1<<20)
	var waits []time.Duration
	d, out, err := deviceLogin(t, e, func(code string, n int, wait time.Duration) {
		waits = append(waits, wait)
		if n == 2 {
			e.clock.Advance(time.Second) // the poll comes too soon: slow_down
		} else {
			e.clock.Advance(wait)
		}
		if n == 3 && !e.fake.ApproveDevice(code) {
			t.Errorf("no pending device code %q", code)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The interval the platform asked for (5 s), plus 5 s after slow_down.
	if len(waits) != 3 || waits[0] != 5*time.Second || waits[1] != 5*time.Second || waits[2] != 10*time.Second {
		t.Fatalf("waits %v", waits)
	}
	if c := e.fake.Calls()["device-token"]; c != 3 {
		t.Fatalf("%d polls, want 3 (pending, slow_down, approved)", c)
	}
	if !strings.Contains(out, "█") && !strings.Contains(out, "▀") {
		t.Fatalf("no QR code in the output:\n%s", out)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("after login: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(e.state, "token.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
}

func TestDeviceLoginDeniedAndExpired(t *testing.T) {
	e := newEnv(t, 1<<20)
	_, _, err := deviceLogin(t, e, func(code string, _ int, wait time.Duration) {
		e.clock.Advance(wait)
		e.fake.DenyDevice(code)
	})
	if err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("denied: %v", err)
	}
	_, _, err = deviceLogin(t, e, func(_ string, _ int, wait time.Duration) { e.clock.Advance(11 * time.Minute) })
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.state, "token.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed login wrote tokens: %v", err)
	}
}

// authCodeLogin runs the --auth-code flow, the test acting as the browser.
func authCodeLogin(t *testing.T, d *Driver) error {
	t.Helper()
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
	// Follow the consent redirect to the loopback callback.
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-done
}

func TestAuthCodeLoginWithPKCE(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.state = t.TempDir()
	d := e.open(t, "")
	d.oauth.ClientSecret = "" // a public client: PKCE alone must do
	if err := authCodeLogin(t, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("after login: %v", err)
	}
	d.oauth.Scopes = []string{"files.everything"}
	if err := authCodeLogin(t, d); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Fatalf("refused authorization: %v", err)
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

// TestDeviceTokenOtherReadings: pending as HTTP 200, the token inside the
// {errno, data} envelope.
func TestDeviceTokenOtherReadings(t *testing.T) {
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls++
		if polls == 1 {
			fmt.Fprint(w, `{"error":"authorization_pending"}`)
			return
		}
		fmt.Fprint(w, `{"errno":0,"errmsg":"ok","data":{"access_token":"a","refresh_token":"r","expires_in":"7200"}}`)
	}))
	defer srv.Close()
	d := &Driver{opts: Options{ClientID: "c", APIBase: srv.URL}, client: srv.Client(),
		sleep: func(ctx context.Context, _ time.Duration) error { return nil }}
	tok, err := d.pollDevice(context.Background(), &oauth2.DeviceAuthResponse{DeviceCode: "dc", Interval: 1})
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" || tok.ExpiresIn != 7200 || polls != 2 {
		t.Fatalf("%+v %v after %d polls", tok, err, polls)
	}
}

// maxReadAt records the largest single read of an upload's body.
type maxReadAt struct {
	r   io.ReaderAt
	mu  sync.Mutex
	max int
}

func (m *maxReadAt) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	m.max = max(m.max, len(p))
	m.mu.Unlock()
	return m.r.ReadAt(p, off)
}

// A 100 MiB upload reads its parts from the temp file as they are sent: no
// read is anywhere near a part's size, so no part is ever held whole in
// memory (four 5 MiB buffers in flight were the old way).
func TestUploadHoldsNoPartBuffers(t *testing.T) {
	const chunk = 5 << 20
	e := newEnv(t, chunk)
	data := bytes.Repeat([]byte("no buffers, please\n"), 100<<20/19)
	up := drivertest.NewUpload(data)
	body := &maxReadAt{r: up.Body}
	up.Body = body
	if _, err := e.drv.Put(t.Context(), drivertest.Root(t, e.drv), "big.bin", up); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["part"] < int(len(data)/chunk) {
		t.Fatalf("calls %v: the upload did not go through parts", c)
	}
	if body.max > 256<<10 {
		t.Fatalf("a single read of %d bytes from the temp file: parts are buffered whole", body.max)
	}
	if got, _ := e.fake.File("/big.bin"); !bytes.Equal(got, data) {
		t.Fatal("uploaded content differs")
	}
}
