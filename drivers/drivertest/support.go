// This file is the scaffolding the drivers' own tests share: one clock
// for a fake and its driver, a stand-in for their sleeps, a fake served on
// loopback, a log sink checked for secrets, and the calls every driver's
// tests make.

package drivertest

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bridge/drivers"
	"bridge/drivers/pacer"
)

// Clock is the one clock of a driver's test: the fake, the driver and its
// token store all read Now, and the test moves it with Advance instead of
// waiting. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock is a Clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Waits stands in for a driver's sleep func: Sleep records every wait asked
// for and returns at once (with ctx's error), so a test neither waits for
// real nor misses a backoff. It is safe for concurrent use.
type Waits struct {
	mu     sync.Mutex
	asked  []time.Duration
	onWait func(time.Duration)
	real   bool
}

// Sleep is the func a driver sleeps with.
func (w *Waits) Sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.asked = append(w.asked, d)
	hook, real := w.onWait, w.real
	w.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	if real {
		return pacer.Sleep(ctx, d)
	}
	return ctx.Err()
}

// Asked is every wait asked for so far, in order.
func (w *Waits) Asked() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.asked)
}

// OnWait makes fn run at each wait before Sleep returns, so a test can act
// "while" the driver waits; nil removes it.
func (w *Waits) OnWait(fn func(d time.Duration)) {
	w.mu.Lock()
	w.onWait = fn
	w.mu.Unlock()
}

// Real makes Sleep wait for real from now on (still recording): a fake's
// rate limit runs on real time, so a driver must wait it out.
func (w *Waits) Real() {
	w.mu.Lock()
	w.real = true
	w.mu.Unlock()
}

// SharedClock is the Provider of a harness whose fake, driver and token
// store read one Clock: Restart restarts the fake (its fault layer),
// Advance moves c, and so every side's time at once.
func SharedClock(fake interface{ Restart() }, c *Clock) Provider {
	return sharedClock{fake, c}
}

type sharedClock struct {
	fake  interface{ Restart() }
	clock *Clock
}

func (p sharedClock) Restart()                { p.fake.Restart() }
func (p sharedClock) Advance(d time.Duration) { p.clock.Advance(d) }

// Fake is a provider fake as Serve needs it.
type Fake interface {
	Handler() http.Handler
	// SetBaseURL tells the fake where it is served (for the links and
	// hosts it hands out).
	SetBaseURL(u string)
}

// Serve serves f on loopback until the test ends and tells f its URL; a
// fake that keeps files (an io.Closer) is closed then too.
func Serve(t testing.TB, f Fake) *httptest.Server {
	t.Helper()
	if c, ok := f.(io.Closer); ok {
		t.Cleanup(func() { c.Close() }) // runs after srv.Close: the fake's files go last
	}
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	return srv
}

// Get fetches url as a WebDAV client or a browser would (http.DefaultClient,
// following redirects), asking for the byte range rng unless it is ""
// ("bytes=2-4"), and returns the status and the body; the test stops when
// the request fails or the body breaks off.
func Get(t testing.TB, url, rng string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: the body broke off after %d bytes: %v", req.URL.Path, len(b), err)
	}
	return resp.StatusCode, b
}

// Do sends method to url with the header pairs hdr ("Depth", "1", ...),
// reads the answer whole and returns its status; the test stops when the
// request fails. Tests that count a driver's calls behind a WebDAV
// request through davfs use it.
func Do(t testing.TB, method, url string, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// RoundTripFunc is an http.RoundTripper made of a function, for tests that
// watch, edit or refuse a driver's requests.
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// LogBuffer is a log sink safe for concurrent writers (a driver's
// goroutines log while the test reads): zerolog.New(buf).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it is the io.Writer a logger writes to.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// AssertNoSecrets reports an error on t for each secret (a fake's tokens,
// keys, passwords, signatures; empty ones are skipped) found in the logs
// or in the text of errs, naming it by its first four characters only,
// and tells whether none was found. It does not stop the test: a caller
// that must stop calls t.FailNow when it returns false.
func (l *LogBuffer) AssertNoSecrets(t testing.TB, secrets []string, errs ...error) bool {
	t.Helper()
	logs := l.String()
	var texts []string
	for _, err := range errs {
		if err != nil {
			texts = append(texts, err.Error())
		}
	}
	errText := strings.Join(texts, "\n")
	ok := true
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			ok = false
			t.Errorf("a secret (%.4s...) is in the logs:\n%s", s, redact(logs, s))
		}
		if strings.Contains(errText, s) {
			ok = false
			t.Errorf("a secret (%.4s...) is in an error:\n%s", s, redact(errText, s))
		}
	}
	return ok
}

// redact is the lines of text that hold secret, with it blanked out.
func redact(text, secret string) string {
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, secret) {
			lines = append(lines, strings.ReplaceAll(line, secret, "<secret>"))
		}
	}
	return strings.Join(lines, "\n")
}

// Root is the Ref of d's root, "/".
func Root(t testing.TB, d drivers.Driver) drivers.Ref {
	t.Helper()
	o, err := d.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return drivers.Ref{Path: "/", Object: o}
}

// Listed is the Ref of name in dir's listing; the test stops when the
// listing fails or does not hold name.
func Listed(t testing.TB, d drivers.Driver, dir drivers.Ref, name string) drivers.Ref {
	t.Helper()
	objs, err := d.List(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Name == name {
			return drivers.Ref{Path: joinPath(dir, name), Object: o}
		}
	}
	t.Fatalf("%s not in %s", name, dir.Path)
	return drivers.Ref{}
}

// Put stores data as name in parent (an upload as davfs makes it, see
// NewUpload) and returns the new file's Ref; the test stops when it fails.
func Put(t testing.TB, d drivers.Driver, parent drivers.Ref, name string, data []byte) drivers.Ref {
	t.Helper()
	o, err := d.Put(context.Background(), parent, name, NewUpload(data))
	if err != nil {
		t.Fatalf("Put %s: %v", name, err)
	}
	return drivers.Ref{Path: joinPath(parent, name), Object: o}
}

func joinPath(dir drivers.Ref, name string) string {
	return strings.TrimSuffix(dir.Path, "/") + "/" + name
}

// Concurrently runs f n times at once and waits for all of them; then the
// test stops if any returned an error.
func Concurrently(t testing.TB, n int, f func() error) {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		go func() { errs <- f() }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		t.Fatal(first)
	}
}

// MergeOptions is base with extra laid over it, as a test varies a mount's
// options: an entry of extra replaces base's, a nil one removes it. base
// itself is not changed.
func MergeOptions(base, extra map[string]any) map[string]any {
	opts := maps.Clone(base)
	for k, v := range extra {
		if v == nil {
			delete(opts, k)
		} else {
			opts[k] = v
		}
	}
	return opts
}
