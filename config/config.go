// Package config reads the bridge's TOML configuration strictly: an unknown
// key, a missing required value, a duplicate mount path or an unset
// environment variable is an error that names its key and line, and every
// problem is reported at once (check-config prints them all).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"
)

// Config is the whole configuration file.
type Config struct {
	Server Server  `toml:"server"`
	Users  []User  `toml:"users"`
	Mounts []Mount `toml:"mounts"`

	file string // name of the file, for messages
	src  []byte // the file after ${VAR} expansion
}

// Server holds process-wide settings.
type Server struct {
	Listen string `toml:"listen"`
	// TempDir is where PUT bodies are buffered before they go to a provider.
	TempDir string `toml:"temp_dir"`
	// StateDir holds tokens, cookies and dead properties of a single
	// bridge process (with SharedState: only what is not shared).
	StateDir string `toml:"state_dir"`
	// SharedState ("redis://host:6379/0", "rediss://…", "unix:///…sock")
	// makes several bridge instances behind one load balancer share their
	// tokens, sessions, locks, dead properties, pending entries, login
	// throttling and listing invalidations through Redis. Unset: one
	// process, everything under StateDir.
	SharedState string `toml:"shared_state"`
	// SharedPrefix namespaces the keys in Redis (default "bridge:"), so
	// that several deployments may share one Redis.
	SharedPrefix string `toml:"shared_prefix"`
	// PropfindInfinity allows Depth: infinity PROPFIND, which walks a whole
	// provider tree; refused with 403 unless set.
	PropfindInfinity bool `toml:"propfind_infinity"`
	// CacheTTL is how long a folder listing is trusted.
	CacheTTL Duration `toml:"cache_ttl"`
	// MaxLockTimeout is the longest WebDAV lock granted; longer requests
	// and "Timeout: Infinite" get it, so a lock a crashed client left
	// behind blocks others for at most this long.
	MaxLockTimeout Duration `toml:"max_lock_timeout"`
	// CacheEntries is how many folder listings the LRU keeps.
	CacheEntries int    `toml:"cache_entries"`
	LogLevel     string `toml:"log_level"`
	LogFormat    string `toml:"log_format"`
	// TLSCert and TLSKey (PEM files) serve HTTPS instead of HTTP.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// LoginMaxFailures wrong logins for one account from one address
	// within a minute block that account from that address for LoginBlock
	// (429); 0 uses the default, -1 disables.
	LoginMaxFailures int      `toml:"login_max_failures"`
	LoginBlock       Duration `toml:"login_block"`
	// TrustedProxies are addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For names the client (for throttling and the request
	// log); everyone else's is ignored, as a client can write anything
	// there.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ShutdownTimeout is how long running requests may go on after a stop
	// signal.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// MaxProppatchBytes caps a PROPPATCH body (413 over it): x/net holds
	// the whole body in memory and stores what it holds.
	MaxProppatchBytes int64 `toml:"max_proppatch_bytes"`
	// MaxPropsBytes caps the dead properties of one resource (507 for a
	// PROPPATCH over it), so that props.db, which never shrinks, cannot be
	// grown without bound through one file.
	MaxPropsBytes int64 `toml:"max_props_bytes"`
}

// Defaults of the PROPPATCH limits, and the least either may be set to:
// Explorer alone sets about half a kilobyte per file.
const (
	DefaultMaxProppatchBytes = 64 << 10
	DefaultMaxPropsBytes     = 256 << 10
	MinPropsLimit            = 1 << 10
)

// User is one WebDAV account.
type User struct {
	Name         string   `toml:"name"`
	PasswordHash string   `toml:"password_hash"`
	Mounts       []string `toml:"mounts"`
	ReadOnly     bool     `toml:"read_only"`
}

// Mount is one driver at one path.
type Mount struct {
	Path     string `toml:"path"`
	Driver   string `toml:"driver"`
	Download string `toml:"download"`
	// RefuseMacOSMetadata answers 403 to creating "._*" and ".DS_Store".
	RefuseMacOSMetadata bool `toml:"refuse_macos_metadata"`
	// Options is the driver's own table, decoded by DecodeOptions.
	Options map[string]any `toml:"options"`

	index int // position in [[mounts]], for locating keys
}

// Duration is a time.Duration written as "30s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Paths the bridge serves itself, without authentication; no mount may
// take them.
const (
	HealthPath  = "/healthz"
	ReadyPath   = "/readyz"
	MetricsPath = "/metrics"
)

// Download modes of a mount.
const (
	DownloadProxy    = "proxy"
	DownloadRedirect = "redirect"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Key  string // e.g. "mounts[1].path"
	Line int    // 0 when unknown
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Key, p.Msg)
	}
	if p.Key == "" {
		return p.Msg
	}
	return fmt.Sprintf("%s: %s", p.Key, p.Msg)
}

// Problems is every problem found; it is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Default is the configuration used when no file is given: the local driver
// over ./data on loopback. Users are added by the caller.
func Default() *Config {
	c := &Config{
		Mounts: []Mount{{Path: "/local", Driver: "local", Options: map[string]any{"root": "./data"}}},
	}
	c.applyDefaults()
	return c
}

// Load reads and checks the file. Validation against the known drivers is
// done here too; decoding each driver's options is left to DecodeOptions.
func Load(file string, knownDrivers []string) (*Config, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(file, raw, os.LookupEnv, knownDrivers)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse is Load on bytes, with an injectable environment.
func Parse(file string, raw []byte, lookupEnv func(string) (string, bool), knownDrivers []string) (*Config, error) {
	var probs Problems
	src := expandEnv(raw, lookupEnv, &probs)
	c := &Config{file: file, src: src}
	md, err := toml.Decode(string(src), c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Problems{{Line: pe.Position.Line, Msg: pe.Message}}
		}
		return nil, Problems{{Msg: err.Error()}}
	}
	for _, k := range md.Undecoded() {
		if len(k) >= 2 && k[0] == "mounts" && k[1] == "options" {
			continue // decoded later by the driver
		}
		probs = append(probs, c.problem(k.String(), "unknown key"))
	}
	for i := range c.Mounts {
		c.Mounts[i].index = i
	}
	c.applyDefaults()
	probs = append(probs, c.validate(knownDrivers)...)
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return nil, probs
	}
	return c, nil
}

// expandEnv replaces ${NAME} with the environment's value; "$${" stays a
// literal "${". An unset variable is a problem on its line.
func expandEnv(raw []byte, lookupEnv func(string) (string, bool), probs *Problems) []byte {
	lines := bytes.Split(raw, []byte("\n"))
	for i, line := range lines {
		if !bytes.Contains(line, []byte("${")) {
			continue
		}
		code, comment := splitComment(string(line))
		const escaped = "\x00ESCAPED\x00"
		s := strings.ReplaceAll(code, "$${", escaped)
		s = envRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := lookupEnv(name)
			if !ok {
				*probs = append(*probs, Problem{Key: ref, Line: i + 1, Msg: "environment variable " + name + " is not set"})
			}
			// TOML basic strings need their quotes and backslashes escaped.
			return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
		})
		lines[i] = []byte(strings.ReplaceAll(s, escaped, "${") + comment)
	}
	return bytes.Join(lines, []byte("\n"))
}

// splitComment cuts a TOML line at the '#' that starts its comment (one
// outside any string), so that comments are never expanded.
func splitComment(line string) (code, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == 0 && c == '#':
			return line[:i], line[i:]
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == '"' && c == '\\':
			i++ // an escaped character inside a basic string
		case c == quote:
			quote = 0
		}
	}
	return line, ""
}

func (c *Config) applyDefaults() {
	s := &c.Server
	if s.Listen == "" {
		s.Listen = "127.0.0.1:8080"
	}
	if s.StateDir == "" {
		s.StateDir = "./state"
	}
	if s.TempDir == "" {
		s.TempDir = path.Join(os.TempDir(), "webdav-bridge")
	}
	if s.CacheTTL.Duration == 0 {
		s.CacheTTL.Duration = 30 * time.Second
	}
	if s.MaxLockTimeout.Duration == 0 {
		s.MaxLockTimeout.Duration = time.Hour
	}
	if s.CacheEntries == 0 {
		s.CacheEntries = 4096
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	if s.LogFormat == "" {
		s.LogFormat = "json"
	}
	if s.LoginMaxFailures == 0 {
		s.LoginMaxFailures = 10
	}
	if s.LoginBlock.Duration == 0 {
		s.LoginBlock.Duration = 5 * time.Minute
	}
	if s.ShutdownTimeout.Duration == 0 {
		s.ShutdownTimeout.Duration = 30 * time.Second
	}
	if s.MaxProppatchBytes == 0 {
		s.MaxProppatchBytes = DefaultMaxProppatchBytes
	}
	if s.MaxPropsBytes == 0 {
		s.MaxPropsBytes = DefaultMaxPropsBytes
	}
	for i := range c.Mounts {
		if c.Mounts[i].Download == "" {
			c.Mounts[i].Download = DownloadProxy
		}
		if c.Mounts[i].Options == nil {
			c.Mounts[i].Options = map[string]any{}
		}
	}
}

func (c *Config) validate(knownDrivers []string) Problems {
	var probs Problems
	add := func(key, format string, args ...any) {
		probs = append(probs, c.problem(key, fmt.Sprintf(format, args...)))
	}
	switch c.Server.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("server.log_level", "must be debug, info, warn or error, not %q", c.Server.LogLevel)
	}
	switch c.Server.LogFormat {
	case "json", "console":
	default:
		add("server.log_format", "must be json or console, not %q", c.Server.LogFormat)
	}
	if c.Server.CacheTTL.Duration < time.Second {
		add("server.cache_ttl", "must be at least 1s")
	}
	if c.Server.MaxLockTimeout.Duration < time.Second {
		add("server.max_lock_timeout", "must be at least 1s")
	}
	if c.Server.CacheEntries < 0 {
		add("server.cache_entries", "must not be negative")
	}
	if c.Server.MaxProppatchBytes < MinPropsLimit {
		add("server.max_proppatch_bytes", "must be at least %d", MinPropsLimit)
	}
	if c.Server.MaxPropsBytes < MinPropsLimit {
		add("server.max_props_bytes", "must be at least %d", MinPropsLimit)
	}
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		add("server.tls_cert", "tls_cert and tls_key go together")
	}
	if u := c.Server.SharedState; u != "" {
		scheme, _, _ := strings.Cut(u, "://")
		if scheme != "redis" && scheme != "rediss" && scheme != "unix" {
			add("server.shared_state", "must be a redis://, rediss:// or unix:// URL of a Redis server")
		}
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := ParseTrustedProxy(p); err != nil {
			add("server.trusted_proxies", "%v", err)
		}
	}

	mountPaths := map[string]bool{}
	for i, m := range c.Mounts {
		key := fmt.Sprintf("mounts[%d]", i)
		switch {
		case m.Path == "":
			add(key+".path", "is required")
		case !validMountPath(m.Path):
			add(key+".path", "must be one folder name below the root, like \"/disktop\", not %q", m.Path)
		case m.Path == HealthPath || m.Path == ReadyPath || m.Path == MetricsPath:
			add(key+".path", "%q is where the bridge serves its own status", m.Path)
		case mountPaths[m.Path]:
			add(key+".path", "duplicate mount path %q", m.Path)
		}
		mountPaths[m.Path] = true
		if m.Driver == "" {
			add(key+".driver", "is required")
		} else if !contains(knownDrivers, m.Driver) {
			add(key+".driver", "unknown driver %q (known: %s)", m.Driver, strings.Join(knownDrivers, ", "))
		}
		if m.Download != DownloadProxy && m.Download != DownloadRedirect {
			add(key+".download", "must be %q or %q, not %q", DownloadProxy, DownloadRedirect, m.Download)
		}
	}

	names := map[string]bool{}
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Name == "":
			add(key+".name", "is required")
		case strings.ContainsAny(u.Name, ":\x00"):
			add(key+".name", "must not contain ':'")
		case names[u.Name]:
			add(key+".name", "duplicate user %q", u.Name)
		}
		names[u.Name] = true
		if u.PasswordHash == "" {
			add(key+".password_hash", "is required (make one with `bridge hash-password`)")
		} else if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			add(key+".password_hash", "is not a bcrypt hash (make one with `bridge hash-password`)")
		}
		if len(u.Mounts) == 0 {
			add(key+".mounts", "is required: a list of mount paths, or [\"*\"] for all")
		}
		for _, p := range u.Mounts {
			if p != "*" && !mountPaths[p] {
				add(key+".mounts", "no mount at %q", p)
			}
		}
	}
	if len(c.Users) == 0 {
		probs = append(probs, Problem{Key: "users", Msg: "at least one [[users]] entry is required: the bridge never serves without authentication"})
	}
	return probs
}

// TrustedProxyNets parses server.trusted_proxies (checked by Parse).
func (s Server) TrustedProxyNets() ([]netip.Prefix, error) {
	nets := make([]netip.Prefix, 0, len(s.TrustedProxies))
	for _, p := range s.TrustedProxies {
		n, err := ParseTrustedProxy(p)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// ParseTrustedProxy reads one entry of server.trusted_proxies: an address
// ("10.0.0.5", "::1") or a network ("10.0.0.0/8", "fd00::/8"). It is
// strict because a too wide entry lets clients choose the address they are
// throttled and logged under: host bits past the prefix (a typo for
// another network), zones and a /0 (every client) are refused.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR: %w", s, err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be matched", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	n, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR: %w", s, err)
	}
	if n != n.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past /%d (the network is %s)", s, n.Bits(), n.Masked())
	}
	if n.Addr().Is4In6() {
		if n.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q mixes IPv4-mapped and other IPv6 addresses", s)
		}
		n = netip.PrefixFrom(n.Addr().Unmap(), n.Bits()-96)
	}
	if n.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q would believe every client's X-Forwarded-For", s)
	}
	return n, nil
}

func validMountPath(p string) bool {
	return len(p) > 1 && p[0] == '/' && !strings.ContainsAny(p[1:], "/\\\x00") && p != "/." && p != "/.."
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// DecodeOptions decodes mount i's [mounts.options] table into v (a pointer
// to a struct with toml tags). An unknown key is a Problem naming it.
func (c *Config) DecodeOptions(i int, v any) error {
	m := c.Mounts[i]
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(m.Options); err != nil {
		return fmt.Errorf("mounts[%d].options: %w", i, err)
	}
	md, err := toml.Decode(buf.String(), v)
	if err != nil {
		return Problems{c.problem(fmt.Sprintf("mounts[%d].options", i), err.Error())}
	}
	var probs Problems
	for _, k := range md.Undecoded() {
		probs = append(probs, c.problem(fmt.Sprintf("mounts[%d].options.%s", i, k), "unknown key for driver "+m.Driver))
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}

// Problem builds a problem for key, with the line it is on when found;
// used by callers that validate further (driver options).
func (c *Config) problem(key, msg string) Problem {
	return Problem{Key: key, Line: locate(c.src, key), Msg: msg}
}

// Problem returns a Problem for key located in the file.
func (c *Config) Problem(key, msg string) Problem { return c.problem(key, msg) }

// File is the configuration file's name ("" for the built-in default).
func (c *Config) File() string { return c.file }
