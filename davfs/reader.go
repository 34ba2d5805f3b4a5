package davfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"bridge/drivers"
)

// linkMargin is how long before its expiry a cached link stops being used:
// a stream started on it must not die half way.
const linkMargin = time.Minute

// linkCache remembers download links until shortly before they expire, so
// that the many ranged GETs of a media player cost one Link call.
type linkCache struct {
	mu    sync.Mutex
	links map[string]drivers.Link
}

func newLinkCache() *linkCache { return &linkCache{links: map[string]drivers.Link{}} }

func linkKey(m *mount, ref drivers.Ref) string {
	return m.path + "\x00" + ref.Path + "\x00" + ref.ID + "\x00" + strconv.FormatInt(ref.Size, 10)
}

func (c *linkCache) get(key string, now time.Time) (drivers.Link, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.links[key]
	if ok && !l.Expires.IsZero() && now.Add(linkMargin).After(l.Expires) {
		delete(c.links, key)
		return drivers.Link{}, false
	}
	return l, ok
}

func (c *linkCache) put(key string, l drivers.Link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.links) > 10000 {
		clear(c.links) // a crude bound; links are cheap to fetch again
	}
	c.links[key] = l
}

func (c *linkCache) drop(key string) {
	c.mu.Lock()
	delete(c.links, key)
	c.mu.Unlock()
}

// forgetPath drops links of everything at or below rel in mount m.
func (c *linkCache) forgetPath(m *mount, rel string) {
	prefix := m.path + "\x00" + rel
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.links {
		if strings.HasPrefix(k, prefix+"\x00") || strings.HasPrefix(k, strings.TrimSuffix(prefix, "/")+"/") {
			delete(c.links, k)
		}
	}
}

// link returns a usable link for the file, cached or fresh.
func (s *Server) link(ctx context.Context, m *mount, ref drivers.Ref, fresh bool) (drivers.Link, error) {
	key := linkKey(m, ref)
	if !fresh {
		if l, ok := s.links.get(key, time.Now()); ok {
			return l, nil
		}
	}
	v, err := s.shared(ctx, "link:"+key, func(ctx context.Context) (any, error) {
		return m.drv.Link(ctx, ref)
	})
	if err != nil {
		return drivers.Link{}, fmt.Errorf("%s%s: link: %w", m.path, ref.Path, err)
	}
	l := v.(drivers.Link)
	s.links.put(key, l)
	return l, nil
}

// opener opens a stream of a file's bytes [off, off+n) (n < 0: to the end).
type opener func(ctx context.Context, off, n int64) (io.ReadCloser, error)

// openerFor picks how the file's bytes are fetched: the driver's own
// streams, or HTTP from its download link.
func (s *Server) openerFor(m *mount, ref drivers.Ref) opener {
	if !m.features.Links {
		return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			rc, err := m.drv.open(ctx, ref, off, n)
			if err != nil {
				return nil, fmt.Errorf("%s%s: open: %w", m.path, ref.Path, err)
			}
			return rc.(io.ReadCloser), nil
		}
	}
	return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return s.fetchLink(ctx, m, ref, off, n)
	}
}

// fetchLink GETs [off, off+n) of the file from its link. A link the
// provider no longer honours (401, 403, 410) is replaced once; a provider
// that ignores Range and answers 200 is read past the bytes before off.
func (s *Server) fetchLink(ctx context.Context, m *mount, ref drivers.Ref, off, n int64) (io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		l, err := s.link(ctx, m, ref, attempt > 0)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("%s%s: bad download link: %w", m.path, ref.Path, drivers.ErrUnavailable)
		}
		for k, vs := range l.Header {
			req.Header[k] = vs
		}
		if off > 0 || n >= 0 {
			end := ""
			if n >= 0 {
				end = strconv.FormatInt(off+n-1, 10)
			}
			req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+end)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			// The error text may hold the URL with its signature: keep it out.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%s%s: download: %w", m.path, ref.Path, drivers.ErrUnavailable)
		}
		switch {
		case resp.StatusCode == http.StatusPartialContent:
			if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); ok && start != off {
				resp.Body.Close()
				return nil, fmt.Errorf("%s%s: provider sent bytes from %d, asked %d: %w", m.path, ref.Path, start, off, drivers.ErrUnavailable)
			}
			return limit(resp.Body, n), nil
		case resp.StatusCode == http.StatusOK:
			if off > 0 {
				if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
					resp.Body.Close()
					return nil, fmt.Errorf("%s%s: skipping to %d: %w", m.path, ref.Path, off, drivers.ErrUnavailable)
				}
			}
			return limit(resp.Body, n), nil
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			resp.Body.Close()
			return io.NopCloser(strings.NewReader("")), nil
		case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusGone) && attempt == 0:
			resp.Body.Close()
			s.links.drop(linkKey(m, ref))
			continue
		default:
			resp.Body.Close()
			return nil, fmt.Errorf("%s%s: download answered %d: %w", m.path, ref.Path, resp.StatusCode, classifyHTTP(resp))
		}
	}
}

// classifyHTTP turns a download's failure status into an error kind.
func classifyHTTP(resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return drivers.ErrNotFound
	case resp.StatusCode == http.StatusTooManyRequests:
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			return drivers.WithRetryAfter(drivers.ErrRateLimited, time.Duration(secs)*time.Second)
		}
		return drivers.ErrRateLimited
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return drivers.ErrPermission
	default:
		return drivers.ErrUnavailable
	}
}

func contentRangeStart(h string) (int64, bool) {
	// "bytes 100-199/1000"
	h = strings.TrimPrefix(h, "bytes ")
	dash := strings.IndexByte(h, '-')
	if dash <= 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(h[:dash], 10, 64)
	return v, err == nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

func limit(rc io.ReadCloser, n int64) io.ReadCloser {
	if n < 0 {
		return rc
	}
	return limitedBody{io.LimitReader(rc, n), rc}
}

// maxResumes bounds how often one reader reopens a stream that broke mid-body.
const maxResumes = 3

// skipAhead is how far a forward seek is served by reading on instead of
// opening a new stream.
const skipAhead = 256 << 10

// rangeReader is a lazy io.ReadSeekCloser over a remote file of known size.
// Nothing is fetched until the first Read; a seek only moves the position.
// When a stream breaks it reopens at the same byte.
type rangeReader struct {
	ctx  context.Context
	open opener
	size int64
	// ends maps the start of each range the client asked for to its end, so
	// the stream opened for a range asks the provider for exactly that range.
	ends map[int64]int64

	pos     int64
	body    io.ReadCloser
	bodyPos int64 // position of body's next byte
	bodyEnd int64 // where body's bytes end
	resumes int
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body != nil && r.pos != r.bodyPos {
		if gap := r.pos - r.bodyPos; gap > 0 && gap <= skipAhead {
			if _, err := io.CopyN(io.Discard, r.body, gap); err == nil {
				r.bodyPos = r.pos
			}
		}
		if r.pos != r.bodyPos {
			r.body.Close()
			r.body = nil
		}
	}
	for {
		if r.body == nil {
			r.bodyEnd = r.size
			n := int64(-1)
			if end, ok := r.ends[r.pos]; ok {
				r.bodyEnd, n = end, end-r.pos
			}
			body, err := r.open(r.ctx, r.pos, n)
			if err != nil {
				return 0, err
			}
			r.body, r.bodyPos = body, r.pos
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		r.bodyPos = r.pos
		if err == nil || n > 0 {
			return n, nil
		}
		r.body.Close()
		r.body = nil
		switch {
		case r.ctx.Err() != nil:
			return 0, r.ctx.Err()
		case errors.Is(err, io.EOF) && r.pos >= r.size:
			return 0, io.EOF
		case errors.Is(err, io.EOF) && r.pos == r.bodyEnd:
			// A bounded stream ended where asked; open the next one.
		case r.resumes >= maxResumes:
			return 0, fmt.Errorf("stream broke at byte %d: %w", r.pos, drivers.ErrUnavailable)
		default:
			r.resumes++ // cut short or failed mid-body: resume at r.pos
		}
	}
}

func (r *rangeReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("seek: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.pos = abs
	return abs, nil
}

func (r *rangeReader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// rangeEnds parses a Range header into start → end (exclusive) for a file
// of the given size; unparseable headers give no hints.
func rangeEnds(h string, size int64) map[int64]int64 {
	if !strings.HasPrefix(h, "bytes=") || size <= 0 {
		return nil
	}
	out := map[int64]int64{}
	for _, spec := range strings.Split(h[len("bytes="):], ",") {
		spec = strings.TrimSpace(spec)
		dash := strings.IndexByte(spec, '-')
		if dash < 0 {
			return nil
		}
		first, last := spec[:dash], spec[dash+1:]
		var start, end int64
		switch {
		case first == "":
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil {
				return nil
			}
			start, end = max(size-n, 0), size
		default:
			v, err := strconv.ParseInt(first, 10, 64)
			if err != nil {
				return nil
			}
			start, end = v, size
			if last != "" {
				w, err := strconv.ParseInt(last, 10, 64)
				if err != nil {
					return nil
				}
				end = min(w+1, size)
			}
		}
		if start < end {
			out[start] = end
		}
	}
	return out
}
