package davfs

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"bridge/drivers"
)

func sums(data string) drivers.Hashes {
	m, s := md5.Sum([]byte(data)), sha1.Sum([]byte(data))
	return drivers.Hashes{MD5: hex.EncodeToString(m[:]), SHA1: hex.EncodeToString(s[:])}
}

// An upload computes the hashes the driver declared and those the client
// asked to verify, and no other: hashing, not the disk, set the pace of
// big uploads.
func TestUploadComputesOnlyTheHashesNeeded(t *testing.T) {
	const data = "hash only what is needed"
	want := sums(data)
	cases := []struct {
		name     string
		need     drivers.HashSet
		header   string
		wantSent drivers.Hashes
		status   int
	}{
		{name: "none needed", wantSent: drivers.Hashes{}, status: http.StatusCreated},
		{name: "driver needs md5", need: drivers.HashMD5, wantSent: drivers.Hashes{MD5: want.MD5}, status: http.StatusCreated},
		{name: "driver needs sha1", need: drivers.HashSHA1, wantSent: drivers.Hashes{SHA1: want.SHA1}, status: http.StatusCreated},
		{name: "client verifies sha1", header: "SHA1:" + want.SHA1, wantSent: drivers.Hashes{SHA1: want.SHA1}, status: http.StatusCreated},
		{name: "both", need: drivers.HashMD5, header: "SHA1:" + want.SHA1, wantSent: want, status: http.StatusCreated},
		{name: "client's checksum wrong", header: "MD5:" + strings.Repeat("0", 32), status: http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := allFeatures()
			f.UploadHashes = c.need
			d := newMemDriver(t, f)
			e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
			var hdr []string
			if c.header != "" {
				hdr = []string{"OC-Checksum", c.header}
			}
			resp := e.do(t, "PUT", "/m/a.txt", strings.NewReader(data), hdr...)
			wantStatus(t, resp, c.status)
			if c.status != http.StatusCreated {
				if _, ok := d.file("/a.txt"); ok {
					t.Fatal("a body failing its checksum was stored")
				}
				return
			}
			d.mu.Lock()
			got := d.lastHashes
			d.mu.Unlock()
			if got != c.wantSent {
				t.Fatalf("Put got hashes %+v, want %+v", got, c.wantSent)
			}
		})
	}
}

// hashingDriver computes hashes on demand, as the local driver does.
type hashingDriver struct {
	*memDriver
	calls atomic.Int32
}

func (h *hashingDriver) Hash(ctx context.Context, file drivers.Ref) (drivers.Hashes, error) {
	h.calls.Add(1)
	data, ok := h.file(file.Path)
	if !ok {
		return drivers.Hashes{}, drivers.ErrNotFound
	}
	return sums(string(data)), nil
}

// Checksums missing from a listing are computed when a client names
// oc:checksums, and only then.
func TestChecksumsComputedWhenAsked(t *testing.T) {
	d := &hashingDriver{memDriver: newMemDriver(t, allFeatures())}
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/m/a.txt", strings.NewReader("abc")), http.StatusCreated)

	for _, body := range []string{"", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`} {
		resp := e.do(t, "PROPFIND", "/m/", strings.NewReader(body), "Depth", "1")
		wantStatus(t, resp, http.StatusMultiStatus)
		if b := readBody(t, resp); strings.Contains(b, "checksum") {
			t.Fatalf("allprop computed checksums: %s", b)
		}
	}
	if n := d.calls.Load(); n != 0 {
		t.Fatalf("%d Hash calls without oc:checksums asked", n)
	}
	ask := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:oc="http://owncloud.org/ns"><D:prop><D:getetag/><oc:checksums/></D:prop></D:propfind>`
	resp := e.do(t, "PROPFIND", "/m/", strings.NewReader(ask), "Depth", "1")
	wantStatus(t, resp, http.StatusMultiStatus)
	b := readBody(t, resp)
	if want := "SHA1:" + sums("abc").SHA1; !strings.Contains(b, want) {
		t.Fatalf("oc:checksums asked, %s not served: %s", want, b)
	}
	if n := d.calls.Load(); n != 1 {
		t.Fatalf("%d Hash calls for one file", n)
	}
}

// An empty file the bridge keeps for a provider that stores none carries
// the client's modification time, as any other upload does (rclone would
// otherwise upload it again on every sync).
func TestPendingEmptyFileKeepsTheClientsTime(t *testing.T) {
	f := allFeatures()
	f.EmptyFiles = false
	d := newMemDriver(t, f)
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	wantStatus(t, e.do(t, "PUT", "/m/empty.txt", strings.NewReader(""), "X-OC-Mtime", "1600000000"), http.StatusCreated)
	resp := e.do(t, "PROPFIND", "/m/empty.txt", nil, "Depth", "0")
	wantStatus(t, resp, http.StatusMultiStatus)
	if b := readBody(t, resp); !strings.Contains(b, "Sun, 13 Sep 2020 12:26:40 GMT") {
		t.Fatalf("the pending file's time is not the client's: %s", b)
	}
}
