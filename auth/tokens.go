package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// ErrNeedsLogin means the provider refused the stored refresh token (used,
// revoked or expired) or there is none: `bridge login` must run again.
var ErrNeedsLogin = errors.New("provider login needed: run `bridge login`")

// refreshMargin is how long before expiry an access token is replaced.
const refreshMargin = 2 * time.Minute

// TokenStore holds one mount's OAuth2 tokens on disk and in memory.
//
// Providers such as Disk.Top rotate refresh tokens: the old one dies the
// moment it is used. So a refresh happens once for all concurrent callers
// (under a lock), and the new pair is on disk (temp file, fsync, rename,
// mode 0600) before the new access token is handed to anyone: a crash
// between the two would otherwise lose the account.
type TokenStore struct {
	file   string
	conf   *oauth2.Config
	client *http.Client
	now    func() time.Time

	mu         sync.Mutex
	tok        *oauth2.Token
	needsLogin bool
}

// NewTokenStore loads the token file if there is one.
func NewTokenStore(file string, conf *oauth2.Config, client *http.Client) (*TokenStore, error) {
	s := &TokenStore{file: file, conf: conf, client: client, now: time.Now}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("tokens: %w", err)
	default:
		var t oauth2.Token
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("tokens: %s is corrupt: %w", file, err)
		}
		s.tok = &t
	}
	return s, nil
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
		s.tok = &oauth2.Token{RefreshToken: refresh}
	}
}

// Save stores a fresh pair (after a login) and clears "needs login".
func (s *TokenStore) Save(t *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := WriteFileAtomic(s.file, t); err != nil {
		return err
	}
	s.tok, s.needsLogin = t, false
	return nil
}

// NeedsLogin reports the "needs login" state.
func (s *TokenStore) NeedsLogin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.needsLogin
}

// Token returns a valid access token, refreshing it first if it is about
// to expire.
func (s *TokenStore) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.needsLogin || s.tok == nil {
		return nil, ErrNeedsLogin
	}
	if s.tok.AccessToken != "" && (s.tok.Expiry.IsZero() || s.now().Add(refreshMargin).Before(s.tok.Expiry)) {
		return s.tok, nil
	}
	return s.refreshLocked(ctx)
}

// Rejected is called when the provider refused access token access (401):
// unless another caller already replaced it, the next Token refreshes.
func (s *TokenStore) Rejected(access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == access {
		s.tok.AccessToken = ""
	}
}

func (s *TokenStore) refreshLocked(ctx context.Context) (*oauth2.Token, error) {
	if s.tok.RefreshToken == "" {
		s.needsLogin = true
		return nil, ErrNeedsLogin
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	old := &oauth2.Token{RefreshToken: s.tok.RefreshToken, Expiry: s.now().Add(-time.Hour)}
	t, err := s.conf.TokenSource(ctx, old).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "invalid_client") {
			s.needsLogin = true
			return nil, fmt.Errorf("%w (provider said %s)", ErrNeedsLogin, re.ErrorCode)
		}
		return nil, fmt.Errorf("tokens: refresh: %w", err)
	}
	if t.RefreshToken == "" {
		t.RefreshToken = old.RefreshToken // providers that do not rotate
	}
	// On disk before anyone uses it: the old refresh token is dead now.
	if err := WriteFileAtomic(s.file, t); err != nil {
		s.tok = t // keep it in memory at least
		return nil, fmt.Errorf("tokens: the rotated token could not be saved: %w", err)
	}
	s.tok = t
	return t, nil
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
