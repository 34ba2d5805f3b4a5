package terabox

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// shareLink is the share a mount shows: the link's surl (what follows
// "/s/1" in https://www.terabox.com/s/1<surl>) and its extraction code.
// The document names the link's parts three ways: verify takes the surl,
// shorturlinfo "1"+surl (what follows "/s/"), share/list the surl again.
type shareLink struct {
	surl string
	pwd  string
}

// short is what shorturlinfo calls the link: what follows "/s/".
func (l shareLink) short() string { return "1" + l.surl }

var (
	surlFormat = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	pwdFormat  = regexp.MustCompile(`^[0-9a-z]{4}$`)
)

// parseShareLink reads the options share_url and share_password.
// share_url is a link (https://<any TeraBox host>/s/1<surl>, or the
// sharing/link?surl=<surl> form), or its short part alone: what follows
// "/s/" in the link, which starts with "1" (a value that does not is taken
// as the surl itself). A pwd= in the link is the extraction code when
// share_password is empty. The code is 4 digits or letters (the document:
// digits and lowercase letters; capitals are lowered), or none. Errors
// never repeat the code.
func parseShareLink(raw, pwd string) (shareLink, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return shareLink{}, errors.New("terabox: option share_password needs share_url, the share link")
	}
	var l shareLink
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return shareLink{}, errors.New("terabox: option share_url is not a URL")
		}
		p := strings.TrimSuffix(u.Path, "/")
		switch i := strings.Index(p, "/s/"); {
		case i >= 0 && strings.HasPrefix(p[i+len("/s/"):], "1"):
			l.surl = p[i+len("/s/1"):]
		case u.Query().Get("surl") != "":
			l.surl = u.Query().Get("surl")
		}
		if pwd == "" {
			pwd = u.Query().Get("pwd")
		}
	} else {
		short := strings.TrimPrefix(strings.TrimPrefix(raw, "/"), "s/")
		l.surl = strings.TrimPrefix(short, "1")
	}
	if !surlFormat.MatchString(l.surl) {
		return shareLink{}, errors.New("terabox: option share_url is not a share link (https://www.terabox.com/s/1…) nor its short part")
	}
	l.pwd = strings.ToLower(strings.TrimSpace(pwd))
	if l.pwd != "" && !pwdFormat.MatchString(l.pwd) {
		return shareLink{}, errors.New("terabox: option share_password is not an extraction code: 4 digits or letters")
	}
	return l, nil
}
