package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bridge/drivers"
)

// setup makes base/root (served) and base/secret.txt (outside), with
// symbolic links inside the root pointing out of it.
func setup(t *testing.T) (*Driver, string) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(base, "secret.txt")
	os.WriteFile(secret, []byte("SECRET"), 0o644)
	os.Symlink(secret, filepath.Join(root, "link-file"))
	os.Symlink(base, filepath.Join(root, "link-dir"))
	os.WriteFile(filepath.Join(root, "sub", "in.txt"), []byte("inside"), 0o644)
	os.Symlink("in.txt", filepath.Join(root, "sub", "link-inside"))
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, secret
}

func upload(data []byte) drivers.Upload {
	return drivers.Upload{Body: bytes.NewReader(data), Size: int64(len(data))}
}

func TestNothingOutsideTheRoot(t *testing.T) {
	d, secret := setup(t)
	ctx := context.Background()

	root, _ := d.List(ctx, drivers.Ref{Path: "/"})
	for _, o := range root {
		if o.Name == "link-file" || o.Name == "link-dir" {
			t.Fatalf("a link leading out of the root is listed: %+v", o)
		}
	}
	sub, _ := d.List(ctx, drivers.Ref{Path: "/sub"})
	if len(sub) != 2 {
		t.Fatalf("links inside the root should be listed: %+v", sub)
	}
	for _, p := range []string{"/link-file", "/../secret.txt", "/sub/../../secret.txt", "/link-dir/secret.txt"} {
		rc, err := d.Open(ctx, drivers.Ref{Path: p}, 0, -1)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) == "SECRET" {
				t.Fatalf("read the secret through %s", p)
			}
		}
	}
	if _, err := d.Put(ctx, drivers.Ref{Path: "/link-dir"}, "secret.txt", upload([]byte("overwritten"))); err == nil {
		t.Fatal("wrote through a link leading out of the root")
	}
	if err := d.Remove(ctx, drivers.Ref{Path: "/link-dir/secret.txt"}); err == nil {
		t.Fatal("removed through a link")
	}
	if _, err := d.Put(ctx, drivers.Ref{Path: "/"}, "../secret.txt", upload([]byte("x"))); !errors.Is(err, drivers.ErrInvalidName) {
		t.Fatalf("Put with .. in the name: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "SECRET" {
		t.Fatalf("the file outside the root changed: %q", b)
	}
}

func TestPutIsAtomicAndHidesItsTempFile(t *testing.T) {
	d, _ := setup(t)
	ctx := context.Background()
	if _, err := d.Put(ctx, drivers.Ref{Path: "/sub"}, "in.txt", drivers.Upload{Body: failingReader{}, Size: 100}); err == nil {
		t.Fatal("a failing upload succeeded")
	}
	rc, err := d.Open(ctx, drivers.Ref{Path: "/sub/in.txt"}, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "inside" {
		t.Fatalf("failed overwrite changed the file: %q", b)
	}
	entries, _ := os.ReadDir(filepath.Join(d.dir, "sub"))
	if len(entries) != 2 {
		t.Fatalf("temp file left behind: %v", entries)
	}
}

type failingReader struct{}

func (failingReader) ReadAt(p []byte, off int64) (int, error) { return 0, errors.New("disk on fire") }

func TestHashesOnlyWhileValid(t *testing.T) {
	d, _ := setup(t)
	ctx := context.Background()
	data := []byte("hello")
	up := upload(data)
	up.Hashes = drivers.Hashes{MD5: "5d41402abc4b2a76b9719d911017c592", SHA1: "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"}
	obj, err := d.Put(ctx, drivers.Ref{Path: "/"}, "h.txt", up)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Hashes != up.Hashes {
		t.Skipf("no user xattrs on this file system: %+v", obj.Hashes)
	}
	cp, err := d.Copy(ctx, drivers.Ref{Path: "/h.txt", Object: obj}, drivers.Ref{Path: "/"}, "h2.txt")
	if err != nil || cp.Hashes != up.Hashes {
		t.Fatalf("copy lost the hashes: %+v %v", cp.Hashes, err)
	}
	// Changed behind the bridge's back: the record no longer applies.
	os.WriteFile(filepath.Join(d.dir, "h.txt"), []byte("HELLO, changed"), 0o644)
	list, _ := d.List(ctx, drivers.Ref{Path: "/"})
	for _, o := range list {
		if o.Name == "h.txt" && o.Hashes != (drivers.Hashes{}) {
			t.Fatalf("stale hashes reported for a changed file: %+v", o.Hashes)
		}
	}
}

func TestSetModTimeThroughProppatchTarget(t *testing.T) {
	d, _ := setup(t)
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	o, err := d.SetModTime(context.Background(), drivers.Ref{Path: "/sub/in.txt"}, when)
	if err != nil || !o.ModTime.Equal(when) {
		t.Fatalf("SetModTime: %v %v", o.ModTime, err)
	}
}

func TestPutTakesTheSpoolFileByRename(t *testing.T) {
	d, _ := setup(t)
	spool := filepath.Join(d.dir, "..", "spool.tmp")
	os.WriteFile(spool, []byte("spooled"), 0o600)
	f, _ := os.Open(spool)
	defer f.Close()
	up := drivers.Upload{Body: f, Size: 7, Path: spool}
	if _, err := d.Put(context.Background(), drivers.Ref{Path: "/sub"}, "taken.txt", up); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatal("the spool file was copied, not taken")
	}
	fi, err := os.Stat(filepath.Join(d.dir, "sub", "taken.txt"))
	if err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != 7 {
		t.Fatalf("stored file: %v %v", fi, err)
	}
}
