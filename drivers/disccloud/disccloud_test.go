package disccloud

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/drivers/pacer"
	disccloudfake "bridge/tests/fakes/disccloud"
)

type env struct {
	fake  *disccloudfake.Fake
	srv   *httptest.Server
	state string
	logs  *drivertest.LogBuffer
}

func newFake(t *testing.T) *env {
	t.Helper()
	f := disccloudfake.New()
	t.Cleanup(func() { f.Close() }) // after the server is closed
	srv := drivertest.Serve(t, f)
	return &env{fake: f, srv: srv, state: t.TempDir(), logs: &drivertest.LogBuffer{}}
}

func (e *env) options(extra map[string]any) map[string]any {
	return drivertest.MergeOptions(map[string]any{"api_base": e.fake.APIBase(), "key1": e.fake.Key1, "key2": e.fake.Key2}, extra)
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
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/disccloud", StateDir: e.state, HTTPClient: e.srv.Client(), Logger: zerolog.New(e.logs),
		Decode: drivertest.DecodeOptions(e.options(extra)),
	})
	if err != nil {
		return nil, err
	}
	dd := d.(*Driver)
	dd.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } // no real waits
	return dd, nil
}

// checkNoSecrets fails when a key, password or token the fake knows is in
// the logs or in errs.
func (e *env) checkNoSecrets(t *testing.T, errs ...error) {
	t.Helper()
	if !e.logs.AssertNoSecrets(t, e.fake.Secrets(), errs...) {
		t.FailNow()
	}
}

func root() drivers.Ref {
	return drivers.Ref{Path: "/", Object: drivers.Object{ID: rootID, IsDir: true}}
}

func TestConformance(t *testing.T) {
	var envs []*env
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e := newFake(t)
			e.fake.Faults.SetConfig(p.Faults)
			d := e.open(t, nil)
			d.now = e.fake.Faults.Now
			d.sleep = pacer.Sleep // a rate limit runs on real time: wait it out
			envs = append(envs, e)
			return d, e.fake.Faults // its clock is the one the driver reads (d.now)
		},
		ChunkSize:      256 << 10,
		ForbiddenNames: ForbiddenNames,
		HTTPClient:     http.DefaultClient,
	})
	for _, e := range envs {
		e.checkNoSecrets(t)
		if left := e.fake.Names("/"); len(left) == 0 {
			continue
		}
		for _, n := range e.fake.Names("/") {
			if strings.Contains(n, "bridge-") || strings.Contains(n, " (2)") {
				t.Fatalf("a temporary or renamed twin was left in the root: %q", n)
			}
		}
	}
	if hostile := envs[len(envs)-1].fake.Faults; hostile.Restarts() == 0 || hostile.Injected()["auth-429"] == 0 {
		t.Fatalf("the hostile run restarted %d times and made %v: not hostile", hostile.Restarts(), hostile.Injected())
	}
}

// ForbiddenNames are names the driver refuses because the site would
// store them under another name.
var ForbiddenNames = []string{".hidden", `quo"te`, `back\slash`, " lead", "trail ", "tag<b>x"}
