package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHostileProvidersLoseNothing drives rclone through each mount whose
// fake runs the hostile profile (60-second tokens and links, a rate limit
// every endpoint enforces, a rate-limited token endpoint, 5xx, cut
// downloads, a restart first): a tree holding a 40 MB file is copied and
// checked byte for byte, and not one 5xx reaches rclone (which is run with
// a single try, so any would fail it).
func TestHostileProvidersLoseNothing(t *testing.T) {
	b := startShared(t)
	for _, m := range b.mounts {
		if m.Faults == nil {
			continue
		}
		t.Run(strings.TrimPrefix(m.Path, "/"), func(t *testing.T) {
			watch(t, b)
			m.Faults.Restart()
			before := m.Faults.Injected()
			from := len(b.logs.String())
			// Besides the random faults, for certain: a download cut half
			// way, and a request for a download link answered 502 (both
			// fakes name those endpoints so).
			m.Faults.Cut("dl", 1)
			m.Faults.Fail("download", http.StatusBadGateway, 1)
			calls := m.Faults.Calls()

			src := t.TempDir()
			files := map[string][]byte{
				"big.bin":        randomBytes(40 << 20),
				"a.txt":          []byte("a"),
				"sub/b.txt":      []byte("bee"),
				"sub/deeper.bin": randomBytes(300 << 10),
			}
			writeTree(t, src, files)
			if out, err := rclone(t, b, m, "copy", "--transfers", "8", src, "b:hostile"); err != nil {
				t.Fatalf("copy: %v\n%s", err, out)
			}
			out, err := rclone(t, b, m, "check", "--download", src, "b:hostile")
			if err != nil || !strings.Contains(out, "0 differences found") {
				t.Fatalf("check --download: %v\n%s", err, out)
			}
			if m.Backing != nil {
				for name, want := range files {
					if got, err := m.Backing("hostile/" + name); err != nil || !bytes.Equal(got, want) {
						t.Fatalf("%s behind the bridge: %v, %d bytes, want %d", name, err, len(got), len(want))
					}
				}
			}
			for name, data := range files {
				keep(m, "hostile/"+name, data)
			}

			for _, line := range strings.Split(b.logs.String()[from:], "\n") {
				var rec struct {
					Msg    string `json:"message"`
					Path   string `json:"path"`
					Status int    `json:"status"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" &&
					strings.HasPrefix(rec.Path, m.Path+"/") && rec.Status >= 500 {
					t.Errorf("a %d reached the client: %s", rec.Status, line)
				}
			}
			t.Logf("random failures: %v during the test, %v before", m.Faults.Injected(), before)
			for _, ep := range []string{"dl", "download"} {
				if m.Faults.Calls()[ep] == calls[ep] {
					t.Fatalf("no %s call during the test: its scripted fault did not fire", ep)
				}
			}
		})
	}
}
