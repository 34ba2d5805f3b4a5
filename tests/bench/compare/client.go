package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bridge/tests/bench/content"
)

const user, pass = "bench", "bench-pass"

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}}

func drain(resp *http.Response) {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// do sends req with the benchmark's credentials and fails unless the
// answer's status is one of ok.
func do(req *http.Request, ok ...int) (*http.Response, error) {
	req.SetBasicAuth(user, pass)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	resp.Body.Close()
	return nil, fmt.Errorf("%s %s: %s %s", req.Method, req.URL, resp.Status, bytes.TrimSpace(b))
}

// propfind sends a PROPFIND (allprop) and reads the whole answer; it
// returns the time to the last byte and the answer.
func propfind(url, depth string) (time.Duration, []byte, error) {
	req, _ := http.NewRequest("PROPFIND", url, nil)
	req.Header.Set("Depth", depth)
	t0 := time.Now()
	resp, err := do(req, http.StatusMultiStatus)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return time.Since(t0), b, err
}

// propfindEntries is propfind that also checks how many entries the
// answer holds (the folder itself and its children).
// The answer is counted as it streams through one reused buffer: reading
// megabytes into a growing slice cost the client more than the servers'
// own work, and varied with the client's heap, whichever server answered.
func propfindEntries(url string, want int) (time.Duration, error) {
	req, _ := http.NewRequest("PROPFIND", url, nil)
	req.Header.Set("Depth", "1")
	t0 := time.Now()
	resp, err := do(req, http.StatusMultiStatus)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Opening and closing tags, whatever the namespace prefix.
	c := &tagCounter{tag: []byte("response>")}
	_, err = io.CopyBuffer(c, resp.Body, propfindBuf[:])
	d := time.Since(t0)
	if err != nil {
		return d, err
	}
	if n := c.n / 2; want > 0 && n != want {
		return d, fmt.Errorf("PROPFIND %s: %d entries, want %d", url, n, want)
	}
	return d, nil
}

// propfindBuf is propfindEntries' read buffer (one request at a time).
var propfindBuf [256 << 10]byte

// tagCounter counts the occurrences of tag in what is written to it,
// across the boundaries of writes.
type tagCounter struct {
	tag  []byte
	tail []byte // the end of the last write, shorter than tag
	n    int
}

func (c *tagCounter) Write(p []byte) (int, error) {
	short := len(c.tag) - 1
	// An occurrence that straddles the boundary: the tail is too short to
	// hold one, and so is the head of p joined to it.
	joined := append(c.tail, p[:min(len(p), short)]...)
	c.n += bytes.Count(joined, c.tag) + bytes.Count(p, c.tag)
	if len(p) >= short {
		joined = p
	}
	c.tail = append(c.tail[:0], joined[len(joined)-min(len(joined), short):]...)
	return len(p), nil
}

// propSize is the getcontentlength a Depth 0 PROPFIND answers for url.
func propSize(url string) (int64, error) {
	_, b, err := propfind(url, "0")
	if err != nil {
		return 0, err
	}
	var ms struct {
		Responses []struct {
			Length string `xml:"propstat>prop>getcontentlength"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal(b, &ms); err != nil {
		return 0, fmt.Errorf("PROPFIND %s: %w", url, err)
	}
	if len(ms.Responses) != 1 {
		return 0, fmt.Errorf("PROPFIND %s: %d responses", url, len(ms.Responses))
	}
	return strconv.ParseInt(strings.TrimSpace(ms.Responses[0].Length), 10, 64)
}

// put uploads c as url and returns the time to the answer.
func put(ctx context.Context, url string, c content.Content) (time.Duration, error) {
	// A 1 MiB buffer in front, so the transport's 32 KiB reads are
	// served by copying, not by making content 32 KiB at a time.
	body := io.NopCloser(newBuffered(c.Reader()))
	req, _ := http.NewRequestWithContext(ctx, "PUT", url, body)
	req.ContentLength = c.Size
	t0 := time.Now()
	resp, err := do(req, http.StatusCreated, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return 0, err
	}
	drain(resp)
	return time.Since(t0), nil
}

type buffered struct {
	r   io.Reader
	buf []byte
	b   []byte
}

func newBuffered(r io.Reader) *buffered { return &buffered{r: r, buf: make([]byte, content.BlockSize)} }

func (b *buffered) Read(p []byte) (int, error) {
	if len(b.b) == 0 {
		n, err := io.ReadFull(b.r, b.buf)
		if n == 0 {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return 0, err
		}
		b.b = b.buf[:n]
	}
	n := copy(p, b.b)
	b.b = b.b[n:]
	return n, nil
}

func del(url string) error {
	req, _ := http.NewRequest("DELETE", url, nil)
	resp, err := do(req, http.StatusNoContent, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// curlGet fetches url with curl, a client fast enough not to be what is
// measured (a Go client on the same two cores was), checks that size
// bytes came with status 200, and returns MiB/s. Without header, it sends
// the benchmark's credentials.
func curlGet(url string, header http.Header, size int64) (float64, error) {
	args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}"}
	if header == nil {
		args = append(args, "-u", user+":"+pass)
	}
	for k, vs := range header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	out, err := exec.Command("curl", append(args, url)...).Output()
	if err != nil {
		return 0, fmt.Errorf("curl %s: %v", url, err)
	}
	var code int
	var n, speed float64
	if _, err := fmt.Sscan(string(out), &code, &n, &speed); err != nil || code != 200 || int64(n) != size {
		return 0, fmt.Errorf("GET %s: status, bytes, speed = %s (want %d bytes)", url, out, size)
	}
	return speed / (1 << 20), nil
}

// getCompare GETs url with rangeHeader ("" for the whole file) and checks
// the answer byte for byte against c from off on, length bytes.
func getCompare(ctx context.Context, url, rangeHeader string, c content.Content, off, length int64) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	want := http.StatusOK
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
		want = http.StatusPartialContent
	}
	resp, err := do(req, want)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if rangeHeader != "" {
		wantCR := fmt.Sprintf("bytes %d-%d/%d", off, off+length-1, c.Size)
		if cr := resp.Header.Get("Content-Range"); cr != wantCR {
			return fmt.Errorf("Range %s: Content-Range %q, want %q", rangeHeader, cr, wantCR)
		}
	}
	if resp.ContentLength != length {
		return fmt.Errorf("Range %q: Content-Length %d, want %d", rangeHeader, resp.ContentLength, length)
	}
	if err := c.Compare(resp.Body, off, length); err != nil {
		return fmt.Errorf("Range %q: %w", rangeHeader, err)
	}
	return nil
}

var reqPerSec = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)

// depth0Load measures PROPFIND Depth 0 on url with 32 connections for
// secs seconds, with wrk (Debian's package) or, without it, a Go load
// generator; it returns requests per second.
func depth0Load(dir, url string, secs int) (float64, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return goLoad(url, secs)
	}
	script := filepath.Join(dir, "propfind.lua")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	lua := fmt.Sprintf("wrk.method = \"PROPFIND\"\nwrk.headers[\"Depth\"] = \"0\"\nwrk.headers[\"Authorization\"] = \"Basic %s\"\n", auth)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return 0, err
	}
	out, err := exec.Command("wrk", "-t2", "-c32", fmt.Sprintf("-d%ds", secs), "-s", script, url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	m := reqPerSec.FindSubmatch(out)
	if m == nil || bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		return 0, fmt.Errorf("wrk output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// goLoad is the stand-in for wrk: 32 connections, each sending PROPFIND
// Depth 0 back to back.
func goLoad(url string, secs int) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var n atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("PROPFIND", url, nil)
				req.Header.Set("Depth", "0")
				req.SetBasicAuth(user, pass)
				resp, err := c.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				drain(resp)
				if resp.StatusCode != http.StatusMultiStatus {
					firstErr.CompareAndSwap(nil, fmt.Errorf("PROPFIND %s: %s", url, resp.Status))
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / float64(secs), nil
}
