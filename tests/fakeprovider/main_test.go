package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bridge/config"
	"bridge/tests/demo/fakemounts"
)

// TestConfigOutLoads: the file -config-out writes is a configuration the
// bridge accepts as it is, for the printed password and the fake's mount.
func TestConfigOutLoads(t *testing.T) {
	// The driver names the bridge knows (main.driverNames, which a test
	// outside the bridge's main package cannot call).
	bridgeDrivers := append([]string{"local"}, fakemounts.Names()...)
	for _, name := range fakemounts.Names() {
		t.Run(name, func(t *testing.T) {
			t.Setenv("BRIDGE_PASSWORD", "config-out-pass")
			file := filepath.Join(t.TempDir(), "bridge.toml")
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			var stdout, stderr bytes.Buffer
			go func() {
				done <- run(ctx, []string{"-provider", name, "-config-out", file}, &stdout, &stderr, ready)
			}()
			var baseURL string
			select {
			case baseURL = <-ready:
			case err := <-done:
				t.Fatalf("run ended: %v\n%s", err, stderr.String())
			case <-time.After(10 * time.Second):
				t.Fatal("the fake did not start within 10 s")
			}
			c, err := config.Load(file, bridgeDrivers)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if len(c.Users) != 1 || c.Users[0].Name != fakemounts.User ||
				bcrypt.CompareHashAndPassword([]byte(c.Users[0].PasswordHash), []byte("config-out-pass")) != nil {
				t.Errorf("users = %+v, want one %s with the hash of BRIDGE_PASSWORD", c.Users, fakemounts.User)
			}
			if len(c.Mounts) != 1 || c.Mounts[0].Path != "/"+name || c.Mounts[0].Driver != name {
				t.Fatalf("mounts = %+v, want /%s with driver %s", c.Mounts, name, name)
			}
			found := false
			for _, v := range c.Mounts[0].Options {
				s, _ := v.(string)
				found = found || s == baseURL || strings.HasPrefix(s, baseURL+"/") // DiscCloud's api_base is BASE/api/v2/
			}
			if !found {
				t.Errorf("mount options %v do not reach the fake at %s", c.Mounts[0].Options, baseURL)
			}
			if !filepath.IsAbs(c.Server.StateDir) {
				t.Errorf("state_dir %q is relative: it would depend on where the bridge starts", c.Server.StateDir)
			}
			if !bytes.Contains(stdout.Bytes(), []byte(`"mount_options"`)) || bytes.Count(stdout.Bytes(), []byte("\n")) != 1 {
				t.Errorf("stdout is not the one JSON line: %q", stdout.String())
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
			if _, err := os.Stat(filepath.Dir(c.Server.StateDir)); !os.IsNotExist(err) {
				t.Errorf("the config's temporary folder outlived the fake: %v", err)
			}
		})
	}
}
