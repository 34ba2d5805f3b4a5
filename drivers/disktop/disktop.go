// Package disktop is the driver for the Disk.Top open platform
// (../shared/providers/disktop.md).
//
// Listing is by path (GET /v1/files, pages of 200: the first, then the rest
// in parallel, so 10,000 entries cost 50 calls); everything else is by id
// (manage, download) or by parent path (folder, precreate). Folders and
// files have separate id spaces, so Object.ID is "d<id>" or "f<id>" (the
// root is "d/"). Listings carry md5 (a real content hash) but no times.
//
// Where the document is unclear, the reading chosen (the fake in
// tests/fakes/disktop enforces it strictly; the driver also copes with the
// other readings where it can):
//   - Errors: the document names no errno. The driver classifies by HTTP
//     status first and errno/100 (read as an HTTP-like class) second; a 400
//     whose message speaks of the name is ErrInvalidName.
//   - Ids and numbers are documented as int; JSON strings are taken too.
//   - Listing a path that is not a folder: the document does not say. The
//     fake answers the harshest reading (nothing lists as an empty folder,
//     a file's path as that file alone); a 404 is taken too. So a listing
//     that could be either (empty, or a lone file of the folder's name) is
//     checked in the parent's listing, and the driver declares
//     ListsByPath: a cold folder costs its own pages, plus its parent's
//     only when it is empty. A folder Ref without an id (the bridge's, for
//     a folder it found by listing it) gets its id from the parent's
//     listing when a manage call needs one.
//   - Paging: total is read as the count of all entries (folders and
//     files) at the path. A server giving fewer entries per page than asked
//     is paged by what it gives; one giving no total is paged one by one
//     until a short or empty page.
//   - precreate on a taken name: the fake refuses it (409); the document
//     has no overwrite flag. So an overwrite uploads under a temporary name
//     first; once complete, the old file is renamed aside, the new one takes
//     the name and the old one is deleted. A failed upload leaves the old
//     file as it was and no partial object (the session is aborted).
//   - manage move and copy keep names and answer no ids: a move+rename is a
//     rename then a move (through a temporary name if the new name is taken
//     at the source); a copy+rename goes through a temporary folder (copy,
//     rename, move); a copy's id is found by listing its folder.
//   - The chunk endpoints ({endpoint}/u...) list no Authorization; the
//     driver sends the Bearer token anyway (a server that ignores it loses
//     nothing; the fake accepts both).
//   - A 0-byte file has 0 parts and is made by complete. A missing
//     total_parts is computed from chunk_size; one that disagrees with it
//     is refused before any byte is sent.
//   - 425 from complete is answered by asking /parts and re-sending what is
//     missing (twice at most). Retries go through the drivers' shared
//     pacer (drivers/pacer): 429 and passing 5xx (pacer.Passing) are
//     retried with backoff (the document says to retry a 502 from
//     complete), Retry-After is waited out exactly (while such waits add
//     up to no more than 30 s; a longer one, or one past the request's
//     deadline, goes to the bridge as a RetryError: 503 + Retry-After), and
//     a rate limit met by one call holds the driver's other calls back. A broken connection is retried only
//     for what can be sent twice (GETs and parts): a lost answer to a
//     rename or a complete may hide a success.
//   - OAuth: the token endpoint is read as RFC 6749 (x/oauth2). The
//     device-token answer is read as RFC 8628 JSON (the document's
//     example) or inside the {errno, data} envelope, at any HTTP status;
//     slow_down adds 5 s to the interval. A refresh refused with
//     invalid_grant (or any RFC "dead token" code, or a bare 400/401/403)
//     means "needs login" and is not retried. The token endpoint is rate
//     limited like the others: its 429 (Retry-After honoured), 5xx and
//     lost connections are retried within the refresh by the same pacer;
//     anything else is passing and tried again on the next call.
//   - Download URLs: valid expires_in seconds counted from before the
//     request (without expires_in, for the request at hand only); a
//     relative URL is resolved against api_base. The URL is signed and
//     carries no account secret, so Link is ClientSafe (download =
//     "redirect" is allowed).
//
// Tokens: `bridge login` stores them under the mount's state dir; the
// refresh token rotates on every use and is written to disk before the new
// access token is used (auth.TokenStore). An access token is replaced a
// tenth of its lifetime before it expires (at most 2 minutes before), so a
// 120-second token serves about 108 s. A refused refresh token puts the
// mount in "needs login" (one error log line; ErrAuthExpired: 503 and
// /healthz) until a new `bridge login`, which the running mount picks up.
// No token, secret or URL signature is logged or put in an error.
package disktop

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"bridge/auth"
	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
	"bridge/drivers/uploads"
)

// Name is the driver's name in configuration files.
const Name = "disktop"

// Options are the [mounts.options] of a Disk.Top mount.
type Options struct {
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"` // optional with PKCE
	Scope        string `toml:"scope"`
	// APIBase is the open platform's address (tests point it at the fake).
	APIBase string `toml:"api_base"`
	// UploadConcurrency is how many parts go up at once.
	UploadConcurrency int `toml:"upload_concurrency"`
	// RefreshToken seeds the token store when it is empty (e.g. a token
	// made elsewhere); it rotates at once and the stored one is used after.
	RefreshToken string `toml:"refresh_token"`
}

const (
	defaultAPIBase = "https://openapi.disk.top"
	pageLimit      = 200
	listParallel   = 4
	maxAttempts    = 4
	// maxRetryWait is the longest Retry-After waited out inside a call;
	// a longer one goes back to the bridge (503 with Retry-After).
	maxRetryWait = 30 * time.Second
)

// Driver is one Disk.Top account.
type Driver struct {
	opts   Options
	client *http.Client
	tokens *auth.TokenStore
	oauth  *oauth2.Config
	log    zerolog.Logger
	mount  string
	sleep  func(ctx context.Context, d time.Duration) error
	gate   pacer.Gate // a rate limit met by one call holds the others back
	now    func() time.Time
}

// New is the drivers.Factory of Disk.Top.
func New(ctx context.Context, cfg drivers.Config) (drivers.Driver, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, err
	}
	if o.ClientID == "" {
		return nil, errors.New("disktop: option client_id is required")
	}
	if o.Scope == "" {
		o.Scope = "user.read files.app_data"
	}
	if o.APIBase == "" {
		o.APIBase = defaultAPIBase
	}
	o.APIBase = strings.TrimSuffix(o.APIBase, "/")
	if u, err := url.Parse(o.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("disktop: option api_base %q is not an http(s) URL", o.APIBase)
	}
	if o.UploadConcurrency <= 0 {
		o.UploadConcurrency = 4
	}
	d := &Driver{opts: o, client: cfg.HTTPClient, log: cfg.Logger, mount: cfg.MountPath, sleep: sleepCtx, now: time.Now}
	d.oauth = &oauth2.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		Scopes:       strings.Fields(o.Scope),
		Endpoint: oauth2.Endpoint{
			AuthURL:       o.APIBase + "/oauth/authorize",
			TokenURL:      o.APIBase + "/oauth/token",
			DeviceAuthURL: o.APIBase + "/oauth/device-code",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
	ts, err := auth.NewTokenStore(cfg.StateOf(), "token.json", d.oauth, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("disktop: %w", err)
	}
	ts.Seed(o.RefreshToken)
	login := cfg.LoginCommand
	if login == "" {
		login = "bridge login -config FILE " + cfg.MountPath
	}
	ts.OnNeedsLogin(func(reason string) {
		d.log.Error().Str("mount", d.mount).Str("reason", reason).
			Msg("disktop: the provider refused the refresh token; the mount answers 503 until `" + login + "` is run")
	})
	d.tokens = ts
	if !ts.HasToken() {
		d.log.Warn().Msg("disktop: no token yet: run `" + login + "`")
	}
	return d, nil
}

// sleepCtx is the driver's real wait (tests replace d.sleep).
func sleepCtx(ctx context.Context, d time.Duration) error { return pacer.Sleep(ctx, d) }

// Features of Disk.Top.
func (d *Driver) Features() drivers.Features {
	return drivers.Features{CopyFile: true, CopyDir: true, Move: true, Links: true, EmptyFiles: true, Quota: true,
		ListsByPath: true, UploadHashes: drivers.HashMD5} // precreate's dedup
}

// apiError is an error answer of the platform.
type apiError struct {
	Status int
	Errno  int    `json:"errno"`
	Msg    string `json:"errmsg"`
	retry  time.Duration
}

func (e *apiError) Error() string {
	return fmt.Sprintf("disktop: HTTP %d errno %d: %s", e.Status, e.Errno, e.Msg)
}

// classify maps the platform's answers onto the contract's error kinds: the
// one place that knows them.
func classify(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		switch {
		case errors.Is(err, auth.ErrNeedsLogin):
			return fmt.Errorf("%w: %w", err, drivers.ErrAuthExpired)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), drivers.HasKind(err):
			return err
		}
		return fmt.Errorf("%w: %w", err, drivers.ErrUnavailable) // e.g. a failed refresh
	}
	var kind error
	switch {
	case ae.Status == http.StatusNotFound || ae.Errno/100 == 404:
		kind = drivers.ErrNotFound
	case ae.Status == http.StatusConflict || ae.Errno/100 == 409:
		kind = drivers.ErrExist
	case ae.Status == http.StatusForbidden || ae.Errno/100 == 403:
		kind = drivers.ErrPermission
	case ae.Status == http.StatusUnauthorized:
		kind = drivers.ErrAuthExpired
	case ae.Status == http.StatusInsufficientStorage || ae.Errno/100 == 507:
		kind = drivers.ErrQuota
	case ae.Status == http.StatusRequestEntityTooLarge:
		kind = drivers.ErrTooLarge
	case ae.Status == http.StatusTooManyRequests:
		kind = drivers.ErrRateLimited
		if ae.retry > 0 {
			return drivers.WithRetryAfter(fmt.Errorf("%w: %w", ae, kind), ae.retry)
		}
	case ae.Status == http.StatusBadRequest && strings.Contains(ae.Msg, "name"):
		kind = drivers.ErrInvalidName
	case ae.Status >= 500:
		kind = drivers.ErrUnavailable
	default:
		kind = drivers.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ae, kind)
}

// call sends one API request with the Bearer token and decodes data into
// out. A 401 refreshes the token once; 429 and passing 5xx are retried by
// the pacer. form, when not nil, is sent as a form.
func (d *Driver) call(ctx context.Context, method, endpoint string, form url.Values, out any) error {
	return d.callRaw(ctx, method, endpoint, form, nil, "", out)
}

// callRaw is call with a raw body (a part) when raw is not nil.
//
// Retries go through the shared pacer (drivers/pacer): a 429 or passing
// 5xx is tried again after its Retry-After (while such waits add up to no
// more than maxRetryWait; then, or for a longer one, it goes back as a
// RetryError), or after a backoff, maxAttempts times in all. A
// lost connection or a cut answer is retried only for what can be sent
// twice, GETs and parts: a lost answer to a rename or a complete may hide
// a success. A 401 is answered by one refresh and an immediate resend,
// which is not counted as an attempt.
//
// raw, when set, is the body read from the temp file by offset; it is
// rewound for each attempt, so no copy of it is held.
func (d *Driver) callRaw(ctx context.Context, method, endpoint string, form url.Values, raw *io.SectionReader, contentType string, out any) error {
	resendable := method == http.MethodGet || raw != nil
	refreshed := false
	// send makes one request. A connection that failed or an answer that
	// broke off is errConnLost, naming the call but not the URL (which may
	// be a capability).
	send := func(access string) error {
		var body io.Reader
		switch {
		case form != nil:
			body = strings.NewReader(form.Encode())
			contentType = "application/x-www-form-urlencoded"
		case raw != nil:
			if _, err := raw.Seek(0, io.SeekStart); err != nil {
				return err
			}
			body = io.NopCloser(raw) // not a *SectionReader: http would not know its length
		}
		req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
		if err != nil {
			return err
		}
		if raw != nil {
			req.ContentLength = raw.Size()
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := d.client.Do(req)
		if err == nil {
			err = decode(resp, out)
		}
		if err != nil && (resp == nil || errors.Is(err, errBrokenAnswer)) {
			return fmt.Errorf("disktop: %s %s: %w: %w", method, shortPath(endpoint), errConnLost, drivers.ErrUnavailable)
		}
		return err
	}
	p := &pacer.Pacer{Attempts: maxAttempts, MaxWait: maxRetryWait, Sleep: d.sleep, Gate: &d.gate}
	return p.Call(ctx, func(int) (pacer.Retry, error) {
		for {
			tok, err := d.tokens.Token(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return pacer.Retry{}, ctx.Err()
				}
				// The token store has retried the token endpoint already.
				return pacer.Retry{}, classify(err)
			}
			err = send(tok.AccessToken)
			var ae *apiError
			switch {
			case err == nil:
				return pacer.Retry{}, nil
			case errors.Is(err, errConnLost):
				if ctx.Err() != nil {
					return pacer.Retry{}, ctx.Err()
				}
				return pacer.Retry{Again: resendable}, err
			case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !refreshed:
				d.tokens.Rejected(tok.AccessToken)
				refreshed = true
				continue
			case errors.As(err, &ae):
				return pacer.Retry{Again: pacer.Passing(ae.Status), After: ae.retry}, classify(err)
			}
			return pacer.Retry{}, classify(err)
		}
	})
}

func shortPath(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Path
	}
	return "?"
}

// errConnLost is a request whose answer never came whole: it may or may
// not have been carried out.
var errConnLost = errors.New("connection lost")

// errBrokenAnswer is an answer cut before its end.
var errBrokenAnswer = fmt.Errorf("disktop: the answer broke off: %w", drivers.ErrUnavailable)

// decode reads an {errno, errmsg, data} envelope.
func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return errBrokenAnswer
	}
	var env struct {
		Errno int             `json:"errno"`
		Msg   string          `json:"errmsg"`
		Data  json.RawMessage `json:"data"`
	}
	jerr := json.Unmarshal(b, &env)
	if resp.StatusCode != http.StatusOK || jerr != nil || env.Errno != 0 {
		ae := &apiError{Status: resp.StatusCode, Errno: env.Errno, Msg: env.Msg}
		if jerr != nil && resp.StatusCode == http.StatusOK {
			ae.Status, ae.Msg = http.StatusBadGateway, "answer is not JSON"
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			ae.retry = time.Duration(secs) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("disktop: unexpected answer: %v: %w", err, drivers.ErrUnavailable)
	}
	return nil
}

// apiPath is the platform's path for a mount-relative path.
func apiPath(p string) string {
	if p == "" {
		return "/"
	}
	return path.Clean("/" + p)
}

func (d *Driver) url(p string, q url.Values) string {
	u := d.opts.APIBase + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Root is the sandbox (or disk) root.
func (d *Driver) Root(ctx context.Context) (drivers.Object, error) {
	if _, err := d.tokens.Token(ctx); err != nil {
		return drivers.Object{}, classify(err)
	}
	return drivers.Object{ID: "d/", IsDir: true}, nil
}

type listPage struct {
	Folders []struct {
		ID   flex.ID `json:"id"`
		Name string  `json:"name"`
	} `json:"folders"`
	Files []fileInfo `json:"files"`
	Total flex.Int   `json:"total"`
}

func (p listPage) len() int { return len(p.Folders) + len(p.Files) }

type fileInfo struct {
	ID   flex.ID  `json:"id"`
	Name string   `json:"name"`
	Size flex.Int `json:"size"`
	MD5  string   `json:"md5"`
}

func (fi fileInfo) object() drivers.Object {
	o := drivers.Object{Name: fi.Name, Size: int64(fi.Size), ID: "f" + string(fi.ID)}
	if isMD5(fi.MD5) {
		o.Hashes.MD5 = strings.ToLower(fi.MD5)
	}
	return o
}

func isMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (d *Driver) page(ctx context.Context, dir string, n int) (listPage, error) {
	var p listPage
	q := url.Values{"path": {apiPath(dir)}, "page": {strconv.Itoa(n)}, "limit": {strconv.Itoa(pageLimit)}}
	err := d.call(ctx, http.MethodGet, d.url("/v1/files", q), nil, &p)
	return p, err
}

// List lists a folder by its path. A listing is no proof that the folder
// exists (see the package comment): one that could be a path that is not a
// folder (empty, or a lone file of the folder's name) is checked against
// the parent's listing.
func (d *Driver) List(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	objs, err := d.listPages(ctx, dir)
	if err != nil {
		return nil, err
	}
	if path.Clean("/"+dir.Path) != "/" && drivers.Unproven(dir.Path, objs) {
		if _, err := drivers.FindInParent(ctx, dir.Path, true, d.List); err != nil {
			return nil, fmt.Errorf("disktop: list %s: %w", dir.Path, err)
		}
	}
	return objs, nil
}

// listPages reads the first page, then the others in parallel (total
// tells how many). A server that gives fewer entries per page than asked
// is paged by what it gives; one that gives no total is paged one by one
// until a short or empty page.
func (d *Driver) listPages(ctx context.Context, dir drivers.Ref) ([]drivers.Object, error) {
	first, err := d.page(ctx, dir.Path, 1)
	if err != nil {
		return nil, fmt.Errorf("disktop: list %s: %w", dir.Path, err)
	}
	per, total := pageLimit, int(first.Total)
	if n := first.len(); n > 0 && n < per && n < total {
		per = n
	}
	pages := []listPage{first}
	switch {
	case total > per:
		pages = append(pages, make([]listPage, (total+per-1)/per-1)...)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(listParallel)
		for i := 1; i < len(pages); i++ {
			g.Go(func() error {
				p, err := d.page(gctx, dir.Path, i+1)
				pages[i] = p
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, fmt.Errorf("disktop: list %s: %w", dir.Path, err)
		}
	case total == 0 && first.len() > 0:
		// No total: page on until a page is empty or shorter than the first
		// (whose length is the server's page size, whatever was asked).
		per = first.len()
		for last := first; last.len() == per; {
			next, err := d.page(ctx, dir.Path, len(pages)+1)
			if err != nil {
				return nil, fmt.Errorf("disktop: list %s: %w", dir.Path, err)
			}
			if sameStart(next, last) {
				break // a server ignoring page would answer page 1 forever
			}
			pages, last = append(pages, next), next
		}
	}
	seen := map[string]bool{}
	var out []drivers.Object
	for _, p := range pages {
		for _, f := range p.Folders {
			o := drivers.Object{Name: f.Name, IsDir: true, ID: "d" + string(f.ID)}
			if !seen[o.ID] {
				seen[o.ID] = true
				out = append(out, o)
			}
		}
		for _, f := range p.Files {
			o := f.object()
			if !seen[o.ID] {
				seen[o.ID] = true
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// sameStart reports whether two pages begin with the same entry.
func sameStart(a, b listPage) bool {
	switch {
	case len(a.Folders) > 0 && len(b.Folders) > 0:
		return a.Folders[0].ID == b.Folders[0].ID
	case len(a.Files) > 0 && len(b.Files) > 0:
		return a.Files[0].ID == b.Files[0].ID && len(a.Folders) == len(b.Folders)
	}
	return false
}

// numericID returns the platform id of an object and whether it is a file.
func numericID(ref drivers.Ref) (string, bool, error) {
	if len(ref.ID) < 2 || (ref.ID[0] != 'f' && ref.ID[0] != 'd') || ref.ID == "d/" {
		return "", false, fmt.Errorf("disktop: %s has no id: %w", ref.Path, drivers.ErrNotFound)
	}
	return ref.ID[1:], ref.ID[0] == 'f', nil
}

// Link asks for a signed download URL (it expires; no secret in it).
func (d *Driver) Link(ctx context.Context, file drivers.Ref) (drivers.Link, error) {
	id, isFile, err := numericID(file)
	if err != nil || !isFile {
		return drivers.Link{}, fmt.Errorf("disktop: link %s: %w", file.Path, drivers.ErrNotFound)
	}
	var out struct {
		URL       string   `json:"url"`
		ExpiresIn flex.Int `json:"expires_in"`
	}
	asked := d.now()
	if err := d.call(ctx, http.MethodGet, d.url("/v1/files/"+url.PathEscape(id)+"/download", nil), nil, &out); err != nil {
		return drivers.Link{}, fmt.Errorf("disktop: link %s: %w", file.Path, err)
	}
	u, err := url.Parse(d.opts.APIBase + "/")
	if err == nil {
		u, err = u.Parse(out.URL) // a relative URL is taken as the API's
	}
	if out.URL == "" || err != nil {
		return drivers.Link{}, fmt.Errorf("disktop: link %s: no usable url in the answer: %w", file.Path, drivers.ErrUnavailable)
	}
	// Timed from before the request: the link expires no later than this.
	// Without expires_in its lifetime is not guessed: it serves the
	// request at hand only.
	return drivers.Link{URL: u.String(), Expires: asked.Add(time.Duration(max(out.ExpiresIn, 0)) * time.Second), ClientSafe: true}, nil
}

// Mkdir creates a folder.
func (d *Driver) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	var out struct {
		FolderID flex.ID `json:"folder_id"`
	}
	form := url.Values{"parent_path": {apiPath(parent.Path)}, "name": {name}}
	if err := d.call(ctx, http.MethodPost, d.url("/v1/files/folder", nil), form, &out); err != nil {
		return drivers.Object{}, fmt.Errorf("disktop: mkdir %s: %w", path.Join(parent.Path, name), err)
	}
	if out.FolderID == "" {
		// Tolerated: find the new folder by listing its parent.
		return d.find(ctx, parent, name, true)
	}
	return drivers.Object{Name: name, IsDir: true, ID: "d" + string(out.FolderID)}, nil
}

// manage runs one manage action on one object. A folder the bridge knows
// by its path alone gets its id from its parent's listing.
func (d *Driver) manage(ctx context.Context, action string, obj drivers.Ref, extra url.Values) error {
	if obj.ID == "" && obj.Path != "/" {
		o, err := drivers.FindInParent(ctx, obj.Path, obj.IsDir, d.List)
		if err != nil {
			return fmt.Errorf("disktop: %s %s: %w", action, obj.Path, err)
		}
		obj.ID = o.ID
	}
	id, isFile, err := numericID(obj)
	if err != nil {
		return err
	}
	form := url.Values{"action": {action}}
	if isFile {
		form.Set("file_ids[]", id)
	} else {
		form.Set("folder_ids[]", id)
	}
	for k, v := range extra {
		form[k] = v
	}
	if err := d.call(ctx, http.MethodPost, d.url("/v1/files/manage", nil), form, nil); err != nil {
		return fmt.Errorf("disktop: %s %s: %w", action, obj.Path, err)
	}
	return nil
}

func renamed(obj drivers.Ref, name string) drivers.Object {
	o := obj.Object
	o.Name = name
	return o
}

// Rename renames in place.
func (d *Driver) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	if err := d.manage(ctx, "rename", obj, url.Values{"new_name": {newName}}); err != nil {
		return drivers.Object{}, err
	}
	return renamed(obj, newName), nil
}

// Move moves obj into dstParent as newName: manage keeps names, so a new
// name is given first, in the source folder.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if path.Dir(obj.Path) == path.Clean(dstParent.Path) {
		return d.Rename(ctx, obj, newName) // no move at all
	}
	cur := obj
	if newName != obj.Name {
		step := newName
		o, err := d.Rename(ctx, cur, step)
		if errors.Is(err, drivers.ErrExist) {
			step = uploads.TempName(newName) // the new name is taken at the source
			o, err = d.Rename(ctx, cur, step)
		}
		if err != nil {
			return drivers.Object{}, err
		}
		cur = drivers.Ref{Path: path.Join(path.Dir(obj.Path), step), Object: o}
	}
	if err := d.manage(ctx, "move", cur, url.Values{"dest_path": {apiPath(dstParent.Path)}}); err != nil {
		if cur.Name != obj.Name { // the move failed: give the old name back
			if _, rerr := d.Rename(context.WithoutCancel(ctx), cur, obj.Name); rerr != nil {
				d.log.Error().Str("path", obj.Path).Str("renamed_to", cur.Name).Str("error", rerr.Error()).
					Msg("disktop: a failed move left the object under its new name")
			}
		}
		return drivers.Object{}, err
	}
	if cur.Name != newName {
		moved := drivers.Ref{Path: path.Join(dstParent.Path, cur.Name), Object: cur.Object}
		return d.Rename(ctx, moved, newName)
	}
	return renamed(cur, newName), nil
}

// Copy copies obj into dstParent as newName. manage copy keeps names, so a
// copy under a new name (which would collide with its source when both are
// in one folder) is made in a temporary folder, renamed there and moved into
// place; the temporary folder goes afterwards.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	if newName == obj.Name {
		return d.copyInto(ctx, obj, dstParent)
	}
	tmpName := uploads.TempName("copy")
	tmp, err := d.Mkdir(ctx, dstParent, tmpName)
	if err != nil {
		return drivers.Object{}, err
	}
	tmpRef := drivers.Ref{Path: path.Join(dstParent.Path, tmpName), Object: tmp}
	defer func() {
		if err := d.Remove(context.WithoutCancel(ctx), tmpRef); err != nil {
			d.log.Warn().Str("error", err.Error()).Str("path", tmpRef.Path).Msg("disktop: temporary copy folder left behind")
		}
	}()
	c, err := d.copyInto(ctx, obj, tmpRef)
	if err != nil {
		return drivers.Object{}, err
	}
	c, err = d.Rename(ctx, drivers.Ref{Path: path.Join(tmpRef.Path, c.Name), Object: c}, newName)
	if err != nil {
		return drivers.Object{}, err
	}
	if err := d.manage(ctx, "move", drivers.Ref{Path: path.Join(tmpRef.Path, newName), Object: c},
		url.Values{"dest_path": {apiPath(dstParent.Path)}}); err != nil {
		return drivers.Object{}, err
	}
	return c, nil
}

// copyInto copies obj into dstParent under its own name and finds the copy
// by listing dstParent (manage answers no ids).
func (d *Driver) copyInto(ctx context.Context, obj, dstParent drivers.Ref) (drivers.Object, error) {
	if err := d.manage(ctx, "copy", obj, url.Values{"dest_path": {apiPath(dstParent.Path)}}); err != nil {
		return drivers.Object{}, err
	}
	return d.find(ctx, dstParent, obj.Name, obj.IsDir)
}

// find lists dir for the entry called name, for answers that carry no id.
func (d *Driver) find(ctx context.Context, dir drivers.Ref, name string, isDir bool) (drivers.Object, error) {
	objs, err := d.List(ctx, dir)
	if err != nil {
		return drivers.Object{}, err
	}
	for _, o := range objs {
		if o.Name == name && o.IsDir == isDir {
			return o, nil
		}
	}
	return drivers.Object{}, fmt.Errorf("disktop: %s not found in %s after creating it: %w", name, dir.Path, drivers.ErrUnavailable)
}

// Remove deletes obj.
func (d *Driver) Remove(ctx context.Context, obj drivers.Ref) error {
	return d.manage(ctx, "delete", obj, nil)
}

// Quota reports the account's storage.
func (d *Driver) Quota(ctx context.Context) (drivers.Quota, error) {
	var out struct {
		Total int64 `json:"total_bytes"`
		Used  int64 `json:"used_bytes"`
		Free  int64 `json:"free_bytes"`
	}
	if err := d.call(ctx, http.MethodGet, d.url("/v1/user/quota", nil), nil, &out); err != nil {
		return drivers.Quota{}, fmt.Errorf("disktop: quota: %w", err)
	}
	return drivers.Quota{Total: out.Total, Used: out.Used, Free: out.Free}, nil
}

// Check tells /healthz whether the tokens still work.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.Quota(ctx)
	return err
}
