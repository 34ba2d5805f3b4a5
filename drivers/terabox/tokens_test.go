package terabox

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
)

// storedPair reads the token file.
func storedPair(t *testing.T, state string) (access, refresh string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "token.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken, tok.RefreshToken
}

// TestSign: the driver's sign is md5hex(client_id_timestamp_client_secret_
// private_secret) on its clock, and a wrong private secret is refused: the
// mount then needs a login, with no secret in the error.
func TestSign(t *testing.T) {
	e := newEnv(t, faults.Config{})
	form := e.drv.signedForm(nil)
	if ts := form.Get("timestamp"); ts != strconv.FormatInt(e.clock.Now().Unix(), 10) || form.Get("sign") != e.fake.Sign(ts) {
		t.Fatalf("sign %q for timestamp %q, the fake computes %q", form.Get("sign"), ts, e.fake.Sign(ts))
	}
	if n := e.fake.Calls()["refreshtoken"]; n != 1 {
		t.Fatalf("%d refreshes: the seed must be rotated once, in New", n)
	}

	bad := newEnv(t, faults.Config{})
	bad.state = t.TempDir()
	_, seed := bad.fake.IssueToken()
	d := bad.open(t, seed, "private_secret", "not-the-private-secret")
	_, err := d.Quota(context.Background())
	bad.noteErr(err)
	if !errors.Is(err, drivers.ErrAuthExpired) || !strings.Contains(err.Error(), "login") {
		t.Fatalf("a wrong private_secret: %v, want ErrAuthExpired asking for a login", err)
	}
	if c := bad.fake.Calls(); c["refreshtoken"] != 2 || c["quota"] != 0 {
		t.Fatalf("calls %v: want the two signed refreshes refused and no API call", c)
	}
}

// TestSingleUseRefreshSurvivesRestart: the seed is spent at once and the
// rotated pair is on disk; a refresh switches every caller to the new
// access token at once (the old one dies 15 s later); a restarted driver
// on the same state dir goes on with the stored pair, its configured seed
// long dead.
func TestSingleUseRefreshSurvivesRestart(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	access1, refresh1 := storedPair(t, e.state)
	if refresh1 == "" || refresh1 == e.seed {
		t.Fatal("the seed was not rotated into the state dir")
	}
	// The seed is dead: another mount given it cannot log in.
	state := e.state
	e.state = t.TempDir()
	if _, err := e.open(t, e.seed).Quota(ctx); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("a spent seed: %v, want ErrAuthExpired", err)
	}
	e.state = state

	s := e.record()
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(48*time.Hour - time.Minute) // inside the refresh margin
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatal(err)
	}
	access2, refresh2 := storedPair(t, e.state)
	if access2 == access1 || refresh2 == refresh1 {
		t.Fatal("the token near its expiry was not refreshed")
	}
	if used := s.all(); len(used) != 2 || used[0] != access1 || used[1] != access2 {
		t.Fatalf("access tokens used: %d, want the old one then the new one", len(used))
	}
	for i := 0; i < 3; i++ {
		if _, err := e.drv.List(ctx, drivertest.Root(t, e.drv)); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(s.all()[2:], access1) {
		t.Fatal("a call after the refresh used the old access token")
	}
	e.clock.Advance(14 * time.Second)
	if !e.fake.AccessTokenAlive(access1) {
		t.Fatal("the old access token died before 15 s")
	}
	e.clock.Advance(2 * time.Second)
	if e.fake.AccessTokenAlive(access1) {
		t.Fatal("the old access token lives on 16 s after the refresh")
	}

	// A restarted bridge: same state dir, the dead seed still configured.
	refreshes := e.fake.Calls()["refreshtoken"]
	d2 := e.open(t, e.seed)
	if _, err := d2.Quota(ctx); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if n := e.fake.Calls()["refreshtoken"]; n != refreshes {
		t.Fatalf("the restarted driver refreshed (%d): the stored token was valid", n-refreshes)
	}
	e.fake.ExpireAccessTokens()
	if _, err := d2.Quota(ctx); err != nil {
		t.Fatalf("refresh after a restart: %v", err)
	}
	if _, refresh3 := storedPair(t, e.state); refresh3 == refresh2 || e.fake.Calls()["refreshtoken"] != refreshes+1 {
		t.Fatal("the restarted driver did not refresh with the stored, rotated refresh token")
	}
	if fi, err := os.Stat(filepath.Join(e.state, "token.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
}

// TestDeadAccessTokenRefreshedOnce: an access token refused (errno 111)
// is refreshed once for all concurrent callers.
func TestDeadAccessTokenRefreshedOnce(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	e.drv.Quota(ctx)
	e.fake.ExpireAccessTokens()
	before := e.fake.Calls()["refreshtoken"]
	drivertest.Concurrently(t, 8, func() error { _, err := e.drv.Quota(ctx); return err })
	if n := e.fake.Calls()["refreshtoken"] - before; n != 1 {
		t.Fatalf("%d refreshes for 8 concurrent callers, want 1", n)
	}
}

// TestRevokedNeedsLoginOnce: a refused refresh token is tried once, logs
// one line naming the login command, and answers ErrAuthExpired.
func TestRevokedNeedsLoginOnce(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	e.drv.Quota(ctx)
	e.fake.RevokeRefreshTokens()
	before := e.fake.Calls()["refreshtoken"]
	for i := 0; i < 3; i++ {
		err := e.noteErr(e.drv.Check(ctx))
		if !errors.Is(err, drivers.ErrAuthExpired) {
			t.Fatalf("Check: %v, want ErrAuthExpired", err)
		}
	}
	if n := e.fake.Calls()["refreshtoken"] - before; n != 1 {
		t.Fatalf("%d refreshes of a dead token, want 1", n)
	}
	if n := strings.Count(e.logs.String(), "bridge login -config FILE /terabox"); n != 1 {
		t.Fatalf("%d needs-login lines:\n%s", n, e.logs.String())
	}
}

// TestDomainsFromTokenInfo: the openapi goes to api_domain, superfile2 to
// upload_domain (the fake refuses any other host), tokeninfo is asked
// once and again after 50 minutes (under the hour), and at once when the
// user's domains move.
func TestDomainsFromTokenInfo(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	s := e.record()
	if _, err := e.drv.Put(ctx, drivertest.Root(t, e.drv), "f.bin", upload(make([]byte, 5<<20))); err != nil {
		t.Fatal(err)
	}
	api, up := hostOf(e.api.URL), hostOf(e.upload.URL)
	if h := s.hosts["/rest/2.0/pcs/superfile2"]; len(h) != 1 || !h[up] {
		t.Fatalf("superfile2 went to %v, want %s only", h, up)
	}
	for _, p := range []string{"/openapi/api/precreate", "/openapi/api/create", "/openapi/api/list"} {
		if h := s.hosts[p]; len(h) != 1 || !h[api] {
			t.Fatalf("%s went to %v, want %s only", p, h, api)
		}
	}
	if n := e.fake.Calls()["tokeninfo"]; n != 1 {
		t.Fatalf("%d tokeninfo calls, want 1", n)
	}
	e.clock.Advance(30 * time.Minute)
	e.drv.Quota(ctx)
	if n := e.fake.Calls()["tokeninfo"]; n != 1 {
		t.Fatalf("%d tokeninfo calls after 30 min, want 1 (cached)", n)
	}
	e.clock.Advance(21 * time.Minute)
	e.drv.Quota(ctx)
	if n := e.fake.Calls()["tokeninfo"]; n != 2 {
		t.Fatalf("%d tokeninfo calls after 51 min, want 2 (the cache is under an hour)", n)
	}
	// The user moves: the old hosts answer 404 and tokeninfo names others.
	h := e.fake.Handler()
	api2, up2 := newServer(t, h), newServer(t, h)
	e.fake.SetDomains(hostOf(api2), hostOf(up2))
	if _, err := e.drv.Quota(ctx); err != nil {
		t.Fatalf("after the domains moved: %v", err)
	}
	if n := e.fake.Calls()["tokeninfo"]; n != 3 {
		t.Fatalf("%d tokeninfo calls, want 3", n)
	}
}

func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSeedRotationUnderRateLimit: the token endpoint's rate limit (errno
// 300001, HTTP 200) is a 429 to the token store: waited out, not a
// needs-login.
func TestSeedRotationUnderRateLimit(t *testing.T) {
	e := newEnv(t, faults.Config{})
	e.state = t.TempDir()
	_, seed := e.fake.IssueToken()
	e.fake.Fail("refreshtoken", http.StatusTooManyRequests, 1)
	d := e.open(t, seed)
	if _, err := d.Quota(context.Background()); err != nil {
		t.Fatalf("after a rate-limited refresh: %v", err)
	}
	if n := e.fake.Calls()["refreshtoken"]; n != 3 { // the env's seed, then 429 and success
		t.Fatalf("%d refresh calls, want 3", n)
	}
}
