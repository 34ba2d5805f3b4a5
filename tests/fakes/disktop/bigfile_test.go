package disktopfake

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"testing"
)

// pattern is a deterministic byte stream (byte i is a function of i
// alone), so a big file can be uploaded and checked without ever being in
// memory. It repeats a pseudo-random block whose length divides no part
// size, so a part put in the wrong place shows.
type pattern struct{ off, end int64 }

const patternPeriod = 1<<20 + 7

var patternBlock = sync.OnceValue(func() []byte {
	b := make([]byte, patternPeriod+7)
	for i := 0; i+8 <= len(b); i += 8 {
		w := uint64(i) + 0x9e3779b97f4a7c15
		w = (w ^ w>>30) * 0xbf58476d1ce4e5b9
		w = (w ^ w>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(b[i:], w^w>>31)
	}
	return b[:patternPeriod]
})

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.end {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.end-p.off)]
	n := 0
	for n < len(b) {
		k := copy(b[n:], patternBlock()[(p.off+int64(n))%patternPeriod:])
		n += k
	}
	p.off += int64(n)
	return n, nil
}

// patternBytes is bytes [a, b) of the pattern.
func patternBytes(a, b int64) []byte {
	out, _ := io.ReadAll(&pattern{a, b})
	return out
}

// rangeGet reads bytes [a, b) of a link with a Range header.
func rangeGet(t *testing.T, link string, a, b int64) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", link, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", a, b-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("range %d-%d: HTTP %d %q", a, b-1, resp.StatusCode, got)
	}
	return got
}

// TestBigUploadIsNotKeptInMemory uploads 256 MiB in parts (out of order)
// and checks that neither the parts nor the file stay in the heap, nor go
// through it whole: what the fake allocates while receiving, assembling
// and hashing is a small fraction of the file.
func TestBigUploadIsNotKeptInMemory(t *testing.T) {
	const size = 256<<20 + 12345
	h := newHarness(t)
	h.f.ChunkSize = 8 << 20
	access, _ := h.f.IssueToken()
	sum := md5.New()
	io.Copy(sum, &pattern{0, size})
	want := hex.EncodeToString(sum.Sum(nil))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	c, body := h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {"big.bin"},
		"size": {fmt.Sprint(size)}, "md5": {want}}, nil)
	pc := data(body)
	if c != 200 || pc["total_parts"] != float64(33) {
		t.Fatalf("precreate: %d %v", c, body)
	}
	id, ep := pc["upload_id"].(string), pc["endpoint"].(string)
	for seq := int64(33); seq >= 1; seq-- { // any order
		a := (seq - 1) * h.f.ChunkSize
		b := min(a+h.f.ChunkSize, size)
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/u?upload_id=%s&part_seq=%d", ep, id, seq), &pattern{a, b})
		req.ContentLength = b - a
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("part %d: HTTP %d", seq, resp.StatusCode)
		}
	}
	if c, body := h.do("POST", ep+"/u/"+id+"/complete", "", url.Values{}, nil); c != 200 || data(body)["md5"] != want ||
		data(body)["size"] != float64(size) {
		t.Fatalf("complete: %d %v", c, body)
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	total := after.TotalAlloc - before.TotalAlloc
	t.Logf("uploading %d MiB: heap grew %.1f MiB, %.1f MiB allocated in all", size>>20,
		float64(heap)/(1<<20), float64(total)/(1<<20))
	if heap > 32<<20 || total > 32<<20 {
		t.Fatalf("the upload went through memory: heap +%d, allocated %d", heap, total)
	}

	_, body = h.do("GET", "/v1/files?path=/", access, nil, nil)
	f := data(body)["files"].([]any)[0].(map[string]any)
	if f["size"] != float64(size) || f["md5"] != want {
		t.Fatalf("listing: %v", f)
	}
	_, body = h.do("GET", fmt.Sprintf("/v1/files/%v/download", f["id"]), access, nil, nil)
	link := data(body)["url"].(string)
	for _, r := range [][2]int64{{size - 100_000, size}, {size - 1, size}, {8<<20 - 5, 8<<20 + 5}, {0, 10}} {
		if got := rangeGet(t, link, r[0], r[1]); !bytes.Equal(got, patternBytes(r[0], r[1])) {
			t.Fatalf("bytes %d-%d differ", r[0], r[1]-1)
		}
	}
	// An instant upload of the same content shares it, on disk too.
	c, body = h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {"twin.bin"},
		"size": {fmt.Sprint(size)}, "md5": {want}}, nil)
	if c != 200 || data(body)["instant_upload"] != true {
		t.Fatalf("dedup: %d %v", c, body)
	}
	if n := tempFiles(t, h.f); n != 1 {
		t.Fatalf("%d temp files, want 1 (parts removed, the twin shares the file)", n)
	}
}

// tempFiles counts the files in the fake's temp dir.
func tempFiles(t *testing.T, f *Fake) int {
	t.Helper()
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSizesPast4GiB checks the part arithmetic, the listings and ranged
// downloads of a file over 4 GiB. The big file is placed behind the API's
// back as a sparse temp file, so the test writes a few KiB.
func TestSizesPast4GiB(t *testing.T) {
	const size = 5<<30 + 3
	h := newHarness(t)
	h.f.ChunkSize = 1 << 30
	access, _ := h.f.IssueToken()
	pre := func(name string, size int64) (int, map[string]any) {
		return h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {name},
			"size": {fmt.Sprint(size)}, "md5": {md5hex([]byte(name))}}, nil)
	}
	c, body := pre("big.bin", size)
	pc := data(body)
	if c != 200 || pc["total_parts"] != float64(6) {
		t.Fatalf("precreate: %d %v", c, body)
	}
	id, ep := pc["upload_id"].(string), pc["endpoint"].(string)
	partURL := func(seq int) string { return fmt.Sprintf("%s/u?upload_id=%s&part_seq=%d", ep, id, seq) }
	if c, body := h.do("POST", partURL(6), "", nil, []byte("xyz")); c != 200 || data(body)["size"] != float64(3) {
		t.Fatalf("last part: %d %v", c, body)
	}
	if c, body := h.do("POST", partURL(1), "", nil, []byte("short")); c != 400 ||
		body["errmsg"] != "part 1 must be 1073741824 bytes, got 5" {
		t.Fatalf("short first part: %d %v", c, body)
	}
	_, body = h.do("GET", ep+"/u/"+id+"/parts", "", nil, nil)
	if got := fmt.Sprint(data(body)["received_parts"]); got != "[6]" {
		t.Fatalf("parts: %v", body)
	}
	if c, body := pre("huge.bin", 1<<63-1); c != http.StatusInsufficientStorage {
		t.Fatalf("precreate of 2^63-1 bytes: %d %v", c, body)
	}

	fl, err := os.CreateTemp(h.f.dir, "v-*")
	if err != nil {
		t.Fatal(err)
	}
	tail := patternBytes(size-1000, size)
	if err := fl.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.WriteAt(tail, size-1000); err != nil {
		t.Fatal(err)
	}
	fl.Close()
	h.f.mu.Lock()
	h.f.newFile(h.f.sandbox(), "sparse.bin", &blob{file: fl.Name(), size: size, md5: md5hex(nil)})
	h.f.mu.Unlock()
	_, body = h.do("GET", "/v1/files?path=/", access, nil, nil)
	f := data(body)["files"].([]any)[0].(map[string]any)
	if f["size"] != float64(size) {
		t.Fatalf("listing: %v", f)
	}
	if _, body = h.do("GET", "/v1/user/quota", access, nil, nil); data(body)["used_bytes"] != float64(size) {
		t.Fatalf("quota: %v", body)
	}
	_, body = h.do("GET", fmt.Sprintf("/v1/files/%v/download", f["id"]), access, nil, nil)
	if data(body)["size"] != float64(size) {
		t.Fatalf("download: %v", body)
	}
	link := data(body)["url"].(string)
	if got := rangeGet(t, link, size-1000, size); !bytes.Equal(got, tail) {
		t.Fatal("the last bytes differ")
	}
	if got := rangeGet(t, link, 4<<30-5, 4<<30+5); !bytes.Equal(got, make([]byte, 10)) {
		t.Fatalf("bytes around 4 GiB: %v", got)
	}
	h.f.Put("/d/small", []byte("abc"))
	if got, ok := h.f.File("/d/small"); !ok || string(got) != "abc" {
		t.Fatalf("File after Put: %q %v", got, ok)
	}
	if _, ok := h.f.File("/d/missing"); ok {
		t.Fatal("File of a missing path")
	}
}

// TestTempFilesAreRemoved checks that received parts go with their
// session (abort, restart), a file's content with its last copy, and the
// whole folder with Close.
func TestTempFilesAreRemoved(t *testing.T) {
	h := newHarness(t)
	h.f.ChunkSize = 4
	access, _ := h.f.IssueToken()
	upload := func(name string) string {
		_, body := h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {name},
			"size": {"8"}, "md5": {md5hex([]byte("abcdefgh"))}}, nil)
		id := data(body)["upload_id"].(string)
		if c, _ := h.do("POST", "/upload/u?upload_id="+id+"&part_seq=1", "", nil, []byte("abcd")); c != 200 {
			t.Fatalf("part: %d", c)
		}
		return id
	}
	id := upload("a")
	if n := tempFiles(t, h.f); n != 1 {
		t.Fatalf("%d temp files with one part received", n)
	}
	h.do("POST", "/upload/u/"+id+"/abort", "", url.Values{}, nil)
	if n := tempFiles(t, h.f); n != 0 {
		t.Fatalf("%d temp files after abort", n)
	}
	upload("b")
	h.f.Faults.Restart()
	if n := tempFiles(t, h.f); n != 0 {
		t.Fatalf("%d temp files after a restart", n)
	}
	access, _ = h.f.IssueToken()
	h.f.Put("/x", []byte("abcdefgh"))
	h.f.Put("/x", []byte("abcdefgh")) // replaces the first
	if _, body := h.do("POST", "/v1/files/upload/precreate", access, url.Values{"parent_path": {"/"}, "name": {"y"},
		"size": {"8"}, "md5": {md5hex([]byte("abcdefgh"))}}, nil); data(body)["instant_upload"] != true {
		t.Fatalf("dedup: %v", body)
	}
	if n := tempFiles(t, h.f); n != 1 {
		t.Fatalf("%d temp files for two files of one content", n)
	}
	_, body := h.do("GET", "/v1/files?path=/", access, nil, nil)
	form := url.Values{"action": {"delete"}}
	for _, f := range data(body)["files"].([]any) {
		form.Add("file_ids[]", fmt.Sprint(f.(map[string]any)["id"]))
	}
	if c, body := h.do("POST", "/v1/files/manage", access, form, nil); c != 200 {
		t.Fatalf("delete: %d %v", c, body)
	}
	if n := tempFiles(t, h.f); n != 0 {
		t.Fatalf("%d temp files after deleting every file", n)
	}
	h.f.Put("/z", []byte("z"))
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.f.dir); !os.IsNotExist(err) {
		t.Fatalf("the temp dir after Close: %v", err)
	}
}
