package gokuai

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"strconv"
)

// notSigned are parameters sent but never signed (NOTES.md).
var notSigned = map[string]bool{"sign": true, "filehash": true, "filesize": true}

// signValues is the m-api signature of values already in key order:
// HMAC-SHA1 with the client secret over the values joined with "\n",
// standard base64 with padding.
func signValues(secret string, values []string) string {
	m := hmac.New(sha1.New, []byte(secret))
	for i, v := range values {
		if i > 0 {
			m.Write([]byte{'\n'})
		}
		m.Write([]byte(v))
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// sign signs params: every parameter but sign, filehash and filesize,
// sorted by key (byte order), raw values (empty ones kept).
func sign(secret string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if !notSigned[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = params.Get(k)
	}
	return signValues(secret, values)
}

// signed returns params with dateline (unix seconds) and sign added, and
// the unsigned extras (filehash, filesize) after them.
func signed(secret string, params url.Values, dateline int64, extra url.Values) url.Values {
	out := make(url.Values, len(params)+len(extra)+2)
	for k, v := range params {
		out[k] = v
	}
	out.Set("dateline", strconv.FormatInt(dateline, 10))
	out.Set("sign", sign(secret, out))
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// md5hex is how the password goes to the token endpoint.
func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
