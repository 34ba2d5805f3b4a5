package auth

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"bridge/drivers"
)

// fileWrites counts how often the token file was replaced across calls:
// every write is a new file renamed into place.
type fileWrites struct {
	file string
	last os.FileInfo
	n    int
}

func (w *fileWrites) check(t *testing.T) {
	t.Helper()
	fi, err := os.Stat(w.file)
	if err != nil {
		t.Fatal(err)
	}
	if w.last == nil || !os.SameFile(w.last, fi) {
		w.n++
	}
	w.last = fi
}

// A 120-second token (the rough Disk.Top service) is used for most of its
// life: over 10 minutes of calls every 5 s it is refreshed about every
// 108 s, not before every call, and the file is written once per refresh.
func TestShortLivedTokenIsRefreshedByItsLifetime(t *testing.T) {
	e := newStoreEnv(t)
	e.srv.set(func(s *rotatingServer) { s.ttl = 120 })
	s := e.open(t)
	s.Seed("rt-0")
	writes := &fileWrites{file: e.file}
	for i := 0; i < 120; i++ {
		tok, err := s.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if left := tok.Expiry.Sub(e.clock()); left < 10*time.Second {
			t.Fatalf("at %ds a token with %v left was handed out", i*5, left)
		}
		writes.check(t)
		e.advance(5 * time.Second)
	}
	n := e.srv.count()
	if n > 6 || n < 5 {
		t.Fatalf("%d refreshes in 10 minutes of 120 s tokens, want 5 or 6", n)
	}
	if writes.n != n {
		t.Fatalf("token file written %d times for %d refreshes", writes.n, n)
	}
}

func TestMarginIsATenthOfTheLifetimeAtMostTwoMinutes(t *testing.T) {
	for _, c := range []struct {
		ttl     int
		stillOK time.Duration // the token is still used at this age
		renewed time.Duration // and replaced at this one
	}{
		{120, 107 * time.Second, 109 * time.Second},
		{3600, 57*time.Minute + 59*time.Second, 58*time.Minute + time.Second}, // 6 min capped to 2
		{30, 26 * time.Second, 28 * time.Second},
	} {
		e := newStoreEnv(t)
		e.srv.set(func(s *rotatingServer) { s.ttl = c.ttl })
		s := e.open(t)
		s.Seed("rt-0")
		ctx := context.Background()
		if _, err := s.Token(ctx); err != nil {
			t.Fatal(err)
		}
		e.advance(c.stillOK)
		if tok, _ := s.Token(ctx); tok.AccessToken != "at-1" {
			t.Fatalf("ttl %d: replaced at %v already", c.ttl, c.stillOK)
		}
		e.advance(c.renewed - c.stillOK)
		if tok, _ := s.Token(ctx); tok.AccessToken != "at-2" {
			t.Fatalf("ttl %d: not replaced at %v", c.ttl, c.renewed)
		}
		// A restart reads the lifetime from the file: same margin.
		e.advance(c.stillOK)
		if tok, _ := e.open(t).Token(ctx); tok.AccessToken != "at-2" {
			t.Fatalf("ttl %d: replaced at %v after a restart", c.ttl, c.stillOK)
		}
	}
}

// A token file without expires_in (written by hand or an older version):
// two minutes, but never more than half the life it has left.
func TestUnknownLifetimeKeepsHalfOfWhatIsLeft(t *testing.T) {
	e := newStoreEnv(t)
	if err := WriteFileAtomic(e.file, &oauth2.Token{AccessToken: "at-file", RefreshToken: "rt-0",
		Expiry: e.clock().Add(60 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	s := e.open(t)
	ctx := context.Background()
	if tok, _ := s.Token(ctx); tok.AccessToken != "at-file" {
		t.Fatalf("a token with 60 s left was not used: %v", tok.AccessToken)
	}
	e.advance(29 * time.Second)
	if tok, _ := s.Token(ctx); tok.AccessToken != "at-file" {
		t.Fatal("replaced with 31 s left")
	}
	e.advance(2 * time.Second)
	if tok, _ := s.Token(ctx); tok.AccessToken != "at-1" {
		t.Fatal("not replaced with 29 s left")
	}
}

// The token endpoint is rate limited like every other endpoint: its 429
// is waited out (Retry-After honoured, not shortened) and the call goes
// through.
func TestTokenEndpoint429IsWaitedOut(t *testing.T) {
	e := newStoreEnv(t)
	busy := scripted{status: http.StatusTooManyRequests, retryAfter: "1", body: `{"error":"rate_limited"}`}
	e.srv.set(func(s *rotatingServer) { s.script = []scripted{busy, busy} })
	s := e.open(t)
	s.Seed("rt-0")
	tok, err := s.Token(context.Background())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("%v %v", tok, err)
	}
	if n := e.srv.count(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	waits := e.waits()
	if len(waits) != 2 {
		t.Fatalf("waits %v, want 2", waits)
	}
	for _, w := range waits {
		if w < time.Second {
			t.Fatalf("waits %v: shorter than Retry-After: 1", waits)
		}
	}
	if savedRefresh(t, e.file) != "rt-1" {
		t.Fatal("the rotated token is not on disk")
	}
}

func TestTokenEndpoint5xxAndLostConnectionsAreRetried(t *testing.T) {
	e := newStoreEnv(t)
	e.srv.set(func(s *rotatingServer) {
		s.script = []scripted{{status: http.StatusBadGateway, body: "<html>bad gateway</html>"},
			{cut: true}, {status: http.StatusServiceUnavailable, body: `{"message":"busy"}`},
			{status: http.StatusOK, body: `{"access_token":"at-lost","refr`, broken: true}}
	})
	s := e.open(t)
	s.Seed("rt-0")
	if tok, err := s.Token(context.Background()); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("%v %v", tok, err)
	}
	if n, w := e.srv.count(), e.waits(); n != 5 || len(w) != 4 {
		t.Fatalf("%d calls, waits %v", n, w)
	}
}

func TestRefusedRefreshIsNotRetried(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open(t)
	s.Seed("rt-revoked") // answered 400 invalid_grant
	if _, err := s.Token(context.Background()); !errors.Is(err, ErrNeedsLogin) {
		t.Fatalf("%v, want ErrNeedsLogin", err)
	}
	if n, w := e.srv.count(), e.waits(); n != 1 || len(w) != 0 {
		t.Fatalf("%d calls, waits %v: a refusal is final", n, w)
	}
	// After a passing failure too.
	e2 := newStoreEnv(t)
	e2.srv.set(func(s *rotatingServer) { s.script = []scripted{{status: http.StatusServiceUnavailable}} })
	s2 := e2.open(t)
	s2.Seed("rt-revoked")
	if _, err := s2.Token(context.Background()); !errors.Is(err, ErrNeedsLogin) || e2.srv.count() != 2 {
		t.Fatalf("%v after %d calls", err, e2.srv.count())
	}
}

// A Retry-After longer than a call can wait goes back to the callers (the
// bridge answers 503 with it) and is not a needs-login.
func TestLongRetryAfterFromTheTokenEndpointGoesBack(t *testing.T) {
	e := newStoreEnv(t)
	e.srv.set(func(s *rotatingServer) {
		s.script = []scripted{{status: http.StatusTooManyRequests, retryAfter: "120"}}
	})
	s := e.open(t)
	s.Seed("rt-0")
	_, err := s.Token(context.Background())
	if after, ok := drivers.RetryAfter(err); !ok || after != 2*time.Minute || errors.Is(err, ErrNeedsLogin) {
		t.Fatalf("%v (retry after %v)", err, after)
	}
	if n, w := e.srv.count(), e.waits(); n != 1 || len(w) != 0 {
		t.Fatalf("%d calls, waits %v", n, w)
	}
	// The next call tries again, and succeeds.
	if tok, err := s.Token(context.Background()); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("%v %v", tok, err)
	}
}

// Callers share one refresh even while it waits out a 429; a caller whose
// deadline comes first leaves, and the refresh goes on for the others.
func TestCallersShareOneRefreshThroughItsRetries(t *testing.T) {
	e := newStoreEnv(t)
	e.srv.set(func(s *rotatingServer) {
		s.script = []scripted{{status: http.StatusTooManyRequests, retryAfter: "1"}}
	})
	s := e.open(t)
	s.Seed("rt-0")
	waiting, release := make(chan struct{}), make(chan struct{})
	s.SetSleep(func(ctx context.Context, d time.Duration) error {
		close(waiting)
		<-release
		return ctx.Err()
	})
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	results := make(chan string, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := s.Token(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			results <- tok.AccessToken
		}()
	}
	<-waiting // the refresh is waiting out the 429
	if _, err := s.Token(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller with a deadline got %v", err)
	}
	close(release)
	wg.Wait()
	close(results)
	for a := range results {
		if a != "at-1" {
			t.Fatalf("a caller got %q", a)
		}
	}
	if n := e.srv.count(); n != 2 {
		t.Fatalf("%d calls, want 2 (one 429, one refresh for all)", n)
	}
}
