// Package faults is the fault layer every provider fake is served through,
// so that each fake is as rough as the real service and a driver that only
// copes with a kind server fails a test. One layer per fake holds:
//
//   - the fake's settable clock (token, link and session lifetimes run on it);
//   - the lifetimes a fake must use where its document promises none
//     (access tokens or sessions, signed links, refresh tokens);
//   - a rate limit that every endpoint enforces, OAuth and login included,
//     answered 429 with Retry-After;
//   - random 5xx answers (before the fake acts, as a proxy in front of it
//     does), connections cut mid-body on downloads, added latency;
//   - scripted faults for tests (the next N calls of an endpoint fail, are
//     cut, or wait);
//   - a restart: the fake forgets what its real service keeps in memory
//     (sessions, upload sessions, signed links), in-flight answers break
//     off, and a dead link then answers the way that provider really does.
//
// The same knobs reach Go tests (Config, Layer's methods), the standalone
// command (RegisterFlags) and checks from outside the test suite
// (POST BASE_URL/__restart while a fake runs).
package faults

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"bridge/tests/fakes/fakeclock"
)

// Config is how rough a fake is. Its zero value is a kind server: no
// faults, and each fake's own default lifetimes.
type Config struct {
	// TokenTTL is the lifetime of access tokens (or login sessions, for
	// providers with cookies); 0 keeps the fake's default.
	TokenTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens; 0: they do not expire
	// (single use still applies where the document says so).
	RefreshTTL time.Duration
	// LinkTTL is the lifetime of signed download links; 0 keeps the fake's
	// default.
	LinkTTL time.Duration
	// RateLimit is how many requests per second the whole fake takes,
	// every endpoint together; beyond it the answer is 429 with
	// Retry-After. 0: no limit.
	RateLimit int
	// AuthThrottle makes every AuthThrottle-th call of a token or login
	// endpoint answer 429 with Retry-After, whatever the rate: a token
	// endpoint rate-limited on its own, as the one that turned a token
	// storm into 502s was. 0: never.
	AuthThrottle int
	// ErrorRate is the share (0..1) of requests answered with a 5xx
	// before the fake acts on them.
	ErrorRate float64
	// CutRate is the share (0..1) of download answers whose connection is
	// cut somewhere in the body.
	CutRate float64
	// Latency is added before every answer.
	Latency time.Duration
	// Seed makes the random choices repeatable; 0 picks one at random.
	Seed uint64
}

// Hostile is the profile drivertest's second run and the e2e hostile
// mounts use: short tokens and links, a rate limit that parallel transfers
// hit, occasional 5xx and cut downloads. It is the harshest reading each
// document allows where it promises nothing.
func Hostile() Config {
	return Config{
		TokenTTL:     60 * time.Second,
		LinkTTL:      60 * time.Second,
		RateLimit:    150,
		AuthThrottle: 3,
		ErrorRate:    0.02,
		CutRate:      0.1,
	}
}

// RegisterFlags adds the fault flags to fs, filling c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "access-token (or session) lifetime, e.g. 120s (0: the fake's default)")
	fs.DurationVar(&c.RefreshTTL, "refresh-ttl", c.RefreshTTL, "refresh-token lifetime (0: no expiry)")
	fs.DurationVar(&c.LinkTTL, "link-ttl", c.LinkTTL, "signed download link lifetime, e.g. 60s (0: the fake's default)")
	fs.IntVar(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second over all endpoints before 429 + Retry-After (0: none)")
	fs.IntVar(&c.AuthThrottle, "auth-throttle", c.AuthThrottle, "every Nth token/login call answers 429 + Retry-After (0: never)")
	fs.Float64Var(&c.ErrorRate, "error-rate", c.ErrorRate, "share of requests answered 5xx (0..1)")
	fs.Float64Var(&c.CutRate, "cut-rate", c.CutRate, "share of downloads cut mid-body (0..1)")
	fs.DurationVar(&c.Latency, "latency", c.Latency, "latency added to every answer")
	fs.Uint64Var(&c.Seed, "fault-seed", c.Seed, "seed of the random faults (0: random)")
}

// Kind is what an endpoint is, for the faults that apply to some kinds
// only.
type Kind int

const (
	// API is an ordinary call.
	API Kind = iota
	// Auth is a token or login endpoint.
	Auth
	// Download serves file bytes (signed links): random cuts apply.
	Download
	// Upload takes file bytes.
	Upload
)

// Fault is a scripted failure of calls to one endpoint.
type Fault struct {
	Endpoint string
	// Skip lets this many calls through first.
	Skip int
	// Times is how many calls fail after that (0 means 1).
	Times int
	// Status answers this HTTP status (with the fake's error body for it;
	// a 429 or 503 carries Retry-After: 1); 0 with nothing else set is a
	// 500.
	Status int
	// Cut runs the call and breaks the connection half way through the
	// answer: the change is made but the client does not learn it.
	Cut bool
	// Hold makes the call wait until the channel is closed, then go on
	// (a slow server; tests use it to line callers up).
	Hold <-chan struct{}
	// Answer, when set, writes the answer instead of the fake (a
	// provider-specific error shape, such as an HTTP 200 with a JSON code).
	Answer http.HandlerFunc
}

// ErrorWriter writes a fake's own error answer for an HTTP status (the
// provider's error envelope), for the failures the layer makes up.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, msg string)

// Layer is one fake's fault layer. It is safe for concurrent use.
type Layer struct {
	clock fakeclock.Clock

	mu        sync.Mutex
	cfg       Config
	rng       *rand.Rand
	errWriter ErrorWriter
	calls     map[string]int
	faults    []*Fault
	onRestart []func()
	restarts  int
	gen       int // bumped by Restart: answers of an older one break off
	window    int64
	inWindow  int
	authCalls int
	injected  map[string]int // made-up failures by kind, for tests
}

// New makes a layer with cfg.
func New(cfg Config) *Layer {
	l := &Layer{calls: map[string]int{}, injected: map[string]int{}}
	l.SetConfig(cfg)
	return l
}

// SetConfig replaces the layer's configuration (before or while serving).
func (l *Layer) SetConfig(cfg Config) {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	l.mu.Lock()
	l.cfg = cfg
	l.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	l.mu.Unlock()
}

// Config returns the layer's configuration.
func (l *Layer) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// SetErrorWriter sets how the fake's errors look (default: plain text).
func (l *Layer) SetErrorWriter(fn ErrorWriter) {
	l.mu.Lock()
	l.errWriter = fn
	l.mu.Unlock()
}

// Now is the fake's clock.
func (l *Layer) Now() time.Time { return l.clock.Now() }

// SetClock replaces the clock's source of time.
func (l *Layer) SetClock(now func() time.Time) { l.clock.Set(now) }

// Advance moves the fake's clock forward by d.
func (l *Layer) Advance(d time.Duration) { l.clock.Advance(d) }

// TokenTTL is the access-token lifetime: the configured one, else def.
func (l *Layer) TokenTTL(def time.Duration) time.Duration { return or(l.Config().TokenTTL, def) }

// LinkTTL is the signed-link lifetime: the configured one, else def.
func (l *Layer) LinkTTL(def time.Duration) time.Duration { return or(l.Config().LinkTTL, def) }

// RefreshTTL is the refresh-token lifetime; 0 means none.
func (l *Layer) RefreshTTL() time.Duration { return l.Config().RefreshTTL }

func or(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// OnRestart registers what a restart makes the fake forget.
func (l *Layer) OnRestart(fn func()) {
	l.mu.Lock()
	l.onRestart = append(l.onRestart, fn)
	l.mu.Unlock()
}

// Restart acts as a crash and restart of the service: answers in flight
// break off and the fake forgets what its service keeps in memory.
func (l *Layer) Restart() {
	l.mu.Lock()
	l.restarts++
	l.gen++
	fns := append([]func(){}, l.onRestart...)
	l.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Restarts counts restarts so far.
func (l *Layer) Restarts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.restarts
}

// Inject adds a scripted fault; faults on one endpoint apply in order.
func (l *Layer) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	l.mu.Lock()
	l.faults = append(l.faults, &f)
	l.mu.Unlock()
}

// Fail makes the next count calls of endpoint answer status.
func (l *Layer) Fail(endpoint string, status, count int) {
	l.Inject(Fault{Endpoint: endpoint, Status: status, Times: count})
}

// Cut makes the next count calls of endpoint break off half way through
// their answer.
func (l *Layer) Cut(endpoint string, count int) {
	l.Inject(Fault{Endpoint: endpoint, Cut: true, Times: count})
}

// Calls returns how often each endpoint was called (failed calls too).
func (l *Layer) Calls() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.calls)
}

// Injected returns how many failures the layer made up on its own, by
// kind: "429" (of which "auth-429" on token and login endpoints), "5xx",
// "cut", "restart-cut".
func (l *Layer) Injected() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.injected)
}

// RestartPath is where a running fake takes POST to restart.
const RestartPath = "/__restart"

// Handler wraps a fake's whole handler: it serves POST /__restart.
func (l *Layer) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == RestartPath {
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				http.Error(w, "POST to restart the fake", http.StatusMethodNotAllowed)
				return
			}
			l.Restart()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "restarted (%d so far)\n", l.Restarts())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decision is what the layer does with one call.
type decision struct {
	gen     int
	limited bool
	status  int // a random 5xx
	cut     bool
	latency time.Duration
	script  *Fault
	errW    ErrorWriter
}

func (l *Layer) decide(name string, kind Kind) decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[name]++
	d := decision{gen: l.gen, latency: l.cfg.Latency, errW: l.errWriter}
	for _, f := range l.faults {
		if f.Endpoint != name || f.Times <= 0 {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			break
		}
		f.Times--
		d.script = f
		return d
	}
	if kind == Auth && l.cfg.AuthThrottle > 0 {
		l.authCalls++
		if l.authCalls%l.cfg.AuthThrottle == 0 {
			l.injected["429"]++
			l.injected["auth-429"]++
			d.limited = true
			return d
		}
	}
	if l.cfg.RateLimit > 0 {
		sec := time.Now().Unix() // real time: the client waits it out for real
		if sec != l.window {
			l.window, l.inWindow = sec, 0
		}
		l.inWindow++
		if l.inWindow > l.cfg.RateLimit {
			l.injected["429"]++
			d.limited = true
			return d
		}
	}
	if l.cfg.ErrorRate > 0 && l.rng.Float64() < l.cfg.ErrorRate {
		l.injected["5xx"]++
		d.status = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[l.rng.IntN(3)]
		return d
	}
	if kind == Download && l.cfg.CutRate > 0 && l.rng.Float64() < l.cfg.CutRate {
		l.injected["cut"]++
		d.cut = true
	}
	return d
}

// Route wraps one endpoint of the fake: the call is counted under name,
// then scripted faults, the rate limit, random 5xx and cuts apply, and
// the answer breaks off if the fake restarts while it is written.
func (l *Layer) Route(name string, kind Kind, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := l.decide(name, kind)
		if d.latency > 0 {
			select {
			case <-time.After(d.latency):
			case <-r.Context().Done():
				return
			}
		}
		w = &restartWriter{ResponseWriter: w, l: l, gen: d.gen}
		if f := d.script; f != nil {
			switch {
			case f.Hold != nil:
				select {
				case <-f.Hold:
					h.ServeHTTP(w, r)
				case <-r.Context().Done():
				}
			case f.Answer != nil:
				io.Copy(io.Discard, r.Body)
				f.Answer(w, r)
			case f.Cut:
				cw := &cutWriter{ResponseWriter: w, half: true}
				h.ServeHTTP(cw, r)
				cw.finish()
			default:
				status := f.Status
				if status == 0 { // WriteHeader(0) would panic the server
					status = http.StatusInternalServerError
				}
				l.fail(w, r, d.errW, status, "injected failure")
			}
			return
		}
		switch {
		case d.limited:
			l.fail(w, r, d.errW, http.StatusTooManyRequests, "rate limited")
		case d.status != 0:
			l.fail(w, r, d.errW, d.status, "service unavailable")
		case d.cut:
			cw := &cutWriter{ResponseWriter: w, rng: l.cutPoint}
			h.ServeHTTP(cw, r)
			cw.finish()
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// cutPoint picks where in a body of n bytes a random cut falls.
func (l *Layer) cutPoint(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= 1 {
		return 0
	}
	return l.rng.Int64N(n)
}

// fail answers a made-up failure in the fake's own error shape.
func (l *Layer) fail(w http.ResponseWriter, r *http.Request, errW ErrorWriter, status int, msg string) {
	io.Copy(io.Discard, r.Body)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if errW != nil {
		errW(w, r, status, msg)
		return
	}
	http.Error(w, msg, status)
}

// restartWriter breaks the answer off once the fake has restarted, also
// when the restart came before the first byte (a call held or slow): the
// process that took the call is gone.
type restartWriter struct {
	http.ResponseWriter
	l   *Layer
	gen int
}

// check aborts the handler if the fake restarted since the call came in.
func (rw *restartWriter) check() {
	rw.l.mu.Lock()
	stale := rw.l.gen != rw.gen
	if stale {
		rw.l.injected["restart-cut"]++
	}
	rw.l.mu.Unlock()
	if stale {
		panic(http.ErrAbortHandler)
	}
}

func (rw *restartWriter) WriteHeader(status int) {
	rw.check()
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *restartWriter) Write(p []byte) (int, error) {
	rw.check()
	return rw.ResponseWriter.Write(p)
}

func (rw *restartWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// cutWriter breaks the connection inside the body: half way through the
// first write (half), or at a random byte of the body (rng, given the
// body's length from Content-Length).
//
// The cut must not change how the answer is framed: net/http gives a
// small answer written at once a Content-Length, and a real server cut
// mid-body has sent it. So the status is held back until the first byte,
// and a cut inside a small first write declares that write's length, where
// flushing the part before the cut would otherwise make the answer chunked
// (of unknown length, which a client cannot tell from a file).
type cutWriter struct {
	http.ResponseWriter
	half    bool
	rng     func(n int64) int64
	budget  int64
	started bool
	status  int // a WriteHeader held back until the first byte
}

// chunkingSize is net/http's bufferBeforeChunkingSize: an answer up to
// this long, written before the handler returns, gets a Content-Length.
const chunkingSize = 2048

func (c *cutWriter) WriteHeader(status int) {
	if c.started || status < 200 {
		c.ResponseWriter.WriteHeader(status)
		return
	}
	if c.status == 0 {
		c.status = status
	}
}

// sendHeader writes the held-back status, if any.
func (c *cutWriter) sendHeader() {
	if c.status != 0 {
		c.ResponseWriter.WriteHeader(c.status)
		c.status = 0
	}
}

// finish sends the status of an answer that had no body to cut.
func (c *cutWriter) finish() { c.sendHeader() }

// Flush sends the held-back status first, or a flush would send a 200.
func (c *cutWriter) Flush() {
	c.sendHeader()
	http.NewResponseController(c.ResponseWriter).Flush()
}

func (c *cutWriter) Write(p []byte) (int, error) {
	first := !c.started
	if first {
		c.started = true
		switch {
		case c.half:
			c.budget = int64(len(p) / 2)
		default:
			n, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
			if err != nil || n <= 0 {
				n = int64(len(p))
			}
			c.budget = c.rng(n)
		}
	}
	if int64(len(p)) <= c.budget {
		c.sendHeader()
		c.budget -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	h := c.Header()
	if first && len(p) <= chunkingSize && h.Get("Content-Length") == "" && h.Get("Transfer-Encoding") == "" {
		h.Set("Content-Length", strconv.Itoa(len(p)))
	}
	c.sendHeader()
	c.ResponseWriter.Write(p[:c.budget])
	http.NewResponseController(c.ResponseWriter).Flush()
	panic(http.ErrAbortHandler)
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
