package auth

import (
	"context"
	"sync"
	"time"

	"bridge/drivers"
)

// Relogin keeps a credential that a login gives and a new login replaces
// (a session cookie, a token that logs the account's other clients out),
// shared by every caller of one provider account: when the provider
// refuses it, one login runs for all of them, detached from the caller
// that started it since the others wait for it, and a refused login is
// answered from memory for Backoff instead of being tried again by every
// request.
type Relogin[T any] struct {
	// Login logs in once, its own retries of passing failures included.
	Login func(ctx context.Context) (T, error)
	// Key names a credential, "" for none: Renew tells by it whether the
	// one a caller saw refused was replaced already.
	Key func(T) string
	// Refused reports a login refusal worth remembering (wrong
	// credentials), as opposed to a passing failure.
	Refused func(error) bool
	// Backoff is how long a refusal is answered from memory.
	Backoff time.Duration
	// Now is the clock for Backoff; nil means time.Now.
	Now func() time.Time

	// Saved and Lease make the login once for all bridge instances that
	// share the credential's drivers.State (nil: once per process).
	// Saved returns the credential as last saved by any instance (the
	// zero T when none); Lease is the state's lease on it. The holder of
	// the lease first looks for a credential saved since the stale one
	// and logs in only when there is none; the others wait for what it
	// saves.
	Saved func(ctx context.Context) (T, error)
	Lease func(ctx context.Context) (release func(), ok bool, err error)

	mu       sync.Mutex
	cur      T
	inflight *reloginCall[T]
	err      error // the last refusal, answered until retryAt
	retryAt  time.Time
}

// reloginCall is a login in progress.
type reloginCall[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// Set replaces the current credential (one loaded from disk, or given).
func (r *Relogin[T]) Set(v T) {
	r.mu.Lock()
	r.cur = v
	r.mu.Unlock()
}

// Current returns the credential, logging in when there is none.
func (r *Relogin[T]) Current(ctx context.Context) (T, error) {
	r.mu.Lock()
	v := r.cur
	r.mu.Unlock()
	if r.Key(v) != "" {
		return v, nil
	}
	return r.Renew(ctx, "")
}

// Peek returns the credential without logging in.
func (r *Relogin[T]) Peek() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// Renew replaces the credential whose key is stale (which the provider
// refused): a replacement another caller got already is used, a login
// under way is waited for, and otherwise one starts.
func (r *Relogin[T]) Renew(ctx context.Context, stale string) (T, error) {
	var zero T
	r.mu.Lock()
	if k := r.Key(r.cur); k != "" && k != stale {
		v := r.cur
		r.mu.Unlock()
		return v, nil
	}
	if r.err != nil && r.now().Before(r.retryAt) {
		err := r.err
		r.mu.Unlock()
		return zero, err
	}
	c := r.inflight
	if c == nil {
		c = &reloginCall[T]{done: make(chan struct{})}
		r.inflight = c
		go r.run(context.WithoutCancel(ctx), c, stale)
	}
	r.mu.Unlock()
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// run logs in for every caller of c.
func (r *Relogin[T]) run(ctx context.Context, c *reloginCall[T], stale string) {
	v, err := r.login(ctx, stale)
	r.mu.Lock()
	r.inflight = nil
	switch {
	case err == nil:
		r.cur, r.err = v, nil
	case r.Refused != nil && r.Refused(err):
		r.err, r.retryAt = err, r.now().Add(r.Backoff)
	}
	r.mu.Unlock()
	c.v, c.err = v, err
	close(c.done)
}

// login runs Login, or with a shared state takes the credential another
// instance saved since stale was refused.
func (r *Relogin[T]) login(ctx context.Context, stale string) (T, error) {
	var zero T
	if r.Lease == nil || r.Saved == nil {
		return r.Login(ctx)
	}
	var saved T // what another instance's login saved
	newer := func() bool {
		v, err := r.Saved(ctx)
		if k := r.Key(v); err == nil && k != "" && k != stale {
			saved = v
			return true
		}
		return false
	}
	release, err := leaseOrResult(ctx, r.Lease, newer, "login")
	if err != nil {
		return zero, err
	}
	if release == nil {
		return saved, nil
	}
	defer release()
	if newer() {
		return saved, nil
	}
	return r.Login(ctx)
}

func (r *Relogin[T]) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// reloginLease bounds how long other instances wait for a login whose
// instance died; the holder keeps the lease alive while it logs in.
const reloginLease = 15 * time.Second

// ShareThrough makes r's logins once for all instances sharing state (a
// no-op for a single process's state): the credential is the record name,
// read back with decode (the zero T for a record of another account).
func (r *Relogin[T]) ShareThrough(state drivers.State, name string, decode func([]byte) T) {
	if state == nil || !state.Shared() {
		return
	}
	r.Saved = func(ctx context.Context) (T, error) {
		var zero T
		b, err := state.Load(ctx, name)
		if err != nil || b == nil {
			return zero, err
		}
		return decode(b), nil
	}
	r.Lease = func(ctx context.Context) (func(), bool, error) {
		return state.Lease(ctx, name, reloginLease)
	}
}
