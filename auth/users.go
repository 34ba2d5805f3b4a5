// Package auth holds the two kinds of credentials the bridge deals with:
// WebDAV users who log in to the bridge (HTTP Basic against bcrypt hashes,
// this file) and provider tokens the bridge holds for its mounts.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/crypto/bcrypt"
)

// User is an authenticated WebDAV user.
type User struct {
	Name string
	// Mounts lists the mount paths the user may see; nil or "*" means all.
	Mounts   []string
	ReadOnly bool
}

// CanSee reports whether the user may see the mount at path ("/disktop").
func (u *User) CanSee(mountPath string) bool {
	if u.Mounts == nil {
		return true
	}
	for _, m := range u.Mounts {
		if m == "*" || m == mountPath {
			return true
		}
	}
	return false
}

type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user in ctx, or nil.
func UserFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// Account is a configured user with its bcrypt hash.
type Account struct {
	User
	PasswordHash string
}

// Basic checks HTTP Basic credentials against bcrypt hashes.
//
// bcrypt is slow on purpose (tens of milliseconds at cost 10), and WebDAV
// clients send credentials with every request, so a successful check is
// remembered for a while under an HMAC of the credentials with a key made
// at start: the plain password is never kept.
type Basic struct {
	Realm    string
	accounts map[string]*Account
	key      []byte
	verified *expirable.LRU[string, string] // HMAC(user:pass) -> user name
	// dummy is compared against for unknown users so that response time
	// does not tell which names exist.
	dummy []byte
}

// NewBasic builds the checker.
func NewBasic(realm string, accounts []Account) (*Basic, error) {
	b := &Basic{
		Realm:    realm,
		accounts: make(map[string]*Account, len(accounts)),
		key:      make([]byte, 32),
		verified: expirable.NewLRU[string, string](1024, nil, 5*time.Minute),
	}
	if _, err := rand.Read(b.key); err != nil {
		return nil, fmt.Errorf("auth: random key: %w", err)
	}
	for i := range accounts {
		a := accounts[i]
		if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
			return nil, fmt.Errorf("auth: user %q: password hash: %w", a.Name, err)
		}
		b.accounts[a.Name] = &a
	}
	dummy, err := bcrypt.GenerateFromPassword(b.key[:16], bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	b.dummy = dummy
	return b, nil
}

// ErrBadCredentials is returned for a wrong user name or password.
var ErrBadCredentials = errors.New("wrong user name or password")

// Check verifies a user name and password.
func (b *Basic) Check(name, password string) (*User, error) {
	mac := hmac.New(sha256.New, b.key)
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	sum := string(mac.Sum(nil))
	a, ok := b.accounts[name]
	if cached, hit := b.verified.Get(sum); hit && ok && subtle.ConstantTimeCompare([]byte(cached), []byte(name)) == 1 {
		return &a.User, nil
	}
	if !ok {
		bcrypt.CompareHashAndPassword(b.dummy, []byte(password))
		return nil, ErrBadCredentials
	}
	if err := bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(password)); err != nil {
		return nil, ErrBadCredentials
	}
	b.verified.Add(sum, name)
	return &a.User, nil
}

// Middleware authenticates every request; without valid credentials it
// answers 401 with a Basic challenge and never reaches next. A user name
// with too many wrong logins from the client's address, or an address with
// too many overall (throttle, may be nil), gets 429 before its password is
// looked at. When the throttle's shared counters cannot be reached, the
// request gets 503: neither let through unthrottled nor a 401. onResult,
// if set, learns each outcome (for request logs and metrics).
func (b *Basic) Middleware(next http.Handler, throttle *Throttle, onResult func(r *http.Request, user string, ok bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, password, ok := r.BasicAuth()
		addr := throttle.clientIP(r)
		wait, wholeAddr, blocked, terr := throttle.blocked(r.Context(), addr, name, ok)
		if terr != nil {
			writeUnavailable(w)
			return
		}
		if blocked {
			writeTooMany(w, wait, wholeAddr)
			return
		}
		var u *User
		var err error = ErrBadCredentials
		if ok {
			u, err = b.Check(name, password)
			if err != nil {
				terr = throttle.failed(r.Context(), addr, name)
			}
		}
		if onResult != nil {
			onResult(r, name, err == nil)
		}
		if terr != nil {
			writeUnavailable(w)
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q, charset="UTF-8"`, b.Realm))
			http.Error(w, "401 Unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}
