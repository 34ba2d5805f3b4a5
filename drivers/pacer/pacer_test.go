package pacer

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"bridge/drivers"
)

// recorder is a fake Sleep: it records the waits asked and returns at once.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recorder) asked() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

var errBusy = errors.New("busy")

// failing fails the first n attempts with r, then succeeds.
func failing(n int, r Retry, calls *int) func(int) (Retry, error) {
	return func(attempt int) (Retry, error) {
		*calls++
		if attempt != *calls {
			panic("attempts are not counted from 1")
		}
		if attempt <= n {
			return r, errBusy
		}
		return Retry{}, nil
	}
}

func TestBackoffGrowsWithJitterThenSucceeds(t *testing.T) {
	rec := &recorder{}
	p := &Pacer{Attempts: 5, MinBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Sleep: rec.sleep}
	calls := 0
	if err := p.Call(context.Background(), failing(4, Retry{Again: true}, &calls)); err != nil {
		t.Fatal(err)
	}
	if calls != 5 {
		t.Fatalf("%d calls, want 5", calls)
	}
	// 100, 200, then capped at 300: each drawn from the upper half.
	waits := rec.asked()
	bounds := []time.Duration{100, 200, 300, 300}
	if len(waits) != len(bounds) {
		t.Fatalf("waits %v", waits)
	}
	for i, w := range waits {
		hi := bounds[i] * time.Millisecond
		if w < hi/2 || w > hi {
			t.Fatalf("wait %d is %v, want within [%v, %v] (all: %v)", i+1, w, hi/2, hi, waits)
		}
	}
}

func TestRetryAfterIsWaitedExactly(t *testing.T) {
	rec := &recorder{}
	p := &Pacer{Sleep: rec.sleep}
	calls := 0
	if err := p.Call(context.Background(), failing(2, Retry{Again: true, After: 1500 * time.Millisecond}, &calls)); err != nil {
		t.Fatal(err)
	}
	if w := rec.asked(); len(w) != 2 || w[0] != 1500*time.Millisecond || w[1] != 1500*time.Millisecond {
		t.Fatalf("waits %v, want the Retry-After twice", w)
	}
}

func TestLongRetryAfterGoesBackWithoutWaiting(t *testing.T) {
	rec := &recorder{}
	p := &Pacer{MaxWait: 30 * time.Second, Sleep: rec.sleep}
	calls := 0
	err := p.Call(context.Background(), failing(9, Retry{Again: true, After: time.Minute}, &calls))
	if !errors.Is(err, errBusy) || calls != 1 || len(rec.asked()) != 0 {
		t.Fatalf("%v after %d calls, waits %v", err, calls, rec.asked())
	}
	if after, ok := drivers.RetryAfter(err); !ok || after != time.Minute {
		t.Fatalf("retry after %v %v, want 1m", after, ok)
	}
}

func TestWaitPastTheDeadlineIsNotWaited(t *testing.T) {
	rec := &recorder{}
	p := &Pacer{Sleep: rec.sleep}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	calls := 0
	err := p.Call(ctx, failing(9, Retry{Again: true, After: 2 * time.Second}, &calls))
	if !errors.Is(err, errBusy) || calls != 1 || len(rec.asked()) != 0 {
		t.Fatalf("%v after %d calls, waits %v", err, calls, rec.asked())
	}
	if after, ok := drivers.RetryAfter(err); !ok || after != 2*time.Second {
		t.Fatalf("retry after %v %v", after, ok)
	}
	// A backoff that does not fit either.
	calls = 0
	p.MinBackoff = time.Hour
	p.MaxBackoff = time.Hour
	err = p.Call(ctx, failing(9, Retry{Again: true}, &calls))
	if !errors.Is(err, errBusy) || calls != 1 || len(rec.asked()) != 0 {
		t.Fatalf("%v after %d calls, waits %v", err, calls, rec.asked())
	}
	if _, ok := drivers.RetryAfter(err); ok {
		t.Fatal("a backoff is not the provider's Retry-After")
	}
}

func TestFinalFailureIsNotRetried(t *testing.T) {
	rec := &recorder{}
	p := &Pacer{Sleep: rec.sleep}
	calls := 0
	err := p.Call(context.Background(), failing(9, Retry{}, &calls))
	if !errors.Is(err, errBusy) || calls != 1 || len(rec.asked()) != 0 {
		t.Fatalf("%v after %d calls, waits %v", err, calls, rec.asked())
	}
}

func TestAttemptsRunOutWithTheLastError(t *testing.T) {
	rec := &recorder{}
	p := &Pacer{Attempts: 3, Sleep: rec.sleep}
	calls := 0
	err := p.Call(context.Background(), failing(9, Retry{Again: true}, &calls))
	if !errors.Is(err, errBusy) || calls != 3 || len(rec.asked()) != 2 {
		t.Fatalf("%v after %d calls, waits %v", err, calls, rec.asked())
	}
	// Waits the provider names use no attempt; they run out when they add
	// up to more than MaxWait.
	rec = &recorder{}
	p = &Pacer{Attempts: 3, MaxWait: 5 * time.Second, Sleep: rec.sleep}
	calls = 0
	err = p.Call(context.Background(), failing(20, Retry{Again: true, After: time.Second}, &calls))
	if !errors.Is(err, errBusy) || calls != 6 || len(rec.asked()) != 5 {
		t.Fatalf("rate limited: %v after %d calls, waits %v; want 6 calls and 5 s of waits", err, calls, rec.asked())
	}
	if after, ok := drivers.RetryAfter(err); !ok || after != time.Second {
		t.Fatalf("retry after %v %v: the bridge should pass the provider's wait on", after, ok)
	}
	// An error that carries its own wait keeps it.
	calls = 0
	own := drivers.WithRetryAfter(errBusy, 7*time.Second)
	err = p.Call(context.Background(), func(int) (Retry, error) { calls++; return Retry{Again: true, After: time.Second}, own })
	if after, _ := drivers.RetryAfter(err); after != 7*time.Second || err != own {
		t.Fatalf("%v (after %v)", err, after)
	}
}

func TestCancellationStopsAtOnce(t *testing.T) {
	// During a wait, with the real Sleep.
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pacer{MinBackoff: time.Hour, MaxBackoff: time.Hour}
	calls := 0
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	err := p.Call(ctx, failing(9, Retry{Again: true}, &calls))
	if !errors.Is(err, context.Canceled) || calls != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %d calls in %v", err, calls, time.Since(start))
	}
	// Before any attempt.
	calls = 0
	if err := p.Call(ctx, failing(0, Retry{}, &calls)); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("%v, %d calls", err, calls)
	}
	// During an attempt: the context's error, not the attempt's.
	ctx2, cancel2 := context.WithCancel(context.Background())
	err = p.Call(ctx2, func(int) (Retry, error) { cancel2(); return Retry{Again: true}, errBusy })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

func TestSleepFromTheContextWins(t *testing.T) {
	own, ctxRec := &recorder{}, &recorder{}
	p := &Pacer{Sleep: own.sleep}
	calls := 0
	ctx := WithSleep(context.WithoutCancel(context.Background()), ctxRec.sleep)
	if err := p.Call(ctx, failing(1, Retry{Again: true, After: time.Second}, &calls)); err != nil {
		t.Fatal(err)
	}
	if len(own.asked()) != 0 || len(ctxRec.asked()) != 1 {
		t.Fatalf("own %v, context's %v", own.asked(), ctxRec.asked())
	}
}

func TestZeroPacerUsesDefaults(t *testing.T) {
	rec := &recorder{}
	var p Pacer
	calls := 0
	err := p.Call(WithSleep(context.Background(), rec.sleep), failing(99, Retry{Again: true}, &calls))
	if !errors.Is(err, errBusy) || calls != DefaultAttempts {
		t.Fatalf("%v after %d calls", err, calls)
	}
	if w := rec.asked(); len(w) != DefaultAttempts-1 || w[0] < DefaultMinBackoff/2 || w[0] > DefaultMinBackoff {
		t.Fatalf("waits %v", w)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Now().UTC()
	for _, c := range []struct {
		name  string
		h     http.Header
		want  time.Duration
		delta time.Duration // tolerance, for dates read against the local clock
	}{
		{"seconds", http.Header{"Retry-After": {"1"}}, time.Second, 0},
		{"spaces", http.Header{"Retry-After": {" 120 "}}, 2 * time.Minute, 0},
		{"zero", http.Header{"Retry-After": {"0"}}, 0, 0},
		{"negative", http.Header{"Retry-After": {"-5"}}, 0, 0},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, 0},
		{"none", http.Header{}, 0, 0},
		{"huge", http.Header{"Retry-After": {"99999999999999"}}, 24 * time.Hour, 0},
		{"date against Date", http.Header{
			"Retry-After": {"Wed, 21 Oct 2015 07:28:30 GMT"},
			"Date":        {"Wed, 21 Oct 2015 07:28:00 GMT"}}, 30 * time.Second, 0},
		{"date against the clock", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, 2 * time.Second},
		{"past date", http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, 0, 0},
	} {
		got := RetryAfter(&http.Response{Header: c.h})
		if got < c.want-c.delta || got > c.want+c.delta {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if RetryAfter(nil) != 0 {
		t.Error("nil answer")
	}
}

func TestPassing(t *testing.T) {
	for _, s := range []int{429, 500, 502, 503, 504, 509, 520, 522, 524, 529} {
		if !Passing(s) {
			t.Errorf("%d is passing", s)
		}
	}
	for _, s := range []int{200, 400, 401, 403, 404, 409, 413, 425, 501, 505, 507} {
		if Passing(s) {
			t.Errorf("%d is not passing", s)
		}
	}
}

func TestGateHoldsOtherCallsBack(t *testing.T) {
	var g Gate
	rec := &recorder{}
	limited := &Pacer{Gate: &g, Sleep: rec.sleep}
	calls := 0
	if err := limited.Call(context.Background(), failing(1, Retry{Again: true, After: 2 * time.Second}, &calls)); err != nil {
		t.Fatal(err)
	}
	if got := rec.asked(); len(got) != 1 || got[0] != 2*time.Second {
		t.Fatalf("the limited call waited %v, want its Retry-After once", got)
	}
	// Another call to the same provider, meanwhile, waits for the gate
	// before it goes out (the recorder's sleeps take no time).
	other := &recorder{}
	p := &Pacer{Gate: &g, Sleep: other.sleep}
	if err := p.Call(context.Background(), func(int) (Retry, error) { return Retry{}, nil }); err != nil {
		t.Fatal(err)
	}
	if got := other.asked(); len(got) != 1 || got[0] <= time.Second || got[0] > 2*time.Second {
		t.Fatalf("another call waited %v, want what is left of the 2 s", got)
	}
}
