package auth

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Throttle slows down password guessing: a client address with more than
// Max wrong logins within Window is answered 429 for Block, without its
// credentials being checked. Requests without credentials (the usual first
// request of a WebDAV client, to get the challenge) do not count.
type Throttle struct {
	Max    int
	Window time.Duration
	Block  time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients *expirable.LRU[string, *failures]
}

type failures struct {
	count        int
	windowStart  time.Time
	blockedUntil time.Time
}

// NewThrottle makes a throttle; max <= 0 disables it.
func NewThrottle(max int, window, block time.Duration) *Throttle {
	return &Throttle{Max: max, Window: window, Block: block, now: time.Now,
		clients: expirable.NewLRU[string, *failures](65536, nil, window+block)}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// blocked returns how long the client must still wait, if at all.
func (t *Throttle) blocked(r *http.Request) (time.Duration, bool) {
	if t == nil || t.Max <= 0 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.clients.Get(clientAddr(r))
	if !ok {
		return 0, false
	}
	if wait := f.blockedUntil.Sub(t.now()); wait > 0 {
		return wait, true
	}
	return 0, false
}

// failed records a wrong login.
func (t *Throttle) failed(r *http.Request) {
	if t == nil || t.Max <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	addr := clientAddr(r)
	f, ok := t.clients.Get(addr)
	if !ok || now.Sub(f.windowStart) > t.Window {
		f = &failures{windowStart: now}
	}
	f.count++
	if f.count > t.Max {
		f.blockedUntil = now.Add(t.Block)
		f.count, f.windowStart = 0, now
	}
	t.clients.Add(addr, f)
}

// writeTooMany answers a throttled client.
func writeTooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	http.Error(w, "429 Too Many Requests: too many failed logins from this address", http.StatusTooManyRequests)
}
