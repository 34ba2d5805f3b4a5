package davfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"bridge/drivers"
	"bridge/drivers/download"
	"bridge/drivers/pacer"
)

// maxLinkMargin is the most a cached link's life is cut short by: a
// stream started on it must not die half way, and a redirected client
// must have time to fetch (and seek in) what it was sent to.
const maxLinkMargin = time.Minute

// cachedLink is a link and when it was obtained.
type cachedLink struct {
	drivers.Link
	got time.Time
}

// usableUntil is when the link stops being handed out: a fraction of its
// life before it expires (a 60 s link is used for 45 s), at most a minute.
func (c cachedLink) usableUntil() time.Time {
	margin := min(c.Expires.Sub(c.got)/4, maxLinkMargin)
	return c.Expires.Add(-max(margin, 0))
}

// linkCache remembers download links until shortly before they expire, so
// that the many ranged GETs of a media player cost one Link call.
type linkCache struct {
	mu    sync.Mutex
	links map[string]cachedLink
}

func newLinkCache() *linkCache { return &linkCache{links: map[string]cachedLink{}} }

func linkKey(m *mount, ref drivers.Ref) string {
	return m.path + "\x00" + ref.Path + "\x00" + ref.ID + "\x00" + strconv.FormatInt(ref.Size, 10)
}

func (c *linkCache) get(key string, now time.Time) (cachedLink, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.links[key]
	if ok && !l.Expires.IsZero() && !now.Before(l.usableUntil()) {
		delete(c.links, key)
		return cachedLink{}, false
	}
	return l, ok
}

func (c *linkCache) put(key string, l cachedLink) {
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

// link returns a usable link for the file, cached or fresh. A fresh one
// replaces the cached one (which the provider refused).
func (s *Server) link(ctx context.Context, m *mount, ref drivers.Ref, fresh bool) (cachedLink, error) {
	key := linkKey(m, ref)
	if !fresh {
		if l, ok := s.links.get(key, time.Now()); ok {
			return l, nil
		}
	} else {
		s.links.drop(key)
	}
	v, err := s.shared(ctx, "link:"+key, func(ctx context.Context) (any, error) {
		got := time.Now()
		l, err := m.drv.Link(ctx, ref)
		return cachedLink{Link: l, got: got}, err
	})
	if err != nil {
		return cachedLink{}, fmt.Errorf("%s%s: link: %w", m.path, ref.Path, err)
	}
	l := v.(cachedLink)
	if l.Expires.IsZero() || time.Now().Before(l.usableUntil()) {
		s.links.put(key, l)
	}
	return l, nil
}

// fetcher reads m's links, with the driver's own test for its error shape.
func (s *Server) fetcher(m *mount) *download.Fetcher {
	f := &download.Fetcher{Client: s.client, Pacer: &pacer.Pacer{Gate: &m.gate}}
	if lc, ok := m.drv.d.(drivers.LinkChecker); ok {
		f.Check = lc.CheckDownload
	}
	return f
}

// openerFor picks how the file's bytes are fetched: the driver's own
// streams, or HTTP from its download link (checked to be the file's bytes;
// a link the provider no longer honours is replaced once).
func (s *Server) openerFor(m *mount, ref drivers.Ref) download.OpenFunc {
	if !m.features.Links {
		return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			rc, err := m.drv.open(ctx, ref, off, n)
			if err != nil {
				return nil, fmt.Errorf("%s%s: open: %w", m.path, ref.Path, err)
			}
			return rc.(io.ReadCloser), nil
		}
	}
	f := s.fetcher(m)
	links := func(ctx context.Context, fresh bool) (drivers.Link, error) {
		l, err := s.link(ctx, m, ref, fresh)
		return l.Link, err
	}
	return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		rc, err := f.Open(withCall(ctx, m.path, OpDownload), links, ref.Size, off, n)
		if err != nil {
			if errors.Is(err, download.ErrNotTheFile) {
				s.links.drop(linkKey(m, ref))
			}
			return nil, fmt.Errorf("%s%s: download: %w", m.path, ref.Path, err)
		}
		return rc, nil
	}
}

// redirectLink returns a link safe to send a client to: one with at least
// a minute to live, and, when it comes from the cache, one that still
// answers with the file (a provider restart kills links before their
// time, and a dead Cloudreve link answers 200 with an error). ok is false
// when there is none (the provider's links live under a minute, or carry
// secrets): the bridge then streams the file itself.
func (s *Server) redirectLink(ctx context.Context, m *mount, ref drivers.Ref) (drivers.Link, bool, error) {
	safe := func(l cachedLink) bool {
		return l.ClientSafe && len(l.Header) == 0 && (l.Expires.IsZero() || time.Until(l.Expires) > maxLinkMargin)
	}
	if l, ok := s.links.get(linkKey(m, ref), time.Now()); ok && safe(l) {
		rc, err := s.fetcher(m).Get(withCall(ctx, m.path, OpDownload), l.Link, ref.Size, 0, min(1, ref.Size))
		if err == nil {
			rc.Close()
			return l.Link, true, nil
		}
		if ctx.Err() != nil {
			return drivers.Link{}, false, ctx.Err()
		}
	}
	l, err := s.link(ctx, m, ref, true)
	if err != nil {
		return drivers.Link{}, false, err
	}
	return l.Link, safe(l), nil
}
