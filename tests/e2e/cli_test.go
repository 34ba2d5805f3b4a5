package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestCLI drives the binary's other commands as an operator does when
// setting the bridge up.
func TestCLI(t *testing.T) {
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		// Bounded: a serve that wrongly starts must not hang the run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bridgeBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("", "version"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("version: %v %q", err, out)
	}
	for _, in := range []string{"pass word 1\n", "pass word 1"} {
		out, err := run(in, "hash-password")
		hash := strings.TrimSpace(out)
		if err != nil || bcrypt.CompareHashAndPassword([]byte(hash), []byte("pass word 1")) != nil {
			t.Errorf("hash-password with %q on stdin: %v %q does not verify", in, err, out)
		}
	}
	// The configuration the shared bridge runs on passes; a broken one
	// fails, naming its line, and serve refuses it too.
	startShared(t)
	if out, err := run("", "check-config", filepath.Join(workDir, "config.toml")); err != nil {
		t.Errorf("check-config on the running configuration: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[server]\nlisten = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run("", "check-config", bad); err == nil || !strings.Contains(out, "line 2") {
		t.Errorf("check-config on a broken file: %v %q, want a failure naming line 2", err, out)
	}
	if out, err := run("", "serve", "-config", bad); err == nil {
		t.Errorf("serve with a broken file started: %q", out)
	}
}
