package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"bridge/tests/demo/fakemounts"
)

// demoMount is a "mount /NAME: URL" line of the demo's output; demoTemp
// its last line, naming the folder Ctrl-C removes.
var (
	demoMount = regexp.MustCompile(`^mount (/\S+): (http://\S+)/ `)
	demoTemp  = regexp.MustCompile(`^demo: Ctrl-C stops the bridge and the fakes and removes (\S+)$`)
)

// TestDemo runs the one-command demo (tests/demo) as a user would, drives
// every mount it prints with rclone, and stops it with SIGINT: it must exit
// cleanly and take its temporary folder with it. The demo binary is built
// rather than run with `go run`, which would not pass SIGINT on.
func TestDemo(t *testing.T) {
	needTool(t, "rclone")
	dir := t.TempDir()
	demoBin := filepath.Join(dir, "demo")
	build := exec.Command("go", "build", "-o", demoBin, "./tests/demo")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v\n%s", err, out)
	}
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp") // the demo's TMPDIR, to check it is left clean
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(demoBin, "-listen", addr)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "BRIDGE_PASSWORD="+adminPass, "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64) // the demo prints a handful: never blocks the reader
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after the pipe is drained, as Wait requires
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("demo log (last 40 lines):\n%s", lastLines(logs.String(), 40))
		}
	})

	mounts := map[string]string{}
	var tempDir string
	deadline := time.After(3 * time.Minute) // it builds the bridge first
	for tempDir == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before it was ready: %v", <-exited)
			}
			if m := demoMount.FindStringSubmatch(line); m != nil {
				mounts[m[1]] = m[2]
			}
			if m := demoTemp.FindStringSubmatch(line); m != nil {
				tempDir = m[1]
			}
		case <-deadline:
			t.Fatal("the demo printed no ready line within 3 min")
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()

	var got, want []string
	for p := range mounts {
		got = append(got, p)
	}
	for _, n := range append(fakemounts.Names(), "local") {
		want = append(want, "/"+n)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("demo mounts %v, want one per provider fake and /local: %v", got, want)
	}

	b := &bridge{url: "http://" + addr}
	for path, url := range mounts {
		if url != b.url+path {
			t.Errorf("mount %s printed as %s, want %s", path, url, b.url+path)
		}
		resp, _ := b.admin(t, "PUT", path+"/demo.txt", []byte("hello demo"))
		if resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Errorf("PUT %s/demo.txt: %d", path, resp.StatusCode)
		}
		out, err := rclone(t, b, Mount{Path: path}, "lsjson", "b:")
		if err != nil {
			t.Errorf("rclone lsjson %s: %v\n%s", path, err, out)
			continue
		}
		var entries []struct {
			Name string
			Size int64
		}
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Errorf("rclone lsjson %s: %v\n%s", path, err, out)
			continue
		}
		if len(entries) != 1 || entries[0].Name != "demo.txt" || entries[0].Size != int64(len("hello demo")) {
			t.Errorf("rclone lsjson %s: %+v, want demo.txt of 10 bytes", path, entries)
		}
	}

	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the demo exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo still ran 30 s after SIGINT")
	}
	if _, err := os.Stat(tempDir); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary folder %s is still there: %v", tempDir, err)
	}
	left, _ := os.ReadDir(tmp)
	for _, e := range left {
		t.Errorf("left in TMPDIR: %s", e.Name())
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("the bridge did not report a clean stop")
	}
}

// TestDemoConfigOut: the configuration `fakeprovider -config-out` writes
// serves its fake's mount through the bridge as it is (only -listen moved
// to a free port), for every provider.
func TestDemoConfigOut(t *testing.T) {
	needTool(t, "rclone")
	dir := t.TempDir()
	fakeBin := filepath.Join(dir, "fakeprovider")
	build := exec.Command("go", "build", "-o", fakeBin, "./tests/fakeprovider")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fakeprovider: %v\n%s", err, out)
	}
	for _, name := range fakemounts.Names() {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bridge.toml")
			fake := exec.Command(fakeBin, "-provider", name, "-config-out", file)
			fake.Env = append(os.Environ(), "BRIDGE_PASSWORD="+adminPass)
			fakeOut, err := fake.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			fakeLog := &syncBuffer{}
			fake.Stderr = fakeLog
			dieWithTest(fake)
			if err := fake.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fake.Process.Kill(); fake.Wait() })
			// The JSON line comes first, the file is written right after it
			// and announced on stderr.
			if !bufio.NewScanner(fakeOut).Scan() {
				t.Fatalf("fakeprovider printed nothing; log:\n%s", fakeLog.String())
			}
			for i := 0; !strings.Contains(fakeLog.String(), "wrote "+file); i++ {
				if i == 100 {
					t.Fatalf("fakeprovider did not write %s; log:\n%s", file, fakeLog.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			addr, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			cmd := exec.Command(bridgeBin, "serve", "-config", file, "-listen", addr)
			cmd.Stdout, cmd.Stderr = logs, logs
			dieWithTest(cmd)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			b := &bridge{url: "http://" + addr, cmd: cmd, logs: logs, exited: make(chan struct{})}
			go func() { b.waitErr = cmd.Wait(); close(b.exited) }()
			t.Cleanup(func() {
				if err := b.stop(); err != nil {
					t.Errorf("bridge stop: %v\n%s", err, b.logTail(20))
				}
			})
			var out string
			for i := 0; ; i++ {
				if out, err = rclone(t, b, Mount{Path: "/" + name}, "lsjson", "b:"); err == nil {
					break
				}
				if i == 50 {
					t.Fatalf("rclone lsjson /%s: %v\n%s\nbridge log:\n%s", name, err, out, b.logTail(20))
				}
				time.Sleep(200 * time.Millisecond)
			}
			var entries []json.RawMessage
			if err := json.Unmarshal([]byte(out), &entries); err != nil {
				t.Errorf("rclone lsjson /%s: %v\n%s", name, err, out)
			}
		})
	}
}
