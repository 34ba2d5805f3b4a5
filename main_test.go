package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHashPassword(t *testing.T) {
	code, out, _ := runCLI(t, "hunter2\n", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("hunter2")); err != nil {
		t.Fatalf("hash %q does not match: %v", out, err)
	}
	if code, _, _ := runCLI(t, "\n", "hash-password"); code != 2 {
		t.Fatalf("empty password: exit %d, want 2", code)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	code, out, errOut := runCLI(t, "", "check-config", "config.example.toml")
	if code != 0 {
		t.Fatalf("config.example.toml: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCheckConfigReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.toml")
	src := `[server]
listen = "127.0.0.1:1"
[[users]]
name = "a"
password_hash = "nope"
mounts = ["*"]
[[mounts]]
path = "/l"
driver = "local"
[mounts.options]
rooot = "/tmp"
[[mounts]]
path = "/l"
driver = "local"
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "", "check-config", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"line 5: users[0].password_hash", `line 13: mounts[1].path: duplicate mount path "/l"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// Options are checked once the file itself is sound.
	src = strings.Replace(strings.Replace(src, `"nope"`, `"$2a$04$abcdefghijklmnopqrstuu5vO.R6BZhNGuuX6pDk6YVyRMbB8Z8zGK"`, 1), "path = \"/l\"\ndriver = \"local\"\n", "path = \"/m\"\ndriver = \"local\"\n", 1)
	os.WriteFile(file, []byte(src), 0o600)
	code, out, _ = runCLI(t, "", "check-config", file)
	if code != 1 || !strings.Contains(out, "line 11: mounts[0].options.rooot: unknown key for driver local") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	if code, out, _ := runCLI(t, "", "version"); code != 0 || !strings.HasPrefix(out, "bridge ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "", "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
