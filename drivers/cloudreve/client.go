package cloudreve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"

	"bridge/drivers"
	"bridge/drivers/pacer"
)

const cookieName = "cloudreve-session"

// loginBackoff is how long a refused login (wrong password, missing
// second factor) is answered from memory instead of asking the server
// again, so a broken mount does not hammer the login endpoint.
const loginBackoff = time.Minute

const (
	// maxAttempts is how often one call is made at most when its failures
	// are passing (429, a proxy's 5xx, a lost connection where allowed).
	maxAttempts = 4
	// maxRetryWait is the longest Retry-After waited out inside a call; a
	// longer one goes back to the bridge (503 with Retry-After).
	maxRetryWait = 30 * time.Second
)

// retrier is the shared pacer (drivers/pacer) with this driver's limits
// and its sleep (tests replace it; pacer.WithSleep on a context wins).
func (d *Driver) retrier() *pacer.Pacer {
	return &pacer.Pacer{Attempts: maxAttempts, MaxWait: maxRetryWait, Sleep: d.sleep, Gate: &d.gate}
}

// apiError is an answer whose JSON code is not 0.
type apiError struct {
	Code int
	Msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("code %d (%s)", e.Code, e.Msg) }

// httpError is an answer that is not the server's JSON: a proxy's 5xx or
// 429, or a OneDrive upload URL refusing a range.
type httpError struct {
	Status     int
	RetryAfter time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// transportError is a connection that failed or broke mid-answer. It keeps
// the cause without the URL, which may be a capability (upload URLs).
type transportError struct{ err error }

func (e *transportError) Error() string { return "connection failed: " + e.err.Error() }

// classify maps everything that can go wrong onto the contract's kinds;
// it is the one place that knows the server's codes. Errors that already
// carry a kind, and cancellations, pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if drivers.HasKind(err) {
		return err
	}
	var (
		ae *apiError
		he *httpError
	)
	switch {
	case errors.As(err, &ae):
		var kind error
		switch ae.Code {
		case 401, 203, 40005, 40020:
			kind = drivers.ErrAuthExpired
		case 409, 40004, 40054:
			kind = drivers.ErrExist
		case 404, 40016, 40044:
			kind = drivers.ErrNotFound
		case 403, 40006, 40007, 40053:
			kind = drivers.ErrPermission
		case 40049:
			kind = drivers.ErrTooLarge
		case 40051:
			kind = drivers.ErrQuota
		case 40052:
			kind = drivers.ErrInvalidName
		default: // 40001, 40011-40013, 40035, 5xxxx: nothing the client can fix
			kind = drivers.ErrUnavailable
		}
		return fmt.Errorf("%w: %w", err, kind)
	case errors.As(err, &he):
		switch {
		case he.Status == http.StatusTooManyRequests:
			return drivers.WithRetryAfter(fmt.Errorf("%w: %w", err, drivers.ErrRateLimited), he.RetryAfter)
		case he.Status == http.StatusRequestEntityTooLarge:
			return fmt.Errorf("%w: %w", err, drivers.ErrTooLarge)
		}
	}
	return fmt.Errorf("%w: %w", err, drivers.ErrUnavailable)
}

// request is one API call; path is below /api/v3.
type request struct {
	method, path string
	json         any               // JSON body
	raw          *io.SectionReader // raw body (chunks), re-read on a retry
	out          any               // where the envelope's data goes
}

// send makes one attempt with the given cookie and returns the cookies
// the server set.
func (d *Driver) send(ctx context.Context, cookie string, rq request) ([]*http.Cookie, error) {
	var body io.Reader
	if rq.json != nil {
		b, err := json.Marshal(rq.json)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, d.api+rq.path, body)
	if err != nil {
		return nil, err
	}
	if rq.json != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.raw != nil {
		rd := io.NewSectionReader(rq.raw, 0, rq.raw.Size())
		req.Body, req.ContentLength = io.NopCloser(rd), rq.raw.Size()
		if rq.raw.Size() == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, transportErr(ctx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, transportErr(ctx, err)
	}
	var env struct {
		Code *int            `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	jsonErr := json.Unmarshal(b, &env)
	if jsonErr != nil || env.Code == nil || (resp.StatusCode != http.StatusOK && *env.Code == 0) {
		// Not the server's envelope (or a non-200 that claims success).
		if resp.StatusCode != http.StatusOK {
			return nil, &httpError{Status: resp.StatusCode, RetryAfter: pacer.RetryAfter(resp)}
		}
		return nil, errors.New("answer is not the server's JSON")
	}
	// Tolerant: a non-200 status that carries the JSON envelope is read by
	// its code, as a 3.8 server's 200s are.
	if *env.Code != 0 {
		return resp.Cookies(), &apiError{Code: *env.Code, Msg: env.Msg}
	}
	if rq.out != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		if err := json.Unmarshal(env.Data, rq.out); err != nil {
			return nil, fmt.Errorf("unexpected answer: %v", err)
		}
	}
	return resp.Cookies(), nil
}

// transportErr drops the URL from a client error (it may be a capability)
// and keeps cancellations recognisable.
func transportErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &transportError{err: err}
}

func isCode(err error, code int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == code
}

// call sends rq with the session: a 401 logs in again (once for all
// callers that saw the same session fail) and the call is sent again at
// once, once. Passing failures go through the pacer (see retryOf).
func (d *Driver) call(ctx context.Context, rq request) error {
	relogged := false
	return d.retrier().Call(ctx, func(int) (pacer.Retry, error) {
		cookie, err := d.session(ctx)
		if err != nil {
			return pacer.Retry{}, err // the login has been retried already
		}
		_, err = d.send(ctx, cookie, rq)
		if isCode(err, 401) && !relogged {
			relogged = true
			d.log.Info().Str("call", rq.method+" "+callName(rq.path)).Msg("cloudreve: session refused; logging in again")
			if cookie, err = d.relogin(ctx, cookie); err != nil {
				return pacer.Retry{}, err
			}
			_, err = d.send(ctx, cookie, rq)
		}
		return retryOf(err, rq.resendable()), err
	})
}

// resendable reports whether rq may be sent again after its answer was
// lost: a GET, a chunk (the same bytes for the same index) or a download
// URL (a new signature). A lost answer to a move, copy, rename, delete,
// mkdir or upload-session creation may hide a success, and doing it again
// would fail or do it twice.
func (rq request) resendable() bool {
	return rq.method == http.MethodGet || rq.raw != nil ||
		(rq.method == http.MethodPut && strings.HasPrefix(rq.path, "/file/download/"))
}

// retryOf tells the pacer whether a failure is passing: a 429 or 5xx that
// is not the server's own answer (a proxy's, or the server's before it
// reads the request), with its Retry-After; a lost connection or a cut
// answer when the request may be sent again. The server's JSON codes are
// answers and are not retried.
func retryOf(err error, resendable bool) pacer.Retry {
	var (
		he *httpError
		te *transportError
	)
	switch {
	case errors.As(err, &he):
		return pacer.Retry{Again: pacer.Passing(he.Status), After: he.RetryAfter}
	case errors.As(err, &te):
		return pacer.Retry{Again: resendable}
	}
	return pacer.Retry{}
}

// callName is an API path without ids, for logs.
func callName(p string) string {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) > 2 {
		segs = segs[:2]
	}
	return "/" + strings.Join(segs, "/")
}

// session returns the current cookie, logging in when there is none.
func (d *Driver) session(ctx context.Context) (string, error) {
	return d.login.Current(ctx)
}

// relogin replaces the session stale (which the server refused), once for
// every caller (auth.Relogin).
func (d *Driver) relogin(ctx context.Context, stale string) (string, error) {
	return d.login.Renew(ctx, stale)
}

// runLogin is one login for every caller waiting for it. A passing failure
// (a 429 on /user/session, a proxy's 5xx, a lost connection: logging in
// twice only makes another session) is retried through the pacer within
// the minute the login may take; the whole login is made again, so a
// second factor is sent with the session it belongs to. A refusal is not
// retried.
func (d *Driver) runLogin(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var cookie string
	err := d.retrier().Call(ctx, func(int) (pacer.Retry, error) {
		var err error
		cookie, err = d.signIn(ctx)
		return retryOf(err, true), err
	})
	if err != nil {
		err = fmt.Errorf("login: %w", classify(err))
		d.log.Warn().Str("error", err.Error()).Msg("cloudreve: login failed")
		return "", err
	}
	d.saveSession(ctx, cookie)
	return cookie, nil
}

// signIn signs in with the configured credentials and, when the server
// asks for it (code 203), the TOTP code of totp_secret.
func (d *Driver) signIn(ctx context.Context) (string, error) {
	if d.opts.Username == "" || d.opts.Password == "" {
		return "", fmt.Errorf("the session was refused and no username and password are configured: %w", drivers.ErrAuthExpired)
	}
	body := map[string]string{"userName": d.opts.Username, "Password": d.opts.Password, "captchaCode": ""}
	cookie, err := d.loginStep(ctx, "", "/user/session", body)
	if isCode(err, 203) {
		if d.opts.TOTPSecret == "" {
			return "", fmt.Errorf("the account asks for a second factor and no totp_secret is configured: %w", drivers.ErrAuthExpired)
		}
		secret := strings.ToUpper(strings.ReplaceAll(d.opts.TOTPSecret, " ", ""))
		code, gerr := totp.GenerateCode(secret, d.now())
		if gerr != nil {
			return "", fmt.Errorf("totp_secret is not a base32 TOTP secret: %w", drivers.ErrAuthExpired)
		}
		cookie, err = d.loginStep(ctx, cookie, "/user/2fa", map[string]string{"code": code})
	}
	if err != nil {
		return "", err
	}
	if cookie == "" {
		return "", errors.New("the server set no session cookie")
	}
	return cookie, nil
}

// loginStep posts one login form and returns the session cookie the
// server set (or the one it was given, when it set none).
func (d *Driver) loginStep(ctx context.Context, cookie, p string, body any) (string, error) {
	set, err := d.send(ctx, cookie, request{method: http.MethodPost, path: p, json: body})
	for _, c := range set {
		if c.Name == cookieName && c.Value != "" {
			cookie = c.Value
		}
	}
	return cookie, err
}

// savedSession is the state file: the cookie and whose it is, so a
// changed base_url or username does not reuse another account's session.
type savedSession struct {
	BaseURL  string `json:"base_url"`
	Username string `json:"username"`
	Cookie   string `json:"cookie"`
}

// sessionRecord names the session in the mount's drivers.State.
const sessionRecord = "session.json"

// savedCookie is the cookie of a saved session of this account, "" for
// none or another account's.
func (d *Driver) savedCookie(b []byte) string {
	var s savedSession
	if b == nil || json.Unmarshal(b, &s) != nil || s.BaseURL != d.opts.BaseURL || s.Username != d.opts.Username {
		return ""
	}
	return s.Cookie
}

func (d *Driver) saveSession(ctx context.Context, cookie string) {
	b, err := json.Marshal(savedSession{BaseURL: d.opts.BaseURL, Username: d.opts.Username, Cookie: cookie})
	if err == nil {
		err = d.state.Save(ctx, sessionRecord, b)
	}
	if err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("cloudreve: session not saved; the next start logs in again")
	}
}
