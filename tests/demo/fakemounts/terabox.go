package fakemounts

import (
	"net"
	"net/http"
	"net/url"

	"bridge/tests/fakes/faults"
	teraboxfake "bridge/tests/fakes/terabox"
)

// startTerabox serves the TeraBox fake: OAuth and the dlinks at baseURL,
// the openapi and superfile2 each on a listener of its own on the same
// host (tokeninfo's api_domain and upload_domain differ, as a driver must
// cope with). Its mount options carry a refresh token issued for the test
// client, which the driver rotates into its state dir at once. Close
// stops the extra listeners and removes the fake's temp files.
func startTerabox(baseURL string, cfg faults.Config) (Started, error) {
	f := teraboxfake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	h := f.Handler()
	var listeners []net.Listener
	closeAll := func() {
		for _, ln := range listeners {
			ln.Close()
		}
		f.Close()
	}
	if u, err := url.Parse(baseURL); err == nil {
		api, aerr := serveAlso(u.Hostname(), h, &listeners)
		upload, uerr := serveAlso(u.Hostname(), h, &listeners)
		if aerr == nil && uerr == nil {
			f.SetDomains(api, upload)
		}
	}
	_, refresh := f.IssueToken()
	return Started{Handler: h, Close: closeAll, Options: map[string]any{
		"client_id":      f.ClientID,
		"client_secret":  f.ClientSecret,
		"private_secret": f.PrivateSecret,
		"app_name":       f.AppName,
		"base_url":       baseURL,
		"refresh_token":  refresh,
	}}, nil
}

// serveAlso serves h on a new port of host and returns host:port; the
// listener joins lns, for Close.
func serveAlso(host string, h http.Handler, lns *[]net.Listener) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	*lns = append(*lns, ln)
	go http.Serve(ln, h)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return net.JoinHostPort(host, port), nil
}
