package disktop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/mdp/qrterminal/v3"
	"golang.org/x/oauth2"

	"bridge/drivers"
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
	// Disk.Top polls at its own endpoint, not at the token URL.
	poll := *d.oauth
	poll.Endpoint.TokenURL = d.opts.APIBase + "/oauth/device-token"
	return poll.DeviceAccessToken(ctx, da)
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
	codes := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" || r.URL.Query().Get("state") != state || r.URL.Query().Get("code") == "" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "Logged in. You can close this window.")
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(out, "Open this URL in a browser on this machine and approve:\n\n%s\n\nWaiting...\n",
		conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	select {
	case code := <-codes:
		return conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	case <-ctx.Done():
		return nil, errors.New("cancelled while waiting for the browser")
	}
}
