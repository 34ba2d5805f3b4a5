package cloudreve

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/drivers/pacer"
	cloudrevefake "bridge/tests/fakes/cloudreve"
)

// pacerEnv is a fake and a context whose pacers record their waits
// instead of waiting (pacer.WithSleep also reaches the detached login).
type pacerEnv struct {
	fake *cloudrevefake.Fake
	srv  *httptest.Server
	ctx  context.Context

	waits drivertest.Waits
}

func newPacerEnv(t *testing.T) *pacerEnv {
	t.Helper()
	f := cloudrevefake.New()
	srv := drivertest.Serve(t, f)
	e := &pacerEnv{fake: f, srv: srv}
	e.ctx = pacer.WithSleep(context.Background(), e.waits.Sleep)
	return e
}

func (e *pacerEnv) asked() []time.Duration { return e.waits.Asked() }

// open builds a driver (it logs in at once, with e.ctx).
func (e *pacerEnv) open(t *testing.T) *Driver { t.Helper(); return e.openAs(t, e.fake.Password) }

func (e *pacerEnv) openAs(t *testing.T, password string) *Driver {
	t.Helper()
	d, err := New(e.ctx, drivers.Config{
		MountPath: "/cloudreve", StateDir: t.TempDir(), HTTPClient: e.srv.Client(), Logger: zerolog.Nop(),
		Decode: func(v any) error {
			*v.(*Options) = Options{BaseURL: e.srv.URL, Username: e.fake.User, Password: password}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Driver)
}

func rootRef() drivers.Ref {
	return drivers.Ref{Path: "/", Object: drivers.Object{ID: "d:/", IsDir: true}}
}

// A proxy's 429 and 502 in front of the server are passing: the listing
// waits and goes through instead of failing the WebDAV request.
func TestPacerListRetries429And502(t *testing.T) {
	e := newPacerEnv(t)
	e.fake.Put("/a.txt", []byte("a"))
	d := e.open(t)
	e.fake.FailHTTP("list", http.StatusTooManyRequests, 1)
	e.fake.FailHTTP("list", http.StatusBadGateway, 1)
	objs, err := d.List(e.ctx, rootRef())
	if err != nil || len(objs) != 1 {
		t.Fatalf("%v %+v", err, objs)
	}
	if n := e.fake.Calls()["list"]; n != 3 {
		t.Fatalf("%d listings, want 3", n)
	}
	// The 429 carries Retry-After: 1 (the fault layer's), waited exactly;
	// the 502 names no wait: a backoff.
	waits := e.asked()
	if len(waits) != 2 || waits[0] != time.Second || waits[1] <= 0 || waits[1] > 2*pacer.DefaultMinBackoff {
		t.Fatalf("waits %v, want [1s, a second backoff]", waits)
	}
}

// Failures that last longer than a call's attempts go back classified,
// with the provider's wait.
func TestPacerGivesUpAfterItsAttempts(t *testing.T) {
	e := newPacerEnv(t)
	d := e.open(t)
	// A 429's Retry-After (1 s) is waited out while the waits add up to
	// no more than maxRetryWait.
	e.fake.FailHTTP("list", http.StatusTooManyRequests, 100)
	_, err := d.List(e.ctx, rootRef())
	if !errors.Is(err, drivers.ErrRateLimited) {
		t.Fatalf("%v, want ErrRateLimited", err)
	}
	if n, want := e.fake.Calls()["list"], int(maxRetryWait/time.Second)+1; n != want {
		t.Fatalf("%d listings, want %d", n, want)
	}
	// A 502 names no wait: the attempts run out.
	e.fake.FailHTTP("storage", http.StatusBadGateway, 100)
	if _, err := d.Quota(e.ctx); !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
}

// A 429 on the login endpoint is waited out, not turned into a failed
// (and remembered) login.
func TestPacerLogin429IsWaitedOut(t *testing.T) {
	e := newPacerEnv(t)
	e.fake.FailHTTP("login", http.StatusTooManyRequests, 2)
	d := e.open(t)
	if _, err := d.List(e.ctx, rootRef()); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls()["login"]; n != 3 {
		t.Fatalf("%d logins, want 3 (two refused with 429, then one)", n)
	}
	// Two Retry-Afters, and at most the gate they closed for the call
	// that waited on the login (the recorded sleeps take no time).
	if w := e.asked(); len(w) < 2 || len(w) > 3 || w[0] != time.Second || w[1] != time.Second {
		t.Fatalf("waits %v, want the two Retry-Afters", w)
	}
	// A refused login stays refused, and is not retried.
	e2 := newPacerEnv(t)
	d2 := e2.openAs(t, "not-the-password")
	if err := d2.Check(e2.ctx); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("%v, want ErrAuthExpired", err)
	}
	if n, w := e2.fake.Calls()["login"], e2.asked(); n != 1 || len(w) != 0 {
		t.Fatalf("%d logins, waits %v: a refusal is final", n, w)
	}
}

// A move whose answer is lost may have happened: it is not sent again.
// A listing whose answer is lost is.
func TestPacerCutMoveIsNotRetried(t *testing.T) {
	e := newPacerEnv(t)
	e.fake.Put("/a/f.txt", []byte("f"))
	e.fake.Put("/b/keep", nil)
	d := e.open(t)
	f, err := d.find(e.ctx, "/a", "f.txt", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.find(e.ctx, "/", "b", true)
	if err != nil {
		t.Fatal(err)
	}
	e.fake.Cut("move", 1)
	_, err = d.Move(e.ctx, drivers.Ref{Path: "/a/f.txt", Object: f}, drivers.Ref{Path: "/b", Object: b}, "f.txt")
	if err == nil || !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Move after a cut answer: %v, want ErrUnavailable", err)
	}
	if n := e.fake.Calls()["move"]; n != 1 {
		t.Fatalf("%d move calls, want 1: a lost answer may hide a success", n)
	}
	if !e.fake.Exists("/b/f.txt", false) {
		t.Fatal("the fake did not move the file: the cut did not come after the change")
	}
	before := e.fake.Calls()["list"]
	e.fake.Cut("list", 1)
	if _, err := d.List(e.ctx, rootRef()); err != nil {
		t.Fatalf("a cut listing: %v", err)
	}
	if n := e.fake.Calls()["list"] - before; n != 2 {
		t.Fatalf("%d listings, want 2", n)
	}
}

func TestPacerCancelledWaitStopsAtOnce(t *testing.T) {
	e := newPacerEnv(t)
	d := e.open(t)
	e.fake.FailHTTP("list", http.StatusServiceUnavailable, 10)
	ctx, cancel := context.WithCancel(context.Background()) // the real sleep
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := d.List(ctx, rootRef()); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("cancelled after %v", el)
	}
}
