package teraboxfake

import (
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"rsc.io/qr"
)

// signWindow is how far a request's timestamp may be off the fake's clock.
const signWindow = 300 * time.Second

// DeviceTTL is the lifetime of a device code.
const DeviceTTL = 300 * time.Second

// clientOK checks client_id, client_secret, timestamp and sign of an OAuth
// form and answers the error itself.
func (f *Fake) clientOK(w http.ResponseWriter, r *http.Request, extra ...string) bool {
	for _, k := range append([]string{"client_id", "client_secret", "timestamp", "sign"}, extra...) {
		if r.PostForm.Get(k) == "" {
			oauthError(w, ErrnoParams, "required parameter missing: "+k)
			return false
		}
	}
	if r.PostForm.Get("client_id") != f.ClientID || r.PostForm.Get("client_secret") != f.ClientSecret {
		oauthError(w, ErrnoClient, "client_id or client_secret invalid")
		return false
	}
	ts := r.PostForm.Get("timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || f.now().Sub(time.Unix(sec, 0)).Abs() > signWindow {
		oauthError(w, ErrnoClient, "timestamp invalid or expired")
		return false
	}
	if r.PostForm.Get("sign") != f.Sign(ts) {
		oauthError(w, ErrnoClient, "sign error")
		return false
	}
	return true
}

func (f *Fake) tokenData(t *token) map[string]any {
	return map[string]any{"access_token": t.access, "refresh_token": t.refresh, "expires_in": int(t.ttl / time.Second)}
}

func (f *Fake) getToken(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if !f.clientOK(w, r, "grant_type", "code") {
		return
	}
	code := r.PostForm.Get("code")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		if !f.codes[code] {
			oauthError(w, ErrnoCode, "code invalid or expired")
			return
		}
		delete(f.codes, code)
		f.oauthOK(w, f.tokenData(f.issue(time.Time{})))
	case "device_code":
		d, ok := f.devices[code]
		now := f.now()
		if !ok || !now.Before(d.expires) || d.denied {
			oauthError(w, ErrnoCode, "device_code invalid or expired")
			return
		}
		tooSoon := !d.lastPoll.IsZero() && now.Sub(d.lastPoll) < d.interval
		d.lastPoll = now
		switch {
		case tooSoon:
			oauthError(w, ErrnoTooFrequent, "polling faster than the interval")
		case !d.approved:
			oauthError(w, ErrnoPending, "authorization pending")
		default:
			delete(f.devices, code)
			f.oauthOK(w, f.tokenData(f.issue(time.Time{})))
		}
	default:
		oauthError(w, ErrnoGrant, "unsupported grant_type")
	}
}

func (f *Fake) refreshToken(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if !f.clientOK(w, r, "refresh_token") {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.refresh[r.PostForm.Get("refresh_token")]
	now := f.now()
	switch {
	case !ok || old.used:
		oauthError(w, ErrnoRefreshInvalid, "refresh_token invalid")
		return
	case !now.Before(old.refreshExpires):
		oauthError(w, ErrnoRefreshExpired, "refresh_token expired")
		return
	}
	// Single use: the refresh token is spent, its access token dies soon,
	// and the new pair keeps the old refresh expiry.
	old.used = true
	if limit := now.Add(RefreshGrace); old.expires.After(limit) {
		old.expires = limit
	}
	nt := f.issue(old.refreshExpires)
	nt.acct = old.acct // the same user's
	f.oauthOK(w, f.tokenData(nt))
}

func (f *Fake) tokenInfo(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	access := r.PostForm.Get("access_token")
	if access == "" {
		oauthError(w, ErrnoParams, "access_token missing")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[access]
	switch {
	case !ok:
		oauthError(w, ErrnoTokenInvalid, "access_token invalid")
	case !f.now().Before(t.expires):
		oauthError(w, ErrnoTokenExpired, "access_token expired")
	default:
		f.oauthOK(w, map[string]any{"api_domain": f.apiHost, "upload_domain": f.uploadHost, "client_id": f.ClientID,
			"create_time": t.created.Unix(), "expires_in": int(t.expires.Sub(f.now()) / time.Second), "user_id": f.ukOf(t)})
	}
}

func (f *Fake) deviceCode(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("client_id") == "" {
		oauthError(w, ErrnoParams, "client_id missing")
		return
	}
	if r.URL.Query().Get("client_id") != f.ClientID {
		oauthError(w, ErrnoClient, "client_id invalid")
		return
	}
	f.mu.Lock()
	d := &device{code: randomHex(5), expires: f.now().Add(DeviceTTL), interval: f.DeviceInterval}
	d.qrText = f.baseURL + "/wap/outside/device?qrcode=" + randomHex(8)
	f.devices[d.code] = d
	f.secrets = append(f.secrets, d.code)
	f.mu.Unlock()
	code, err := qr.Encode(d.qrText, qr.M)
	if err != nil {
		oauthError(w, ErrnoInternal, "qr code")
		return
	}
	f.oauthOK(w, map[string]any{
		"device_code": d.code, "expires_in": int(DeviceTTL / time.Second), "interval": int(d.interval / time.Second),
		"qrcode_url": "data:image/png;base64," + base64.StdEncoding.EncodeToString(code.PNG()),
		"user_code":  "", "verification_url": "",
	})
}

// devicePage is what the QR code points at: the stand-in for scanning it
// with the TeraBox app. A POST approves.
func (f *Fake) devicePage(w http.ResponseWriter, r *http.Request) {
	self := f.baseURL + "/wap/outside/device?qrcode=" + url.QueryEscape(r.FormValue("qrcode"))
	if r.Method == http.MethodPost {
		if !f.ApproveDevice(self) {
			http.Error(w, "unknown or expired QR code", http.StatusNotFound)
			return
		}
		fmt.Fprintln(w, "Authorized. You can go back to your device.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<form method="post"><input type="hidden" name="qrcode" value="%s"><button>Authorize the application</button></form>`,
		html.EscapeString(r.FormValue("qrcode")))
}
