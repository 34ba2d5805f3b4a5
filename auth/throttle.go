package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"bridge/drivers"
)

// AddrFactor is how many times Max wrong logins one client address may make
// across all user names within Window before the whole address is blocked:
// per-account counting alone would let it try unlimited names.
const AddrFactor = 10

// maxKeyName bounds the part of a user name kept in a throttle key, so that
// made-up megabyte names cannot fill memory; real names are far shorter.
const maxKeyName = 256

// Throttle slows down password guessing. Wrong logins are counted per
// account and client address: more than Max for one user name from one
// address within Window block that name from that address for Block (429),
// without its credentials being checked, the right password included. Other
// accounts from the same address (users behind one proxy) and the same
// account from other addresses are not affected, so one attacker cannot
// lock everyone out. An address with more than AddrFactor*Max wrong logins
// across all names is blocked as a whole. Requests without credentials (the
// usual first request of a WebDAV client, to get the challenge) do not
// count. A right password resets no count: it would let a guesser who
// knows one password of a shared address wipe its own record.
type Throttle struct {
	Max    int
	Window time.Duration
	Block  time.Duration
	// Proxies decides whose X-Forwarded-For names the client; nil believes
	// no one's, and the connection's peer is the client.
	Proxies *Proxies
	// Counters keeps the counts and blocks: this process's memory with
	// NewThrottle, Redis (shared by all instances) with NewSharedThrottle.
	Counters Counters
	now      func() time.Time
}

// Counters keeps a Throttle's wrong-login counts and blocks, so that
// several bridge instances can share them. Errors mean the counts could
// not be read or written; the Throttle's caller then answers 503 rather
// than let the request through unthrottled.
type Counters interface {
	// Blocked returns how long the client must still wait, if at all, and
	// whether the whole address (not only the account) is blocked. hasUser
	// is false for a request without credentials: only an address block
	// applies. now is the throttle's clock; a shared store may use its
	// own, so that instances agree.
	Blocked(ctx context.Context, now time.Time, addr, user string, hasUser bool) (wait time.Duration, wholeAddr bool, err error)
	// Failed records a wrong login for user from addr under l.
	Failed(ctx context.Context, now time.Time, addr, user string, l Limits) error
}

// Limits are what Counters.Failed counts against, taken from the Throttle
// at each call since its fields may be set after it is made.
type Limits struct {
	// Account and Addr are the wrong logins allowed within Window for one
	// user name from one address and for one address; one more starts a
	// block of Block, and the count starts afresh.
	Account, Addr int
	Window, Block time.Duration
}

// NewThrottle makes a throttle that counts in this process's memory;
// max <= 0 disables it.
func NewThrottle(max int, window, block time.Duration) *Throttle {
	return &Throttle{Max: max, Window: window, Block: block, now: time.Now,
		Counters: &memCounters{
			accounts: expirable.NewLRU[string, *failures](65536, nil, window+block),
			addrs:    expirable.NewLRU[string, *failures](65536, nil, window+block)}}
}

// memCounters are one process's Counters: bounded LRUs whose entries
// expire once neither their window nor their block can matter.
type memCounters struct {
	mu       sync.Mutex
	accounts *expirable.LRU[string, *failures] // address + "\x00" + user name
	addrs    *expirable.LRU[string, *failures] // address
}

type failures struct {
	count        int
	windowStart  time.Time
	blockedUntil time.Time
}

func accountKey(addr, user string) string {
	if len(user) > maxKeyName {
		user = user[:maxKeyName]
	}
	return addr + "\x00" + user
}

// blocked returns how long the client must still wait, if at all, and
// whether the whole address (not only the account) is blocked. hasUser is
// false for a request without credentials: only an address block applies.
// An error (shared counters unreachable) wraps drivers.ErrStateUnavailable.
func (t *Throttle) blocked(ctx context.Context, addr, user string, hasUser bool) (wait time.Duration, wholeAddr, blocked bool, err error) {
	if t == nil || t.Max <= 0 {
		return 0, false, false, nil
	}
	wait, wholeAddr, err = t.Counters.Blocked(ctx, t.now(), addr, user, hasUser)
	if err != nil {
		return 0, false, false, fmt.Errorf("login throttle: %w", err)
	}
	return wait, wholeAddr, wait > 0, nil
}

// failed records a wrong login for user from addr.
func (t *Throttle) failed(ctx context.Context, addr, user string) error {
	if t == nil || t.Max <= 0 {
		return nil
	}
	l := Limits{Account: t.Max, Addr: AddrFactor * t.Max, Window: t.Window, Block: t.Block}
	if err := t.Counters.Failed(ctx, t.now(), addr, user, l); err != nil {
		return fmt.Errorf("login throttle: %w", err)
	}
	return nil
}

func (m *memCounters) Blocked(_ context.Context, now time.Time, addr, user string, hasUser bool) (time.Duration, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.addrs.Get(addr); ok {
		if wait := f.blockedUntil.Sub(now); wait > 0 {
			return wait, true, nil
		}
	}
	if !hasUser {
		return 0, false, nil
	}
	if f, ok := m.accounts.Get(accountKey(addr, user)); ok {
		if wait := f.blockedUntil.Sub(now); wait > 0 {
			return wait, false, nil
		}
	}
	return 0, false, nil
}

func (m *memCounters) Failed(_ context.Context, now time.Time, addr, user string, l Limits) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	count(m.accounts, accountKey(addr, user), l.Account, l, now)
	count(m.addrs, addr, l.Addr, l, now)
	return nil
}

// count adds one failure to key's window and starts a block when it goes
// over limit.
func count(lru *expirable.LRU[string, *failures], key string, limit int, l Limits, now time.Time) {
	f, ok := lru.Get(key)
	switch {
	case !ok:
		f = &failures{windowStart: now}
	case now.Sub(f.windowStart) > l.Window:
		f.count, f.windowStart = 0, now // a running block stays
	}
	f.count++
	if f.count > limit {
		f.blockedUntil = now.Add(l.Block)
		f.count, f.windowStart = 0, now
	}
	lru.Add(key, f)
}

// clientIP is the address throttling counts for r.
func (t *Throttle) clientIP(r *http.Request) string {
	if t == nil {
		return ""
	}
	return t.Proxies.Client(r).IP
}

// writeTooMany answers a throttled client.
func writeTooMany(w http.ResponseWriter, wait time.Duration, wholeAddr bool) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	msg := "429 Too Many Requests: too many failed logins for this user from this address"
	if wholeAddr {
		msg = "429 Too Many Requests: too many failed logins from this address"
	}
	http.Error(w, msg, http.StatusTooManyRequests)
}

// unavailableRetry is the Retry-After of a 503 for unreachable shared
// counters, the same as davfs gives for its own 503s without a hint.
const unavailableRetry = "30"

// writeUnavailable answers a request whose throttle counts could not be
// read or written: 503, neither let through unthrottled nor told 401,
// which would read as a wrong password.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", unavailableRetry)
	http.Error(w, "503 Service Unavailable: login throttle: "+drivers.ErrStateUnavailable.Error(), http.StatusServiceUnavailable)
}

// Proxies are the reverse proxies (TLS terminators) in front of the bridge
// whose X-Forwarded-For is believed. Behind one, every connection comes
// from the proxy, so without it throttling and logs would see one client.
type Proxies struct {
	nets []netip.Prefix
}

// NewProxies trusts the X-Forwarded-For of peers inside nets; none (or a
// nil *Proxies) believes no one's.
func NewProxies(nets []netip.Prefix) *Proxies {
	return &Proxies{nets: append([]netip.Prefix(nil), nets...)}
}

// Client is the address a request is taken to come from.
type Client struct {
	// IP is the client's address without a port.
	IP string
	// Forwarded is true when IP came from a trusted proxy's
	// X-Forwarded-For rather than from the connection.
	Forwarded bool
}

func (p *Proxies) trusts(a netip.Addr) bool {
	if p == nil {
		return false
	}
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Client finds r's client. Only when the connection's peer is a trusted
// proxy is X-Forwarded-For read, from the right (the entry the proxy
// appended) leftwards, skipping trusted proxies, as nginx's
// real_ip_recursive does: the first untrusted entry is the client (the
// left-most one if all are trusted). Entries left of it were written by the
// client and may be lies. An absent header or a malformed entry on the way
// leaves the peer as the client. Anyone else's header is ignored.
func (p *Proxies) Client(r *http.Request) Client {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return Client{IP: r.RemoteAddr}
		}
		return Client{IP: host}
	}
	peer := ap.Addr().Unmap()
	direct := Client{IP: peer.String()}
	if !p.trusts(peer) {
		return direct
	}
	// Several header lines form one list, in order (RFC 9110 section 5.3).
	entries := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	var client netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		e := strings.TrimSpace(entries[i])
		if e == "" {
			continue
		}
		a, ok := parseForwarded(e)
		if !ok {
			return direct
		}
		client = a
		if !p.trusts(a) {
			break
		}
	}
	if !client.IsValid() {
		return direct
	}
	return Client{IP: client.String(), Forwarded: true}
}

// parseForwarded reads one X-Forwarded-For entry: an address, optionally
// with a port ("192.0.2.1:443", "[2001:db8::1]:443") or in brackets.
func parseForwarded(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		switch {
		case err2 == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
