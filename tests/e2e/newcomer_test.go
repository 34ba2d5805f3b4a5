package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNewcomerRunsTheReadme follows the README on a fresh clone: `go run .`
// (with -listen, which the README gives for a busy port), then reaches the
// share with the password the bridge printed. It needs the repository to
// be a git clone with its history, as CI's checkout is.
func TestNewcomerRunsTheReadme(t *testing.T) {
	readme, err := os.ReadFile(repoRoot() + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"go run .\n", "go run . -listen 127.0.0.1:9090"} {
		if !strings.Contains(string(readme), step) {
			t.Fatalf("the README no longer says %q: update this test with it", strings.TrimSpace(step))
		}
	}
	clone := t.TempDir()
	if out, err := exec.Command("git", "clone", "--quiet", repoRoot(), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", ".", "-listen", addr)
	cmd.Dir = clone
	cmd.Env = os.Environ()
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, "BRIDGE_") {
			cmd.Env[i] = "IGNORED_" + kv // the README's defaults, not the test's
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	start := time.Now()
	cmd.WaitDelay = 10 * time.Second
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		interruptGroup(cmd) // Ctrl-C reaches `go run` and the bridge it started
		cmd.Wait()
	}()
	password := ""
	printed := regexp.MustCompile(`user admin, password (\S+)`)
	urlLine := regexp.MustCompile(`serving ./data at (http://\S+)`)
	url := ""
	sc := bufio.NewScanner(stdout)
	for password == "" && sc.Scan() {
		if m := urlLine.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
		if m := printed.FindStringSubmatch(sc.Text()); m != nil {
			password = m[1]
		}
	}
	go io.Copy(io.Discard, stdout)
	if password == "" || url != "http://"+addr+"/local/" {
		t.Fatalf("the bridge printed no password, or another address than -listen's (%q); log:\n%s", url, logs.String())
	}
	t.Logf("the password was printed %v after go run started", time.Since(start))
	status := 0
	for range 300 {
		req, _ := http.NewRequest("PROPFIND", url, nil)
		req.SetBasicAuth("admin", password)
		req.Header.Set("Depth", "0")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			status = resp.StatusCode
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != http.StatusMultiStatus {
		t.Fatalf("PROPFIND with the printed password: %d after %v; log:\n%s", status, time.Since(start), logs.String())
	}
	if _, err := os.Stat(clone + "/data"); err != nil {
		t.Fatalf("./data was not made in the clone: %v", err)
	}
	if out, _ := exec.Command("git", "-C", clone, "status", "--porcelain").Output(); len(out) != 0 {
		t.Fatalf("running the README's command left untracked files in the clone:\n%s", out)
	}
}
