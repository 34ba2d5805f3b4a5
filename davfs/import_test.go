package davfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"bridge/drivers"
)

// importingDriver fetches URLs by itself, as a YetiShare site's
// url_upload_add does; refuse makes it decline every URL.
type importingDriver struct {
	*memDriver
	refuse  bool
	imports atomic.Int32
	puts    atomic.Int32
}

func (d *importingDriver) ImportURL(ctx context.Context, parent drivers.Ref, name string, src drivers.Link, size int64) (drivers.Object, error) {
	d.imports.Add(1)
	if d.refuse {
		return drivers.Object{}, fmt.Errorf("url uploads are off: %w", drivers.ErrNotSupported)
	}
	resp, err := http.Get(src.URL)
	if err != nil {
		return drivers.Object{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || int64(len(data)) != size {
		return drivers.Object{}, errors.New("short import")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.obj(d.add(parent.ID, name, false, data)), nil
}

func (d *importingDriver) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	d.puts.Add(1)
	return d.memDriver.Put(ctx, parent, name, up)
}

// A COPY between mounts into a provider that imports URLs hands it the
// source's link: the bridge reads no byte and uploads none. A provider
// that refuses gets the file streamed as before.
func TestCrossMountCopyByURLImport(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprint("refuse=", refuse), func(t *testing.T) {
			src := newMemDriver(t, allFeatures())
			src.add("root", "movie.mkv", false, []byte(strings.Repeat("frame", 1000)))
			dst := &importingDriver{memDriver: newMemDriver(t, allFeatures()), refuse: refuse}
			e := newEnv(t, Options{}, Mount{Path: "/src", Driver: src}, Mount{Path: "/dst", Driver: dst})
			resp := e.do(t, "COPY", "/src/movie.mkv", nil, "Destination", e.http.URL+"/dst/movie.mkv")
			wantStatus(t, resp, http.StatusCreated)
			if got, ok := dst.file("/movie.mkv"); !ok || string(got) != strings.Repeat("frame", 1000) {
				t.Fatal("the copy has the wrong content")
			}
			calls := e.srv.ProviderCalls("/src")
			switch {
			case !refuse && (dst.imports.Load() != 1 || dst.puts.Load() != 0 || calls[OpDownload] != 0):
				t.Fatalf("imports %d, puts %d, bridge downloads %v: the bytes went through the bridge",
					dst.imports.Load(), dst.puts.Load(), calls)
			case refuse && (dst.imports.Load() != 1 || dst.puts.Load() != 1):
				t.Fatalf("refused import: imports %d, puts %d, want 1 and a streamed Put", dst.imports.Load(), dst.puts.Load())
			}
			// The new file is listed at once.
			resp = e.do(t, "PROPFIND", "/dst/", nil, "Depth", "1")
			if b := readBody(t, resp); !strings.Contains(b, "movie.mkv") {
				t.Fatalf("imported file not listed: %s", b)
			}
		})
	}
}
