package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"bridge/drivers"
	"bridge/drivers/pacer"
)

// ErrNeedsLogin means the provider refused the stored refresh token (used,
// revoked or expired) or there is none: `bridge login` must run again.
var ErrNeedsLogin = errors.New("provider login needed: run `bridge login`")

const (
	// maxRefreshMargin is the most an access token is replaced before its
	// expiry. The margin is a tenth of the token's lifetime up to this: a
	// fixed 2 minutes would outlast a 120-second token, which would then be
	// refreshed (and its rotating refresh token spent and written to disk)
	// before every call.
	maxRefreshMargin = 2 * time.Minute
	// refreshTimeout bounds one refresh, retries included. The refresh runs
	// detached from the caller's context: once a rotating refresh token has
	// been sent, the answer must be read and saved even if the caller has
	// gone, or the account is lost.
	refreshTimeout = time.Minute
	// refreshAttempts is how often the token endpoint is tried for one
	// refresh when it answers 429, 5xx or loses the connection: every
	// caller waits on this one refresh, so it tries harder than a call.
	refreshAttempts = 5
)

// TokenStore holds one mount's OAuth2 tokens in its drivers.State (a file
// under state_dir, or the shared Redis) and in memory. Tokens it hands out
// are never modified afterwards.
//
// Providers such as Disk.Top rotate refresh tokens: the old one dies the
// moment it is used. So a refresh happens once for all concurrent callers,
// and the new pair is saved before the new access token is handed to
// anyone: a crash between the two would otherwise lose the account. When
// several bridge instances share the state, the refresh also happens once
// for all of them: the refresher holds the state's lease, and the others
// wait for and read its result; whoever gets the lease first checks
// whether a newer pair was saved meanwhile and uses it instead of
// spending a refresh token that is already dead.
//
// An access token is used until a tenth of its lifetime (at most
// maxRefreshMargin) before it expires, so short-lived tokens are not
// refreshed on every call. A refresh that meets a 429, a 5xx or a lost
// connection is retried with the drivers' shared pacer (drivers/pacer),
// honouring Retry-After.
//
// When the provider refuses the refresh token the store enters the "needs
// login" state; it leaves it when a `bridge login` (in this or another
// process) saves a new pair, so a running bridge recovers without a
// restart.
type TokenStore struct {
	state  drivers.State
	name   string
	conf   *oauth2.Config
	client *http.Client

	mu          sync.Mutex
	now         func() time.Time
	sleep       func(ctx context.Context, d time.Duration) error
	onNeedLogin func(reason string)
	tok         *oauth2.Token
	// margin is how long before tok's expiry it is replaced; unknown is
	// a token read from disk without its lifetime, whose margin is set on
	// the store's clock at its first use.
	margin     time.Duration
	unknown    bool
	needsLogin bool
	rejected   string       // the access token last refused (401): never adopted again
	inflight   *refreshCall // the refresh under way, shared by all callers
}

// leaseTTL bounds how long other instances wait for a refresher that
// died; the holder keeps its lease alive while it works.
const leaseTTL = 15 * time.Second

type refreshCall struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// NewTokenStore loads the record name of state if there is one. client
// is used for the token endpoint.
func NewTokenStore(state drivers.State, name string, conf *oauth2.Config, client *http.Client) (*TokenStore, error) {
	s := &TokenStore{state: state, name: name, conf: conf, client: client, now: time.Now, sleep: pacer.Sleep}
	t, err := s.load(context.Background())
	if err != nil {
		return nil, err
	}
	s.setLocked(t, false)
	return s, nil
}

// lease takes the state's lease on the pair (see leaseOrResult).
func (s *TokenStore) lease(ctx context.Context) (func(), bool, error) {
	return s.state.Lease(ctx, s.name, leaseTTL)
}

// load reads the saved pair; none is no token, no error.
func (s *TokenStore) load(ctx context.Context) (*oauth2.Token, error) {
	b, err := s.state.Load(ctx, s.name)
	if err != nil || b == nil {
		return nil, err
	}
	var t oauth2.Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("tokens: %s is corrupt: %w", s.name, err)
	}
	return &t, nil
}

// save writes t to the state.
func (s *TokenStore) save(ctx context.Context, t *oauth2.Token) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := s.state.Save(ctx, s.name, b); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return nil
}

// SetClock replaces the clock used for expiry decisions (tests).
func (s *TokenStore) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// SetSleep replaces how a refresh waits between tries of the token
// endpoint (tests record the waits instead of waiting).
func (s *TokenStore) SetSleep(sleep func(ctx context.Context, d time.Duration) error) {
	s.mu.Lock()
	s.sleep = sleep
	s.mu.Unlock()
}

// OnNeedsLogin sets fn to be called once each time the store enters the
// "needs login" state, with a reason that holds no secret (for one clear
// log line).
func (s *TokenStore) OnNeedsLogin(fn func(reason string)) {
	s.mu.Lock()
	s.onNeedLogin = fn
	s.mu.Unlock()
}

// HasToken reports whether a token pair is known.
func (s *TokenStore) HasToken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok != nil && s.tok.RefreshToken != ""
}

// Seed starts from a refresh token given in the configuration when the
// store has none of its own.
func (s *TokenStore) Seed(refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil && refresh != "" {
		s.setLocked(&oauth2.Token{RefreshToken: refresh}, false)
	}
}

// Save stores a fresh pair (after a login) and clears "needs login".
func (s *TokenStore) Save(t *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setExpiry(t)
	if err := s.save(context.Background(), t); err != nil {
		return err
	}
	s.setLocked(t, true)
	s.needsLogin = false
	return nil
}

// NeedsLogin reports the "needs login" state.
func (s *TokenStore) NeedsLogin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloadLocked()
	return s.needsLogin || s.tok == nil
}

// Token returns a valid access token, refreshing it first if it is about
// to expire. Concurrent callers share one refresh.
func (s *TokenStore) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	s.reloadLocked()
	if s.needsLogin || s.tok == nil {
		s.mu.Unlock()
		return nil, ErrNeedsLogin
	}
	if s.tok.AccessToken != "" && (s.tok.Expiry.IsZero() || s.now().Add(s.marginLocked()).Before(s.tok.Expiry)) {
		t := s.tok
		s.mu.Unlock()
		return t, nil
	}
	c := s.inflight
	if c == nil {
		c = &refreshCall{done: make(chan struct{})}
		s.inflight = c
		go s.refresh(context.WithoutCancel(ctx), c, s.tok, s.sleep)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Rejected is called when the provider refused access token access (401):
// unless another caller already replaced it, the next Token refreshes.
func (s *TokenStore) Rejected(access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if access != "" {
		s.rejected = access
	}
	if s.tok != nil && s.tok.AccessToken == access {
		t := *s.tok // callers may hold the old one: never changed in place
		t.AccessToken = ""
		s.tok = &t // same lifetime: the margin stays
	}
}

// setLocked makes t the current token and works out its refresh margin:
// a tenth of its lifetime, at most maxRefreshMargin. The lifetime is
// expires_in when the answer (or the file) gave it, else, for a token
// just obtained (fresh), its expiry minus now. A token read from disk
// with neither gets maxRefreshMargin but never more than half the life it
// had left when first used (marginLocked).
func (s *TokenStore) setLocked(t *oauth2.Token, fresh bool) {
	s.tok, s.margin, s.unknown = t, 0, false
	switch {
	case t == nil || t.Expiry.IsZero():
		// Used until refused (401): no margin to keep.
	case t.ExpiresIn > 0:
		s.margin = min(time.Duration(t.ExpiresIn)*time.Second/10, maxRefreshMargin)
	case fresh:
		s.margin = min(max(t.Expiry.Sub(s.now()), 0)/10, maxRefreshMargin)
	default:
		s.unknown = true
	}
}

// marginLocked is the current token's margin (see setLocked).
func (s *TokenStore) marginLocked() time.Duration {
	if s.unknown {
		s.margin = min(max(s.tok.Expiry.Sub(s.now()), 0)/2, maxRefreshMargin)
		s.unknown = false
	}
	return s.margin
}

// refresh gets a new pair for every caller of c: a pair another instance
// saved since old was read, or one traded for old's refresh token.
//
// A 429, a 5xx or a lost connection is tried again through the pacer,
// honouring Retry-After, within refreshTimeout (the callers each stop
// waiting at their own deadline; the refresh goes on for the others). A
// lost answer is retried too although the refresh token may have been
// spent: the account is lost anyway unless the provider still takes it.
// A refusal is not retried.
func (s *TokenStore) refresh(ctx context.Context, c *refreshCall, old *oauth2.Token, sleep func(context.Context, time.Duration) error) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	t, spent, err := s.renew(ctx, old, sleep)

	s.mu.Lock()
	var notify func(string)
	defer func() {
		s.inflight = nil
		s.mu.Unlock()
		if notify != nil {
			notify(c.err.Error()) // before the callers see the error
		}
		close(c.done)
	}()
	switch {
	case t != nil && err != nil:
		// Traded but not saved: keep it in memory at least, the old one
		// is dead.
		s.setLocked(t, true)
		c.err = fmt.Errorf("tokens: %w", err)
		return
	case errors.Is(err, drivers.ErrStateUnavailable):
		c.err = fmt.Errorf("tokens: %w", err)
		return
	case err != nil:
		if reason, dead := refusal(err, spent); dead {
			c.err = fmt.Errorf("%w (%s)", ErrNeedsLogin, reason)
			if !s.needsLogin && s.tok != nil && s.tok.RefreshToken == spent {
				s.needsLogin = true
				notify = s.onNeedLogin
			}
			return
		}
		c.err = fmt.Errorf("tokens: refresh: %s", reasonOf(err))
		if after, ok := drivers.RetryAfter(err); ok {
			c.err = drivers.WithRetryAfter(c.err, after) // the bridge answers 503 + Retry-After
		}
		return
	}
	s.setLocked(t, true)
	s.needsLogin = false
	c.tok = t
}

// renew returns a usable pair, holding the state's lease while it works
// so that one process at a time trades a refresh token. spent is the
// refresh token it traded (or would have), for judging a refusal.
func (s *TokenStore) renew(ctx context.Context, old *oauth2.Token, sleep func(context.Context, time.Duration) error) (t *oauth2.Token, spent string, err error) {
	spent = old.RefreshToken
	var saved *oauth2.Token // what another instance's refresh saved
	release, err := leaseOrResult(ctx, s.lease, func() bool {
		t, ok := s.newerSaved(ctx, old)
		if ok && s.usable(t) {
			saved = t
		}
		return saved != nil
	}, "refresh")
	if err != nil {
		return nil, spent, err
	}
	if release == nil {
		return saved, spent, nil
	}
	defer release()
	if t, ok := s.newerSaved(ctx, old); ok {
		if s.usable(t) {
			return t, spent, nil
		}
		spent = t.RefreshToken // ours is dead: the saved one is the live one
	}
	if spent == "" {
		return nil, spent, errors.New("no refresh token")
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	p := &pacer.Pacer{Attempts: refreshAttempts, Sleep: sleep}
	err = p.Call(ctx, func(int) (pacer.Retry, error) {
		tok := &oauth2.Token{RefreshToken: spent, Expiry: time.Unix(1, 0)}
		var terr error
		t, terr = s.conf.TokenSource(ctx, tok).Token()
		return passing(terr, spent), terr
	})
	if err != nil {
		return nil, spent, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = spent // providers that do not rotate
	}
	s.setExpiry(t)
	// Saved before anyone uses it: the old refresh token is dead now.
	if err := s.save(ctx, t); err != nil {
		return t, spent, fmt.Errorf("the rotated token could not be saved: %w", err)
	}
	return t, spent, nil
}

// newerSaved returns the saved pair when another process (an instance, a
// `bridge login`) replaced old since it was read.
func (s *TokenStore) newerSaved(ctx context.Context, old *oauth2.Token) (*oauth2.Token, bool) {
	t, err := s.load(ctx)
	if err != nil || t == nil || t.RefreshToken == "" {
		return nil, false
	}
	s.mu.Lock()
	rejected := s.rejected
	s.mu.Unlock()
	if t.RefreshToken != old.RefreshToken {
		return t, true
	}
	// A provider that does not rotate refresh tokens: a new access token.
	return t, t.AccessToken != "" && t.AccessToken != old.AccessToken && t.AccessToken != rejected
}

// usable reports whether t's access token may be used as it is.
func (s *TokenStore) usable(t *oauth2.Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.AccessToken == "" || t.AccessToken == s.rejected {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	margin := maxRefreshMargin
	if t.ExpiresIn > 0 {
		margin = min(time.Duration(t.ExpiresIn)*time.Second/10, maxRefreshMargin)
	}
	return s.now().Add(margin).Before(t.Expiry)
}

// passing tells the pacer whether a failed refresh may be tried again: a
// 429 or 5xx of the token endpoint (with its Retry-After), or a connection
// lost before or during the answer. A refusal, or any other answer, is
// final for this refresh.
func passing(err error, refresh string) pacer.Retry {
	if err == nil {
		return pacer.Retry{}
	}
	if _, dead := refusal(err, refresh); dead {
		return pacer.Retry{}
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && pacer.Passing(re.Response.StatusCode) {
			return pacer.Retry{Again: true, After: pacer.RetryAfter(re.Response)}
		}
		return pacer.Retry{}
	}
	var ue *url.Error
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "oauth2: cannot fetch token:") {
		// x/oauth2 reports an answer cut mid-body only by this text.
		return pacer.Retry{Again: true}
	}
	return pacer.Retry{}
}

// refusal reports whether the token endpoint refused the refresh token
// itself (so only a new login helps), as opposed to a passing failure
// (network, 429, 5xx) after which the same token is tried again.
func refusal(err error, refresh string) (string, bool) {
	if refresh == "" {
		return "no refresh token stored", true
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return "", false
	}
	switch re.ErrorCode {
	case "invalid_grant", "invalid_client", "unauthorized_client", "invalid_token", "expired_token", "access_denied":
		return "the provider said " + re.ErrorCode, true
	}
	// Servers that answer without an RFC 6749 error code: 400/401/403 is a
	// refusal; anything else may pass.
	if re.Response != nil {
		switch re.Response.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			return "the token endpoint answered " + re.Response.Status, true
		}
	}
	return "", false
}

// reasonOf describes a failed refresh without quoting the answer's body
// (which could echo a token).
func reasonOf(err error) string {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil:
		return "the token endpoint answered " + re.Response.Status + " " + re.ErrorCode
	case errors.As(err, &re):
		return "the token endpoint refused: " + re.ErrorCode
	}
	return err.Error()
}

// setExpiry computes t.Expiry on the store's clock when the answer gave
// expires_in.
func (s *TokenStore) setExpiry(t *oauth2.Token) {
	if t.ExpiresIn > 0 {
		t.Expiry = s.now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
}

// reloadLocked picks up a pair saved by a `bridge login` (in this or
// another process) while this store has no usable token.
func (s *TokenStore) reloadLocked() {
	if !s.needsLogin && s.tok != nil {
		return
	}
	t, err := s.load(context.Background())
	if err != nil || t == nil {
		return
	}
	if t.RefreshToken == "" || (s.tok != nil && t.RefreshToken == s.tok.RefreshToken) {
		return // the same dead token
	}
	s.setLocked(t, false)
	s.needsLogin = false
}

// WriteFileAtomic writes v as JSON to file with mode 0600: temp file in the
// same folder, fsync, rename, fsync of the folder.
func WriteFileAtomic(file string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := drivers.WriteFileAtomic(file, b); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return nil
}

// LoginOnce runs login (a password login, say) when the store needs one,
// once for all bridge instances that share its state: under the state's
// lease, a pair another instance saved meanwhile is taken instead. The
// new pair is saved before LoginOnce returns.
func (s *TokenStore) LoginOnce(ctx context.Context, login func(ctx context.Context) (*oauth2.Token, error)) error {
	release, err := leaseOrResult(ctx, s.lease, func() bool { return !s.NeedsLogin() }, "login")
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if release == nil {
		return nil // the other instance's login saved a pair
	}
	defer release()
	if !s.NeedsLogin() {
		return nil // another instance (or `bridge login`) saved a pair
	}
	t, err := login(ctx)
	if err != nil {
		return err
	}
	return s.Save(t)
}
