// Package gokuai is the driver for Gokuai (够快云库) through its m-api
// (../shared/providers/gokuai.md and the Gokuai section of NOTES.md).
//
// The mount shows every library of the account (/m-api/1/account/mount)
// as a top-level folder named from org_name; names that clash are made
// unique and stable: the library with the lowest mount id keeps the bare
// name, the others get " (<mount id>)" appended. The mount root takes no
// files or folders (ErrPermission: the mount root holds libraries) and a
// library cannot be renamed, moved or removed through the bridge. The
// option library mounts one library as the root instead (by its shown
// name or its org_name).
//
// Every call is signed (sign.go): all parameters but sign, filehash and
// filesize, sorted by key, values joined with "\n" — empty values kept
// (official clients disagree; the driver's one reading is the one that
// keeps them, and it sends an empty value only where the API requires
// the parameter, target_fullpath at a library root) — HMAC-SHA1 with the
// client secret, base64. A refused signature (bad secret) or dateline
// (clock skew) is logged once saying which, answered ErrAuthExpired and
// not retried.
//
// Where the documents are unclear, the reading chosen (the fake in
// tests/fakes/gokuai enforces it strictly; the driver copes with both
// where it can):
//   - Errors: HTTP status first, then error_code (40401 not found, 40901
//     taken, 40002 bad name, 40302 library full, 40101/40102 token
//     dead, 40103/40104 signature or dateline refused).
//   - file/ls: count is read as the folder's total. After the first page
//     the driver asks for the others at once (4 at a time, at the offsets
//     the first page's length gives), then pages on while a page is full
//     or count says more, and stops at an empty page or one with nothing
//     new (a server ignoring start). order=filename, so pages do not
//     shift as files change.
//   - Listing a fullpath that is not a folder: the document does not
//     say. The fake answers the harshest reading (nothing lists as an
//     empty folder, a file's path as that file alone); a 404 is taken
//     too (ErrNotFound). So a listing that could be either (empty, or a
//     lone file of the folder's name) is checked in the parent's
//     listing, up to a library root (there while its library is) or the
//     mount root, and the driver declares ListsByPath: a cold folder
//     costs its own pages, an empty one (or one holding only a file of
//     its own name) its parent's listing too. Every other call goes by
//     mount_id and fullpath, so a folder Ref without an ID (the
//     bridge's, for a folder it listed by path) needs no lookup.
//   - Numbers may be JSON strings (file/open's filesize is one).
//   - Object.ID is "<mount>:<hash>" for folders and
//     "<mount>:<hash>:<filehash>" for files (so a new content is a new
//     ID, and no cached link of the old one is reused); "<mount>:" is a
//     library root, "/" the mount root. Calls go by mount_id and fullpath
//     worked out from Ref.Path, which is always current.
//   - filehash is the sha1 of the content (create_file says so): it is
//     served as Hashes.SHA1.
//   - Download links live 10 minutes by the document (file/open gives no
//     lifetime); Link.Expires is that, counted from before the request.
//     They carry no account secret: ClientSafe.
//   - create_folder overwrites (returns the existing folder) by default
//     and renames with overwrite=0: Mkdir looks first (file/info), then
//     creates with overwrite=0; a renamed twin made by a concurrent
//     creation is removed and answered ErrExist.
//   - Uploads: create_file with overwrite=1 always (a PUT replaces; the
//     fake records the renamed twin overwrite=0 would make). A known sha1
//     (state 1) costs no byte. Otherwise the chunked protocol on the
//     first upload server given (upload.go); the old file keeps its
//     content until upload_finish commits the new one, so an overwrite
//     that fails loses nothing. Parts go one at a time: the server takes
//     them only in order (a 409 names the offset it expects).
//   - MOVE inside a library is move (+ rename); across libraries it is
//     copy with target_mount_id and delete_from=1; COPY across libraries
//     is copy too. Both keep names: a new name is given by rename first
//     (through a temporary name when taken at the source), or, for a
//     copy, in a temporary folder at the destination.
//   - Quota is the sum over the libraries (the libraries' own sizes, as
//     /account/mount reports them), or the one library's with option
//     library; DirQuota is the library of the folder (ErrNotSupported
//     for the mount root, where Quota answers).
//
// Auth: a password login (grant_type=password, md5hex of the password)
// or a refresh_token seed gives a token pair, kept under the mount's
// state dir by auth.TokenStore: the token endpoint refreshes like OAuth2
// (grant_type=refresh_token) once it is signed, which a RoundTripper of
// the store's own client does (auth.go). Refresh tokens are single use;
// the rotated pair is on disk before use, and a refresh happens once for
// all callers. An access token refused with 401 (40101/40102) is
// refreshed once; a dead refresh token falls back to a password login
// when a password is configured, else the mount needs `bridge login`,
// which asks for the username and password on the terminal and stores
// only the tokens.
package gokuai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"bridge/auth"
	"bridge/drivers"
	"bridge/drivers/pacer"
)

// Name is the driver's name in configuration files.
const Name = "gokuai"

// Options are the [mounts.options] of a Gokuai mount.
type Options struct {
	// BaseURL is the API host; the API is under /m-api.
	BaseURL      string `toml:"base_url"`
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"`
	// Username and Password log in by themselves (the password is sent
	// as its md5 and never stored); without them `bridge login` asks.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// RefreshToken seeds the token store when it is empty.
	RefreshToken string `toml:"refresh_token"`
	// Library mounts one library (by its shown name or org_name) as the
	// root instead of every library as a folder.
	Library string `toml:"library"`
	// ChunkSize is the upload part size in bytes (default 4 MiB, at most
	// 10 MiB as official clients use).
	ChunkSize int64 `toml:"chunk_size"`
}

const (
	defaultBaseURL   = "https://yk3.gokuai.com"
	defaultChunkSize = 4 << 20
	maxChunkSize     = 10 << 20
	minChunkSize     = 64 << 10
	maxAttempts      = 4
	// maxRetryWait is the longest Retry-After waited out inside a call.
	maxRetryWait = 30 * time.Second
	// linkTTL is the documented lifetime of file/open's addresses.
	linkTTL = 10 * time.Minute
	// libraryTTL is how long the list of libraries is reused.
	libraryTTL = time.Minute
	// loginBackoff is how long a refused password login is answered from
	// memory, so a broken mount does not hammer the token endpoint.
	loginBackoff = time.Minute
)

// Driver is one Gokuai account.
type Driver struct {
	opts   Options
	base   string
	client *http.Client
	tokens *auth.TokenStore
	log    zerolog.Logger
	mount  string
	login  string // the command that logs this mount in, for hints
	sleep  func(ctx context.Context, d time.Duration) error
	now    func() time.Time
	gate   pacer.Gate

	loginMu    sync.Mutex
	loginErr   error
	loginRetry time.Time

	libMu  sync.Mutex
	libs   []library
	libsAt time.Time

	// signWarned remembers which signature problems were logged (bits of
	// signProblem) until a call succeeds again.
	signWarned atomic.Int32
}

// New is the drivers.Factory of Gokuai.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, err
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		return nil, errors.New("gokuai: options client_id and client_secret are required (every call is signed with the secret)")
	}
	if o.BaseURL == "" {
		o.BaseURL = defaultBaseURL
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("gokuai: option base_url %q is not an http(s) URL", o.BaseURL)
	}
	if (o.Username == "") != (o.Password == "") {
		return nil, errors.New("gokuai: options username and password go together")
	}
	switch {
	case o.ChunkSize == 0:
		o.ChunkSize = defaultChunkSize
	case o.ChunkSize < minChunkSize || o.ChunkSize > maxChunkSize:
		return nil, fmt.Errorf("gokuai: option chunk_size %d is outside %d..%d bytes", o.ChunkSize, minChunkSize, maxChunkSize)
	}
	d := &Driver{opts: o, base: o.BaseURL, client: cfg.HTTPClient, log: cfg.Logger, mount: cfg.MountPath,
		sleep: pacer.Sleep, now: time.Now}
	d.login = cfg.LoginCommand
	if d.login == "" {
		d.login = "bridge login -config FILE " + cfg.MountPath
	}
	conf := &oauth2.Config{
		ClientID: o.ClientID, // the secret signs; it is never sent
		Endpoint: oauth2.Endpoint{TokenURL: o.BaseURL + tokenPath, AuthStyle: oauth2.AuthStyleInParams},
	}
	signed := *cfg.HTTPClient
	signed.Transport = &tokenSigner{d: d, next: transportOf(cfg.HTTPClient)}
	ts, err := auth.NewTokenStore(cfg.StateOf(), "token.json", conf, &signed)
	if err != nil {
		return nil, fmt.Errorf("gokuai: %w", err)
	}
	ts.Seed(o.RefreshToken)
	ts.OnNeedsLogin(func(reason string) {
		if d.opts.Password != "" {
			d.log.Warn().Str("mount", d.mount).Str("reason", reason).
				Msg("gokuai: the refresh token was refused; logging in again with the configured password")
			return
		}
		d.log.Error().Str("mount", d.mount).Str("reason", reason).
			Msg("gokuai: the provider refused the refresh token; the mount answers 503 until `" + d.login + "` is run")
	})
	d.tokens = ts
	if !ts.HasToken() && o.Password == "" {
		d.log.Warn().Msg("gokuai: no token yet and no password configured: run `" + d.login + "`")
	}
	return d, nil
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// Features of Gokuai. Times are the server's (create_file takes none).
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true,
		ListsByPath:  true,             // file/ls takes a fullpath; nothing else needs an ID
		UploadHashes: drivers.HashSHA1} // create_file's dedup
}

// Root is the mount root: every library, or the one of option library.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	if d.opts.Library == "" {
		if _, err := d.libraries(ctx, true); err != nil {
			return drivers.Object{}, fmt.Errorf("gokuai: root: %w", err)
		}
		return drivers.Object{ID: "/", IsDir: true}, nil
	}
	lib, err := d.rootLibrary(ctx)
	if err != nil {
		return drivers.Object{}, err
	}
	return drivers.Object{ID: libraryID(lib), IsDir: true}, nil
}

// Quota is the sum over the libraries, or option library's.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	libs, err := d.libraries(ctx, true)
	if err != nil {
		return drivers.Quota{}, fmt.Errorf("gokuai: quota: %w", err)
	}
	if d.opts.Library != "" {
		lib, err := d.rootLibrary(ctx)
		if err != nil {
			return drivers.Quota{}, err
		}
		return lib.quota(), nil
	}
	sum := drivers.Quota{}
	for _, l := range libs {
		q := l.quota()
		if q.Total < 0 || sum.Total < 0 {
			sum.Total, sum.Free = -1, -1
		} else {
			sum.Total += q.Total
			sum.Free += q.Free
		}
		sum.Used += q.Used
	}
	return sum, nil
}

// DirQuota is the quota of the library dir is in; the mount root of the
// multi-library view has none of its own (ErrNotSupported: Quota answers).
func (d *Driver) DirQuota(ctx context.Context, dir drivers.Ref) (drivers.Quota, error) {
	if _, err := d.libraries(ctx, true); err != nil {
		return drivers.Quota{}, fmt.Errorf("gokuai: quota of %s: %w", dir.Path, err)
	}
	l, err := d.locate(ctx, dir.Path)
	if err != nil {
		return drivers.Quota{}, fmt.Errorf("gokuai: quota of %s: %w", dir.Path, err)
	}
	if l.top {
		return drivers.Quota{}, fmt.Errorf("gokuai: the mount root holds libraries, each with its own quota: %w", drivers.ErrNotSupported)
	}
	return l.lib.quota(), nil
}

// Check tells /healthz whether the credentials work.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.libraries(ctx, true)
	return err
}
