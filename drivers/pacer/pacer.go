// Package pacer is the one retry helper of the drivers (the team rule:
// no driver writes its own retry loop, as with rclone's lib/pacer).
//
// A driver wraps each provider call in Pacer.Call. The call reports, for
// each failure, whether it is passing (a 429, a proxy's 5xx, a connection
// lost before anything could have happened) and how long the provider asked
// to wait (Retry-After). The pacer then:
//
//   - waits out a Retry-After exactly (never shorter: a provider that asked
//     for a second and is called again sooner answers 429 again, and some
//     count it against the account), else backs off exponentially with
//     jitter (so that parallel callers refused together do not come back
//     together);
//   - does not wait when the wait is longer than MaxWait or would end after
//     the context's deadline: the last error goes back at once, wrapped with
//     drivers.WithRetryAfter, so that the bridge answers 503 with
//     Retry-After and the WebDAV client, not a held request, does the
//     waiting;
//   - stops at once when the context is cancelled.
//
// What may be sent twice is the driver's decision, not the pacer's: a lost
// answer to a rename or a move may hide a success, so drivers report a lost
// connection as passing only for calls that are safe to repeat.
package pacer

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"bridge/drivers"
)

// Defaults for a Pacer's zero fields.
const (
	DefaultAttempts   = 4
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultMaxWait is the longest Retry-After waited out inside one call:
	// a WebDAV client holding a request much longer gives up on its own.
	DefaultMaxWait = 30 * time.Second
)

// Retry is what one attempt reports about its failure.
type Retry struct {
	// Again: the failure is passing and the same call may be made again.
	Again bool
	// After is the wait the provider asked for (Retry-After, a rate-limit
	// reset); 0 when it named none. It is honoured exactly.
	After time.Duration
}

// Pacer retries calls. Its zero value is usable (the defaults above); a
// Pacer holds no state between calls, so drivers may build one per call or
// share one.
type Pacer struct {
	// Attempts is how many times a call is made at most, the first
	// included.
	Attempts int
	// MinBackoff is the first backoff; it doubles on each attempt up to
	// MaxBackoff. The wait is drawn between half of it and all of it.
	MinBackoff, MaxBackoff time.Duration
	// MaxWait is the longest Retry-After waited out; a longer one goes
	// back to the caller as a drivers.RetryError.
	MaxWait time.Duration
	// Sleep waits d or until ctx is done (tests replace it to record the
	// waits asked without waiting); nil is Sleep. A sleep carried by the
	// context (WithSleep) wins over it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Gate, when set, is shared by every call to one provider: a wait one
	// call is told (Retry-After) holds the others back too, so that
	// parallel callers do not all run into the same rate limit again.
	Gate *Gate
}

// Gate holds back every call of one provider until a rate limit's
// Retry-After has passed (as rclone's pacer is shared per remote). Its
// zero value is open.
type Gate struct {
	mu    sync.Mutex
	until time.Time
}

// hold closes the gate for d from now (it never opens it earlier).
func (g *Gate) hold(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := time.Now().Add(d); t.After(g.until) {
		g.until = t
	}
}

// wait is how long until the gate opens.
func (g *Gate) wait() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Until(g.until)
}

// Call runs fn until it succeeds, reports a failure that is not passing,
// runs out of attempts, or the context ends. attempt counts from 1. A
// failure that names its wait (a rate limit's Retry-After) does not use up
// an attempt: such waits go on while they add up to no more than MaxWait.
// The error returned is fn's last one (with the wait the provider asked
// for attached when it has none yet), or the context's.
func (p *Pacer) Call(ctx context.Context, fn func(attempt int) (Retry, error)) error {
	attempts := or(p.Attempts, DefaultAttempts)
	maxWait := or(p.MaxWait, DefaultMaxWait)
	var waited time.Duration // Retry-After waits so far
	var own time.Time        // until when this call has waited by itself
	failures := 0            // failures that named no wait
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.Gate != nil && time.Now().After(own) {
			if d := p.Gate.wait(); d > 0 {
				if err := p.sleep(ctx)(ctx, d); err != nil {
					return err
				}
			}
		}
		r, err := fn(attempt)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if r.After <= 0 {
			failures++
		}
		if !r.Again || failures >= attempts {
			return withAfter(err, r.After)
		}
		wait := r.After
		switch {
		case wait > 0 && waited+wait > maxWait:
			return withAfter(err, wait)
		case wait > 0:
			waited += wait
			own = time.Now().Add(wait)
			if p.Gate != nil {
				p.Gate.hold(wait)
			}
		default:
			wait = p.backoff(failures)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The retry could not end in time: say so now rather than
			// hold the caller until its deadline.
			return withAfter(err, r.After)
		}
		if err := p.sleep(ctx)(ctx, wait); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return err
		}
	}
}

// backoff is the wait before attempt+1 when the provider named none:
// MinBackoff doubled per attempt, at most MaxBackoff, drawn from its upper
// half.
func (p *Pacer) backoff(attempt int) time.Duration {
	lo, hi := or(p.MinBackoff, DefaultMinBackoff), or(p.MaxBackoff, DefaultMaxBackoff)
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

func (p *Pacer) sleep(ctx context.Context) func(context.Context, time.Duration) error {
	if s, ok := ctx.Value(sleepKey{}).(func(context.Context, time.Duration) error); ok {
		return s
	}
	if p.Sleep != nil {
		return p.Sleep
	}
	return Sleep
}

func or[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// withAfter attaches the provider's wait to err unless it carries one.
func withAfter(err error, after time.Duration) error {
	if after <= 0 {
		return err
	}
	if _, ok := drivers.RetryAfter(err); ok {
		return err
	}
	return drivers.WithRetryAfter(err, after)
}

// Sleep waits d, or until ctx is done (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type sleepKey struct{}

// WithSleep returns a context whose pacers wait with sleep instead of
// their own Sleep. It is for tests of code whose Pacer they cannot reach
// (a login detached from the caller, a driver built by its factory): the
// context's values follow the call into every goroutine it starts.
func WithSleep(ctx context.Context, sleep func(ctx context.Context, d time.Duration) error) context.Context {
	return context.WithValue(ctx, sleepKey{}, sleep)
}

// Passing reports whether an HTTP status says "not now" rather than "no":
// rate limits, and the errors of an overloaded server or of a proxy or CDN
// in front of it. 501, 505 and 507 (no quota) are answers, not passing.
func Passing(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case 509, // bandwidth limit exceeded (cPanel, Apache)
		520, 521, 522, 523, 524, // Cloudflare: the origin failed or timed out
		529: // overloaded
		return true
	}
	return false
}

// RetryAfter is the wait an answer asks for in its Retry-After header, in
// either form RFC 9110 allows: delta-seconds or an HTTP-date. An HTTP-date
// is read against the answer's own Date header when it has one (so a
// skewed local clock does not matter), else against the local clock. 0
// when there is none or it cannot be read, or the date is past.
func RetryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	now := time.Now()
	if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		now = date
	}
	if d := at.Sub(now); d > 0 {
		return d
	}
	return 0
}
