// Command compare serves the same data side by side with the bridge (local
// mount), `rclone serve webdav` and a plain golang.org/x/net/webdav.Dir
// handler, measures each, and prints the figures and the bridge's ratios.
// Run it through tests/bench/compare.sh, which builds the bridge and
// installs rclone and wrk.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/webdav"
)

const user, pass = "bench", "bench-pass"

type server struct {
	name string
	url  string // base URL of the data folder
	pid  int    // 0 when in-process
	stop func()
}

func main() {
	bridgeBin := flag.String("bridge", "", "bridge binary")
	files := flag.Int("files", 10000, "files in the big folder")
	size := flag.Int64("size", 1<<30, "size of the GET and PUT file")
	ranges := flag.Int("ranges", 200, "random 64 KiB range GETs")
	wrkSecs := flag.Int("wrk", 5, "seconds of wrk per server (0: skip)")
	flag.Parse()
	if *bridgeBin == "" {
		fail(fmt.Errorf("-bridge is required"))
	}
	work, err := os.MkdirTemp("", "bridge-bench-*")
	fail(err)
	defer os.RemoveAll(work)

	// One data folder per server, the same content in each, so that PUTs
	// and caches do not interfere.
	var servers []*server
	for _, name := range []string{"bridge", "rclone", "webdav.Dir"} {
		dir := filepath.Join(work, strings.ReplaceAll(name, ".", "-"))
		fail(makeData(dir, *files, *size))
		var s *server
		switch name {
		case "bridge":
			s, err = startBridge(*bridgeBin, work, dir)
		case "rclone":
			s, err = startRclone(dir)
		default:
			s, err = startPlain(dir)
		}
		fail(err)
		defer s.stop()
		servers = append(servers, s)
	}

	type row struct {
		name    string
		unit    string
		higher  bool // higher is better
		results map[string]float64
	}
	var rows []*row
	add := func(name, unit string, higher bool) *row {
		r := &row{name: name, unit: unit, higher: higher, results: map[string]float64{}}
		rows = append(rows, r)
		return r
	}
	cold := add(fmt.Sprintf("PROPFIND Depth 1, %d files, cold", *files), "ms", false)
	warm := add(fmt.Sprintf("PROPFIND Depth 1, %d files, warm (median of 5)", *files), "ms", false)
	get := add(fmt.Sprintf("GET %d MiB (curl, best of 3)", *size>>20), "MiB/s", true)
	rng := add(fmt.Sprintf("%d random 64 KiB range GETs", *ranges), "ms", false)
	put := add(fmt.Sprintf("PUT %d MiB", *size>>20), "MiB/s", true)
	rss := add(fmt.Sprintf("peak RSS after the PUT of %d MiB", *size>>20), "MiB", false)
	rps := add(fmt.Sprintf("PROPFIND Depth 0, 32 connections (wrk, %d s)", *wrkSecs), "req/s", true)

	for _, s := range servers {
		cold.results[s.name] = ms(timeIt(func() { must(propfind(s.url+"/many/", "1")) }))
		var warms []float64
		for i := 0; i < 5; i++ {
			warms = append(warms, ms(timeIt(func() { must(propfind(s.url+"/many/", "1")) })))
		}
		sort.Float64s(warms)
		warm.results[s.name] = warms[2]
		for i := 0; i < 3; i++ { // best of three: this VM's I/O varies
			mibs, err := download(s.url+"/big.bin", *size)
			fail(err)
			get.results[s.name] = max(get.results[s.name], mibs)
		}
		rng.results[s.name] = ms(timeIt(func() { must(randomRanges(s.url+"/big.bin", *size, *ranges)) }))
		d := timeIt(func() { must(upload(s.url+"/upload.bin", *size)) })
		put.results[s.name] = float64(*size>>20) / d.Seconds()
		if s.pid != 0 {
			rss.results[s.name] = peakRSS(s.pid)
		}
		if *wrkSecs > 0 {
			v, err := wrk(s.url+"/many/", *wrkSecs)
			fail(err)
			rps.results[s.name] = v
		}
	}

	fmt.Printf("\n| measure | bridge | rclone serve webdav | webdav.Dir | bridge/rclone | bridge/webdav.Dir |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		b := r.results["bridge"]
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.name, fmtv(b, r.unit), fmtv(r.results["rclone"], r.unit),
			fmtv(r.results["webdav.Dir"], r.unit), ratio(b, r.results["rclone"]), ratio(b, r.results["webdav.Dir"]))
	}
	fmt.Println("\nRatios are bridge ÷ other: below 1 is better for times and RSS, above 1 for MiB/s and req/s.")
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func must(err error) { fail(err) }

func fmtv(v float64, unit string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func timeIt(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

// makeData writes the folder of many small files and a big sparse file.
func makeData(dir string, files int, size int64) error {
	many := filepath.Join(dir, "many")
	if err := os.MkdirAll(many, 0o755); err != nil {
		return err
	}
	for i := 0; i < files; i++ {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("photo-%05d.jpg", i)), []byte("x"), 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	fail(err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(url string) error {
	for i := 0; i < 200; i++ {
		req, _ := http.NewRequest("OPTIONS", url+"/", nil)
		req.SetBasicAuth(user, pass)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", url)
}

func startBridge(bin, work, dir string) (*server, error) {
	addr := freeAddr()
	hash, _ := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	cfg := fmt.Sprintf(`[server]
listen = %q
state_dir = %q
temp_dir = %q
log_level = "warn"
[[users]]
name = %q
password_hash = %q
mounts = ["*"]
[[mounts]]
path = "/data"
driver = "local"
[mounts.options]
root = %q
`, addr, filepath.Join(work, "state"), filepath.Join(dir, ".tmp"), user, hash, dir)
	file := filepath.Join(work, "bridge.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-config", file)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: "bridge", url: "http://" + addr + "/data", pid: cmd.Process.Pid, stop: func() { cmd.Process.Kill(); cmd.Wait() }}
	return s, waitReady("http://" + addr)
}

func startRclone(dir string) (*server, error) {
	addr := freeAddr()
	cmd := exec.Command("rclone", "--config", "/dev/null", "serve", "webdav", dir, "--addr", addr, "--user", user, "--pass", pass)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: "rclone", url: "http://" + addr, pid: cmd.Process.Pid, stop: func() { cmd.Process.Kill(); cmd.Wait() }}
	return s, waitReady(s.url)
}

func startPlain(dir string) (*server, error) {
	addr := freeAddr()
	h := &webdav.Handler{FileSystem: webdav.Dir(dir), LockSystem: webdav.NewMemLS()}
	srv := &http.Server{Addr: addr, Handler: h}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go srv.Serve(ln)
	s := &server{name: "webdav.Dir", url: "http://" + addr, stop: func() { srv.Shutdown(context.Background()) }}
	return s, waitReady(s.url)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

func send(req *http.Request) (*http.Response, error) {
	req.SetBasicAuth(user, pass)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s", req.Method, req.URL, resp.Status)
	}
	return resp, nil
}

func propfind(url, depth string) error {
	req, _ := http.NewRequest("PROPFIND", url, nil)
	req.Header.Set("Depth", depth)
	resp, err := send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// download fetches the file with curl, a client fast enough not to be
// what is measured (a Go client on the same two cores was), and returns
// MiB/s.
func download(url string, size int64) (float64, error) {
	out, err := exec.Command("curl", "-sS", "-u", user+":"+pass, "-o", "/dev/null",
		"-w", "%{http_code} %{size_download} %{speed_download}", url).Output()
	if err != nil {
		return 0, fmt.Errorf("curl %s: %v", url, err)
	}
	var code int
	var n, speed float64
	if _, err := fmt.Sscan(string(out), &code, &n, &speed); err != nil || code != 200 || int64(n) != size {
		return 0, fmt.Errorf("GET %s: %s", url, out)
	}
	return speed / (1 << 20), nil
}

func randomRanges(url string, size int64, n int) error {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < n; i++ {
		off := r.Int63n(size - 64<<10)
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+64<<10-1))
		resp, err := send(req)
		if err != nil {
			return err
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || got != 64<<10 {
			return fmt.Errorf("range GET: %d bytes, %v", got, err)
		}
	}
	return nil
}

// zeros is an endless reader of zero bytes (no disk on the client side).
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func upload(url string, size int64) error {
	req, _ := http.NewRequest("PUT", url, io.LimitReader(zeros{}, size))
	req.ContentLength = size
	resp, err := send(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func peakRSS(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
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

var reqPerSec = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)

// wrk measures PROPFIND Depth 0 throughput with 32 connections.
func wrk(url string, secs int) (float64, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return 0, nil
	}
	script := filepath.Join(os.TempDir(), "propfind.lua")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	lua := fmt.Sprintf("wrk.method = \"PROPFIND\"\nwrk.headers[\"Depth\"] = \"0\"\nwrk.headers[\"Authorization\"] = \"Basic %s\"\n", auth)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return 0, err
	}
	out, err := exec.Command("wrk", "-t2", "-c32", fmt.Sprintf("-d%ds", secs), "-s", script, url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	m := reqPerSec.FindSubmatch(out)
	if m == nil || bytes.Contains(out, []byte("Non-2xx")) {
		return 0, fmt.Errorf("wrk output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
