// Package teraboxfake is a strict fake of the TeraBox open platform
// (../shared/providers/terabox.md, and the TeraBox section of NOTES.md), for
// tests and for trying a mount without an account. Where the document is
// silent the fake picks one reading, the harshest it allows, and enforces
// it; the choices are listed on Fake.
package teraboxfake

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"bridge/tests/fakes/faults"
)

// OAuth errnos (the document's table), and the fake's own where it names
// none.
const (
	ErrnoParams         = 2      // required parameters missing
	ErrnoClient         = 100001 // bad client_id / client_secret, and (the fake's reading) a bad sign or stale timestamp
	ErrnoCode           = 100002 // code or device_code invalid, expired or refused
	ErrnoGrant          = 200001 // unsupported grant_type
	ErrnoTokenInvalid   = 200002 // tokeninfo: invalid access_token
	ErrnoTokenExpired   = 200003 // tokeninfo: expired access_token
	ErrnoRefreshInvalid = 200004 // invalid (or already used) refresh_token
	ErrnoRefreshExpired = 200005
	ErrnoTooFrequent    = 300001 // polling too fast; also the fake's OAuth rate limit
	ErrnoPending        = 400001 // device code not approved yet
	ErrnoInternal       = 500001
)

// File API errnos: the document's -7/-8/-9, and Baidu-derived ones
// (NOTES.md) where the document names none.
const (
	ErrnoAuth         = -6 // access_tokens missing or unknown
	ErrnoBadName      = -7 // invalid name, or a path outside the app folder
	ErrnoExists       = -8
	ErrnoNotFound     = -9
	ErrnoNoSpace      = -10
	ErrnoCreateFailed = 10  // create: block_list, size or blocks disagree
	ErrnoExpired      = 111 // access token expired
	ErrnoRateLimited  = 31034
	ErrnoNoUpload     = 31190 // unknown or forgotten uploadid
	ErrnoBlockSize    = 31299 // a non-last block that is not exactly 4 MiB
	ErrnoBlockMissing = 31363 // create before every block is in
)

// BlockSize is the upload block size: every block but the last is exactly
// this long.
const BlockSize = 4 << 20

// AppID is superfile2's fixed app_id.
const AppID = "250528"

// RefreshGrace is how long an access token lives on after its refresh
// token was used.
const RefreshGrace = 15 * time.Second

// node is a file or folder. Files point at an immutable blob (one temp
// file per version).
type node struct {
	fsid   uint64
	dir    bool
	name   string
	parent *node
	kids   map[string]*node
	blob   *blob
	ctime  time.Time
	mtime  time.Time
}

type token struct {
	access, refresh string
	expires         time.Time // the access token's
	ttl             time.Duration
	refreshExpires  time.Time // kept by the pair a refresh makes
	used            bool      // the refresh token was spent
	created         time.Time
	acct            *account // nil: the main account
}

type device struct {
	code     string
	qrText   string
	expires  time.Time
	interval time.Duration
	lastPoll time.Time
	approved bool
	denied   bool
}

// session is an upload between precreate and create.
type session struct {
	id      string
	path    string   // full path, as precreate named it
	blocks  []string // precreate's block_list
	parts   map[int]*blob
	expires time.Time
}

// Device is a pending device code, as tests see it.
type Device struct {
	Code   string // the device_code
	QRText string // what the QR code says (the approval URL)
}

// Fake is the provider, served by Handler through its fault layer
// (Faults). Calls and faults name endpoints: devicecode, gettoken,
// refreshtoken, tokeninfo, device-page, uinfo, quota, list, filemetas,
// filemanager, precreate, superfile2, create, download (hands out dlinks),
// dl (serves them, a share's too), and the share endpoints verify,
// shorturlinfo, sharelist, sharedownload, transfer and taskquery.
//
// Choices where the document is silent (one strict reading each):
//   - Hosts: /oauth/* and the dlinks are served on the www host only, the
//     openapi on api_domain only, superfile2 on upload_domain only, and
//     the three differ (SetDomains); any other host answers a plain 404.
//   - Paths: the app folder is "/From: Other Applications/<AppName>-"
//     (section 3.1); every path outside it is refused with -7 (Baidu's
//     "bad name or no access"). The list table's other form ("/From: Other
//     Device/<name> - <id>/") does not exist here.
//   - OAuth: form POSTs; sign = md5hex(client_id_timestamp_client_secret_
//     private_secret), lowercase; a timestamp more than 300 s off the
//     fake's clock, or a wrong sign, is errno 100001. Access tokens live 2
//     days (Faults.TokenTTL), refresh tokens 30 days (Faults.RefreshTTL)
//     and once: a used one is 200004, the old access token dies 15 s after
//     the refresh, the new refresh token keeps the old one's expiry.
//   - Device codes live 300 s; a poll sooner than interval after the
//     previous one is 300001; the QR code is a PNG data URL whose text is
//     the approval page (/wap/outside/device?qrcode=...).
//   - The openapi takes the token as access_tokens (plural) only; missing
//     or unknown is -6, expired 111, all with HTTP 200.
//   - list: page (1-based) and num (1..1000; more is served as 1000) are
//     required; entries by name, folders and files mixed. A dir that is
//     nothing is -9; a dir that is a file lists that file alone (the
//     document does not say; a listing is no proof of a folder).
//   - The md5 of list, filemetas, precreate and create is the content md5
//     with one hex digit changed (valid hex, wrong): never a checksum.
//   - precreate: no size; dedup (return_type 2) when the account holds a
//     file with the same block_list: the file is made at path at once, and
//     when path is taken it gets a time suffix, as create's rtype 1 does.
//     A one-block upload is answered block_list [] ("equivalent to [0]").
//   - superfile2: multipart field "file"; partseq 0-based; a non-last block
//     must be exactly 4 MiB (31299); the answer is the received block's
//     md5. Refusals are PCS-shaped ({error_code, error_msg}, HTTP 400).
//   - create: rtype defaults to 1 (the document's default); 0 fails with -8
//     on a taken name, 1 renames with a _YYYYMMDD_HHMMSS suffix, 2 renames
//     only if the content differs, 3 overwrites a file (never a folder).
//     path and block_list must equal precreate's; the parent must exist
//     (-9). isdir=1 makes a folder (the document has no mkdir).
//   - filemanager: opera and async in the query, filelist in the body;
//     per-item errno in info[] while the top-level errno stays 0 (a driver
//     that reads only the top level misses failures); no ondup: a taken
//     name is -8.
//   - download omits ids it does not know; dlinks need access_tokens
//     appended (any live token), expire (Faults.LinkTTL, default 1 h, in
//     the dlink's expires), honour Range, and answer CDN-style plain 403
//     (expired, bad sign or token) and 404 (file gone).
//   - Made-up failures of the fault layer: a rate limit is HTTP 200 with
//     errno 31034 on the openapi (error_code on superfile2), errno 300001
//     on /oauth/*, a plain 429 on dlinks; a 5xx is a plain-text proxy page.
//   - A restart forgets upload sessions, the dlink signing key (old
//     dlinks answer 403) and the share session keys (a stale sekey is
//     errno -9); tokens, files, shares and transfer tasks are in the
//     database and stay.
//   - Share links (section 3.5): endpoints verify, shorturlinfo,
//     sharelist, sharedownload, transfer and taskquery; their readings
//     are listed in share.go. Other users (NewAccount) own shares and
//     receive transfers; the file endpoints serve the main account only.
type Fake struct {
	mu sync.Mutex

	// Faults is the fault layer every endpoint is served through.
	Faults *faults.Layer

	ClientID, ClientSecret, PrivateSecret string
	// AppName names the app folder.
	AppName string
	// AccessTTL is the access-token lifetime when Faults sets none.
	AccessTTL time.Duration
	// RefreshTTL is the refresh-token lifetime when Faults sets none.
	RefreshTTL time.Duration
	// DeviceInterval is the polling interval device codes ask for.
	DeviceInterval time.Duration
	// QuotaBytes is the account's storage.
	QuotaBytes int64
	// UserID is the account's uk.
	UserID int64

	dir                          string // temp files of file content
	baseURL                      string
	wwwHost, apiHost, uploadHost string

	root     *node
	appRoot  *node
	byID     map[uint64]*node
	nextID   uint64
	tokens   map[string]*token // by access token
	refresh  map[string]*token // by refresh token
	codes    map[string]bool   // authorization codes
	devices  map[string]*device
	sessions map[string]*session
	linkKey  []byte
	secrets  []string
	received int64 // bytes superfile2 took
	flip     int   // superfile2 calls left whose block is corrupted
	otherUK  int64 // NewAccount's last uk offset
	sh       shareState
}

// New makes a fake with an empty app folder. Close removes its temp files.
func New() *Fake {
	dir, err := os.MkdirTemp("", "teraboxfake-*")
	if err != nil {
		panic(err)
	}
	f := &Fake{
		Faults:         faults.New(faults.Config{}),
		ClientID:       "bridgeTestClientID" + randomHex(3),
		ClientSecret:   randomHex(12),
		PrivateSecret:  randomHex(12),
		AppName:        "BridgeTest",
		AccessTTL:      48 * time.Hour,
		RefreshTTL:     30 * 24 * time.Hour,
		DeviceInterval: 5 * time.Second,
		QuotaBytes:     1 << 40,
		UserID:         4401866465594,
		dir:            dir,
		byID:           map[uint64]*node{},
		nextID:         934526256472844,
		tokens:         map[string]*token{},
		refresh:        map[string]*token{},
		codes:          map[string]bool{},
		devices:        map[string]*device{},
		sessions:       map[string]*session{},
		linkKey:        newKey(),
	}
	f.Faults.SetErrorWriter(f.writeFault)
	f.Faults.OnRestart(f.restart)
	f.root = f.newNode(nil, "", true)
	apps := f.newNode(f.root, "From: Other Applications", true)
	f.newNode(f.root, "From: Other Device", true)
	f.appRoot = f.newNode(apps, f.AppName+"-", true)
	return f
}

// Close removes the fake's temp files.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return os.RemoveAll(f.dir)
}

// AppDir is the app folder's full path: the mount root.
func (f *Fake) AppDir() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fullPath(f.appRoot)
}

// SetAppName renames the app folder (before any use).
func (f *Fake) SetAppName(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.appRoot.parent.kids, f.appRoot.name)
	f.AppName = name
	f.appRoot.name = name + "-"
	f.appRoot.parent.kids[f.appRoot.name] = f.appRoot
}

func newKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomToken(prefix string) string {
	b := make([]byte, 36)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func requestID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return n.String()
}

// restart forgets what the service keeps in memory: upload sessions, the
// dlink signing key and the shares' session keys (sekey).
func (f *Fake) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		s.drop()
	}
	f.sessions = map[string]*session{}
	f.linkKey = newKey()
	f.sh.forgetKeys()
}

// SetClock replaces the fake's clock (the fault layer's).
func (f *Fake) SetClock(now func() time.Time) { f.Faults.SetClock(now) }

// Advance moves the fake's clock forward.
func (f *Fake) Advance(d time.Duration) { f.Faults.Advance(d) }

func (f *Fake) now() time.Time { return f.Faults.Now() }

// SetBaseURL tells the fake where its www host is served: OAuth, the
// dlinks, and (until SetDomains says otherwise) the API and upload hosts.
func (f *Fake) SetBaseURL(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.baseURL = strings.TrimSuffix(u, "/")
	if pu, err := url.Parse(f.baseURL); err == nil {
		f.wwwHost = pu.Host
		if f.apiHost == "" {
			f.apiHost = pu.Host
		}
		if f.uploadHost == "" {
			f.uploadHost = pu.Host
		}
	}
}

// SetDomains sets the api_domain and upload_domain tokeninfo hands out
// (host[:port]); each endpoint then answers on its own host only. Calling
// it again moves the user to new domains: the old ones stop answering.
func (f *Fake) SetDomains(api, upload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apiHost, f.uploadHost = api, upload
}

// Calls returns how often each endpoint was called (failed calls too).
func (f *Fake) Calls() map[string]int { return f.Faults.Calls() }

// Fail makes the next count calls of endpoint answer status.
func (f *Fake) Fail(endpoint string, status, count int) { f.Faults.Fail(endpoint, status, count) }

// Cut makes the next count calls of endpoint break off half way through.
func (f *Fake) Cut(endpoint string, count int) { f.Faults.Cut(endpoint, count) }

// FailErrno makes the next count calls of endpoint answer errno (HTTP 200,
// the openapi's envelope) without acting.
func (f *Fake) FailErrno(endpoint string, errno, count int) {
	f.Faults.Inject(faults.Fault{Endpoint: endpoint, Times: count, Answer: func(w http.ResponseWriter, r *http.Request) {
		apiError(w, errno, "injected failure")
	}})
}

// BytesReceived is how many block bytes superfile2 has taken.
func (f *Fake) BytesReceived() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received
}

// FlipBlocks makes the next n superfile2 calls store (and answer the md5
// of) a block with one byte changed, as a transfer corrupted on the way.
func (f *Fake) FlipBlocks(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flip = n
}

// OpenUploads counts upload sessions not yet created.
func (f *Fake) OpenUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// Secrets returns every credential the fake knows or handed out, for
// tests asserting that none reaches a log line or an error.
func (f *Fake) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{f.ClientSecret, f.PrivateSecret}, f.secrets...)
}

// IssueToken makes a token pair as a finished login would and returns
// (access, refresh).
func (f *Fake) IssueToken() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.issue(time.Time{})
	return t.access, t.refresh
}

// issue makes a token pair; refreshExpires zero starts a new refresh
// lifetime (f.mu held).
func (f *Fake) issue(refreshExpires time.Time) *token {
	now, ttl := f.now(), f.Faults.TokenTTL(f.AccessTTL)
	if refreshExpires.IsZero() {
		refreshExpires = now.Add(or(f.Faults.RefreshTTL(), f.RefreshTTL))
	}
	t := &token{access: randomToken("AT"), refresh: randomToken("RT"), expires: now.Add(ttl), ttl: ttl,
		refreshExpires: refreshExpires, created: now}
	f.tokens[t.access] = t
	f.refresh[t.refresh] = t
	f.secrets = append(f.secrets, t.access, t.refresh)
	return t
}

func or(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// ExpireAccessTokens ends every access token now (refresh tokens live).
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.expires = f.now().Add(-time.Second)
	}
}

// RevokeRefreshTokens kills every token, as a user removing the app does.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]*token{}
	f.refresh = map[string]*token{}
}

// AccessTokenAlive reports whether an access token is accepted now.
func (f *Fake) AccessTokenAlive(access string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[access]
	return ok && f.now().Before(t.expires)
}

// IssueAuthCode makes an authorization code (as the web login would hand
// one to the app), valid 5 minutes and once.
func (f *Fake) IssueAuthCode() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := randomHex(5)
	f.codes[c] = true
	f.secrets = append(f.secrets, c)
	return c
}

// PendingDevices lists the device codes waiting for approval.
func (f *Fake) PendingDevices() []Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Device
	for _, d := range f.devices {
		if !d.approved && !d.denied {
			out = append(out, Device{Code: d.code, QRText: d.qrText})
		}
	}
	return out
}

// ApproveDevice approves a device code (by device_code or QR text), as
// scanning it in the TeraBox app does.
func (f *Fake) ApproveDevice(code string) bool { return f.setDevice(code, true) }

// DenyDevice refuses a device code.
func (f *Fake) DenyDevice(code string) bool { return f.setDevice(code, false) }

func (f *Fake) setDevice(code string, approve bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices {
		if d.code == code || d.qrText == code {
			d.approved, d.denied = approve, !approve
			return true
		}
	}
	return false
}

func (f *Fake) newNode(parent *node, name string, dir bool) *node {
	now := f.now()
	n := &node{fsid: f.nextID, dir: dir, name: name, parent: parent, ctime: now, mtime: now}
	f.nextID += 7919
	if dir {
		n.kids = map[string]*node{}
	}
	f.byID[n.fsid] = n
	if parent != nil {
		parent.kids[name] = n
	}
	return n
}

// Put stores a file at a path below the app folder behind the driver's
// back, making folders as needed.
func (f *Fake) Put(p string, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.blobFrom(strings.NewReader(string(content)))
	if err != nil {
		panic(err)
	}
	dir := f.mkdirAll(f.appRoot, path.Dir(path.Clean("/"+p)))
	name := path.Base(p)
	if old, ok := dir.kids[name]; ok {
		f.drop(old)
	}
	f.newNode(dir, name, false).blob = b
}

// Delete removes a file or folder below the app folder behind the
// driver's back.
func (f *Fake) Delete(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := lookup(f.appRoot, p); n != nil && n != f.appRoot {
		f.drop(n)
	}
}

// Mkdir makes a folder below the app folder (and its parents).
func (f *Fake) Mkdir(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mkdirAll(f.appRoot, p)
}

// File returns the content of the file at a path below the app folder.
func (f *Fake) File(p string) ([]byte, bool) {
	f.mu.Lock()
	n := lookup(f.appRoot, p)
	f.mu.Unlock()
	if n == nil || n.dir {
		return nil, false
	}
	b, err := os.ReadFile(n.blob.file)
	return b, err == nil
}

// Exists reports whether a path below the app folder exists, and whether
// it is a folder.
func (f *Fake) Exists(p string) (exists, dir bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := lookup(f.appRoot, p)
	return n != nil, n != nil && n.dir
}

// Names lists a folder below the app folder, sorted.
func (f *Fake) Names(p string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := lookup(f.appRoot, p)
	if n == nil || !n.dir {
		return nil
	}
	var out []string
	for name := range n.kids {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func (f *Fake) mkdirAll(base *node, p string) *node {
	cur := base
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." {
			continue
		}
		next, ok := cur.kids[seg]
		if !ok {
			next = f.newNode(cur, seg, true)
		}
		cur = next
	}
	return cur
}

// lookup resolves a slash path below base.
func lookup(base *node, p string) *node {
	cur := base
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			continue
		}
		if cur == nil || !cur.dir {
			return nil
		}
		cur = cur.kids[seg]
	}
	return cur
}

func (f *Fake) drop(n *node) {
	for _, k := range n.kids {
		f.drop(k)
	}
	if n.parent != nil && n.parent.kids[n.name] == n {
		delete(n.parent.kids, n.name)
	}
	delete(f.byID, n.fsid)
}

func fullPath(n *node) string {
	var segs []string
	for c := n; c != nil && c.parent != nil; c = c.parent {
		segs = append([]string{c.name}, segs...)
	}
	return "/" + strings.Join(segs, "/")
}

// within reports whether n is base or below it.
func within(n, base *node) bool {
	for c := n; c != nil; c = c.parent {
		if c == base {
			return true
		}
	}
	return false
}

// used is what the main account's files take (other accounts' do not
// count).
func (f *Fake) used() int64 {
	var total int64
	for _, n := range f.byID {
		if !n.dir && n.blob != nil && within(n, f.root) {
			total += n.blob.size
		}
	}
	return total
}

// validName is the fake's naming rule: not empty, not a dot name, at most
// 255 bytes, none of \ / : * ? " < > | nor control characters.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`\/:*?"<>|`, r) {
			return false
		}
	}
	return true
}

// ForbiddenNames are names the fake refuses (for the conformance suite).
var ForbiddenNames = []string{"a:b", "what?", "star*", "pipe|x", `quo"te`, "less<", "more>", `back\slash`, "tab\tname"}

// Sign is the OAuth sign for a timestamp.
func (f *Fake) Sign(timestamp string) string {
	sum := md5.Sum([]byte(f.ClientID + "_" + timestamp + "_" + f.ClientSecret + "_" + f.PrivateSecret))
	return hex.EncodeToString(sum[:])
}

// scramble is the md5 the API shows: the content md5 with one hex digit
// changed, so that it looks like an md5 and is not the content's.
func scramble(sum string) string {
	if len(sum) != 32 {
		return sum
	}
	b := []byte(sum)
	const digits = "0123456789abcdef"
	i := strings.IndexByte(digits, b[9])
	b[9] = digits[(i+7)%16]
	return string(b)
}

// linkSign signs a dlink (f.mu held).
func (f *Fake) linkSign(fsid uint64, dstime int64, expires string) string {
	m := hmac.New(sha256.New, f.linkKey)
	fmt.Fprintf(m, "%d:%d:%s", fsid, dstime, expires)
	return "FDtAER-" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// copyTree copies n (a file shares its immutable blob) into dest as name.
func (f *Fake) copyTree(n, dest *node, name string) *node {
	c := f.newNode(dest, name, n.dir)
	c.blob = n.blob
	for _, k := range n.kids {
		f.copyTree(k, c, k.name)
	}
	return c
}

// suffixed is rtype 1's new name: name_YYYYMMDD_HHMMSS.ext, numbered on
// when that is taken too.
func (f *Fake) suffixed(dir *node, name string) string {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	base := stem + "_" + f.now().Format("20060102_150405")
	cand := base + ext
	for i := 1; dir.kids[cand] != nil; i++ {
		cand = fmt.Sprintf("%s_%d%s", base, i, ext)
	}
	return cand
}
