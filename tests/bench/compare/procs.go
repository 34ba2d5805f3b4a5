package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
)

// proc is one server (or fake) the benchmark started, as a process of its
// own, so that its CPU time and peak memory are its alone.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
	err  error // its exit, once done is closed
}

// startProc starts bin with args; its output goes to a log file in dir.
// The kernel kills it if this process dies without stopping it.
func startProc(dir, name, bin string, args ...string) (*proc, error) {
	logFile := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return track(p), nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process is gone.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end (SIGTERM), and kills it after 15 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// cpu is the process's user + system CPU time so far, in seconds
// (/proc/PID/stat, in clock ticks of 1/100 s on Linux).
func (p *proc) cpu() float64 { return cpuOf(p.pid()) }

func cpuOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after it.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// peakRSS is the process's VmHWM, in MiB: the most memory it has held
// since it started.
func (p *proc) peakRSS() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(sc.Text())[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// firstLine waits up to 30 s for the process's first line of output.
func (p *proc) firstLine() (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.log)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return string(b[:i]), nil
		}
		if p.exited() {
			return "", fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("%s printed nothing in 30 s", p.name)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url with method until it answers 200, the process
// exits, or 30 s pass.
func waitHTTP(p *proc, method, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, method, url, nil)
		req.SetBasicAuth(user, pass)
		resp, err := client.Do(req)
		if err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		time.Sleep(30 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not ready in 30 s (%s)\n%s", p.name, url, last, p.tail())
}

// fake is one provider fake, a fakeprovider process.
type fake struct {
	name    string
	proc    *proc
	baseURL string
	options map[string]any
	spec    string // driveralone's -spec file
}

func (e *env) startFake(name string) (*fake, error) {
	p, err := startProc(e.logs, "fake-"+name, e.bins.fake, "-provider", name, "-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	line, err := p.firstLine()
	if err != nil {
		p.stop()
		return nil, err
	}
	var out struct {
		BaseURL string         `json:"base_url"`
		Options map[string]any `json:"mount_options"`
	}
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		p.stop()
		return nil, fmt.Errorf("fake %s said %q: %w", name, line, err)
	}
	f := &fake{name: name, proc: p, baseURL: out.BaseURL, options: out.Options,
		spec: filepath.Join(e.work, "spec-"+name+".json")}
	spec, _ := json.Marshal(map[string]any{"driver": name, "options": out.Options,
		"state_dir": filepath.Join(e.state, "mounts", name)})
	if err := os.WriteFile(f.spec, spec, 0o600); err != nil {
		p.stop()
		return nil, err
	}
	return f, nil
}

// driverAlone runs the driveralone command on f's driver and decodes its
// JSON answer into out.
func (e *env) driverAlone(f *fake, out any, args ...string) error {
	cmd := exec.Command(e.bins.alone, append([]string{"-spec", f.spec}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("driveralone %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return json.Unmarshal(b, out)
}

// bridge is one bridge process.
type bridge struct {
	*proc
	base string // http://host:port
}

type bridgeMount struct {
	Path    string         `toml:"path"`
	Driver  string         `toml:"driver"`
	Options map[string]any `toml:"options"`
}

// startBridge runs the bridge with mounts; cacheTTL "" keeps the
// default. Every bridge shares the state folder (provider tokens rotate
// through it) and the temp folder, never at the same time.
func (e *env) startBridge(cacheTTL string, mounts ...bridgeMount) (*bridge, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Server struct {
			Listen   string `toml:"listen"`
			StateDir string `toml:"state_dir"`
			TempDir  string `toml:"temp_dir"`
			LogLevel string `toml:"log_level"`
			CacheTTL string `toml:"cache_ttl,omitempty"`
		} `toml:"server"`
		Users []struct {
			Name   string   `toml:"name"`
			Hash   string   `toml:"password_hash"`
			Mounts []string `toml:"mounts"`
		} `toml:"users"`
		Mounts []bridgeMount `toml:"mounts"`
	}
	cfg.Server.Listen, cfg.Server.StateDir, cfg.Server.TempDir = addr, e.state, e.temp
	cfg.Server.LogLevel, cfg.Server.CacheTTL = "warn", cacheTTL
	cfg.Users = append(cfg.Users, struct {
		Name   string   `toml:"name"`
		Hash   string   `toml:"password_hash"`
		Mounts []string `toml:"mounts"`
	}{user, e.passHash, []string{"*"}})
	cfg.Mounts = mounts
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		return nil, err
	}
	file := filepath.Join(e.work, "bridge.toml")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc(e.logs, "bridge", e.bins.bridge, "serve", "-config", file)
	if err != nil {
		return nil, err
	}
	b := &bridge{proc: p, base: "http://" + addr}
	// /healthz answers 200 once every mount reached its provider.
	if err := waitHTTP(p, "GET", b.base+"/healthz"); err != nil {
		p.stop()
		return nil, err
	}
	return b, nil
}

func (e *env) localMount() bridgeMount {
	return bridgeMount{Path: "/local", Driver: "local", Options: map[string]any{"root": e.localDir}}
}

func (f *fake) mount() bridgeMount {
	return bridgeMount{Path: "/" + f.name, Driver: f.name, Options: f.options}
}

// calls is the bridge's bridge_provider_calls_total for mount, all
// operations and results together.
func (b *bridge) calls(mount string) (float64, error) {
	resp, err := client.Get(b.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	label := `mount="` + mount + `"`
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "bridge_provider_calls_total{") || !strings.Contains(l, label) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", l, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// plain is the x/net/webdav.Dir server (plaindav) over dir.
func (e *env) startPlain(dir string) (*proc, string, error) {
	p, err := startProc(e.logs, "plaindav", e.bins.plain, "-dir", dir, "-user", user, "-pass", pass)
	if err != nil {
		return nil, "", err
	}
	line, err := p.firstLine()
	if err == nil {
		err = waitHTTP(p, "OPTIONS", line+"/")
	}
	if err != nil {
		p.stop()
		return nil, "", err
	}
	return p, line, nil
}

// startRclone is `rclone serve webdav` over dir.
func (e *env) startRclone(dir string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc(e.logs, "rclone", "rclone", "--config", "/dev/null", "serve", "webdav", dir,
		"--addr", addr, "--user", user, "--pass", pass)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := waitHTTP(p, "OPTIONS", base+"/"); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, base, nil
}
