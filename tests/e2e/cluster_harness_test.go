package e2e

// The pieces TestClusterBehindHAProxy runs: bridge instances that can be
// killed and restarted on the same port, Debian's haproxy in front of them,
// and a recorder of the token and login calls the shared fakes answer.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// clusterInstance is one bridge process of the cluster: its own port,
// state_dir and temp_dir, the configuration of the others otherwise. Its
// log is a file that a restart appends to.
type clusterInstance struct {
	name    string // haproxy's name for it: bridge1, bridge2, bridge3
	addr    string // 127.0.0.1:port, kept across restarts
	dir     string
	cfgFile string
	logFile string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has ended
	waitErr error         // its exit, valid once exited is closed
}

// newClusterInstance writes the instance's configuration into dir: server
// holds the [server] keys all instances share, to which listen, state_dir
// and temp_dir of this one are added. Its log goes to logDir/name.log.
func newClusterInstance(dir, logDir, name string, server map[string]any, users, mounts []map[string]any) (*clusterInstance, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := map[string]any{
		"listen":    addr,
		"state_dir": filepath.Join(dir, "state"),
		"temp_dir":  filepath.Join(dir, "tmp"),
	}
	for k, v := range server {
		srv[k] = v
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"server": srv, "users": users, "mounts": mounts}); err != nil {
		return nil, fmt.Errorf("%s: encode config: %w", name, err)
	}
	in := &clusterInstance{name: name, addr: addr, dir: dir,
		cfgFile: filepath.Join(dir, "config.toml"), logFile: filepath.Join(logDir, name+".log")}
	if err := os.WriteFile(in.cfgFile, buf.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("%s: write config: %w", name, err)
	}
	return in, nil
}

func (in *clusterInstance) url() string { return "http://" + in.addr }

// client is the harness's bridge handle for this instance, for its request
// helpers (request, admin, get).
func (in *clusterInstance) client() *bridge { return &bridge{url: in.url()} }

// start runs the bridge and waits until it answers an authenticated
// OPTIONS, as startBridge does.
func (in *clusterInstance) start() error {
	logf, err := os.OpenFile(in.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", in.name, err)
	}
	fmt.Fprintf(logf, "---- %s: start %s\n", in.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bridgeBin, "serve", "-config", in.cfgFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", in.name, err)
	}
	exited := make(chan struct{})
	in.mu.Lock()
	in.cmd, in.exited = cmd, exited
	in.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		in.mu.Lock()
		in.waitErr = err
		in.mu.Unlock()
		close(exited)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (%v); log:\n%s", in.name, in.exitErr(), in.logTail(30))
		default:
		}
		req, _ := http.NewRequest("OPTIONS", in.url()+"/", nil)
		req.SetBasicAuth(adminUser, adminPass)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.kill()
	return fmt.Errorf("%s did not become ready within 20 s; log:\n%s", in.name, in.logTail(30))
}

func (in *clusterInstance) exitErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.waitErr
}

// running reports whether the current process is alive.
func (in *clusterInstance) running() bool {
	in.mu.Lock()
	exited := in.exited
	in.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL, as a crash or an OOM kill does, and
// waits for it.
func (in *clusterInstance) kill() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// stop asks the bridge to shut down (SIGINT) and reports an unclean end,
// killing it after 15 s, as the harness's bridge.stop does.
func (in *clusterInstance) stop() error {
	if !in.running() {
		return nil // killed on purpose, or never started
	}
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.mu.Unlock()
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
		if err := in.exitErr(); err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s still running 15 s after SIGINT: killed", in.name)
	}
}

// logTail is the last n lines of the instance's log file (all its runs).
func (in *clusterInstance) logTail(n int) string { return fileTail(in.logFile, n) }

func fileTail(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return lastLines(string(b), n)
}

// haproxyBin finds Debian's haproxy, which lives in /usr/sbin, outside a
// normal user's PATH. Like needTool: skipped when missing, a failure in CI.
func haproxyBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return needTool(t, "haproxy")
}

// balancer is a haproxy process in front of the instances.
type balancer struct {
	addr    string
	cfgFile string
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func (lb *balancer) url() string { return "http://" + lb.addr }

func (lb *balancer) client() *bridge { return &bridge{url: lb.url()} }

// servedBy is the response header the test's haproxy sets to the name of
// the instance that answered, so that tests can see the round robin.
const servedBy = "X-Bridge-Server"

// haproxyTestConfig is deploy/haproxy.cfg's backend on loopback, without
// TLS, with timeouts fit for a test: round robin with no stickiness,
// /readyz checked every second, connection failures (a killed instance)
// redispatched to another instance, X-Forwarded-For added.
func haproxyTestConfig(listen string, instances []*clusterInstance) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    log stdout format raw local0 info
    maxconn 512

defaults
    mode http
    log global
    option httplog
    option forwardfor
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout queue 10s
    timeout check 3s

frontend webdav
    bind %s
    default_backend bridges

backend bridges
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
    http-response set-header %s %%[srv_name]
`, listen, servedBy)
	for _, in := range instances {
		fmt.Fprintf(&b, "    server %s %s check\n", in.name, in.addr)
	}
	return b.String()
}

// startBalancer validates and runs haproxy (-db: in the foreground) on a
// free loopback port, with its configuration in dir and its log in logDir,
// and waits until it accepts connections.
func startBalancer(t *testing.T, bin, dir, logDir string, instances []*clusterInstance) (*balancer, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	lb := &balancer{addr: addr, cfgFile: filepath.Join(dir, "haproxy.cfg"), logFile: filepath.Join(logDir, "haproxy.log"),
		exited: make(chan struct{})}
	if err := os.WriteFile(lb.cfgFile, []byte(haproxyTestConfig(addr, instances)), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "-c", "-f", lb.cfgFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("haproxy -c: %v\n%s", err, out)
	}
	logf, err := os.Create(lb.logFile)
	if err != nil {
		return nil, err
	}
	lb.cmd = exec.Command(bin, "-f", lb.cfgFile, "-db")
	lb.cmd.Stdout, lb.cmd.Stderr = logf, logf
	dieWithTest(lb.cmd)
	if err := lb.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	go func() { lb.cmd.Wait(); logf.Close(); close(lb.exited) }()
	t.Cleanup(lb.stop)
	for range 100 {
		select {
		case <-lb.exited:
			return nil, fmt.Errorf("haproxy exited: %v\n%s", lb.cmd.ProcessState, fileTail(lb.logFile, 20))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return lb, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("haproxy does not listen on %s\n%s", addr, fileTail(lb.logFile, 20))
}

func (lb *balancer) stop() {
	select {
	case <-lb.exited:
		return
	default:
	}
	lb.cmd.Process.Signal(os.Interrupt)
	select {
	case <-lb.exited:
	case <-time.After(5 * time.Second):
		lb.cmd.Process.Kill()
		<-lb.exited
	}
}

// authCall is one call of a token or login endpoint of a fake, as seen in
// front of the fake's fault layer (so the layer's made-up 429s and 5xx are
// there too, with their status).
type authCall struct {
	start, end time.Time
	form       url.Values // the urlencoded request fields (empty for JSON bodies)
	status     int
	body       []byte // the answer
}

// authLog records the calls of a fake's token or login endpoint: the fakes
// count calls per endpoint but not outcomes or the refresh token presented,
// which is what tells a rotation from a reuse.
type authLog struct {
	method, path string

	mu    sync.Mutex
	calls []authCall
}

// wrap records next's answers to method path and passes everything else.
func (l *authLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != l.method || r.URL.Path != l.path {
			next.ServeHTTP(w, r)
			return
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(raw))
		c := authCall{start: time.Now()}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			c.form, _ = url.ParseQuery(string(raw))
		}
		rec := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			// Also for an answer the fault layer broke off (it panics
			// with http.ErrAbortHandler, which goes on up).
			c.end, c.status, c.body = time.Now(), rec.status, rec.body.Bytes()
			l.mu.Lock()
			l.calls = append(l.calls, c)
			l.mu.Unlock()
		}()
		next.ServeHTTP(rec, r)
	})
}

// all returns the calls recorded so far, in the order they ended.
func (l *authLog) all() []authCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]authCall(nil), l.calls...)
}

// recordingWriter keeps the status and the first 64 KiB of an answer.
type recordingWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (w *recordingWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	if room := 64<<10 - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return w.ResponseWriter.Write(p)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsonField reads one top-level field of a JSON answer ("" when absent).
func jsonField(body []byte, field string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	switch v := m[field].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// refreshReport is what the Disk.Top fake's token endpoint saw of refresh
// grants: the rotations it made, and every refresh token presented again
// after it had been spent (or answered invalid_grant, which the fake does
// only for a spent, revoked or unknown one).
type refreshReport struct {
	rotations []authCall // answered 200: a new token pair
	reuses    []string   // what went wrong, without the tokens themselves
}

func disktopRefreshes(l *authLog) refreshReport {
	var rep refreshReport
	spentAt := map[string]time.Time{} // refresh token -> end of the call that rotated it
	for i, c := range l.all() {
		if c.form.Get("grant_type") != "refresh_token" {
			continue
		}
		tok := c.form.Get("refresh_token")
		when, spent := spentAt[tok]
		switch {
		case c.status == http.StatusOK && spent:
			rep.reuses = append(rep.reuses, fmt.Sprintf("call %d rotated a refresh token already rotated", i))
		case c.status == http.StatusOK:
			spentAt[tok] = c.end
			rep.rotations = append(rep.rotations, c)
		case jsonField(c.body, "error") == "invalid_grant":
			rep.reuses = append(rep.reuses, fmt.Sprintf("call %d (at %s) was answered invalid_grant: %s",
				i, c.start.Format("15:04:05.000"), jsonField(c.body, "error_description")))
		case spent && c.start.After(when):
			// A made-up 429 or 5xx answered it, but the token was spent.
			rep.reuses = append(rep.reuses, fmt.Sprintf("call %d (at %s) presented a refresh token spent at %s",
				i, c.start.Format("15:04:05.000"), when.Format("15:04:05.000")))
		}
	}
	return rep
}

// successes counts the calls whose answer ok accepts.
func (l *authLog) successes(ok func(c authCall) bool) []authCall {
	var out []authCall
	for _, c := range l.all() {
		if ok(c) {
			out = append(out, c)
		}
	}
	return out
}
