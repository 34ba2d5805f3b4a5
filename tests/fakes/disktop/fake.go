// Package disktopfake is a strict fake of the Disk.Top open platform
// (../shared/providers/disktop.md), for tests and for trying a mount without
// an account. Where the document is silent the fake picks one reading and
// enforces it; the choices are listed on Fake.
package disktopfake

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"bridge/tests/fakes/fakeclock"
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
)

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
	content []byte
	md5     string
	created time.Time
}

type token struct {
	access    string
	refresh   string
	scopes    []string
	expires   time.Time
	clientID  string
	refreshed bool // the refresh token was used: it is dead
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
	parts    map[int][]byte
	total    int
	expires  time.Time
	finished bool
}

// Fake is the provider, served by Handler. Calls, Fail and Cut name
// endpoints: authorize, token, device-code, device-token, device-page,
// user-info, quota, list, search, meta, download, folder, manage, precreate,
// part, parts, complete, abort, and dl (the signed download URLs).
//
// Choices where the document is silent:
//   - precreate refuses a name that exists in the folder (409, ErrnoExists);
//     there is no overwrite.
//   - a 0-byte file has 0 parts and is created by complete;
//   - the chunk endpoints need no Authorization (the upload_id is the
//     capability) but accept one;
//   - listing pages run over folders first, then files, by name;
//   - manage move/copy keep names; a name taken in dest_path is 409;
//   - OAuth endpoints answer RFC 6749 errors ({"error": ...}, HTTP 400),
//     API endpoints {errno, errmsg} with a matching HTTP status;
//   - the device-token endpoint answers slow_down (RFC 8628) to a poll
//     sooner than the interval after the previous one, on the fake's clock;
//   - unknown scopes are refused (invalid_scope); a files.app_data token
//     without files.write_all writes only inside the sandbox, even when
//     files.read_all lets it read the whole disk;
//   - a refresh token works only for the client it was issued to.
type Fake struct {
	mu sync.Mutex

	clock fakeclock.Clock

	// DeviceInterval is the polling interval device codes ask for (the
	// document's example: 5 s).
	DeviceInterval time.Duration
	// ChunkSize is what precreate hands out (the document's example: 5 MiB).
	ChunkSize int64
	// AccessTTL is the lifetime of access tokens.
	AccessTTL time.Duration
	// QuotaBytes is the account's total storage.
	QuotaBytes int64

	ClientID, ClientSecret string
	baseURL                string
	secret                 []byte

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

	calls   map[string]int
	faults  []*fault
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

// fault is an injected failure of the next count calls of an endpoint.
type fault struct {
	endpoint string
	status   int
	cut      bool // break the connection mid-body
	count    int
}

// New makes a fake with an empty account whose sandbox folder exists.
func New() *Fake {
	f := &Fake{
		DeviceInterval: 5 * time.Second,
		ChunkSize:      5 << 20,
		AccessTTL:      time.Hour,
		QuotaBytes:     1 << 40,
		ClientID:       "bridge-test-client",
		secret:         make([]byte, 32),
		folders:        map[int]*node{},
		files:          map[int]*node{},
		tokens:         map[string]*token{},
		refreshes:      map[string]*token{},
		codes:          map[string]*authCode{},
		devices:        map[string]*deviceCode{},
		uploads:        map[string]*upload{},
		calls:          map[string]int{},
		nextFolder:     1,
		nextFile:       1,
	}
	rand.Read(f.secret)
	f.ClientSecret = hex.EncodeToString(f.secret[:8])
	f.root = f.newFolder(nil, "")
	parent := f.root
	for _, seg := range strings.Split(strings.Trim(SandboxDir, "/"), "/") {
		parent = f.newFolder(parent, seg)
	}
	return f
}

// SetClock replaces the fake's clock (tests move it to expire URLs, tokens,
// upload sessions and device codes).
func (f *Fake) SetClock(now func() time.Time) { f.clock.Set(now) }

// Advance moves the fake's clock forward by d from wherever it is; it
// keeps running from there.
func (f *Fake) Advance(d time.Duration) { f.clock.Advance(d) }

func (f *Fake) now() time.Time { return f.clock.Now() }

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

func (f *Fake) newFile(parent *node, name string, content []byte) *node {
	sum := md5.Sum(content)
	n := &node{id: f.nextFile, name: name, parent: parent, content: content, md5: hex.EncodeToString(sum[:]), created: f.now()}
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

func (f *Fake) issue(clientID string, scopes []string) *token {
	t := &token{access: "at-" + randomHex(16), refresh: "rt-" + randomHex(16), scopes: scopes,
		expires: f.now().Add(f.AccessTTL), clientID: clientID}
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

// Calls returns how often each endpoint was called.
func (f *Fake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

// Fail makes the next count calls of endpoint (a Calls key) answer status
// with an {errno, errmsg} body; a 429 carries Retry-After: 1.
func (f *Fake) Fail(endpoint string, status, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fault{endpoint: endpoint, status: status, count: count})
}

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
func (f *Fake) Cut(endpoint string, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fault{endpoint: endpoint, cut: true, count: count})
}

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
	if old, ok := dir.kids[segs[len(segs)-1]]; ok {
		f.drop(old)
	}
	f.newFile(dir, segs[len(segs)-1], content)
}

// File returns the content at a sandbox path.
func (f *Fake) File(p string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(f.sandbox(), p)
	if n == nil || n.dir {
		return nil, false
	}
	return n.content, true
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
	}
}

func (f *Fake) used() int64 {
	var total int64
	for _, n := range f.files {
		total += int64(len(n.content))
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

// sign makes the download URL's signature.
func (f *Fake) sign(id int, exp int64) string {
	m := hmac.New(sha256.New, f.secret)
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
