package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"bridge/auth"
	"bridge/cluster"
	"bridge/config"
	"bridge/davfs"
	"bridge/davfs/deadprops"
	"bridge/davfs/locks"
	"bridge/drivers"
	"bridge/metrics"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	file := fs.String("config", "", "configuration file (default: serve ./data on 127.0.0.1:8080)")
	listen := fs.String("listen", "", "address to listen on, e.g. 127.0.0.1:9090 or :8080 (overrides server.listen; without -config also BRIDGE_LISTEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	addr := *listen
	if addr == "" && *file == "" {
		// A container has no config file to say it: 127.0.0.1 is not
		// reachable from outside it.
		addr = os.Getenv("BRIDGE_LISTEN")
	}
	var c *config.Config
	if *file == "" {
		var err error
		if c, err = defaultConfig(stdout, addr); err != nil {
			return err
		}
	} else {
		var err error
		if c, err = config.Load(*file, driverNames()); err != nil {
			return err
		}
	}
	if addr != "" {
		c.Server.Listen = addr
	}
	log := newLogger(c.Server, stderr)
	if pct, ok := gcPercent(os.Getenv); ok {
		debug.SetGCPercent(pct)
	}
	handler, closeAll, err := buildHandler(ctx, c, log)
	if err != nil {
		return err
	}
	defer closeAll()

	ln, err := net.Listen("tcp", c.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	scheme := "http"
	if c.Server.TLSCert != "" {
		scheme = "https"
	}
	log.Info().Str("addr", ln.Addr().String()).Str("url", scheme+"://"+ln.Addr().String()+"/").
		Int("mounts", len(c.Mounts)).Msg("serving WebDAV")
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- srv.ServeTLS(ln, c.Server.TLSCert, c.Server.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := c.Server.ShutdownTimeout.Duration
	log.Info().Dur("grace", grace).Msg("stopping: no new connections, waiting for running requests")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// defaultGCPercent is the bridge's GOGC unless the environment sets one.
// Its live heap is small (a few MiB besides cached listings), and Go's 100
// then collects every few MiB allocated: a cold listing of 2,000 entries
// ran two or three collections, and the memory they handed back to the
// system was faulted in again by the next request. At 200 that costs a
// third less CPU for about 4 MiB more RSS (README, Performance).
const defaultGCPercent = 200

// gcPercent is the GOGC the server sets, and false when GOGC is in the
// environment (the runtime has read it already).
func gcPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return defaultGCPercent, true
}

// defaultConfig is the no-file setup: ./data through the local driver and
// one user admin, whose password comes from BRIDGE_PASSWORD or is made up
// and printed once. Never unauthenticated.
func defaultConfig(stdout io.Writer, listen string) (*config.Config, error) {
	c := config.Default()
	if listen != "" {
		c.Server.Listen = listen
	}
	password := os.Getenv("BRIDGE_PASSWORD")
	if password == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		password = base64.RawURLEncoding.EncodeToString(b)
		fmt.Fprintf(stdout, "bridge: no -config given; serving ./data at http://%s/local/\n", c.Server.Listen)
		fmt.Fprintf(stdout, "bridge: user admin, password %s (set BRIDGE_PASSWORD to choose one)\n", password)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	c.Users = []config.User{{Name: "admin", PasswordHash: string(hash), Mounts: []string{"*"}}}
	return c, nil
}

func newLogger(s config.Server, w io.Writer) zerolog.Logger {
	if s.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	level, err := zerolog.ParseLevel(s.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// mountStateDir is the mount's private folder under state_dir.
func mountStateDir(stateDir, mountPath string) string {
	return filepath.Join(stateDir, "mounts", strings.TrimPrefix(mountPath, "/"))
}

// openShared connects to server.shared_state; nil without one.
func openShared(ctx context.Context, c *config.Config) (*cluster.Redis, error) {
	if c.Server.SharedState == "" {
		return nil, nil
	}
	return cluster.Open(ctx, c.Server.SharedState, c.Server.SharedPrefix)
}

// newDriver builds mount i's driver; its tokens and sessions are kept in
// shared when several instances share their state, else under state_dir.
func newDriver(ctx context.Context, c *config.Config, i int, log zerolog.Logger, mtr *metrics.Metrics, shared *cluster.Redis) (drivers.Driver, error) {
	m := c.Mounts[i]
	factory, ok := driverFactories()[m.Driver]
	if !ok {
		return nil, fmt.Errorf("mount %s: unknown driver %q", m.Path, m.Driver)
	}
	dir := mountStateDir(c.Server.StateDir, m.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mount %s: state dir: %w", m.Path, err)
	}
	var state drivers.State = drivers.DirState(dir)
	if shared != nil {
		state = shared.MountState(m.Path)
	}
	drv, err := factory(ctx, drivers.Config{
		MountPath:    m.Path,
		StateDir:     dir,
		State:        state,
		Decode:       func(v any) error { return c.DecodeOptions(i, v) },
		HTTPClient:   &http.Client{Transport: countRequests(mtr, m.Path, providerTransport())},
		Logger:       log.With().Str("mount", m.Path).Logger(),
		LoginCommand: loginCommand(c.File(), m.Path),
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s (%s): %w", m.Path, m.Driver, err)
	}
	return drv, nil
}

// requestCounter counts every HTTP request a mount's driver (or the
// bridge reading its links) sends, so bridge_provider_calls_total matches
// what the provider sees: pages, parts and retries each count.
type requestCounter struct {
	mtr   *metrics.Metrics
	mount string // "" for the bridge's shared download client: from ctx
	next  http.RoundTripper
}

func countRequests(mtr *metrics.Metrics, mount string, next http.RoundTripper) http.RoundTripper {
	return &requestCounter{mtr: mtr, mount: mount, next: next}
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	mount, op := davfs.CallFrom(r.Context())
	if c.mount != "" {
		mount = c.mount
	}
	resp, err := c.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	c.mtr.ProviderRequest(mount, op, status)
	return resp, err
}

// errNoNetwork is what check-config's HTTP client answers: checking a file
// never contacts a provider.
var errNoNetwork = errors.New("check-config makes no network calls")

type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) { return nil, errNoNetwork }

// checkMountOptions decodes every mount's options through its driver's
// constructor, offline, and collects what is wrong with them.
func checkMountOptions(ctx context.Context, c *config.Config) error {
	var probs config.Problems
	tmp, err := os.MkdirTemp("", "bridge-check-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for i, m := range c.Mounts {
		var decodeErr error
		drv, err := driverFactories()[m.Driver](ctx, drivers.Config{
			MountPath: m.Path,
			StateDir:  tmp,
			Decode: func(v any) error {
				decodeErr = c.DecodeOptions(i, v)
				return decodeErr
			},
			HTTPClient: &http.Client{Transport: noNetwork{}},
			Logger:     zerolog.Nop(),
		})
		if err == nil && m.Download == config.DownloadRedirect {
			if why := drv.Features().ProxyOnly; why != "" {
				probs = append(probs, c.Problem(fmt.Sprintf("mounts[%d].download", i),
					fmt.Sprintf("%q cannot work with driver %q: %s; use %q", m.Download, m.Driver, why, config.DownloadProxy)))
			}
		}
		if cl, ok := drv.(drivers.Closer); ok && err == nil {
			cl.Close()
		}
		var ps config.Problems
		switch {
		case errors.As(decodeErr, &ps):
			probs = append(probs, ps...)
		case decodeErr != nil:
			probs = append(probs, c.Problem(fmt.Sprintf("mounts[%d].options", i), decodeErr.Error()))
		case err != nil && !errors.Is(err, errNoNetwork) && !errors.Is(err, drivers.ErrUnavailable):
			probs = append(probs, c.Problem(fmt.Sprintf("mounts[%d].options", i), err.Error()))
		}
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}

// providerTransport is the HTTP transport for provider calls and link
// reads: Go's default, but keeping as many idle connections per provider
// host as rclone runs transfers (the default 2 would open a new connection
// for most parallel reads). Its buffers stay small: every kept connection
// holds them, and large reads bypass them anyway.
func providerTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}

// buildHandler wires config → drivers → davfs → auth → request log.
func buildHandler(ctx context.Context, c *config.Config, log zerolog.Logger) (http.Handler, func(), error) {
	var mounts []davfs.Mount
	var closers []drivers.Closer
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
	}
	shared, err := openShared(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if shared != nil {
		cluster.LogTo(log)
		closers = append(closers, shared)
		log.Info().Str("prefix", shared.Prefix()).Msg("state shared with other instances through Redis")
	}
	mtr := metrics.New()
	for i, m := range c.Mounts {
		drv, err := newDriver(ctx, c, i, log, mtr, shared)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if cl, ok := drv.(drivers.Closer); ok {
			closers = append(closers, cl)
		}
		if why := drv.Features().ProxyOnly; why != "" && m.Download == config.DownloadRedirect {
			closeAll()
			return nil, nil, fmt.Errorf("%s: download = %q cannot work with driver %q: %s", m.Path, m.Download, m.Driver, why)
		}
		mounts = append(mounts, davfs.Mount{
			Path:                m.Path,
			Driver:              drv,
			Redirect:            m.Download == config.DownloadRedirect,
			RefuseMacOSMetadata: m.RefuseMacOSMetadata,
		})
	}
	if err := os.MkdirAll(c.Server.StateDir, 0o700); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	limits := deadprops.Limits{RequestBytes: c.Server.MaxProppatchBytes, ResourceBytes: c.Server.MaxPropsBytes}
	var props deadprops.Props
	var lockSystem locks.System // nil: davfs's in-memory one
	if shared != nil {
		props = deadprops.OpenRedis(shared).WithLimits(limits)
		lockSystem = locks.NewRedis(shared, locks.Options{MaxTimeout: c.Server.MaxLockTimeout.Duration})
	} else {
		store, err := deadprops.Open(filepath.Join(c.Server.StateDir, "props.db"))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, store)
		props = store.WithLimits(limits)
	}
	dav, err := davfs.New(davfs.Options{
		Metrics:          mtr,
		HTTPClient:       &http.Client{Transport: countRequests(mtr, "", providerTransport())},
		Props:            props,
		LockSystem:       lockSystem,
		Mounts:           mounts,
		TempDir:          c.Server.TempDir,
		CacheTTL:         c.Server.CacheTTL.Duration,
		CacheEntries:     c.Server.CacheEntries,
		PropfindInfinity: c.Server.PropfindInfinity,
		LockTimeout:      c.Server.MaxLockTimeout.Duration,
		Logger:           log,
		Shared:           shared,
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, dav)
	accounts := make([]auth.Account, len(c.Users))
	for i, u := range c.Users {
		accounts[i] = auth.Account{User: auth.User{Name: u.Name, Mounts: u.Mounts, ReadOnly: u.ReadOnly}, PasswordHash: u.PasswordHash}
	}
	basic, err := auth.NewBasic("WebDAV bridge", accounts)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	nets, err := c.Server.TrustedProxyNets()
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	proxies := auth.NewProxies(nets)
	throttle := auth.NewThrottle(c.Server.LoginMaxFailures, time.Minute, c.Server.LoginBlock.Duration)
	if shared != nil {
		throttle = auth.NewSharedThrottle(shared, c.Server.LoginMaxFailures, time.Minute, c.Server.LoginBlock.Duration)
	}
	throttle.Proxies = proxies
	authed := basic.Middleware(dav, throttle, func(r *http.Request, user string, ok bool) {
		if rec := recordFrom(r.Context()); rec != nil {
			rec.user = user
		}
		if !ok && r.Header.Get("Authorization") != "" {
			mtr.LoginFailed()
		}
	})
	return routes(healthHandler(dav), readyHandler(shared), mtr.Handler(), requestLog(authed, log, mtr, proxies)), closeAll, nil
}

// routes serves the status paths (unauthenticated, and outside the request
// log so that probes do not flood it) and hands every other path to the
// share untouched: http.ServeMux would clean and redirect WebDAV paths.
func routes(health, ready, metrics, share http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case config.HealthPath:
			health.ServeHTTP(w, r)
		case config.ReadyPath:
			ready.ServeHTTP(w, r)
		case config.MetricsPath:
			metrics.ServeHTTP(w, r)
		default:
			share.ServeHTTP(w, r)
		}
	})
}

// readyHandler answers /readyz, a load balancer's check of this instance:
// 200 while it can serve, that is while the state it shares with other
// instances (Redis) answers; 503 otherwise. Unlike /healthz it asks no
// provider: a mount that needs a login is the same on every instance, and
// must not take them all out of the balancer.
func readyHandler(shared *cluster.Redis) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if shared != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := shared.Client().Ping(ctx).Err(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "shared state unreachable\n")
				return
			}
		}
		io.WriteString(w, "ready\n")
	})
}

// healthHandler answers /healthz: 200 when every mount's credentials work,
// 503 otherwise, with each mount's state (and no secrets) as JSON.
func healthHandler(dav *davfs.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mounts := dav.Health(r.Context())
		status, code := "ok", http.StatusOK
		for _, m := range mounts {
			if !m.OK {
				status, code = "degraded", http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"status": status, "mounts": mounts})
	})
}

// loginCommand is the full `bridge login` command line for a mount of the
// configuration file, as hints must give it.
func loginCommand(file, mountPath string) string {
	if file == "" {
		file = "FILE"
	}
	return "bridge login -config " + file + " " + mountPath
}
