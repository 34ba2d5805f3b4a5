package disktop

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	disktopfake "bridge/tests/fakes/disktop"
)

// pacerEnv is a fake and a driver whose waits (API calls and token
// refreshes) are recorded instead of waited.
type pacerEnv struct {
	fake *disktopfake.Fake
	drv  *Driver
	// rewrite, when set, edits every answer (headers a fake cannot make).
	rewrite func(*http.Response)

	callWaits, tokenWaits drivertest.Waits
}

func newPacerEnv(t *testing.T) *pacerEnv {
	t.Helper()
	f := disktopfake.New()
	srv := drivertest.Serve(t, f)
	_, refresh := f.IssueToken()
	e := &pacerEnv{fake: f}
	client := &http.Client{Transport: drivertest.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := srv.Client().Transport.RoundTrip(r)
		if err == nil && e.rewrite != nil {
			e.rewrite(resp)
		}
		return resp, err
	})}
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/disktop", StateDir: t.TempDir(), HTTPClient: client, Logger: zerolog.Nop(),
		Decode: func(v any) error {
			*v.(*Options) = Options{ClientID: f.ClientID, ClientSecret: f.ClientSecret, APIBase: srv.URL, RefreshToken: refresh}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.drv = d.(*Driver)
	e.drv.sleep = e.callWaits.Sleep
	e.drv.tokens.SetSleep(e.tokenWaits.Sleep)
	return e
}

func (e *pacerEnv) waits() (calls, tokens []time.Duration) {
	return e.callWaits.Asked(), e.tokenWaits.Asked()
}

func sandboxRoot() drivers.Ref {
	return drivers.Ref{Path: "/", Object: drivers.Object{ID: "d/", IsDir: true}}
}

// The token endpoint is rate limited like the rest: its 429 is waited out
// (Retry-After: 1, not shortened) and the call that needed the token goes
// through.
func TestPacerTokenEndpoint429IsWaitedOut(t *testing.T) {
	e := newPacerEnv(t)
	e.fake.Fail("token", http.StatusTooManyRequests, 2)
	if _, err := e.drv.Quota(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls()["token"]; n != 3 {
		t.Fatalf("%d token calls, want 3", n)
	}
	calls, tokens := e.waits()
	if len(tokens) != 2 || tokens[0] < time.Second || tokens[1] < time.Second || len(calls) != 0 {
		t.Fatalf("token waits %v, call waits %v: want two waits of at least 1 s in the refresh", tokens, calls)
	}
	// A refused refresh token is not retried.
	e.fake.RevokeRefreshTokens()
	e.drv.tokens.Rejected(mustToken(t, e.drv))
	if err := e.drv.Check(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("%v, want ErrAuthExpired", err)
	}
	if n := e.fake.Calls()["token"]; n != 4 {
		t.Fatalf("%d token calls, want 4: a refusal is final", n)
	}
}

func mustToken(t *testing.T, d *Driver) string {
	t.Helper()
	tok, err := d.tokens.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// An API 429 is waited out exactly as long as Retry-After says.
func TestPacerAPI429WaitsRetryAfter(t *testing.T) {
	e := newPacerEnv(t)
	e.fake.Fail("list", http.StatusTooManyRequests, 2)
	if _, err := e.drv.List(context.Background(), sandboxRoot()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := e.waits(); len(calls) != 2 || calls[0] != time.Second || calls[1] != time.Second {
		t.Fatalf("waits %v, want [1s 1s]", calls)
	}
}

// A Retry-After longer than maxRetryWait is not waited inside the call:
// it goes back to the bridge (503 + Retry-After).
func TestPacerLongRetryAfterGoesBack(t *testing.T) {
	e := newPacerEnv(t)
	e.rewrite = func(resp *http.Response) {
		if resp.StatusCode == http.StatusTooManyRequests && strings.HasPrefix(resp.Request.URL.Path, "/v1/") {
			resp.Header.Set("Retry-After", "120")
		}
	}
	e.fake.Fail("list", http.StatusTooManyRequests, 1)
	_, err := e.drv.List(context.Background(), sandboxRoot())
	if after, ok := drivers.RetryAfter(err); !errors.Is(err, drivers.ErrRateLimited) || !ok || after != 2*time.Minute {
		t.Fatalf("%v (retry after %v)", err, after)
	}
	if calls, _ := e.waits(); len(calls) != 0 || e.fake.Calls()["list"] != 1 {
		t.Fatalf("waits %v, %d listings", calls, e.fake.Calls()["list"])
	}
}

// A lost answer is retried for a GET, never for a manage action.
func TestPacerLostAnswerRetriedOnlyWhenSafe(t *testing.T) {
	e := newPacerEnv(t)
	e.fake.Put("/a.txt", []byte("a"))
	ctx := context.Background()
	e.fake.Cut("list", 1)
	objs, err := e.drv.List(ctx, sandboxRoot())
	if err != nil || len(objs) != 1 || e.fake.Calls()["list"] != 2 {
		t.Fatalf("%v %+v, %d listings", err, objs, e.fake.Calls()["list"])
	}
	e.fake.Cut("manage", 1)
	_, err = e.drv.Rename(ctx, drivers.Ref{Path: "/a.txt", Object: objs[0]}, "b.txt")
	if !errors.Is(err, drivers.ErrUnavailable) || !errors.Is(err, errConnLost) {
		t.Fatalf("%v, want a lost connection", err)
	}
	if n := e.fake.Calls()["manage"]; n != 1 {
		t.Fatalf("%d manage calls, want 1: a lost answer may hide a success", n)
	}
}
