package bridgecheck_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"bridge/davfs"
	"bridge/drivers"
	"bridge/drivers/cloudreve"
	"bridge/drivers/drivertest"
	cloudrevefake "bridge/tests/fakes/cloudreve"
	"bridge/tests/fakes/faults"
)

// restartEnv is a Cloudreve fake behind a bridge with one driver mounted
// twice: /p streams downloads (proxy), /r answers GET with a redirect.
type restartEnv struct {
	fake     *cloudrevefake.Fake
	provider string // the fake's base URL
	hs       *httptest.Server
}

func newRestartEnv(t *testing.T) *restartEnv {
	t.Helper()
	f := cloudrevefake.New()
	fs := drivertest.Serve(t, f)
	opts := map[string]any{"base_url": fs.URL, "username": f.User, "password": f.Password}
	d, err := cloudreve.New(context.Background(), drivers.Config{
		MountPath: "/c", StateDir: t.TempDir(), HTTPClient: fs.Client(), Logger: zerolog.Nop(),
		Decode: drivertest.DecodeOptions(opts),
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := davfs.New(davfs.Options{TempDir: t.TempDir(), Logger: zerolog.Nop(),
		Mounts: []davfs.Mount{{Path: "/p", Driver: d}, {Path: "/r", Driver: d, Redirect: true}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &restartEnv{fake: f, provider: fs.URL, hs: hs}
}

func (e *restartEnv) put(t *testing.T, p string, data []byte) {
	t.Helper()
	req, _ := http.NewRequest("PUT", e.hs.URL+p, bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %d", p, resp.StatusCode)
	}
}

// get fetches p through the bridge (following a redirect to the provider,
// as a client does) and returns the status and body.
func (e *restartEnv) get(t *testing.T, p, rng string) (int, []byte) {
	t.Helper()
	return drivertest.Get(t, e.hs.URL+p, rng)
}

// TestRestartedProviderNeverServesItsErrorAsTheFile: after the server
// forgets its download sessions, a cached link answers HTTP 200 with
// {"code":404,...}. Through the bridge, in proxy and redirect mode, a GET
// gives the file's bytes (through a fresh link), never that JSON.
func TestRestartedProviderNeverServesItsErrorAsTheFile(t *testing.T) {
	e := newRestartEnv(t)
	small := []byte("abcd")
	tiny := []byte(`{"code":404,"msg":"not an error"}`) // a file that looks like one, and is kept
	big := make([]byte, 3<<20)
	rand.Read(big)
	// Files exactly as long as the dead link's answers (with the encoder's
	// newline), so that only the driver's check of the error shape, not
	// the length, can tell them apart.
	gone, expired := make([]byte, len(`{"code":404,"msg":"Download session not exist"}`)+1), make([]byte, len(`{"code":40005,"msg":"signature expired"}`)+1)
	rand.Read(gone)
	rand.Read(expired)
	// /p and /r are the same account: the files are there for both.
	e.put(t, "/p/gone.bin", gone)
	e.put(t, "/p/expired.bin", expired)
	e.put(t, "/p/small.txt", small)
	e.put(t, "/p/big.bin", big)
	e.put(t, "/p/tiny.json", tiny)
	check := func(stage string) {
		t.Helper()
		for _, m := range []string{"/p", "/r"} {
			for _, c := range []struct {
				name, rng string
				want      []byte
			}{
				{"small.txt", "", small},
				{"gone.bin", "", gone},
				{"expired.bin", "", expired},
				{"small.txt", "bytes=1-2", small[1:3]},
				{"tiny.json", "", tiny},
				{"big.bin", "", big},
				{"big.bin", "bytes=1000000-1000099", big[1000000:1000100]},
			} {
				code, got := e.get(t, m+"/"+c.name, c.rng)
				if strings.Contains(string(got), "Download session not exist") || strings.Contains(string(got), "40005") {
					t.Fatalf("%s: GET %s/%s (%q) served the provider's error as the file: %d %q", stage, m, c.name, c.rng, code, got)
				}
				if (code != http.StatusOK && code != http.StatusPartialContent) || !bytes.Equal(got, c.want) {
					t.Fatalf("%s: GET %s/%s (%q): %d, %d bytes, want the file's %d", stage, m, c.name, c.rng, code, len(got), len(c.want))
				}
			}
		}
	}
	check("before the restart") // the links are cached now
	before := e.fake.Calls()["download"]
	// Restarted as a check from outside would: POST BASE_URL/__restart.
	resp, err := http.Post(e.provider+faults.RestartPath, "", nil)
	if err != nil || resp.StatusCode != http.StatusOK || e.fake.Faults.Restarts() != 1 {
		t.Fatalf("POST /__restart: %v %v", resp, err)
	}
	resp.Body.Close()
	check("after the restart")
	if e.fake.Calls()["download"] == before {
		t.Fatal("no fresh link was asked for after the restart")
	}
	// An expired signature answers HTTP 200 with 40005: the same.
	e.fake.Advance(cloudrevefake.LinkTTL + 1)
	check("after the links expired")
}

// TestDownloadCutByARestartResumes: a download in flight when the server
// restarts breaks off; the bridge resumes at the same byte with a fresh
// link (the old one is dead), and the client gets every byte.
func TestDownloadCutByARestartResumes(t *testing.T) {
	e := newRestartEnv(t)
	big := make([]byte, 32<<20)
	rand.Read(big)
	e.put(t, "/p/big.bin", big)
	resp, err := http.Get(e.hs.URL + "/p/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	e.fake.Faults.Restart() // the fake's answer breaks off at its next write
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the download broke off after %d bytes: %v", len(head)+len(rest), err)
	}
	if got := append(head, rest...); !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, not the %d of the file", len(got), len(big))
	}
	if n := e.fake.Faults.Injected()["restart-cut"]; n == 0 {
		t.Fatal("the restart did not cut the download: the test proved nothing")
	}
	if n := e.fake.Calls()["download"]; n < 2 {
		t.Fatalf("%d links asked for, want a fresh one after the restart", n)
	}
}
