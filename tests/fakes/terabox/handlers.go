package teraboxfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"bridge/tests/fakes/faults"
)

// host is which of the user's hosts an endpoint answers on.
type host int

const (
	wwwHost host = iota
	apiHost
	uploadHost
)

// router adds one endpoint to the fake's mux.
type router func(pattern, name string, kind faults.Kind, on host, h http.HandlerFunc)

// Handler serves the fake's OAuth, API, upload, download and share
// endpoints, each through the fault layer, and POST /__restart.
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, kind faults.Kind, on host, h http.HandlerFunc) {
		mux.Handle(pattern, f.Faults.Route(name, kind, f.onHost(on, h)))
	}
	f.shareRoutes(route)
	route("GET /oauth/devicecode", "devicecode", faults.Auth, wwwHost, f.deviceCode)
	route("POST /oauth/gettoken", "gettoken", faults.Auth, wwwHost, f.getToken)
	route("POST /oauth/refreshtoken", "refreshtoken", faults.Auth, wwwHost, f.refreshToken)
	route("POST /oauth/tokeninfo", "tokeninfo", faults.Auth, wwwHost, f.tokenInfo)
	route("/wap/outside/device", "device-page", faults.Auth, wwwHost, f.devicePage)
	route("GET /openapi/uinfo", "uinfo", faults.API, apiHost, f.anyAccount(f.uinfo))
	route("GET /openapi/api/quota", "quota", faults.API, apiHost, f.api(f.quota))
	route("GET /openapi/api/list", "list", faults.API, apiHost, f.api(f.list))
	route("GET /openapi/api/filemetas", "filemetas", faults.API, apiHost, f.api(f.filemetas))
	route("POST /openapi/api/filemanager", "filemanager", faults.API, apiHost, f.api(f.filemanager))
	route("POST /openapi/api/precreate", "precreate", faults.API, apiHost, f.api(f.precreate))
	route("POST /openapi/api/create", "create", faults.API, apiHost, f.api(f.create))
	route("GET /openapi/api/download", "download", faults.API, apiHost, f.api(f.download))
	route("POST /rest/2.0/pcs/superfile2", "superfile2", faults.Upload, uploadHost, f.superfile2)
	route("GET /file/{md5}", "dl", faults.Download, wwwHost, f.serveDlink)
	return f.Faults.Handler(mux)
}

// onHost answers a plain 404 on any host but the endpoint's own, as
// another TeraBox server that does not serve the path would.
func (f *Fake) onHost(on host, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		want := [...]string{f.wwwHost, f.apiHost, f.uploadHost}[on]
		f.mu.Unlock()
		if want != "" && !strings.EqualFold(r.Host, want) {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		h(w, r)
	}
}

// writeFault writes the fault layer's made-up failures: a 5xx as a proxy
// page; a rate limit in the service's own shape on each kind of host.
func (f *Fake) writeFault(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status != http.StatusTooManyRequests {
		http.Error(w, fmt.Sprintf("%d %s", status, http.StatusText(status)), status)
		return
	}
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/oauth/"):
		oauthError(w, ErrnoTooFrequent, "request too frequent")
	case strings.HasPrefix(p, "/openapi/"):
		apiError(w, ErrnoRateLimited, "hit frequency limit")
	case strings.HasPrefix(p, "/rest/"):
		pcsError(w, http.StatusOK, ErrnoRateLimited, "hit frequency limit")
	default:
		http.Error(w, msg, status)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// oauthOK answers an OAuth call: {data, errno 0, ...}.
func (f *Fake) oauthOK(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "errno": 0, "newno": "", "request_id": requestID(),
		"server_time": f.now().Unix(), "show_msg": ""})
}

// oauthError answers an OAuth error: HTTP 200 and the errno.
func oauthError(w http.ResponseWriter, errno int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"errno": errno, "newno": "", "request_id": requestID(), "show_msg": msg})
}

// apiOK answers an openapi call: its fields at the top level, errno 0.
func apiOK(w http.ResponseWriter, body map[string]any) {
	body["errno"] = 0
	body["request_id"] = requestID()
	writeJSON(w, http.StatusOK, body)
}

// apiError answers an openapi error: HTTP 200 and the errno.
func apiError(w http.ResponseWriter, errno int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"errno": errno, "errmsg": msg, "show_msg": msg, "request_id": requestID()})
}

// pcsError answers superfile2's errors in the PCS shape.
func pcsError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"error_code": code, "error_msg": msg, "request_id": requestID()})
}

// authorized checks access_tokens (plural, in the query) and answers the
// error itself when it is missing, unknown or expired.
func (f *Fake) authorized(w http.ResponseWriter, r *http.Request, pcs bool) bool {
	access := r.URL.Query().Get("access_tokens")
	f.mu.Lock()
	t, ok := f.tokens[access]
	expired := ok && !f.now().Before(t.expires)
	f.mu.Unlock()
	errno, msg := 0, ""
	switch {
	case access == "" || !ok:
		errno, msg = ErrnoAuth, "access_tokens missing or invalid"
	case expired:
		errno, msg = ErrnoExpired, "access token expired"
	default:
		return true
	}
	if pcs {
		pcsError(w, http.StatusForbidden, errno, msg)
	} else {
		apiError(w, errno, msg)
	}
	return false
}

// api wraps an openapi handler of the main account's files with the
// token check: another account's token is refused (see Account).
func (f *Fake) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r, false) {
			return
		}
		if f.tokenAccount(r) != nil {
			apiError(w, ErrnoAuth, "this fake serves the files of its main account only")
			return
		}
		h(w, r)
	}
}

// anyAccount wraps an openapi handler that serves every account's tokens
// (uinfo, the share endpoints) with the token check.
func (f *Fake) anyAccount(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if f.authorized(w, r, false) {
			h(w, r)
		}
	}
}
