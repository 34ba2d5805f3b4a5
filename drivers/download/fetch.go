// Package download reads a file's bytes from a provider's download link,
// and makes sure they are the file's bytes or an error, never anything
// else. Providers are rough: a dead Cloudreve link answers HTTP 200 with a
// JSON error, a dead YetiShare link HTTP 200 with an HTML page, a provider
// may ignore Range or send another range than asked, and a stream may end
// early. An answer counts as the file only when its status, Content-Range
// and Content-Length match what was asked (the file's size for a 200, the
// range for a 206) and the driver does not recognise its own error shape
// in it (drivers.LinkChecker). Anything else is ErrNotTheFile: the caller
// drops the link and asks for a fresh one.
//
// davfs (GET, cross-mount copies) and drivertest read through this package,
// so the conformance suite reads links the way the bridge does.
package download

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"bridge/drivers"
	"bridge/drivers/pacer"
)

// ErrNotTheFile is an answer of a link that is not the file's bytes: the
// link is dead, refused or points at something else. A fresh link may
// work.
var ErrNotTheFile = fmt.Errorf("the download link did not answer with the file: %w", drivers.ErrUnavailable)

// headSize is how much of a body a driver's LinkChecker gets to see.
const headSize = 512

// Fetcher GETs ranges of files from links.
type Fetcher struct {
	Client *http.Client
	// Check is the driver's own test for its error shape (nil: none).
	Check func(resp *http.Response, head []byte) error
	// Pacer retries passing failures (429, 5xx, a connection refused) on
	// the same link; nil: a default one.
	Pacer *pacer.Pacer
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

// Get returns a stream of exactly the bytes [off, off+n) of a file of size
// bytes (n < 0: to the end) from l. The stream fails with
// io.ErrUnexpectedEOF if it ends early. A 429 or 5xx answer, or a failed
// connection, is retried on the same link; an answer that is not the file
// is ErrNotTheFile.
func (f *Fetcher) Get(ctx context.Context, l drivers.Link, size, off, n int64) (io.ReadCloser, error) {
	if n < 0 || off+n > size {
		n = size - off
	}
	if n <= 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	p := f.Pacer
	if p == nil {
		p = &pacer.Pacer{}
	}
	var body io.ReadCloser
	err := p.Call(ctx, func(int) (pacer.Retry, error) {
		rc, retry, err := f.once(ctx, l, size, off, n)
		body = rc
		return retry, err
	})
	if err != nil {
		return nil, err
	}
	return body, nil
}

// once is one attempt of Get.
func (f *Fetcher) once(ctx context.Context, l drivers.Link, size, off, n int64) (io.ReadCloser, pacer.Retry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
	if err != nil {
		return nil, pacer.Retry{}, fmt.Errorf("bad download link: %w", ErrNotTheFile)
	}
	for k, vs := range l.Header {
		req.Header[k] = vs
	}
	// The exact bytes, not a compressed form of them (whose length would
	// not be the file's).
	req.Header.Set("Accept-Encoding", "identity")
	whole := off == 0 && n == size
	if !whole {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
	}
	resp, err := f.client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, pacer.Retry{}, ctx.Err()
		}
		// The error text may hold the URL with its signature: keep it out.
		return nil, pacer.Retry{Again: true}, fmt.Errorf("download: connection failed: %w", drivers.ErrUnavailable)
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		resp.Body.Close()
		after := pacer.RetryAfter(resp)
		return nil, pacer.Retry{Again: true, After: after}, drivers.WithRetryAfter(fmt.Errorf("download answered %d: %w", s, drivers.ErrRateLimited), after)
	case pacer.Passing(s):
		resp.Body.Close()
		return nil, pacer.Retry{Again: true, After: pacer.RetryAfter(resp)}, fmt.Errorf("download answered %d: %w", s, drivers.ErrUnavailable)
	}
	rc, err := f.verify(resp, size, off, n)
	return rc, pacer.Retry{}, err
}

// verify checks that resp is [off, off+n) of the file and returns a body
// of exactly those bytes.
func (f *Fetcher) verify(resp *http.Response, size, off, n int64) (io.ReadCloser, error) {
	refuse := func(why string, args ...any) (io.ReadCloser, error) {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", fmt.Sprintf(why, args...), ErrNotTheFile)
	}
	skip := int64(0) // bytes before off in the body
	switch resp.StatusCode {
	case http.StatusOK:
		// The whole file, whether asked or not (a provider that ignores
		// Range): its length must be the file's.
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return refuse("answered 200 with %d bytes for a file of %d", resp.ContentLength, size)
		}
		skip = off
	case http.StatusPartialContent:
		start, last, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case !ok:
			return refuse("answered 206 without a usable Content-Range")
		case total >= 0 && total != size:
			return refuse("answered a range of a %d-byte object for a file of %d", total, size)
		case start > off || last < off+n-1:
			return refuse("answered bytes %d-%d, asked %d-%d", start, last, off, off+n-1)
		case resp.ContentLength >= 0 && resp.ContentLength != last-start+1:
			return refuse("answered %d bytes for the range %d-%d", resp.ContentLength, start, last)
		}
		skip = off - start
	default:
		// 401, 403, 404, 410 (a dead or refused link), 416 (the provider
		// holds another length), a redirect loop, anything else.
		return refuse("answered %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	if f.Check != nil {
		head, _ := br.Peek(headSize) // a short or failed peek shows what there is
		if err := f.Check(resp, head); err != nil {
			return refuse("%v", err)
		}
	}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, br, skip); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("download: skipping to byte %d: %w", off, drivers.ErrUnavailable)
		}
	}
	return &exactBody{r: br, c: resp.Body, left: n}, nil
}

// parseContentRange reads "bytes a-b/total" (total may be "*": -1).
func parseContentRange(h string) (start, last, total int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	start, err1 = strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	last, err2 = strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	total = -1
	if t := strings.TrimSpace(tot); t != "*" {
		total, err3 = strconv.ParseInt(t, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || last < start {
		return 0, 0, 0, false
	}
	return start, last, total, true
}

// exactBody yields exactly left bytes, or io.ErrUnexpectedEOF when the
// answer ends before them.
type exactBody struct {
	r    io.Reader
	c    io.Closer
	left int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if b.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	if b.left == 0 && err == nil {
		return n, io.EOF
	}
	return n, err
}

func (b *exactBody) Close() error { return b.c.Close() }

// LinkFunc returns the file's link: a cached one, or a fresh one from the
// provider when fresh is set.
type LinkFunc func(ctx context.Context, fresh bool) (drivers.Link, error)

// Open fetches [off, off+n) of the file with the link links gives; an
// answer that is not the file makes it ask for a fresh link, once. If
// that fails too the error says why (ErrNotTheFile: 502).
func (f *Fetcher) Open(ctx context.Context, links LinkFunc, size, off, n int64) (io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		l, err := links(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		rc, err := f.Get(ctx, l, size, off, n)
		if errors.Is(err, ErrNotTheFile) && attempt == 0 {
			continue
		}
		return rc, err
	}
}
