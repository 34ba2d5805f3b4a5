package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
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
// count.
type Throttle struct {
	Max    int
	Window time.Duration
	Block  time.Duration
	// Proxies decides whose X-Forwarded-For names the client; nil believes
	// no one's, and the connection's peer is the client.
	Proxies *Proxies
	now     func() time.Time

	mu       sync.Mutex
	accounts *expirable.LRU[string, *failures] // address + "\x00" + user name
	addrs    *expirable.LRU[string, *failures] // address
}

type failures struct {
	count        int
	windowStart  time.Time
	blockedUntil time.Time
}

// NewThrottle makes a throttle; max <= 0 disables it.
func NewThrottle(max int, window, block time.Duration) *Throttle {
	return &Throttle{Max: max, Window: window, Block: block, now: time.Now,
		accounts: expirable.NewLRU[string, *failures](65536, nil, window+block),
		addrs:    expirable.NewLRU[string, *failures](65536, nil, window+block)}
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
func (t *Throttle) blocked(addr, user string, hasUser bool) (wait time.Duration, wholeAddr, blocked bool) {
	if t == nil || t.Max <= 0 {
		return 0, false, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if f, ok := t.addrs.Get(addr); ok {
		if wait := f.blockedUntil.Sub(now); wait > 0 {
			return wait, true, true
		}
	}
	if !hasUser {
		return 0, false, false
	}
	if f, ok := t.accounts.Get(accountKey(addr, user)); ok {
		if wait := f.blockedUntil.Sub(now); wait > 0 {
			return wait, false, true
		}
	}
	return 0, false, false
}

// failed records a wrong login for user from addr.
func (t *Throttle) failed(addr, user string) {
	if t == nil || t.Max <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.count(t.accounts, accountKey(addr, user), t.Max, now)
	t.count(t.addrs, addr, AddrFactor*t.Max, now)
}

// count adds one failure to key's window and starts a block when it goes
// over limit.
func (t *Throttle) count(lru *expirable.LRU[string, *failures], key string, limit int, now time.Time) {
	f, ok := lru.Get(key)
	switch {
	case !ok:
		f = &failures{windowStart: now}
	case now.Sub(f.windowStart) > t.Window:
		f.count, f.windowStart = 0, now // a running block stays
	}
	f.count++
	if f.count > limit {
		f.blockedUntil = now.Add(t.Block)
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
