package terabox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
	teraboxfake "bridge/tests/fakes/terabox"
)

// env is a fake served on three hosts (www, api_domain, upload_domain) and
// a driver logged in to it.
type env struct {
	fake             *teraboxfake.Fake
	www, api, upload *httptest.Server
	clock            *drivertest.Clock
	drv              *Driver
	state            string
	logs             *drivertest.LogBuffer
	seed             string
	rt               *http.Transport
	waits            *drivertest.Waits // every wait the drivers asked for
	mu               sync.Mutex
	transport        func(next http.RoundTripper) http.RoundTripper
	errs             []error // errors the drivers returned (checked for secrets)
}

func hostOf(u string) string {
	pu, _ := url.Parse(u)
	return pu.Host
}

func newEnv(t *testing.T, cfg faults.Config) *env {
	t.Helper()
	f := teraboxfake.New()
	t.Cleanup(func() { f.Close() })
	f.Faults.SetConfig(cfg)
	// The clock starts at the real time, since the driver signs its first
	// refresh (in New) before the test can hand it this clock.
	clock := drivertest.NewClock(time.Now().Truncate(time.Second))
	f.SetClock(clock.Now)
	h := f.Handler()
	e := &env{fake: f, clock: clock, state: t.TempDir(), logs: &drivertest.LogBuffer{}, waits: &drivertest.Waits{},
		rt: http.DefaultTransport.(*http.Transport).Clone()}
	e.www, e.api, e.upload = httptest.NewServer(h), httptest.NewServer(h), httptest.NewServer(h)
	t.Cleanup(func() { e.www.Close(); e.api.Close(); e.upload.Close(); e.rt.CloseIdleConnections() })
	f.SetBaseURL(e.www.URL)
	f.SetDomains(hostOf(e.api.URL), hostOf(e.upload.URL))
	_, e.seed = f.IssueToken()
	// No credential the fake ever handed out may reach a log line or an
	// error the driver returned.
	t.Cleanup(func() {
		e.mu.Lock()
		errs := e.errs
		e.mu.Unlock()
		e.logs.AssertNoSecrets(t, f.Secrets(), errs...)
	})
	e.drv = e.open(t, e.seed)
	return e
}

// open builds a driver over the env's state dir (a restart of the bridge).
func (e *env) open(t *testing.T, seed string, extra ...string) *Driver {
	t.Helper()
	return e.openIn(t, e.state, seed, extra...).(*Driver)
}

// openIn builds a driver over a state dir: the account's, or a share's
// when extra names share_url. It runs on the env's clock and waits.
func (e *env) openIn(t *testing.T, state, seed string, extra ...string) drivers.Driver {
	t.Helper()
	opts := map[string]any{"client_id": e.fake.ClientID, "client_secret": e.fake.ClientSecret,
		"private_secret": e.fake.PrivateSecret, "app_name": e.fake.AppName, "base_url": e.www.URL, "refresh_token": seed}
	for i := 0; i+1 < len(extra); i += 2 {
		opts[extra[i]] = extra[i+1]
	}
	client := &http.Client{Transport: drivertest.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		var next http.RoundTripper = e.rt
		e.mu.Lock()
		wrap := e.transport
		e.mu.Unlock()
		if wrap != nil {
			next = wrap(next)
		}
		return next.RoundTrip(r)
	})}
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/terabox", StateDir: state, HTTPClient: client,
		Logger: zerolog.New(e.logs), Decode: drivertest.DecodeOptions(opts),
	})
	if err != nil {
		t.Fatal(err)
	}
	dd, ok := d.(*Driver)
	if s, share := d.(*Share); share {
		dd, ok = s.acct, true
	}
	if !ok {
		t.Fatalf("New made a %T", d)
	}
	dd.now = e.clock.Now
	dd.tokens.SetClock(e.clock.Now)
	dd.sleep = e.waits.Sleep
	return d
}

// noteErr records an error for the cleanup's secret check.
func (e *env) noteErr(err error) error {
	if err != nil {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
	}
	return err
}

// checked is the driver with every error it returns noted for the secret
// check.
type checked struct {
	*Driver
	e *env
}

func (c checked) Root(ctx context.Context) (drivers.Object, error) {
	o, err := c.Driver.Root(ctx)
	return o, c.e.noteErr(err)
}

func (c checked) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	o, err := c.Driver.List(ctx, dir)
	return o, c.e.noteErr(err)
}

func (c checked) Link(ctx context.Context, f drivers.Ref) (drivers.Link, error) {
	l, err := c.Driver.Link(ctx, f)
	return l, c.e.noteErr(err)
}

func (c checked) Mkdir(ctx context.Context, p drivers.Ref, name string) (drivers.Object, error) {
	o, err := c.Driver.Mkdir(ctx, p, name)
	return o, c.e.noteErr(err)
}

func (c checked) Rename(ctx context.Context, o drivers.Ref, name string) (drivers.Object, error) {
	r, err := c.Driver.Rename(ctx, o, name)
	return r, c.e.noteErr(err)
}

func (c checked) Move(ctx context.Context, o, dst drivers.Ref, name string) (drivers.Object, error) {
	r, err := c.Driver.Move(ctx, o, dst, name)
	return r, c.e.noteErr(err)
}

func (c checked) Copy(ctx context.Context, o, dst drivers.Ref, name string) (drivers.Object, error) {
	r, err := c.Driver.Copy(ctx, o, dst, name)
	return r, c.e.noteErr(err)
}

func (c checked) Remove(ctx context.Context, o drivers.Ref) error {
	return c.e.noteErr(c.Driver.Remove(ctx, o))
}

func (c checked) Put(ctx context.Context, p drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	o, err := c.Driver.Put(ctx, p, name, up)
	return o, c.e.noteErr(err)
}

func (c checked) Quota(ctx context.Context) (drivers.Quota, error) {
	q, err := c.Driver.Quota(ctx)
	return q, c.e.noteErr(err)
}

func TestConformance(t *testing.T) {
	var envs []*env
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e := newEnv(t, p.Faults)
			e.drv.pageSize = 10 // three pages in the paging case
			if p.Faults.RateLimit > 0 {
				e.waits.Real() // a rate limit runs on real time: wait it out
			}
			envs = append(envs, e)
			return checked{e.drv, e}, drivertest.SharedClock(e.fake.Faults, e.clock)
		},
		ChunkSize:      blockSize,
		PageSize:       10,
		ForbiddenNames: teraboxfake.ForbiddenNames,
	})
	hostile := envs[len(envs)-1].fake
	if hostile.Faults.Restarts() == 0 || hostile.Faults.Injected()["auth-429"] == 0 {
		t.Fatalf("the hostile run restarted %d times and made %v: not hostile", hostile.Faults.Restarts(), hostile.Faults.Injected())
	}
	if hostile.Calls()["refreshtoken"] < 2 {
		t.Fatalf("the hostile run refreshed %d times: its 60-second tokens were not replaced", hostile.Calls()["refreshtoken"])
	}
}

// sent records the access_tokens of every API call and the hosts used.
type sent struct {
	mu     sync.Mutex
	tokens []string
	hosts  map[string]map[string]bool // path -> hosts
}

func (e *env) record() *sent {
	s := &sent{hosts: map[string]map[string]bool{}}
	e.mu.Lock()
	e.transport = func(next http.RoundTripper) http.RoundTripper {
		return drivertest.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			s.mu.Lock()
			if tok := r.URL.Query().Get("access_tokens"); tok != "" {
				s.tokens = append(s.tokens, tok)
			}
			if s.hosts[r.URL.Path] == nil {
				s.hosts[r.URL.Path] = map[string]bool{}
			}
			s.hosts[r.URL.Path][r.URL.Host] = true
			s.mu.Unlock()
			return next.RoundTrip(r)
		})
	}
	e.mu.Unlock()
	return s
}

func (s *sent) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}
