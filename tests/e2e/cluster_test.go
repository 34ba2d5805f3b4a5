package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bridge/cluster/redistest"
	cloudrevefake "bridge/tests/fakes/cloudreve"
	disccloudfake "bridge/tests/fakes/disccloud"
	disktopfake "bridge/tests/fakes/disktop"
	"bridge/tests/fakes/faults"
)

// The cluster of issue 19: a real redis-server, three bridge processes of
// the built binary sharing their state through it (server.shared_state),
// and Debian's haproxy in front of them, round robin with no stickiness,
// so that consecutive requests of one client land on different instances.
// The three mounts are fakes in the hostile profile (60-second tokens),
// each one fake shared by the three instances, as one provider account is.

// clusterLoginMax is the cluster's server.login_max_failures.
const clusterLoginMax = 3

// hostileTokenTTL is the access-token (Cloudreve: session) lifetime of the
// hostile profile; the bridge refreshes a token when a tenth of it is left.
var hostileTokenTTL = faults.Hostile().TokenTTL

type testCluster struct {
	started time.Time // just before the instances started: the run's length counts from here
	inst    []*clusterInstance
	lb      *balancer

	dt                     *disktopfake.Fake
	dtAuth, dcAuth, crAuth *authLog
	mounts                 []string // mount paths, one per fake
}

// TestClusterBehindHAProxy runs the cluster once and drives it through
// the balancer and through each instance directly: litmus; locks, new
// files, dead properties and kept times written through one instance and
// seen by the others at once; an rclone copy that survives an instance's
// SIGKILL; failed logins counted across instances; and, over the whole
// run, one token refresh (and one DiscCloud /authorize, one Cloudreve
// login per session lifetime) for all instances together.
func TestClusterBehindHAProxy(t *testing.T) {
	hap := haproxyBin(t)
	srv := redistest.Start(t)
	c := startTestCluster(t, hap, srv.URL, redistest.Prefix(t))

	t.Run("RoundRobin", c.roundRobin)
	t.Run("Litmus", c.litmus)
	t.Run("LockHonouredByEveryInstance", c.locks)
	t.Run("WritesListedEverywhereAtOnce", c.listings)
	t.Run("PropertiesAndKeptTimesShared", c.props)
	t.Run("ParallelWritesOfOnePath", c.parallelWrites)
	t.Run("RcloneWhileAnInstanceIsKilled", c.rcloneKill)
	t.Run("LoginThrottleCountsAcrossInstances", c.throttle)
	t.Run("EveryInstanceUsesTheRotatedToken", c.rotation)
	t.Run("OneTokenRefreshForAll", c.tokens)
	t.Run("NoServerErrors", c.noServerErrors)
}

// startTestCluster starts the fakes, the three instances (at once, as an
// orchestrator does: their first token rotation races) and haproxy.
func startTestCluster(t *testing.T, hap, redisURL, prefix string) *testCluster {
	dir := t.TempDir()
	// The logs outlive a failed run, for a look at more than their tails.
	logDir, err := os.MkdirTemp("", "bridge-cluster-logs-*")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{
		dtAuth: &authLog{method: "POST", path: "/oauth/token"},
		dcAuth: &authLog{method: "POST", path: "/api/v2/authorize"},
		crAuth: &authLog{method: "POST", path: "/api/v3/user/session"},
	}
	// Registered before the instances' stop, so it runs after it and
	// shows their shutdown too.
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(logDir)
			return
		}
		for _, in := range c.inst {
			t.Logf("%s log, last 40 lines:\n%s", in.name, in.logTail(40))
		}
		if c.lb != nil {
			t.Logf("haproxy log, last 40 lines:\n%s", fileTail(c.lb.logFile, 40))
		}
		t.Logf("the whole logs are kept in %s", logDir)
	})
	var servers []*httptest.Server
	t.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
	})

	dt := disktopfake.New()
	t.Cleanup(func() { dt.Close() })
	dt.Faults.SetConfig(faults.Hostile())
	dtSrv := httptest.NewServer(c.dtAuth.wrap(dt.Handler()))
	servers = append(servers, dtSrv)
	dt.SetBaseURL(dtSrv.URL)
	_, seed := dt.IssueToken()
	c.dt = dt

	dc := disccloudfake.New()
	t.Cleanup(func() { dc.Close() })
	dc.Faults.SetConfig(faults.Hostile())
	dcSrv := httptest.NewServer(c.dcAuth.wrap(dc.Handler()))
	servers = append(servers, dcSrv)
	dc.SetBaseURL(dcSrv.URL)

	cr := cloudrevefake.New()
	t.Cleanup(func() { cr.Close() })
	cr.Faults.SetConfig(faults.Hostile())
	crSrv := httptest.NewServer(c.crAuth.wrap(cr.Handler()))
	servers = append(servers, crSrv)
	cr.SetBaseURL(crSrv.URL)

	mounts := []map[string]any{
		{"path": "/disktop", "driver": "disktop", "options": map[string]any{
			"client_id": dt.ClientID, "client_secret": dt.ClientSecret, "api_base": dtSrv.URL, "refresh_token": seed}},
		{"path": "/disccloud", "driver": "disccloud", "options": map[string]any{
			"api_base": dc.APIBase(), "key1": dc.Key1, "key2": dc.Key2}},
		{"path": "/cloudreve", "driver": "cloudreve", "options": map[string]any{
			"base_url": crSrv.URL, "username": cr.User, "password": cr.Password}},
	}
	c.mounts = []string{"/disktop", "/disccloud", "/cloudreve"}
	users := []map[string]any{
		{"name": adminUser, "password_hash": hash(adminPass), "mounts": []string{"*"}},
		{"name": limitedUser, "password_hash": hash(limitedPass), "mounts": []string{"*"}},
	}
	server := map[string]any{
		"shared_state":  redisURL,
		"shared_prefix": prefix,
		"log_level":     "info",
		// Listings are trusted for ten minutes: only invalidation, never
		// expiry, can show one instance a file written through another.
		"cache_ttl":          "10m",
		"login_max_failures": clusterLoginMax,
		"login_block":        "5m",
		// haproxy connects from loopback; its X-Forwarded-For names the
		// client.
		"trusted_proxies":  []string{"127.0.0.1/32"},
		"shutdown_timeout": "10s",
	}
	for i := range 3 {
		name := fmt.Sprintf("bridge%d", i+1)
		idir := filepath.Join(dir, name)
		if err := os.MkdirAll(idir, 0o700); err != nil {
			t.Fatal(err)
		}
		in, err := newClusterInstance(idir, logDir, name, server, users, mounts)
		if err != nil {
			t.Fatal(err)
		}
		c.inst = append(c.inst, in)
	}
	t.Cleanup(func() {
		// An instance that needs SIGKILL or exits non-zero on SIGINT would
		// cut uploads short in production.
		for _, in := range c.inst {
			if err := in.stop(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	})

	c.started = time.Now()
	errs := make([]error, len(c.inst))
	var wg sync.WaitGroup
	for i, in := range c.inst {
		wg.Go(func() { errs[i] = in.start() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("cluster start: %v", err)
		}
	}
	lb, err := startBalancer(t, hap, dir, logDir, c.inst)
	if err != nil {
		t.Fatal(err)
	}
	c.lb = lb
	c.keepDiscCloudInUse(t)
	return c
}

// keepDiscCloudInUse lists /disccloud through the balancer every 10 s, as
// a client that has the share open does: the hostile fake kills a token
// unused for a lifetime (60 s), after which one more /authorize would be
// right, and some of the run's steps use other mounts only for longer.
// (haproxy checks /readyz, which asks no provider.)
func (c *testCluster) keepDiscCloudInUse(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			req, _ := http.NewRequest("PROPFIND", c.lb.url()+"/disccloud/", nil)
			req.SetBasicAuth(adminUser, adminPass)
			req.Header.Set("Depth", "1")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// roundRobin: consecutive requests of one client (one keep-alive
// connection) are spread evenly over the three instances, once haproxy's
// health checks (/readyz) find all three up.
func (c *testCluster) roundRobin(t *testing.T) {
	lb := c.lb.client()
	served := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			resp, body := lb.admin(t, "PROPFIND", "/", nil, "Depth", "0")
			if resp.StatusCode != http.StatusMultiStatus {
				t.Fatalf("PROPFIND / through haproxy: %d %s", resp.StatusCode, body)
			}
			seen[resp.Header.Get(servedBy)]++
		}
		return seen
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(served(3)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not send requests to all three instances within 30 s (a /readyz failing?)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := served(9)
	for _, in := range c.inst {
		if seen[in.name] != 3 {
			t.Fatalf("9 requests through haproxy went to %v, want 3 to each instance", seen)
		}
	}
}

// litmus: the suites pass through the balancer as on one bridge
// (litmusMinimum, the same figures TestLitmus wants), locks included,
// while litmus's requests alternate between the instances.
func (c *testCluster) litmus(t *testing.T) {
	bin := needTool(t, "litmus")
	for _, m := range c.mounts {
		t.Run(strings.TrimPrefix(m, "/"), func(t *testing.T) {
			t.Parallel()
			out, _ := runTool(t, []string{"TESTS=basic copymove props locks http"}, t.TempDir(),
				bin, "-k", c.lb.url()+m+"/", adminUser, adminPass)
			seen := map[string]bool{}
			for _, s := range litmusSummary.FindAllStringSubmatch(out, -1) {
				want, ok := litmusMinimum[s[1]]
				if !ok {
					continue
				}
				total, _ := strconv.Atoi(s[2])
				passed, _ := strconv.Atoi(s[3])
				seen[s[1]] = true
				t.Logf("litmus %s: %d/%d passed", s[1], passed, total)
				if total != want.total || passed < want.passed {
					t.Errorf("litmus %s through haproxy: %d of %d passed, want at least %d of %d (as on one bridge)",
						s[1], passed, total, want.passed, want.total)
				}
			}
			for suite := range litmusMinimum {
				if !seen[suite] {
					t.Errorf("litmus suite %s did not run", suite)
				}
			}
			if t.Failed() {
				t.Logf("litmus output:\n%s", out)
			}
		})
	}
}

// wantStatus fails t unless resp's status is one of codes.
func wantStatus(t *testing.T, what string, resp *http.Response, body []byte, codes ...int) {
	t.Helper()
	if !slices.Contains(codes, resp.StatusCode) {
		t.Fatalf("%s: %d, want %v: %.500s", what, resp.StatusCode, codes, body)
	}
}

// locks: a lock taken through instance 1 holds against writes through 2
// and 3 at once (PUT, DELETE, LOCK: 423), is listed by them, lets its
// owner's If header through on 2, and is released through 3. A folder's
// depth-infinity lock on 1 holds its children on 3.
func (c *testCluster) locks(t *testing.T) {
	i1, i2, i3 := c.inst[0].client(), c.inst[1].client(), c.inst[2].client()
	const p = "/disktop/cluster-lock.txt"
	resp, body := i1.admin(t, "PUT", p, []byte("before the lock"))
	wantStatus(t, "PUT via 1", resp, body, http.StatusCreated, http.StatusNoContent)
	resp, body = i1.admin(t, "LOCK", p, []byte(lockInfoXML), "Timeout", "Second-600")
	wantStatus(t, "LOCK via 1", resp, body, http.StatusOK)
	tok := resp.Header.Get("Lock-Token")
	if tok == "" {
		t.Fatal("LOCK via 1: no Lock-Token")
	}
	t.Cleanup(func() { c.inst[0].client().admin(t, "UNLOCK", p, nil, "Lock-Token", tok) })

	resp, body = i2.admin(t, "PUT", p, []byte("without the token"))
	wantStatus(t, "PUT via 2 without the token", resp, body, http.StatusLocked)
	resp, body = i3.admin(t, "DELETE", p, nil)
	wantStatus(t, "DELETE via 3 without the token", resp, body, http.StatusLocked)
	resp, body = i3.admin(t, "LOCK", p, []byte(lockInfoXML))
	wantStatus(t, "a second exclusive LOCK via 3", resp, body, http.StatusLocked)
	resp, body = i2.admin(t, "PROPFIND", p, []byte(`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`), "Depth", "0")
	wantStatus(t, "PROPFIND lockdiscovery via 2", resp, body, http.StatusMultiStatus)
	if !strings.Contains(string(body), strings.Trim(tok, "<>")) {
		t.Errorf("instance 2's lockdiscovery lacks the lock taken via 1: %s", body)
	}
	resp, body = i2.admin(t, "PUT", p, []byte("with the token"), "If", "("+tok+")")
	wantStatus(t, "PUT via 2 with the If header", resp, body, http.StatusOK, http.StatusCreated, http.StatusNoContent)
	if resp, got := i3.get(t, adminUser, adminPass, p); resp.StatusCode != 200 || string(got) != "with the token" {
		t.Fatalf("GET via 3 after the locked PUT via 2: %d %q", resp.StatusCode, got)
	}
	resp, body = i3.admin(t, "UNLOCK", p, nil, "Lock-Token", tok)
	wantStatus(t, "UNLOCK via 3", resp, body, http.StatusNoContent)
	resp, body = i2.admin(t, "PUT", p, []byte("after the unlock"))
	wantStatus(t, "PUT via 2 after the UNLOCK via 3", resp, body, http.StatusNoContent, http.StatusCreated, http.StatusOK)

	const dir = "/disktop/cluster-lockdir/"
	resp, body = i1.admin(t, "MKCOL", dir, nil)
	wantStatus(t, "MKCOL via 1", resp, body, http.StatusCreated)
	resp, body = i1.admin(t, "LOCK", dir, []byte(lockInfoXML), "Depth", "infinity", "Timeout", "Second-600")
	wantStatus(t, "depth-infinity LOCK of a folder via 1", resp, body, http.StatusOK)
	dirTok := resp.Header.Get("Lock-Token")
	t.Cleanup(func() { c.inst[0].client().admin(t, "UNLOCK", dir, nil, "Lock-Token", dirTok) })
	resp, body = i3.admin(t, "PUT", dir+"child.txt", []byte("x"))
	wantStatus(t, "PUT of a child of the locked folder via 3", resp, body, http.StatusLocked)
	resp, body = i3.admin(t, "PUT", dir+"child.txt", []byte("x"), "If", "("+dirTok+")")
	wantStatus(t, "PUT of the child via 3 with the folder's token", resp, body, http.StatusCreated)
	resp, body = i2.admin(t, "UNLOCK", dir, nil, "Lock-Token", dirTok)
	wantStatus(t, "UNLOCK of the folder via 2", resp, body, http.StatusNoContent)
	resp, body = i1.admin(t, "DELETE", dir, nil)
	wantStatus(t, "DELETE of the folder via 1 after the UNLOCK via 2", resp, body, http.StatusNoContent)
}

// davMultistatus is the part of a PROPFIND answer the cluster tests read.
type davMultistatus struct {
	Responses []struct {
		Href     string `xml:"href"`
		Propstat []struct {
			Status string `xml:"status"`
			Prop   struct {
				Length   string `xml:"getcontentlength"`
				Modified string `xml:"getlastmodified"`
				Color    string `xml:"urn:e2e:cluster color"`
			} `xml:"prop"`
		} `xml:"propstat"`
	} `xml:"response"`
}

// davEntry is one resource of a PROPFIND answer (its 200 propstat's values).
type davEntry struct{ length, modified, color string }

// davListing PROPFINDs dir (Depth 1) through b and returns its children by
// name.
func davListing(t *testing.T, b *bridge, dir string) map[string]davEntry {
	t.Helper()
	resp, body := b.admin(t, "PROPFIND", dir, nil, "Depth", "1")
	wantStatus(t, "PROPFIND "+dir+" via "+b.url, resp, body, http.StatusMultiStatus)
	all := parseDavMultistatus(t, body)
	self := strings.TrimSuffix(dir, "/")
	out := map[string]davEntry{}
	for href, e := range all {
		if href != self {
			out[path.Base(href)] = e
		}
	}
	return out
}

// parseDavMultistatus returns a multistatus answer's resources by path
// (unescaped, without a trailing slash).
func parseDavMultistatus(t *testing.T, body []byte) map[string]davEntry {
	t.Helper()
	var ms davMultistatus
	if err := xml.Unmarshal(body, &ms); err != nil {
		t.Fatalf("multistatus: %v: %s", err, body)
	}
	out := map[string]davEntry{}
	for _, r := range ms.Responses {
		u, err := url.Parse(r.Href)
		if err != nil {
			t.Fatalf("href %q: %v", r.Href, err)
		}
		var e davEntry
		for _, ps := range r.Propstat {
			if strings.Contains(ps.Status, " 200 ") {
				e = davEntry{length: ps.Prop.Length, modified: ps.Prop.Modified, color: ps.Prop.Color}
			}
		}
		out[strings.TrimSuffix(u.Path, "/")] = e
	}
	return out
}

// listings: on every mount, a folder made, a file put, replaced and
// deleted through instance 1 (and an empty file, a pending entry where the
// provider stores none) shows in instances 2 and 3's listings the moment
// instance 1 has answered, although both had the folder cached (and trust
// a listing for ten minutes); all three give the file the same ETag and
// Last-Modified.
func (c *testCluster) listings(t *testing.T) {
	i1 := c.inst[0].client()
	others := []*bridge{c.inst[1].client(), c.inst[2].client()}
	for _, m := range c.mounts {
		t.Run(strings.TrimPrefix(m, "/"), func(t *testing.T) {
			root, dir := m+"/", m+"/cluster-listing/"
			for _, b := range others {
				if _, ok := davListing(t, b, root)["cluster-listing"]; ok {
					t.Fatalf("%s lists cluster-listing before it was made", b.url)
				}
			}
			resp, body := i1.admin(t, "MKCOL", dir, nil)
			wantStatus(t, "MKCOL via 1", resp, body, http.StatusCreated)
			for _, b := range others {
				if _, ok := davListing(t, b, root)["cluster-listing"]; !ok {
					t.Errorf("%s does not list the folder just made via 1", b.url)
				}
				if _, ok := davListing(t, b, dir)["fresh.txt"]; ok {
					t.Fatalf("%s lists fresh.txt before its PUT", b.url)
				}
			}

			first := []byte("written through instance 1")
			resp, body = i1.admin(t, "PUT", dir+"fresh.txt", first)
			wantStatus(t, "PUT via 1", resp, body, http.StatusCreated)
			for _, b := range others {
				if e, ok := davListing(t, b, dir)["fresh.txt"]; !ok || e.length != strconv.Itoa(len(first)) {
					t.Errorf("right after the PUT via 1, %s lists fresh.txt: %v (length %q), want length %d", b.url, ok, e.length, len(first))
				}
			}
			if resp, got := others[0].get(t, adminUser, adminPass, dir+"fresh.txt"); resp.StatusCode != 200 || !bytes.Equal(got, first) {
				t.Errorf("GET via 2 right after the PUT via 1: %d %q", resp.StatusCode, got)
			}
			c.sameValidators(t, dir+"fresh.txt")

			second := []byte("replaced through instance 1, longer than before")
			resp, body = i1.admin(t, "PUT", dir+"fresh.txt", second)
			wantStatus(t, "overwriting PUT via 1", resp, body, http.StatusNoContent, http.StatusCreated)
			for _, b := range others {
				if e := davListing(t, b, dir)["fresh.txt"]; e.length != strconv.Itoa(len(second)) {
					t.Errorf("right after the overwrite via 1, %s lists fresh.txt with length %q, want %d", b.url, e.length, len(second))
				}
			}
			if resp, got := others[1].get(t, adminUser, adminPass, dir+"fresh.txt"); resp.StatusCode != 200 || !bytes.Equal(got, second) {
				t.Errorf("GET via 3 right after the overwrite via 1: %d %q", resp.StatusCode, got)
			}
			c.sameValidators(t, dir+"fresh.txt")

			// An empty file: DiscCloud stores none, so the bridge keeps it
			// as a pending entry, which every instance must list too.
			resp, body = i1.admin(t, "PUT", dir+"empty.txt", []byte{})
			wantStatus(t, "empty PUT via 1", resp, body, http.StatusCreated)
			for _, b := range others {
				if e, ok := davListing(t, b, dir)["empty.txt"]; !ok || e.length != "0" {
					t.Errorf("right after the empty PUT via 1, %s lists empty.txt: %v (length %q)", b.url, ok, e.length)
				}
			}
			resp, body = others[0].admin(t, "DELETE", dir+"empty.txt", nil)
			wantStatus(t, "DELETE of the empty file via 2", resp, body, http.StatusNoContent)
			for _, b := range []*bridge{i1, others[1]} {
				if _, ok := davListing(t, b, dir)["empty.txt"]; ok {
					t.Errorf("right after the DELETE via 2, %s still lists empty.txt", b.url)
				}
			}

			resp, body = i1.admin(t, "DELETE", dir+"fresh.txt", nil)
			wantStatus(t, "DELETE via 1", resp, body, http.StatusNoContent)
			for _, b := range others {
				if _, ok := davListing(t, b, dir)["fresh.txt"]; ok {
					t.Errorf("right after the DELETE via 1, %s still lists fresh.txt", b.url)
				}
				if resp, _ := b.admin(t, "GET", dir+"fresh.txt", nil); resp.StatusCode != http.StatusNotFound {
					t.Errorf("GET via %s right after the DELETE via 1: %d, want 404", b.url, resp.StatusCode)
				}
			}
		})
	}
}

// sameValidators: every instance answers a HEAD of p with the same ETag
// and Last-Modified, so that a client's conditional request (If-Match, an
// If header with an entity tag, as litmus's complex_cond_put sends) holds
// whichever instance it lands on.
func (c *testCluster) sameValidators(t *testing.T, p string) {
	t.Helper()
	var first string
	for i, in := range c.inst {
		resp, body := in.client().admin(t, "HEAD", p, nil)
		wantStatus(t, "HEAD via "+in.name, resp, body, http.StatusOK)
		got := resp.Header.Get("ETag") + " " + resp.Header.Get("Last-Modified")
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("HEAD %s: %s answers ETag and Last-Modified %q, %s %q", p, in.name, got, c.inst[0].name, first)
		}
	}
}

const propColorPatch = `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:e2e:cluster"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>`

const propColorFind = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:e2e:cluster"><D:prop><Z:color/><D:getlastmodified/><D:getcontentlength/></D:prop></D:propfind>`

// props: a dead property set through instance 1 is read through 2 and 3;
// a modification time kept by the bridge (a PROPPATCH of DAV:lastmodified,
// as clients set times on providers that keep none, and ownCloud's
// X-OC-Mtime on a PUT) is listed by 3 and 2 at once, also where they had
// the folder and the file cached.
func (c *testCluster) props(t *testing.T) {
	const patchedTime = "Thu, 02 Jan 2020 03:04:05 GMT"
	const ocMtime, ocTime = "1262304000", "Fri, 01 Jan 2010 00:00:00 GMT"
	i1, i2, i3 := c.inst[0].client(), c.inst[1].client(), c.inst[2].client()
	for _, m := range c.mounts {
		t.Run(strings.TrimPrefix(m, "/"), func(t *testing.T) {
			dir := m + "/cluster-props/"
			file := dir + "file.txt"
			resp, body := i1.admin(t, "MKCOL", dir, nil)
			wantStatus(t, "MKCOL via 1", resp, body, http.StatusCreated)
			resp, body = i1.admin(t, "PUT", file, []byte("props"))
			wantStatus(t, "PUT via 1", resp, body, http.StatusCreated)
			for _, b := range []*bridge{i2, i3} {
				davListing(t, b, dir) // cached now
				resp, body := b.admin(t, "PROPFIND", file, []byte(propColorFind), "Depth", "0")
				wantStatus(t, "PROPFIND via "+b.url, resp, body, http.StatusMultiStatus)
				if got := parseDavMultistatus(t, body)[strings.TrimSuffix(file, "/")].color; got != "" {
					t.Fatalf("color %q before any PROPPATCH", got)
				}
			}

			resp, body = i1.admin(t, "PROPPATCH", file, []byte(propColorPatch))
			wantStatus(t, "PROPPATCH via 1", resp, body, http.StatusMultiStatus)
			if !strings.Contains(string(body), "200 OK") {
				t.Fatalf("PROPPATCH via 1: %s", body)
			}
			for _, b := range []*bridge{i2, i3} {
				resp, body := b.admin(t, "PROPFIND", file, []byte(propColorFind), "Depth", "0")
				wantStatus(t, "PROPFIND via "+b.url, resp, body, http.StatusMultiStatus)
				if got := parseDavMultistatus(t, body)[file].color; got != "blue" {
					t.Errorf("dead property set via 1, read via %s: %q, want blue", b.url, got)
				}
			}

			patch := `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:lastmodified>` +
				patchedTime + `</D:lastmodified></D:prop></D:set></D:propertyupdate>`
			resp, body = i1.admin(t, "PROPPATCH", file, []byte(patch))
			wantStatus(t, "PROPPATCH of DAV:lastmodified via 1", resp, body, http.StatusMultiStatus)
			if !strings.Contains(string(body), "200 OK") {
				t.Fatalf("PROPPATCH of DAV:lastmodified via 1: %s", body)
			}
			if got := davListing(t, i3, dir)["file.txt"].modified; got != patchedTime {
				t.Errorf("time set via 1, listed via 3: %q, want %q", got, patchedTime)
			}
			resp, body = i2.admin(t, "PROPFIND", file, []byte(propColorFind), "Depth", "0")
			wantStatus(t, "PROPFIND via 2", resp, body, http.StatusMultiStatus)
			if got := parseDavMultistatus(t, body)[file].modified; got != patchedTime {
				t.Errorf("time set via 1, read via 2: %q, want %q", got, patchedTime)
			}
			c.sameValidators(t, file)

			resp, body = i1.admin(t, "PUT", dir+"oc.txt", []byte("timed"), "X-OC-Mtime", ocMtime)
			wantStatus(t, "PUT with X-OC-Mtime via 1", resp, body, http.StatusCreated)
			if got := davListing(t, i3, dir)["oc.txt"].modified; got != ocTime {
				t.Errorf("X-OC-Mtime given via 1, listed via 3: %q, want %q", got, ocTime)
			}
		})
	}
}

// parallelWrites: writes of one path sent at once through the balancer
// (so to all three instances) wait for each other as on one bridge
// (TestParallelWritesOfOnePath): ten MKCOLs make one folder (one 201, the
// rest 405; DiscCloud would take a second folder of the same name), and
// twenty PUTs all succeed and leave one of the bodies whole.
func (c *testCluster) parallelWrites(t *testing.T) {
	lb := c.lb.client()
	for _, m := range c.mounts {
		t.Run(strings.TrimPrefix(m, "/"), func(t *testing.T) {
			codes := parallel(t, lb, 10, "MKCOL", m+"/cluster-par", nil)
			created, refused := 0, 0
			for _, code := range codes {
				switch code {
				case http.StatusCreated:
					created++
				case http.StatusMethodNotAllowed:
					refused++
				}
			}
			if created != 1 || refused != len(codes)-1 {
				t.Errorf("10 parallel MKCOLs through haproxy: %v, want exactly one 201 and 405s", codes)
			}
			resp, body := c.inst[2].client().admin(t, "PROPFIND", m+"/", nil, "Depth", "1")
			wantStatus(t, "PROPFIND via bridge3", resp, body, http.StatusMultiStatus)
			if n := strings.Count(string(body), "/cluster-par/<"); n != 1 {
				t.Errorf("after 10 parallel MKCOLs the mount root lists cluster-par %d times, want once", n)
			}

			bodies := make([][]byte, 20)
			for i := range bodies {
				bodies[i] = bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
			}
			codes = parallel(t, lb, 20, "PUT", m+"/cluster-par/one.txt", func(i int) []byte { return bodies[i] })
			if slices.ContainsFunc(codes, func(c int) bool { return c != http.StatusCreated && c != http.StatusNoContent }) {
				t.Errorf("20 parallel PUTs of one path through haproxy: %v, want all 2xx", codes)
			}
			for _, in := range c.inst {
				resp, got := in.client().get(t, adminUser, adminPass, m+"/cluster-par/one.txt")
				if resp.StatusCode != 200 || !slices.ContainsFunc(bodies, func(b []byte) bool { return bytes.Equal(got, b) }) {
					t.Errorf("GET via %s after 20 parallel PUTs: %d, %d bytes, not one of the bodies whole", in.name, resp.StatusCode, len(got))
				}
			}
		})
	}
}

// rcloneKill copies a tree (36 files, about 20 MB) with rclone through
// the balancer while instance 2 is killed (SIGKILL) in the middle and
// restarted a few seconds later (the copy outlasts the restart): rclone,
// with its default retries, must finish, haproxy must send requests to the
// restarted instance again, and rclone check (bytes compared, through all
// three) and the provider must hold every file.
func (c *testCluster) rcloneKill(t *testing.T) {
	bin := needTool(t, "rclone")
	src := t.TempDir()
	files := map[string][]byte{}
	for i := range 36 {
		name := fmt.Sprintf("dir%d/file-%02d.bin", i%4, i)
		size := 1 + (i*7919)%(160<<10)
		if i%6 == 0 {
			size = 3<<20 + i*1000 // about 20 MB in all
		}
		files[name] = randomBytes(size)
	}
	writeTree(t, src, files)
	obscured, err := runTool(t, nil, "", bin, "--config", "/dev/null", "obscure", adminPass)
	if err != nil {
		t.Fatalf("rclone obscure: %v\n%s", err, obscured)
	}
	env := []string{
		"RCLONE_CONFIG_LB_TYPE=webdav",
		"RCLONE_CONFIG_LB_URL=" + c.lb.url() + "/disktop",
		"RCLONE_CONFIG_LB_VENDOR=other",
		"RCLONE_CONFIG_LB_USER=" + adminUser,
		"RCLONE_CONFIG_LB_PASS=" + strings.TrimSpace(obscured),
	}

	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	// At 1 MB/s the copy lasts about 20 s wherever it runs, long enough
	// for the killed instance to come back; the big files first, so that
	// small ones keep starting new PUTs until the end.
	cmd := exec.CommandContext(ctx, bin, "--config", "/dev/null", "copy", "--transfers", "8", "--bwlimit", "1M",
		"--order-by", "size,descending", src, "lb:cluster-tree")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	before := c.dt.Calls()["complete"]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Kill once a few files have landed at the provider: uploads are then
	// running through every instance.
	victim := c.inst[1]
	var copyErr error
	finished := false
	for !finished && c.dt.Calls()["complete"]-before < 4 {
		select {
		case copyErr = <-done:
			finished = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	if finished {
		t.Fatalf("rclone finished before the kill (%v): the tree is too small to kill an instance mid-run\n%s", copyErr, out.String())
	}
	victim.kill()
	t.Logf("%s killed (SIGKILL) after %d uploads had completed", victim.name, c.dt.Calls()["complete"]-before)
	select {
	case copyErr = <-done:
		t.Fatalf("rclone finished while %s was down (%v): the copy must outlast its restart\n%s", victim.name, copyErr, out.String())
	case <-time.After(3 * time.Second): // down for a few seconds
	}
	if err := victim.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if copyErr = <-done; copyErr != nil {
		t.Fatalf("rclone copy through haproxy with %s killed: %v\n%s", victim.name, copyErr, out.String())
	}
	// The restarted instance took part in the rest of the copy.
	log, err := os.ReadFile(victim.logFile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(log[bytes.LastIndex(log, []byte("---- "+victim.name+": start")):]), "\n") {
		var rec struct {
			Msg    string `json:"message"`
			Method string `json:"method"`
			Path   string `json:"path"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Method == "PUT" &&
			strings.HasPrefix(rec.Path, "/disktop/cluster-tree/") {
			n++
		}
	}
	t.Logf("the restarted %s answered %d of rclone's PUTs", victim.name, n)
	// haproxy's checks take the restarted instance back.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, _ := c.lb.client().admin(t, "OPTIONS", "/", nil)
		if resp.Header.Get(servedBy) == victim.name {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy sent no request to the restarted %s within 20 s", victim.name)
		}
		time.Sleep(100 * time.Millisecond)
	}

	check, err := runTool(t, env, "", bin, "--config", "/dev/null", "check", "--download", src, "lb:cluster-tree")
	if err != nil || !strings.Contains(check, "0 differences found") || !strings.Contains(check, fmt.Sprintf("%d matching files", len(files))) {
		t.Fatalf("rclone check --download through haproxy: %v\n%s", err, check)
	}
	for name, data := range files {
		if got, ok := c.dt.File("/cluster-tree/" + name); !ok || !bytes.Equal(got, data) {
			t.Errorf("%s at the provider: %v, %d bytes, want %d", name, ok, len(got), len(data))
		}
	}
	// The restarted instance serves the tree the others wrote.
	if got := davListing(t, victim.client(), "/disktop/cluster-tree/"); len(got) != 4 {
		t.Errorf("the restarted %s lists %d entries in cluster-tree, want 4 folders: %v", victim.name, len(got), got)
	}
}

// throttle: with login_max_failures = 3, wrong passwords for one account
// from one client (behind haproxy: its X-Forwarded-For) spread over the
// three instances count together: after as many as one bridge answers
// 401, every instance answers 429, the right password included; the same
// account from another client, and admin, still log in.
func (c *testCluster) throttle(t *testing.T) {
	const attacker, neighbour = "198.51.100.66", "198.51.100.7"
	try := func(b *bridge, pass, client string) *http.Response {
		resp, _ := b.request(t, limitedUser, pass, "PROPFIND", "/disktop/", nil, "Depth", "0", "X-Forwarded-For", client)
		return resp
	}
	// One bridge answers login_max_failures+1 wrong passwords with 401
	// and blocks from the next (TestTrustedProxyThrottle).
	var statuses []int
	for i := range clusterLoginMax + 1 {
		statuses = append(statuses, try(c.inst[i%3].client(), "guess", attacker).StatusCode)
	}
	for i, s := range statuses {
		if s != http.StatusUnauthorized {
			t.Fatalf("wrong passwords spread over the instances: %v, want 401 each (the %d. was not)", statuses, i+1)
		}
	}
	for _, in := range c.inst {
		if resp := try(in.client(), limitedPass, attacker); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s after %d wrong passwords spread over the instances: %d (Retry-After %q), want 429 with Retry-After",
				in.name, clusterLoginMax+1, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	// Through haproxy: its X-Forwarded-For entry (127.0.0.1, trusted) is
	// skipped, the client's stays the client.
	if resp := try(c.lb.client(), limitedPass, attacker); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("through haproxy from the blocked client: %d, want 429", resp.StatusCode)
	}
	for _, in := range c.inst {
		if resp := try(in.client(), limitedPass, neighbour); resp.StatusCode != http.StatusMultiStatus {
			t.Errorf("%s: the same account from another client: %d, want 207", in.name, resp.StatusCode)
		}
		if resp, _ := in.client().admin(t, "PROPFIND", "/disktop/", nil, "Depth", "0"); resp.StatusCode != http.StatusMultiStatus {
			t.Errorf("%s: admin: %d, want 207", in.name, resp.StatusCode)
		}
	}
}

// rotation keeps all three instances busy on /disktop (each writes a
// file another reads: both need a valid access token) until the Disk.Top
// fake has rotated a token during the run (the seed's rotation at start
// is the first; the next is due 54 s later, when a tenth of the 60-second
// lifetime is left), then has each instance write and read again: all
// must work with the token one of them rotated.
func (c *testCluster) rotation(t *testing.T) {
	resp, body := c.inst[0].client().admin(t, "MKCOL", "/disktop/cluster-tokens/", nil)
	wantStatus(t, "MKCOL via bridge1", resp, body, http.StatusCreated)
	rotations := func() int { return len(disktopRefreshes(c.dtAuth).rotations) }
	deadline := c.started.Add(2 * hostileTokenTTL)
	for i := 0; rotations() < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no Disk.Top token rotation within %v of the start besides the seed's (%d rotations)", 2*hostileTokenTTL, rotations())
		}
		c.useDisktop(t, c.inst[i%3], c.inst[(i+1)%3], i)
		time.Sleep(2 * time.Second)
	}
	for i := range c.inst {
		c.useDisktop(t, c.inst[i], c.inst[(i+1)%3], 100+i)
	}
}

// tokens: over the whole run (from the instances' start to now), the
// three instances spent the shared accounts' credentials as one bridge
// would, by what the fakes' token endpoints answered:
//   - Disk.Top: no refresh token presented again once spent (the real
//     service then kills the account's tokens); rotations at least half a
//     lifetime apart, and at most one per 90% of a lifetime (when the
//     bridge refreshes) plus the seed's at start;
//   - DiscCloud: exactly one /authorize, since each one logs out every
//     other holder (the mount stays in use, keepDiscCloudInUse, so its
//     token never idles out and nothing calls for a second);
//   - Cloudreve: at least one login, and at most one per session lifetime
//     plus the first.
func (c *testCluster) tokens(t *testing.T) {
	run := time.Since(c.started)
	rep := disktopRefreshes(c.dtAuth)
	for _, r := range rep.reuses {
		t.Errorf("Disk.Top: %s", r)
	}
	maxRot := int(run/(hostileTokenTTL*9/10)) + 1
	authorized := c.dcAuth.successes(func(a authCall) bool {
		return a.status == http.StatusOK && jsonField(a.body, "_status") == "success"
	})
	logins := c.crAuth.successes(func(a authCall) bool {
		return a.status == http.StatusOK && jsonField(a.body, "code") == "0"
	})
	maxLogins := int(run/hostileTokenTTL) + 1
	t.Logf("run %v: Disk.Top %d rotations (at most %d) in %d token calls; DiscCloud %d /authorize (%d calls); Cloudreve %d logins (at most %d; %d calls)",
		run.Round(time.Second), len(rep.rotations), maxRot, len(c.dtAuth.all()), len(authorized), len(c.dcAuth.all()),
		len(logins), maxLogins, len(c.crAuth.all()))

	if len(rep.rotations) > maxRot {
		t.Errorf("Disk.Top: %d token rotations in %v, want at most %d (one per token lifetime for all instances)",
			len(rep.rotations), run.Round(time.Second), maxRot)
	}
	for i := 1; i < len(rep.rotations); i++ {
		if gap := rep.rotations[i].start.Sub(rep.rotations[i-1].end); gap < hostileTokenTTL/2 {
			t.Errorf("Disk.Top: rotations %d and %d only %v apart: more than one instance refreshes", i, i+1, gap.Round(time.Millisecond))
		}
	}
	if len(authorized) != 1 {
		t.Errorf("DiscCloud: %d successful /authorize calls, want 1 for all instances (each logs out the others)", len(authorized))
	}
	if len(logins) < 1 || len(logins) > maxLogins {
		t.Errorf("Cloudreve: %d logins in %v, want 1 to %d (one per session lifetime for all instances)",
			len(logins), run.Round(time.Second), maxLogins)
	}
}

// useDisktop writes a file through one instance and reads it through
// another: both need a valid access token at the provider (the listing
// cache cannot answer for them).
func (c *testCluster) useDisktop(t *testing.T, writer, reader *clusterInstance, i int) {
	t.Helper()
	p := fmt.Sprintf("/disktop/cluster-tokens/%d.txt", i)
	data := []byte(fmt.Sprintf("token use %d via %s", i, writer.name))
	resp, body := writer.client().admin(t, "PUT", p, data)
	wantStatus(t, "PUT via "+writer.name, resp, body, http.StatusCreated)
	if resp, got := reader.client().get(t, adminUser, adminPass, p); resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Errorf("GET via %s of a file put via %s: %d %q", reader.name, writer.name, resp.StatusCode, got)
	}
}

// noServerErrors: no instance answered a client with a 5xx over the whole
// run (a Redis failure would be a 503; the hostile fakes' 5xx must be
// absorbed as on one bridge).
func (c *testCluster) noServerErrors(t *testing.T) {
	for _, in := range c.inst {
		b, err := os.ReadFile(in.logFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var rec struct {
				Msg    string `json:"message"`
				Status int    `json:"status"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Status >= 500 {
				t.Errorf("%s answered %d: %s", in.name, rec.Status, line)
			}
		}
	}
}
