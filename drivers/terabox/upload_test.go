package terabox

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
	teraboxfake "bridge/tests/fakes/terabox"
)

func upload(b []byte) drivers.Upload { return drivertest.NewUpload(b) }

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// TestBlocksAreExactAndChecked: a 9 MiB file goes up as 4 + 4 + 1 MiB (the
// fake refuses any other cut), every byte once; a block the server got
// corrupted (its answered md5 differs) is sent again; create comes after
// all blocks.
func TestBlocksAreExactAndChecked(t *testing.T) {
	e := newEnv(t, faults.Config{})
	data := pattern(9<<20, 1)
	e.drv.opts.UploadConcurrency = 1 // the first block is the one corrupted
	e.fake.FlipBlocks(1)
	o, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "nine.bin", upload(data))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/nine.bin"); !bytes.Equal(got, data) || o.Size != int64(len(data)) || o.Hashes != (drivers.Hashes{}) {
		t.Fatalf("stored %d bytes, put answered %+v", len(got), o)
	}
	if c := e.fake.Calls(); c["superfile2"] != 4 || c["precreate"] != 1 || c["create"] != 1 {
		t.Fatalf("calls %v: want 3 blocks + 1 sent again after an md5 mismatch", c)
	}
	if n := e.fake.BytesReceived(); n != int64(len(data))+4<<20 {
		t.Fatalf("%d bytes received, want the file plus the first block again", n)
	}
	if e.fake.OpenUploads() != 0 {
		t.Fatal("an upload session is left open")
	}
}

// TestDedupSendsNoBytes: a file whose blocks the account holds already is
// made by precreate alone: not one byte goes up. Over an existing name the
// dedup copy lands beside it (a time suffix), and the driver swaps it into
// place without a stray left.
func TestDedupSendsNoBytes(t *testing.T) {
	e := newEnv(t, faults.Config{})
	ctx := context.Background()
	data := pattern(9<<20, 2)
	e.fake.Put("/elsewhere.bin", data)
	if _, err := e.drv.Put(ctx, drivertest.Root(t, e.drv), "copy.bin", upload(data)); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c["superfile2"] != 0 || c["create"] != 0 || c["precreate"] != 1 || e.fake.BytesReceived() != 0 {
		t.Fatalf("dedup sent bytes: calls %v, %d bytes", c, e.fake.BytesReceived())
	}
	if got, _ := e.fake.File("/copy.bin"); !bytes.Equal(got, data) {
		t.Fatal("the dedup copy has the wrong content")
	}

	e.fake.Put("/f.bin", []byte("old content"))
	old := drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "f.bin")
	up := upload(data)
	up.Replaces = &old.Object
	o, err := e.drv.Put(ctx, drivertest.Root(t, e.drv), "f.bin", up)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/f.bin"); !bytes.Equal(got, data) || o.Name != "f.bin" {
		t.Fatalf("overwrite by dedup: %d bytes at f.bin, put answered %+v", len(got), o)
	}
	if names := e.fake.Names("/"); !slices.Equal(names, []string{"copy.bin", "elsewhere.bin", "f.bin"}) {
		t.Fatalf("the folder holds %q", names)
	}
	if e.fake.BytesReceived() != 0 {
		t.Fatal("the overwrite by dedup sent bytes")
	}
}

// TestFailedOverwriteKeepsTheOldFile: blocks that cannot go up mean no
// create at all: the old file stays as it was.
func TestFailedOverwriteKeepsTheOldFile(t *testing.T) {
	e := newEnv(t, faults.Config{})
	e.fake.Put("/f.bin", []byte("old content"))
	old := drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "f.bin")
	e.fake.Fail("superfile2", http.StatusBadGateway, 100)
	up := upload(pattern(5<<20, 3))
	up.Replaces = &old.Object
	_, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "f.bin", up)
	if !errors.Is(e.noteErr(err), drivers.ErrUnavailable) {
		t.Fatalf("upload with failing blocks: %v, want ErrUnavailable", err)
	}
	if got, _ := e.fake.File("/f.bin"); string(got) != "old content" {
		t.Fatalf("old file lost: %q", got)
	}
	if c := e.fake.Calls(); c["create"] != 0 {
		t.Fatalf("calls %v: create before the blocks were in", c)
	}
	if names := e.fake.Names("/"); !slices.Equal(names, []string{"f.bin"}) {
		t.Fatalf("the folder holds %q", names)
	}
}

// TestForgottenUploadStartsOver: an upload session the service forgot
// (31190 at create) is started over once.
func TestForgottenUploadStartsOver(t *testing.T) {
	e := newEnv(t, faults.Config{})
	data := pattern(5<<20, 4)
	e.fake.FailErrno("create", teraboxfake.ErrnoNoUpload, 1)
	if _, err := e.drv.Put(context.Background(), drivertest.Root(t, e.drv), "again.bin", upload(data)); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fake.File("/again.bin"); !bytes.Equal(got, data) {
		t.Fatal("wrong content")
	}
	if c := e.fake.Calls(); c["precreate"] != 2 || c["superfile2"] != 4 || c["create"] != 2 {
		t.Fatalf("calls %v: want the whole upload twice", c)
	}
}

// TestLinkCarriesTheTokenAndIsProxied: the dlink works only with the
// access token appended, so the link is not ClientSafe; it expires when
// the dlink says; Range works.
func TestLinkCarriesTheTokenAndIsProxied(t *testing.T) {
	e := newEnv(t, faults.Config{})
	e.fake.Put("/v.bin", []byte("0123456789"))
	asked := e.clock.Now()
	l, err := e.drv.Link(context.Background(), drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "v.bin"))
	if err != nil {
		t.Fatal(err)
	}
	access, _ := storedPair(t, e.state)
	if l.ClientSafe || !strings.Contains(l.URL, "access_tokens="+access) || !l.Expires.Equal(asked.Add(time.Hour)) {
		t.Fatalf("link ClientSafe %v, expires %v (asked %v), token in it %v", l.ClientSafe, l.Expires, asked,
			strings.Contains(l.URL, access))
	}
	get := func(u string) (int, string) {
		code, b := drivertest.Get(t, u, "bytes=2-4")
		return code, string(b)
	}
	if code, body := get(l.URL); code != http.StatusPartialContent || body != "234" {
		t.Fatalf("range: %d %q", code, body)
	}
	if code, _ := get(strings.Replace(l.URL, "access_tokens="+access, "", 1)); code != http.StatusForbidden {
		t.Fatalf("the dlink without the token answered %d", code)
	}
	e.clock.Advance(61 * time.Minute)
	if code, _ := get(l.URL); code != http.StatusForbidden {
		t.Fatalf("an expired dlink answered %d", code)
	}
	// A 60-second link: Expires follows the dlink's own expires.
	e.fake.Faults.SetConfig(faults.Config{LinkTTL: time.Minute})
	asked = e.clock.Now()
	if l, err = e.drv.Link(context.Background(), drivertest.Listed(t, e.drv, drivertest.Root(t, e.drv), "v.bin")); err != nil || !l.Expires.Equal(asked.Add(time.Minute)) {
		t.Fatalf("60-second dlink expires %v (asked %v): %v", l.Expires, asked, err)
	}
}
