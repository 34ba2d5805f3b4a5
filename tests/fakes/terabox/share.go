package teraboxfake

import (
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// Share errnos (section 3.5) and the fake's readings where it names none.
const (
	// ErrnoShareCode: the extraction code is wrong (or malformed).
	ErrnoShareCode = -12
	// ErrnoShareLink: "External link error": the link does not exist, was
	// cancelled, has expired, or its files are gone.
	ErrnoShareLink = 105
	// ErrnoShareKey is a missing, unknown or stale sekey/spd (a restart
	// forgets them): -9, which is also "not found" for a dir or a file.
	ErrnoShareKey = ErrnoNotFound
)

// CookieName is the cookie share/verify sets; its value (URL-escaped) is
// the sekey (spd) the other share calls need.
const CookieName = "BOXCLND"

// The share endpoints' readings (one each, the strictest the document
// allows):
//   - Links are https://…/s/1<surl>. verify takes surl (after "/s/1"),
//     shorturlinfo takes shorturl = "1"+surl (after "/s/"), sharelist
//     takes shorturl = surl (its table's reading); any other form is an
//     unknown link (105).
//   - verify: POST, surl in the query, pwd in the form body: 4 digits or
//     lowercase letters, "" only for a share without a code; wrong or
//     malformed is -12. Success sets the cookie BOXCLND = the URL-escaped
//     sekey and answers randsk = the same escaped value. Every other share
//     call needs that sekey (as sekey, or spd for shorturlinfo), even for
//     a share without a code: missing, unknown or forgotten (restart) is
//     -9. A cancelled or expired link, or one whose files are all gone, is
//     105 on every call, before the sekey is looked at.
//   - shorturlinfo: root=1 required; shareid, uk, fcount and the shared
//     items in list, every number as a string (as the document's
//     example).
//   - sharelist: page (from 1) and num (1..1000) are required; root=1
//     lists the shared items and ignores page and num (the document: "the
//     pagination parameters are only effective when dir is not the root
//     directory"), so a client paging the root sees the same items on
//     every page; dir = a folder's path as the listing gave it (the
//     owner's full path), inside the share, else -9. order asc|desc
//     (default desc), by name|time|size (default name). Numbers are JSON
//     numbers here.
//   - sharedownload: shareid, uk (the owner's), sekey and fid_list (a JSON
//     array of fs_id numbers); files of the share only, others left out;
//     each has a dlink (rt=sh) that, like the account's, needs
//     access_tokens appended (any live token), honours Range and expires.
//   - transfer and taskquery: see transfer.go.
type shareState struct {
	byCode map[string]*share // by surl
	byID   map[uint64]*share
	keys   map[string]*share // live sekeys
	tasks  map[string]*task
	log    []Transfer
	nextID uint64
	nextTk uint64
}

// share is one share link.
type share struct {
	id      uint64
	surl    string // what follows "/s/1"
	pwd     string
	owner   *account
	items   []*node // what was shared (one file or folder here)
	made    time.Time
	expires time.Time // zero: never
	dead    bool      // cancelled by its owner
}

var pwdFormat = regexp.MustCompile(`^[0-9a-z]{4}$`)

// init makes the maps on first use (f.mu held).
func (s *shareState) init() {
	if s.byCode == nil {
		s.byCode, s.byID, s.keys, s.tasks = map[string]*share{}, map[uint64]*share{}, map[string]*share{}, map[string]*task{}
		s.nextID, s.nextTk = 561062645, 257329558616538
	}
}

// forgetKeys drops every sekey, as a restart does (f.mu held).
func (s *shareState) forgetKeys() { s.keys = map[string]*share{} }

// Share shares the file or folder at a path below the main account's app
// folder (as Put names it) with an extraction code (4 digits or lowercase
// letters, or "" for none), and returns the share link,
// https://…/s/1<surl>. It panics on a missing path or a malformed code.
func (f *Fake) Share(p, pwd string) string {
	f.mu.Lock()
	a := f.mainAccount()
	f.mu.Unlock()
	return f.share(a, p, pwd)
}

func (f *Fake) share(a *account, p, pwd string) string {
	if pwd != "" && !pwdFormat.MatchString(pwd) {
		panic("teraboxfake: an extraction code is 4 digits or lowercase letters: " + pwd)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := lookup(a.app, p)
	if n == nil || n == a.app {
		panic("teraboxfake: nothing to share at " + p)
	}
	f.sh.init()
	b := make([]byte, 16)
	rand.Read(b)
	sh := &share{id: f.sh.nextID, surl: base64.RawURLEncoding.EncodeToString(b), pwd: pwd, owner: a,
		items: []*node{n}, made: f.now()}
	f.sh.nextID += 104729
	f.sh.byCode[sh.surl] = sh
	f.sh.byID[sh.id] = sh
	if pwd != "" {
		f.secrets = append(f.secrets, pwd)
	}
	return f.linkBase() + "/s/1" + sh.surl
}

// linkBase is where share links point (f.mu held).
func (f *Fake) linkBase() string {
	if f.baseURL != "" {
		return f.baseURL
	}
	return "https://www.terabox.com"
}

// Surl is the part of a share link after "/s/1".
func Surl(link string) string {
	if i := strings.Index(link, "/s/1"); i >= 0 {
		link = link[i+len("/s/1"):]
	}
	if u, err := url.Parse(link); err == nil {
		return strings.TrimSuffix(u.Path, "/")
	}
	return link
}

// ShareExpiresIn makes a link expire d from now on the fake's clock.
func (f *Fake) ShareExpiresIn(link string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sh := f.sh.byCode[Surl(link)]; sh != nil {
		sh.expires = f.now().Add(d)
	}
}

// CancelShare cancels a link, as its owner can: every call on it answers
// 105 from then on.
func (f *Fake) CancelShare(link string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sh := f.sh.byCode[Surl(link)]; sh != nil {
		sh.dead = true
	}
}

// ShareID is a link's shareid (0 for an unknown link).
func (f *Fake) ShareID(link string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sh := f.sh.byCode[Surl(link)]; sh != nil {
		return sh.id
	}
	return 0
}

// liveItems is what a share still shows: its items that still exist
// (f.mu held).
func (f *Fake) liveItems(sh *share) []*node {
	var out []*node
	for _, n := range sh.items {
		if f.byID[n.fsid] == n && within(n, sh.owner.root) {
			out = append(out, n)
		}
	}
	return out
}

// alive reports whether a share answers at all: not cancelled, not
// expired, its files not all gone (f.mu held).
func (f *Fake) alive(sh *share) bool {
	return sh != nil && !sh.dead && (sh.expires.IsZero() || f.now().Before(sh.expires)) && len(f.liveItems(sh)) > 0
}

// inShare reports whether n is one of sh's items or inside one (f.mu
// held).
func (f *Fake) inShare(sh *share, n *node) bool {
	if n == nil {
		return false
	}
	for _, it := range f.liveItems(sh) {
		if within(n, it) {
			return true
		}
	}
	return false
}

// sharePath resolves a path of the owner's tree (as a share listing
// shows it) to a node of the share, nil when it is not in it (f.mu held).
func (f *Fake) sharePath(sh *share, p string) *node {
	if !strings.HasPrefix(p, "/") {
		return nil
	}
	n := lookup(sh.owner.root, path.Clean(p))
	if !f.inShare(sh, n) {
		return nil
	}
	return n
}

// newShareKey makes a sekey for a verified share (f.mu held).
func (f *Fake) newShareKey(sh *share) string {
	b := make([]byte, 33)
	rand.Read(b)
	key := base64.StdEncoding.EncodeToString(b) // with + / =, as the real ones
	f.sh.keys[key] = sh
	f.secrets = append(f.secrets, key, url.QueryEscape(key))
	return key
}

// keyOK reports whether sekey was made for sh and is still known (f.mu
// held).
func (f *Fake) keyOK(sh *share, sekey string) bool {
	return sekey != "" && f.sh.keys[sekey] == sh
}
