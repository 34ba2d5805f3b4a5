// Package e2e drives the built bridge binary on a loopback port with real
// WebDAV clients: litmus, rclone, curl and ffprobe. Every test runs once per
// mount of testMounts, so that each provider's fake joins by adding an entry.
package e2e

import (
	"bytes"
	"fmt"
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

	disktopfake "bridge/tests/fakes/disktop"
)

// Mount is one mount of the bridge under test.
type Mount struct {
	Path   string
	Driver string
	// Setup returns the mount's [mounts.options]; it may start a fake
	// provider (stopped with t.Cleanup of the test binary's lifetime).
	Setup func() (map[string]any, error)
	// Backing, when set, returns the bytes stored at a mount-relative path
	// behind the bridge's back, to prove nothing was lost or altered.
	Backing func(rel string) ([]byte, error)
	// KeepsModTimes: the provider stores the client's modification times
	// (drivers.Features.SetModTime), so rclone need not re-upload to set them.
	KeepsModTimes bool
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
	providerSecrets []string           // tokens and secrets that must never be logged
	bridgeBin       string             // built once in TestMain
	workDir         string             // holds the bridge's folders and the sentinel file
	shared          struct {
		once sync.Once
		b    *bridge
		err  error
	}
)

// testMounts is the list of mounts every client test runs against.
func testMounts() []Mount {
	localRoot := filepath.Join(workDir, "local-root")
	dt := disktopfake.New()
	return []Mount{{
		Path:   "/disktop",
		Driver: "disktop",
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
	}, {
		Path:          "/local",
		Driver:        "local",
		KeepsModTimes: true,
		Setup:         func() (map[string]any, error) { return map[string]any{"root": localRoot}, nil },
		Backing: func(rel string) ([]byte, error) {
			return os.ReadFile(filepath.Join(localRoot, filepath.FromSlash(rel)))
		},
	}}
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
		shared.b.stop()
	}
	for _, s := range fakeServers {
		s.Close()
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
	url    string
	cmd    *exec.Cmd
	logs   *syncBuffer
	mounts []Mount
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

// theBridge starts the shared bridge on first use.
func theBridge(t *testing.T) *bridge {
	t.Helper()
	shared.once.Do(func() { shared.b, shared.err = startBridge(testMounts()) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
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

func startBridge(mounts []Mount) (*bridge, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var mountTables []map[string]any
	var visible []string
	for _, m := range append(mounts, Mount{Path: hiddenMount, Driver: "local", Setup: func() (map[string]any, error) {
		return map[string]any{"root": filepath.Join(workDir, "hidden-root")}, nil
	}}) {
		opts, err := m.Setup()
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Path, err)
		}
		mountTables = append(mountTables, map[string]any{"path": m.Path, "driver": m.Driver, "options": opts})
		if m.Path != hiddenMount {
			visible = append(visible, m.Path)
		}
	}
	cfg := map[string]any{
		"server": map[string]any{
			"listen":    addr,
			"temp_dir":  filepath.Join(workDir, "tmp"),
			"state_dir": filepath.Join(workDir, "state"),
			"log_level": "info",
		},
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
	cfgFile := filepath.Join(workDir, "config.toml")
	if err := os.WriteFile(cfgFile, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bridgeBin, "serve", "-config", cfgFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bridge{url: "http://" + addr, cmd: cmd, logs: logs, mounts: mounts}
	for i := 0; i < 100; i++ { // up to 10 s
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

func (b *bridge) stop() {
	if b.cmd.Process != nil {
		b.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.cmd.Process.Kill()
		}
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
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
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

// needTool finds a client program; in CI a missing one is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (bash .ci/run installs it)", name)
	}
	t.Skipf("%s is not installed: run bash .ci/run, which installs the real clients", name)
	return ""
}

// forEachMount runs fn as a subtest per mount.
func forEachMount(t *testing.T, fn func(t *testing.T, b *bridge, m Mount)) {
	b := theBridge(t)
	for _, m := range b.mounts {
		t.Run(strings.TrimPrefix(m.Path, "/"), func(t *testing.T) { fn(t, b, m) })
	}
}
