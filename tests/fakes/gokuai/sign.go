package gokuaifake

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// unsigned are sent but never signed (NOTES.md).
var unsigned = map[string]bool{"sign": true, "filehash": true, "filesize": true}

// Sign is the m-api signature of values (already in key order):
// HMAC-SHA1 with the secret over the values joined with "\n", standard
// base64 with padding.
func Sign(secret string, values []string) string {
	m := hmac.New(sha1.New, []byte(secret))
	for i, v := range values {
		if i > 0 {
			m.Write([]byte("\n"))
		}
		m.Write([]byte(v))
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signatures returns the two signatures a server accepts for params: over
// every signed value, and over the non-empty ones only.
func signatures(secret string, params url.Values) (withEmpty, skipEmpty string) {
	keys := make([]string, 0, len(params))
	for k := range params {
		if !unsigned[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // byte order
	var all, nonEmpty []string
	for _, k := range keys {
		v := params.Get(k)
		all = append(all, v)
		if v != "" {
			nonEmpty = append(nonEmpty, v)
		}
	}
	return Sign(secret, all), Sign(secret, nonEmpty)
}

// SignParams signs params as a client would (every value kept) and sets
// "sign"; for tests that call the fake directly.
func SignParams(secret string, params url.Values) {
	params.Del("sign")
	s, _ := signatures(secret, params)
	params.Set("sign", s)
}

// checkSigned checks sign and dateline; it returns the error code and
// message, or 0.
func (f *Fake) checkSigned(params url.Values) (int, string) {
	for k, vs := range params {
		if len(vs) > 1 {
			return CodeBadParam, "parameter " + k + " given twice"
		}
	}
	sign := params.Get("sign")
	if sign == "" {
		return CodeBadParam, "sign is required"
	}
	a, b := signatures(f.ClientSecret, params)
	if !hmac.Equal([]byte(sign), []byte(a)) && !hmac.Equal([]byte(sign), []byte(b)) {
		return CodeBadSign, "sign error"
	}
	dl, err := strconv.ParseInt(params.Get("dateline"), 10, 64)
	if err != nil {
		return CodeBadParam, "dateline is required"
	}
	if d := f.now().Sub(time.Unix(dl, 0)); d > f.DatelineWindow || d < -f.DatelineWindow {
		return CodeStaleDateline, "dateline expired"
	}
	return 0, ""
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
