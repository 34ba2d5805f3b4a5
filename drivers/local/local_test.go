package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"bridge/drivers"
	"bridge/drivers/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		// A folder of this machine: no provider to be hostile.
		NewDriver: func(t *testing.T, _ drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			d, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d, nil
		},
		ChunkSize:      1 << 20,
		ForbiddenNames: []string{".", "..", "a/b", "bad\x00name", tempPrefix + "x"},
	})
}

// config is what the bridge hands New for a mount with these options.
func config(options string) drivers.Config {
	return drivers.Config{
		MountPath: "/local",
		Decode: func(v any) error {
			md, err := toml.Decode(options, v)
			if err != nil {
				return err
			}
			if un := md.Undecoded(); len(un) > 0 {
				return errors.New("unknown option " + un[0].String())
			}
			return nil
		},
	}
}

func TestNewCreatesTheRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	d, err := New(t.Context(), config("root = '"+dir+"'"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.(drivers.Closer).Close()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	o, err := d.Root(t.Context())
	if err != nil || !o.IsDir || o.ID != "/" {
		t.Fatalf("Root: %+v %v", o, err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, opts := range []string{"", "root = ''", "root = '/x'\nmystery = 1"} {
		if d, err := New(t.Context(), config(opts)); err == nil {
			d.(drivers.Closer).Close()
			t.Errorf("New with %q succeeded", opts)
		} else if !strings.HasPrefix(err.Error(), "local: ") {
			t.Errorf("New with %q: error without context: %v", opts, err)
		}
	}
}

func TestHashesOnlyWhileValid(t *testing.T) {
	d, _, _ := setup(t)
	ctx := t.Context()
	up := drivertest.NewUpload([]byte("hello"))
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
	must(t, os.WriteFile(filepath.Join(d.dir, "h.txt"), []byte("HELLO, changed"), 0o644))
	list, err := d.List(ctx, drivers.Ref{Path: "/"})
	must(t, err)
	for _, o := range list {
		if o.Name == "h.txt" && o.Hashes != (drivers.Hashes{}) {
			t.Fatalf("stale hashes reported for a changed file: %+v", o.Hashes)
		}
	}
}

func TestPutHonoursModTime(t *testing.T) {
	d, _, _ := setup(t)
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	up := drivertest.NewUpload([]byte("dated"))
	up.ModTime = when
	o, err := d.Put(t.Context(), drivers.Ref{Path: "/sub"}, "dated.txt", up)
	if err != nil || !o.ModTime.Equal(when) {
		t.Fatalf("Put: %v %v", o.ModTime, err)
	}
	o, err = d.SetModTime(t.Context(), drivers.Ref{Path: "/sub/in.txt"}, when)
	if err != nil || !o.ModTime.Equal(when) {
		t.Fatalf("SetModTime: %v %v", o.ModTime, err)
	}
}

func TestPutTakesTheSpoolFileByRename(t *testing.T) {
	d, base, _ := setup(t)
	spool := filepath.Join(base, "spool.tmp")
	must(t, os.WriteFile(spool, []byte("spooled"), 0o600))
	f, err := os.Open(spool)
	must(t, err)
	defer f.Close()
	up := drivertest.NewUpload([]byte("spooled"))
	up.Body, up.Path = f, spool
	if _, err := d.Put(t.Context(), drivers.Ref{Path: "/sub"}, "taken.txt", up); err != nil {
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

func TestNothingIsCopiedOrMovedIntoItself(t *testing.T) {
	d, _, _ := setup(t)
	ctx := t.Context()
	sub := drivers.Ref{Path: "/sub", Object: drivers.Object{Name: "sub", IsDir: true, ID: "/sub"}}
	for _, dst := range []string{"/sub", "/sub/deeper"} {
		if dst == "/sub/deeper" {
			if _, err := d.Mkdir(ctx, sub, "deeper"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Copy(ctx, sub, drivers.Ref{Path: dst}, "again"); !errors.Is(err, drivers.ErrPermission) {
			t.Errorf("Copy /sub into %s: %v, want ErrPermission", dst, err)
		}
		if _, err := d.Move(ctx, sub, drivers.Ref{Path: dst}, "again"); !errors.Is(err, drivers.ErrPermission) {
			t.Errorf("Move /sub into %s: %v, want ErrPermission", dst, err)
		}
	}
	// Through a link the path does not show it: the copy still stops.
	must(t, os.Symlink("sub", filepath.Join(d.dir, "alias")))
	if _, err := d.Copy(ctx, sub, drivers.Ref{Path: "/alias"}, "again"); !errors.Is(err, drivers.ErrPermission) {
		t.Errorf("Copy /sub into /alias: %v, want ErrPermission", err)
	}
	if _, err := d.Move(ctx, sub, drivers.Ref{Path: "/alias"}, "again"); !errors.Is(err, drivers.ErrPermission) {
		t.Errorf("Move /sub into /alias: %v, want ErrPermission", err)
	}
	if got := listNames(t, d, "/sub"); !slices.Equal(got, []string{"deeper", "in.txt", "link-inside"}) {
		t.Fatalf("refused copies left %q", got)
	}
}

func TestCopyStopsAtALinkLoop(t *testing.T) {
	d, _, _ := setup(t)
	must(t, os.Symlink("..", filepath.Join(d.dir, "sub", "up")))
	_, err := d.Copy(t.Context(), drivers.Ref{Path: "/sub"}, drivers.Ref{Path: "/"}, "copy")
	if !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("Copy of a folder with a loop: %v, want ErrPermission", err)
	}
	if got := listNames(t, d, "/"); !slices.Equal(got, []string{"sub"}) {
		t.Fatalf("a failed copy left %q", got)
	}
}

func TestCancelledCopyLeavesNothing(t *testing.T) {
	d, _, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := dirEntries(t, d.dir)
	for _, src := range []string{"/sub", "/sub/in.txt"} {
		_, err := d.Copy(ctx, drivers.Ref{Path: src}, drivers.Ref{Path: "/"}, "copy")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Copy of %s: %v", src, err)
		}
		if got := dirEntries(t, d.dir); !slices.Equal(got, before) {
			t.Fatalf("a cancelled copy left %q", got)
		}
	}
}

func TestRenameToItsOwnNameIsANoop(t *testing.T) {
	d, _, _ := setup(t)
	o, err := d.Rename(t.Context(), drivers.Ref{Path: "/sub/in.txt"}, "in.txt")
	if err != nil || o.Name != "in.txt" || o.ID != "/sub/in.txt" {
		t.Fatalf("Rename to the same name: %+v %v", o, err)
	}
	if got := readAll(t, d, "/sub/in.txt"); got != "inside" {
		t.Fatalf("reads %q", got)
	}
}
