// Package davfs is the WebDAV side of the bridge: a webdav.FileSystem over a
// table of mounts, each delegating to a driver, and an http.Handler that
// serves it. It owns everything drivers share: path resolution through a
// cache of folder listings, ranged streaming from download links, upload
// buffering, server-side copy and move, and the one table that turns error
// kinds into WebDAV status codes.
//
// golang.org/x/net/webdav serves PROPPATCH and the rarer PROPFINDs over the
// FileSystem. GET, HEAD, PUT, DELETE, MKCOL, COPY and MOVE are served here
// instead, because x/net answers provider failures with 405, copies by
// reading and rewriting every byte, and reads a missing Overwrite header as
// F; LOCK and UNLOCK, because its lock tokens are guessable and honoured for
// anyone (package locks has the bridge's own).
package davfs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/rs/zerolog"
	"golang.org/x/net/webdav"
	"golang.org/x/sync/singleflight"

	"bridge/auth"
	"bridge/cluster"
	"bridge/davfs/deadprops"
	"bridge/davfs/locks"
	"bridge/drivers"
	"bridge/drivers/pacer"
)

// Mount is one driver at one path of the share.
type Mount struct {
	Path     string // "/local": one segment below the root
	Driver   drivers.Driver
	Redirect bool // answer GET with a 302 to client-safe links
	// RefuseMacOSMetadata answers 403 to creating "._*" and ".DS_Store"
	// files, which Finder writes beside everything it touches.
	RefuseMacOSMetadata bool
}

// Options configure a Server.
type Options struct {
	Mounts []Mount
	// TempDir buffers PUT bodies; it is created if missing, and leftovers of
	// crashed processes are removed from it at start.
	TempDir      string
	CacheTTL     time.Duration
	CacheEntries int
	// PropfindInfinity allows Depth: infinity PROPFIND (403 otherwise).
	PropfindInfinity bool
	// LockTimeout is the longest lock the default lock system grants
	// (zero: locks.DefaultMaxTimeout).
	LockTimeout time.Duration
	LockSystem  locks.System // nil: an in-memory one (locks.NewMemory)
	HTTPClient  *http.Client // fetches download links; nil: a default
	Logger      zerolog.Logger
	Metrics     Metrics
	// Props stores dead properties; nil refuses PROPPATCH with 403.
	Props deadprops.Props
	// Shared is the Redis several bridge instances share
	// (server.shared_state): pending empty entries are kept there, and
	// every folder changed through this instance is dropped from the
	// others' listing caches before the change is answered. Close stops
	// listening. nil: a single process.
	Shared *cluster.Redis
}

// Server is the WebDAV handler over the mounts.
type Server struct {
	opts    Options
	mounts  map[string]*mount
	order   []string // mount paths as configured
	cache   *listCache
	hints   *folderHints // folder IDs from expired listings (hints.go)
	group   singleflight.Group
	links   *linkCache
	pending pendingStore
	peers   *invalidator // nil: one process
	health  healthCache
	locks   locks.System
	holds   shortHolds // writes of one path, one at a time (confirmLocks)
	dav     *webdav.Handler
	client  *http.Client
	log     zerolog.Logger
	started time.Time
	// xnetPropfindOnly turns the direct PROPFIND writer off (for tests
	// that compare it with x/net's).
	xnetPropfindOnly bool
}

type mount struct {
	path     string
	drv      *instrumented
	features drivers.Features
	redirect bool
	noMacMD  bool
	calls    *calls

	gate pacer.Gate // a rate limit of the download server holds every read back

	rootMu sync.Mutex
	root   *drivers.Object
	quota  quotaCache
	// dirQuotas are a DirQuotaer's figures by folder, reused for
	// quotaTTL: Finder asks for quota with every folder it shows.
	dirQuotas *expirable.LRU[string, drivers.Quota]
}

// New builds the server. It creates the temp folder and removes stale
// upload files left by crashed bridge processes.
func New(opts Options) (*Server, error) {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 30 * time.Second
	}
	// The LRU splits its TTL into buckets; below a second that rounds to
	// nothing (and config refuses it anyway).
	opts.CacheTTL = max(opts.CacheTTL, time.Second)
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = 4096
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if err := os.MkdirAll(opts.TempDir, 0o700); err != nil {
		return nil, fmt.Errorf("davfs: temp dir: %w", err)
	}
	removeStaleSpools(opts.TempDir, opts.Logger)
	s := &Server{
		opts:    opts,
		mounts:  map[string]*mount{},
		cache:   newListCache(opts.CacheEntries, opts.CacheTTL),
		hints:   newFolderHints(),
		links:   newLinkCache(),
		locks:   opts.LockSystem,
		client:  opts.HTTPClient,
		log:     opts.Logger,
		started: time.Now(),
	}
	if s.locks == nil {
		s.locks = locks.NewMemory(locks.Options{MaxTimeout: opts.LockTimeout})
	}
	s.pending = &pendingFiles{}
	if s.client == nil {
		s.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	for _, m := range opts.Mounts {
		if m.Path == "" || m.Path[0] != '/' || strings.Count(m.Path, "/") != 1 || m.Path == "/" {
			return nil, fmt.Errorf("davfs: mount path %q: must be one folder below the root", m.Path)
		}
		if _, dup := s.mounts[m.Path]; dup {
			return nil, fmt.Errorf("davfs: duplicate mount path %q", m.Path)
		}
		c := &calls{}
		s.mounts[m.Path] = &mount{
			path:     m.Path,
			drv:      &instrumented{d: m.Driver, mount: m.Path, calls: c, metrics: opts.Metrics},
			features: m.Driver.Features(),
			redirect: m.Redirect,
			noMacMD:  m.RefuseMacOSMetadata,
			calls:    c,
		}
		if _, ok := m.Driver.(drivers.DirQuotaer); ok {
			s.mounts[m.Path].dirQuotas = expirable.NewLRU[string, drivers.Quota](1024, nil, quotaTTL)
		}
		s.order = append(s.order, m.Path)
	}
	s.dav = &webdav.Handler{FileSystem: (*fileSystem)(s), LockSystem: checkedLS{}}
	if opts.Shared != nil {
		inv, err := startInvalidator(opts.Shared, s.cache, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("davfs: %w", err)
		}
		s.peers = inv
		s.cache.changed = inv.changed
		s.pending = redisPending{r: opts.Shared}
	}
	return s, nil
}

// Close stops listening to other instances (server.shared_state).
func (s *Server) Close() error {
	if s.peers != nil {
		s.peers.close()
	}
	return nil
}

// ProviderCalls returns how many driver calls of each kind the mount at
// path has made so far (for tests and metrics).
func (s *Server) ProviderCalls(mountPath string) map[string]int64 {
	m, ok := s.mounts[mountPath]
	if !ok {
		return nil
	}
	return m.calls.snapshot()
}

// cleanPath validates and cleans a request path: NUL bytes and ".."
// segments are refused rather than interpreted, so no trick can climb out
// of a mount; the result is absolute and slash-separated.
func cleanPath(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: NUL byte", errBadPath)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: '..' segment", errBadPath)
		}
	}
	return path.Clean("/" + name), nil
}

// split separates "/mount/rest" into the mount path and the mount-relative
// path ("/" for the mount itself). The share root gives ("", "/").
func split(name string) (mountPath, rel string) {
	if name == "/" {
		return "", "/"
	}
	rest := name[1:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return "/" + rest[:i], rest[i:]
	}
	return name, "/"
}

// target is a cleaned request path resolved to its mount.
type target struct {
	full string // the cleaned share path
	m    *mount // nil for the share root
	rel  string // mount-relative path
}

func (t target) isShareRoot() bool { return t.m == nil }
func (t target) isMountRoot() bool { return t.m != nil && t.rel == "/" }

// resolve maps a share path to its mount; a mount the user may not see is
// reported as not found, never as forbidden.
func (s *Server) resolve(ctx context.Context, name string) (target, error) {
	clean, err := cleanPath(name)
	if err != nil {
		return target{}, err
	}
	mp, rel := split(clean)
	if mp == "" {
		return target{full: clean, rel: "/"}, nil
	}
	m, ok := s.mounts[mp]
	if !ok || !s.canSee(ctx, mp) {
		return target{}, fmt.Errorf("%s: %w", clean, drivers.ErrNotFound)
	}
	return target{full: clean, m: m, rel: rel}, nil
}

func (s *Server) canSee(ctx context.Context, mountPath string) bool {
	u := auth.UserFrom(ctx)
	return u == nil || u.CanSee(mountPath)
}

// visibleMounts lists the mounts the user may see, in configured order.
func (s *Server) visibleMounts(ctx context.Context) []*mount {
	var out []*mount
	for _, p := range s.order {
		if s.canSee(ctx, p) {
			out = append(out, s.mounts[p])
		}
	}
	return out
}

// sharedTimeout bounds a provider call shared by several requests: it runs
// detached from the first caller's cancellation so that the others (and the
// cache) still get its result.
const sharedTimeout = 5 * time.Minute

// shared runs fn once for all concurrent callers with the same key.
func (s *Server) shared(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	ch := s.group.DoChan(key, func() (any, error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
		defer cancel()
		return fn(sctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// rootObject returns the mount's root folder, asked of the driver once.
func (s *Server) rootObject(ctx context.Context, m *mount) (drivers.Object, error) {
	m.rootMu.Lock()
	if m.root != nil {
		o := *m.root
		m.rootMu.Unlock()
		return o, nil
	}
	m.rootMu.Unlock()
	v, err := s.shared(ctx, "root:"+m.path, func(ctx context.Context) (any, error) {
		return m.drv.Root(ctx)
	})
	if err != nil {
		return drivers.Object{}, fmt.Errorf("%s: root: %w", m.path, err)
	}
	o := v.(drivers.Object)
	o.IsDir = true
	m.rootMu.Lock()
	m.root = &o
	m.rootMu.Unlock()
	return o, nil
}

// stat returns the object at rel, from its parent's (cached) listing.
func (s *Server) stat(ctx context.Context, m *mount, rel string) (drivers.Object, error) {
	if rel == "/" {
		return s.rootObject(ctx, m)
	}
	if o, ok, err := s.statByPath(ctx, m, rel); ok || err != nil {
		return o, err
	}
	l, err := s.list(ctx, m, path.Dir(rel))
	if err != nil {
		return drivers.Object{}, err
	}
	o, ok := l.get(path.Base(rel))
	if !ok {
		return drivers.Object{}, fmt.Errorf("%s%s: %w", m.path, rel, drivers.ErrNotFound)
	}
	return o, nil
}

// statByPath finds a folder on a driver that lists by path without
// listing its ancestors: a folder whose own listing works exists (and that
// listing is what a PROPFIND of it needs next). It reports ok false when the
// parent's listing must tell: the parent is cached already, the driver
// needs IDs, or rel is a file or nothing. The folder's object then has no
// ID and no time until its parent is listed.
func (s *Server) statByPath(ctx context.Context, m *mount, rel string) (drivers.Object, bool, error) {
	if !m.features.ListsByPath {
		return drivers.Object{}, false, nil
	}
	if _, cached := s.cache.get(m.path, path.Dir(rel)); cached {
		return drivers.Object{}, false, nil
	}
	if _, err := s.list(ctx, m, rel); err != nil {
		if isNotFound(err) {
			return drivers.Object{}, false, nil
		}
		return drivers.Object{}, false, err
	}
	if l, cached := s.cache.get(m.path, path.Dir(rel)); cached { // listed meanwhile: the real object
		if o, ok := l.get(path.Base(rel)); ok {
			return o, true, nil
		}
	}
	return drivers.Object{Name: path.Base(rel), IsDir: true}, true, nil
}

// ref is stat as a drivers.Ref.
func (s *Server) ref(ctx context.Context, m *mount, rel string) (drivers.Ref, error) {
	o, err := s.stat(ctx, m, rel)
	if err != nil {
		return drivers.Ref{}, err
	}
	return drivers.Ref{Path: rel, Object: o}, nil
}

// errNotDir is a path used as a folder that names a file.
var errNotDir = fmt.Errorf("not a folder: %w", drivers.ErrNotFound)

// list returns the folder's listing: from the cache, or from one provider
// listing shared by every concurrent request for the same cold folder.
func (s *Server) list(ctx context.Context, m *mount, dir string) (*listing, error) {
	l, ok := s.cache.get(m.path, dir)
	if s.opts.Metrics != nil {
		s.opts.Metrics.CacheLookup(ok)
	}
	if ok {
		return l, nil
	}
	v, err := s.shared(ctx, s.cache.flightKey(m.path, dir), func(ctx context.Context) (any, error) {
		if l, ok := s.cache.get(m.path, dir); ok {
			return l, nil // filled while we waited for the flight
		}
		f := s.cache.takeOff(m.path, dir)
		l, err := s.freshListing(ctx, m, dir)
		s.cache.land(f, l)
		return l, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*listing), nil
}

// freshListing lists dir from the provider, with the times the bridge
// keeps and the pending empty entries; nil when that fails.
func (s *Server) freshListing(ctx context.Context, m *mount, dir string) (*listing, error) {
	objs, err := s.listFromProvider(ctx, m, dir)
	if err != nil {
		return nil, err
	}
	if !m.features.ListsByPath {
		s.hints.note(m.path, dir, objs)
	}
	l := newListing(s.withKeptTimes(m, dir, objs))
	pending, err := s.pending.in(m, dir)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		if _, real := l.get(p.Name); !real {
			l.put(p)
		}
	}
	return l, nil
}

// listFromProvider lists dir through the driver: by its path alone where
// the driver lists by path and the parent is not cached (no ancestor is
// listed to learn its ID), else through the parent's listing.
func (s *Server) listFromProvider(ctx context.Context, m *mount, dir string) ([]drivers.Object, error) {
	if m.features.ListsByPath && dir != "/" {
		if _, cached := s.cache.get(m.path, path.Dir(dir)); !cached {
			ref := drivers.Ref{Path: dir, Object: drivers.Object{Name: path.Base(dir), IsDir: true}}
			objs, err := m.drv.List(ctx, ref)
			if err != nil {
				return nil, fmt.Errorf("%s%s: list: %w", m.path, dir, err)
			}
			return objs, nil
		}
	}
	ref, objs, ok, err := s.refListed(ctx, m, dir)
	if ok || err != nil {
		return objs, err
	}
	if !ref.IsDir {
		return nil, fmt.Errorf("%s%s: %w", m.path, dir, errNotDir)
	}
	objs, err = m.drv.List(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("%s%s: list: %w", m.path, dir, err)
	}
	return objs, nil
}

// isNotFound reports a missing object, whatever layer said it.
func isNotFound(err error) bool {
	return errors.Is(err, drivers.ErrNotFound) || errors.Is(err, os.ErrNotExist)
}
