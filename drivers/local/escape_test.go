package local

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bridge/drivers"
	"bridge/drivers/drivertest"
)

// setup makes base/root (served) and base/secret.txt (outside), with
// symbolic links inside the root pointing out of it, one pointing inside
// by an absolute name (which os.Root refuses too) and one by a relative
// name (which is served).
func setup(t *testing.T) (d *Driver, base, secret string) {
	t.Helper()
	base = t.TempDir()
	root := filepath.Join(base, "root")
	secret = filepath.Join(base, "secret.txt")
	must(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	must(t, os.WriteFile(secret, []byte("SECRET"), 0o644))
	must(t, os.Symlink(secret, filepath.Join(root, "link-file")))
	must(t, os.Symlink("../secret.txt", filepath.Join(root, "rel-link-file")))
	must(t, os.Symlink(base, filepath.Join(root, "link-dir")))
	must(t, os.Symlink("..", filepath.Join(root, "rel-link-dir")))
	must(t, os.Symlink(filepath.Join(root, "sub", "in.txt"), filepath.Join(root, "abs-link-inside")))
	must(t, os.WriteFile(filepath.Join(root, "sub", "in.txt"), []byte("inside"), 0o644))
	must(t, os.Symlink("in.txt", filepath.Join(root, "sub", "link-inside")))
	d, err := Open(root)
	must(t, err)
	t.Cleanup(func() { d.Close() })
	return d, base, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func listNames(t *testing.T, d *Driver, p string) []string {
	t.Helper()
	objs, err := d.List(t.Context(), drivers.Ref{Path: p})
	if err != nil {
		t.Fatalf("List %s: %v", p, err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	slices.Sort(out)
	return out
}

func readAll(t *testing.T, d *Driver, p string) string {
	t.Helper()
	rc, err := d.Open(t.Context(), drivers.Ref{Path: p}, 0, -1)
	if err != nil {
		t.Fatalf("Open %s: %v", p, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// refused asserts an access outside the root failed as not found or
// forbidden, never with success or an unclassified error.
func refused(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, drivers.ErrNotFound) && !errors.Is(err, drivers.ErrPermission) {
		t.Errorf("%s: %v, want ErrNotFound or ErrPermission", what, err)
	}
}

// outside lists base without the served root, to see that nothing was
// created or changed outside it.
func outside(t *testing.T, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(base)
	must(t, err)
	for _, e := range entries {
		if e.Name() == "root" {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(base, e.Name()))
		fi, _ := os.Stat(filepath.Join(base, e.Name()))
		out[e.Name()] = string(b) + "@" + fi.ModTime().String()
	}
	return out
}

func TestLinksOutOfTheRootAreNotListed(t *testing.T) {
	d, _, _ := setup(t)
	if got, want := listNames(t, d, "/"), []string{"sub"}; !slices.Equal(got, want) {
		t.Fatalf("root lists %q, want %q: links out of the root and absolute links are left out", got, want)
	}
	if got, want := listNames(t, d, "/sub"), []string{"in.txt", "link-inside"}; !slices.Equal(got, want) {
		t.Fatalf("sub lists %q, want %q", got, want)
	}
	if got := readAll(t, d, "/sub/link-inside"); got != "inside" {
		t.Fatalf("a relative link inside the root reads %q", got)
	}
}

func TestNothingOutsideTheRootIsRead(t *testing.T) {
	d, _, _ := setup(t)
	ctx := t.Context()
	for _, p := range []string{
		"/link-file", "/rel-link-file", "/../secret.txt", "/sub/../../secret.txt",
		"../secret.txt", "/link-dir/secret.txt", "/rel-link-dir/secret.txt",
		"/abs-link-inside",
	} {
		ref := drivers.Ref{Path: p}
		rc, err := d.Open(ctx, ref, 0, -1)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Fatalf("Open %s succeeded and read %q", p, b)
		}
		refused(t, "Open "+p, err)
		f, err := d.OpenFile(ctx, ref)
		if err == nil {
			f.Close()
			t.Fatalf("OpenFile %s succeeded", p)
		}
		refused(t, "OpenFile "+p, err)
		_, err = d.Copy(ctx, ref, drivers.Ref{Path: "/sub"}, "stolen")
		refused(t, "Copy "+p, err)
	}
	for _, p := range []string{"/link-dir", "/rel-link-dir", "/link-dir/root"} {
		_, err := d.List(ctx, drivers.Ref{Path: p})
		refused(t, "List "+p, err)
		_, err = d.Copy(ctx, drivers.Ref{Path: p}, drivers.Ref{Path: "/sub"}, "stolen")
		refused(t, "Copy "+p, err)
	}
	if got := listNames(t, d, "/sub"); !slices.Equal(got, []string{"in.txt", "link-inside"}) {
		t.Fatalf("refused copies left %q", got)
	}
}

func TestNothingOutsideTheRootIsWritten(t *testing.T) {
	d, base, secret := setup(t)
	ctx := t.Context()
	before := outside(t, base)
	up := drivertest.NewUpload([]byte("overwritten"))
	for _, dir := range []string{"/link-dir", "/rel-link-dir", "/link-dir/root/sub"} {
		ref := drivers.Ref{Path: dir}
		_, err := d.Put(ctx, ref, "secret.txt", up)
		refused(t, "Put into "+dir, err)
		_, err = d.Put(ctx, ref, "new.txt", up)
		refused(t, "Put new into "+dir, err)
		_, err = d.Mkdir(ctx, ref, "made")
		refused(t, "Mkdir in "+dir, err)
		_, err = d.Move(ctx, drivers.Ref{Path: "/sub/in.txt"}, ref, "moved.txt")
		refused(t, "Move into "+dir, err)
		_, err = d.Copy(ctx, drivers.Ref{Path: "/sub/in.txt"}, ref, "copied.txt")
		refused(t, "Copy into "+dir, err)
		refused(t, "Remove in "+dir, d.Remove(ctx, drivers.Ref{Path: dir + "/secret.txt"}))
		_, err = d.SetModTime(ctx, drivers.Ref{Path: dir + "/secret.txt"}, time.Unix(0, 0))
		refused(t, "SetModTime in "+dir, err)
		_, err = d.Move(ctx, drivers.Ref{Path: dir + "/secret.txt"}, drivers.Ref{Path: "/sub"}, "taken.txt")
		refused(t, "Move out of "+dir, err)
	}
	for _, p := range []string{"/link-file", "/rel-link-file"} {
		_, err := d.SetModTime(ctx, drivers.Ref{Path: p}, time.Unix(0, 0))
		refused(t, "SetModTime "+p, err)
	}
	for _, n := range []string{"../secret.txt", "..", "a/../../secret.txt"} {
		if _, err := d.Put(ctx, drivers.Ref{Path: "/"}, n, up); !errors.Is(err, drivers.ErrInvalidName) {
			t.Errorf("Put %q: %v, want ErrInvalidName", n, err)
		}
		if _, err := d.Rename(ctx, drivers.Ref{Path: "/sub/in.txt"}, n); !errors.Is(err, drivers.ErrInvalidName) {
			t.Errorf("Rename to %q: %v, want ErrInvalidName", n, err)
		}
	}

	// Writing over the link's own name replaces the link, not its target;
	// removing a link removes the link only.
	if _, err := d.Put(ctx, drivers.Ref{Path: "/"}, "link-file", up); err != nil {
		t.Fatalf("Put over the name of a link: %v", err)
	}
	if got := readAll(t, d, "/link-file"); got != "overwritten" {
		t.Fatalf("link-file reads %q", got)
	}
	must(t, d.Remove(ctx, drivers.Ref{Path: "/link-dir"}))
	must(t, d.Remove(ctx, drivers.Ref{Path: "/rel-link-dir"}))

	if b, _ := os.ReadFile(secret); string(b) != "SECRET" {
		t.Fatalf("the file outside the root changed: %q", b)
	}
	if after := outside(t, base); !mapsEqual(before, after) {
		t.Fatalf("outside the root changed:\nbefore %v\nafter  %v", before, after)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRootItselfIsNotRemovedOrMoved(t *testing.T) {
	d, _, _ := setup(t)
	if err := d.Remove(t.Context(), drivers.Ref{Path: "/"}); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("Remove /: %v, want ErrPermission", err)
	}
	if _, err := d.Move(t.Context(), drivers.Ref{Path: "/"}, drivers.Ref{Path: "/sub"}, "root"); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("Move /: %v, want ErrPermission", err)
	}
	if got := listNames(t, d, "/"); !slices.Equal(got, []string{"sub"}) {
		t.Fatalf("root lists %q", got)
	}
}

func TestFIFOIsNeitherListedNorOpened(t *testing.T) {
	d, _, _ := setup(t)
	if err := syscall.Mkfifo(filepath.Join(d.dir, "sub", "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if got := listNames(t, d, "/sub"); slices.Contains(got, "fifo") {
		t.Fatalf("a FIFO is listed: %q", got)
	}
	done := make(chan error, 1)
	go func() {
		_, err := d.Open(context.Background(), drivers.Ref{Path: "/sub/fifo"}, 0, -1)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, drivers.ErrNotFound) {
			t.Fatalf("Open of a FIFO: %v, want ErrNotFound", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open of a FIFO blocks")
	}
}

// failingReader fails every read, like a spool file on a dying disk.
type failingReader struct{}

func (failingReader) ReadAt(p []byte, off int64) (int, error) { return 0, errors.New("disk on fire") }

// dirEntries lists a folder of the disk, temp files included.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestFailedPutKeepsTheOldFile(t *testing.T) {
	short := drivertest.NewUpload([]byte("short"))
	short.Size = 100 // the body ends early: must not be stored truncated
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		up   drivers.Upload
	}{
		{"failing body", context.Background(), drivers.Upload{Body: failingReader{}, Size: 100}},
		{"short body", context.Background(), short},
		{"cancelled", cancelled, drivertest.NewUpload([]byte("never"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _, _ := setup(t)
			old := drivers.Object{Name: "in.txt", Size: 6, ID: "/sub/in.txt"}
			tc.up.Replaces = &old
			if _, err := d.Put(tc.ctx, drivers.Ref{Path: "/sub"}, "in.txt", tc.up); err == nil {
				t.Fatal("the upload succeeded")
			}
			if got := readAll(t, d, "/sub/in.txt"); got != "inside" {
				t.Fatalf("a failed overwrite changed the file: %q", got)
			}
			if got := dirEntries(t, filepath.Join(d.dir, "sub")); !slices.Equal(got, []string{"in.txt", "link-inside"}) {
				t.Fatalf("temp file left behind: %q", got)
			}
		})
	}
}

// gate is an upload body that stops halfway until released, so a test can
// look at the folder while an upload is in flight.
type gate struct {
	data    []byte
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gate) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(g.data)/2) {
		g.once.Do(func() { close(g.reached) })
		<-g.release
	}
	if off >= int64(len(g.data)) {
		return 0, io.EOF
	}
	n := copy(p, g.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestUploadInFlightIsInvisible(t *testing.T) {
	d, _, _ := setup(t)
	data := []byte(strings.Repeat("new content ", 100000))
	g := &gate{data: data, reached: make(chan struct{}), release: make(chan struct{})}
	up := drivertest.NewUpload(data)
	up.Body = g
	done := make(chan error, 1)
	go func() {
		_, err := d.Put(context.Background(), drivers.Ref{Path: "/sub"}, "in.txt", up)
		done <- err
	}()
	<-g.reached
	if got := listNames(t, d, "/sub"); !slices.Equal(got, []string{"in.txt", "link-inside"}) {
		t.Errorf("during the upload the folder lists %q", got)
	}
	if got := readAll(t, d, "/sub/in.txt"); got != "inside" {
		t.Errorf("during the upload the file reads %.20q", got)
	}
	if n := len(dirEntries(t, filepath.Join(d.dir, "sub"))); n != 3 {
		t.Errorf("want a temp file on disk during the upload, %d entries", n)
	}
	close(g.release)
	must(t, <-done)
	if got := readAll(t, d, "/sub/in.txt"); got != string(data) {
		t.Fatalf("after the upload the file reads %d bytes", len(got))
	}
	if got := dirEntries(t, filepath.Join(d.dir, "sub")); !slices.Equal(got, []string{"in.txt", "link-inside"}) {
		t.Fatalf("after the upload the disk holds %q", got)
	}
}

func TestStaleTempFilesAreHidden(t *testing.T) {
	d, _, _ := setup(t)
	stale := filepath.Join(d.dir, "sub", tempPrefix+"crashed")
	must(t, os.WriteFile(stale, []byte("half"), 0o644))
	if got := listNames(t, d, "/sub"); !slices.Equal(got, []string{"in.txt", "link-inside"}) {
		t.Fatalf("a stale temp file is listed: %q", got)
	}
	if _, err := d.Copy(t.Context(), drivers.Ref{Path: "/sub"}, drivers.Ref{Path: "/"}, "copy"); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, filepath.Join(d.dir, "copy")); !slices.Equal(got, []string{"in.txt", "link-inside"}) {
		t.Fatalf("a copy took the temp file along: %q", got)
	}
	if _, err := d.Rename(t.Context(), drivers.Ref{Path: "/sub/in.txt"}, tempPrefix+"x"); !errors.Is(err, drivers.ErrInvalidName) {
		t.Fatalf("Rename to a temp name: %v, want ErrInvalidName", err)
	}
}
