package terabox

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"bridge/drivers/flex"
)

// refreshPath is TeraBox's refresh endpoint, the token store's TokenURL.
const refreshPath = "/oauth/refreshtoken"

// signedForm is an OAuth form with the client's credentials, a timestamp
// and its sign: md5hex(client_id_timestamp_client_secret_private_secret).
func (d *Driver) signedForm(extra url.Values) url.Values {
	ts := strconv.FormatInt(d.now().Unix(), 10)
	sum := md5.Sum([]byte(d.opts.ClientID + "_" + ts + "_" + d.opts.ClientSecret + "_" + d.opts.PrivateSecret))
	f := url.Values{"client_id": {d.opts.ClientID}, "client_secret": {d.opts.ClientSecret},
		"timestamp": {ts}, "sign": {hex.EncodeToString(sum[:])}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// refreshTransport lets the shared auth.TokenStore (x/oauth2 underneath)
// run TeraBox's refresh: the RFC 6749 refresh request becomes TeraBox's
// signed form, and TeraBox's {errno, data} answer becomes an RFC 6749 one
// (a dead refresh token is invalid_grant; 300001 is a 429). Other requests
// pass untouched.
type refreshTransport struct {
	next http.RoundTripper
	d    *Driver
}

func (rt *refreshTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.URL.Path != refreshPath {
		return rt.next.RoundTrip(r)
	}
	var in url.Values
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		in, _ = url.ParseQuery(string(b))
	}
	form := rt.d.signedForm(url.Values{"refresh_token": {in.Get("refresh_token")}})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, r.URL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	return translate(resp)
}

// translate turns TeraBox's token answer into an RFC 6749 one.
func translate(resp *http.Response) (*http.Response, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, errors.New("terabox: the token answer broke off")
	}
	if resp.StatusCode != http.StatusOK {
		return synthetic(resp, resp.StatusCode, map[string]any{"error": "temporarily_unavailable"}), nil
	}
	var env struct {
		Errno flex.Int `json:"errno"`
		Data  *struct {
			AccessToken  string   `json:"access_token"`
			RefreshToken string   `json:"refresh_token"`
			ExpiresIn    flex.Int `json:"expires_in"`
		} `json:"data"`
	}
	if json.Unmarshal(b, &env) != nil {
		return synthetic(resp, http.StatusBadGateway, map[string]any{"error": "temporarily_unavailable"}), nil
	}
	switch env.Errno {
	case 0:
		if env.Data == nil || env.Data.AccessToken == "" {
			return synthetic(resp, http.StatusBadGateway, map[string]any{"error": "temporarily_unavailable"}), nil
		}
		return synthetic(resp, http.StatusOK, map[string]any{"access_token": env.Data.AccessToken,
			"refresh_token": env.Data.RefreshToken, "expires_in": int64(env.Data.ExpiresIn), "token_type": "bearer"}), nil
	case errnoRefreshInvalid, errnoRefreshExpired:
		return synthetic(resp, http.StatusBadRequest, map[string]any{"error": "invalid_grant"}), nil
	case errnoClient:
		return synthetic(resp, http.StatusBadRequest, map[string]any{"error": "invalid_client"}), nil
	case errnoParams:
		return synthetic(resp, http.StatusBadRequest, map[string]any{"error": "invalid_request"}), nil
	case errnoTooFrequent:
		return synthetic(resp, http.StatusTooManyRequests, map[string]any{"error": "slow_down"}), nil
	}
	return synthetic(resp, http.StatusBadGateway, map[string]any{"error": "temporarily_unavailable"}), nil
}

// synthetic is an answer with status and a JSON body, keeping the
// original's Retry-After.
func synthetic(orig *http.Response, status int, body map[string]any) *http.Response {
	b, _ := json.Marshal(body)
	h := http.Header{"Content-Type": {"application/json"}}
	if ra := orig.Header.Get("Retry-After"); ra != "" {
		h.Set("Retry-After", ra)
	}
	return &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
		Proto: orig.Proto, ProtoMajor: orig.ProtoMajor, ProtoMinor: orig.ProtoMinor, Header: h,
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: orig.Request}
}
