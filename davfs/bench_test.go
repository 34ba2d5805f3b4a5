package davfs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"bridge/drivers"
)

// benchServer serves a memDriver with a 10,000-entry folder and a 64 MiB
// file, through the real handler on loopback.
func benchServer(b *testing.B) (*Server, *httptest.Server, []byte) {
	d := newMemDriver(&testing.T{}, allFeatures())
	d.mu.Lock()
	big := d.add("root", "big", true, nil)
	for i := 0; i < 10000; i++ {
		d.add(big.id, fmt.Sprintf("file-%05d.jpg", i), false, []byte("x"))
	}
	data := make([]byte, 64<<20)
	rand.New(rand.NewSource(1)).Read(data)
	d.add("root", "video.mp4", false, data)
	d.mu.Unlock()
	opts := Options{TempDir: b.TempDir(), Logger: zerolog.Nop(), Mounts: []Mount{{Path: "/m", Driver: d}}}
	s, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	b.Cleanup(hs.Close)
	b.Cleanup(d.srv.Close)
	return s, hs, data
}

func doBench(b *testing.B, req *http.Request) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Fatalf("%s %s: %d", req.Method, req.URL.Path, resp.StatusCode)
	}
}

func BenchmarkPropfind10kWarm(b *testing.B) {
	s, hs, _ := benchServer(b)
	propfind := func() {
		req, _ := http.NewRequest("PROPFIND", hs.URL+"/m/big/", nil)
		req.Header.Set("Depth", "1")
		doBench(b, req)
	}
	propfind()
	before := s.ProviderCalls("/m")[OpList]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		propfind()
	}
	b.ReportMetric(float64(s.ProviderCalls("/m")[OpList]-before)/float64(b.N), "lists/op")
}

func BenchmarkPropfind10kCold(b *testing.B) {
	s, hs, _ := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.cache.forgetTree("/m", "/") // every listing is cold
		req, _ := http.NewRequest("PROPFIND", hs.URL+"/m/big/", nil)
		req.Header.Set("Depth", "1")
		doBench(b, req)
	}
	b.ReportMetric(float64(s.ProviderCalls("/m")[OpList])/float64(b.N), "lists/op")
}

func BenchmarkRangeGet64KiB(b *testing.B) {
	s, hs, data := benchServer(b)
	r := rand.New(rand.NewSource(2))
	b.SetBytes(64 << 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := r.Int63n(int64(len(data)) - 64<<10)
		req, _ := http.NewRequest("GET", hs.URL+"/m/video.mp4", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+64<<10-1))
		doBench(b, req)
	}
	b.ReportMetric(float64(s.ProviderCalls("/m")[OpLink])/float64(b.N), "links/op")
}

func BenchmarkPut8MiB(b *testing.B) {
	_, hs, data := benchServer(b)
	body := data[:8<<20]
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("PUT", hs.URL+"/m/upload.bin", bytes.NewReader(body))
		doBench(b, req)
	}
}

var _ drivers.Driver = (*memDriver)(nil)
