package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBrowserSafety: a folder URL without its slash redirects to the
// slash form (the listing's relative links resolve against it), and an
// uploaded page is served so that it cannot run script in the bridge's
// origin, where the browser sends the Basic credentials by itself.
func TestBrowserSafety(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		b.admin(t, "MKCOL", m.Path+"/web", nil)
		b.admin(t, "PUT", m.Path+"/web/page.html", []byte("<script>alert(1)</script>"))
		req, _ := http.NewRequest("GET", b.url+m.Path+"/web", nil)
		req.SetBasicAuth(adminUser, adminPass)
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != m.Path+"/web/" {
			t.Fatalf("GET of a folder without its slash: %d Location %q, want 301 to %s/web/", resp.StatusCode, resp.Header.Get("Location"), m.Path)
		}
		resp, _ = b.admin(t, "GET", m.Path+"/web/page.html", nil)
		if resp.StatusCode == http.StatusFound {
			return // redirect mounts send the browser to the provider's origin
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "sandbox" {
			t.Fatalf("an uploaded page is served with %q and %q, want nosniff and sandbox",
				resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("Content-Security-Policy"))
		}
		keep(m, "web/page.html", []byte("<script>alert(1)</script>"))
	})
}

// TestListenFlag: `bridge serve -listen ADDR` without a configuration file
// serves on ADDR (and so does BRIDGE_LISTEN, for containers).
func TestListenFlag(t *testing.T) {
	for _, how := range []string{"flag", "env"} {
		t.Run(how, func(t *testing.T) {
			addr, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := []string{"serve"}
			env := append(os.Environ(), "BRIDGE_PASSWORD=listen-pass")
			if how == "flag" {
				args = append(args, "-listen", addr)
			} else {
				env = append(env, "BRIDGE_LISTEN="+addr)
			}
			cmd := exec.CommandContext(ctx, bridgeBin, args...)
			cmd.Dir, cmd.Env = t.TempDir(), env
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
			var status int
			for range 100 {
				req, _ := http.NewRequest("PROPFIND", fmt.Sprintf("http://%s/local/", addr), nil)
				req.SetBasicAuth("admin", "listen-pass")
				req.Header.Set("Depth", "0")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
					status = resp.StatusCode
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if status != http.StatusMultiStatus {
				t.Fatalf("PROPFIND on -listen %s: %d\n%s", addr, status, strings.TrimSpace(out.String()))
			}
		})
	}
}
