package e2e

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
)

// TestZZLogsHoldNoSecrets reads the whole log after every other test (tests
// run in file order, and this file sorts last).
func TestZZLogsHoldNoSecrets(t *testing.T) {
	b := theBridge(t)
	logs := b.logs.String()
	if !strings.Contains(logs, `"method":"PROPFIND"`) || !strings.Contains(logs, `"user":"admin"`) {
		t.Fatalf("request log lines missing:\n%.2000s", logs)
	}
	secrets := append([]string{adminPass, readerPass, limitedPass, "Basic ", "Authorization", "sig=", "sign="}, providerSecrets...)
	for _, m := range b.mounts {
		if m.Secrets != nil {
			secrets = append(secrets, m.Secrets()...) // every token handed out during the run
		}
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

// TestZZNothingLost runs after every client (litmus, rclone, curl, ffprobe):
// each file a test left in place must still be byte-identical behind the
// bridge and through it.
func TestZZNothingLost(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		kept.Lock()
		files := kept.files[m.Path]
		kept.Unlock()
		if len(files) == 0 {
			t.Fatal("no test recorded a file to keep on this mount")
		}
		for rel, want := range files {
			if m.Backing != nil && !(m.PendingEmpties && len(want) == 0) {
				if got, err := m.Backing(rel); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s behind the bridge: %v, %d bytes, want %d", rel, err, len(got), len(want))
				}
			}
			resp, got := b.get(t, adminUser, adminPass, m.Path+"/"+escapePath(rel))
			if resp.StatusCode != 200 || !bytes.Equal(got, want) {
				t.Errorf("GET %s: %d, %d bytes, want %d", rel, resp.StatusCode, len(got), len(want))
			}
		}
	})
}

// escapePath percent-encodes each segment of a slash-separated path.
func escapePath(rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
