package davfs

import "regexp"

// secretParam matches URL parameters and header-like pairs that carry
// credentials: signatures, tokens, keys, passwords, session cookies.
var secretParam = regexp.MustCompile(`(?i)((?:sig|sign|signature|token|access_tokens?|refresh_token|key\d?|password|passwd|secret|session|cloudreve-session|download_token|x-amz-signature|authorization)["']?\s*[=:]\s*["']?)([^&\s"',;]+)`)

// Redact hides credential values in a message before it is logged: a
// last line of defence, as drivers already keep secrets out of errors.
func Redact(s string) string {
	return secretParam.ReplaceAllString(s, "${1}REDACTED")
}
