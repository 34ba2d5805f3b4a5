package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKilledBridgesBufferIsRemovedAtTheNextStart: a bridge SIGKILLed in
// the middle of an upload leaves its buffer behind; the next bridge on the
// same temp_dir removes it, even when the buffer's name holds a pid that is
// alive again (reused), since a buffer belongs to whoever holds its lock.
func TestKilledBridgesBufferIsRemovedAtTheNextStart(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	mounts := []Mount{{Path: "/local", Driver: "local", Setup: func() (map[string]any, error) { return map[string]any{"root": root}, nil }}}
	b, err := startBridge(dir, mounts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An upload that never ends: 1 MiB of an announced 8 MiB.
	host := strings.TrimPrefix(b.url, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth, _ := http.NewRequest("PUT", b.url, nil)
	auth.SetBasicAuth(adminUser, adminPass)
	fmt.Fprintf(conn, "PUT /local/big.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n", host, auth.Header.Get("Authorization"), 8<<20)
	conn.Write(make([]byte, 1<<20))
	tmp := filepath.Join(dir, "tmp")
	var buffers []string
	for range 100 {
		buffers, _ = filepath.Glob(filepath.Join(tmp, "bridge-put-*"))
		if len(buffers) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(buffers) != 1 {
		t.Fatalf("upload buffers while the upload runs: %v", buffers)
	}
	b.cmd.Process.Kill()
	<-b.exited
	// Its pid may be anyone's now: give the buffer a live one (ours).
	reused := filepath.Join(tmp, fmt.Sprintf("bridge-put-%d-left", os.Getpid()))
	if err := os.Rename(buffers[0], reused); err != nil {
		t.Fatal(err)
	}
	b2, err := startBridge(dir, mounts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.stop()
	if _, err := os.Stat(reused); !os.IsNotExist(err) {
		t.Fatalf("the killed bridge's buffer survived the next start: %v", err)
	}
}
