package terabox

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// qrFile is where the login's QR code is saved, in the mount's state dir.
const qrFile = "login-qr.png"

// Login implements drivers.Loginer with the device-code flow: the QR code
// TeraBox hands out is drawn in the terminal (decoded from its PNG) and
// saved beside the tokens, the user scans it in the TeraBox app, and
// gettoken is polled at the interval asked for (errno 400001 until then;
// 300001, too fast, widens the interval). The authorization-code flow
// needs a web page or an app scheme registered with TeraBox: not offered.
func (d *Driver) Login(ctx context.Context, out io.Writer, opts drivers.LoginOptions) error {
	if opts.AuthCode {
		return fmt.Errorf("terabox: login: the authorization-code flow needs a page registered with TeraBox; run login without -auth-code (device code): %w", drivers.ErrNotSupported)
	}
	tok, err := d.loginDevice(ctx, out)
	if err != nil {
		return fmt.Errorf("terabox: login: %w", err)
	}
	if err := d.tokens.Save(tok); err != nil {
		return fmt.Errorf("terabox: login: %w", err)
	}
	d.forgetDomains() // perhaps another user
	fmt.Fprintln(out, "Logged in; the tokens are stored in the mount's state folder.")
	return nil
}

type deviceAnswer struct {
	Data struct {
		DeviceCode      string   `json:"device_code"`
		QRCodeURL       string   `json:"qrcode_url"`
		ExpiresIn       flex.Int `json:"expires_in"`
		Interval        flex.Int `json:"interval"`
		UserCode        string   `json:"user_code"`
		VerificationURL string   `json:"verification_url"`
	} `json:"data"`
}

func (d *Driver) loginDevice(ctx context.Context, out io.Writer) (*oauth2.Token, error) {
	var da deviceAnswer
	if err := d.oauthCall(ctx, "devicecode", http.MethodGet, "/oauth/devicecode", url.Values{"client_id": {d.opts.ClientID}}, &da); err != nil {
		return nil, fmt.Errorf("device code: %w", err)
	}
	if da.Data.DeviceCode == "" {
		return nil, errors.New("device code: the answer holds no device_code")
	}
	fmt.Fprintln(out, "Scan this QR code with the TeraBox app and approve the access:")
	fmt.Fprintln(out)
	png, err := pngOfDataURL(da.Data.QRCodeURL)
	if err == nil {
		if err := drawQR(out, png); err != nil {
			fmt.Fprintln(out, "(the QR code could not be drawn here:", err.Error()+")")
		}
		file := filepath.Join(d.state, qrFile)
		if err := os.WriteFile(file, png, 0o600); err == nil {
			fmt.Fprintf(out, "\nThe QR code is also saved as %s (open it if the one above does not scan).\n", file)
		}
	} else {
		fmt.Fprintln(out, "(the answer holds no QR code image:", err.Error()+")")
	}
	if da.Data.VerificationURL != "" && da.Data.UserCode != "" {
		fmt.Fprintf(out, "Or open %s and enter the code %s\n", da.Data.VerificationURL, da.Data.UserCode)
	}
	fmt.Fprintln(out, "\nWaiting for approval...")
	interval := time.Duration(da.Data.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	life := time.Duration(da.Data.ExpiresIn) * time.Second
	if life <= 0 {
		life = 300 * time.Second
	}
	return d.pollDevice(ctx, da.Data.DeviceCode, interval, d.now().Add(life))
}

// pollDevice polls gettoken until the code is approved, refused or
// expired. Passing failures (5xx, lost answers) just wait for the next
// poll.
func (d *Driver) pollDevice(ctx context.Context, code string, interval time.Duration, expires time.Time) (*oauth2.Token, error) {
	for {
		if err := d.sleep(ctx, interval); err != nil {
			return nil, errors.New("cancelled while waiting for approval")
		}
		if !d.now().Before(expires) {
			return nil, errors.New("the QR code expired before it was approved: run login again")
		}
		var ans struct {
			Data struct {
				AccessToken  string   `json:"access_token"`
				RefreshToken string   `json:"refresh_token"`
				ExpiresIn    flex.Int `json:"expires_in"`
			} `json:"data"`
		}
		form := d.signedForm(url.Values{"grant_type": {"device_code"}, "code": {code}})
		err := d.poll(ctx, form, &ans)
		var ae *apiError
		switch {
		case err == nil && ans.Data.AccessToken != "":
			return &oauth2.Token{AccessToken: ans.Data.AccessToken, RefreshToken: ans.Data.RefreshToken,
				TokenType: "bearer", ExpiresIn: int64(ans.Data.ExpiresIn)}, nil
		case err == nil:
			return nil, errors.New("gettoken answered without a token")
		case errors.As(err, &ae) && ae.Errno == errnoPending:
		case errors.As(err, &ae) && ae.rateLimited():
			interval += 5 * time.Second
		case errors.As(err, &ae) && ae.Errno == errnoCode:
			return nil, errors.New("the QR code was refused or expired: run login again")
		case errors.As(err, &ae) && (ae.Errno == errnoClient || ae.Errno == errnoParams):
			return nil, fmt.Errorf("the platform refused the application's credentials (client_id, client_secret, private_secret, or this machine's clock): errno %d", ae.Errno)
		case errors.As(err, &ae) && !ae.passing():
			return nil, err
		}
	}
}

// poll makes one gettoken request (no retry: the next poll is the retry).
func (d *Driver) poll(ctx context.Context, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.BaseURL+"/oauth/gettoken", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("terabox: gettoken: %w", errConnLost)
	}
	return decode(resp, "gettoken", out)
}

// pngOfDataURL decodes a "data:image/png;base64,..." URL (a bare base64
// string is taken too).
func pngOfDataURL(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if i := strings.Index(s, ","); strings.HasPrefix(s, "data:") && i > 0 {
		s = s[i+1:]
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not base64")
	}
	return b, nil
}
