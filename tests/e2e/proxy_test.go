package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrustedProxyThrottle runs a bridge of its own behind a "proxy"
// (127.0.0.1 is trusted, so the test's own requests carry the client in
// X-Forwarded-For) with a low failure limit: an attacker's wrong passwords
// for admin block admin from the attacker's address only. The reader
// behind the same proxy, even from the attacker's address, and admin from
// another client still log in; the log shows the forwarded addresses.
func TestTrustedProxyThrottle(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	b, err := startBridge(dir, []Mount{{Path: "/local", Driver: "local",
		Setup: func() (map[string]any, error) { return map[string]any{"root": root}, nil }}},
		map[string]any{"login_max_failures": 2, "login_block": "5m", "trusted_proxies": []string{"127.0.0.1/32"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("proxy bridge's shutdown: %v", err)
		}
	})
	watch(t, b)
	const attacker, neighbour = "198.51.100.66", "198.51.100.7"
	propfind := func(user, pass, client string) *http.Response {
		// What a TLS proxy appends in front of what the client claims.
		resp, _ := b.request(t, user, pass, "PROPFIND", "/local/", nil, "Depth", "0",
			"X-Forwarded-For", "203.0.113.1, "+client)
		return resp
	}
	var statuses []int
	for range 4 {
		statuses = append(statuses, propfind(adminUser, "guess", attacker).StatusCode)
	}
	if statuses[0] != 401 || statuses[1] != 401 || statuses[2] != 401 || statuses[3] != http.StatusTooManyRequests {
		t.Fatalf("four wrong passwords for admin: %v, want 401 three times, then 429", statuses)
	}
	if resp := propfind(adminUser, adminPass, attacker); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("admin's right password from the attacker's address: %d (Retry-After %q), want 429 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := propfind(readerUser, readerPass, attacker); resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("the reader from the attacker's address: %d, want 207", resp.StatusCode)
	}
	if resp := propfind(adminUser, adminPass, neighbour); resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("admin from another client behind the proxy: %d, want 207", resp.StatusCode)
	}
	if resp, _ := b.admin(t, "PROPFIND", "/local/", nil, "Depth", "0"); resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("admin from the proxy's own address: %d, want 207", resp.StatusCode)
	}

	type line struct {
		Msg    string `json:"message"`
		Status int    `json:"status"`
		User   string `json:"user"`
		Remote string `json:"remote"`
		Peer   string `json:"peer"`
	}
	// find waits for a request log line (stderr reaches the buffer a
	// moment after the answer).
	find := func(match func(l line) bool) (line, bool) {
		for range 50 {
			for _, s := range strings.Split(b.logs.String(), "\n") {
				var l line
				if json.Unmarshal([]byte(s), &l) == nil && l.Msg == "request" && match(l) {
					return l, true
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return line{}, false
	}
	if l, ok := find(func(l line) bool { return l.Status == http.StatusTooManyRequests }); !ok {
		t.Error("no request log line for the 429")
	} else if l.Remote != attacker || !strings.HasPrefix(l.Peer, "127.0.0.1:") {
		t.Errorf("the 429's log line: remote %q, peer %q; want remote %s and the proxy as peer", l.Remote, l.Peer, attacker)
	}
	if _, ok := find(func(l line) bool {
		return l.User == readerUser && l.Status == http.StatusMultiStatus && l.Remote == attacker && strings.HasPrefix(l.Peer, "127.0.0.1:")
	}); !ok {
		t.Errorf("no log line with remote %s for the reader's PROPFIND:\n%s", attacker, b.logTail(20))
	}
	if _, ok := find(func(l line) bool {
		return l.User == adminUser && l.Remote == neighbour && l.Status == http.StatusMultiStatus
	}); !ok {
		t.Errorf("no log line with remote %s for admin's PROPFIND from there:\n%s", neighbour, b.logTail(20))
	}

	// A client that is not a trusted proxy (127.0.0.2 on Linux's loopback)
	// cannot choose its address through the header.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}).DialContext}}
	req, _ := http.NewRequest("PROPFIND", b.url+"/local/", nil)
	req.Header.Set("Depth", "0")
	req.Header.Set("X-Forwarded-For", neighbour)
	req.SetBasicAuth(readerUser, "guess")
	resp, err := client.Do(req)
	if err != nil {
		t.Logf("no second loopback address to test an untrusted peer from: %v", err)
		return
	}
	resp.Body.Close()
	if l, ok := find(func(l line) bool { return l.User == readerUser && l.Status == http.StatusUnauthorized }); !ok {
		t.Error("no log line for the untrusted client's request")
	} else if !strings.HasPrefix(l.Remote, "127.0.0.2:") || l.Peer != "" {
		t.Errorf("an untrusted client's X-Forwarded-For was believed: remote %q, peer %q", l.Remote, l.Peer)
	}
}
