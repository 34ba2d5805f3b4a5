package terabox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// Share errnos (section 3.5): a wrong extraction code, and "external link
// error" (the link does not exist, expired or was cancelled).
const (
	errnoShareCode = -12
	errnoShareLink = 105
)

// cookieName is the cookie share/verify sets to the session key.
const cookieName = "BOXCLND"

// shareSession is a verified link's session: its key, and the ids the
// calls on it need. It is kept in the state folder (a secret: mode 0600).
type shareSession struct {
	Surl     string    `json:"surl"`
	Sekey    string    `json:"sekey"`
	Randsk   string    `json:"randsk"`
	ShareID  string    `json:"shareid"`
	UK       string    `json:"uk"` // the owner's
	Verified time.Time `json:"verified"`
}

// loadSession reads the state folder's session of the link surl; another
// link's, or none, is no session.
func loadSession(records drivers.State, surl string) (shareSession, bool) {
	b, err := records.Load(context.Background(), shareFile)
	if err != nil || b == nil {
		return shareSession{}, false
	}
	var s shareSession
	if json.Unmarshal(b, &s) != nil || s.Surl != surl || s.Sekey == "" || s.ShareID == "" || s.UK == "" {
		return shareSession{}, false
	}
	return s, true
}

// linkRefused is the provider's refusal of the link itself: no call on it
// can succeed until the link or its code changes.
type linkRefused struct{ err error }

func (e *linkRefused) Error() string { return e.err.Error() }
func (e *linkRefused) Unwrap() error { return e.err }

// refusal turns a share call's errno into the link's refusal, or nil.
func refusal(err error) *linkRefused {
	switch {
	case isErrno(err, errnoShareCode):
		return &linkRefused{fmt.Errorf("the extraction code (option share_password) is wrong (errno %d): %w", errnoShareCode,
			drivers.WithReason(drivers.ErrPermission, "the share link's extraction code is wrong"))}
	case isErrno(err, errnoShareLink):
		return &linkRefused{fmt.Errorf("the link does not exist any more: expired, cancelled by its owner or its files deleted (errno %d): %w",
			errnoShareLink, drivers.WithReason(drivers.ErrNotFound, "the share link has expired or was cancelled"))}
	}
	return nil
}

// session is the link's current session, verified first when there is
// none or when stale names the one a call found refused (a newer one, made
// by another caller meanwhile, is used as it is). A remembered refusal is
// answered at once until its holdoff has passed.
func (s *Share) session(ctx context.Context, stale int) (shareSession, int, error) {
	if sess, gen, ok, err := s.current(stale); ok {
		return sess, gen, err
	}
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	if sess, gen, ok, err := s.current(stale); ok {
		return sess, gen, err
	}
	s.mu.Lock()
	prev := s.sess
	s.mu.Unlock()
	sess, err := s.verify(ctx, prev)
	s.mu.Lock()
	defer s.mu.Unlock()
	var lr *linkRefused
	switch {
	case errors.As(err, &lr):
		s.refuseLocked(lr)
		return shareSession{}, 0, err
	case err != nil:
		return shareSession{}, 0, err
	}
	s.sess, s.refused, s.holdoff = sess, nil, 0
	s.gen++
	b, werr := json.Marshal(sess)
	if werr == nil {
		werr = s.acct.records.Save(ctx, shareFile, b)
	}
	if werr != nil {
		s.acct.log.Warn().Str("mount", s.acct.mount).Str("error", werr.Error()).Msg("terabox: the share's session could not be kept; it is verified again after a restart")
	}
	s.acct.log.Info().Str("mount", s.acct.mount).Msg("terabox: share link verified")
	return sess, s.gen, nil
}

// current answers session from memory when it can (ok): the session
// unless it is the stale one, or the refusal within its holdoff.
func (s *Share) current(stale int) (shareSession, int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.sess.Sekey != "" && s.gen != stale:
		return s.sess, s.gen, true, nil
	case s.refused != nil && s.acct.now().Before(s.retryAt):
		return shareSession{}, 0, true, s.refused
	}
	return shareSession{}, 0, false, nil
}

// refuse remembers the link's refusal and drops its session.
func (s *Share) refuse(lr *linkRefused) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseLocked(lr)
}

func (s *Share) refuseLocked(lr *linkRefused) {
	s.holdoff = min(max(2*s.holdoff, firstHoldoff), maxHoldoff)
	s.refused, s.retryAt, s.sess = lr, s.acct.now().Add(s.holdoff), shareSession{}
	s.acct.log.Error().Str("mount", s.acct.mount).Str("reason", lr.Error()).Dur("next_try", s.holdoff).
		Msg("terabox: the share link is refused; the mount answers this until the link or its code changes")
}

// verify sends the extraction code and asks shorturlinfo for the ids the
// other calls need, unless prev (the stale session) has them: a link's
// shareid and owner do not change.
func (s *Share) verify(ctx context.Context, prev shareSession) (shareSession, error) {
	var cookie string
	var out struct {
		Randsk flex.ID `json:"randsk"`
	}
	rq := request{op: "share verify", method: http.MethodPost, path: "/openapi/share/verify",
		query: url.Values{"surl": {s.link.surl}}, form: url.Values{"pwd": {s.link.pwd}}, resend: true,
		header: func(h http.Header) { cookie = cookieValue(h) }}
	if err := s.acct.do(ctx, rq, &out); err != nil {
		if lr := refusal(err); lr != nil {
			return shareSession{}, lr
		}
		return shareSession{}, err
	}
	sess := shareSession{Surl: s.link.surl, Sekey: unescape(cookie), Randsk: string(out.Randsk), Verified: s.acct.now()}
	if sess.Sekey == "" {
		sess.Sekey = unescape(sess.Randsk)
	}
	if sess.Sekey == "" {
		return shareSession{}, fmt.Errorf("terabox: share verify: no session key in the answer: %w", drivers.ErrUnavailable)
	}
	if prev.Surl == s.link.surl && prev.ShareID != "" && prev.UK != "" {
		sess.ShareID, sess.UK = prev.ShareID, prev.UK
		return sess, nil
	}
	info, err := s.infoWith(ctx, sess)
	if err != nil {
		if lr := refusal(err); lr != nil {
			return shareSession{}, lr
		}
		return shareSession{}, err
	}
	sess.ShareID, sess.UK = string(info.ShareID), string(info.UK)
	if sess.ShareID == "" || sess.UK == "" {
		return shareSession{}, fmt.Errorf("terabox: share info: no shareid or uk in the answer: %w", drivers.ErrUnavailable)
	}
	return sess, nil
}

// cookieValue is the session key's cookie, as sent.
func cookieValue(h http.Header) string {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

// unescape undoes the URL escaping the key is sent with (a key that is
// not escaped is kept as it is).
func unescape(v string) string {
	if u, err := url.QueryUnescape(v); err == nil {
		return u
	}
	return v
}

// shareInfo is shorturlinfo's answer, as far as it is read.
type shareInfo struct {
	ShareID flex.ID `json:"shareid"`
	UK      flex.ID `json:"uk"`
	List    []entry `json:"list"`
}

// infoWith asks shorturlinfo with a session key.
func (s *Share) infoWith(ctx context.Context, sess shareSession) (shareInfo, error) {
	var out shareInfo
	q := url.Values{"shorturl": {s.link.short()}, "root": {"1"}, "spd": {sess.Sekey}}
	err := s.acct.do(ctx, request{op: "share info", method: http.MethodGet, path: "/openapi/api/shorturlinfo", query: q, resend: true}, &out)
	return out, err
}

// info asks shorturlinfo through call (verifying as needed).
func (s *Share) info(ctx context.Context) (shareInfo, error) {
	var out shareInfo
	q := url.Values{"shorturl": {s.link.short()}, "root": {"1"}}
	rq := request{op: "share info", method: http.MethodGet, path: "/openapi/api/shorturlinfo", query: q, resend: true}
	err := s.call(ctx, rq, &out, func(q url.Values, sess shareSession) { q.Set("spd", sess.Sekey) })
	return out, err
}

// call makes a share call with this mount's token and the session's key
// and ids set by keyed: the link is verified first when needed, and once
// more when the provider refuses the key (-9); a second -9 is the call's
// own (not found). A refusal of the link itself (105) is remembered.
func (s *Share) call(ctx context.Context, rq request, out any, keyed func(q url.Values, sess shareSession)) error {
	return s.callAs(ctx, s.acct, rq, out, keyed)
}

// callAs is call with another account client's token: a transfer goes to
// the account whose token it carries.
func (s *Share) callAs(ctx context.Context, via *Driver, rq request, out any, keyed func(q url.Values, sess shareSession)) error {
	stale := 0
	for {
		sess, gen, err := s.session(ctx, stale)
		if err != nil {
			return err
		}
		one := rq
		one.query = url.Values{}
		for k, v := range rq.query {
			one.query[k] = v
		}
		keyed(one.query, sess)
		err = via.do(ctx, one, out)
		if isErrno(err, errnoNotFound) && stale == 0 {
			s.acct.log.Info().Str("mount", s.acct.mount).Str("call", rq.op).
				Msg("terabox: the share's session key was refused; verifying the link again")
			stale = gen
			continue
		}
		if lr := refusal(err); lr != nil {
			s.refuse(lr)
			return lr
		}
		return err
	}
}
