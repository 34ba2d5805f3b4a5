package gokuai

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

// Error codes the driver tells apart (the HTTP status says the rest).
const (
	codeBadName       = 40002
	codeBadToken      = 40101
	codeTokenExpired  = 40102
	codeBadSign       = 40103
	codeStaleDateline = 40104
	codeQuota         = 40302
	codeExists        = 40901
	codeOffset        = 40902
)

// apiError is an answer that is not a success: {error_code, error_msg}
// with a non-200 status (or a proxy's answer without them).
type apiError struct {
	Status int
	Code   int      `json:"error_code"`
	Msg    string   `json:"error_msg"`
	Expect flex.Int `json:"expect"` // a 409's offset
	hasExp bool
	retry  time.Duration
	date   time.Time // the server's Date header
}

func (e *apiError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("gokuai: HTTP %d error_code %d: %s", e.Status, e.Code, e.Msg)
	}
	return fmt.Sprintf("gokuai: HTTP %d", e.Status)
}

// tokenDead: the access token was refused (unknown or expired).
func (e *apiError) tokenDead() bool {
	return e.Status == http.StatusUnauthorized && (e.Code == codeBadToken || e.Code == codeTokenExpired || e.Code == 0)
}

// signRefused: the signature or the dateline was refused; resending the
// same call cannot help.
func (e *apiError) signRefused() bool { return e.Code == codeBadSign || e.Code == codeStaleDateline }

// classify maps answers onto the contract's kinds: the one place that
// knows the codes. Errors already carrying a kind pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || drivers.HasKind(err) {
		return err
	}
	if errors.Is(err, auth.ErrNeedsLogin) {
		return fmt.Errorf("%w: %w", err, drivers.ErrAuthExpired)
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%w: %w", err, drivers.ErrUnavailable)
	}
	var kind error
	switch {
	case ae.Code == codeBadName:
		kind = drivers.ErrInvalidName
	case ae.Code == codeQuota || ae.Status == http.StatusInsufficientStorage:
		kind = drivers.ErrQuota
	case ae.Code == codeOffset:
		kind = drivers.ErrUnavailable
	case ae.Status == http.StatusNotFound:
		kind = drivers.ErrNotFound
	case ae.Status == http.StatusConflict:
		kind = drivers.ErrExist
	case ae.Status == http.StatusForbidden:
		kind = drivers.ErrPermission
	case ae.Status == http.StatusUnauthorized:
		kind = drivers.ErrAuthExpired
	case ae.Status == http.StatusRequestEntityTooLarge:
		kind = drivers.ErrTooLarge
	case ae.Status == http.StatusTooManyRequests:
		kind = drivers.ErrRateLimited
		if ae.retry > 0 {
			return drivers.WithRetryAfter(fmt.Errorf("%w: %w", ae, kind), ae.retry)
		}
	default:
		kind = drivers.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ae, kind)
}

// errConnLost is a request whose answer never came whole: it may or may
// not have been carried out.
var errConnLost = errors.New("connection lost")

// readAnswer reads an answer's body; a status other than 200 (and 202
// where ok202) is an *apiError.
func readAnswer(resp *http.Response, ok202 bool) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, errConnLost
	}
	if resp.StatusCode == http.StatusOK || (ok202 && resp.StatusCode == http.StatusAccepted) {
		return b, nil
	}
	ae := &apiError{Status: resp.StatusCode}
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) == nil {
		json.Unmarshal(b, ae)
		_, ae.hasExp = raw["expect"]
	}
	ae.Status = resp.StatusCode
	ae.retry = pacer.RetryAfter(resp)
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		ae.date = t
	}
	return nil, ae
}

// decodeInto reads a JSON answer into out (an empty body is no answer).
func decodeInto(b []byte, out any) error {
	if out == nil || len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("gokuai: unexpected answer: %v: %w", err, drivers.ErrUnavailable)
	}
	return nil
}

// retrier is the shared pacer with this driver's limits.
func (d *Driver) retrier() *pacer.Pacer {
	return &pacer.Pacer{Attempts: maxAttempts, MaxWait: maxRetryWait, Sleep: d.sleep, Gate: &d.gate}
}

// do runs one provider call through the pacer. send makes one attempt
// with an access token and returns nil, errConnLost, an *apiError or
// another error. A 401 for a dead token refreshes it once (for all
// callers: the token store shares the refresh) and resends at once; 429
// and passing 5xx are retried with backoff; a lost connection only when
// resend (the call can be made twice); a refused signature never.
func (d *Driver) do(ctx context.Context, what string, resend bool, send func(access string) error) error {
	refreshed := false
	err := d.retrier().Call(ctx, func(int) (pacer.Retry, error) {
		for {
			tok, err := d.accessToken(ctx)
			if err != nil {
				return pacer.Retry{}, err
			}
			err = send(tok)
			var ae *apiError
			switch {
			case err == nil:
				d.signWarned.Store(0)
				return pacer.Retry{}, nil
			case errors.Is(err, errConnLost):
				if ctx.Err() != nil {
					return pacer.Retry{}, ctx.Err()
				}
				return pacer.Retry{Again: resend}, fmt.Errorf("gokuai: %s: %w: %w", what, errConnLost, drivers.ErrUnavailable)
			case errors.As(err, &ae) && ae.signRefused():
				return pacer.Retry{}, d.signatureError(ae)
			case errors.As(err, &ae) && ae.tokenDead() && !refreshed:
				d.tokens.Rejected(tok)
				refreshed = true
				continue
			case errors.As(err, &ae):
				return pacer.Retry{Again: pacer.Passing(ae.Status), After: ae.retry}, classify(err)
			}
			return pacer.Retry{}, classify(err)
		}
	})
	return err
}

// request is one m-api call.
type request struct {
	method string     // GET or POST
	path   string     // e.g. "/m-api/1/file/ls"
	params url.Values // signed (token, dateline and sign are added)
	extra  url.Values // sent, not signed: filehash, filesize
	out    any
	// resend: the call may be made twice (GETs always may).
	resend bool
}

// call makes an m-api call: signed parameters in the query (GET) or the
// form body (POST), the JSON answer into out.
func (d *Driver) call(ctx context.Context, rq request) error {
	what := rq.path[strings.LastIndex(rq.path, "/")+1:]
	return d.do(ctx, what, rq.method == http.MethodGet || rq.resend, func(access string) error {
		p := url.Values{}
		for k, v := range rq.params {
			p[k] = v
		}
		p.Set("token", access)
		vals := signed(d.opts.ClientSecret, p, d.now().Unix(), rq.extra)
		var req *http.Request
		var err error
		if rq.method == http.MethodGet {
			req, err = http.NewRequestWithContext(ctx, rq.method, d.base+rq.path+"?"+vals.Encode(), nil)
		} else {
			req, err = http.NewRequestWithContext(ctx, rq.method, d.base+rq.path, strings.NewReader(vals.Encode()))
			if req != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		}
		if err != nil {
			return err
		}
		resp, err := d.client.Do(req)
		if err != nil {
			return errConnLost
		}
		b, err := readAnswer(resp, false)
		if err != nil {
			return err
		}
		return decodeInto(b, rq.out)
	})
}
