package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"bridge/drivers"
)

// rotatingServer is a token endpoint whose refresh tokens die on use.
type rotatingServer struct {
	mu      sync.Mutex
	live    map[string]bool
	n       int
	calls   int
	ttl     int           // expires_in of the tokens it issues (0: 3600)
	status  int           // when set, answer this status with no error code
	script  []scripted    // answers of the next calls, before the above
	gate    chan struct{} // when set, each refresh waits for a value
	started chan struct{} // when set, told when a refresh arrives
}

// scripted is one made-up answer of the token endpoint.
type scripted struct {
	status     int
	retryAfter string // Retry-After header, when set
	body       string
	cut        bool // close the connection without an answer
	broken     bool // break the connection after the body written so far
}

func (s *rotatingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	started, gate := s.started, s.gate
	s.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	w.Header().Set("Content-Type", "application/json")
	if len(s.script) > 0 {
		a := s.script[0]
		s.script = s.script[1:]
		if a.cut {
			panic(http.ErrAbortHandler)
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
		if a.broken {
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
		return
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
		fmt.Fprint(w, `{"message":"busy"}`)
		return
	}
	rt := r.PostForm.Get("refresh_token")
	if r.PostForm.Get("grant_type") != "refresh_token" || !s.live[rt] {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
		return
	}
	delete(s.live, rt)
	s.n++
	next := fmt.Sprintf("rt-%d", s.n)
	s.live[next] = true
	ttl := s.ttl
	if ttl == 0 {
		ttl = 3600
	}
	json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("at-%d", s.n), "refresh_token": next,
		"token_type": "Bearer", "expires_in": ttl})
}

func (s *rotatingServer) set(fn func(*rotatingServer)) {
	s.mu.Lock()
	fn(s)
	s.mu.Unlock()
}

func (s *rotatingServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type storeEnv struct {
	srv    *rotatingServer
	hs     *httptest.Server
	file   string
	now    time.Time
	sleeps []time.Duration // the waits the stores asked for
	mu     sync.Mutex
}

func newStoreEnv(t *testing.T) *storeEnv {
	e := &storeEnv{srv: &rotatingServer{live: map[string]bool{"rt-0": true}}, now: time.Unix(1_800_000_000, 0)}
	e.hs = httptest.NewServer(e.srv)
	t.Cleanup(e.hs.Close)
	e.file = filepath.Join(t.TempDir(), "token.json")
	return e
}

func (e *storeEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *storeEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// sleep records a wait instead of waiting: the clock does not move
// (tokens last minutes, the waits a few seconds).
func (e *storeEnv) sleep(ctx context.Context, d time.Duration) error {
	e.mu.Lock()
	e.sleeps = append(e.sleeps, d)
	e.mu.Unlock()
	return ctx.Err()
}

func (e *storeEnv) waits() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

func (e *storeEnv) open(t *testing.T) *TokenStore {
	t.Helper()
	conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: e.hs.URL, AuthStyle: oauth2.AuthStyleInParams}}
	s, err := NewTokenStore(drivers.DirState(filepath.Dir(e.file)), filepath.Base(e.file), conf, e.hs.Client())
	if err != nil {
		t.Fatal(err)
	}
	s.SetClock(e.clock)
	s.SetSleep(e.sleep)
	return s
}

func savedRefresh(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var tok oauth2.Token
	json.Unmarshal(b, &tok)
	return tok.RefreshToken
}

func TestConcurrentCallersShareOneRefreshSavedBeforeUse(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open(t)
	s.Seed("rt-0")
	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := s.Token(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			// The caller holds the new access token: its refresh token
			// is on disk already.
			if r := savedRefresh(t, e.file); r != tok.RefreshToken {
				t.Errorf("on disk %q while using the pair of %q", r, tok.RefreshToken)
			}
			got[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	if n := e.srv.count(); n != 1 {
		t.Fatalf("%d refreshes for 10 callers, want 1", n)
	}
	for _, a := range got {
		if a != "at-1" {
			t.Fatalf("callers got %v", got)
		}
	}
	fi, err := os.Stat(e.file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(e.file), ".token.json-*")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestRefreshBeforeExpiryOnTheClock(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open(t)
	s.Seed("rt-0")
	ctx := context.Background()
	if _, err := s.Token(ctx); err != nil {
		t.Fatal(err)
	}
	e.advance(50 * time.Minute) // 10 minutes left: still good
	if tok, _ := s.Token(ctx); tok.AccessToken != "at-1" || e.srv.count() != 1 {
		t.Fatalf("refreshed too early: %v, %d calls", tok.AccessToken, e.srv.count())
	}
	e.advance(9 * time.Minute) // 1 minute left: inside the margin
	if tok, _ := s.Token(ctx); tok.AccessToken != "at-2" || e.srv.count() != 2 {
		t.Fatalf("not refreshed before expiry: %v, %d calls", tok.AccessToken, e.srv.count())
	}
}

func TestRotatedTokenSurvivesRestart(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open(t)
	s.Seed("rt-0")
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Rejected("at-1") // a 401: the next call refreshes with rt-1
	if tok, err := s.Token(context.Background()); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("%v %v", tok, err)
	}
	s2 := e.open(t) // a restart; the seed (dead now) is ignored
	s2.Seed("rt-0")
	e.advance(2 * time.Hour)
	if tok, err := s2.Token(context.Background()); err != nil || tok.AccessToken != "at-3" {
		t.Fatalf("after restart: %v %v", tok, err)
	}
}

func TestDeadRefreshTokenNeedsLoginOnceThenRecoversFromANewLogin(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open(t)
	s.Seed("rt-revoked")
	var reasons []string
	var mu sync.Mutex
	s.OnNeedsLogin(func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() })
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Token(context.Background()); !errors.Is(err, ErrNeedsLogin) {
				t.Errorf("got %v, want ErrNeedsLogin", err)
			}
		}()
	}
	wg.Wait()
	if _, err := s.Token(context.Background()); !errors.Is(err, ErrNeedsLogin) || !s.NeedsLogin() {
		t.Fatalf("%v", err)
	}
	if n := e.srv.count(); n != 1 {
		t.Fatalf("%d calls with a dead token, want 1", n)
	}
	if len(reasons) != 1 || strings.Contains(reasons[0], "rt-") {
		t.Fatalf("needs-login notices: %q", reasons)
	}
	// `bridge login` in another process writes a new pair.
	other := e.open(t)
	if err := other.Save(&oauth2.Token{AccessToken: "at-login", RefreshToken: "rt-0", ExpiresIn: 3600}); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.Token(context.Background()); err != nil || tok.AccessToken != "at-login" || s.NeedsLogin() {
		t.Fatalf("not recovered after a new login: %v %v", tok, err)
	}
}

func TestPassingFailureIsNotNeedsLogin(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open(t)
	s.Seed("rt-0")
	e.srv.set(func(s *rotatingServer) { s.status = http.StatusBadGateway })
	_, err := s.Token(context.Background())
	if err == nil || errors.Is(err, ErrNeedsLogin) || s.NeedsLogin() {
		t.Fatalf("a 502 gave %v", err)
	}
	if n := e.srv.count(); n != refreshAttempts {
		t.Fatalf("%d tries of a token endpoint answering 502, want %d", n, refreshAttempts)
	}
	e.srv.set(func(s *rotatingServer) { s.status = 0 })
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCancelledCallerDoesNotLoseTheRotatedToken(t *testing.T) {
	e := newStoreEnv(t)
	gate, started := make(chan struct{}), make(chan struct{}, 1)
	e.srv.set(func(s *rotatingServer) { s.gate, s.started = gate, started })
	s := e.open(t)
	s.Seed("rt-0")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := s.Token(ctx); errc <- err }()
	<-started // the refresh token is on its way: it is dead now
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v", err)
	}
	gate <- struct{}{} // the answer arrives after the caller left
	e.srv.set(func(s *rotatingServer) { s.gate, s.started = nil, nil })
	for s.HasToken() && savedRefreshOr(e.file) != "rt-1" {
		time.Sleep(time.Millisecond) // the detached refresh is saving it
	}
	tok, err := s.Token(context.Background())
	if err != nil || tok.AccessToken != "at-1" || e.srv.count() != 1 {
		t.Fatalf("%v %v, %d calls", tok, err, e.srv.count())
	}
}

func savedRefreshOr(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	var tok oauth2.Token
	json.Unmarshal(b, &tok)
	return tok.RefreshToken
}
