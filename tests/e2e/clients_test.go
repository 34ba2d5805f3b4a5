package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// litmusMinimum is how many tests of each litmus suite must pass through
// every mount; raise a figure when a fix lands, never lower one. locks: all
// of them, shared locks included (x/net/webdav's lock system ran 34 and
// failed lock_shared, skipping the tests built on it).
var litmusMinimum = map[string]litmusWant{
	"basic":    {16, 16},
	"copymove": {13, 13},
	"props":    {30, 30},
	"locks":    {41, 41},
	"http":     {4, 4},
}

// litmusRedirect replaces litmusMinimum on redirect mounts: litmus follows
// no redirects, so its GETs there fail (put_get, put_get_utf8_segment) and
// basic and locks skip the tests built on them.
var litmusRedirect = map[string]litmusWant{
	"basic": {14, 12},
	"locks": {37, 37},
}

// litmusFor is a mount's litmus overrides for its download mode.
func litmusFor(download string) map[string]litmusWant {
	if download == "redirect" {
		return litmusRedirect
	}
	return nil
}

// litmusWant is how many tests of a litmus suite run, and how many of them
// must pass.
type litmusWant struct{ total, passed int }

// toolTimeout bounds every client run, so a hung client or bridge fails the
// test instead of stalling CI until its global limit.
const toolTimeout = 5 * time.Minute

// runTool runs a client program with a bounded lifetime and returns its
// combined output.
func runTool(t *testing.T, env []string, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s still running after %v: %w", filepath.Base(name), toolTimeout, ctx.Err())
	}
	return string(out), err
}

var litmusSummary = regexp.MustCompile("<- summary for `(\\w+)': of (\\d+) tests run: (\\d+) passed")

func TestLitmus(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		litmus := needTool(t, "litmus")
		// litmus makes (and first deletes) the collection litmus/ under the
		// URL it is given; it writes debug.log into its working folder.
		out, _ := runTool(t, []string{"TESTS=basic copymove props locks http"}, t.TempDir(),
			litmus, "-k", b.url+m.Path+"/", adminUser, adminPass)
		seen := map[string]bool{}
		for _, s := range litmusSummary.FindAllStringSubmatch(out, -1) {
			total, _ := strconv.Atoi(s[2])
			passed, _ := strconv.Atoi(s[3])
			want, ok := litmusMinimum[s[1]]
			if !ok {
				continue
			}
			if w, ok := m.Litmus[s[1]]; ok {
				want = w
			}
			seen[s[1]] = true
			t.Logf("litmus %s: %d/%d passed", s[1], passed, total)
			if total != want.total || passed < want.passed {
				t.Errorf("litmus %s: %d of %d passed, want at least %d of %d", s[1], passed, total, want.passed, want.total)
			}
		}
		for suite := range litmusMinimum {
			if !seen[suite] {
				t.Errorf("litmus suite %s did not run", suite)
			}
		}
		if t.Failed() {
			t.Logf("litmus output:\n%s", out)
		}
	})
}

// rclone runs rclone against the mount as a webdav remote "b" configured
// through the environment only.
func rclone(t *testing.T, b *bridge, m Mount, args ...string) (string, error) {
	t.Helper()
	return rcloneVendor(t, b, m, "other", args...)
}

// rcloneVendor is rclone with the remote's vendor set: "owncloud" makes it
// send X-OC-Mtime and OC-Checksum and compare oc:checksums. --config
// /dev/null keeps any rclone.conf of the machine out of the test.
func rcloneVendor(t *testing.T, b *bridge, m Mount, vendor string, args ...string) (string, error) {
	t.Helper()
	bin := needTool(t, "rclone")
	obscured, err := runTool(t, nil, "", bin, "--config", "/dev/null", "obscure", adminPass)
	if err != nil {
		t.Fatalf("rclone obscure: %v\n%s", err, obscured)
	}
	env := []string{
		"RCLONE_CONFIG_B_TYPE=webdav",
		"RCLONE_CONFIG_B_URL=" + b.url + m.Path,
		"RCLONE_CONFIG_B_VENDOR=" + vendor,
		"RCLONE_CONFIG_B_USER=" + adminUser,
		"RCLONE_CONFIG_B_PASS=" + strings.TrimSpace(obscured),
	}
	return runTool(t, env, "", bin, append([]string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1"}, args...)...)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// writeTree writes files (slash-separated names relative to dir) under
// dir, making the folders they need.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// oddTree writes files with the names clients trip over, leaving out names
// the mount's provider refuses. emptyDirs are folders with nothing inside.
func oddTree(t *testing.T, m Mount) (dir string, files map[string][]byte, emptyDirs []string) {
	dir = t.TempDir()
	all := map[string][]byte{
		"中文 目录/文件 一.txt":                  []byte("你好"),
		"中文 目录/子 目录/深 文件.txt":             []byte("深"),
		"a b#%+&'/x+y&z #1.txt":           []byte("odd"),
		"a b#%+&'/deeper/n.bin":           randomBytes(70_000),
		"empty.txt":                       {},
		"big.bin":                         randomBytes(6<<20 + 4321), // more than one 5 MiB disktop chunk
		"100%.txt":                        []byte("percent"),
		"it's a+b & c.txt":                []byte("quote"),
		"%41%2F%2e%2e.txt":                []byte("looks encoded"),
		"~tilde;semi=eq,comma@at$!.txt":   []byte("sub-delims"),
		" lead and trail .txt":            []byte("spaces"),
		"q?.txt":                          []byte("question"),
		"c:olon.txt":                      []byte("colon"),
		`back\slash.txt`:                  []byte("backslash"),
		"ünïcödé é.txt":                   []byte("nfc"),
		"nested/one/two/three/deep.txt":   []byte("deep"),
		"nested/one/two/three/empty.data": {},
	}
	files = map[string][]byte{}
	for name, data := range all {
		if m.ForbiddenChars != "" && strings.ContainsAny(name, m.ForbiddenChars) {
			continue
		}
		if m.TrimsSpaces && slices.ContainsFunc(strings.Split(name, "/"), func(seg string) bool { return strings.TrimSpace(seg) != seg }) {
			continue
		}
		files[name] = data
	}
	writeTree(t, dir, files)
	emptyDirs = []string{"empty folder", "nested/one/empty #dir"}
	for _, d := range emptyDirs {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files, emptyDirs
}

// rcloneStats is the final "stats" object of a run logged with
// --use-json-log: what was transferred, counted by rclone itself.
type rcloneStats struct {
	Transfers int   `json:"transfers"`
	Checks    int   `json:"checks"`
	Errors    int   `json:"errors"`
	Bytes     int64 `json:"bytes"`
}

// jsonLog reads rclone's --use-json-log output: the messages, and the last
// stats object.
func jsonLog(t *testing.T, out string) (msgs []string, stats *rcloneStats) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg    string       `json:"msg"`
			Object string       `json:"object"`
			Stats  *rcloneStats `json:"stats"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		msgs = append(msgs, line.Object+": "+line.Msg)
		if line.Stats != nil {
			stats = line.Stats
		}
	}
	if stats == nil {
		t.Fatalf("no stats in rclone's JSON log:\n%s", out)
	}
	return msgs, stats
}

type lsEntry struct {
	Path  string
	Size  int64
	IsDir bool
}

func lsjson(t *testing.T, b *bridge, m Mount, remote string) (files map[string]int64, dirs map[string]bool) {
	t.Helper()
	out, err := rclone(t, b, m, "lsjson", "-R", remote)
	if err != nil {
		t.Fatalf("lsjson: %v\n%s", err, out)
	}
	var entries []lsEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("lsjson output: %v\n%s", err, out)
	}
	files, dirs = map[string]int64{}, map[string]bool{}
	for _, e := range entries {
		if e.IsDir {
			dirs[e.Path] = true
		} else {
			files[e.Path] = e.Size
		}
	}
	return files, dirs
}

func TestRclone(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		src, files, emptyDirs := oddTree(t, m)
		if out, err := rclone(t, b, m, "copy", "--create-empty-src-dirs", src, "b:rclone"); err != nil {
			t.Fatalf("copy: %v\n%s", err, out)
		}
		// --download compares the bytes, not only sizes (vendor "other"
		// has no hashes).
		out, err := rclone(t, b, m, "check", "--download", src, "b:rclone")
		if err != nil || !strings.Contains(out, "0 differences found") || !strings.Contains(out, fmt.Sprintf("%d matching files", len(files))) {
			t.Fatalf("check: %v\n%s", err, out)
		}

		// A second copy finds everything in place: rclone's own count of
		// transfers is 0 and it checked every file.
		out, err = rclone(t, b, m, "copy", "-v", "--use-json-log", src, "b:rclone")
		if err != nil {
			t.Fatalf("second copy: %v\n%s", err, out)
		}
		msgs, stats := jsonLog(t, out)
		if stats.Transfers != 0 || stats.Errors != 0 || stats.Checks != len(files) {
			t.Fatalf("second copy: %+v, want 0 transfers of %d checked files\n%s", *stats, len(files), out)
		}
		for _, msg := range msgs {
			if strings.Contains(msg, "Copied") {
				t.Fatalf("second copy: %s", msg)
			}
		}

		if m.Backing != nil {
			for name, want := range files {
				if m.PendingEmpties && len(want) == 0 {
					continue // only the bridge has it
				}
				got, err := m.Backing("rclone/" + name)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s behind the bridge: %v, %d bytes, want %d", name, err, len(got), len(want))
				}
			}
		}

		listed, dirs := lsjson(t, b, m, "b:rclone")
		for name, data := range files {
			if size, ok := listed[name]; !ok || size != int64(len(data)) {
				t.Errorf("lsjson: %q size %d (listed %v), want %d", name, size, ok, len(data))
			}
		}
		if len(listed) != len(files) {
			t.Errorf("lsjson listed %d files, want %d: %v", len(listed), len(files), listed)
		}
		for _, d := range emptyDirs {
			if !dirs[d] {
				t.Errorf("lsjson: empty folder %q missing: %v", d, dirs)
			}
		}

		if out, err := rclone(t, b, m, "copyto", "b:rclone/big.bin", "b:rclone/copies/big copy.bin"); err != nil {
			t.Fatalf("copyto: %v\n%s", err, out)
		}
		if out, err := rclone(t, b, m, "moveto", "b:rclone/100%.txt", "b:rclone/moved/100% moved.txt"); err != nil {
			t.Fatalf("moveto: %v\n%s", err, out)
		}
		resp, body := b.get(t, adminUser, adminPass, m.Path+"/rclone/copies/big%20copy.bin")
		if resp.StatusCode != 200 || !bytes.Equal(body, files["big.bin"]) {
			t.Fatalf("copy: %d, %d bytes", resp.StatusCode, len(body))
		}
		if resp, body := b.get(t, adminUser, adminPass, m.Path+"/rclone/big.bin"); resp.StatusCode != 200 || !bytes.Equal(body, files["big.bin"]) {
			t.Fatalf("copyto changed its source: %d, %d bytes", resp.StatusCode, len(body))
		}
		if resp, _ := b.get(t, adminUser, adminPass, m.Path+"/rclone/100%25.txt"); resp.StatusCode != 404 {
			t.Fatalf("moveto left its source: %d", resp.StatusCode)
		}
		if resp, body := b.get(t, adminUser, adminPass, m.Path+"/rclone/moved/100%25%20moved.txt"); resp.StatusCode != 200 || string(body) != "percent" {
			t.Fatalf("moved file: %d %q", resp.StatusCode, body)
		}

		out, err = rclone(t, b, m, "about", "b:")
		if err != nil || !regexp.MustCompile(`(?m)^Total:\s+\S`).MatchString(out) || !regexp.MustCompile(`(?m)^Used:\s+\S`).MatchString(out) {
			t.Fatalf("about: %v\n%s", err, out)
		}
		out, err = rclone(t, b, m, "about", "--json", "b:")
		var about struct{ Total, Used, Free *int64 }
		if err != nil || json.Unmarshal([]byte(out), &about) != nil || about.Total == nil || about.Used == nil ||
			*about.Total <= 0 || *about.Used < 0 || *about.Used > *about.Total {
			t.Fatalf("about --json: %v\n%s", err, out)
		}

		// purge removes one folder and nothing beside it.
		if out, err := rclone(t, b, m, "purge", "b:rclone/copies"); err != nil {
			t.Fatalf("purge: %v\n%s", err, out)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/rclone/copies/", nil, "Depth", "0"); resp.StatusCode != 404 {
			t.Fatalf("purged folder answers %d", resp.StatusCode)
		}
		listed, _ = lsjson(t, b, m, "b:rclone")
		for name := range listed {
			if strings.HasPrefix(name, "copies/") {
				t.Errorf("lsjson after purge lists %q", name)
			}
		}
		delete(files, "100%.txt")
		files["moved/100% moved.txt"] = []byte("percent")
		if len(listed) != len(files) {
			t.Errorf("after purge: %d files listed, want %d: %v", len(listed), len(files), listed)
		}
		for name, data := range files {
			keep(m, "rclone/"+name, data)
		}
	})
}

// curlResult is what one curl run got.
type curlResult struct {
	status int
	header http.Header
	body   []byte
}

func TestCurlRanges(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		curl := needTool(t, "curl")
		data := randomBytes(1<<20 + 123)
		url := b.url + m.Path + "/ranges.bin"
		file := filepath.Join(t.TempDir(), "ranges.bin")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) curlResult {
			t.Helper()
			dir := t.TempDir()
			bodyFile, headFile := filepath.Join(dir, "body"), filepath.Join(dir, "head")
			// -L: a redirect mount's GET answers 302 to the provider;
			// curl sends no credentials to the other host.
			out, err := runTool(t, nil, "", curl, append([]string{"-sS", "-L", "-u", adminUser + ":" + adminPass,
				"-o", bodyFile, "-D", headFile}, args...)...)
			if err != nil {
				t.Fatalf("curl %v: %v\n%s", args, err, out)
			}
			head, _ := os.ReadFile(headFile)
			body, _ := os.ReadFile(bodyFile)
			// -D holds every response of the exchange (a 100 Continue
			// first, for an upload): the final one is the last block.
			blocks := strings.Split(strings.TrimSpace(string(head)), "\r\n\r\n")
			last := blocks[len(blocks)-1] + "\r\n\r\n"
			tp := textproto.NewReader(bufio.NewReader(strings.NewReader(last)))
			statusLine, _ := tp.ReadLine()
			hdr, _ := tp.ReadMIMEHeader()
			var status int
			fmt.Sscanf(statusLine, "HTTP/%s %d", new(string), &status)
			return curlResult{status, http.Header(hdr), body}
		}
		if r := run("-T", file, url); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		if r := run(url); r.status != 200 || !bytes.Equal(r.body, data) {
			t.Fatalf("whole GET: %d, %d bytes", r.status, len(r.body))
		}
		if m.Download == "redirect" {
			resp, _ := b.admin(t, "GET", m.Path+"/ranges.bin", nil, "Range", "bytes=0-99")
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc == "" || strings.HasPrefix(loc, b.url) || strings.Contains(loc, adminPass) {
				t.Fatalf("redirect mount GET: %d to %q, want 302 to the provider", resp.StatusCode, loc)
			}
		}
		for _, c := range []struct {
			rng        string
			start, end int
		}{{"0-99", 0, 100}, {"500000-500999", 500000, 501000}, {"-100", len(data) - 100, len(data)}, {"1048000-", 1048000, len(data)}} {
			r := run("-r", c.rng, url)
			wantRange := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end-1, len(data))
			if r.status != 206 || !bytes.Equal(r.body, data[c.start:c.end]) || r.header.Get("Content-Range") != wantRange {
				t.Fatalf("range %s: %d %q, %d bytes; want 206 %q", c.rng, r.status, r.header.Get("Content-Range"), len(r.body), wantRange)
			}
		}

		// Two ranges come back as multipart/byteranges, one part each.
		r := run("-r", "0-9,100-109", url)
		mediaType, params, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
		if r.status != 206 || mediaType != "multipart/byteranges" {
			t.Fatalf("multi-range: %d %q", r.status, r.header.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
		want := []struct {
			rng  string
			data []byte
		}{{fmt.Sprintf("bytes 0-9/%d", len(data)), data[0:10]}, {fmt.Sprintf("bytes 100-109/%d", len(data)), data[100:110]}}
		for i := 0; ; i++ {
			part, err := mr.NextPart()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("multi-range: %d parts, want %d", i, len(want))
				}
				break
			}
			if err != nil || i >= len(want) {
				t.Fatalf("multi-range part %d: %v", i, err)
			}
			got, _ := io.ReadAll(part)
			if part.Header.Get("Content-Range") != want[i].rng || !bytes.Equal(got, want[i].data) {
				t.Fatalf("multi-range part %d: %q %x, want %q %x", i, part.Header.Get("Content-Range"), got, want[i].rng, want[i].data)
			}
		}

		if r := run("-r", fmt.Sprintf("%d-", len(data)+10), url); r.status != 416 || r.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(data)) {
			t.Fatalf("unsatisfiable range: %d %q, want 416 \"bytes */%d\"", r.status, r.header.Get("Content-Range"), len(data))
		}

		// A folder answers a browser with an HTML listing.
		r = run(b.url + m.Path + "/")
		if ct := r.header.Get("Content-Type"); r.status != 200 || !strings.HasPrefix(ct, "text/html") || !bytes.Contains(r.body, []byte(`ranges.bin`)) {
			t.Fatalf("folder GET: %d %q\n%s", r.status, ct, r.body)
		}
		keep(m, "ranges.bin", data)
	})
}

func TestFFprobeSeeks(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		ffmpeg, ffprobe := needTool(t, "ffmpeg"), needTool(t, "ffprobe")
		video := filepath.Join(t.TempDir(), "clip.mp4")
		if out, err := runTool(t, nil, "", ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=10:size=320x240:rate=25",
			"-c:v", "mpeg4", "-g", "25", "-movflags", "+faststart", video); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(video)
		if resp, _ := b.admin(t, "PUT", m.Path+"/clip.mp4", data); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		keep(m, "clip.mp4", data)
		url := strings.Replace(b.url, "http://", "http://"+adminUser+":"+adminPass+"@", 1) + m.Path + "/clip.mp4"
		var auth []string
		if m.Download == "redirect" {
			// ffmpeg 5.1 seeks by asking the first URL again, and after
			// following a 302 it does so without the URL's credentials:
			// 401, "partial file". With the header it sends them each time.
			url = b.url + m.Path + "/clip.mp4"
			auth = []string{"-headers", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(adminUser+":"+adminPass)) + "\r\n"}
		}
		out, err := runTool(t, nil, "", ffprobe, append(auth, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url)...)
		if err != nil {
			t.Fatalf("ffprobe format: %v\n%s", err, out)
		}
		if d, _ := strconv.ParseFloat(strings.TrimSpace(out), 64); d < 9.9 || d > 10.1 {
			t.Fatalf("duration %q, want 10 s", out)
		}
		// Seeking to 6 s makes ffprobe read from the middle of the file
		// with a Range request.
		out, err = runTool(t, nil, "", ffprobe, append(auth, "-v", "error", "-read_intervals", "6%+1", "-select_streams", "v",
			"-show_entries", "frame=pts_time", "-of", "csv=p=0", url)...)
		if err != nil {
			t.Fatalf("ffprobe seek: %v\n%s", err, out)
		}
		var times []float64
		for _, line := range strings.Fields(out) {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(line, ","), 64); err == nil {
				times = append(times, v)
			}
		}
		if len(times) < 10 || times[0] < 5 || times[0] > 6.01 || times[len(times)-1] < 6.9 {
			t.Fatalf("frames after seeking to 6 s: %v", times)
		}
	})
}

func TestRcloneOwnCloudVendor(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		src, _, _ := oddTree(t, m)
		if out, err := rcloneVendor(t, b, m, "owncloud", "copy", src, "b:oc"); err != nil {
			t.Fatalf("copy: %v\n%s", err, out)
		}
		// A provider with content hashes lets rclone compare every file by
		// hash; without them rclone can compare sizes only.
		out, err := rcloneVendor(t, b, m, "owncloud", "check", src, "b:oc")
		if err != nil || !strings.Contains(out, "0 differences found") || (m.HasHashes && strings.Contains(out, "could not be checked")) {
			t.Fatalf("check (hashes: %v): %v\n%s", m.HasHashes, err, out)
		}
		// owncloud compares modification times: nothing to send means the
		// bridge kept the client's times. A provider without times cannot
		// keep them (declared in its features); rclone then re-uploads to set
		// them, and the bytes must still be right.
		out, err = rcloneVendor(t, b, m, "owncloud", "copy", "-v", "--use-json-log", src, "b:oc")
		if err != nil {
			t.Fatalf("second copy: %v\n%s", err, out)
		}
		if _, stats := jsonLog(t, out); m.KeepsModTimes && stats.Transfers != 0 {
			t.Fatalf("second copy transferred %d files\n%s", stats.Transfers, out)
		}
		if !m.KeepsModTimes {
			out, err := rcloneVendor(t, b, m, "owncloud", "check", src, "b:oc")
			if err != nil || !strings.Contains(out, "0 differences found") {
				t.Fatalf("check after re-upload: %v\n%s", err, out)
			}
		}
		if out, err := rcloneVendor(t, b, m, "owncloud", "purge", "b:oc"); err != nil {
			t.Fatalf("purge: %v\n%s", err, out)
		}
	})
}
