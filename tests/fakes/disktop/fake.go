// Package disktopfake is a strict fake of the Disk.Top open platform
// (../shared/providers/disktop.md), for tests and for trying a mount without
// an account. Where the document is silent the fake picks one reading and
// enforces it; the choices are listed on Fake.
//
// Content (files and received upload parts) is kept in temp files, one per
// version, removed by Close; metadata lives in memory.
package disktopfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"bridge/tests/fakes/faults"
)

// Errnos the fake answers with, beside the HTTP status (the document names
// none; these are the fake's reading, and the driver classifies by HTTP
// status first):
const (
	ErrnoBadRequest   = 40001
	ErrnoUnauthorized = 40101 // missing, unknown or expired access token
	ErrnoScope        = 40301 // scope does not allow this, or outside the sandbox
	ErrnoNotFound     = 40401
	ErrnoExists       = 40901 // the name is taken in the target folder
	ErrnoIncomplete   = 42501
	ErrnoRateLimited  = 42901
	ErrnoQuota        = 50701
	ErrnoInternal     = 50001
	ErrnoUnavailable  = 50301
)

// errnoFor is the errno of a made-up failure: the HTTP status times 100
// plus 1, the pattern of the errnos above (42901, 50001, 50301).
func errnoFor(status int) int { return status*100 + 1 }

// SandboxDir is where files.app_data tokens are confined.
const SandboxDir = "/我的应用数据/BridgeTest"

// node is a file or folder. Folders and files have separate id spaces, as
// the document's ids suggest: a driver that mixes them up hits the wrong
// object or none.
type node struct {
	id      int
	dir     bool
	name    string
	parent  *node
	kids    map[string]*node
	blob    *blob // a file's content
	created time.Time
}

type token struct {
	access         string
	refresh        string
	scopes         []string
	expires        time.Time
	ttl            time.Duration // the access token's lifetime, for expires_in
	refreshExpires time.Time     // zero: the refresh token does not expire
	clientID       string
	refreshed      bool // the refresh token was used: it is dead
}

type deviceCode struct {
	code, userCode string
	clientID       string
	scopes         []string
	expires        time.Time
	interval       time.Duration // grows by 5 s at each slow_down
	lastPoll       time.Time
	approved       bool
	denied         bool
}

type upload struct {
	id       string
	parent   *node
	name     string
	size     int64
	md5      string
	chunk    int64         // the chunk size precreate announced
	parts    map[int]*blob // received parts, each in a temp file
	total    int
	expires  time.Time
	finished bool
}

// partSize is how many bytes part seq (1..total) has.
func (u *upload) partSize(seq int) int64 {
	if seq == u.total {
		return u.size - int64(u.total-1)*u.chunk
	}
	return u.chunk
}

// dropParts removes the session's received parts (f.mu held).
func (u *upload) dropParts() {
	for seq, p := range u.parts {
		os.Remove(p.file)
		delete(u.parts, seq)
	}
}

// Fake is the provider, served by Handler through its fault layer
// (Faults). Calls, Fail and Cut name endpoints: authorize, token,
// device-code, device-token, device-page, user-info, quota, list, search,
// meta, download, folder, manage, precreate, part, parts, complete, abort,
// and dl (the signed download URLs).
//
// Choices where the document is silent:
//   - precreate refuses a name that exists in the folder (409, ErrnoExists);
//     there is no overwrite.
//   - a 0-byte file has 0 parts and is created by complete;
//   - the chunk endpoints need no Authorization (the upload_id is the
//     capability) but accept one;
//   - listing pages run over folders first, then files, by name;
//   - listing a path that is not a folder is no error: a path that is
//     nothing lists as an empty folder, a file's path lists that file
//     alone (the harshest reading: a driver must not take a listing as
//     proof that a folder exists);
//   - manage move/copy keep names; a name taken in dest_path is 409;
//   - OAuth endpoints answer RFC 6749 errors ({"error": ...}, HTTP 400),
//     API endpoints {errno, errmsg} with a matching HTTP status;
//   - the device-token endpoint answers slow_down (RFC 8628) to a poll
//     sooner than the interval after the previous one, on the fake's clock;
//   - unknown scopes are refused (invalid_scope); a files.app_data token
//     without files.write_all writes only inside the sandbox, even when
//     files.read_all lets it read the whole disk;
//   - a refresh token works only for the client it was issued to;
//   - made-up failures of the fault layer (rate limit, 5xx) answer
//     {errno, errmsg} with errno status*100+1 on API and upload endpoints,
//     an RFC 6749 {error, error_description} with the real status (never
//     400, which would kill the refresh token) on /oauth/*, and plain text
//     on the signed links, as a CDN does;
//   - a restart (Faults.Restart, POST /__restart) forgets access tokens,
//     upload sessions and the link-signing key; refresh tokens, files and
//     device codes live in the service's database and stay. Old links then
//     answer 403 as any dead link does.
type Fake struct {
	mu sync.Mutex

	// Faults is the fault layer every endpoint is served through: the
	// clock, lifetimes, rate limit, random failures and restarts.
	Faults *faults.Layer

	// DeviceInterval is the polling interval device codes ask for (the
	// document's example: 5 s).
	DeviceInterval time.Duration
	// ChunkSize is what precreate hands out (the document's example: 5 MiB).
	ChunkSize int64
	// AccessTTL is the lifetime of access tokens when Faults sets none.
	AccessTTL time.Duration
	// QuotaBytes is the account's total storage.
	QuotaBytes int64

	ClientID, ClientSecret string
	dir                    string // the temp dir holding content
	baseURL                string
	linkKey                []byte // signs download URLs; a restart rotates it

	root       *node
	folders    map[int]*node
	files      map[int]*node
	nextFolder int
	nextFile   int
	tokens     map[string]*token // by access token
	refreshes  map[string]*token // by refresh token
	codes      map[string]*authCode
	devices    map[string]*deviceCode
	uploads    map[string]*upload

	secrets []string // every token and signature handed out
	// loseParts: the first delivery of these part numbers is
	// acknowledged but not kept, as a backend that loses a chunk does;
	// complete then answers 425.
	loseParts map[int]bool
}

type authCode struct {
	clientID, redirect, challenge string
	scopes                        []string
}

// New makes a fake with an empty account whose sandbox folder exists.
// Close removes the temp files that hold its content.
func New() *Fake {
	dir, err := os.MkdirTemp("", "disktopfake-*")
	if err != nil {
		panic(fmt.Sprintf("disktopfake: temp dir: %v", err))
	}
	f := &Fake{
		dir:            dir,
		DeviceInterval: 5 * time.Second,
		ChunkSize:      5 << 20,
		AccessTTL:      time.Hour,
		QuotaBytes:     1 << 40,
		ClientID:       "bridge-test-client",
		Faults:         faults.New(faults.Config{}),
		linkKey:        newKey(),
		folders:        map[int]*node{},
		files:          map[int]*node{},
		tokens:         map[string]*token{},
		refreshes:      map[string]*token{},
		codes:          map[string]*authCode{},
		devices:        map[string]*deviceCode{},
		uploads:        map[string]*upload{},
		nextFolder:     1,
		nextFile:       1,
	}
	f.ClientSecret = randomHex(8)
	f.Faults.SetErrorWriter(f.writeFault)
	f.Faults.OnRestart(f.restart)
	f.root = f.newFolder(nil, "")
	parent := f.root
	for _, seg := range strings.Split(strings.Trim(SandboxDir, "/"), "/") {
		parent = f.newFolder(parent, seg)
	}
	return f
}

// Close removes the temp files holding the fake's content; the fake must
// not be used afterwards.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return os.RemoveAll(f.dir)
}

// newKey makes a random signing key.
func newKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// restart is what the service forgets when it restarts: what it keeps in
// memory (access tokens, upload sessions, the link-signing key), not what
// is in its database (refresh tokens, files).
func (f *Fake) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]*token{}
	for _, u := range f.uploads {
		u.dropParts()
	}
	f.uploads = map[string]*upload{}
	f.linkKey = newKey()
}

// writeFault writes the layer's made-up failures in Disk.Top's shapes.
func (f *Fake) writeFault(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/oauth/"):
		code := "temporarily_unavailable"
		switch {
		case status == http.StatusTooManyRequests:
			code = "slow_down"
		case status < 500:
			code = "invalid_request"
		}
		writeJSON(w, status, map[string]any{"error": code, "error_description": msg})
	case strings.HasPrefix(r.URL.Path, "/dl/"):
		http.Error(w, msg, status)
	default:
		apiError(w, status, errnoFor(status), msg)
	}
}

// SetClock replaces the fake's clock (tests move it to expire URLs, tokens,
// upload sessions and device codes); it is the fault layer's clock.
func (f *Fake) SetClock(now func() time.Time) { f.Faults.SetClock(now) }

// Advance moves the fake's clock forward by d from wherever it is; it
// keeps running from there.
func (f *Fake) Advance(d time.Duration) { f.Faults.Advance(d) }

func (f *Fake) now() time.Time { return f.Faults.Now() }

// Secrets returns every credential the fake knows or handed out (client
// secret, access and refresh tokens, device codes, URL signatures), for
// tests asserting that none reaches a log line or an error message.
func (f *Fake) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{f.ClientSecret}, f.secrets...)
}

// SetBaseURL tells the fake where it is served, for the URLs it hands out.
func (f *Fake) SetBaseURL(u string) {
	f.mu.Lock()
	f.baseURL = strings.TrimSuffix(u, "/")
	f.mu.Unlock()
}

func (f *Fake) newFolder(parent *node, name string) *node {
	n := &node{id: f.nextFolder, dir: true, name: name, parent: parent, kids: map[string]*node{}, created: f.now()}
	f.nextFolder++
	f.folders[n.id] = n
	if parent != nil {
		parent.kids[name] = n
	}
	return n
}

// newFile makes a file of content b, which it then shares (f.mu held).
func (f *Fake) newFile(parent *node, name string, b *blob) *node {
	b.refs++
	n := &node{id: f.nextFile, name: name, parent: parent, blob: b, created: f.now()}
	f.nextFile++
	f.files[n.id] = n
	parent.kids[name] = n
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// IssueToken makes a token pair for the test client, as a finished login
// would, and returns (access, refresh).
func (f *Fake) IssueToken(scopes ...string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(scopes) == 0 {
		scopes = []string{"user.read", "files.app_data"}
	}
	t := f.issue(f.ClientID, scopes)
	return t.access, t.refresh
}

// accessTTL is the access-token lifetime: the fault layer's, else
// AccessTTL.
func (f *Fake) accessTTL() time.Duration { return f.Faults.TokenTTL(f.AccessTTL) }

func (f *Fake) issue(clientID string, scopes []string) *token {
	now, ttl := f.now(), f.accessTTL()
	t := &token{access: "at-" + randomHex(16), refresh: "rt-" + randomHex(16), scopes: scopes,
		expires: now.Add(ttl), ttl: ttl, clientID: clientID}
	if ttl := f.Faults.RefreshTTL(); ttl > 0 {
		t.refreshExpires = now.Add(ttl)
	}
	f.tokens[t.access] = t
	f.refreshes[t.refresh] = t
	f.secrets = append(f.secrets, t.access, t.refresh)
	return t
}

// ExpireAccessTokens makes every access token invalid (refresh tokens live).
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.expires = f.now().Add(-time.Second)
	}
}

// RevokeRefreshTokens kills every refresh token, as a user revoking the
// app at disk.top/user/apps does.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, t := range f.refreshes {
		t.refreshed = true
		delete(f.refreshes, k)
	}
	for k := range f.tokens {
		delete(f.tokens, k)
	}
}

// ApproveDevice approves a pending device code by its user code.
func (f *Fake) ApproveDevice(userCode string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices {
		if d.userCode == userCode {
			d.approved = true
			return true
		}
	}
	return false
}

// DenyDevice makes the user refuse a pending device code.
func (f *Fake) DenyDevice(userCode string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices {
		if d.userCode == userCode {
			d.denied = true
			return true
		}
	}
	return false
}

// Calls returns how often each endpoint was called (failed calls too).
func (f *Fake) Calls() map[string]int { return f.Faults.Calls() }

// Fail makes the next count calls of endpoint (a Calls key) answer status
// in the endpoint's error shape ({errno, errmsg} on the API); a 429
// carries Retry-After: 1.
func (f *Fake) Fail(endpoint string, status, count int) { f.Faults.Fail(endpoint, status, count) }

// LoseParts makes the next delivery of each of these part numbers be
// acknowledged but not kept.
func (f *Fake) LoseParts(seqs ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loseParts == nil {
		f.loseParts = map[int]bool{}
	}
	for _, s := range seqs {
		f.loseParts[s] = true
	}
}

// Cut makes the next count calls of endpoint break the connection half way
// through the body.
func (f *Fake) Cut(endpoint string, count int) { f.Faults.Cut(endpoint, count) }

// Put stores a file at a sandbox path behind the driver's back, creating
// folders as needed (for tests and seeding).
func (f *Fake) Put(p string, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.sandbox()
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for _, seg := range segs[:len(segs)-1] {
		next, ok := dir.kids[seg]
		if !ok {
			next = f.newFolder(dir, seg)
		}
		dir = next
	}
	b, err := f.store(bytes.NewReader(content))
	if err != nil {
		panic(fmt.Sprintf("disktopfake: storing %s: %v", p, err))
	}
	if old, ok := dir.kids[segs[len(segs)-1]]; ok {
		f.drop(old)
	}
	f.newFile(dir, segs[len(segs)-1], b)
}

// File returns the content at a sandbox path, read from its temp file.
func (f *Fake) File(p string) ([]byte, bool) {
	f.mu.Lock()
	n := f.lookup(f.sandbox(), p)
	if n == nil || n.dir {
		f.mu.Unlock()
		return nil, false
	}
	size := n.blob.size
	fl, err := n.blob.open()
	f.mu.Unlock()
	if err != nil {
		return nil, false
	}
	defer fl.Close()
	content := make([]byte, size)
	if _, err := io.ReadFull(fl, content); err != nil {
		return nil, false
	}
	return content, true
}

// OpenUploads counts upload sessions neither completed nor aborted.
func (f *Fake) OpenUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, u := range f.uploads {
		if !u.finished {
			n++
		}
	}
	return n
}

func (f *Fake) sandbox() *node { return f.lookup(f.root, SandboxDir) }

// lookup resolves a slash path below base.
func (f *Fake) lookup(base *node, p string) *node {
	cur := base
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." {
			continue
		}
		if seg == ".." || !cur.dir {
			return nil
		}
		next, ok := cur.kids[seg]
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func (f *Fake) drop(n *node) {
	for _, k := range n.kids {
		f.drop(k)
	}
	if n.parent != nil {
		delete(n.parent.kids, n.name)
	}
	if n.dir {
		delete(f.folders, n.id)
	} else {
		delete(f.files, n.id)
		f.release(n.blob)
	}
}

func (f *Fake) used() int64 {
	var total int64
	for _, n := range f.files {
		total += n.blob.size
	}
	return total
}

// within reports whether n is the base or below it.
func within(n, base *node) bool {
	for c := n; c != nil; c = c.parent {
		if c == base {
			return true
		}
	}
	return false
}

// fullPath is n's path from the account root.
func fullPath(n *node) string {
	var segs []string
	for c := n; c != nil && c.parent != nil; c = c.parent {
		segs = append([]string{c.name}, segs...)
	}
	return "/" + strings.Join(segs, "/")
}

// validName refuses names the fake's service refuses: empty, dot names,
// slashes, control characters, and the characters Windows forbids.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`/\:*?"<>|`, r) {
			return false
		}
	}
	return true
}

// ForbiddenNames are names the fake refuses (for the conformance suite).
var ForbiddenNames = []string{"a:b", "what?", "pipe|name", `back\slash`, "tab\tname"}

// sign makes the download URL's signature (f.mu held).
func (f *Fake) sign(id int, exp int64) string {
	m := hmac.New(sha256.New, f.linkKey)
	fmt.Fprintf(m, "%d:%d", id, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// knownScopes are the document's scopes.
var knownScopes = map[string]bool{"user.read": true, "files.app_data": true, "files.read_all": true,
	"files.write_all": true, "share.read": true, "share.create": true}

// validScopes reports whether every scope is one the document lists.
func validScopes(scopes []string) bool {
	for _, s := range scopes {
		if !knownScopes[s] {
			return false
		}
	}
	return len(scopes) > 0
}

// writeJSON answers an API call.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status, errno int, msg string) {
	writeJSON(w, status, map[string]any{"errno": errno, "errmsg": msg})
}

func ok(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, map[string]any{"errno": 0, "errmsg": "ok", "data": data})
}

func oauthError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": code, "error_description": desc})
}

// sortedKids lists a folder: folders first, then files, each by name.
func sortedKids(n *node) []*node {
	var dirs, files []*node
	for _, k := range n.kids {
		if k.dir {
			dirs = append(dirs, k)
		} else {
			files = append(files, k)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].name < dirs[j].name })
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return append(dirs, files...)
}
