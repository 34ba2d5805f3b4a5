// Package e2e drives the built bridge binary on a loopback port with real
// WebDAV clients (litmus, rclone, curl, ffprobe) and with raw HTTP for what
// no client sends on purpose (path tricks, bad XML, cut uploads). Most tests
// run once per mount of testMounts, so that a provider joins by adding an
// entry whose Setup starts its fake; redirect twins drive download =
// "redirect". Files a test leaves in place are re-read at the end
// (TestZZNothingLost), after every client has run.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"

	cloudrevefake "bridge/tests/fakes/cloudreve"
	disccloudfake "bridge/tests/fakes/disccloud"
	disktopfake "bridge/tests/fakes/disktop"
	"bridge/tests/fakes/faults"
	gokuaifake "bridge/tests/fakes/gokuai"
	teraboxfake "bridge/tests/fakes/terabox"
)

// Mount is one mount of the bridge under test.
type Mount struct {
	Path   string
	Driver string
	// Setup returns the mount's [mounts.options]; it may start a fake
	// provider with httptest, appended to fakeServers (TestMain closes
	// them once the bridge has stopped).
	Setup func() (map[string]any, error)
	// Backing, when set, returns the bytes stored at a mount-relative path
	// behind the bridge's back, to prove nothing was lost or altered.
	Backing func(rel string) ([]byte, error)
	// KeepsModTimes: the client's modification times are kept (by the
	// provider, or by the bridge for one that keeps none), so rclone need
	// not re-upload to set them.
	KeepsModTimes bool
	// HasHashes: objects carry real content hashes, so rclone check compares
	// by hash; without them it can compare sizes only.
	HasHashes bool
	// Download is the mount's download mode: "" or "proxy" (the bridge
	// streams), or "redirect" (GET answers 302 to the provider's URL).
	Download string
	// Litmus overrides litmusMinimum for some suites on this mount.
	Litmus map[string]litmusWant
	// ForbiddenChars are characters the provider refuses in names; the
	// odd-name trees leave names holding them out for this mount, and
	// TestForbiddenNames checks that the bridge refuses them cleanly.
	ForbiddenChars string
	// TrimsSpaces: the provider strips spaces around names, so names
	// with them are left out of the odd-name trees.
	TrimsSpaces bool
	// UploadBytes, when set, counts the bytes the provider's upload
	// endpoints have received: a copy the provider made by itself adds none.
	UploadBytes func() int64
	// Secrets, when set, returns every token the provider handed out so
	// far: none may appear in the bridge's log or in any answer.
	Secrets func() []string
	// PendingEmpties: the provider stores no empty files; the bridge
	// keeps them itself, so nothing is behind it to compare.
	PendingEmpties bool
	// Faults is the fault layer of a fake that runs the hostile profile
	// (faults.Hostile); nil for a kind one. forEachMount restarts such a
	// provider before every test.
	Faults *faults.Layer
}

// Users of the bridge under test.
const (
	adminUser, adminPass     = "admin", "admin-pass-7f3a"
	readerUser, readerPass   = "reader", "reader-pass-91c2"
	limitedUser, limitedPass = "limited", "limited-pass-4d8e"
)

// hiddenMount is a mount the limited user may not see.
const hiddenMount = "/hidden"

var (
	fakeServers     []*httptest.Server // provider fakes, closed after the run
	fakeClosers     []io.Closer        // the fakes themselves (their files), closed after their servers
	providerSecrets []string           // tokens and secrets that must never be logged
	bridgeBin       string             // built once in TestMain
	workDir         string             // holds the bridge's folders and the sentinel file
	shared          struct {
		once sync.Once
		b    *bridge
		err  error
	}
)

// testMounts is the list of mounts every client test runs against. A
// provider joins with one entry; with download = "redirect" the same driver
// is driven again behind its own fake, as GET then answers 302 to the
// provider's signed URL.
func testMounts() []Mount {
	localRoot := filepath.Join(workDir, "local-root")
	return []Mount{
		cloudreveMount("/cloudreve", "", false),
		disktopMount("/disktop", "", false),
		{
			Path:          "/local",
			Driver:        "local",
			KeepsModTimes: true,
			HasHashes:     true,
			Setup:         func() (map[string]any, error) { return map[string]any{"root": localRoot}, nil },
			Backing: func(rel string) ([]byte, error) {
				return os.ReadFile(filepath.Join(localRoot, filepath.FromSlash(rel)))
			},
		},
		cloudreveMount("/cloudreve-redirect", "redirect", false),
		disktopMount("/disktop-redirect", "redirect", false),
		// As rough as the real services get: 60-second tokens and links, a
		// rate limit, a rate-limited token endpoint, 5xx, cut downloads,
		// and a restart before every test.
		cloudreveMount("/cloudreve-hostile", "", true),
		disktopMount("/disktop-hostile", "", true),
		disccloudMount("/disccloud", false),
		disccloudMount("/disccloud-hostile", true),
		gokuaiMount("/gokuai", "", false),
		gokuaiMount("/gokuai-redirect", "redirect", false),
		gokuaiMount("/gokuai-hostile", "", true),
		teraboxMount("/terabox", false),
		teraboxMount("/terabox-hostile", true),
	}
}

// hostileLayer sets the hostile profile on a fake's fault layer when
// asked, and returns the layer then (nil otherwise).
func hostileLayer(l *faults.Layer, hostile bool) *faults.Layer {
	if !hostile {
		return nil
	}
	l.SetConfig(faults.Hostile())
	return l
}

// cloudreveMount is a cloudreve mount behind a fake of its own.
func cloudreveMount(path, download string, hostile bool) Mount {
	cr := cloudrevefake.New()
	fakeClosers = append(fakeClosers, cr)
	cr.UseOneDrive("/onedrive") // both upload policies are driven
	return Mount{
		Faults:        hostileLayer(cr.Faults, hostile),
		Path:          path,
		Driver:        "cloudreve",
		Download:      download,
		Litmus:        litmusFor(download),
		KeepsModTimes: true, // uploads carry last_modified
		Setup: func() (map[string]any, error) {
			srv := httptest.NewServer(cr.Handler())
			fakeServers = append(fakeServers, srv)
			cr.SetBaseURL(srv.URL)
			providerSecrets = append(providerSecrets, cr.Password)
			return map[string]any{"base_url": srv.URL, "username": cr.User, "password": cr.Password}, nil
		},
		Backing: func(rel string) ([]byte, error) {
			if b, ok := cr.File("/" + rel); ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		ForbiddenChars: `\?*<":>|`,
	}
}

// disktopMount is a disktop mount behind a fake of its own.
func disktopMount(path, download string, hostile bool) Mount {
	dt := disktopfake.New()
	fakeClosers = append(fakeClosers, dt)
	return Mount{
		Faults:        hostileLayer(dt.Faults, hostile),
		Path:          path,
		Driver:        "disktop",
		Download:      download,
		Litmus:        litmusFor(download),
		HasHashes:     true, // md5 in listings
		KeepsModTimes: true, // the provider keeps none; the bridge does
		Setup: func() (map[string]any, error) {
			// The fake runs in the test process; the bridge reaches it on
			// loopback like the real service.
			srv := httptest.NewServer(dt.Handler())
			fakeServers = append(fakeServers, srv)
			dt.SetBaseURL(srv.URL)
			_, refresh := dt.IssueToken()
			providerSecrets = append(providerSecrets, refresh, dt.ClientSecret)
			return map[string]any{"client_id": dt.ClientID, "client_secret": dt.ClientSecret,
				"api_base": srv.URL, "refresh_token": refresh}, nil
		},
		Backing: func(rel string) ([]byte, error) {
			if b, ok := dt.File("/" + rel); ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		ForbiddenChars: `\:*?"<>|`,
	}
}

// disccloudMount is a DiscCloud (YetiShare) mount behind a fake of its
// own. Its links are never handed to clients, so it has no redirect twin.
func disccloudMount(path string, hostile bool) Mount {
	dc := disccloudfake.New()
	fakeClosers = append(fakeClosers, dc)
	return Mount{
		Faults:        hostileLayer(dc.Faults, hostile),
		Path:          path,
		Driver:        "disccloud",
		Litmus:        litmusFor(""),
		KeepsModTimes: true, // the site keeps upload times only; the bridge keeps the client's
		Setup: func() (map[string]any, error) {
			srv := httptest.NewServer(dc.Handler())
			fakeServers = append(fakeServers, srv)
			dc.SetBaseURL(srv.URL)
			providerSecrets = append(providerSecrets, dc.Secrets()...)
			return map[string]any{"api_base": dc.APIBase(), "key1": dc.Key1, "key2": dc.Key2}, nil
		},
		Backing: func(rel string) ([]byte, error) {
			if b, ok := dc.File("/" + rel); ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		ForbiddenChars: `"\<`,
		TrimsSpaces:    true,
		PendingEmpties: true,
		Secrets:        dc.Secrets,
		UploadBytes:    dc.UploadBytes,
	}
}

// gokuaiMount is a Gokuai mount of the fake's team library ("library"
// option: the clients here write at the mount root, which in the
// all-libraries view holds only libraries; TestGokuaiLibraries drives that
// view).
func gokuaiMount(path, download string, hostile bool) Mount {
	gk := gokuaifake.New()
	fakeClosers = append(fakeClosers, gk)
	return Mount{
		Faults:        hostileLayer(gk.Faults, hostile),
		Path:          path,
		Driver:        "gokuai",
		Download:      download,
		Litmus:        litmusFor(download),
		KeepsModTimes: true, // the provider keeps none; the bridge does
		Setup: func() (map[string]any, error) {
			srv := httptest.NewServer(gk.Handler())
			fakeServers = append(fakeServers, srv)
			gk.SetBaseURL(srv.URL)
			providerSecrets = append(providerSecrets, gk.Password, gk.ClientSecret)
			return map[string]any{"base_url": srv.URL, "client_id": gk.ClientID, "client_secret": gk.ClientSecret,
				"username": gk.Username, "password": gk.Password, "library": "Team"}, nil
		},
		Backing: func(rel string) ([]byte, error) {
			if b, ok := gk.File("/Team/" + rel); ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		ForbiddenChars: `\:*?"<>|`,
		Secrets:        gk.Secrets,
	}
}

// teraboxMount is a TeraBox mount behind a fake of its own, whose API and
// upload hosts are servers of their own (tokeninfo hands out domains that
// differ from the OAuth host). Its links carry the access token, so it has
// no redirect twin.
func teraboxMount(path string, hostile bool) Mount {
	tb := teraboxfake.New()
	fakeClosers = append(fakeClosers, tb)
	return Mount{
		Faults:        hostileLayer(tb.Faults, hostile),
		Path:          path,
		Driver:        "terabox",
		Litmus:        litmusFor(""),
		KeepsModTimes: true, // the provider shows its own times; the bridge keeps the client's
		Setup: func() (map[string]any, error) {
			www := httptest.NewServer(tb.Handler())
			api := httptest.NewServer(tb.Handler())
			upload := httptest.NewServer(tb.Handler())
			fakeServers = append(fakeServers, www, api, upload)
			tb.SetBaseURL(www.URL)
			tb.SetDomains(strings.TrimPrefix(api.URL, "http://"), strings.TrimPrefix(upload.URL, "http://"))
			_, refresh := tb.IssueToken()
			providerSecrets = append(providerSecrets, refresh, tb.ClientSecret, tb.PrivateSecret)
			return map[string]any{"client_id": tb.ClientID, "client_secret": tb.ClientSecret,
				"private_secret": tb.PrivateSecret, "app_name": tb.AppName, "base_url": www.URL,
				"refresh_token": refresh}, nil
		},
		Backing: func(rel string) ([]byte, error) {
			if b, ok := tb.File("/" + rel); ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		ForbiddenChars: `\:*?"<>|`,
		Secrets:        tb.Secrets,
	}
}

func TestMain(m *testing.M) {
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setupAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "bridge-e2e-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	workDir = dir
	bridgeBin = filepath.Join(dir, "bridge")
	build := exec.Command("go", "build", "-o", bridgeBin, ".")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build: %v\n%s", err, out)
	}
	code := m.Run()
	if shared.b != nil {
		// A bridge that needs SIGKILL or exits non-zero on SIGINT would
		// cut uploads short in production: that fails the run.
		if err := shared.b.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: bridge shutdown: %v\nlog tail:\n%s\n", err, shared.b.logTail(20))
			code = 1
		}
	}
	for _, s := range fakeServers {
		s.Close()
	}
	for _, c := range fakeClosers {
		c.Close()
	}
	return code, nil
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}

// bridge is a running bridge process.
type bridge struct {
	url     string
	cmd     *exec.Cmd
	logs    *syncBuffer
	mounts  []Mount
	exited  chan struct{} // closed when the process has ended
	waitErr error         // the process's exit, valid once exited is closed
}

// syncBuffer collects the process's stderr (its log) safely.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// theBridge starts the shared bridge on first use, and watches it for t.
func theBridge(t *testing.T) *bridge {
	t.Helper()
	b := startShared(t)
	watch(t, b)
	return b
}

func startShared(t *testing.T) *bridge {
	t.Helper()
	shared.once.Do(func() {
		// Tests make dozens of wrong logins on purpose: the throttle would
		// block the loopback address for everyone. TestLoginThrottle runs
		// a bridge of its own with a low limit.
		shared.b, shared.err = startBridge(workDir, testMounts(), map[string]any{"login_max_failures": 100000})
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
}

// watch fails t if the bridge died under it, and gives a failed t the
// bridge's log lines written while t ran.
func watch(t *testing.T, b *bridge) {
	from := len(b.logs.String())
	t.Cleanup(func() {
		select {
		case <-b.exited:
			t.Errorf("the bridge exited during the test: %v", b.waitErr)
		default:
		}
		if t.Failed() {
			t.Logf("bridge log while the test ran (last 40 lines):\n%s", lastLines(b.logs.String()[from:], 40))
		}
	})
}

// logTail is the last n lines of the bridge's log.
func (b *bridge) logTail(n int) string { return lastLines(b.logs.String(), n) }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func hash(p string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBridge writes a configuration into dir (the three users, mounts and
// the hidden mount, plus the [server] keys in server) and starts a bridge
// on it, on a free loopback port.
func startBridge(dir string, mounts []Mount, server map[string]any) (*bridge, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var mountTables []map[string]any
	var visible []string
	for _, m := range append(mounts, Mount{Path: hiddenMount, Driver: "local", Setup: func() (map[string]any, error) {
		return map[string]any{"root": filepath.Join(dir, "hidden-root")}, nil
	}}) {
		opts, err := m.Setup()
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Path, err)
		}
		table := map[string]any{"path": m.Path, "driver": m.Driver, "options": opts}
		if m.Download != "" {
			table["download"] = m.Download
		}
		mountTables = append(mountTables, table)
		if m.Path != hiddenMount {
			visible = append(visible, m.Path)
		}
	}
	srv := map[string]any{
		"listen":    addr,
		"temp_dir":  filepath.Join(dir, "tmp"),
		"state_dir": filepath.Join(dir, "state"),
		"log_level": "info",
	}
	for k, v := range server {
		srv[k] = v
	}
	cfg := map[string]any{
		"server": srv,
		"users": []map[string]any{
			{"name": adminUser, "password_hash": hash(adminPass), "mounts": []string{"*"}},
			{"name": readerUser, "password_hash": hash(readerPass), "mounts": []string{"*"}, "read_only": true},
			{"name": limitedUser, "password_hash": hash(limitedPass), "mounts": visible},
		},
		"mounts": mountTables,
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgFile, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bridgeBin, "serve", "-config", cfgFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	if name := os.Getenv("E2E_BRIDGE_LOG"); name != "" {
		// For debugging a hang: the whole log (and a SIGQUIT's goroutine
		// dump) lands in this file as it is written.
		f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = io.MultiWriter(logs, f), io.MultiWriter(logs, f)
	}
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bridge{url: "http://" + addr, cmd: cmd, logs: logs, mounts: mounts, exited: make(chan struct{})}
	go func() { b.waitErr = cmd.Wait(); close(b.exited) }()
	for i := 0; i < 100; i++ { // up to 10 s
		select {
		case <-b.exited:
			return nil, fmt.Errorf("bridge exited before it was ready (%v); log:\n%s", b.waitErr, logs.String())
		default:
		}
		req, _ := http.NewRequest("OPTIONS", b.url+"/", nil)
		req.SetBasicAuth(adminUser, adminPass)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.stop()
	return nil, fmt.Errorf("bridge did not become ready; log:\n%s", logs.String())
}

// stop asks the bridge to shut down as an operator would (SIGINT) and kills
// it if it has not ended within 15 s. It reports an unclean end.
func (b *bridge) stop() error {
	select {
	case <-b.exited:
		return fmt.Errorf("it had already exited: %v", b.waitErr)
	default:
	}
	b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.exited:
		return b.waitErr
	case <-time.After(15 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("still running 15 s after SIGINT: killed")
	}
}

// request sends one request as user with password.
func (b *bridge) request(t *testing.T, user, pass, method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, b.url+path, rd)
	} else {
		req, err = http.NewRequest(method, b.url+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A bound, so that a request the bridge never answers fails its test
	// with the log instead of hanging the whole run until its timeout.
	client := &http.Client{Timeout: 3 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// get downloads path as user the way a browser does: a redirect mount's 302
// is followed without the bridge's credentials, which must not be in the
// Location either.
func (b *bridge) get(t *testing.T, user, pass, path string) (*http.Response, []byte) {
	t.Helper()
	resp, body := b.request(t, user, pass, "GET", path, nil)
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusTemporaryRedirect {
		return resp, body
	}
	loc := resp.Header.Get("Location")
	if loc == "" || strings.Contains(loc, pass) {
		t.Fatalf("GET %s: %d to %q", path, resp.StatusCode, loc)
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatalf("GET %s, redirected: %v", path, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

func (b *bridge) admin(t *testing.T, method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return b.request(t, adminUser, adminPass, method, path, body, hdr...)
}

// kept holds files that tests put and leave in place, per mount path and
// mount-relative name, so that TestZZNothingLost can prove after every
// client has run (litmus, rclone, ...) that none was lost or altered.
var kept = struct {
	sync.Mutex
	files map[string]map[string][]byte
}{files: map[string]map[string][]byte{}}

// keep records that rel must hold data on mount m until the end of the run.
func keep(m Mount, rel string, data []byte) {
	kept.Lock()
	defer kept.Unlock()
	if kept.files[m.Path] == nil {
		kept.files[m.Path] = map[string][]byte{}
	}
	kept.files[m.Path][rel] = data
}

// needTool finds a client program; in CI a missing one is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s is not installed (bash .ci/run installs it)", name)
	}
	t.Skipf("%s is not installed: run bash .ci/run, which installs the real clients", name)
	return ""
}

// forEachMount runs fn as a subtest per mount, named after the mount.
func forEachMount(t *testing.T, fn func(t *testing.T, b *bridge, m Mount)) {
	b := startShared(t)
	for _, m := range b.mounts {
		t.Run(strings.TrimPrefix(m.Path, "/"), func(t *testing.T) {
			watch(t, b)
			if m.Faults != nil {
				m.Faults.Restart() // the provider crashed and came back
			}
			fn(t, b, m)
		})
	}
}
