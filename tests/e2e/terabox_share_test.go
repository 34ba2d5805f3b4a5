package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	teraboxfake "bridge/tests/fakes/terabox"
)

// TestTeraboxShare mounts a TeraBox share link a friend sent (read-only),
// beside the account's own TeraBox mount, in a bridge of its own: clients
// browse, copy and seek in a shared video; every write is refused with the
// reason; a folder COPY from the share into the account is one
// share/transfer with no byte through the bridge; a wrong extraction code
// is a clear /healthz state and a 403, not a crash loop.
func TestTeraboxShare(t *testing.T) {
	ffmpeg, ffprobe := needTool(t, "ffmpeg"), needTool(t, "ffprobe")
	tb := teraboxfake.New()
	t.Cleanup(func() { tb.Close() })
	www, api, upload := httptest.NewServer(tb.Handler()), httptest.NewServer(tb.Handler()), httptest.NewServer(tb.Handler())
	t.Cleanup(func() { www.Close(); api.Close(); upload.Close() })
	tb.SetBaseURL(www.URL)
	tb.SetDomains(strings.TrimPrefix(api.URL, "http://"), strings.TrimPrefix(upload.URL, "http://"))

	video := filepath.Join(t.TempDir(), "clip.mp4")
	if out, err := runTool(t, nil, "", ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=10:size=320x240:rate=25",
		"-c:v", "mpeg4", "-g", "25", "-movflags", "+faststart", video); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	clip, _ := os.ReadFile(video)
	friend := tb.NewAccount()
	files := map[string][]byte{"clip.mp4": clip, "notes/a.txt": []byte("shared note")}
	for i := range 25 { // more than one share/list page
		files[fmt.Sprintf("many/f%02d.txt", i)] = []byte(strconv.Itoa(i))
	}
	for name, data := range files {
		friend.Put("/videos/"+name, data)
	}
	link := friend.Share("/videos", "ab12")

	account := func(extra map[string]any) func() (map[string]any, error) {
		return func() (map[string]any, error) {
			_, seed := tb.IssueToken() // each mount its own refresh token: they are single-use
			providerSecrets = append(providerSecrets, seed)
			opts := map[string]any{"client_id": tb.ClientID, "client_secret": tb.ClientSecret,
				"private_secret": tb.PrivateSecret, "base_url": www.URL, "refresh_token": seed}
			for k, v := range extra {
				opts[k] = v
			}
			return opts, nil
		}
	}
	b, err := startBridge(t.TempDir(), []Mount{
		{Path: "/tb", Driver: "terabox", Setup: account(map[string]any{"app_name": tb.AppName})},
		{Path: "/share", Driver: "terabox", Setup: account(map[string]any{"share_url": link, "share_password": "ab12"})},
		{Path: "/badshare", Driver: "terabox", Setup: account(map[string]any{"share_url": link, "share_password": "zz99"})},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("share bridge's shutdown: %v", err)
		}
	})
	watch(t, b)
	m := Mount{Path: "/share"}

	// Browsing and reading, with rclone and ffprobe.
	out, err := rclone(t, b, m, "lsjson", "-R", "b:")
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
	// The share's root holds what was shared: the folder videos.
	for name, data := range files {
		if listed["videos/"+name] != int64(len(data)) {
			t.Errorf("lsjson: %s has size %d, want %d", name, listed[name], len(data))
		}
	}
	dst := t.TempDir()
	if out, err := rclone(t, b, m, "copy", "b:", dst); err != nil {
		t.Fatalf("copy from the share: %v\n%s", err, out)
	}
	for name, data := range files {
		if got, err := os.ReadFile(filepath.Join(dst, "videos", filepath.FromSlash(name))); err != nil || !bytes.Equal(got, data) {
			t.Errorf("copied %s: %v, %d bytes, want %d", name, err, len(got), len(data))
		}
	}
	url := strings.Replace(b.url, "http://", "http://"+adminUser+":"+adminPass+"@", 1) + "/share/videos/clip.mp4"
	out, err = runTool(t, nil, "", ffprobe, "-v", "error", "-read_intervals", "6%+1", "-select_streams", "v",
		"-show_entries", "frame=pts_time", "-of", "csv=p=0", url)
	if err != nil || !strings.Contains(out, "6.") {
		t.Fatalf("ffprobe seeking in the shared video: %v\n%s", err, out)
	}

	// Read-only: every write refused with the reason, none offered.
	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{"PUT", "/share/new.txt", []byte("x")}, {"PUT", "/share/videos/clip.mp4", []byte("x")}, {"MKCOL", "/share/d", nil},
		{"DELETE", "/share/notes/a.txt", nil}, {"PROPPATCH", "/share/videos/clip.mp4", nil}, {"LOCK", "/share/videos/clip.mp4", nil},
		{"MOVE", "/share/notes/", nil},
	} {
		resp, body := b.admin(t, c.method, c.path, c.body, "Destination", b.url+"/tb/moved/")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "read-only") {
			t.Errorf("%s %s: %d %q, want 403 saying the share is read-only", c.method, c.path, resp.StatusCode, body)
		}
	}
	// litmus finds the share read-only: its first write is refused with
	// 403, and it stops there.
	out, _ = runTool(t, []string{"TESTS=basic"}, t.TempDir(), needTool(t, "litmus"), "-k", b.url+"/share/videos/", adminUser, adminPass)
	if !strings.Contains(out, "Could not create new collection `/share/videos/litmus/' for tests: 403 Forbidden") ||
		!strings.Contains(out, "of 2 tests run: 1 passed, 1 failed") {
		t.Errorf("litmus on the share: want its MKCOL refused with 403:\n%s", out)
	}
	resp, _ := b.admin(t, "OPTIONS", "/share/videos/clip.mp4", nil)
	for _, method := range []string{"PUT", "DELETE", "MOVE", "MKCOL", "PROPPATCH", "LOCK"} {
		if slices.Contains(strings.Split(strings.ReplaceAll(resp.Header.Get("Allow"), " ", ""), ","), method) {
			t.Errorf("OPTIONS on the share offers %s: %s", method, resp.Header.Get("Allow"))
		}
	}
	if got, ok := friend.File("/videos/notes/a.txt"); !ok || string(got) != "shared note" {
		t.Error("the friend's shared file changed")
	}

	// Saving a folder of the share into the account: one share/transfer.
	before, uploaded := len(tb.Transfers()), tb.BytesReceived()
	resp, _ = b.admin(t, "COPY", "/share/videos/many/", nil, "Destination", b.url+"/tb/saved/")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("COPY from the share into the account: %d", resp.StatusCode)
	}
	if n := len(tb.Transfers()) - before; n != 1 || tb.BytesReceived() != uploaded {
		t.Errorf("%d share/transfer calls and %d bytes uploaded, want 1 and 0", n, tb.BytesReceived()-uploaded)
	}
	for i := range 25 {
		p := fmt.Sprintf("/saved/f%02d.txt", i)
		if got, ok := tb.File(p); !ok || string(got) != strconv.Itoa(i) {
			t.Fatalf("%s is not in the account", p)
		}
	}
	if resp, got := b.get(t, adminUser, adminPass, "/tb/saved/f07.txt"); resp.StatusCode != 200 || string(got) != "7" {
		t.Errorf("GET a saved file: %d %q", resp.StatusCode, got)
	}

	// A wrong extraction code: a clear state, a 403, and the others unharmed.
	resp, body := b.admin(t, "PROPFIND", "/badshare/", nil, "Depth", "1")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("PROPFIND a share with a wrong code: %d %s", resp.StatusCode, body)
	}
	resp, body = b.request(t, "", "", "GET", "/healthz", nil)
	var h struct {
		Mounts []struct {
			Path  string
			OK    bool
			Error string
		}
	}
	json.Unmarshal(body, &h)
	for _, mh := range h.Mounts {
		switch mh.Path {
		case "/badshare":
			if mh.OK || !strings.Contains(mh.Error, "extraction code") {
				t.Errorf("healthz for the wrong code: %+v", mh)
			}
		case "/share", "/tb":
			if !mh.OK {
				t.Errorf("healthz: %+v", mh)
			}
		}
	}
	if strings.Contains(b.logs.String(), "zz99") || strings.Contains(string(body), "zz99") {
		t.Error("the wrong extraction code appears in the log or /healthz")
	}
}
