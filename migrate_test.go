package main

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"bridge/cluster"
	"bridge/cluster/redistest"
	"bridge/davfs/deadprops"
)

// A single process's state_dir goes into Redis and comes back the same:
// tokens, sessions and dead properties with kept times.
func TestMigrateStateToRedisAndBack(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	shared := "shared_state = \"" + srv.URL + "\"\nshared_prefix = \"" + prefix + "\"\n"
	c, dir := testConfig(t, shared)
	mountDir := mountStateDir(c.Server.StateDir, "/local")
	os.MkdirAll(mountDir, 0o700)
	token := `{"access_token":"at","refresh_token":"rt","expiry":"2030-01-01T00:00:00Z"}`
	os.WriteFile(filepath.Join(mountDir, "token.json"), []byte(token), 0o600)
	props, err := deadprops.Open(filepath.Join(c.Server.StateDir, "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	name := xml.Name{Space: "urn:x", Local: "color"}
	if err := props.Patch("/local/a.txt", []webdav.Proppatch{{Props: []webdav.Property{{XMLName: name, InnerXML: []byte("blue")}}}}); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	props.SetModTime("/local/a.txt", when, 42)
	props.Close()

	file := filepath.Join(dir, "c.toml")
	if code, out, errOut := runCLI(t, "", "migrate-state", "-config", file, "-to", "redis"); code != 0 {
		t.Fatalf("to redis: exit %d\n%s%s", code, out, errOut)
	} else if !strings.Contains(out, "copied 1 token and session records of 1 mounts and 2 property records") {
		t.Fatalf("summary: %q", out)
	}
	r, err := cluster.Open(context.Background(), srv.URL, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.MountState("/local").Load(context.Background(), "token.json"); err != nil || string(b) != token {
		t.Fatalf("token in redis: %q %v", b, err)
	}
	rs := deadprops.OpenRedis(r)
	if p, err := rs.Get("/local/a.txt"); err != nil || string(p[name].InnerXML) != "blue" {
		t.Fatalf("property in redis: %v %v", p, err)
	}
	if mt, ok, err := rs.ModTimeAt("/local/a.txt"); err != nil || !ok || !mt.Time.Equal(when) {
		t.Fatalf("kept time in redis: %v %v %v", mt, ok, err)
	}

	// A different token in the destination is not overwritten silently.
	os.WriteFile(filepath.Join(mountDir, "token.json"), []byte(`{"refresh_token":"other"}`), 0o600)
	if code, _, errOut := runCLI(t, "", "migrate-state", "-config", file, "-to", "redis"); code != 1 ||
		!strings.Contains(errOut, "different token.json") {
		t.Fatalf("conflict: exit %d %s", code, errOut)
	}

	// Back into a fresh state_dir.
	src, _ := os.ReadFile(file)
	fresh := filepath.Join(dir, "state2")
	os.WriteFile(file, []byte(strings.Replace(string(src), c.Server.StateDir, fresh, 1)), 0o600)
	if code, out, errOut := runCLI(t, "", "migrate-state", "-config", file, "-to", "dir"); code != 0 {
		t.Fatalf("to dir: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(mountStateDir(fresh, "/local"), "token.json")); string(b) != token {
		t.Fatalf("token back on disk: %q", b)
	}
	back, err := deadprops.Open(filepath.Join(fresh, "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if p, err := back.Get("/local/a.txt"); err != nil || string(p[name].InnerXML) != "blue" {
		t.Fatalf("property back on disk: %v %v", p, err)
	}
	if mt, ok, _ := back.ModTimeAt("/local/a.txt"); !ok || !mt.Time.Equal(when) || mt.Size != 42 {
		t.Fatalf("kept time back on disk: %v %v", mt, ok)
	}

	if code, _, _ := runCLI(t, "", "migrate-state", "-config", file); code != 2 {
		t.Fatalf("without -to: exit %d, want 2", code)
	}
}
