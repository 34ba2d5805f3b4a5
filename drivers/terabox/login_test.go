package terabox

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rsc.io/qr"

	"bridge/drivers"
	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
)

// modulesOf is a QR code's module grid as rsc.io/qr made it.
func modulesOf(c *qr.Code) [][]bool {
	m := make([][]bool, c.Size)
	for y := range m {
		m[y] = make([]bool, c.Size)
		for x := range m[y] {
			m[y][x] = c.Black(x, y)
		}
	}
	return m
}

// deviceLogin runs the device flow on a driver without tokens; step runs
// at each poll wait with the number of the wait and its length.
func deviceLogin(t *testing.T, e *env, step func(n int, wait time.Duration)) (*Driver, string, error) {
	t.Helper()
	e.state = t.TempDir()
	d := e.open(t, "")
	out := &drivertest.LogBuffer{}
	n := 0
	e.waits.OnWait(func(wait time.Duration) { n++; step(n, wait) })
	err := d.Login(context.Background(), out, drivers.LoginOptions{})
	e.waits.OnWait(nil)
	return d, out.String(), e.noteErr(err)
}

// TestDeviceLogin: the QR code drawn in the terminal is the one in the
// PNG (sampled module by module), the PNG is saved in the state dir, the
// poll waits the interval asked for (more after 300001, too fast) until
// the code is approved (400001 before), and the tokens are stored.
func TestDeviceLogin(t *testing.T) {
	e := newEnv(t, faults.Config{})
	var waits []time.Duration
	var qrText string
	d, out, err := deviceLogin(t, e, func(n int, wait time.Duration) {
		waits = append(waits, wait)
		if n == 2 {
			e.clock.Advance(time.Second) // too soon: 300001
		} else {
			e.clock.Advance(wait)
		}
		if n == 3 {
			pending := e.fake.PendingDevices()
			if len(pending) != 1 || !e.fake.ApproveDevice(pending[0].Code) {
				t.Errorf("pending devices: %v", pending)
				return
			}
			qrText = pending[0].QRText
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 3 || waits[0] != 5*time.Second || waits[1] != 5*time.Second || waits[2] != 10*time.Second {
		t.Fatalf("waits %v: want the 5 s interval, then 10 s after 300001", waits)
	}
	if c := e.fake.Calls()["gettoken"]; c != 3 {
		t.Fatalf("%d polls, want 3 (pending, too fast, approved)", c)
	}
	code, err := qr.Encode(qrText, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, renderModules(modulesOf(code))) {
		t.Fatalf("the terminal does not show the QR code of %q:\n%s", qrText, out)
	}
	file := filepath.Join(e.state, qrFile)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(out, file) {
		t.Fatalf("QR code file %s: %v %v, named in the output: %v", file, fi, err, strings.Contains(out, file))
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("after login: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(e.state, "token.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
}

func TestDeviceLoginRefusedAndExpired(t *testing.T) {
	e := newEnv(t, faults.Config{})
	_, _, err := deviceLogin(t, e, func(_ int, wait time.Duration) {
		e.clock.Advance(wait)
		for _, p := range e.fake.PendingDevices() {
			e.fake.DenyDevice(p.Code)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("refused: %v", err)
	}
	_, _, err = deviceLogin(t, e, func(int, time.Duration) { e.clock.Advance(6 * time.Minute) })
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.state, "token.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed login wrote tokens: %v", err)
	}
	d := e.open(t, "")
	if err := d.Login(context.Background(), &bytes.Buffer{}, drivers.LoginOptions{AuthCode: true}); !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("-auth-code: %v, want ErrNotSupported", err)
	}
}

// TestQRFromOtherScales: the module grid is found whatever the PNG's
// scale and quiet zone.
func TestQRFromOtherScales(t *testing.T) {
	for _, scale := range []int{1, 3, 10} {
		code, err := qr.Encode("https://www.terabox.com/wap/outside/device?qrcode=0123456789abcdef", qr.L)
		if err != nil {
			t.Fatal(err)
		}
		code.Scale = scale
		var buf bytes.Buffer
		if err := png.Encode(&buf, code.Image()); err != nil {
			t.Fatal(err)
		}
		img, _ := png.Decode(&buf)
		got, err := qrModules(img)
		if err != nil {
			t.Fatalf("scale %d: %v", scale, err)
		}
		if renderModules(got) != renderModules(modulesOf(code)) {
			t.Fatalf("scale %d: the sampled modules differ", scale)
		}
	}
	if err := drawQR(&bytes.Buffer{}, []byte("not a png")); err == nil {
		t.Fatal("a non-PNG was drawn")
	}
}
