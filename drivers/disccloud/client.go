package disccloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

const (
	// maxAttempts bounds one call's tries when its failures are passing.
	maxAttempts = 4
	// maxRetryWait is the longest Retry-After waited out inside a call.
	maxRetryWait = 30 * time.Second
	// authBackoff is how long a refused /authorize is answered from memory,
	// so a mount with wrong keys does not hammer the site.
	authBackoff = time.Minute
)

func (d *Driver) retrier() *pacer.Pacer {
	return &pacer.Pacer{Attempts: maxAttempts, MaxWait: maxRetryWait, Sleep: d.sleep, Gate: &d.gate}
}

// apiError is the site's own error answer (HTTP 200, _status "error").
type apiError struct{ Msg string }

func (e *apiError) Error() string { return fmt.Sprintf("the site answered %q", e.Msg) }

// httpError is an answer with a real HTTP error status: the site's rate
// limit, a proxy's 5xx, an unknown route.
type httpError struct {
	Status     int
	RetryAfter time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// transportError is a connection that failed or broke; it keeps no URL.
type transportError struct{ err error }

func (e *transportError) Error() string { return "connection failed: " + e.err.Error() }

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

// tokenRefused reports the site's answer to a dead or unknown token.
func tokenRefused(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	m := strings.ToLower(ae.Msg)
	return strings.Contains(m, "validate access_token") || strings.Contains(m, "reauthenticate") ||
		strings.Contains(m, "provide the access_token") || strings.Contains(m, "provide the account_id")
}

// classify maps a failure onto the contract's kinds; the site's messages
// are its only error codes. Errors that carry a kind pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || drivers.HasKind(err) {
		return err
	}
	var (
		ae *apiError
		he *httpError
	)
	switch {
	case tokenRefused(err):
		return fmt.Errorf("%w: %w", err, drivers.ErrAuthExpired)
	case errors.As(err, &ae):
		m := strings.ToLower(ae.Msg)
		var kind error
		switch {
		case strings.Contains(m, "could not authenticate"):
			kind = drivers.ErrAuthExpired
		case strings.Contains(m, "could not find"), strings.Contains(m, "not found"):
			kind = drivers.ErrNotFound
		case strings.Contains(m, "received was zero"):
			kind = drivers.ErrNotSupported
		case strings.Contains(m, "too large"), strings.Contains(m, "maximum upload"), strings.Contains(m, "filesize is"):
			kind = drivers.ErrTooLarge
		case strings.Contains(m, "storage"), strings.Contains(m, "quota"):
			kind = drivers.ErrQuota
		case strings.Contains(m, "request limit"):
			kind = drivers.ErrRateLimited
		default:
			kind = drivers.ErrUnavailable
		}
		return fmt.Errorf("%w: %w", err, kind)
	case errors.As(err, &he):
		switch he.Status {
		case http.StatusTooManyRequests:
			return drivers.WithRetryAfter(fmt.Errorf("%w: %w", err, drivers.ErrRateLimited), he.RetryAfter)
		case http.StatusRequestEntityTooLarge:
			return fmt.Errorf("%w: %w", err, drivers.ErrTooLarge)
		}
	}
	return fmt.Errorf("%w: %w", err, drivers.ErrUnavailable)
}

// retryOf tells the pacer whether a failure is passing: a 429 or 5xx
// status (the site's rate limit, a proxy's error), or a lost connection
// when the call may be sent twice. The site's own error answers are final.
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

// session is an access token with the account it belongs to.
type session struct{ token, account string }

// request is one API call; path is below api_base ("folder/listing").
type request struct {
	path   string
	params url.Values
	upload *multipartFile // a file upload (multipart) instead of a form
	data   any            // where the envelope's "data" goes
	whole  any            // where the whole envelope goes
}

// resendable reports whether a lost answer may be made up for by asking
// again: reads are; a create, edit, move, copy, delete, upload or URL
// import may have happened.
func (rq request) resendable() bool {
	switch rq.path {
	case "folder/listing", "folder/info", "file/info", "file/download", "account/info", "account/package",
		"file/url_upload_status":
		return true
	}
	return false
}

// envelope is what every answer of the site looks like.
type envelope struct {
	Status    string          `json:"_status"`
	OldStatus string          `json:"status"` // the document's sample error
	Response  json.RawMessage `json:"response"`
	Data      json.RawMessage `json:"data"`
}

// send makes one attempt with s.
func (d *Driver) send(ctx context.Context, s session, rq request) error {
	var (
		body   io.Reader
		ctype  string
		length int64
	)
	if rq.upload != nil {
		fields := [][2]string{{"access_token", s.token}, {"account_id", s.account}}
		for k, vs := range rq.params {
			fields = append(fields, [2]string{k, vs[0]})
		}
		ctype, length, body = rq.upload.body(fields)
	} else {
		form := url.Values{"access_token": {s.token}, "account_id": {s.account}}
		for k, vs := range rq.params {
			form[k] = vs
		}
		enc := form.Encode()
		ctype, length, body = "application/x-www-form-urlencoded", int64(len(enc)), strings.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.api+rq.path, body)
	if err != nil {
		return err
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return transportErr(ctx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return transportErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &httpError{Status: resp.StatusCode, RetryAfter: pacer.RetryAfter(resp)}
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return errors.New("the answer is not the site's JSON")
	}
	status := env.Status
	if status == "" {
		status = env.OldStatus
	}
	switch status {
	case "success":
	case "error":
		return &apiError{Msg: messageOf(env)}
	default:
		return errors.New("the answer is not the site's JSON")
	}
	if rq.whole != nil {
		if err := json.Unmarshal(b, rq.whole); err != nil {
			return fmt.Errorf("unexpected answer: %v", err)
		}
	}
	if rq.data != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		if err := json.Unmarshal(env.Data, rq.data); err != nil {
			return fmt.Errorf("unexpected answer: %v", err)
		}
	}
	return nil
}

// messageOf is an error answer's text: "response", or the error of the
// first entry of "data" (an upload refused by the account's limits).
func messageOf(env envelope) string {
	var msg string
	json.Unmarshal(env.Response, &msg)
	if msg != "" {
		return msg
	}
	var entries []struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(env.Data, &entries) == nil && len(entries) > 0 {
		return entries[0].Error
	}
	return "unknown error"
}

// call sends rq with the mount's token. A refused token is replaced (one
// /authorize for every caller that saw it refused) and the call sent again
// at once, once. Passing failures go through the pacer.
func (d *Driver) call(ctx context.Context, rq request) error {
	reauthorized := false
	return d.retrier().Call(ctx, func(int) (pacer.Retry, error) {
		s, err := d.session(ctx)
		if err != nil {
			return pacer.Retry{}, err // the authorization was retried already
		}
		err = d.send(ctx, s, rq)
		if tokenRefused(err) && !reauthorized {
			reauthorized = true
			d.log.Info().Str("call", rq.path).Msg("disccloud: token refused (idle expiry or another login); authorizing again")
			if s, err = d.reauthorize(ctx, s.token); err != nil {
				return pacer.Retry{}, err
			}
			err = d.send(ctx, s, rq)
		}
		return retryOf(err, rq.resendable()), err
	})
}

// session returns the current token, authorizing when there is none.
func (d *Driver) session(ctx context.Context) (session, error) {
	return d.auth.Current(ctx)
}

// reauthorize replaces the token stale, which the site refused, once for
// every caller (auth.Relogin): a second /authorize would log the first
// one's callers out again, so there is never more than one at a time.
func (d *Driver) reauthorize(ctx context.Context, stale string) (session, error) {
	return d.auth.Renew(ctx, stale)
}

// runAuthorize is one /authorize for every caller waiting for it. Passing
// failures (the site's 429, a proxy's 5xx, a lost connection) are retried
// through the pacer within a minute; a refusal is remembered for
// authBackoff.
func (d *Driver) runAuthorize(ctx context.Context) (session, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var s session
	err := d.retrier().Call(ctx, func(int) (pacer.Retry, error) {
		var err error
		s, err = d.authorize(ctx)
		return retryOf(err, true), err
	})
	if err != nil {
		err = fmt.Errorf("disccloud: authorize: %w", classify(err))
		d.log.Warn().Str("error", err.Error()).Msg("disccloud: authorize failed")
		return session{}, err
	}
	d.saveSession(ctx, s)
	return s, nil
}

// authorize asks for a token with the API keys (or the account login).
func (d *Driver) authorize(ctx context.Context) (session, error) {
	form := url.Values{"key1": {d.opts.Key1}, "key2": {d.opts.Key2}}
	if d.opts.Key1 == "" {
		form = url.Values{"username": {d.opts.Username}, "password": {d.opts.Password}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.api+"authorize", strings.NewReader(form.Encode()))
	if err != nil {
		return session{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.client.Do(req)
	if err != nil {
		return session{}, transportErr(ctx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return session{}, transportErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return session{}, &httpError{Status: resp.StatusCode, RetryAfter: pacer.RetryAfter(resp)}
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return session{}, errors.New("the answer is not the site's JSON")
	}
	if env.Status == "error" || env.OldStatus == "error" {
		// Any refusal of /authorize is about the credentials.
		return session{}, fmt.Errorf("%w: %w", &apiError{Msg: messageOf(env)}, drivers.ErrAuthExpired)
	}
	var data struct {
		Token   string  `json:"access_token"`
		Account flex.ID `json:"account_id"`
	}
	if json.Unmarshal(env.Data, &data) != nil || data.Token == "" || data.Account == "" {
		return session{}, errors.New("no access_token in the answer of /authorize")
	}
	return session{token: data.Token, account: string(data.Account)}, nil
}

// savedSession is the state file: the token and whose it is, so that a
// changed api_base or key does not reuse another account's token.
type savedSession struct {
	APIBase string `json:"api_base"`
	Who     string `json:"who"`
	Token   string `json:"access_token"`
	Account string `json:"account_id"`
}

// who identifies the configured credentials without keeping them.
func (d *Driver) who() string {
	sum := sha256.Sum256([]byte(d.opts.Key1 + "\x00" + d.opts.Username))
	return hex.EncodeToString(sum[:8])
}

// sessionRecord names the session in the mount's drivers.State.
const sessionRecord = "session.json"

// savedSessionOf is a saved session of this account, the zero session for
// none or another account's.
func (d *Driver) savedSessionOf(b []byte) session {
	var s savedSession
	if b == nil || json.Unmarshal(b, &s) != nil || s.APIBase != d.api || s.Who != d.who() || s.Token == "" || s.Account == "" {
		return session{}
	}
	return session{token: s.Token, account: s.Account}
}

func (d *Driver) saveSession(ctx context.Context, s session) {
	b, err := json.Marshal(savedSession{APIBase: d.api, Who: d.who(), Token: s.token, Account: s.account})
	if err == nil {
		err = d.state.Save(ctx, sessionRecord, b)
	}
	if err != nil {
		d.log.Warn().Str("error", err.Error()).Msg("disccloud: token not saved; the next start authorizes again")
	}
}
