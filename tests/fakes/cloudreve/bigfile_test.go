package cloudrevefake

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// send sends [a, b) of the pattern and returns the HTTP status and body.
func send(t *testing.T, method, u string, a, b int64, header http.Header) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, &pattern{a, b})
	req.ContentLength = b - a
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// checkRanges downloads ranges of the file dir/name through a signed link
// and compares them with the pattern, and its listed size with size.
func (c *client) checkRanges(dir, name string, size int64, ranges ...[2]int64) {
	c.t.Helper()
	var rel string
	json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/download/"+c.id(dir, name, "file"), nil), 0).Data, &rel)
	for _, r := range ranges {
		req, _ := http.NewRequest("GET", c.base+rel, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]-1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, patternBytes(r[0], r[1])) {
			c.t.Fatalf("%s bytes %d-%d: HTTP %d, %d bytes, not the uploaded ones", name, r[0], r[1]-1, resp.StatusCode, len(got))
		}
	}
	for _, o := range c.list(dir).Objects {
		if o.Name == name && o.Size != size {
			c.t.Fatalf("%s listed with size %d, want %d", name, o.Size, size)
		}
	}
}

// memGrowth runs fn and returns how much the live heap grew (after a GC)
// and how much was allocated in all meanwhile, the fake's server included.
func memGrowth(fn func()) (heap int64, total uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), after.TotalAlloc - before.TotalAlloc
}

// TestBigUploadIsNotKeptInMemory uploads 256 MiB through each upload
// protocol (local chunks, OneDrive ranges) and checks that the content
// neither stays in the heap nor goes through it whole.
func TestBigUploadIsNotKeptInMemory(t *testing.T) {
	const size = 256<<20 + 12345
	c := start(t)
	c.f.ChunkSize = 8 << 20
	c.f.UseOneDrive("/od")
	c.login()
	patternBlock() // made once, before measuring
	upload := func(dir, name string) (sid string, chunk int64, urls []string) {
		var s struct {
			SessionID  string
			ChunkSize  int64
			UploadURLs []string
		}
		l := c.list(dir)
		json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": dir, "size": size, "name": name,
			"policy_id": l.Policy.ID, "last_modified": 0}), 0).Data, &s)
		return s.SessionID, s.ChunkSize, s.UploadURLs
	}
	check := func(what string, heap int64, total uint64) {
		t.Logf("%s, %d MiB: heap grew %.1f MiB, %.1f MiB allocated in all", what, size>>20,
			float64(heap)/(1<<20), float64(total)/(1<<20))
		if heap > 32<<20 || total > 32<<20 {
			t.Fatalf("%s went through memory: heap +%d, allocated %d", what, heap, total)
		}
	}

	heap, total := memGrowth(func() {
		sid, chunk, _ := upload("/", "local.bin")
		for i, a := int64(0), int64(0); a < size; i, a = i+1, a+chunk {
			status, body := send(t, "POST", fmt.Sprintf("%s/api/v3/file/upload/%s/%d", c.base, sid, i), a, min(a+chunk, size),
				http.Header{"Cookie": {cookieName + "=" + c.cookie}})
			if status != 200 || !bytes.Contains(body, []byte(`"code":0`)) {
				t.Fatalf("chunk %d: %d %s", i, status, body)
			}
		}
	})
	check("local chunks", heap, total)
	tail := [][2]int64{{size - 100_000, size}, {size - 1, size}}
	c.checkRanges("/", "local.bin", size, append(tail, [2]int64{8<<20 - 5, 8<<20 + 5})...)

	heap, total = memGrowth(func() {
		sid, chunk, urls := upload("/od", "od.bin")
		for a := int64(0); a < size; a += chunk {
			b := min(a+chunk, size)
			status, body := send(t, "PUT", urls[0], a, b,
				http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", a, b-1, size)}})
			if status != http.StatusAccepted && status != http.StatusCreated {
				t.Fatalf("range %d-%d: %d %s", a, b-1, status, body)
			}
		}
		c.want(c.do("POST", "/api/v3/callback/onedrive/finish/"+sid, map[string]any{}), 0)
	})
	check("OneDrive ranges", heap, total)
	c.checkRanges("/od", "od.bin", size, tail...)

	// Copies share the content on disk; deleting every copy frees it.
	c.want(c.do("POST", "/api/v3/object/copy", map[string]any{"src_dir": "/od",
		"src": map[string]any{"items": []string{c.id("/od", "od.bin", "file")}, "dirs": []string{}}, "dst": "/"}), 0)
	if n := tempFiles(t, c.f); n != 2 {
		t.Fatalf("%d temp files, want 2", n)
	}
	c.want(c.do("DELETE", "/api/v3/object", map[string]any{"items": []string{c.id("/", "od.bin", "file"),
		c.id("/od", "od.bin", "file"), c.id("/", "local.bin", "file")}, "dirs": []string{}}), 0)
	if n := tempFiles(t, c.f); n != 0 {
		t.Fatalf("%d temp files after deleting every file, want 0", n)
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

// TestSizesPast4GiB sends the last chunk and the last OneDrive range of
// files over 4 GiB and reads their ends back. The sessions are advanced
// behind the API's back over a sparse temp file, so the test writes a few
// KiB.
func TestSizesPast4GiB(t *testing.T) {
	const size = 5<<30 + 3
	c := start(t)
	c.f.ChunkSize = 1 << 30
	c.f.UseOneDrive("/od")
	c.login()
	session := func(dir, name string, size int64) (string, []string) {
		var s struct {
			SessionID  string
			UploadURLs []string
		}
		json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": dir, "size": size, "name": name,
			"policy_id": c.list(dir).Policy.ID, "last_modified": 0}), 0).Data, &s)
		return s.SessionID, s.UploadURLs
	}
	// skip makes a session look as if it had received from bytes, the last
	// 1000 of them and the 10 around 4 GiB being the pattern's.
	skip := func(sid string, from int64, next int) {
		c.f.mu.Lock()
		defer c.f.mu.Unlock()
		s := c.f.uploads[sid]
		fl, err := os.OpenFile(s.file, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		for _, r := range [][2]int64{{from - 1000, from}, {4<<30 - 5, 4<<30 + 5}} {
			if _, err := fl.WriteAt(patternBytes(r[0], r[1]), r[0]); err != nil {
				t.Fatal(err)
			}
		}
		s.received, s.next = from, next
	}

	sid, _ := session("/", "local.bin", size)
	skip(sid, 5<<30, 5)
	chunk := func(i int, a, b int64) answer {
		return c.do("POST", fmt.Sprintf("/api/v3/file/upload/%s/%d", sid, i), patternBytes(a, b))
	}
	if a := chunk(4, 4<<30, 4<<30+10); a.Code != CodeChunkOrder || a.Msg != "Chunk index 4 out of order, expect 5" {
		t.Fatalf("chunk 4: %d %s", a.Code, a.Msg)
	}
	if a := chunk(5, 5<<30, size-1); a.Code != CodeChunkLength || a.Msg != "Chunk size mismatch: want 3, got 2" {
		t.Fatalf("short last chunk: %d %s", a.Code, a.Msg)
	}
	c.want(chunk(5, 5<<30, size), 0)
	c.checkRanges("/", "local.bin", size, [2]int64{size - 1003, size})
	var st struct{ Used int64 }
	json.Unmarshal(c.want(c.do("GET", "/api/v3/user/storage", nil), 0).Data, &st)
	if st.Used != size {
		t.Fatalf("storage used %d, want %d", st.Used, size)
	}

	sid, urls := session("/od", "od.bin", size)
	skip(sid, size-10, 0)
	status, body := send(t, "PUT", urls[0], size-20, size,
		http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", size-20, size-1, int64(size))}})
	if status != http.StatusRequestedRangeNotSatisfiable || !bytes.Contains(body, fmt.Appendf(nil, `"%d-"`, size-10)) {
		t.Fatalf("range before the next expected byte: %d %s", status, body)
	}
	status, body = send(t, "PUT", urls[0], size-10, size,
		http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", size-10, size-1, int64(size))}})
	if status != http.StatusCreated {
		t.Fatalf("last range: %d %s", status, body)
	}
	c.want(c.do("POST", "/api/v3/callback/onedrive/finish/"+sid, map[string]any{}), 0)
	c.checkRanges("/od", "od.bin", size, [2]int64{size - 1010, size}, [2]int64{4<<30 - 5, 4<<30 + 5})

	// A size whose sum with the used bytes overflows is refused.
	c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": int64(1<<63 - 1), "name": "huge",
		"policy_id": c.list("/").Policy.ID}), CodeNoCapacity)
}

// TestTempFilesAreRemoved checks that what a session received goes with
// it (cancel, restart), a file's content with its last copy (update
// replaces it), and the whole folder with Close.
func TestTempFilesAreRemoved(t *testing.T) {
	c := start(t)
	c.f.ChunkSize = 4
	c.login()
	pol := c.list("/").Policy.ID
	session := func(name string) string {
		var s struct{ SessionID string }
		json.Unmarshal(c.want(c.do("PUT", "/api/v3/file/upload", map[string]any{"path": "/", "size": 8, "name": name,
			"policy_id": pol}), 0).Data, &s)
		c.want(c.do("POST", "/api/v3/file/upload/"+s.SessionID+"/0", []byte("abcd")), 0)
		return s.SessionID
	}
	files := func(want int, when string) {
		t.Helper()
		if n := tempFiles(t, c.f); n != want {
			t.Fatalf("%d temp files %s, want %d", n, when, want)
		}
	}
	sid := session("a")
	files(1, "with a session open")
	c.want(c.do("DELETE", "/api/v3/file/upload/"+sid, nil), 0)
	files(0, "after cancel")
	session("b")
	c.f.Faults.Restart()
	files(0, "after a restart")
	c.login()
	sid = session("c")
	c.want(c.do("POST", "/api/v3/file/upload/"+sid+"/1", []byte("efgh")), 0)
	files(1, "after an upload")
	c.want(c.do("PUT", "/api/v3/file/update/"+c.id("/", "c", "file"), []byte("new content")), 0)
	files(1, "after an update")
	if got, _ := c.f.File("/c"); string(got) != "new content" {
		t.Fatalf("content after update %q", got)
	}
	c.f.Put("/d", nil)
	if got, ok := c.f.File("/d"); !ok || len(got) != 0 {
		t.Fatalf("an empty file: %q %v", got, ok)
	}
	files(2, "after Put")
	if err := c.f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.f.dir); !os.IsNotExist(err) {
		t.Fatalf("the temp dir after Close: %v", err)
	}
}
