package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// litmusMinimum is how many tests of each litmus suite must pass through
// every mount. lock_shared fails: x/net/webdav's lock system has no shared
// locks.
var litmusMinimum = map[string]struct{ total, passed int }{
	"basic":    {16, 16},
	"copymove": {13, 13},
	"props":    {30, 30},
	"locks":    {34, 33},
	"http":     {4, 4},
}

var litmusSummary = regexp.MustCompile("<- summary for `(\\w+)': of (\\d+) tests run: (\\d+) passed")

func TestLitmus(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		litmus := needTool(t, "litmus")
		cmd := exec.Command(litmus, "-k", b.url+m.Path+"/", adminUser, adminPass)
		cmd.Env = append(os.Environ(), "TESTS=basic copymove props locks http")
		cmd.Dir = t.TempDir() // litmus writes debug.log here
		out, _ := cmd.CombinedOutput()
		seen := map[string]bool{}
		for _, s := range litmusSummary.FindAllStringSubmatch(string(out), -1) {
			total, _ := strconv.Atoi(s[2])
			passed, _ := strconv.Atoi(s[3])
			want, ok := litmusMinimum[s[1]]
			if !ok {
				continue
			}
			seen[s[1]] = true
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
// send X-OC-Mtime and OC-Checksum and compare oc:checksums.
func rcloneVendor(t *testing.T, b *bridge, m Mount, vendor string, args ...string) (string, error) {
	t.Helper()
	bin := needTool(t, "rclone")
	obscured, err := exec.Command(bin, "obscure", adminPass).Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1"}, args...)...)
	cmd.Env = append(os.Environ(),
		"RCLONE_CONFIG_B_TYPE=webdav",
		"RCLONE_CONFIG_B_URL="+b.url+m.Path,
		"RCLONE_CONFIG_B_VENDOR="+vendor,
		"RCLONE_CONFIG_B_USER="+adminUser,
		"RCLONE_CONFIG_B_PASS="+strings.TrimSpace(string(obscured)),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// oddTree writes files with the names clients trip over.
func oddTree(t *testing.T) (string, map[string][]byte) {
	dir := t.TempDir()
	files := map[string][]byte{
		"中文 目录/文件 一.txt":        []byte("你好"),
		"a b#%+&'/x+y&z #1.txt": []byte("odd"),
		"a b#%+&'/deeper/n.bin": randomBytes(70_000),
		"empty.txt":             {},
		"big.bin":               randomBytes(3 << 20),
		"100%.txt":              []byte("percent"),
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func TestRclone(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		src, files := oddTree(t)
		if out, err := rclone(t, b, m, "copy", src, "b:rclone"); err != nil {
			t.Fatalf("copy: %v\n%s", err, out)
		}
		out, err := rclone(t, b, m, "check", src, "b:rclone")
		if err != nil || !strings.Contains(out, "0 differences found") {
			t.Fatalf("check: %v\n%s", err, out)
		}
		out, err = rclone(t, b, m, "copy", "-v", src, "b:rclone")
		if err != nil || strings.Contains(out, "Copied") {
			t.Fatalf("second copy transferred something: %v\n%s", err, out)
		}
		if m.Backing != nil {
			for name, want := range files {
				got, err := m.Backing("rclone/" + name)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s behind the bridge: %v, %d bytes, want %d", name, err, len(got), len(want))
				}
			}
		}

		out, err = rclone(t, b, m, "lsjson", "-R", "b:rclone")
		if err != nil {
			t.Fatalf("lsjson: %v\n%s", err, out)
		}
		var entries []struct {
			Path  string
			Size  int64
			IsDir bool
		}
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatalf("lsjson output: %v\n%s", err, out)
		}
		listed := map[string]int64{}
		for _, e := range entries {
			if !e.IsDir {
				listed[e.Path] = e.Size
			}
		}
		for name, data := range files {
			if size, ok := listed[name]; !ok || size != int64(len(data)) {
				t.Errorf("lsjson: %q size %d (listed %v), want %d", name, size, ok, len(data))
			}
		}
		if len(listed) != len(files) {
			t.Errorf("lsjson listed %d files, want %d", len(listed), len(files))
		}

		if out, err := rclone(t, b, m, "copyto", "b:rclone/big.bin", "b:rclone/copies/big copy.bin"); err != nil {
			t.Fatalf("copyto: %v\n%s", err, out)
		}
		if out, err := rclone(t, b, m, "moveto", "b:rclone/100%.txt", "b:rclone/moved/100% moved.txt"); err != nil {
			t.Fatalf("moveto: %v\n%s", err, out)
		}
		resp, body := b.admin(t, "GET", m.Path+"/rclone/copies/big%20copy.bin", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, files["big.bin"]) {
			t.Fatalf("copy: %d, %d bytes", resp.StatusCode, len(body))
		}
		if resp, _ := b.admin(t, "GET", m.Path+"/rclone/big.bin", nil); resp.StatusCode != 200 {
			t.Fatalf("copyto removed its source: %d", resp.StatusCode)
		}
		if resp, _ := b.admin(t, "GET", m.Path+"/rclone/100%25.txt", nil); resp.StatusCode != 404 {
			t.Fatalf("moveto left its source: %d", resp.StatusCode)
		}
		if resp, body := b.admin(t, "GET", m.Path+"/rclone/moved/100%25%20moved.txt", nil); resp.StatusCode != 200 || string(body) != "percent" {
			t.Fatalf("moved file: %d %q", resp.StatusCode, body)
		}

		out, err = rclone(t, b, m, "about", "b:")
		if err != nil || !strings.Contains(out, "Used:") || !strings.Contains(out, "Free:") {
			t.Fatalf("about: %v\n%s", err, out)
		}

		if out, err := rclone(t, b, m, "purge", "b:rclone"); err != nil {
			t.Fatalf("purge: %v\n%s", err, out)
		}
		if resp, _ := b.admin(t, "PROPFIND", m.Path+"/rclone/", nil, "Depth", "0"); resp.StatusCode != 404 {
			t.Fatalf("purged folder answers %d", resp.StatusCode)
		}
	})
}

func TestCurlRanges(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		curl := needTool(t, "curl")
		data := randomBytes(1 << 20)
		url := b.url + m.Path + "/ranges.bin"
		auth := adminUser + ":" + adminPass
		file := filepath.Join(t.TempDir(), "ranges.bin")
		os.WriteFile(file, data, 0o644)
		run := func(args ...string) (string, []byte) {
			t.Helper()
			out := filepath.Join(t.TempDir(), "body")
			cmd := exec.Command(curl, append([]string{"-sS", "-u", auth, "-o", out, "-w", "%{http_code} %{content_type}"}, args...)...)
			meta, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl %v: %v", args, err)
			}
			body, _ := os.ReadFile(out)
			return string(meta), body
		}
		if meta, _ := run("-T", file, url); !strings.HasPrefix(meta, "201") {
			t.Fatalf("upload: %s", meta)
		}
		for _, c := range []struct {
			rng        string
			start, end int
		}{{"0-99", 0, 100}, {"500000-500999", 500000, 501000}, {"-100", len(data) - 100, len(data)}} {
			meta, body := run("-r", c.rng, url)
			if !strings.HasPrefix(meta, "206") || !bytes.Equal(body, data[c.start:c.end]) {
				t.Fatalf("range %s: %s, %d bytes", c.rng, meta, len(body))
			}
		}
		meta, body := run("-r", "0-9,100-109", url)
		if !strings.HasPrefix(meta, "206 multipart/byteranges") || !bytes.Contains(body, data[0:10]) || !bytes.Contains(body, data[100:110]) {
			t.Fatalf("multi-range: %s", meta)
		}
		if meta, _ := run("-r", fmt.Sprintf("%d-", len(data)+10), url); !strings.HasPrefix(meta, "416") {
			t.Fatalf("unsatisfiable range: %s", meta)
		}
	})
}

func TestFFprobeSeeks(t *testing.T) {
	forEachMount(t, func(t *testing.T, b *bridge, m Mount) {
		ffmpeg, ffprobe := needTool(t, "ffmpeg"), needTool(t, "ffprobe")
		video := filepath.Join(t.TempDir(), "clip.mp4")
		gen := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=10:size=320x240:rate=25",
			"-c:v", "mpeg4", "-g", "25", "-movflags", "+faststart", video)
		if out, err := gen.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(video)
		if resp, _ := b.admin(t, "PUT", m.Path+"/clip.mp4", data); resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		url := strings.Replace(b.url, "http://", "http://"+adminUser+":"+adminPass+"@", 1) + m.Path + "/clip.mp4"
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url).Output()
		if err != nil {
			t.Fatalf("ffprobe format: %v", err)
		}
		if d, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); d < 9.9 || d > 10.1 {
			t.Fatalf("duration %q, want 10 s", out)
		}
		out, err = exec.Command(ffprobe, "-v", "error", "-read_intervals", "6%+1", "-select_streams", "v",
			"-show_entries", "frame=pts_time", "-of", "csv=p=0", url).Output()
		if err != nil {
			t.Fatalf("ffprobe seek: %v", err)
		}
		var times []float64
		for _, line := range strings.Fields(string(out)) {
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
		src, _ := oddTree(t)
		if out, err := rcloneVendor(t, b, m, "owncloud", "copy", src, "b:oc"); err != nil {
			t.Fatalf("copy: %v\n%s", err, out)
		}
		out, err := rcloneVendor(t, b, m, "owncloud", "check", src, "b:oc")
		if err != nil || !strings.Contains(out, "0 differences found") || strings.Contains(out, "could not be checked") {
			t.Fatalf("check did not compare every file by hash: %v\n%s", err, out)
		}
		// owncloud compares modification times: nothing to send means the
		// bridge kept the client's times. A provider without times cannot
		// keep them (declared in its features); rclone then re-uploads to set
		// them, and the bytes must still be right.
		out, err = rcloneVendor(t, b, m, "owncloud", "copy", "-v", src, "b:oc")
		if err != nil {
			t.Fatalf("second copy: %v\n%s", err, out)
		}
		if m.KeepsModTimes && (strings.Contains(out, "Copied") || strings.Contains(out, "Updated")) {
			t.Fatalf("second copy transferred something: %v\n%s", err, out)
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
