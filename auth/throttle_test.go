package auth

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestProxiesClient(t *testing.T) {
	p := NewProxies([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("fd00::/8"),
	})
	for _, tc := range []struct {
		name   string
		peer   string
		xff    []string // header lines; nil: no header
		want   string
		fwd    bool
		byNone string // what a bridge trusting no proxy sees; "" means want
	}{
		{name: "no proxy, no header", peer: "203.0.113.9:4000", want: "203.0.113.9"},
		{name: "untrusted peer spoofs", peer: "203.0.113.9:4000", xff: []string{"198.51.100.1"}, want: "203.0.113.9"},
		{name: "trusted peer without header", peer: "10.1.2.3:4000", want: "10.1.2.3"},
		{name: "trusted peer", peer: "10.1.2.3:4000", xff: []string{"198.51.100.1"}, want: "198.51.100.1", fwd: true},
		{name: "single trusted address", peer: "192.0.2.7:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1", fwd: true},
		{name: "next to the trusted address", peer: "192.0.2.8:1", xff: []string{"198.51.100.1"}, want: "192.0.2.8"},
		{name: "client's own header is not believed", peer: "10.1.2.3:4000", xff: []string{"1.1.1.1, 198.51.100.1"}, want: "198.51.100.1", fwd: true},
		{name: "chain of trusted proxies", peer: "10.1.2.3:4000", xff: []string{"6.6.6.6, 198.51.100.1, 10.9.9.9, 10.8.8.8"}, want: "198.51.100.1", fwd: true},
		{name: "spoofed trusted address left of the client", peer: "10.1.2.3:4000", xff: []string{"10.0.0.1, 198.51.100.1"}, want: "198.51.100.1", fwd: true},
		{name: "all trusted: left-most", peer: "10.1.2.3:4000", xff: []string{"10.7.7.7, 10.8.8.8"}, want: "10.7.7.7", fwd: true},
		{name: "several header lines are one list", peer: "10.1.2.3:4000", xff: []string{"6.6.6.6", "198.51.100.1, 10.8.8.8"}, want: "198.51.100.1", fwd: true},
		{name: "entry with port", peer: "10.1.2.3:4000", xff: []string{"198.51.100.1:5555"}, want: "198.51.100.1", fwd: true},
		{name: "garbage left of the client is never read", peer: "10.1.2.3:4000", xff: []string{"not-an-ip, 198.51.100.1"}, want: "198.51.100.1", fwd: true},
		{name: "malformed", peer: "10.1.2.3:4000", xff: []string{"unknown"}, want: "10.1.2.3"},
		{name: "malformed behind a trusted hop", peer: "10.1.2.3:4000", xff: []string{"198.51.100.1, 999.1.1.1, 10.8.8.8"}, want: "10.1.2.3"},
		{name: "empty header", peer: "10.1.2.3:4000", xff: []string{" , "}, want: "10.1.2.3"},
		{name: "IPv6 client behind IPv6 proxy", peer: "[fd00::1]:443", xff: []string{"2001:DB8::0:1"}, want: "2001:db8::1", fwd: true},
		{name: "IPv6 client in brackets with port", peer: "[fd00::1]:443", xff: []string{"[2001:db8::1]:80"}, want: "2001:db8::1", fwd: true},
		{name: "IPv6 client in brackets", peer: "[fd00::1]:443", xff: []string{"[2001:db8::1]"}, want: "2001:db8::1", fwd: true},
		{name: "IPv6 chain", peer: "[fd00::1]:443", xff: []string{"2001:db8::666, 2001:db8::1, fd12::3"}, want: "2001:db8::1", fwd: true},
		{name: "IPv6 untrusted peer spoofs", peer: "[2001:db8::9]:443", xff: []string{"2001:db8::1"}, want: "2001:db8::9"},
		{name: "IPv4-mapped peer is its IPv4 address", peer: "[::ffff:10.1.2.3]:4000", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1", fwd: true, byNone: "10.1.2.3"},
		{name: "zone is malformed", peer: "[fd00::1]:443", xff: []string{"fe80::1%eth0"}, want: "fd00::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := p.Client(r); got.IP != tc.want || got.Forwarded != tc.fwd {
				t.Fatalf("got %+v, want %s (forwarded %v)", got, tc.want, tc.fwd)
			}
			want := tc.byNone
			if want == "" {
				want = netip.MustParseAddrPort(tc.peer).Addr().String()
			}
			for _, none := range []*Proxies{nil, NewProxies(nil)} {
				if got := none.Client(r); got.IP != want || got.Forwarded {
					t.Fatalf("no trusted proxies: got %+v, want %s from the connection", got, want)
				}
			}
		})
	}
}

// throttled is a middleware with alice and bob, a throttle of max wrong
// logins, 10.0.0.0/8 as trusted proxies and a clock the test moves.
func throttled(t *testing.T, max int) (try func(peer, xff, user, pass string) *httptest.ResponseRecorder, now *time.Time) {
	t.Helper()
	var accounts []Account
	for _, name := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte(name+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, Account{User: User{Name: name}, PasswordHash: string(h)})
	}
	b, err := NewBasic("test", accounts)
	if err != nil {
		t.Fatal(err)
	}
	th := NewThrottle(max, time.Minute, 5*time.Minute)
	th.Proxies = NewProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	clock := time.Unix(1000, 0)
	th.now = func() time.Time { return clock }
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), th, nil)
	return func(peer, xff, user, pass string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}, &clock
}

// One attacker guessing alice's password blocks alice from the attacker's
// address only: not bob behind the same address, not alice elsewhere; and
// alice's right password from there gets 429 until the block ends.
func TestThrottlePerAccountAndAddress(t *testing.T) {
	for _, via := range []struct {
		name                     string
		attacker, other, proxied string // peer, peer of another client, XFF of the attacker
		otherXFF                 string
	}{
		{name: "direct", attacker: "203.0.113.5:1000", other: "203.0.113.6:1000"},
		{name: "behind a trusted proxy", attacker: "10.0.0.1:1000", proxied: "198.51.100.66", other: "10.0.0.1:2000", otherXFF: "198.51.100.7"},
	} {
		t.Run(via.name, func(t *testing.T) {
			try, now := throttled(t, 3)
			for i := range 4 { // the 4th goes over the limit
				if w := try(via.attacker, via.proxied, "alice", "guess"); w.Code != 401 {
					t.Fatalf("wrong password %d: %d, want 401", i+1, w.Code)
				}
			}
			w := try(via.attacker, via.proxied, "alice", "alice-pw")
			if w.Code != 429 {
				t.Fatalf("alice's right password from the throttled address: %d, want 429", w.Code)
			}
			if ra, _ := strconv.Atoi(w.Header().Get("Retry-After")); ra < 299 || ra > 301 {
				t.Fatalf("Retry-After %q, want about 300", w.Header().Get("Retry-After"))
			}
			if w := try(via.attacker, via.proxied, "bob", "bob-pw"); w.Code != 200 {
				t.Fatalf("bob from the same address: %d, want 200", w.Code)
			}
			if w := try(via.attacker, via.proxied, "", ""); w.Code != 401 {
				t.Fatalf("a request without credentials from the same address: %d, want the 401 challenge", w.Code)
			}
			if w := try(via.other, via.otherXFF, "alice", "alice-pw"); w.Code != 200 {
				t.Fatalf("alice from another address: %d, want 200", w.Code)
			}
			*now = now.Add(5*time.Minute - time.Second)
			if w := try(via.attacker, via.proxied, "alice", "alice-pw"); w.Code != 429 {
				t.Fatalf("alice's right password just before the block ends: %d, want 429", w.Code)
			}
			*now = now.Add(2 * time.Second)
			if w := try(via.attacker, via.proxied, "alice", "alice-pw"); w.Code != 200 {
				t.Fatalf("alice after the block: %d, want 200", w.Code)
			}
		})
	}
}

// A client behind a trusted proxy is throttled by its forwarded address;
// a spoofed X-Forwarded-For from an untrusted peer changes nothing.
func TestThrottleUsesTrustedForwardedAddress(t *testing.T) {
	try, _ := throttled(t, 2)
	// An untrusted attacker rotating made-up forwarded addresses is still
	// one address.
	for i := range 3 {
		try("203.0.113.5:1000", "198.51.100."+strconv.Itoa(i), "alice", "guess")
	}
	if w := try("203.0.113.5:1000", "198.51.100.99", "alice", "alice-pw"); w.Code != 429 {
		t.Fatalf("spoofing X-Forwarded-For escaped the throttle: %d, want 429", w.Code)
	}
	// Through the trusted proxy, each forwarded client counts on its own:
	// the proxy's address is not blocked for alice.
	for range 3 {
		try("10.0.0.1:1000", "198.51.100.66", "alice", "guess")
	}
	if w := try("10.0.0.1:1000", "198.51.100.66", "alice", "alice-pw"); w.Code != 429 {
		t.Fatalf("alice from the guessing client: %d, want 429", w.Code)
	}
	if w := try("10.0.0.1:1001", "198.51.100.7", "alice", "alice-pw"); w.Code != 200 {
		t.Fatalf("alice from another client behind the proxy: %d, want 200", w.Code)
	}
	if w := try("10.0.0.1:1001", "", "alice", "alice-pw"); w.Code != 200 {
		t.Fatalf("alice from the proxy itself: %d, want 200", w.Code)
	}
}

// One address may not try unlimited user names: past AddrFactor*Max wrong
// logins across names the whole address waits, other addresses do not.
func TestThrottleAddressCap(t *testing.T) {
	const max = 2
	try, now := throttled(t, max)
	// Each made-up name stays under its own limit.
	for i := range AddrFactor*max + 1 {
		w := try("203.0.113.5:1000", "", "user"+strconv.Itoa(i), "guess")
		if w.Code != 401 {
			t.Fatalf("wrong login %d: %d, want 401", i+1, w.Code)
		}
	}
	for _, user := range []string{"bob", "alice", ""} {
		w := try("203.0.113.5:1000", "", user, user+"-pw")
		if w.Code != 429 || w.Header().Get("Retry-After") == "" {
			t.Fatalf("%q from the capped address: %d, want 429 with Retry-After", user, w.Code)
		}
	}
	if w := try("203.0.113.6:1000", "", "bob", "bob-pw"); w.Code != 200 {
		t.Fatalf("another address: %d, want 200", w.Code)
	}
	*now = now.Add(5*time.Minute + time.Second)
	if w := try("203.0.113.5:1000", "", "bob", "bob-pw"); w.Code != 200 {
		t.Fatalf("after the block: %d, want 200", w.Code)
	}
}

// Failures further apart than the window do not add up, per account and
// per address.
func TestThrottleWindow(t *testing.T) {
	try, now := throttled(t, 2)
	for range 5 {
		for range 2 {
			try("203.0.113.5:1000", "", "alice", "guess")
		}
		*now = now.Add(time.Minute + time.Second)
	}
	if w := try("203.0.113.5:1000", "", "alice", "alice-pw"); w.Code != 200 {
		t.Fatalf("failures in separate windows: %d, want 200", w.Code)
	}
}
