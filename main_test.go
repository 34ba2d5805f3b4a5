package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"bridge/config"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHashPassword(t *testing.T) {
	code, out, _ := runCLI(t, "hunter2\n", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("hunter2")); err != nil {
		t.Fatalf("hash %q does not match: %v", out, err)
	}
	if code, _, _ := runCLI(t, "\n", "hash-password"); code != 2 {
		t.Fatalf("empty password: exit %d, want 2", code)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	for _, file := range []string{"config.example.toml", "deploy/bridge.toml"} {
		code, out, errOut := runCLI(t, "", "check-config", file)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", file, code, out, errOut)
		}
	}
}

func TestCheckConfigReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.toml")
	src := `[server]
listen = "127.0.0.1:1"
[[users]]
name = "a"
password_hash = "nope"
mounts = ["*"]
[[mounts]]
path = "/l"
driver = "local"
[mounts.options]
rooot = "/tmp"
[[mounts]]
path = "/l"
driver = "local"
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "", "check-config", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"line 5: users[0].password_hash", `line 13: mounts[1].path: duplicate mount path "/l"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// Options are checked once the file itself is sound.
	src = strings.Replace(strings.Replace(src, `"nope"`, `"$2a$04$abcdefghijklmnopqrstuu5vO.R6BZhNGuuX6pDk6YVyRMbB8Z8zGK"`, 1), "path = \"/l\"\ndriver = \"local\"\n", "path = \"/m\"\ndriver = \"local\"\n", 1)
	os.WriteFile(file, []byte(src), 0o600)
	code, out, _ = runCLI(t, "", "check-config", file)
	if code != 1 || !strings.Contains(out, "line 11: mounts[0].options.rooot: unknown key for driver local") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// Drivers whose links carry the account's token (TeraBox) or fail with a
// page (DiscCloud) cannot redirect clients: check-config says so, naming
// the reason, instead of letting every download fail later.
func TestCheckConfigRefusesRedirectWhereLinksAreNotClientSafe(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	src := `[[users]]
name = "a"
password_hash = "$2a$04$abcdefghijklmnopqrstuu5vO.R6BZhNGuuX6pDk6YVyRMbB8Z8zGK"
mounts = ["*"]
[[mounts]]
path = "/tb"
driver = "terabox"
download = "redirect"
[mounts.options]
client_id = "id"
client_secret = "secret"
private_secret = "private"
app_name = "app"
[[mounts]]
path = "/dc"
driver = "disccloud"
download = "redirect"
[mounts.options]
api_base = "https://files.example/api/v2/"
key1 = "k1"
key2 = "k2"
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "", "check-config", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{`mounts[0].download: "redirect" cannot work with driver "terabox": its download links work only with the account's access token`,
		`mounts[1].download: "redirect" cannot work with driver "disccloud"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") || strings.Contains(out, "k2") {
		t.Errorf("a secret in the output:\n%s", out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	if code, out, _ := runCLI(t, "", "version"); code != 0 || !strings.HasPrefix(out, "bridge ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "", "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

// testConfig writes a config for an in-process bridge with one local
// mount and returns it.
func testConfig(t *testing.T, extraServer string) (*config.Config, string) {
	t.Helper()
	return testConfigWith(t, extraServer, "")
}

// testConfigWith is testConfig with more [[mounts]] tables.
func testConfigWith(t *testing.T, extraServer, extraMounts string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	src := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
state_dir = %q
temp_dir = %q
%s
[[users]]
name = "u"
password_hash = %q
mounts = ["*"]
[[mounts]]
path = "/local"
driver = "local"
[mounts.options]
root = %q
%s`, filepath.Join(dir, "state"), filepath.Join(dir, "tmp"), extraServer, h, filepath.Join(dir, "data"), extraMounts)
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte(src), 0o600)
	c, err := config.Load(file, driverNames())
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func TestLoginThrottleAndStatusPaths(t *testing.T) {
	c, _ := testConfig(t, "login_max_failures = 3\n")
	h, closeAll, err := buildHandler(context.Background(), c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	hs := httptest.NewServer(h)
	defer hs.Close()
	get := func(path, pass string) int {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if pass != "" {
			req.SetBasicAuth("u", pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz", ""); code != 200 {
		t.Fatalf("/healthz without credentials: %d", code)
	}
	if code := get("/readyz", ""); code != 200 {
		t.Fatalf("/readyz without credentials: %d", code)
	}
	if code := get("/metrics", ""); code != 200 {
		t.Fatalf("/metrics without credentials: %d", code)
	}
	for i := 0; i < 4; i++ {
		if code := get("/local/", "nope"); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := get("/local/", "pw"); code != 429 {
		t.Fatalf("after 4 failures the right password got %d, want 429", code)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestTLSAndGracefulShutdown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	certDir := t.TempDir()
	cert, key := selfSigned(t, certDir)
	_, dir := testConfig(t, "")
	file := filepath.Join(dir, "c.toml")
	src, _ := os.ReadFile(file)
	src = bytes.Replace(src, []byte(`listen = "127.0.0.1:0"`), []byte(fmt.Sprintf("listen = %q\ntls_cert = %q\ntls_key = %q\nshutdown_timeout = \"20s\"", addr, cert, key)), 1)
	os.WriteFile(file, src, 0o600)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-config", file}, strings.NewReader(""), io.Discard, io.Discard)
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		if resp, err := client.Get("https://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("TLS bridge did not come up")
	}
	// An upload is under way when the stop signal comes: it must finish.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PUT", "https://"+addr+"/local/slow.bin", pr)
	req.SetBasicAuth("u", "pw")
	req.ContentLength = 6
	result := make(chan int, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	pw.Write([]byte("abc"))
	// The request is in the server's hands once its body is being spooled.
	for i := 0; ; i++ {
		if m, _ := filepath.Glob(filepath.Join(dir, "tmp", "bridge-put-*")); len(m) > 0 {
			break
		}
		if i == 200 {
			t.Fatal("the upload never reached the server")
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop()
	time.Sleep(200 * time.Millisecond)
	pw.Write([]byte("def"))
	pw.Close()
	if code := <-result; code != 201 {
		t.Fatalf("upload during shutdown: %d", code)
	}
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "data", "slow.bin")); string(got) != "abcdef" {
		t.Fatalf("stored %q", got)
	}
}

func TestGCPercentYieldsToTheEnvironment(t *testing.T) {
	env := map[string]string{}
	if pct, ok := gcPercent(func(k string) string { return env[k] }); !ok || pct != defaultGCPercent {
		t.Fatalf("without GOGC: %d, %v; want %d", pct, ok, defaultGCPercent)
	}
	env["GOGC"] = "50"
	if _, ok := gcPercent(func(k string) string { return env[k] }); ok {
		t.Fatal("GOGC set: the server still sets its own")
	}
}
