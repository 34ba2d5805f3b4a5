// Package redistest starts a real redis-server for tests: the shared-state
// code is tested against the engine it runs on, not a look-alike.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a redis-server listening on a unix socket in a temp folder.
type Server struct {
	URL  string // "unix:///…/redis.sock"
	Sock string
	cmd  *exec.Cmd
}

// Start runs redis-server for the test (stopped at its end). Without
// redis-server on PATH the test is skipped, or fails under CI=true,
// where .ci/run installs it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := StartServer(tb.TempDir())
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server: %v", err)
		}
		tb.Skipf("redis-server: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartServer runs redis-server with its socket and files in dir, no
// persistence, and waits until it accepts connections.
func StartServer(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("not installed (apt-get install redis-server): %w", err)
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var logged strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
		}
	}()
	s := &Server{URL: "unix://" + sock, Sock: sock, cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("did not start within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// Prefix is a fresh key prefix, so that tests sharing one server never see
// each other's keys.
func Prefix(tb testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t" + hex.EncodeToString(b) + ":"
}

// Context is a context for one test's Redis calls.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
