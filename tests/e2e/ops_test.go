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
			`bridge_provider_calls_total{mount="` + m.Path + `",op="put",result="ok"}`,
			`bridge_provider_calls_total{mount="` + m.Path + `",op="list",result="ok"}`,
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
		if strings.Contains(text, adminPass) {
			t.Fatal("a password in the metrics")
		}
	})
}
