package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bridge/drivers"
	"bridge/drivers/pacer"
)

var content = []byte("0123456789abcdefghijklmnopqrstuvwxyz")

// errorEnvelope is what a dead Cloudreve link answers, with HTTP 200.
const errorEnvelope = `{"code":404,"msg":"Download session not exist"}`

func checkEnvelope(resp *http.Response, head []byte) error {
	if bytes.HasPrefix(head, []byte(`{"code":`)) {
		return errors.New("the provider's error envelope")
	}
	return nil
}

// noWait records the waits a pacer asks for instead of waiting.
func noWait(waits *[]time.Duration) context.Context {
	return pacer.WithSleep(context.Background(), func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return nil
	})
}

func serve(t *testing.T, h http.HandlerFunc) drivers.Link {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return drivers.Link{URL: srv.URL + "/f"}
}

func read(t *testing.T, f *Fetcher, l drivers.Link, off, n int64) ([]byte, error) {
	t.Helper()
	var waits []time.Duration
	rc, err := f.Get(noWait(&waits), l, int64(len(content)), off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestAnswersThatAreNotTheFile(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"200 with another length (a dead link's JSON)": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, errorEnvelope)
		},
		"206 from another byte": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 1-5/%d", len(content)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(content[1:6])
		},
		"206 of an object of another size": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 2-6/999")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(content[2:7])
		},
		"206 shorter than asked": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 2-4/%d", len(content)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(content[2:5])
		},
		"206 without Content-Range": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			w.Write(content[2:7])
		},
		"403": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "expired", http.StatusForbidden) },
		"404": func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
		"416": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusRequestedRangeNotSatisfiable)
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := read(t, &Fetcher{}, serve(t, h), 2, 5)
			if !errors.Is(err, ErrNotTheFile) {
				t.Fatalf("read %q, %v; want ErrNotTheFile", got, err)
			}
		})
	}
}

func TestErrorShapeOfTheFilesOwnLength(t *testing.T) {
	// A dead link whose error happens to be as long as the file: only the
	// driver's check can tell.
	body := errorEnvelope
	l := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	f := &Fetcher{Check: checkEnvelope}
	var waits []time.Duration
	rc, err := f.Get(noWait(&waits), l, int64(len(body)), 0, -1)
	if !errors.Is(err, ErrNotTheFile) {
		b, _ := io.ReadAll(rc)
		t.Fatalf("read %q, %v; want ErrNotTheFile", b, err)
	}
	// Without Content-Length (chunked), too.
	l = serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body[:10])
		w.(http.Flusher).Flush()
		io.WriteString(w, body[10:])
	})
	if _, err := f.Get(noWait(&waits), l, 60<<20, 0, -1); !errors.Is(err, ErrNotTheFile) {
		t.Fatalf("chunked error answer: %v; want ErrNotTheFile", err)
	}
}

func TestRightAnswers(t *testing.T) {
	ranged := func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
	}
	ignoresRange := func(w http.ResponseWriter, r *http.Request) { w.Write(content) }
	for name, h := range map[string]http.HandlerFunc{"ranged": ranged, "ignores Range": ignoresRange} {
		link := serve(t, h)
		for _, r := range [][2]int64{{0, -1}, {0, 1}, {5, 10}, {35, 1}, {30, -1}} {
			got, err := read(t, &Fetcher{Check: checkEnvelope}, link, r[0], r[1])
			end := int64(len(content))
			if r[1] >= 0 {
				end = r[0] + r[1]
			}
			if err != nil || !bytes.Equal(got, content[r[0]:end]) {
				t.Fatalf("%s [%d,%d): %q, %v", name, r[0], end, got, err)
			}
		}
	}
}

func TestShortBodyIsAnError(t *testing.T) {
	l := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.Write(content[:10])
		panic(http.ErrAbortHandler)
	})
	got, err := read(t, &Fetcher{}, l, 0, -1)
	if err == nil {
		t.Fatalf("a cut answer read as %d bytes and no error", len(got))
	}
}

func TestPassingFailuresRetriedHonouringRetryAfter(t *testing.T) {
	var n atomic.Int32
	l := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "2")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default:
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
		}
	})
	var waits []time.Duration
	rc, err := (&Fetcher{}).Get(noWait(&waits), l, int64(len(content)), 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "3456" || n.Load() != 3 {
		t.Fatalf("got %q after %d requests", got, n.Load())
	}
	if len(waits) != 2 || waits[0] != 2*time.Second {
		t.Fatalf("waits %v, want Retry-After's 2s first", waits)
	}
}

func TestOpenReplacesADeadLinkOnce(t *testing.T) {
	dead := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, errorEnvelope) })
	good := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
	})
	var asked []bool
	links := func(fresh drivers.Link) LinkFunc {
		return func(ctx context.Context, isFresh bool) (drivers.Link, error) {
			asked = append(asked, isFresh)
			if isFresh {
				return fresh, nil
			}
			return dead, nil
		}
	}
	f := &Fetcher{Check: checkEnvelope}
	var waits []time.Duration
	rc, err := f.Open(noWait(&waits), links(good), int64(len(content)), 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "abcde" || len(asked) != 2 || asked[0] || !asked[1] {
		t.Fatalf("got %q, links asked %v", got, asked)
	}
	asked = nil
	if _, err := f.Open(noWait(&waits), links(dead), int64(len(content)), 0, -1); !errors.Is(err, ErrNotTheFile) || len(asked) != 2 {
		t.Fatalf("two dead links: %v after %v; want ErrNotTheFile after one fresh link", err, asked)
	}
}

func TestReaderResumesACutStream(t *testing.T) {
	big := bytes.Repeat(content, 10000)
	var cuts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cuts.Add(1) <= 2 {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			if rng := r.Header.Get("Range"); rng != "" {
				http.ServeContent(&cutAfter{ResponseWriter: w, left: 50000}, r, "", time.Time{}, bytes.NewReader(big))
				return
			}
			w.Write(big[:50000])
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(big))
	}))
	defer srv.Close()
	f := &Fetcher{}
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) { return drivers.Link{URL: srv.URL}, nil }
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return f.Open(ctx, links, int64(len(big)), off, n)
	}
	r := NewReader(context.Background(), open, int64(len(big)), nil)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(big), err)
	}
	if cuts.Load() != 3 {
		t.Fatalf("%d requests, want 3 (two cut, resumed at the same byte)", cuts.Load())
	}
}

type cutAfter struct {
	http.ResponseWriter
	left int
}

func (c *cutAfter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		http.NewResponseController(c.ResponseWriter).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func TestParseContentRange(t *testing.T) {
	for h, want := range map[string][3]int64{
		"bytes 0-9/10": {0, 9, 10}, "bytes 5-5/*": {5, 5, -1}, " bytes 2-3/4 ": {2, 3, 4},
	} {
		a, b, c, ok := parseContentRange(h)
		if !ok || [3]int64{a, b, c} != want {
			t.Errorf("%q: %d %d %d %v", h, a, b, c, ok)
		}
	}
	for _, h := range []string{"", "bytes */10", "bytes 5-2/10", "items 0-1/2", "bytes 0-1"} {
		if _, _, _, ok := parseContentRange(h); ok {
			t.Errorf("%q parsed", h)
		}
	}
}

func TestReaderGivesUpOnlyWithoutProgress(t *testing.T) {
	data := []byte("0123456789")
	var requests atomic.Int32
	serveCut := func(progress bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			budget := 0
			if progress {
				budget = 1 // one byte, then the cut
			}
			http.ServeContent(&cutAfter{ResponseWriter: w, left: budget}, r, "", time.Time{}, bytes.NewReader(data))
		}))
	}
	read := func(srv *httptest.Server) ([]byte, error) {
		f := &Fetcher{}
		links := func(ctx context.Context, fresh bool) (drivers.Link, error) { return drivers.Link{URL: srv.URL}, nil }
		open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			return f.Open(ctx, links, int64(len(data)), off, n)
		}
		return io.ReadAll(NewReader(context.Background(), open, int64(len(data)), nil))
	}
	// A cut after every byte: ten breaks, each after progress, all survived.
	srv := serveCut(true)
	defer srv.Close()
	if got, err := read(srv); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a byte per answer: %q %v", got, err)
	}
	// No progress at all: given up after maxResumes+1 answers.
	requests.Store(0)
	srv2 := serveCut(false)
	defer srv2.Close()
	if _, err := read(srv2); err == nil || requests.Load() != maxResumes+1 {
		t.Fatalf("no progress: %v after %d answers, want an error after %d", err, requests.Load(), maxResumes+1)
	}
}

func TestParseRange(t *testing.T) {
	for h, want := range map[string]string{
		"bytes=0-9": "0-9", "bytes=-5": "-5", "bytes=5-": "5-", "bytes= 1-2 , -3": "1-2,-3",
	} {
		specs, ok := ParseRange(h)
		var got []string
		for _, s := range specs {
			got = append(got, s.String())
		}
		if !ok || strings.Join(got, ",") != want {
			t.Errorf("%q: %v %v, want %s", h, got, ok, want)
		}
	}
	for _, h := range []string{"bytes=5-1", "bytes=abc", "items=0-1", "bytes=-", "bytes=1-2,x", "bytes=-1-2"} {
		if _, ok := ParseRange(h); ok {
			t.Errorf("%q parsed", h)
		}
	}
	if (RangeSpec{First: -1, Last: 0}).Satisfiable(10) || (RangeSpec{First: 10, Last: -1}).Satisfiable(10) ||
		!(RangeSpec{First: 9, Last: -1}).Satisfiable(10) {
		t.Error("Satisfiable")
	}
}
