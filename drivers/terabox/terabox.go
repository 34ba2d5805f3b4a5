// Package terabox is the driver for the TeraBox open platform
// (../shared/providers/terabox.md and the TeraBox section of NOTES.md).
//
// Everything is by path (the app folder's paths), except the download
// links, which are asked for by fs_id (Object.ID). OAuth and tokeninfo go
// to base_url; tokeninfo names the user's api_domain (every /openapi call)
// and upload_domain (superfile2 only); both are cached for 50 minutes (the
// document: at most an hour) and asked again at once when a host answers
// a plain 404.
//
// Where the document is unclear, the reading chosen (the fake in
// tests/fakes/terabox enforces it strictly; the driver also copes with the
// other readings where it can):
//   - The app folder: section 3.1 fixes paths under
//     "/From: Other Applications/<app_name>-/", the list table names
//     "/From: Other Device/<name> - <app id>/". The driver tries the first,
//     then looks in both parents for a folder named after app_name followed
//     by "-" (spaces tolerated); the option root names the folder outright.
//   - Tokens: refresh is TeraBox's own /oauth/refreshtoken with a timestamp
//     and sign = md5hex(client_id_timestamp_client_secret_private_secret);
//     a small RoundTripper (refresh.go) turns x/oauth2's refresh request
//     into that and the {errno, data} answer back into RFC 6749, so the
//     shared auth.TokenStore runs it: one refresh for all callers, the
//     rotated (single-use) pair on disk before its access token is used,
//     and the new token used at once (the old one dies 15 s after a
//     refresh). 200004/200005 (refresh token used, invalid or expired) mean
//     "needs login"; 300001 is a rate limit.
//   - Errors are HTTP 200 with errno (or PCS's error_code on superfile2):
//     -6, 110, 111 (and tokeninfo's 200002/200003) are a dead access token
//     (one refresh, one resend); -7 bad name, -8 exists, -9 not found, -10
//     no space; 31034 and 300001 rate limits, retried with the shared
//     pacer (Retry-After honoured when sent) as are 429 and passing 5xx.
//     filemanager's per-item errno is read even when the top-level errno is
//     0.
//   - list pages are 1-based (the table's "path" is page); num is 1000 (the
//     Baidu limit); a page shorter than asked ends the listing. What list
//     answers for a dir that is a file is not said: the fake lists the
//     file alone (-9 for a path that is nothing). A listing that could be
//     either (empty, or a lone file of the folder's name) is checked with
//     filemetas, so the driver declares ListsByPath: a cold folder costs
//     its own pages, one call more when it is empty.
//   - There is no mkdir in the document: create with isdir=1 and rtype=0
//     (Baidu's reading) makes a folder.
//   - Uploads: 4 MiB blocks, block_list = md5 of each (the whole file's md5
//     when there is one block), precreate (return_type 2 is dedup: no byte
//     sent; a block_list of [] means every block), superfile2 in parallel
//     (partseq 0-based, multipart field "file", each answered md5 checked
//     and the block sent again on a mismatch), then create with rtype=3,
//     only once every block is in, so an overwrite replaces the old file in
//     one step and a failed upload leaves it untouched. When the provider
//     puts the file under another name (a dedup beside a taken name), an
//     overwrite swaps it into place (uploads.Replace); a new file whose
//     name was taken meanwhile is ErrExist. A forgotten uploadid (31190)
//     starts the upload over once.
//   - The md5 the API shows is scrambled (NOTES.md): Object.Hashes stays
//     empty. Modification times are the server's; uploads cannot set them.
//   - Downloads: the dlink needs access_tokens appended, so Link.URL holds
//     the account's access token and is never ClientSafe (the bridge
//     proxies; download = "redirect" cannot work for this driver). Expires
//     is the dlink's own expires (counted from its dstime), and never later
//     than the access token's expiry.
//
// With the option share_url the mount is that share link instead, read
// only, through the same account's token (share.go); the account's mount
// saves from it server-side (CopyFrom, copyfrom.go).
//
// No token, secret or dlink is logged or put in an error: request errors
// name the call, never its URL. The same holds for a share's extraction
// code and its session key (sekey, randsk).
package terabox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"bridge/auth"
	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

// Name is the driver's name in configuration files.
const Name = "terabox"

// Options are the [mounts.options] of a TeraBox mount.
type Options struct {
	ClientID      string `toml:"client_id"`
	ClientSecret  string `toml:"client_secret"`
	PrivateSecret string `toml:"private_secret"`
	// AppName is the application's name, which names its app folder.
	AppName string `toml:"app_name"`
	// Root is the full path of the folder to mount, when the app folder is
	// not where app_name says.
	Root string `toml:"root"`
	// BaseURL is the OAuth host (and tokeninfo's); tests point it at the
	// fake.
	BaseURL string `toml:"base_url"`
	// RefreshToken seeds the token store when it is empty; it is rotated
	// into the state folder at once and never used again.
	RefreshToken string `toml:"refresh_token"`
	// UploadConcurrency is how many blocks go up at once.
	UploadConcurrency int `toml:"upload_concurrency"`
	// ShareURL, when set, mounts that share link (read-only) instead of
	// the app folder: https://www.terabox.com/s/1<surl>, or what follows
	// "/s/" in it (share.go).
	ShareURL string `toml:"share_url"`
	// SharePassword is the share link's extraction code (4 digits or
	// letters); a pwd= in share_url is used when it is empty.
	SharePassword string `toml:"share_password"`
}

const (
	defaultBaseURL = "https://www.terabox.com"
	blockSize      = 4 << 20
	listNum        = 1000
	maxAttempts    = 4
	maxRetryWait   = 30 * time.Second
	// domainTTL is how long tokeninfo's domains are used: under the hour
	// the document allows.
	domainTTL = 50 * time.Minute
	// seedTimeout bounds the rotation of a seeded refresh token in New.
	seedTimeout = 15 * time.Second
	appsFolder  = "/From: Other Applications"
	otherFolder = "/From: Other Device"
)

// Driver is one TeraBox account's app folder.
type Driver struct {
	opts     Options
	base     *url.URL
	client   *http.Client
	tokens   *auth.TokenStore
	log      zerolog.Logger
	mount    string
	state    string        // the mount's folder, for the login's QR code image
	records  drivers.State // tokens and the share's session
	login    string
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	gate     pacer.Gate
	pageSize int

	domMu sync.Mutex
	dom   domains

	rootMu sync.Mutex
	root   string // full path of the mounted folder, once known
}

// domains are tokeninfo's hosts, until when they are used, and whose
// token it was (its client_id and user_id, "" when not told).
type domains struct {
	api, upload    string
	clientID, user string
	until          time.Time
}

// New is the drivers.Factory of TeraBox.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, err
	}
	switch {
	case o.ClientID == "" || o.ClientSecret == "" || o.PrivateSecret == "":
		return nil, errors.New("terabox: options client_id, client_secret and private_secret are required")
	case o.AppName == "" && o.Root == "" && o.ShareURL == "":
		return nil, errors.New("terabox: option app_name (or root, or share_url) is required")
	case o.Root != "" && !strings.HasPrefix(o.Root, "/"):
		return nil, fmt.Errorf("terabox: option root %q is not an absolute path", o.Root)
	}
	if o.BaseURL == "" {
		o.BaseURL = defaultBaseURL
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("terabox: option base_url %q is not an http(s) URL", o.BaseURL)
	}
	if o.UploadConcurrency <= 0 {
		o.UploadConcurrency = 4
	}
	var link shareLink
	if o.ShareURL != "" || o.SharePassword != "" {
		if link, err = parseShareLink(o.ShareURL, o.SharePassword); err != nil {
			return nil, err
		}
	}
	d := &Driver{opts: o, base: base, client: cfg.HTTPClient, log: cfg.Logger, mount: cfg.MountPath,
		state: cfg.StateDir, records: cfg.StateOf(), login: cfg.LoginCommand, now: time.Now, sleep: pacer.Sleep, pageSize: listNum}
	if d.login == "" {
		d.login = "bridge login -config FILE " + cfg.MountPath
	}
	if o.Root != "" {
		d.root = path.Clean(o.Root)
	}
	conf := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: o.BaseURL + refreshPath, AuthStyle: oauth2.AuthStyleInParams}}
	refreshClient := *cfg.HTTPClient
	refreshClient.Transport = &refreshTransport{next: transportOf(cfg.HTTPClient), d: d}
	ts, err := auth.NewTokenStore(cfg.StateOf(), "token.json", conf, &refreshClient)
	if err != nil {
		return nil, fmt.Errorf("terabox: %w", err)
	}
	seeded := !ts.HasToken() && o.RefreshToken != ""
	ts.Seed(o.RefreshToken)
	ts.OnNeedsLogin(func(reason string) {
		d.log.Error().Str("mount", d.mount).Str("reason", reason).
			Msg("terabox: the provider refused the refresh token; the mount answers 503 until `" + d.login + "` is run")
	})
	d.tokens = ts
	switch {
	case seeded:
		// The seed is single-use: trade it for a stored pair now, so that
		// the configuration's copy is spent before anything else can use it.
		sctx, cancel := context.WithTimeout(ctx, seedTimeout)
		if _, err := ts.Token(sctx); err != nil {
			d.log.Warn().Str("error", err.Error()).Msg("terabox: the seeded refresh token could not be rotated yet")
		}
		cancel()
	case !ts.HasToken():
		d.log.Warn().Msg("terabox: no token yet: run `" + d.login + "`")
	}
	if link.surl != "" {
		return newShare(d, link), nil
	}
	return d, nil
}

// transportOf is c's transport, or the default one.
func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// Features of TeraBox.
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true,
		ListsByPath: true,
		ProxyOnly:   "its download links work only with the account's access token appended, which must never reach a client"}
}

// Root is the app folder (or the root option's folder).
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	p, err := d.rootPath(ctx)
	if err != nil {
		return drivers.Object{}, err
	}
	return drivers.Object{ID: "root:" + p, IsDir: true}, nil
}

// full is the provider's path of a mount-relative path.
func (d *Driver) full(ctx context.Context, p string) (string, error) {
	root, err := d.rootPath(ctx)
	if err != nil {
		return "", err
	}
	return path.Join(root, path.Clean("/"+p)), nil
}

// rootPath finds the mounted folder once: the root option, else the app
// folder in the document's first form, else a folder named after app_name
// in either parent the document names.
func (d *Driver) rootPath(ctx context.Context) (string, error) {
	d.rootMu.Lock()
	defer d.rootMu.Unlock()
	if d.root != "" {
		return d.root, nil
	}
	first := appsFolder + "/" + d.opts.AppName + "-"
	_, err := d.listPage(ctx, first, 1, 1)
	switch {
	case err == nil:
		d.root = first
		return first, nil
	case !errors.Is(err, drivers.ErrNotFound) && !errors.Is(err, drivers.ErrInvalidName):
		return "", fmt.Errorf("terabox: finding the app folder: %w", err)
	}
	for _, parent := range []string{appsFolder, otherFolder} {
		objs, err := d.listAll(ctx, parent)
		if err != nil {
			continue // not readable by this app: the other form, or neither
		}
		for _, o := range objs {
			if o.IsDir && isAppFolder(o.Name, d.opts.AppName) {
				d.root = parent + "/" + o.Name
				return d.root, nil
			}
		}
	}
	return "", fmt.Errorf("terabox: no app folder for app_name %q under %q or %q: set the option root to its full path: %w",
		d.opts.AppName, appsFolder, otherFolder, drivers.ErrNotFound)
}

// isAppFolder reports whether name is app's folder: "<app>-", or
// "<app> - <id>", "<app>-<id>".
func isAppFolder(name, app string) bool {
	rest, ok := strings.CutPrefix(name, app)
	if !ok {
		return false
	}
	return strings.HasPrefix(strings.TrimLeft(rest, " "), "-")
}

// Quota reports the account's storage.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	var out struct {
		Total flex.Int `json:"total"`
		Used  flex.Int `json:"used"`
	}
	if err := d.do(ctx, request{op: "quota", method: http.MethodGet, path: "/openapi/api/quota", resend: true}, &out); err != nil {
		return drivers.Quota{}, err
	}
	q := drivers.Quota{Total: int64(out.Total), Used: int64(out.Used), Free: int64(out.Total - out.Used)}
	if q.Total <= 0 {
		q.Total, q.Free = -1, -1
	}
	return q, nil
}

// Check tells /healthz whether the tokens still work.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.Quota(ctx)
	return err
}
