package deadprops

import (
	"encoding/xml"
	"path/filepath"
	"testing"

	"golang.org/x/net/webdav"
)

func prop(local, val string) webdav.Property {
	return webdav.Property{XMLName: xml.Name{Space: "urn:t", Local: local}, InnerXML: []byte(val)}
}

func set(t *testing.T, s *Store, path string, props ...webdav.Property) {
	t.Helper()
	if err := s.Patch(path, []webdav.Proppatch{{Props: props}}); err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, s *Store, path, local string) string {
	t.Helper()
	m, err := s.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(m[xml.Name{Space: "urn:t", Local: local}].InnerXML)
}

func TestPropsFollowMoveCopyDelete(t *testing.T) {
	file := filepath.Join(t.TempDir(), "props.db")
	s, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	set(t, s, "/m/a", prop("p", "dir"))
	set(t, s, "/m/a/f", prop("p", "file"), prop("q", "2"))
	set(t, s, "/m/ab", prop("p", "sibling"))
	if err := s.Patch("/m/a/f", []webdav.Proppatch{{Remove: true, Props: []webdav.Property{prop("q", "")}}}); err != nil {
		t.Fatal(err)
	}
	if v := value(t, s, "/m/a/f", "q"); v != "" {
		t.Fatalf("removed property still there: %q", v)
	}
	if err := s.Copy("/m/a", "/m/c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Move("/m/a", "/m/b"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/m/b": "dir", "/m/b/f": "file", "/m/c/f": "file", "/m/a/f": "", "/m/ab": "sibling"} {
		if got := value(t, s, path, "p"); got != want {
			t.Fatalf("%s: %q, want %q", path, got, want)
		}
	}
	if err := s.Delete("/m/b"); err != nil {
		t.Fatal(err)
	}
	if value(t, s, "/m/b/f", "p") != "" || value(t, s, "/m/ab", "p") != "sibling" {
		t.Fatal("delete took the wrong keys")
	}
	s.Close()
	s, err = Open(file) // properties survive a restart
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if value(t, s, "/m/c", "p") != "dir" {
		t.Fatal("lost across reopen")
	}
}
