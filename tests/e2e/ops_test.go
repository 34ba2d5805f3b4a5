package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestHealthz(t *testing.T) {
	b := theBridge(t)
	resp, body := b.request(t, "", "", "GET", "/healthz", nil)
	var h struct {
		Status string
		Mounts []struct {
			Path string
			OK   bool
		}
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" {
		t.Fatalf("healthz: %d %s (%v)", resp.StatusCode, body, err)
	}
	if len(h.Mounts) != len(b.mounts)+1 {
		t.Fatalf("healthz lists %d mounts: %s", len(h.Mounts), body)
	}
	for _, m := range h.Mounts {
		if !m.OK {
			t.Fatalf("mount %s not ok: %s", m.Path, body)
		}
	}
}

func TestMetrics(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		b.admin(t, "PUT", m.Path+"/metrics-probe.txt", []byte("12345"))
		b.admin(t, "PROPFIND", m.Path+"/", nil, "Depth", "1")
		b.admin(t, "PROPFIND", m.Path+"/", nil, "Depth", "1")
		b.request(t, adminUser, "wrong-password", "GET", m.Path+"/", nil)
		resp, body := b.request(t, "", "", "GET", "/metrics", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("metrics: %d", resp.StatusCode)
		}
		text := string(body)
		for _, want := range []string{
			`bridge_requests_total{method="PROPFIND",status="207"}`,
			`bridge_requests_total{method="PUT",status="201"}`,
			`bridge_request_duration_seconds_bucket{method="PROPFIND"`,
			`bridge_driver_calls_total{mount="` + m.Path + `",op="put",result="ok"}`,
			`bridge_driver_calls_total{mount="` + m.Path + `",op="list",result="ok"}`,
			`bridge_listing_cache_lookups_total{result="hit"}`,
			`bridge_listing_cache_lookups_total{result="miss"}`,
			`bridge_bytes_total{direction="in"}`,
			`bridge_bytes_total{direction="out"}`,
			`bridge_uploads_in_flight 0`,
			`bridge_login_failures_total`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if m.Driver != "local" {
			// Provider HTTP requests, counted as the provider sees them.
			for _, op := range []string{"put", "list"} {
				if want := `bridge_provider_calls_total{mount="` + m.Path + `",op="` + op + `",result="ok"}`; !strings.Contains(text, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		} else if strings.Contains(text, `bridge_provider_calls_total{mount="`+m.Path+`"`) {
			t.Error("a local mount is counted as making provider requests")
		}
		if strings.Contains(text, adminPass) {
			t.Fatal("a password in the metrics")
		}
	})
}

// TestExplorerEmptyThenContent replays what Windows Explorer does when a
// file is dropped on a mapped drive: PUT of 0 bytes, LOCK, PROPPATCH of its
// Win32 times, PUT of the content under the lock, UNLOCK.
func TestExplorerEmptyThenContent(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		p := m.Path + "/explorer%20doc.txt"
		if resp, _ := b.admin(t, "PUT", p, []byte{}); resp.StatusCode != 201 {
			t.Fatalf("empty PUT: %d", resp.StatusCode)
		}
		lock := `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>explorer</D:href></D:owner></D:lockinfo>`
		resp, _ := b.admin(t, "LOCK", p, []byte(lock), "Timeout", "Second-3600")
		token := resp.Header.Get("Lock-Token")
		if resp.StatusCode != 200 || token == "" {
			t.Fatalf("LOCK: %d %q", resp.StatusCode, token)
		}
		patch := `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>` +
			`<Z:Win32CreationTime>Thu, 02 Jan 2020 03:04:05 GMT</Z:Win32CreationTime>` +
			`<Z:Win32LastModifiedTime>Thu, 02 Jan 2020 03:04:05 GMT</Z:Win32LastModifiedTime>` +
			`<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`
		resp, body := b.admin(t, "PROPPATCH", p, []byte(patch), "If", "("+token+")")
		if resp.StatusCode != 207 || strings.Contains(string(body), "403") {
			t.Fatalf("PROPPATCH: %d %s", resp.StatusCode, body)
		}
		if resp, _ := b.admin(t, "PUT", p, []byte("the real content"), "If", "("+token+")"); resp.StatusCode != 204 && resp.StatusCode != 201 {
			t.Fatalf("content PUT: %d", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "UNLOCK", p, nil, "Lock-Token", token); resp.StatusCode != 204 {
			t.Fatalf("UNLOCK: %d", resp.StatusCode)
		}
		resp, body = b.get(t, adminUser, adminPass, p)
		if resp.StatusCode != 200 || string(body) != "the real content" {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
		if m.Backing != nil {
			if got, err := m.Backing("explorer doc.txt"); err != nil || string(got) != "the real content" {
				t.Fatalf("behind the bridge: %q %v", got, err)
			}
		}
	})
}
