package deadprops

import (
	"encoding/xml"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"bridge/cluster/redistest"
)

// bridge migrate-state: props.db into Redis and back out into a new
// props.db loses nothing, whatever the names and values.
func TestMigrateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	orig, err := Open(filepath.Join(dir, "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	at := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)
	odd := webdav.Property{XMLName: xml.Name{Space: "", Local: "bare"}, Lang: "fr", InnerXML: []byte("<a:x xmlns:a=\"u\">é\x00</a:x>")}
	empty := webdav.Property{XMLName: xml.Name{Space: "urn:t", Local: "empty"}}
	for i, p := range []string{"/", "/m", "/m/a", "/m/a/b c", "/m/a*/[x]?", `/m/a\b`, "/m/a-b", "/m/日本"} {
		set(t, orig, p, prop("p", p), odd, empty)
		if err := orig.SetModTime(p, at.Add(time.Duration(i)), int64(i)<<40); err != nil {
			t.Fatal(err)
		}
		if err := orig.SetPatchedTime(p+"/new", at.Add(-time.Duration(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := orig.SetModTime("/m/neg", time.Unix(-5, 7), 0); err != nil {
		t.Fatal(err)
	}

	srv := redistest.Start(t)
	red := instances(t, srv, 1)[0]
	n, err := CopyAll(red, orig)
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, orig)
	if n != len(want) || len(want) != 8*3+1 {
		t.Fatalf("copied %d records of %d", n, len(want))
	}
	if got := dump(t, red); !reflect.DeepEqual(got, want) {
		t.Fatalf("in Redis:\n got %v\nwant %v", got, want)
	}

	back, err := Open(filepath.Join(dir, "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if n, err := CopyAll(back, red); err != nil || n != len(want) {
		t.Fatalf("back: %d records, %v", n, err)
	}
	if got := dump(t, back); !reflect.DeepEqual(got, want) {
		t.Fatalf("back in bbolt:\n got %v\nwant %v", got, want)
	}
	// And the copy answers as the original does.
	for _, s := range []Props{red, back} {
		m, err := s.Get("/m/a*/[x]?")
		if err != nil || !reflect.DeepEqual(m[odd.XMLName], odd) || len(m) != 3 {
			t.Fatalf("%T: Get: %v %v", s, m, err)
		}
		if mt, ok, _ := s.ModTimeAt("/m/neg"); !ok || !mt.Time.Equal(time.Unix(-5, 7)) {
			t.Fatalf("%T: negative time: %v %v", s, mt, ok)
		}
		if pt, ok, _ := s.PatchedTime("/m/日本/new"); !ok || !pt.Equal(at.Add(-7)) {
			t.Fatalf("%T: patched time: %v %v", s, pt, ok)
		}
	}
}

func TestImportRefusesAnAmbiguousRecord(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "props.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Unix(1, 0)
	for _, rec := range []Record{{Path: "/a"}, {Path: "/a", ModTime: &ModTime{Time: at}, Patched: &at}} {
		if err := s.Import(rec); err == nil {
			t.Fatalf("imported %+v", rec)
		}
	}
	if d := dump(t, s); len(d) != 0 {
		t.Fatalf("stored %v", d)
	}
}
