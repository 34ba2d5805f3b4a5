package gokuai

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

	"golang.org/x/oauth2"

	"bridge/auth"
	"bridge/drivers"
	"bridge/drivers/flex"
	"bridge/drivers/pacer"
)

// tokenPath is the token endpoint (password and refresh_token grants).
const tokenPath = "/m-api/oauth2/token2"

// tokenSigner is the transport of the token store's client: x/oauth2
// sends a standard refresh_token grant (client_id, grant_type,
// refresh_token) and this adds the dateline and the signature the token
// endpoint wants. So the store's one-refresh-for-all, rotation written to
// disk before use and retries apply unchanged. A refused signature is
// reported as for any call.
type tokenSigner struct {
	d    *Driver
	next http.RoundTripper
}

func (t *tokenSigner) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Method != http.MethodPost {
		return t.next.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, err
	}
	form.Del("client_secret") // it signs; it is never sent
	body := signed(t.d.opts.ClientSecret, form, t.d.now().Unix(), nil).Encode()
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = nil
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusOK {
		return resp, err
	}
	// Look for a refused signature, and hand the body on unchanged.
	ans, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(ans))
	if rerr == nil {
		var e oauthError
		if json.Unmarshal(ans, &e) == nil {
			if ae := e.signProblem(resp); ae != nil {
				t.d.signatureError(ae)
			}
		}
	}
	return resp, nil
}

// oauthError is the token endpoint's error answer.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// signProblem turns a refused signature or dateline into the apiError
// the other calls give for them, or nil.
func (e oauthError) signProblem(resp *http.Response) *apiError {
	ae := &apiError{Status: resp.StatusCode, Msg: e.Error}
	switch e.Error {
	case "invalid_sign", "invalid_signature", "sign_error":
		ae.Code = codeBadSign
	case "invalid_dateline", "dateline_expired":
		ae.Code = codeStaleDateline
	default:
		return nil
	}
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		ae.date = t
	}
	return ae
}

// Bits of signWarned.
const (
	warnedSecret = 1 << iota
	warnedClock
)

// signatureError explains a refused signature (a wrong client_secret) or
// dateline (this machine's clock is off), logging it once until a call
// succeeds again; it is an ErrAuthExpired: only the configuration or the
// clock can fix it.
func (d *Driver) signatureError(ae *apiError) error {
	var msg string
	bit := int32(warnedSecret)
	if ae.Code == codeStaleDateline {
		bit = warnedClock
		msg = "the server refused the request's dateline: this machine's clock is off"
		if !ae.date.IsZero() {
			msg += fmt.Sprintf(" (by about %s against the server's)", d.now().Sub(ae.date).Round(time.Second))
		}
		msg += "; set it right (NTP)"
	} else {
		msg = "the server refused the request's signature: option client_secret is wrong (or does not belong to client_id)"
		if !ae.date.IsZero() {
			if skew := d.now().Sub(ae.date); skew > 5*time.Minute || skew < -5*time.Minute {
				msg += fmt.Sprintf("; this machine's clock is also off by %s", skew.Round(time.Second))
			}
		}
	}
	if old := d.signWarned.Load(); old&bit == 0 && d.signWarned.CompareAndSwap(old, old|bit) {
		d.log.Error().Str("mount", d.mount).Int("error_code", ae.Code).Msg("gokuai: " + msg)
	}
	return fmt.Errorf("gokuai: %s: %w", msg, drivers.ErrAuthExpired)
}

// accessToken returns a valid access token: the store's (refreshed once
// for all callers when due), or, when the store needs a login and a
// password is configured, a fresh password login's.
func (d *Driver) accessToken(ctx context.Context) (string, error) {
	tok, err := d.tokens.Token(ctx)
	if errors.Is(err, auth.ErrNeedsLogin) && d.opts.Password != "" {
		if err := d.relogin(ctx); err != nil {
			return "", err
		}
		tok, err = d.tokens.Token(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", classify(err)
	}
	return tok.AccessToken, nil
}

// relogin logs in with the configured password, once for all callers
// (those waiting find the store served when their turn comes), and once
// for all bridge instances sharing the tokens (TokenStore.LoginOnce). A
// refused login is answered from memory for loginBackoff.
func (d *Driver) relogin(ctx context.Context) error {
	d.loginMu.Lock()
	defer d.loginMu.Unlock()
	if !d.tokens.NeedsLogin() {
		return nil
	}
	if d.loginErr != nil && d.now().Before(d.loginRetry) {
		return d.loginErr
	}
	var loggedIn bool
	err := d.tokens.LoginOnce(ctx, func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := d.passwordLogin(ctx, d.opts.Username, d.opts.Password)
		loggedIn = err == nil
		return tok, err
	})
	switch {
	case err == nil:
		d.loginErr = nil
		return nil
	case loggedIn:
		return fmt.Errorf("gokuai: login: %w: %w", err, drivers.ErrUnavailable)
	case errors.Is(err, drivers.ErrAuthExpired):
		d.loginErr, d.loginRetry = err, d.now().Add(loginBackoff)
	}
	return err
}

// passwordLogin trades a username and password for a token pair
// (grant_type=password; the password goes as its md5). 429, passing 5xx
// and lost connections are retried by the pacer; a refusal is
// ErrAuthExpired. Nothing of the password reaches an error or a log.
func (d *Driver) passwordLogin(ctx context.Context, username, password string) (*oauth2.Token, error) {
	var tok *oauth2.Token
	err := d.retrier().Call(ctx, func(int) (pacer.Retry, error) {
		form := url.Values{"client_id": {d.opts.ClientID}, "grant_type": {"password"},
			"username": {username}, "password": {md5hex(password)}}
		body := signed(d.opts.ClientSecret, form, d.now().Unix(), nil).Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+tokenPath, strings.NewReader(body))
		if err != nil {
			return pacer.Retry{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := d.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return pacer.Retry{}, ctx.Err()
			}
			return pacer.Retry{Again: true}, fmt.Errorf("gokuai: login: %w: %w", errConnLost, drivers.ErrUnavailable)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return pacer.Retry{Again: true}, fmt.Errorf("gokuai: login: %w: %w", errConnLost, drivers.ErrUnavailable)
		}
		var a struct {
			oauthError
			AccessToken  string   `json:"access_token"`
			RefreshToken string   `json:"refresh_token"`
			ExpiresIn    flex.Int `json:"expires_in"`
		}
		jerr := json.Unmarshal(b, &a)
		switch {
		case resp.StatusCode == http.StatusOK && jerr == nil && a.AccessToken != "":
			tok = &oauth2.Token{AccessToken: a.AccessToken, RefreshToken: a.RefreshToken, ExpiresIn: int64(a.ExpiresIn)}
			d.signWarned.Store(0)
			return pacer.Retry{}, nil
		case a.oauthError.signProblem(resp) != nil:
			return pacer.Retry{}, d.signatureError(a.oauthError.signProblem(resp))
		case pacer.Passing(resp.StatusCode):
			err := fmt.Errorf("gokuai: login: the token endpoint answered %s: %w", resp.Status, drivers.ErrUnavailable)
			return pacer.Retry{Again: true, After: pacer.RetryAfter(resp)}, err
		case a.Error != "":
			return pacer.Retry{}, fmt.Errorf("gokuai: login refused (%s: %s): %w", a.Error, a.Description, drivers.ErrAuthExpired)
		}
		return pacer.Retry{}, fmt.Errorf("gokuai: login: the token endpoint answered %s: %w", resp.Status, drivers.ErrUnavailable)
	})
	if err != nil {
		return nil, err
	}
	return tok, nil
}
