package disktop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mdp/qrterminal/v3"
	"golang.org/x/oauth2"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// Login implements drivers.Loginer: the device-code flow by default (a
// code, a URL and a QR code to scan, then polling at the interval the
// platform asks for), or with opts.AuthCode the authorization-code flow with
// PKCE on a loopback redirect. The tokens go to the mount's state dir.
func (d *Driver) Login(ctx context.Context, out io.Writer, opts drivers.LoginOptions) error {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, d.client)
	var tok *oauth2.Token
	var err error
	if opts.AuthCode {
		tok, err = d.loginAuthCode(ctx, out)
	} else {
		tok, err = d.loginDevice(ctx, out)
	}
	if err != nil {
		return fmt.Errorf("disktop: login: %w", err)
	}
	if err := d.tokens.Save(tok); err != nil {
		return fmt.Errorf("disktop: login: %w", err)
	}
	fmt.Fprintln(out, "Logged in; the tokens are stored in the mount's state folder.")
	return nil
}

func (d *Driver) loginDevice(ctx context.Context, out io.Writer) (*oauth2.Token, error) {
	da, err := d.oauth.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("device code: %w", err)
	}
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	fmt.Fprintf(out, "Open %s and enter the code %s\n(or scan this QR code with your phone):\n\n", da.VerificationURI, da.UserCode)
	qrterminal.GenerateWithConfig(uri, qrterminal.Config{Level: qrterminal.L, Writer: out, HalfBlocks: true,
		BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
		WhiteBlackChar: qrterminal.WHITE_BLACK, QuietZone: 1})
	fmt.Fprintln(out, "\nWaiting for approval...")
	return d.pollDevice(ctx, da)
}

// pollDevice polls /oauth/device-token (Disk.Top's own endpoint, not the
// token URL) every interval seconds until the user approves or refuses,
// or the code expires. slow_down adds 5 s to the interval (RFC 8628).
func (d *Driver) pollDevice(ctx context.Context, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second // RFC 8628's default
	}
	for {
		if err := d.sleep(ctx, interval); err != nil {
			return nil, errors.New("cancelled while waiting for approval")
		}
		if !da.Expiry.IsZero() && time.Now().After(da.Expiry) {
			return nil, errors.New("the code expired before it was approved: run login again")
		}
		tok, code, err := d.deviceToken(ctx, da.DeviceCode)
		switch {
		case err != nil:
			return nil, err
		case tok != nil:
			return tok, nil
		case code == "authorization_pending":
		case code == "slow_down":
			interval += 5 * time.Second
		case code == "access_denied":
			return nil, errors.New("access was denied on the approval page")
		case code == "expired_token":
			return nil, errors.New("the code expired before it was approved: run login again")
		default:
			return nil, fmt.Errorf("the platform answered %q", code)
		}
	}
}

// deviceToken polls once. It returns the token, or the OAuth error code.
// The answer is read both as RFC 8628's plain JSON (the document's
// example) and wrapped in the platform's {errno, data} envelope, and the
// error code is taken whatever the HTTP status.
func (d *Driver) deviceToken(ctx context.Context, deviceCode string) (*oauth2.Token, string, error) {
	form := url.Values{"device_code": {deviceCode}, "client_id": {d.opts.ClientID},
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.APIBase+"/oauth/device-token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("device token: %w", err)
	}
	defer resp.Body.Close()
	type answer struct {
		Error        string   `json:"error"`
		AccessToken  string   `json:"access_token"`
		RefreshToken string   `json:"refresh_token"`
		TokenType    string   `json:"token_type"`
		ExpiresIn    flex.Int `json:"expires_in"`
	}
	var a struct {
		answer
		Errno int     `json:"errno"`
		Msg   string  `json:"errmsg"`
		Data  *answer `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return nil, "", fmt.Errorf("device token: HTTP %d, unreadable answer", resp.StatusCode)
	}
	if a.Data != nil && a.AccessToken == "" && a.Error == "" {
		a.answer = *a.Data
	}
	switch {
	case a.Error != "":
		return nil, a.Error, nil
	case a.AccessToken != "" && resp.StatusCode == http.StatusOK:
		return &oauth2.Token{AccessToken: a.AccessToken, RefreshToken: a.RefreshToken, TokenType: a.TokenType,
			ExpiresIn: int64(a.ExpiresIn)}, "", nil
	}
	return nil, "", fmt.Errorf("device token: HTTP %d errno %d %q", resp.StatusCode, a.Errno, a.Msg)
}

func (d *Driver) loginAuthCode(ctx context.Context, out io.Writer) (*oauth2.Token, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	conf := *d.oauth
	conf.RedirectURL = "http://" + ln.Addr().String() + "/callback"
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()[:16]
	type result struct{ code, refusal string }
	results := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || q.Get("state") != state || (q.Get("code") == "" && q.Get("error") == "") {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		res := result{code: q.Get("code"), refusal: q.Get("error")}
		if res.refusal != "" {
			fmt.Fprintln(w, "The platform refused the login:", res.refusal)
		} else {
			fmt.Fprintln(w, "Logged in. You can close this window.")
		}
		select {
		case results <- res:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(out, "Open this URL in a browser on this machine and approve:\n\n%s\n\nWaiting...\n",
		conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	select {
	case res := <-results:
		if res.refusal != "" {
			return nil, fmt.Errorf("the platform refused the authorization: %s", res.refusal)
		}
		return conf.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	case <-ctx.Done():
		return nil, errors.New("cancelled while waiting for the browser")
	}
}
