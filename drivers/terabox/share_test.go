package terabox

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bridge/drivers"
	"bridge/drivers/download"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
	teraboxfake "bridge/tests/fakes/terabox"
)

// The share every test mounts: a friend's folder /shared with a.txt,
// big.bin, an empty folder, and sub/ with more entries than a page (the
// driver's page is 10 here) and a folder deeper/ in it.
const (
	sharePwd   = "qz7w"
	bigSize    = 300_000
	subEntries = 25
)

// shareEnv is an env with the friend, the share link, and a share mount
// of it logged in to the main account (the account the env's driver
// mounts).
type shareEnv struct {
	*env
	friend *teraboxfake.Account
	link   string
	big    []byte
	share  *Share
	dir    string // the share mount's state folder
}

func newShareEnv(t *testing.T, cfg faults.Config) *shareEnv {
	t.Helper()
	e := &shareEnv{env: newEnv(t, cfg), big: make([]byte, bigSize)}
	rand.Read(e.big)
	e.drv.pageSize = 10
	e.friend = e.fake.NewAccount()
	e.friend.Put("/shared/a.txt", []byte("content of a"))
	e.friend.Put("/shared/big.bin", e.big)
	e.friend.Mkdir("/shared/empty")
	for i := range subEntries {
		e.friend.Put(fmt.Sprintf("/shared/sub/entry-%04d.txt", i), []byte(fmt.Sprint(i)))
	}
	e.friend.Put("/shared/sub/deeper/x.txt", []byte("x"))
	e.link = e.friend.Share("/shared", sharePwd)
	e.dir = t.TempDir()
	e.share = e.openShare(t, e.dir, e.link, sharePwd)
	return e
}

// openShare mounts a share link with a fresh token of the main account.
func (e *env) openShare(t *testing.T, state, link, pwd string) *Share {
	t.Helper()
	_, seed := e.fake.IssueToken()
	return e.openShareWith(t, state, seed, link, pwd)
}

// openShareWith mounts a share link with the given refresh token.
func (e *env) openShareWith(t *testing.T, state, seed, link, pwd string) *Share {
	t.Helper()
	s := e.openIn(t, state, seed, "share_url", link, "share_password", pwd).(*Share)
	s.acct.pageSize = 10
	return s
}

// ref is the share's object at p, as the bridge would hold it from a
// listing of its folder.
func (e *shareEnv) ref(t *testing.T, p string) drivers.Ref {
	t.Helper()
	if p == "/" {
		return drivertest.Root(t, e.share)
	}
	parent := e.ref(t, path.Dir(p))
	return drivertest.Listed(t, e.share, parent, path.Base(p))
}

// read reads [off, off+n) of a share file (n < 0: to the end) as the
// bridge does: through its links, with package download.
func read(ctx context.Context, d drivers.Driver, f drivers.Ref, off, n int64) ([]byte, error) {
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) { return d.Link(ctx, f) }
	return readLinks(ctx, f, links, off, n)
}

// readLinks is read through the given links: a broken stream resumes at
// the same byte, a dead link is replaced once.
func readLinks(ctx context.Context, f drivers.Ref, links download.LinkFunc, off, n int64) ([]byte, error) {
	fetch := &download.Fetcher{Client: http.DefaultClient}
	open := func(ctx context.Context, o, m int64) (io.ReadCloser, error) {
		return fetch.Open(ctx, links, f.Size, o, m)
	}
	end := f.Size
	if n >= 0 {
		end = min(off+n, f.Size)
	}
	r := download.NewReader(ctx, open, f.Size, map[int64]int64{off: end})
	defer r.Close()
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, end-off))
}

// writeCalls counts the calls of the endpoints that change an account.
func writeCalls(f *teraboxfake.Fake) int {
	c := f.Calls()
	return c["create"] + c["precreate"] + c["superfile2"] + c["filemanager"] + c["transfer"]
}

// TestShareReadOnly is drivertest's read-only part for a share mount:
// listing (root and folders), paging, ranged reads through links (also
// with a link from before a restart), not-found, and the refusal of every
// write with ErrPermission and the reason; under the normal and the
// hostile profile (restarts and clock steps between the cases).
func TestShareReadOnly(t *testing.T) {
	for _, p := range drivertest.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			e := newShareEnv(t, p.Faults)
			if p.Faults.RateLimit > 0 {
				e.waits.Real() // a rate limit runs on real time: wait it out
			}
			prov := drivertest.SharedClock(e.fake.Faults, e.clock)
			cases := []struct {
				name string
				fn   func(t *testing.T, e *shareEnv)
			}{
				{"Features", testShareFeatures},
				{"Listing", testShareListing},
				{"Paging", testSharePaging},
				{"Ranges", testShareRanges},
				{"LinkAfterRestart", testShareLinkAfterRestart},
				{"NotFound", testShareNotFound},
				{"Refusals", testShareRefusals},
			}
			for _, c := range cases {
				if p.Step > 0 {
					prov.Advance(p.Step)
					prov.Restart()
				}
				t.Run(c.name, func(t *testing.T) { c.fn(t, e) })
			}
			if p.Step > 0 && e.fake.Calls()["verify"] < 2 {
				t.Fatalf("the hostile run verified %d times: the restarts' stale keys were not noticed", e.fake.Calls()["verify"])
			}
		})
	}
}

func testShareFeatures(t *testing.T, e *shareEnv) {
	f := e.share.Features()
	if !strings.Contains(f.ReadOnly, "share link") || f.ProxyOnly == "" || !f.Links {
		t.Fatalf("Features %+v: want ReadOnly with its reason, ProxyOnly, Links", f)
	}
	if f.CopyFile || f.CopyDir || f.Move || f.EmptyFiles || f.Quota || f.SetModTime || f.UploadHashes != 0 {
		t.Fatalf("Features %+v claim a write", f)
	}
	if _, err := e.share.Quota(t.Context()); !errors.Is(e.noteErr(err), drivers.ErrNotSupported) {
		t.Fatalf("Quota: %v", err)
	}
}

func testShareListing(t *testing.T, e *shareEnv) {
	root := drivertest.Root(t, e.share)
	objs, err := e.share.List(t.Context(), root)
	if e.noteErr(err) != nil || len(objs) != 1 || objs[0].Name != "shared" || !objs[0].IsDir || objs[0].ID == "" {
		t.Fatalf("the root lists %+v (%v), want the shared folder", objs, err)
	}
	shared := e.ref(t, "/shared")
	objs, err = e.share.List(t.Context(), shared)
	if e.noteErr(err) != nil {
		t.Fatal(err)
	}
	got := map[string]drivers.Object{}
	for _, o := range objs {
		got[o.Name] = o
	}
	if names := slices.Sorted(func(yield func(string) bool) {
		for n := range got {
			if !yield(n) {
				return
			}
		}
	}); !slices.Equal(names, []string{"a.txt", "big.bin", "empty", "sub"}) {
		t.Fatalf("/shared lists %q", names)
	}
	if a := got["a.txt"]; a.Size != int64(len("content of a")) || a.IsDir || a.ModTime.IsZero() || a.Hashes.MD5 != "" {
		t.Fatalf("a.txt is %+v: want its size and time, and no md5 (TeraBox's is scrambled)", a)
	}
	if b := got["big.bin"]; b.Size != bigSize {
		t.Fatalf("big.bin is %+v", b)
	}
	if !got["sub"].IsDir || got["sub"].Size != 0 {
		t.Fatalf("sub is %+v", got["sub"])
	}
	if objs, err := e.share.List(t.Context(), e.ref(t, "/shared/empty")); e.noteErr(err) != nil || len(objs) != 0 {
		t.Fatalf("the empty folder lists %+v (%v)", objs, err)
	}
	deeper := e.ref(t, "/shared/sub/deeper")
	if objs, err := e.share.List(t.Context(), deeper); e.noteErr(err) != nil || len(objs) != 1 || objs[0].Name != "x.txt" {
		t.Fatalf("a folder two levels down lists %+v (%v)", objs, err)
	}
}

func testSharePaging(t *testing.T, e *shareEnv) {
	objs, err := e.share.List(t.Context(), e.ref(t, "/shared/sub"))
	if e.noteErr(err) != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.Name] {
			t.Fatalf("%s listed twice", o.Name)
		}
		seen[o.Name] = true
		var i int
		if _, err := fmt.Sscanf(o.Name, "entry-%04d.txt", &i); err == nil && o.Size != int64(len(fmt.Sprint(i))) {
			t.Fatalf("%s has size %d", o.Name, o.Size)
		}
	}
	if len(objs) != subEntries+1 {
		t.Fatalf("listed %d entries over pages of 10, want %d", len(objs), subEntries+1)
	}
}

func testShareRanges(t *testing.T, e *shareEnv) {
	big := e.ref(t, "/shared/big.bin")
	size := int64(bigSize)
	for _, r := range []struct {
		name      string
		off, n    int64
		wantBytes int64
	}{
		{"start", 0, 1000, 1000},
		{"first byte", 0, 1, 1},
		{"middle", size / 2, 4096, 4096},
		{"end", size - 777, 777, 777},
		{"last byte", size - 1, 1, 1},
		{"suffix", size - 5000, -1, 5000},
		{"whole", 0, -1, size},
	} {
		t.Run(r.name, func(t *testing.T) {
			got, err := read(t.Context(), e.share, big, r.off, r.n)
			if e.noteErr(err) != nil || !bytes.Equal(got, e.big[r.off:r.off+r.wantBytes]) {
				t.Fatalf("[%d,+%d): %d bytes, %v", r.off, r.wantBytes, len(got), err)
			}
		})
	}
	l, err := e.share.Link(t.Context(), big)
	if e.noteErr(err) != nil || l.ClientSafe || l.Expires.IsZero() {
		t.Fatalf("a share's link %v (%v): it carries the token, so it is never ClientSafe, and it expires", l.Expires, err)
	}
}

// testShareLinkAfterRestart: a link from before a restart is refused (the
// fake forgets its signing key, and the share's keys); the bridge then
// asks for a fresh one, which needs the link verified again.
func testShareLinkAfterRestart(t *testing.T, e *shareEnv) {
	a := e.ref(t, "/shared/a.txt")
	old, err := e.share.Link(t.Context(), a)
	if e.noteErr(err) != nil {
		t.Fatal(err)
	}
	e.fake.Faults.Restart()
	first := true
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) {
		if first && !fresh {
			first = false
			return old, nil
		}
		l, err := e.share.Link(ctx, a)
		return l, e.noteErr(err)
	}
	got, err := readLinks(t.Context(), a, links, 0, -1)
	if e.noteErr(err) != nil || string(got) != "content of a" {
		t.Fatalf("reading through a link from before the restart: %q, %v", got, err)
	}
	if first {
		t.Fatal("the old link was never tried")
	}
}

func testShareNotFound(t *testing.T, e *shareEnv) {
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(e.noteErr(err), drivers.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	shared := e.ref(t, "/shared")
	_, err := e.share.List(ctx, drivers.Ref{Path: "/shared/nope", Object: drivers.Object{Name: "nope", IsDir: true, ID: "42"}})
	check("List of a missing folder", err)
	_, err = e.share.List(ctx, drivers.Ref{Path: "/other", Object: drivers.Object{Name: "other", IsDir: true, ID: "43"}})
	check("List of a missing top folder", err)
	_, err = e.share.Link(ctx, drivers.Ref{Path: "/shared/gone.txt", Object: drivers.Object{Name: "gone.txt", ID: "44", Size: 1}})
	check("Link of a missing file", err)
	_, err = e.share.Link(ctx, drivers.Ref{Path: "/shared/gone.txt", Object: drivers.Object{Name: "gone.txt", Size: 1}})
	check("Link of a missing file without an ID", err)
	// A file the owner deletes after the bridge listed it.
	e.friend.Put("/shared/brief.txt", []byte("brief"))
	brief := drivertest.Listed(t, e.share, shared, "brief.txt")
	e.friend.Delete("/shared/brief.txt")
	_, err = read(ctx, e.share, brief, 0, -1)
	check("reading a file deleted by its owner", err)
	_, err = e.share.List(ctx, brief)
	check("List of a file", err)
}

func testShareRefusals(t *testing.T, e *shareEnv) {
	ctx := t.Context()
	root := drivertest.Root(t, e.share)
	shared := e.ref(t, "/shared")
	a := e.ref(t, "/shared/a.txt")
	before := writeCalls(e.fake)
	for _, c := range []struct {
		what string
		err  error
	}{
		{"Put", second(e.share.Put(ctx, shared, "new.txt", drivertest.NewUpload([]byte("new"))))},
		{"Put over a file", second(e.share.Put(ctx, shared, "a.txt", drivertest.NewUpload([]byte("new"))))},
		{"Mkdir", second(e.share.Mkdir(ctx, root, "dir"))},
		{"Rename", second(e.share.Rename(ctx, a, "b.txt"))},
		{"Move", second(e.share.Move(ctx, a, root, "a.txt"))},
		{"Copy", second(e.share.Copy(ctx, a, shared, "c.txt"))},
		{"Remove", e.share.Remove(ctx, a)},
		{"Remove of the folder", e.share.Remove(ctx, shared)},
	} {
		var reason *drivers.Reason
		if !errors.Is(e.noteErr(c.err), drivers.ErrPermission) || !errors.As(c.err, &reason) || !strings.Contains(reason.Text, "read-only") {
			t.Errorf("%s: %v, want ErrPermission with the read-only reason", c.what, c.err)
		}
	}
	if writeCalls(e.fake) != before {
		t.Fatal("a refused write reached the provider")
	}
	if got := e.friend.Names("/shared"); !slices.Equal(got, []string{"a.txt", "big.bin", "empty", "sub"}) {
		t.Fatalf("the owner's folder holds %q", got)
	}
}

// TestShareWrongCode: a wrong extraction code is a clear Check error
// naming it (not repeating it), List and Link answer ErrPermission with a
// reason, and the provider is asked once per holdoff, not per call.
func TestShareWrongCode(t *testing.T) {
	e := newShareEnv(t, faults.Config{})
	const wrong = "zz98"
	s := e.openShare(t, t.TempDir(), e.link, wrong)
	ctx := context.Background()
	err := s.Check(ctx)
	if e.noteErr(err) == nil || !strings.Contains(err.Error(), "extraction code") || !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("Check with a wrong code: %v", err)
	}
	for range 5 {
		_, err := s.List(ctx, drivertest.Root(t, s))
		var reason *drivers.Reason
		if !errors.Is(e.noteErr(err), drivers.ErrPermission) || !errors.As(err, &reason) || !strings.Contains(reason.Text, "extraction code") {
			t.Fatalf("List with a wrong code: %v", err)
		}
		_, err = s.Link(ctx, drivers.Ref{Path: "/shared/a.txt", Object: drivers.Object{Name: "a.txt", ID: "1", Size: 1}})
		if !errors.Is(e.noteErr(err), drivers.ErrPermission) {
			t.Fatalf("Link with a wrong code: %v", err)
		}
		e.noteErr(s.Check(ctx))
	}
	calls := e.fake.Calls()
	if calls["verify"] != 1 || calls["sharelist"]+calls["shorturlinfo"]+calls["sharedownload"] != 0 {
		t.Fatalf("a wrong code made %v calls: a retry storm", calls)
	}
	// After the holdoff the link is tried once more, then held off longer.
	e.clock.Advance(firstHoldoff + 1)
	e.noteErr(s.Check(ctx))
	e.clock.Advance(firstHoldoff + 1)
	e.noteErr(s.Check(ctx))
	if got := e.fake.Calls()["verify"]; got != 2 {
		t.Fatalf("%d verifies after two holdoffs' worth of time, want 2 (the holdoff doubles)", got)
	}
	e.logs.AssertNoSecrets(t, []string{wrong}, err)
	if !strings.Contains(e.logs.String(), "share link is refused") {
		t.Fatalf("the refusal is not logged:\n%s", e.logs.String())
	}
}

// TestShareDeadLink: a cancelled or expired link is a clear Check error
// and ErrNotFound with a reason, asked once per holdoff.
func TestShareDeadLink(t *testing.T) {
	e := newShareEnv(t, faults.Config{})
	ctx := context.Background()
	if err := e.share.Check(ctx); e.noteErr(err) != nil {
		t.Fatalf("Check of a live link: %v", err)
	}
	shared := e.ref(t, "/shared")
	e.fake.CancelShare(e.link)
	before := e.fake.Calls()
	for range 3 {
		_, err := e.share.List(ctx, shared)
		var reason *drivers.Reason
		if !errors.Is(e.noteErr(err), drivers.ErrNotFound) || !errors.As(err, &reason) || !strings.Contains(reason.Text, "expired or was cancelled") {
			t.Fatalf("List of a cancelled link: %v", err)
		}
	}
	err := e.share.Check(ctx)
	if e.noteErr(err) == nil || !strings.Contains(err.Error(), "does not exist any more") {
		t.Fatalf("Check of a cancelled link: %v", err)
	}
	after := e.fake.Calls()
	if after["sharelist"]-before["sharelist"] != 1 || after["verify"] != before["verify"] || after["shorturlinfo"] != before["shorturlinfo"] {
		t.Fatalf("a dead link was asked again: %v, then %v", before, after)
	}
	// An expiring link: fine until its time, then refused.
	other := e.friend.Share("/shared/a.txt", "")
	s := e.openShare(t, t.TempDir(), other, "")
	e.fake.ShareExpiresIn(other, 2*firstHoldoff)
	if err := s.Check(ctx); e.noteErr(err) != nil {
		t.Fatalf("Check before the expiry: %v", err)
	}
	e.clock.Advance(3 * firstHoldoff)
	if _, err := s.List(ctx, drivertest.Root(t, s)); !errors.Is(e.noteErr(err), drivers.ErrNotFound) {
		t.Fatalf("List of an expired link: %v", err)
	}
}

// TestShareStaleKey: the session is verified once and kept in the state
// folder (a second mount over it verifies nothing); after the provider
// restarts (and forgets its keys) one verify serves every caller.
func TestShareStaleKey(t *testing.T) {
	e := newShareEnv(t, faults.Config{})
	ctx := context.Background()
	e.ref(t, "/shared/sub")
	if got := e.fake.Calls()["verify"]; got != 1 {
		t.Fatalf("%d verifies for the first listings, want 1", got)
	}
	kept, err := os.ReadFile(filepath.Join(e.dir, shareFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(e.dir, shareFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the session file has mode %v", fi.Mode().Perm())
	}
	if !strings.Contains(string(kept), "sekey") {
		t.Fatalf("the session file holds %s", kept)
	}
	again := e.openShare(t, e.dir, e.link, sharePwd)
	if _, err := again.List(ctx, drivers.Ref{Path: "/shared", Object: drivers.Object{Name: "shared", IsDir: true}}); e.noteErr(err) != nil {
		t.Fatal(err)
	}
	if got := e.fake.Calls()["verify"]; got != 1 {
		t.Fatalf("a mount over the kept session verified again (%d verifies)", got)
	}
	e.fake.Faults.Restart()
	sub := drivers.Ref{Path: "/shared/sub", Object: drivers.Object{Name: "sub", IsDir: true}}
	drivertest.Concurrently(t, 8, func() error {
		objs, err := again.List(ctx, sub)
		if err == nil && len(objs) != subEntries+1 {
			err = fmt.Errorf("listed %d entries", len(objs))
		}
		return e.noteErr(err)
	})
	if got := e.fake.Calls()["verify"]; got != 2 {
		t.Fatalf("%d verifies after the restart, want exactly one more", got)
	}
	if !strings.Contains(e.logs.String(), "verifying the link again") {
		t.Fatal("the stale key is not logged")
	}
}

// TestShareLinkOptions: the forms of share_url and share_password.
func TestShareLinkOptions(t *testing.T) {
	for _, c := range []struct {
		url, pwd   string
		surl, code string
		bad        bool
	}{
		{url: "https://www.terabox.com/s/1CcI0dJJ2nzNs9rO6u23QAw", pwd: "ab12", surl: "CcI0dJJ2nzNs9rO6u23QAw", code: "ab12"},
		{url: "https://1024terabox.com/s/1-CZRMUjNHP5obASqTLTf8w/?pwd=x9y8", surl: "-CZRMUjNHP5obASqTLTf8w", code: "x9y8"},
		{url: "https://www.terabox.app/sharing/link?surl=CcI0dJJ2nzNs9rO6u23QAw", pwd: " AB12 ", surl: "CcI0dJJ2nzNs9rO6u23QAw", code: "ab12"},
		{url: "1CcI0dJJ2nzNs9rO6u23QAw", surl: "CcI0dJJ2nzNs9rO6u23QAw"},
		{url: "CcI0dJJ2nzNs9rO6u23QAw", surl: "CcI0dJJ2nzNs9rO6u23QAw"},
		{url: "https://www.terabox.com/s/1CcI0dJJ2nzNs9rO6u23QAw", pwd: "toolong", bad: true},
		{url: "https://www.terabox.com/s/1CcI0dJJ2nzNs9rO6u23QAw", pwd: "ab!2", bad: true},
		{url: "https://www.terabox.com/main?category=all", bad: true},
		{url: "", pwd: "ab12", bad: true},
	} {
		l, err := parseShareLink(c.url, c.pwd)
		switch {
		case c.bad && err == nil:
			t.Errorf("%q %q: accepted as %+v", c.url, c.pwd, l)
		case c.bad && c.pwd != "" && strings.Contains(err.Error(), c.pwd):
			t.Errorf("%q: the error repeats the code: %v", c.url, err)
		case !c.bad && (err != nil || l.surl != c.surl || l.pwd != c.code):
			t.Errorf("%q %q: %+v %v, want surl %q code %q", c.url, c.pwd, l, err, c.surl, c.code)
		}
	}
}

// TestCopyFromShare: saving a folder and a file from a share mount of the
// same account is one share/transfer each (plus its task's queries),
// with no byte through any upload endpoint, and the content in the
// account.
func TestCopyFromShare(t *testing.T) {
	e := newShareEnv(t, faults.Config{})
	ctx := context.Background()
	root := drivertest.Root(t, e.drv)
	shared := e.ref(t, "/shared")
	before := e.fake.Calls()
	o, err := e.drv.CopyFrom(ctx, e.share, shared, root, "shared")
	if e.noteErr(err) != nil || o.Name != "shared" || !o.IsDir || o.ID == "" {
		t.Fatalf("CopyFrom of a folder: %+v %v", o, err)
	}
	after := e.fake.Calls()
	if n := after["transfer"] - before["transfer"]; n != 1 {
		t.Fatalf("%d share/transfer calls for one folder", n)
	}
	if n := after["taskquery"] - before["taskquery"]; n < 1 {
		t.Fatal("the transfer's task was not polled to its end")
	}
	if e.fake.BytesReceived() != 0 || after["superfile2"]+after["precreate"]+after["create"] != 0 {
		t.Fatalf("bytes went up through the upload endpoints: %d bytes, %v", e.fake.BytesReceived(), after)
	}
	if got, _ := e.fake.File("/shared/big.bin"); !bytes.Equal(got, e.big) {
		t.Fatal("big.bin is not in the account")
	}
	if got := e.fake.Names("/shared/sub"); len(got) != subEntries+1 {
		t.Fatalf("the account's /shared/sub holds %d entries", len(got))
	}
	tr := e.fake.Transfers()
	if len(tr) != 1 || tr[0].Receiver != e.fake.UserID || tr[0].Dest != e.fake.AppDir() || !tr[0].Done || tr[0].Files != subEntries+3 {
		t.Fatalf("the fake's record: %+v", tr)
	}
	// A file under another name: saved, renamed, nothing else left.
	a := e.ref(t, "/shared/a.txt")
	o, err = e.drv.CopyFrom(ctx, e.share, a, root, "renamed.txt")
	if e.noteErr(err) != nil || o.Name != "renamed.txt" || o.Size != int64(len("content of a")) {
		t.Fatalf("CopyFrom of a file under a new name: %+v %v", o, err)
	}
	if got, _ := e.fake.File("/renamed.txt"); string(got) != "content of a" {
		t.Fatalf("renamed.txt holds %q", got)
	}
	if got := e.fake.Names("/"); !slices.Equal(got, []string{"renamed.txt", "shared"}) {
		t.Fatalf("the account's root holds %q", got)
	}
	// Taken names: ErrExist, and no stray copy.
	_, err = e.drv.CopyFrom(ctx, e.share, a, drivertest.Listed(t, e.drv, root, "shared"), "a.txt")
	if !errors.Is(e.noteErr(err), drivers.ErrExist) {
		t.Fatalf("CopyFrom onto a taken name: %v", err)
	}
	_, err = e.drv.CopyFrom(ctx, e.share, a, root, "renamed.txt")
	if !errors.Is(e.noteErr(err), drivers.ErrExist) {
		t.Fatalf("CopyFrom under a new name that is taken: %v", err)
	}
	if got := e.fake.Names("/"); !slices.Equal(got, []string{"renamed.txt", "shared"}) {
		t.Fatalf("a failed save left %q", got)
	}
	if e.fake.BytesReceived() != 0 {
		t.Fatal("bytes went up")
	}
}

// otherDriver stands for a mount of another provider.
type otherDriver struct{ drivers.Driver }

// TestCopyFromNotSupported: a share mounted with another account, the
// account's own mount, another provider's driver and the share's root are
// not taken (the bridge streams those), without a transfer.
func TestCopyFromNotSupported(t *testing.T) {
	e := newShareEnv(t, faults.Config{})
	ctx := context.Background()
	root := drivertest.Root(t, e.drv)
	_, friendSeed := e.friend.IssueToken()
	theirs := e.openShareWith(t, t.TempDir(), friendSeed, e.link, sharePwd)
	shared := drivertest.Listed(t, theirs, drivertest.Root(t, theirs), "shared")
	e.fake.Put("/mine.txt", []byte("mine"))
	mine := drivertest.Listed(t, e.drv, root, "mine.txt")
	for _, c := range []struct {
		what string
		src  drivers.Driver
		obj  drivers.Ref
	}{
		{"a share mounted with another account", theirs, shared},
		{"the account's own mount", e.drv, mine},
		{"another provider's mount", otherDriver{}, mine},
		{"the share's root", e.share, drivertest.Root(t, e.share)},
	} {
		if _, err := e.drv.CopyFrom(ctx, c.src, c.obj, root, "copy"); !errors.Is(e.noteErr(err), drivers.ErrNotSupported) {
			t.Errorf("CopyFrom %s: %v, want ErrNotSupported", c.what, err)
		}
	}
	if n := e.fake.Calls()["transfer"]; n != 0 {
		t.Fatalf("%d transfers", n)
	}
}

// TestCopyFromTaskBounded: a transfer task that never ends is polled a
// bounded number of times with a growing wait, then ErrUnavailable.
func TestCopyFromTaskBounded(t *testing.T) {
	e := newShareEnv(t, faults.Config{})
	root := drivertest.Root(t, e.drv)
	a := e.ref(t, "/shared/a.txt")
	e.fake.Faults.Inject(faults.Fault{Endpoint: "taskquery", Times: 1000, Answer: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"errno":0,"status":"running","task_errno":0}`)
	}})
	_, err := e.drv.CopyFrom(context.Background(), e.share, a, root, "a.txt")
	if !errors.Is(e.noteErr(err), drivers.ErrUnavailable) || !strings.Contains(err.Error(), "may still end") {
		t.Fatalf("a task that never ends: %v", err)
	}
	if n := e.fake.Calls()["taskquery"]; n != taskPolls {
		t.Fatalf("%d task queries, want %d", n, taskPolls)
	}
	waits := e.waits.Asked()
	if len(waits) != taskPolls-1 || slices.Max(waits) > taskMaxBackoff || waits[len(waits)-1] < taskMaxBackoff/2 {
		t.Fatalf("the waits between queries: %v", waits)
	}
}

// TestShareReadOnlyConformance runs drivertest's read-only suite on a
// share mount, in the normal and the hostile profile: the tree the share
// shows, paging, ranged reads, not-found, and every write refused.
func TestShareReadOnlyConformance(t *testing.T) {
	tree := map[string][]byte{
		"shared/a.txt":            []byte("content of a"),
		"shared/big.bin":          bytes.Repeat([]byte("share bytes "), 300_000),
		"shared/sub/deeper/x.txt": []byte("x"),
	}
	for i := range 25 { // more than the page of 10
		tree[fmt.Sprintf("shared/sub/entry-%04d.txt", i)] = []byte(fmt.Sprint(i))
	}
	drivertest.RunReadOnlyTests(t, drivertest.ReadOnlyHarness{
		Tree: tree,
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e := newEnv(t, p.Faults)
			if p.Faults.RateLimit > 0 {
				e.waits.Real() // a rate limit runs on real time: wait it out
			}
			e.drv.pageSize = 10
			friend := e.fake.NewAccount()
			for name, data := range tree {
				friend.Put("/"+name, data)
			}
			share := e.openShare(t, t.TempDir(), friend.Share("/shared", sharePwd), sharePwd)
			return share, drivertest.SharedClock(e.fake.Faults, e.clock)
		},
	})
}
