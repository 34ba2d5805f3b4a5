package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	disktopfake "bridge/tests/fakes/disktop"
)

// TestProviderCallsCountHTTPRequests checks that bridge_provider_calls_total
// counts what the provider sees: every listing page, every retry, and the
// bridge's own downloads, not one per driver call.
func TestProviderCallsCountHTTPRequests(t *testing.T) {
	f := disktopfake.New()
	defer f.Close()
	fs := httptest.NewServer(f.Handler())
	defer fs.Close()
	f.SetBaseURL(fs.URL)
	_, refresh := f.IssueToken()
	for i := range 450 { // three pages of 200
		f.Put(fmt.Sprintf("big/f%03d.txt", i), []byte(strconv.Itoa(i)))
	}
	c, _ := testConfigWith(t, "", fmt.Sprintf(`[[mounts]]
path = "/dt"
driver = "disktop"
[mounts.options]
client_id = %q
client_secret = %q
api_base = %q
refresh_token = %q
`, f.ClientID, f.ClientSecret, fs.URL, refresh))
	handler, closeAll, err := buildHandler(context.Background(), c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	hs := httptest.NewServer(handler)
	defer hs.Close()
	do := func(method, p string, hdr ...string) string {
		req, _ := http.NewRequest(method, hs.URL+p, nil)
		req.SetBasicAuth("u", "pw")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			t.Fatalf("%s %s: %d", method, p, resp.StatusCode)
		}
		return string(b)
	}
	// The seeded refresh token rotates on the first call; a health check
	// makes it now, so that no token request is counted with the listing.
	do("GET", "/healthz")
	if f.Calls()["token"] != 1 {
		t.Fatalf("the health check made %d token requests, want 1", f.Calls()["token"])
	}
	f.Fail("list", http.StatusTooManyRequests, 1) // one page is refused once, then retried
	do("PROPFIND", "/dt/big/", "Depth", "1")
	if got := do("GET", "/dt/big/f123.txt"); got != "123" {
		t.Fatalf("GET: %q", got)
	}

	counted := map[string]int{} // op → requests, whatever their result
	sc := bufio.NewScanner(strings.NewReader(do("GET", "/metrics")))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, `bridge_provider_calls_total{mount="/dt"`) {
			continue
		}
		op := line[strings.Index(line, `op="`)+4:]
		op = op[:strings.IndexByte(op, '"')]
		n, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
		counted[op] += n
	}
	calls := f.Calls()
	if counted["list"] != calls["list"] || calls["list"] < 4 {
		t.Fatalf("metrics count %d list requests, the provider saw %d (want at least 3 pages and a retry)", counted["list"], calls["list"])
	}
	if counted["download"] != calls["dl"] || calls["dl"] == 0 {
		t.Fatalf("metrics count %d downloads, the provider served %d", counted["download"], calls["dl"])
	}
	if counted["link"] != calls["download"] {
		t.Fatalf("metrics count %d link requests, the provider saw %d", counted["link"], calls["download"])
	}
	total := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	if total(counted) != total(calls) {
		t.Fatalf("metrics count %d requests in all (%v), the provider saw %d (%v)", total(counted), counted, total(calls), calls)
	}
}
