package davfs

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"bridge/drivers"
)

// libraryDriver counts storage per top-level folder, as a Gokuai mount of
// several libraries does.
type libraryDriver struct {
	*memDriver
	calls atomic.Int32
}

func (d *libraryDriver) DirQuota(ctx context.Context, dir drivers.Ref) (drivers.Quota, error) {
	d.calls.Add(1)
	if dir.Path == "/" {
		return drivers.Quota{}, drivers.ErrNotSupported
	}
	return drivers.Quota{Total: 1000, Used: 100, Free: 900}, nil
}

// A folder's own quota is served where the driver has one, reused like
// the mount's (Finder asks with every folder it shows), and the mount's
// figures serve where it has none.
func TestDirQuota(t *testing.T) {
	d := &libraryDriver{memDriver: newMemDriver(t, allFeatures())}
	d.add("root", "lib", true, nil)
	e := newEnv(t, Options{}, Mount{Path: "/m", Driver: d})
	ask := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`
	for range 3 {
		resp := e.do(t, "PROPFIND", "/m/lib/", strings.NewReader(ask), "Depth", "0")
		wantStatus(t, resp, http.StatusMultiStatus)
		if b := readBody(t, resp); !strings.Contains(b, "<D:quota-available-bytes>900</D:quota-available-bytes>") {
			t.Fatalf("the library's quota is not served: %s", b)
		}
	}
	if n := d.calls.Load(); n != 1 {
		t.Fatalf("%d DirQuota calls for three PROPFINDs, want 1", n)
	}
	resp := e.do(t, "PROPFIND", "/m/", strings.NewReader(ask), "Depth", "0")
	wantStatus(t, resp, http.StatusMultiStatus)
	if b := readBody(t, resp); strings.Contains(b, ">900<") || !strings.Contains(b, "quota-available-bytes>") {
		t.Fatalf("the mount root should show the mount's quota: %s", b)
	}
}
