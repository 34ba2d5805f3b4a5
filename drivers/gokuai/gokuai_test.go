package gokuai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/drivers/pacer"
	"bridge/tests/fakes/faults"
	gokuaifake "bridge/tests/fakes/gokuai"
)

// env is a fake on loopback and a driver logged in to it.
type env struct {
	fake  *gokuaifake.Fake
	srv   *httptest.Server
	clock *drivertest.Clock
	drv   *Driver
	state string
	logs  *drivertest.LogBuffer
	opts  map[string]any
	waits *drivertest.Waits // every wait the drivers asked for
}

// newEnv starts a fake and a driver with the fake's credentials; extra
// options are added to (or, when nil, removed from) the defaults.
func newEnv(t *testing.T, extra map[string]any) *env {
	t.Helper()
	f := gokuaifake.New()
	t.Cleanup(func() { f.Close() })
	clock := drivertest.NewClock(time.Unix(1_800_000_000, 0))
	f.SetClock(clock.Now)
	srv := drivertest.Serve(t, f)
	e := &env{fake: f, srv: srv, clock: clock, state: t.TempDir(), logs: &drivertest.LogBuffer{},
		waits: &drivertest.Waits{}}
	e.opts = drivertest.MergeOptions(map[string]any{"base_url": srv.URL, "client_id": f.ClientID, "client_secret": f.ClientSecret,
		"username": f.Username, "password": f.Password, "chunk_size": 1 << 20}, extra)
	// No credential the fake knows or handed out may reach a log line.
	t.Cleanup(func() { e.logs.AssertNoSecrets(t, f.Secrets()) })
	e.drv = e.open(t)
	return e
}

// open builds a driver over the env's state dir (a restart of the bridge).
func (e *env) open(t *testing.T) *Driver {
	t.Helper()
	d, err := New(context.Background(), drivers.Config{
		MountPath: "/gokuai", StateDir: e.state, HTTPClient: e.srv.Client(),
		Logger: zerolog.New(e.logs), Decode: drivertest.DecodeOptions(e.opts),
	})
	if err != nil {
		t.Fatal(err)
	}
	dd := d.(*Driver)
	dd.now = e.clock.Now
	dd.tokens.SetClock(e.clock.Now)
	dd.sleep = e.waits.Sleep // no real waits in tests
	return dd
}

func TestConformance(t *testing.T) {
	var envs []*env
	drivertest.RunConformanceTests(t, drivertest.Harness{
		NewDriver: func(t *testing.T, p drivertest.Profile) (drivers.Driver, drivertest.Provider) {
			e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
			e.fake.PageMax = 10
			e.fake.Faults.SetConfig(p.Faults)
			if p.Faults.RateLimit > 0 {
				e.drv.sleep = pacer.Sleep // a rate limit runs on real time: wait it out
			}
			envs = append(envs, e)
			return e.drv, drivertest.SharedClock(e.fake.Faults, e.clock)
		},
		ChunkSize:      1 << 20,
		PageSize:       10,
		ForbiddenNames: gokuaifake.ForbiddenNames,
	})
	if len(envs) < 2 {
		t.Fatal("both profiles should have run")
	}
	if hostile := envs[len(envs)-1].fake.Faults; hostile.Restarts() == 0 || hostile.Injected()["auth-429"] == 0 {
		t.Fatalf("the hostile run restarted %d times and made %v: not hostile", hostile.Restarts(), hostile.Injected())
	}
	for _, e := range envs {
		if twins := e.fake.Twins(); len(twins) > 0 {
			t.Errorf("the suite left renamed twins: %q", twins)
		}
	}
}

// TestSignatureVector is the test vector of NOTES.md.
func TestSignatureVector(t *testing.T) {
	got := signValues("lZltU72WrEFOsbmT2IxSWg", []string{"NGCr2q1Fwc2tBWPfOartag", "1490605129", "会议资料/2017-10-31.docx"})
	if want := "glL9RlCmaDA6udIGo2DADTgCZlI="; got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
	// The same through sign: keys sorted, filehash and filesize left out.
	p := url.Values{"token": {"NGCr2q1Fwc2tBWPfOartag"}, "dateline": {"1490605129"}, "fullpath": {"会议资料/2017-10-31.docx"},
		"filehash": {"ffff"}, "filesize": {"12"}}
	// Key order: dateline, fullpath, token.
	want := signValues("lZltU72WrEFOsbmT2IxSWg", []string{"1490605129", "会议资料/2017-10-31.docx", "NGCr2q1Fwc2tBWPfOartag"})
	if got := sign("lZltU72WrEFOsbmT2IxSWg", p); got != want {
		t.Fatalf("sign(params) = %s, want %s", got, want)
	}
}

func ref(p string, o drivers.Object) drivers.Ref { return drivers.Ref{Path: p, Object: o} }

func names(t *testing.T, d *Driver, dir drivers.Ref) []string {
	t.Helper()
	objs, err := d.List(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	slices.Sort(out)
	return out
}

func delta(before, after map[string]int, key string) int { return after[key] - before[key] }

func TestLibrariesAtTheRoot(t *testing.T) {
	e := newEnv(t, nil)
	second := e.fake.AddLibrary(gokuaifake.TeamName, 1<<30) // a clashing name
	ctx := context.Background()
	root := drivertest.Root(t, e.drv)
	want := []string{gokuaifake.TeamName, gokuaifake.TeamName + " (3)", gokuaifake.PersonalName}
	slices.Sort(want)
	if got := names(t, e.drv, root); !slices.Equal(got, want) {
		t.Fatalf("the root lists %q, want %q", got, want)
	}
	if second != 3 {
		t.Fatalf("the added library has mount id %d", second)
	}
	// Stable: a new driver (a restarted bridge) shows the same names.
	if got := names(t, e.open(t), root); !slices.Equal(got, want) {
		t.Fatalf("after a restart the root lists %q, want %q", got, want)
	}

	_, err := e.drv.Put(ctx, root, "x.txt", drivertest.NewUpload([]byte("x")))
	if !errors.Is(err, drivers.ErrPermission) || !strings.Contains(err.Error(), "the mount root holds libraries; write inside one") {
		t.Fatalf("Put at the root: %v, want ErrPermission with the reason", err)
	}
	_, err = e.drv.Mkdir(ctx, root, "d")
	if !errors.Is(err, drivers.ErrPermission) || !strings.Contains(err.Error(), "the mount root holds libraries; write inside one") {
		t.Fatalf("Mkdir at the root: %v, want ErrPermission with the reason", err)
	}
	team := drivertest.Listed(t, e.drv, root, gokuaifake.TeamName)
	if err := e.drv.Remove(ctx, team); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("Remove of a library: %v, want ErrPermission", err)
	}
	if _, err := e.drv.Rename(ctx, team, "other"); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("Rename of a library: %v, want ErrPermission", err)
	}

	// Quotas: per library, none at the root, the sum for the mount.
	drivertest.Put(t, e.drv, team, "a.bin", bytes.Repeat([]byte("a"), 1000))
	q, err := e.drv.DirQuota(ctx, team)
	if err != nil || q.Total != 50<<30 || q.Used != 1000 || q.Free != 50<<30-1000 {
		t.Fatalf("DirQuota of Team: %+v %v", q, err)
	}
	personal := drivertest.Listed(t, e.drv, root, gokuaifake.PersonalName)
	sub, err := e.drv.Mkdir(ctx, personal, "sub")
	if err != nil {
		t.Fatal(err)
	}
	q, err = e.drv.DirQuota(ctx, ref("/"+gokuaifake.PersonalName+"/sub", sub))
	if err != nil || q.Total != 20<<30 || q.Used != 0 {
		t.Fatalf("DirQuota of a folder of the personal library: %+v %v", q, err)
	}
	if _, err := e.drv.DirQuota(ctx, root); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("DirQuota of the root: %v, want ErrNotSupported", err)
	}
	q, err = e.drv.Quota(ctx)
	if err != nil || q.Total != 20<<30+50<<30+1<<30 || q.Used != 1000 {
		t.Fatalf("Quota: %+v %v", q, err)
	}
	if b, ok := e.fake.File("/" + gokuaifake.TeamName + "/a.bin"); !ok || len(b) != 1000 {
		t.Fatal("the file is not in the Team library")
	}
}

func TestCrossLibraryMoveAndCopy(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	root := drivertest.Root(t, e.drv)
	personal := drivertest.Listed(t, e.drv, root, gokuaifake.PersonalName)
	team := drivertest.Listed(t, e.drv, root, gokuaifake.TeamName)
	data := bytes.Repeat([]byte("moved bytes "), 300_000) // 3.6 MB: several parts
	f := drivertest.Put(t, e.drv, personal, "big.bin", data)
	dir, err := e.drv.Mkdir(ctx, personal, "folder")
	if err != nil {
		t.Fatal(err)
	}
	dirRef := ref(personal.Path+"/folder", dir)
	drivertest.Put(t, e.drv, dirRef, "in.txt", []byte("inside"))

	bytesBefore, calls := e.fake.UploadBytes(), e.fake.Calls()
	o, err := e.drv.Move(ctx, f, team, "renamed.bin")
	if err != nil {
		t.Fatalf("cross-library move: %v", err)
	}
	if o.Name != "renamed.bin" || o.Size != int64(len(data)) || o.Hashes.SHA1 == "" {
		t.Fatalf("the moved file is %+v", o)
	}
	if _, err := e.drv.Move(ctx, dirRef, team, "folder"); err != nil {
		t.Fatalf("cross-library move of a folder: %v", err)
	}
	after := e.fake.Calls()
	if got := e.fake.UploadBytes() - bytesBefore; got != 0 {
		t.Fatalf("the move sent %d bytes", got)
	}
	for _, ep := range []string{"download", "dl", "create_file", "upload_part", "web_upload"} {
		if n := delta(calls, after, ep); n != 0 {
			t.Fatalf("the move called %s %d times: it must be server-side", ep, n)
		}
	}
	if n := delta(calls, after, "copy"); n != 2 {
		t.Fatalf("the moves made %d copy calls, want 2 (copy with delete_from)", n)
	}
	if got := e.fake.Names(gokuaifake.PersonalMount, ""); len(got) != 0 {
		t.Fatalf("the personal library still holds %q", got)
	}
	if b, ok := e.fake.LibraryFile(gokuaifake.TeamMount, "renamed.bin"); !ok || !bytes.Equal(b, data) {
		t.Fatal("the moved file's content is not in the Team library")
	}
	if b, ok := e.fake.LibraryFile(gokuaifake.TeamMount, "folder/in.txt"); !ok || string(b) != "inside" {
		t.Fatal("the moved folder's content is not in the Team library")
	}

	// COPY back to the personal library, under a new name: server-side too.
	calls = e.fake.Calls()
	moved := drivertest.Listed(t, e.drv, team, "renamed.bin")
	c, err := e.drv.Copy(ctx, moved, personal, "copy.bin")
	if err != nil || c.Name != "copy.bin" || c.Size != int64(len(data)) {
		t.Fatalf("cross-library copy: %+v %v", c, err)
	}
	after = e.fake.Calls()
	if got := e.fake.UploadBytes() - bytesBefore; got != 0 {
		t.Fatalf("the copy sent %d bytes", got)
	}
	if delta(calls, after, "dl")+delta(calls, after, "download")+delta(calls, after, "upload_part") != 0 {
		t.Fatal("the copy went through the bridge")
	}
	if b, ok := e.fake.LibraryFile(gokuaifake.PersonalMount, "copy.bin"); !ok || !bytes.Equal(b, data) {
		t.Fatal("the copy's content is wrong")
	}
	if _, ok := e.fake.LibraryFile(gokuaifake.TeamMount, "renamed.bin"); !ok {
		t.Fatal("the copy's source is gone")
	}
	if got := e.fake.Names(gokuaifake.PersonalMount, ""); !slices.Equal(got, []string{"copy.bin"}) {
		t.Fatalf("the personal library holds %q (a temporary folder left?)", got)
	}
	if _, err := e.drv.Move(ctx, moved, root, "x"); !errors.Is(err, drivers.ErrPermission) {
		t.Fatalf("a move into the mount root: %v, want ErrPermission", err)
	}
}

func TestDedupSendsNothing(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.TeamName})
	root := drivertest.Root(t, e.drv)
	data := bytes.Repeat([]byte("same content "), 200_000)
	drivertest.Put(t, e.drv, root, "first.bin", data)
	bytesBefore, calls := e.fake.UploadBytes(), e.fake.Calls()
	o := drivertest.Put(t, e.drv, root, "second.bin", data)
	after := e.fake.Calls()
	if got := e.fake.UploadBytes() - bytesBefore; got != 0 {
		t.Fatalf("a dedup hit sent %d bytes", got)
	}
	if n := delta(calls, after, "create_file"); n != 1 {
		t.Fatalf("a dedup hit made %d create_file calls, want 1", n)
	}
	for _, ep := range []string{"upload_init", "upload_part", "upload_finish"} {
		if n := delta(calls, after, ep); n != 0 {
			t.Fatalf("a dedup hit called %s %d times", ep, n)
		}
	}
	if b, ok := e.fake.LibraryFile(gokuaifake.TeamMount, "second.bin"); !ok || !bytes.Equal(b, data) {
		t.Fatal("the dedup copy's content is wrong")
	}
	if o.Object.Hashes.SHA1 != drivertest.NewUpload(data).Hashes.SHA1 {
		t.Fatalf("Put returned sha1 %q", o.Hashes.SHA1)
	}
	if l := drivertest.Listed(t, e.drv, root, "second.bin"); l.Hashes.SHA1 != o.Hashes.SHA1 {
		t.Fatalf("the listing's sha1 %q is not the content's", l.Hashes.SHA1)
	}
}

func TestResumeAfter409AndLostAnswers(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	root := drivertest.Root(t, e.drv)
	data := make([]byte, 5<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	// The first part is acknowledged but lost: the second answers 409
	// with the offset the server expects.
	e.fake.LoseNextPart()
	// The fourth part arrives but its answer is cut: upload_req tells.
	e.fake.Faults.Inject(faultCut("upload_part", 3))
	calls := e.fake.Calls()
	drivertest.Put(t, e.drv, root, "resumed.bin", data)
	after := e.fake.Calls()
	if e.fake.Conflicts() == 0 {
		t.Fatal("no 409 was answered: the lost part was not detected")
	}
	if n := delta(calls, after, "upload_req"); n != 1 {
		t.Fatalf("upload_req called %d times, want 1 (after the cut answer)", n)
	}
	if n := delta(calls, after, "upload_init"); n != 1 {
		t.Fatalf("upload_init called %d times, want 1", n)
	}
	if b, ok := e.fake.LibraryFile(gokuaifake.PersonalMount, "resumed.bin"); !ok || !bytes.Equal(b, data) {
		t.Fatal("the resumed upload's content is wrong")
	}
	// 6 parts, the lost one sent twice, the cut one not again.
	if n := delta(calls, after, "upload_part"); n != 8 {
		t.Fatalf("upload_part called %d times, want 8 (6 parts, a lost one again, a 409)", n)
	}
}

func TestFinishIsPolledWhileMerging(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	e.fake.FinishPolls = 3
	root := drivertest.Root(t, e.drv)
	calls := e.fake.Calls()
	drivertest.Put(t, e.drv, root, "merged.bin", []byte("merged content"))
	if n := delta(calls, e.fake.Calls(), "upload_finish"); n != 4 {
		t.Fatalf("upload_finish called %d times, want 4 (three 202s, then 200)", n)
	}
	sleeps := e.waits.Asked()
	if len(sleeps) != 3 || sleeps[0] <= 0 || sleeps[2] < sleeps[0] {
		t.Fatalf("waits between the polls: %v, want three growing ones", sleeps)
	}
	if b, _ := e.fake.LibraryFile(gokuaifake.PersonalMount, "merged.bin"); string(b) != "merged content" {
		t.Fatalf("content %q", b)
	}
}

func TestFinishPollIsBounded(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	e.fake.FinishPolls = 1000
	root := drivertest.Root(t, e.drv)
	_, err := e.drv.Put(context.Background(), root, "never.bin", drivertest.NewUpload([]byte("never")))
	if !errors.Is(err, drivers.ErrUnavailable) {
		t.Fatalf("Put while the server merges forever: %v, want ErrUnavailable", err)
	}
	if n := e.fake.Calls()["upload_finish"]; n != finishPolls {
		t.Fatalf("upload_finish polled %d times, want %d", n, finishPolls)
	}
	if e.fake.OpenUploads() != 0 || e.fake.Calls()["upload_abort"] != 1 {
		t.Fatalf("the session was not aborted (%d open)", e.fake.OpenUploads())
	}
	if e.fake.Exists(gokuaifake.PersonalMount, "never.bin") {
		t.Fatal("a failed upload is visible")
	}
}

func TestOverwriteLeavesOneFile(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	ctx := context.Background()
	root := drivertest.Root(t, e.drv)
	old := drivertest.Put(t, e.drv, root, "f.txt", []byte("the old content"))
	up := drivertest.NewUpload([]byte("the new content, longer"))
	up.Replaces = &old.Object
	o, err := e.drv.Put(ctx, root, "f.txt", up)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, e.drv, root); !slices.Equal(got, []string{"f.txt"}) {
		t.Fatalf("after an overwrite the root lists %q", got)
	}
	if twins := e.fake.Twins(); len(twins) != 0 {
		t.Fatalf("the overwrite made renamed twins %q (overwrite=1 forgotten?)", twins)
	}
	if o.ID == old.ID {
		t.Fatal("new content kept the old ID (a cached link would serve the old bytes)")
	}
	// A failing overwrite leaves the old file whole, and no session.
	cur := drivertest.Listed(t, e.drv, root, "f.txt")
	up = drivertest.NewUpload(bytes.Repeat([]byte("z"), 3<<20))
	up.Replaces = &cur.Object
	e.fake.Fail("upload_part", http.StatusInternalServerError, 100)
	if _, err := e.drv.Put(ctx, root, "f.txt", up); err == nil {
		t.Fatal("the overwrite succeeded although every part failed")
	}
	if b, _ := e.fake.LibraryFile(gokuaifake.PersonalMount, "f.txt"); string(b) != "the new content, longer" {
		t.Fatalf("after a failed overwrite the file holds %q", b)
	}
	if got := names(t, e.drv, root); !slices.Equal(got, []string{"f.txt"}) {
		t.Fatalf("after a failed overwrite the root lists %q", got)
	}
	if e.fake.OpenUploads() != 0 {
		t.Fatal("the failed upload's session was not aborted")
	}
}

func TestRefreshOnceForConcurrentCallers(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	root := drivertest.Root(t, e.drv)
	drivertest.Put(t, e.drv, root, "a.txt", []byte("a"))
	before := e.fake.Grants()
	e.fake.ExpireAccessTokens() // the server says 40102 to the token in hand
	drivertest.Concurrently(t, 20, func() error { _, err := e.drv.List(context.Background(), root); return err })
	after := e.fake.Grants()
	if n := after["refresh_token"] - before["refresh_token"]; n != 1 {
		t.Fatalf("%d refreshes for 20 callers, want 1", n)
	}
	if n := after["password"] - before["password"]; n != 0 {
		t.Fatalf("%d password logins, want none", n)
	}

	// Time runs out too: the store refreshes before expiry, once.
	e.clock.Advance(2 * time.Hour)
	before = e.fake.Grants()
	var wg2 sync.WaitGroup
	for range 20 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if _, err := e.drv.List(context.Background(), root); err != nil {
				t.Error(err)
			}
		}()
	}
	wg2.Wait()
	if n := e.fake.Grants()["refresh_token"] - before["refresh_token"]; n != 1 {
		t.Fatalf("%d refreshes for 20 callers after expiry, want 1", n)
	}
}

func TestReloginWhenTheRefreshTokenIsDead(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	root := drivertest.Root(t, e.drv)
	before := e.fake.Grants()
	e.fake.RevokeRefreshTokens()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.drv.List(context.Background(), root); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	after := e.fake.Grants()
	if n := after["password"] - before["password"]; n != 1 {
		t.Fatalf("%d password logins for 10 callers, want 1", n)
	}
	if n := after["refresh_token"] - before["refresh_token"]; n != 0 {
		t.Fatalf("%d refreshes succeeded with revoked tokens", n)
	}

	// Without a password the mount needs `bridge login`.
	e2 := newEnv(t, map[string]any{"library": gokuaifake.PersonalName, "password": nil, "username": nil})
	_, err := e2.drv.Root(context.Background())
	if !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("without tokens or password: %v, want ErrAuthExpired", err)
	}
}

func TestSignatureErrorsAreReportedNotLooped(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		e := newEnv(t, map[string]any{"client_secret": "not-the-secret"})
		_, err := e.drv.Root(context.Background())
		if !errors.Is(err, drivers.ErrAuthExpired) || !strings.Contains(err.Error(), "client_secret is wrong") {
			t.Fatalf("Root with a wrong secret: %v", err)
		}
		if _, err := e.drv.Root(context.Background()); !errors.Is(err, drivers.ErrAuthExpired) {
			t.Fatalf("second call: %v", err)
		}
		// One login tried, then answered from memory; nothing retried.
		if n := e.fake.Calls()["token"]; n != 1 {
			t.Fatalf("the token endpoint was called %d times, want 1", n)
		}
		if n := strings.Count(e.logs.String(), "client_secret is wrong"); n != 1 {
			t.Fatalf("the log says it %d times, want once:\n%s", n, e.logs.String())
		}
	})
	t.Run("clock skew", func(t *testing.T) {
		e := newEnv(t, nil)
		if _, err := e.drv.Root(context.Background()); err != nil {
			t.Fatal(err)
		}
		calls := e.fake.Calls()
		e.drv.now = func() time.Time { return e.clock.Now().Add(-10 * time.Minute) }
		_, err := e.drv.List(context.Background(), ref("/"+gokuaifake.TeamName, drivers.Object{IsDir: true}))
		if !errors.Is(err, drivers.ErrAuthExpired) || !strings.Contains(err.Error(), "clock is off") {
			t.Fatalf("List with a clock 10 minutes slow: %v", err)
		}
		if n := delta(calls, e.fake.Calls(), "ls"); n != 1 {
			t.Fatalf("ls called %d times, want 1 (no retry loop)", n)
		}
		if !strings.Contains(e.logs.String(), "clock is off (by about -10m0s") {
			t.Fatalf("the log does not say the clock is off by 10 minutes:\n%s", e.logs.String())
		}
	})
}

func TestLoginAsksAndStoresOnlyTokens(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName, "password": nil, "username": nil})
	in := strings.NewReader(e.fake.Username + "\n" + e.fake.Password + "\n")
	var out bytes.Buffer
	if err := e.drv.Login(context.Background(), &out, drivers.LoginOptions{In: in}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Password for "+e.fake.Username) {
		t.Fatalf("the prompt: %q", out.String())
	}
	state := readDir(t, e.state)
	for _, secret := range []string{e.fake.Password, md5hex(e.fake.Password)} {
		if strings.Contains(state, secret) {
			t.Fatal("the password (or its md5) is stored")
		}
	}
	// A new driver (the serving bridge) works from the stored tokens.
	d := e.open(t)
	if _, err := d.List(context.Background(), drivertest.Root(t, d)); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Grants()["password"]; n != 1 {
		t.Fatalf("%d password logins, want the one of `bridge login`", n)
	}

	// A wrong password is refused clearly.
	in = strings.NewReader(e.fake.Username + "\nwrong\n")
	if err := e.drv.Login(context.Background(), &out, drivers.LoginOptions{In: in}); !errors.Is(err, drivers.ErrAuthExpired) {
		t.Fatalf("login with a wrong password: %v", err)
	}
}

func TestMkdirExistingAndNames(t *testing.T) {
	e := newEnv(t, map[string]any{"library": gokuaifake.PersonalName})
	ctx := context.Background()
	root := drivertest.Root(t, e.drv)
	if _, err := e.drv.Mkdir(ctx, root, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.drv.Mkdir(ctx, root, "d"); !errors.Is(err, drivers.ErrExist) {
		t.Fatalf("second Mkdir: %v", err)
	}
	if twins := e.fake.Twins(); len(twins) != 0 {
		t.Fatalf("Mkdir made twins %q", twins)
	}
	if _, err := e.drv.Mkdir(ctx, root, "a:b"); !errors.Is(err, drivers.ErrInvalidName) {
		t.Fatalf("Mkdir a:b: %v", err)
	}
}

// faultCut cuts the answer of the call of endpoint after skip others.
func faultCut(endpoint string, skip int) faults.Fault {
	return faults.Fault{Endpoint: endpoint, Skip: skip, Cut: true}
}

// readDir is every file's content under dir, joined.
func readDir(t *testing.T, dir string) string {
	t.Helper()
	var all strings.Builder
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		all.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all.String()
}

// TestBridgePropfindColdAndWarm counts file/ls calls behind PROPFINDs
// through davfs: the driver lists by path, so a cold folder costs its own
// pages (no ancestor is listed to find it), an empty one its parent's
// listing too (an empty listing is no proof that a folder exists).
func TestBridgePropfindColdAndWarm(t *testing.T) {
	e := newEnv(t, nil) // every library under the mount root
	e.fake.PageMax = 10
	for i := range 25 {
		e.fake.Put(gokuaifake.TeamMount, fmt.Sprintf("big/f%02d.txt", i), []byte("x"))
	}
	e.fake.Put(gokuaifake.TeamMount, "a/b/c/x.txt", []byte("x"))
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(), Mounts: []davfs.Mount{{Path: "/d", Driver: e.drv}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	propfind := func(p string) int { return drivertest.Do(t, "PROPFIND", hs.URL+p, "Depth", "1") }
	ls := func() int { return e.fake.Calls()["ls"] }
	team := "/d/" + gokuaifake.TeamName

	// big/'s 3 pages, and neither the library root nor the mount root.
	if st := propfind(team + "/big/"); st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND big: %d", st)
	}
	if n := ls(); n != 3 {
		t.Fatalf("cold PROPFIND made %d list calls, want 3", n)
	}
	if st := propfind(team + "/big/"); st != http.StatusMultiStatus || ls() != 3 {
		t.Fatalf("warm PROPFIND: %d, %d more list calls, want 0", st, ls()-3)
	}

	if _, err := e.drv.Mkdir(context.Background(), ref("/"+gokuaifake.TeamName+"/a/b", drivers.Object{Name: "b", IsDir: true}), "empty"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path  string
		calls int
	}{{team + "/a/b/c/", 1}, {team + "/a/b/empty/", 2}} {
		before := ls()
		if st := propfind(c.path); st != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %s: %d", c.path, st)
		}
		if n := ls() - before; n != c.calls {
			t.Errorf("cold PROPFIND of %s made %d list calls, want %d", c.path, n, c.calls)
		}
	}
	for _, p := range []string{team + "/a/missing/", team + "/big/f01.txt/below/", team + "/nothing/at/all/"} {
		if st := propfind(p); st != http.StatusNotFound {
			t.Errorf("PROPFIND %s: %d, want 404", p, st)
		}
	}
}

// TestListByPathNotAFolder: listed by path alone (no ID), a path that is
// not a folder is ErrNotFound under both readings of file/ls (the fake's
// empty or lone-file answer, and a 404), and a library root, always
// there, costs no check.
func TestListByPathNotAFolder(t *testing.T) {
	e := newEnv(t, nil) // every library under the mount root
	ctx := context.Background()
	team := "/" + gokuaifake.TeamName
	e.fake.Put(gokuaifake.TeamMount, "f.txt", []byte("f"))
	e.fake.Put(gokuaifake.TeamMount, "same/same", []byte("same"))
	byPath := func(p string) drivers.Ref {
		return ref(p, drivers.Object{Name: path.Base(p), IsDir: true})
	}
	if _, err := e.drv.Mkdir(ctx, byPath(team), "empty"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{team + "/missing", team + "/f.txt", team + "/f.txt/below", team + "/same/same", "/no library/x"} {
		if objs, err := e.drv.List(ctx, byPath(p)); !errors.Is(err, drivers.ErrNotFound) {
			t.Errorf("List %s: %d entries, %v; want ErrNotFound", p, len(objs), err)
		}
	}
	for _, c := range []struct {
		path  string
		want  []string
		calls int // file/ls calls
	}{
		{team + "/empty", nil, 2}, // and its parent's, as proof
		{team + "/same", []string{"same"}, 2},
		{"/" + gokuaifake.PersonalName, nil, 1}, // an empty library root
		{team, []string{"empty", "f.txt", "same"}, 1},
		{"/", []string{gokuaifake.TeamName, gokuaifake.PersonalName}, 0},
	} {
		before := e.fake.Calls()
		if got := names(t, e.drv, byPath(c.path)); !slices.Equal(got, c.want) {
			t.Errorf("List %s: %q, want %q", c.path, got, c.want)
		}
		if n := delta(before, e.fake.Calls(), "ls"); n != c.calls {
			t.Errorf("List %s made %d list calls, want %d", c.path, n, c.calls)
		}
	}

	// The other reading: a server answering 404 for a path that is not
	// a folder; nothing more is asked.
	e.fake.Fail("ls", http.StatusNotFound, 1)
	before := e.fake.Calls()
	if _, err := e.drv.List(ctx, byPath(team+"/gone")); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("List after a 404: %v, want ErrNotFound", err)
	}
	if n := delta(before, e.fake.Calls(), "ls"); n != 1 {
		t.Fatalf("a 404 led to %d list calls, want 1", n)
	}
}

// TestListPagesInParallel: once the first page's count tells how many
// entries there are, the other pages are asked for together (at most
// listParallel at once), with the calls one by one would make.
func TestListPagesInParallel(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.PageMax = 10
	for i := range 95 {
		e.fake.Put(gokuaifake.TeamMount, fmt.Sprintf("big/f%02d.txt", i), []byte("x"))
	}
	var now, most atomic.Int32
	h := e.fake.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/m-api/1/file/ls" {
			n := now.Add(1)
			defer now.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond) // long enough for the others to arrive
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	e.opts["base_url"] = srv.URL
	d := e.open(t)
	before := e.fake.Calls()["ls"]
	objs, err := d.List(t.Context(), ref("/"+gokuaifake.TeamName+"/big", drivers.Object{Name: "big", IsDir: true}))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, o := range objs {
		names[o.Name] = true
	}
	if len(objs) != 95 || len(names) != 95 {
		t.Fatalf("listed %d entries (%d names), want 95", len(objs), len(names))
	}
	if n := e.fake.Calls()["ls"] - before; n != 10 {
		t.Errorf("%d file/ls calls, want 10 (pages of 10)", n)
	}
	if m := most.Load(); m < 2 || m > listParallel {
		t.Errorf("at most %d file/ls calls ran at once, want 2 to %d", m, listParallel)
	}
}
