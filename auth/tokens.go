package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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

// TokenStore holds one mount's OAuth2 tokens on disk and in memory.
// Tokens it hands out are never modified afterwards.
//
// Providers such as Disk.Top rotate refresh tokens: the old one dies the
// moment it is used. So a refresh happens once for all concurrent callers,
// and the new pair is on disk (temp file, fsync, rename, mode 0600) before
// the new access token is handed to anyone: a crash between the two would
// otherwise lose the account.
//
// An access token is used until a tenth of its lifetime (at most
// maxRefreshMargin) before it expires, so short-lived tokens are not
// refreshed on every call. A refresh that meets a 429, a 5xx or a lost
// connection is retried with the drivers' shared pacer (drivers/pacer),
// honouring Retry-After.
//
// When the provider refuses the refresh token the store enters the "needs
// login" state; it leaves it when a `bridge login` (in this or another
// process) writes a new token file, so a running bridge recovers without a
// restart.
type TokenStore struct {
	file   string
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
	loaded     fileStamp    // the token file as last read or written
	inflight   *refreshCall // the refresh under way, shared by all callers
}

// fileStamp tells whether the token file changed since it was read.
type fileStamp struct {
	mod  time.Time
	size int64
}

type refreshCall struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// NewTokenStore loads the token file if there is one. client is used for
// the token endpoint.
func NewTokenStore(file string, conf *oauth2.Config, client *http.Client) (*TokenStore, error) {
	s := &TokenStore{file: file, conf: conf, client: client, now: time.Now, sleep: pacer.Sleep}
	t, stamp, err := readTokenFile(file)
	if err != nil {
		return nil, err
	}
	s.loaded = stamp
	s.setLocked(t, false)
	return s, nil
}

// readTokenFile reads a token file; a missing file is no token, no error.
func readTokenFile(file string) (*oauth2.Token, fileStamp, error) {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fileStamp{}, nil
	}
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("tokens: %w", err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("tokens: %w", err)
	}
	var t oauth2.Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fileStamp{}, fmt.Errorf("tokens: %s is corrupt: %w", file, err)
	}
	return &t, fileStamp{fi.ModTime(), fi.Size()}, nil
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
	if err := WriteFileAtomic(s.file, t); err != nil {
		return err
	}
	s.setLocked(t, true)
	s.needsLogin = false
	s.stampLocked()
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
		go s.refresh(context.WithoutCancel(ctx), c, s.tok.RefreshToken, s.sleep)
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

// refresh trades refresh for a new pair and records the outcome in c.
//
// A 429, a 5xx or a lost connection is tried again through the pacer,
// honouring Retry-After, within refreshTimeout (the callers each stop
// waiting at their own deadline; the refresh goes on for the others). A
// lost answer is retried too although the refresh token may have been
// spent: the account is lost anyway unless the provider still takes it.
// A refusal is not retried.
func (s *TokenStore) refresh(ctx context.Context, c *refreshCall, refresh string, sleep func(context.Context, time.Duration) error) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	var t *oauth2.Token
	var err error
	if refresh == "" {
		err = errors.New("no refresh token")
	} else {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
		p := &pacer.Pacer{Attempts: refreshAttempts, Sleep: sleep}
		err = p.Call(ctx, func(int) (pacer.Retry, error) {
			old := &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)}
			var terr error
			t, terr = s.conf.TokenSource(ctx, old).Token()
			return passing(terr, refresh), terr
		})
	}

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
	if err != nil {
		if reason, dead := refusal(err, refresh); dead {
			c.err = fmt.Errorf("%w (%s)", ErrNeedsLogin, reason)
			if !s.needsLogin && s.tok != nil && s.tok.RefreshToken == refresh {
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
	if t.RefreshToken == "" {
		t.RefreshToken = refresh // providers that do not rotate
	}
	s.setExpiry(t)
	// On disk before anyone uses it: the old refresh token is dead now.
	if err := WriteFileAtomic(s.file, t); err != nil {
		s.setLocked(t, true) // keep it in memory at least: the old one is dead
		c.err = fmt.Errorf("tokens: the rotated token could not be saved: %w", err)
		return
	}
	s.stampLocked()
	s.setLocked(t, true)
	c.tok = t
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

// stampLocked records the token file as just written.
func (s *TokenStore) stampLocked() {
	if fi, err := os.Stat(s.file); err == nil {
		s.loaded = fileStamp{fi.ModTime(), fi.Size()}
	}
}

// reloadLocked picks up a token file written by a `bridge login` in
// another process while this store has no usable token.
func (s *TokenStore) reloadLocked() {
	if !s.needsLogin && s.tok != nil {
		return
	}
	fi, err := os.Stat(s.file)
	if err != nil || (fileStamp{fi.ModTime(), fi.Size()}) == s.loaded {
		return
	}
	t, stamp, err := readTokenFile(s.file)
	if err != nil || t == nil {
		return
	}
	s.loaded = stamp
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
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, ".tokens-*")
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
