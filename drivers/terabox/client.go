package terabox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"bridge/auth"
	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

// host is which of the user's hosts a call goes to.
type host int

const (
	apiHost host = iota
	uploadHost
)

// request is one API call, made anew for each attempt.
type request struct {
	op     string // what the call does, for errors ("list /a")
	host   host
	method string
	path   string
	query  url.Values // access_tokens is added
	form   url.Values // a form body
	// body, when set, makes a fresh body for each attempt, with its length
	// and content type.
	body func() (io.Reader, int64, string)
	// resend: a lost connection may be retried (the call can be made
	// twice without harm).
	resend bool
	// check, when set, judges a successful answer; an error it returns is
	// retried like a passing failure.
	check func() error
	// header, when set, sees the headers of each HTTP 200 answer (the
	// cookie share/verify sets).
	header func(http.Header)
}

// Errnos the driver acts on (NOTES.md and the document).
const (
	errnoParams         = 2
	errnoBadName        = -7
	errnoExists         = -8
	errnoNotFound       = -9
	errnoNoSpace        = -10
	errnoRateLimited    = 31034
	errnoTooFrequent    = 300001
	errnoInternal       = 500001
	errnoNoUpload       = 31190
	errnoPending        = 400001
	errnoCode           = 100002
	errnoClient         = 100001
	errnoRefreshInvalid = 200004
	errnoRefreshExpired = 200005
)

// tokenErrnos are answers saying the access token is dead.
var tokenErrnos = map[int]bool{-6: true, 110: true, 111: true, 200002: true, 200003: true}

// apiError is an error answer: an HTTP status, an errno (0 when none).
type apiError struct {
	op     string
	Status int
	Errno  int
	Msg    string
	json   bool // the answer was JSON (not a plain proxy or 404 page)
	retry  time.Duration
}

func (e *apiError) Error() string {
	msg := e.Msg
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return fmt.Sprintf("terabox: %s: HTTP %d errno %d %q", e.op, e.Status, e.Errno, msg)
}

func (e *apiError) tokenDead() bool { return tokenErrnos[e.Errno] }

// wrongHost is a plain 404: the host does not serve the call (the user's
// domains moved).
func (e *apiError) wrongHost() bool { return e.Status == http.StatusNotFound && !e.json }

func (e *apiError) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests || e.Errno == errnoRateLimited || e.Errno == errnoTooFrequent
}

// passing reports a failure that may go away by itself.
func (e *apiError) passing() bool {
	return e.rateLimited() || pacer.Passing(e.Status) || e.Errno == errnoInternal
}

// errConnLost is a request whose answer never came whole.
var errConnLost = errors.New("connection lost")

// classify maps answers onto the contract's error kinds: the one place
// that knows them.
func classify(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		switch {
		case errors.Is(err, auth.ErrNeedsLogin):
			return fmt.Errorf("%w: %w", err, drivers.ErrAuthExpired)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), drivers.HasKind(err):
			return err
		}
		return fmt.Errorf("%w: %w", err, drivers.ErrUnavailable)
	}
	var kind error
	switch {
	case ae.tokenDead():
		kind = drivers.ErrAuthExpired
	case ae.Errno == errnoBadName:
		kind = drivers.ErrInvalidName
	case ae.Errno == errnoExists:
		kind = drivers.ErrExist
	case ae.Errno == errnoNotFound:
		kind = drivers.ErrNotFound
	case ae.Errno == errnoNoSpace:
		kind = drivers.ErrQuota
	case ae.rateLimited():
		kind = drivers.ErrRateLimited
		if ae.retry > 0 {
			return drivers.WithRetryAfter(fmt.Errorf("%w: %w", ae, kind), ae.retry)
		}
	default:
		kind = drivers.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ae, kind)
}

// isErrno reports whether err is an answer with errno.
func isErrno(err error, errno int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Errno == errno
}

// do makes an API call with the access token and decodes the answer into
// out. Retries go through the shared pacer: 429, rate-limit errnos and
// passing 5xx after their Retry-After or a backoff; a lost connection only
// when rq.resend. A dead access token is answered by one refresh and an
// immediate resend, a host that does not serve the call (its domains
// moved) by asking tokeninfo again; neither counts as an attempt.
func (d *Driver) do(ctx context.Context, rq request, out any) error {
	refreshed, moved := false, false
	p := &pacer.Pacer{Attempts: maxAttempts, MaxWait: maxRetryWait, Sleep: d.sleep, Gate: &d.gate}
	return p.Call(ctx, func(int) (pacer.Retry, error) {
		for {
			tok, err := d.tokens.Token(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return pacer.Retry{}, ctx.Err()
				}
				return pacer.Retry{}, classify(err) // the store has retried already
			}
			h, err := d.hostFor(ctx, rq.host, tok.AccessToken)
			if err == nil {
				err = d.send(ctx, rq, h, tok.AccessToken, out)
			}
			var ae *apiError
			switch {
			case err == nil && rq.check != nil:
				if err := rq.check(); err != nil {
					return pacer.Retry{Again: true}, err
				}
				return pacer.Retry{}, nil
			case err == nil:
				return pacer.Retry{}, nil
			case ctx.Err() != nil:
				return pacer.Retry{}, ctx.Err()
			case errors.Is(err, errConnLost):
				return pacer.Retry{Again: rq.resend}, err
			case errors.As(err, &ae) && ae.tokenDead() && !refreshed:
				d.tokens.Rejected(tok.AccessToken)
				refreshed = true
				continue
			case errors.As(err, &ae) && ae.wrongHost() && !moved:
				d.forgetDomains()
				moved = true
				continue
			case errors.As(err, &ae):
				return pacer.Retry{Again: ae.passing(), After: ae.retry}, classify(err)
			}
			return pacer.Retry{}, classify(err)
		}
	})
}

// send makes one request. Its errors name the call, never the URL (which
// holds the access token).
func (d *Driver) send(ctx context.Context, rq request, h, access string, out any) error {
	q := url.Values{}
	for k, v := range rq.query {
		q[k] = v
	}
	q.Set("access_tokens", access)
	var body io.Reader
	var length int64 = -1
	var ctype string
	switch {
	case rq.form != nil:
		enc := rq.form.Encode()
		body, length, ctype = strings.NewReader(enc), int64(len(enc)), "application/x-www-form-urlencoded"
	case rq.body != nil:
		body, length, ctype = rq.body()
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, h+rq.path+"?"+q.Encode(), body)
	if err != nil {
		return fmt.Errorf("terabox: %s: cannot make the request: %w", rq.op, drivers.ErrUnavailable)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("terabox: %s: %w: %w", rq.op, errConnLost, drivers.ErrUnavailable)
	}
	if rq.header != nil && resp.StatusCode == http.StatusOK {
		rq.header(resp.Header)
	}
	return decode(resp, rq.op, out)
}

// decode reads an answer: HTTP 200 with errno 0 (or no errno) is success;
// anything else is an *apiError. out gets the whole JSON body.
func decode(resp *http.Response, op string, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("terabox: %s: the answer broke off: %w: %w", op, errConnLost, drivers.ErrUnavailable)
	}
	var env struct {
		Errno     *flex.Int `json:"errno"`
		ErrorCode *flex.Int `json:"error_code"`
		ShowMsg   string    `json:"show_msg"`
		Errmsg    string    `json:"errmsg"`
		ErrorMsg  string    `json:"error_msg"`
	}
	jerr := json.Unmarshal(b, &env)
	code := 0
	switch {
	case env.Errno != nil:
		code = int(*env.Errno)
	case env.ErrorCode != nil:
		code = int(*env.ErrorCode)
	}
	if resp.StatusCode != http.StatusOK || jerr != nil || code != 0 {
		ae := &apiError{op: op, Status: resp.StatusCode, Errno: code, json: jerr == nil, retry: pacer.RetryAfter(resp)}
		for _, m := range []string{env.ShowMsg, env.Errmsg, env.ErrorMsg} {
			if ae.Msg == "" {
				ae.Msg = m
			}
		}
		if jerr != nil && resp.StatusCode == http.StatusOK {
			ae.Status, ae.Msg = http.StatusBadGateway, "the answer is not JSON"
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("terabox: %s: unexpected answer: %v: %w", op, err, drivers.ErrUnavailable)
	}
	return nil
}

// hostFor is the scheme and host of a call: tokeninfo's api_domain or
// upload_domain, asked once for all callers and kept for domainTTL.
func (d *Driver) hostFor(ctx context.Context, h host, access string) (string, error) {
	d.domMu.Lock()
	defer d.domMu.Unlock()
	if d.dom.api == "" || !d.now().Before(d.dom.until) {
		dom, err := d.tokenInfo(ctx, access)
		if err != nil {
			return "", err
		}
		dom.until = d.now().Add(domainTTL)
		d.dom = dom
	}
	if h == uploadHost {
		return d.dom.upload, nil
	}
	return d.dom.api, nil
}

// forgetDomains makes the next call ask tokeninfo again.
func (d *Driver) forgetDomains() {
	d.domMu.Lock()
	d.dom = domains{}
	d.domMu.Unlock()
}

// tokenInfo asks /oauth/tokeninfo for the user's domains, as scheme://host
// (a bare domain takes base_url's scheme; a missing upload domain is the
// API's, a missing API domain base_url's host), and who the token is of.
func (d *Driver) tokenInfo(ctx context.Context, access string) (domains, error) {
	var out struct {
		Data struct {
			APIDomain    string  `json:"api_domain"`
			UploadDomain string  `json:"upload_domain"`
			ClientID     string  `json:"client_id"`
			UserID       flex.ID `json:"user_id"`
		} `json:"data"`
	}
	err := d.oauthCall(ctx, "tokeninfo", http.MethodPost, "/oauth/tokeninfo", url.Values{"access_token": {access}}, &out)
	if err != nil {
		return domains{}, err
	}
	dom := domains{api: d.hostURL(out.Data.APIDomain), clientID: out.Data.ClientID, user: string(out.Data.UserID)}
	if out.Data.APIDomain == "" {
		dom.api = d.base.Scheme + "://" + d.base.Host
	}
	dom.upload = dom.api
	if out.Data.UploadDomain != "" {
		dom.upload = d.hostURL(out.Data.UploadDomain)
	}
	return dom, nil
}

// hostURL turns a domain into scheme://host.
func (d *Driver) hostURL(domain string) string {
	domain = strings.TrimSuffix(domain, "/")
	if strings.Contains(domain, "://") {
		return domain
	}
	return d.base.Scheme + "://" + domain
}

// oauthCall calls an endpoint of base_url (no access_tokens) with the
// pacer: rate limits, passing 5xx and lost connections are tried again
// (these calls change nothing, or are polls).
func (d *Driver) oauthCall(ctx context.Context, op, method, p string, form url.Values, out any) error {
	pc := &pacer.Pacer{Attempts: maxAttempts, MaxWait: maxRetryWait, Sleep: d.sleep, Gate: &d.gate}
	return pc.Call(ctx, func(int) (pacer.Retry, error) {
		var body io.Reader
		u := d.opts.BaseURL + p
		if method == http.MethodGet {
			u += "?" + form.Encode()
		} else {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return pacer.Retry{}, fmt.Errorf("terabox: %s: cannot make the request: %w", op, drivers.ErrUnavailable)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := d.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return pacer.Retry{}, ctx.Err()
			}
			return pacer.Retry{Again: true}, fmt.Errorf("terabox: %s: %w: %w", op, errConnLost, drivers.ErrUnavailable)
		}
		err = decode(resp, op, out)
		var ae *apiError
		switch {
		case err == nil:
			return pacer.Retry{}, nil
		case errors.Is(err, errConnLost):
			return pacer.Retry{Again: true}, err
		case errors.As(err, &ae) && ae.tokenDead():
			return pacer.Retry{}, err // the caller refreshes
		case errors.As(err, &ae):
			return pacer.Retry{Again: ae.passing(), After: ae.retry}, err
		}
		return pacer.Retry{}, err
	})
}
