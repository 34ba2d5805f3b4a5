package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"bridge/cluster"
	"bridge/cluster/redistest"
	"bridge/drivers"
)

// instances opens n clients of one Redis under one prefix: n bridge
// instances sharing their state.
func redisInstances(t *testing.T, srv *redistest.Server, n int) []*cluster.Redis {
	t.Helper()
	prefix := redistest.Prefix(t)
	var rs []*cluster.Redis
	for range n {
		r, err := cluster.Open(redistest.Context(t), srv.URL, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rs = append(rs, r)
	}
	return rs
}

// sharedStores is one mount's token store on each of n instances, all
// starting from the seeded pair rt-0.
func sharedStores(t *testing.T, e *storeEnv, rs []*cluster.Redis) []*TokenStore {
	t.Helper()
	conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: e.hs.URL, AuthStyle: oauth2.AuthStyleInParams}}
	var stores []*TokenStore
	for i, r := range rs {
		s, err := NewTokenStore(r.MountState("/disktop"), "token.json", conf, e.hs.Client())
		if err != nil {
			t.Fatal(err)
		}
		s.SetClock(e.clock)
		if i == 0 { // `bridge login` through the first instance
			if err := s.Save(&oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", ExpiresIn: 60}); err != nil {
				t.Fatal(err)
			}
		}
		if !s.HasToken() { // the others read the saved pair at start
			t.Fatalf("instance %d has no token", i)
		}
		stores = append(stores, s)
	}
	return stores
}

// Three instances, 20 callers each, all after the access token's expiry:
// the rotating refresh token is traded exactly once, and every caller on
// every instance gets the new access token.
func TestSharedRefreshOncePerLifetimeAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	e := newStoreEnv(t)
	e.srv.set(func(s *rotatingServer) { s.ttl = 60 })
	rs := redisInstances(t, srv, 3)
	stores := sharedStores(t, e, rs)

	for round := 1; round <= 3; round++ {
		e.advance(61 * time.Second)
		var wg sync.WaitGroup
		got := make(chan string, 60)
		for _, s := range stores {
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, err := s.Token(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					got <- tok.AccessToken
				}()
			}
		}
		wg.Wait()
		close(got)
		want := fmt.Sprintf("at-%d", round)
		for a := range got {
			if a != want {
				t.Fatalf("round %d: a caller got %q, want %q", round, a, want)
			}
		}
		if n := e.srv.count(); n != round {
			t.Fatalf("round %d: %d refreshes across three instances, want %d (one per lifetime)", round, n, round)
		}
	}
}

// An instance whose access token was refused (401) after another
// instance refreshed adopts the saved pair instead of spending the dead
// refresh token (which would answer invalid_grant and lose the account).
func TestSharedRejectedAdoptsTheSavedPair(t *testing.T) {
	srv := redistest.Start(t)
	e := newStoreEnv(t)
	rs := redisInstances(t, srv, 2)
	stores := sharedStores(t, e, rs)
	a, b := stores[0], stores[1]

	a.Rejected("at-0")
	if tok, err := a.Token(context.Background()); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("instance A: %v %v", tok, err)
	}
	b.Rejected("at-0") // B still had at-0, which the provider now refuses
	tok, err := b.Token(context.Background())
	if err != nil || tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" {
		t.Fatalf("instance B: %v %v, want the pair A saved", tok, err)
	}
	if n := e.srv.count(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	if b.NeedsLogin() {
		t.Fatal("instance B thinks the account is lost")
	}
}

// A lease whose holder died (it never releases) expires by itself, and
// another instance then refreshes.
func TestSharedLeaseOfADeadHolderExpires(t *testing.T) {
	srv := redistest.Start(t)
	e := newStoreEnv(t)
	rs := redisInstances(t, srv, 2)
	stores := sharedStores(t, e, rs)
	// The dead instance's lease: what Lease writes, without its keepalive.
	key := rs[0].Key("mount", "/disktop") + ":lease:token.json"
	if err := rs[0].Client().Set(context.Background(), key, "dead-instance", 1500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	e.advance(2 * time.Hour)
	start := time.Now()
	tok, err := stores[1].Token(context.Background())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("%v %v", tok, err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("refreshed after %s although another instance held the lease", waited)
	}
	if n := e.srv.count(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}

// A lease is kept alive while its holder works, past its TTL, and only
// its holder's release removes it.
func TestLeaseKeptAliveAndReleasedByItsHolder(t *testing.T) {
	srv := redistest.Start(t)
	rs := redisInstances(t, srv, 2)
	ctx := context.Background()
	release, ok, err := rs[0].Lease(ctx, rs[0].Key("lease", "x"), 600*time.Millisecond)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, ok, _ := rs[1].Lease(ctx, rs[1].Key("lease", "x"), time.Second); ok {
		t.Fatal("a second instance got a lease that is still held")
	}
	release()
	r2, ok, err := rs[1].Lease(ctx, rs[1].Key("lease", "x"), time.Second)
	if err != nil || !ok {
		t.Fatal("lease not free after release", err)
	}
	release() // a second release of the first holder must not free the new lease
	if _, ok, _ := rs[0].Lease(ctx, rs[0].Key("lease", "x"), time.Second); ok {
		t.Fatal("the old holder's release freed the new holder's lease")
	}
	r2()
}

// With Redis gone, a refresh fails with ErrStateUnavailable (503), and
// the provider is not asked: a token traded without being saved would
// be lost.
func TestSharedRefreshWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	e := newStoreEnv(t)
	stores := sharedStores(t, e, redisInstances(t, srv, 1))
	srv.Stop()
	e.advance(2 * time.Hour)
	_, err := stores[0].Token(context.Background())
	if !errors.Is(err, drivers.ErrStateUnavailable) {
		t.Fatalf("err = %v, want ErrStateUnavailable", err)
	}
	if n := e.srv.count(); n != 0 {
		t.Fatalf("%d refreshes without a place to save them", n)
	}
}

// Three instances whose session was refused log in once between them
// (a DiscCloud /authorize logs out every other session).
func TestSharedReloginOnceAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	rs := redisInstances(t, srv, 3)
	var logins atomic.Int32
	var relogins []*Relogin[string]
	for _, r := range rs {
		state := r.MountState("/disccloud")
		rl := &Relogin[string]{Key: func(s string) string { return s }}
		rl.Login = func(ctx context.Context) (string, error) {
			n := logins.Add(1)
			time.Sleep(200 * time.Millisecond) // a slow provider: others arrive meanwhile
			tok := fmt.Sprintf("token-%d", n)
			return tok, state.Save(ctx, "session.json", []byte(tok))
		}
		rl.ShareThrough(state, "session.json", func(b []byte) string { return string(b) })
		rl.Set("token-0")
		relogins = append(relogins, rl)
	}
	var wg sync.WaitGroup
	for _, rl := range relogins {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := rl.Renew(context.Background(), "token-0")
				if err != nil || v != "token-1" {
					t.Errorf("got %q %v, want token-1", v, err)
				}
			}()
		}
	}
	wg.Wait()
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins across three instances, want 1", n)
	}
}

// A password login (Gokuai, when its refresh token died) runs once for
// three instances; the others take the pair it saved.
func TestSharedLoginOnceAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	e := newStoreEnv(t)
	conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: e.hs.URL}}
	var stores []*TokenStore
	for _, r := range redisInstances(t, srv, 3) {
		s, err := NewTokenStore(r.MountState("/gokuai"), "token.json", conf, e.hs.Client())
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	var logins atomic.Int32
	login := func(ctx context.Context) (*oauth2.Token, error) {
		n := logins.Add(1)
		time.Sleep(100 * time.Millisecond)
		return &oauth2.Token{AccessToken: fmt.Sprintf("at-login-%d", n), RefreshToken: "rt-login"}, nil
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.LoginOnce(context.Background(), login); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d password logins across three instances, want 1", n)
	}
	for i, s := range stores {
		tok, err := s.Token(context.Background())
		if err != nil || tok.AccessToken != "at-login-1" {
			t.Fatalf("instance %d: %v %v", i, tok, err)
		}
	}
}
