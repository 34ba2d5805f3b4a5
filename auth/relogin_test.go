package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errRefused = errors.New("refused")

// Many callers whose credential was refused cause one login, and a refusal
// is answered from memory until its backoff has passed.
func TestReloginOnceForAllCallers(t *testing.T) {
	var logins atomic.Int32
	release := make(chan struct{})
	now := time.Unix(1_800_000_000, 0)
	refuse := false
	r := &Relogin[string]{
		Login: func(ctx context.Context) (string, error) {
			n := logins.Add(1)
			<-release
			if refuse {
				return "", errRefused
			}
			return "cookie-" + string(rune('0'+n)), nil
		},
		Key:     func(s string) string { return s },
		Refused: func(err error) bool { return errors.Is(err, errRefused) },
		Backoff: time.Minute,
		Now:     func() time.Time { return now },
	}
	r.Set("cookie-0")
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = r.Renew(t.Context(), "cookie-0")
		}()
	}
	for logins.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for _, c := range got {
		if c != "cookie-1" {
			t.Fatalf("callers got %q, want the one new cookie", got)
		}
	}
	// A caller still holding the old cookie gets the new one, no login.
	if c, err := r.Renew(t.Context(), "cookie-0"); c != "cookie-1" || err != nil || logins.Load() != 1 {
		t.Fatalf("stale renew: %q %v after %d logins", c, err, logins.Load())
	}

	refuse = true
	for range 3 {
		if _, err := r.Renew(t.Context(), "cookie-1"); !errors.Is(err, errRefused) {
			t.Fatalf("refused login: %v", err)
		}
	}
	if n := logins.Load(); n != 2 {
		t.Fatalf("%d logins, want the refusal remembered after the second", n)
	}
	now = now.Add(2 * time.Minute)
	r.Renew(t.Context(), "cookie-1")
	if n := logins.Load(); n != 3 {
		t.Fatalf("%d logins after the backoff, want 3", n)
	}
}

// A caller that gives up does not stop the login the others wait for.
func TestReloginOutlivesItsCaller(t *testing.T) {
	release := make(chan struct{})
	r := &Relogin[string]{
		Login: func(ctx context.Context) (string, error) {
			<-release
			return "fresh", ctx.Err()
		},
		Key: func(s string) string { return s },
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { _, err := r.Current(ctx); done <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller: %v", err)
	}
	close(release)
	if c, err := r.Current(t.Context()); c != "fresh" || err != nil {
		t.Fatalf("after the login: %q %v", c, err)
	}
}
