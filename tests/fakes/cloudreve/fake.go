// Package cloudrevefake is a strict fake of the Cloudreve 3.8 community
// API (../shared/providers/cloudreve-v3.md), behaving like a real 3.8.3
// server where the document is silent (../shared/providers/NOTES.md):
// every answer is HTTP 200 with a JSON code, download URLs are relative,
// chunks must come in order with exact lengths, copy takes one object,
// uploads refuse existing names, and moving a folder into its own
// descendant is accepted (and orphans it), as the real server does.
//
// Choices where neither document says (one strict reading each):
//   - login reads exactly the keys "userName" and "Password" (capital P);
//     a lowercase "password" is a missing password (40001). userName must
//     look like an email (40001). Wrong credentials or a wrong TOTP code
//     answer 40020.
//   - files and folders are numbered by separate counters and encoded the
//     same way, so a file and a folder often share an id string: a driver
//     that confuses items and dirs acts on the wrong object.
//   - move and copy act only on the objects whose parent is src_dir; the
//     others are silently skipped and the answer is still 0 (the server's
//     update is scoped by src_dir). A name taken in dst answers 40004.
//   - listing a missing folder answers 40016; a missing file id 40044; an
//     expired, missing or wrong download signature 40005 (the middleware's
//     check comes first); a download session unknown, expired or whose
//     file is gone 404; acting on the root 40053.
//   - the OneDrive finish callback needs no login (the session id is the
//     capability), like the server's callback routes.
//   - upload sessions live 24 h, download URLs 600 s, cookies 60 days, all
//     on the fake's clock (SetClock, Advance); the fault layer (Faults) may
//     shorten links and cookies.
//   - made-up failures of the fault layer (rate limit, 5xx) answer as a
//     reverse proxy in front of the server does: plain text with that HTTP
//     status (Graph's JSON error on the OneDrive upload URLs).
//   - a restart (Faults.Restart, POST /__restart) forgets logins, upload
//     sessions and download sessions, which the server keeps in its
//     memory cache; the signing key is in the database and stays, so an
//     old link passes the signature check and answers code 404.
//
// Content (files, and upload sessions as they fill) is kept in temp files,
// one per version, removed by Close; metadata lives in memory.
package cloudrevefake

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
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"bridge/tests/fakes/faults"
)

// Codes of the real server (NOTES.md).
const (
	CodeOK             = 0
	CodeTwoFactor      = 203
	CodeLoginRequired  = 401
	CodeDownloadGone   = 404 // download session unknown, expired or its file gone
	CodeBadParams      = 40001
	CodeExists         = 40004
	CodeBadSignature   = 40005
	CodeSessionGone    = 40011
	CodeChunkOrder     = 40012
	CodeChunkLength    = 40013
	CodeObjectNotFound = 40016
	CodeCredentials    = 40020
	CodePolicyMismatch = 40035
	CodeNotFound       = 40044
	CodeTooLarge       = 40049
	CodeNoCapacity     = 40051
	CodeBadName        = 40052
	CodeRoot           = 40053
	CodeUploadExists   = 40054
)

// Lifetimes the server uses.
const (
	LinkTTL    = 600 * time.Second
	UploadTTL  = 24 * time.Hour
	SessionTTL = 60 * 24 * time.Hour
)

// Policy is a storage policy of a folder.
type Policy struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"` // "local" or "onedrive"
}

type node struct {
	id      string
	dir     bool
	name    string
	parent  *node
	kids    []*node // a file and a folder may share a name
	blob    *blob   // a file's content
	date    time.Time
	created time.Time
	policy  *Policy // folders: the policy uploads into them use
	owner   *user
}

type user struct {
	email, password, totp string
	root                  *node
}

type session struct {
	u       *user
	pending bool // waiting for /user/2fa
	expires time.Time
}

type uploadSession struct {
	// mu is held by the call writing into the session (a chunk, a
	// OneDrive range, the finish callback), while f.mu is not: calls on
	// one session take turns, as they did when all ran under f.mu.
	mu       sync.Mutex
	id       string
	owner    *user
	parent   *node
	name     string
	size     int64
	policy   *Policy
	date     time.Time
	next     int    // local: next chunk index
	received int64  // bytes received
	file     string // the temp file receiving them; "" once finished or discarded
	expires  time.Time
	done     bool
}

// downloadSession is what PUT /file/download makes: the file a signed
// link serves, until it expires or the server restarts.
type downloadSession struct {
	fileID  string
	expires int64 // unix seconds, as its link's sign
}

// Fault is an injected failure of calls to one endpoint (a Calls key),
// in Cloudreve's terms; Inject hands it to the fault layer.
type Fault struct {
	Endpoint string
	// Skip lets this many calls through first: Skip 2 fails the third
	// chunk.
	Skip int
	// Times is how many calls fail after that (0 means 1).
	Times int
	// Status answers this HTTP status (a 5xx of a proxy in front of the
	// server, plain text; a 429 or 503 carries Retry-After: 1) instead of
	// the server's answer.
	Status int
	// Code answers this JSON code with HTTP 200, as the server does.
	Code int
	// Cut runs the call, then breaks the connection half way through the
	// answer: the change is made but the client does not learn it.
	Cut bool
	// Hold makes the call wait until the channel is closed, then answer
	// normally (a slow server; tests use it to line callers up).
	Hold <-chan struct{}
}

// Fake is the server, served by Handler through its fault layer
// (Faults). Calls and faults name endpoints: login, 2fa, storage, list,
// mkdir, upload-session, chunk, cancel, onedrive-put, onedrive-status (a
// GET on the upload URL), onedrive-finish, download, dl (the signed URLs),
// move, copy, rename, delete, update.
type Fake struct {
	mu sync.Mutex

	// Faults is the fault layer every endpoint is served through: the
	// clock, lifetimes, rate limit, random failures and restarts.
	Faults *faults.Layer

	// ChunkSize is the local policy's chunk size (the real default is
	// 25 MiB); OneDrive sessions round it down to a multiple of 320 KiB.
	// Set it before serving.
	ChunkSize int64
	// QuotaBytes is the total storage of each user; uploads beyond it
	// answer 40051.
	QuotaBytes int64
	// MaxFileSize is the policies' max_size (0: no limit); larger uploads
	// answer 40049. Set both before serving, or with SetLimits.
	MaxFileSize int64

	// User and Password are the default user's credentials; TOTPSecret,
	// when set before the first login, makes the account ask for a second
	// factor (code 203).
	User, Password, TOTPSecret string
	dir                        string // the temp dir holding content
	def                        *user
	users                      []*user
	baseURL                    string
	key                        []byte // signs download links; kept across restarts

	local, onedrive *Policy
	files, dirs     map[string]*node // separate id spaces
	nextFile        int
	nextDir         int
	sessions        map[string]*session // by cookie
	uploads         map[string]*uploadSession
	downloads       map[string]*downloadSession // by session id
	secrets         []string
}

// New makes a fake with one user (User, Password) and an empty drive
// using the local policy. Close removes the temp files that hold its
// content.
func New() *Fake {
	dir, err := os.MkdirTemp("", "cloudrevefake-*")
	if err != nil {
		panic(fmt.Sprintf("cloudrevefake: temp dir: %v", err))
	}
	f := &Fake{
		dir:       dir,
		ChunkSize: 1 << 20, QuotaBytes: 1 << 40,
		User: "bridge@example.com", Password: "fake-password-1",
		Faults: faults.New(faults.Config{}),
		key:    make([]byte, 32),
		files:  map[string]*node{}, dirs: map[string]*node{},
		sessions:  map[string]*session{},
		uploads:   map[string]*uploadSession{},
		downloads: map[string]*downloadSession{},
	}
	rand.Read(f.key)
	f.Faults.SetErrorWriter(writeFault)
	f.Faults.OnRestart(f.restart)
	f.local = &Policy{ID: "z3hJ", Name: "Default storage policy", Type: "local"}
	f.onedrive = &Policy{ID: "kVfW", Name: "OneDrive", Type: "onedrive"}
	f.def = f.newUser("", "", "")
	return f
}

// Close removes the temp files holding the fake's content; the fake must
// not be used afterwards.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return os.RemoveAll(f.dir)
}

func (f *Fake) newUser(email, password, totpSecret string) *user {
	u := &user{email: email, password: password, totp: totpSecret}
	u.root = f.add(nil, "", true, nil)
	u.root.owner = u
	u.root.policy = f.local
	f.users = append(f.users, u)
	return u
}

// AddUser adds another account with a drive of its own; totpSecret may
// be empty.
func (f *Fake) AddUser(email, password, totpSecret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.newUser(email, password, totpSecret)
}

// restart forgets what the server keeps in its memory cache: logins,
// upload sessions and download sessions.
func (f *Fake) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = map[string]*session{}
	for _, s := range f.uploads {
		s.discard()
	}
	f.uploads = map[string]*uploadSession{}
	f.downloads = map[string]*downloadSession{}
}

// writeFault writes the layer's made-up failures as a reverse proxy in
// front of the server does (the server itself never answers non-200), and
// as Graph does on the OneDrive upload URLs.
func writeFault(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/onedrive/") {
		code := "serviceNotAvailable"
		if status == http.StatusTooManyRequests {
			code = "activityLimitReached"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
		return
	}
	http.Error(w, fmt.Sprintf("%d %s", status, http.StatusText(status)), status)
}

// SetClock replaces the fake's clock (tests move it to expire download
// URLs, upload sessions and cookies, and to check TOTP codes); it is the
// fault layer's clock.
func (f *Fake) SetClock(now func() time.Time) { f.Faults.SetClock(now) }

// Advance moves the fake's clock forward by d from wherever it is; it
// keeps running from there.
func (f *Fake) Advance(d time.Duration) { f.Faults.Advance(d) }

func (f *Fake) now() time.Time { return f.Faults.Now() }

// SetLimits changes the users' quota and the policies' max_size while the
// fake is serving (0 max_size: no limit).
func (f *Fake) SetLimits(quota, maxFileSize int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.QuotaBytes, f.MaxFileSize = quota, maxFileSize
}

// SetBaseURL tells the fake where it is served (for OneDrive upload URLs).
func (f *Fake) SetBaseURL(u string) {
	f.mu.Lock()
	f.baseURL = strings.TrimSuffix(u, "/")
	f.mu.Unlock()
}

// UseOneDrive makes uploads into the folder at p of the default user (and
// into the subfolders made there later) go through the OneDrive-style
// policy.
func (f *Fake) UseOneDrive(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mkdirAll(f.def.root, p).policy = f.onedrive
}

// DropSessions forgets every login, as a server restart does, but keeps
// the rest (Faults.Restart is the whole restart).
func (f *Fake) DropSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = map[string]*session{}
}

// Calls returns how often each endpoint was called (failed calls too).
func (f *Fake) Calls() map[string]int { return f.Faults.Calls() }

// Inject adds a fault; faults on one endpoint apply in the order given.
// Of Hold, Cut, Status and Code the first set wins; a Code (0 included)
// is answered as the server does, HTTP 200 with that JSON code, without
// acting on the call.
func (f *Fake) Inject(ft Fault) {
	lf := faults.Fault{Endpoint: ft.Endpoint, Skip: ft.Skip, Times: ft.Times}
	switch {
	case ft.Hold != nil:
		lf.Hold = ft.Hold
	case ft.Cut:
		lf.Cut = true
	case ft.Status != 0:
		lf.Status = ft.Status
	default:
		code := ft.Code
		lf.Answer = func(w http.ResponseWriter, r *http.Request) { reply(w, code, nil, "injected failure") }
	}
	f.Faults.Inject(lf)
}

// FailCode makes the next count calls of endpoint answer a JSON code.
func (f *Fake) FailCode(endpoint string, code, count int) {
	f.Inject(Fault{Endpoint: endpoint, Code: code, Times: count})
}

// FailHTTP makes the next count calls of endpoint answer an HTTP status.
func (f *Fake) FailHTTP(endpoint string, status, count int) {
	f.Inject(Fault{Endpoint: endpoint, Status: status, Times: count})
}

// Cut makes the next count calls of endpoint break the connection half
// way through the answer.
func (f *Fake) Cut(endpoint string, count int) {
	f.Inject(Fault{Endpoint: endpoint, Cut: true, Times: count})
}

// Secrets returns every credential the fake knows or handed out
// (passwords, TOTP secrets, cookies, download signatures), so tests can
// check that none reaches a log.
func (f *Fake) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string{f.Password}, f.secrets...)
	if f.TOTPSecret != "" {
		out = append(out, f.TOTPSecret)
	}
	for _, u := range f.users[1:] {
		out = append(out, u.password)
		if u.totp != "" {
			out = append(out, u.totp)
		}
	}
	return out
}

// OpenUploads counts upload sessions neither finished nor cancelled.
func (f *Fake) OpenUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, u := range f.uploads {
		if !u.done {
			n++
		}
	}
	return n
}

// Put stores a file of the default user behind the driver's back, making
// folders as needed.
func (f *Fake) Put(p string, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.store(bytes.NewReader(content))
	if err != nil {
		panic(fmt.Sprintf("cloudrevefake: storing %s: %v", p, err))
	}
	dir := f.mkdirAll(f.def.root, path.Dir(p))
	if old := child(dir, path.Base(p), false); old != nil {
		f.drop(old)
	}
	f.add(dir, path.Base(p), false, b)
}

// File returns the content of the default user's file at p, read from
// its temp file.
func (f *Fake) File(p string) ([]byte, bool) {
	f.mu.Lock()
	var n *node
	if dir := lookupDir(f.def.root, path.Dir(p)); dir != nil {
		n = child(dir, path.Base(p), false)
	}
	if n == nil {
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

// Exists reports whether the default user has a file (dir false) or a
// folder (dir true) at p, reachable from the root.
func (f *Fake) Exists(p string, dir bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	parent := lookupDir(f.def.root, path.Dir(p))
	return parent != nil && child(parent, path.Base(p), dir) != nil
}

// Orphans counts folders that exist but cannot be reached from their
// owner's root (what moving a folder into its descendant leaves).
func (f *Fake) Orphans() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.dirs {
		seen := map[*node]bool{}
		cur := d
		for cur.parent != nil && !seen[cur] {
			seen[cur] = true
			cur = cur.parent
		}
		if cur != cur.owner.root {
			n++
		}
	}
	return n
}

// add makes a file of content b (which it then shares) or a folder (b
// nil).
func (f *Fake) add(parent *node, name string, dir bool, b *blob) *node {
	now := f.now()
	if b != nil {
		b.refs++
	}
	n := &node{dir: dir, name: name, parent: parent, blob: b, date: now, created: now}
	if dir {
		f.nextDir++
		n.id = hashid(f.nextDir)
		f.dirs[n.id] = n
	} else {
		f.nextFile++
		n.id = hashid(f.nextFile)
		f.files[n.id] = n
	}
	if parent != nil {
		parent.kids = append(parent.kids, n)
		n.policy = parent.policy
		n.owner = parent.owner
	}
	return n
}

// hashid makes short ids like the server's ("bbTL").
func hashid(n int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	s := ""
	for v := n*7919 + 100003; v > 0; v /= len(alphabet) {
		s += string(alphabet[v%len(alphabet)])
	}
	return s
}

func child(dir *node, name string, isDir bool) *node {
	for _, k := range dir.kids {
		if k.name == name && k.dir == isDir {
			return k
		}
	}
	return nil
}

func lookupDir(root *node, p string) *node {
	cur := root
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			continue
		}
		cur = child(cur, seg, true)
		if cur == nil {
			return nil
		}
	}
	return cur
}

func (f *Fake) mkdirAll(root *node, p string) *node {
	cur := root
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			continue
		}
		next := child(cur, seg, true)
		if next == nil {
			next = f.add(cur, seg, true, nil)
		}
		cur = next
	}
	return cur
}

func detach(n *node) {
	if p := n.parent; p != nil {
		for i, k := range p.kids {
			if k == n {
				p.kids = append(p.kids[:i], p.kids[i+1:]...)
				break
			}
		}
	}
}

func (f *Fake) drop(n *node) {
	for _, k := range append([]*node(nil), n.kids...) {
		f.drop(k)
	}
	detach(n)
	if n.dir {
		delete(f.dirs, n.id)
	} else {
		delete(f.files, n.id)
		f.release(n.blob)
	}
}

func pathOf(n *node) string {
	if n.parent == nil {
		return "/"
	}
	return path.Join(pathOf(n.parent), n.name)
}

func (f *Fake) used(u *user) int64 {
	var total int64
	for _, n := range f.files {
		if n.owner == u {
			total += n.size()
		}
	}
	return total
}

// validName is the server's rule: none of \ ? * < " : > / | and no
// trailing space (40052).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && utf8.RuneCountInString(name) <= 255 &&
		!strings.ContainsAny(name, `\?*<":>/|`) && !strings.HasSuffix(name, " ")
}

// ForbiddenNames are names the server refuses (for the conformance suite).
var ForbiddenNames = []string{"a:b", "what?", "star*", "pipe|x", `quo"te`, "less<", "more>", `back\slash`, "trailing "}

// sign is the server's HMACAuth.Sign: base64url (padded) of
// HMAC-SHA256("<body>:<expires>"), then ":<expires>".
func (f *Fake) sign(body string, exp int64) string {
	m := hmac.New(sha256.New, f.key)
	fmt.Fprintf(m, "%s:%d", body, exp)
	return base64.URLEncoding.EncodeToString(m.Sum(nil)) + ":" + strconv.FormatInt(exp, 10)
}

// signURI is the server's SignURI: the path is signed, the sign goes in
// the query, URL-encoded ("...%3D%3A<expires>").
func (f *Fake) signURI(p string, exp int64) (string, string) {
	sig := f.sign(p, exp)
	return p + "?" + url.Values{"sign": {sig}}.Encode(), sig
}

// checkSign is the server's HMACAuth.Check of a URL's sign; it answers
// the server's message for a failure, "" when the sign is good.
func (f *Fake) checkSign(p, sign string) string {
	parts := strings.Split(sign, ":")
	if parts[len(parts)-1] == "" {
		return "expire timestamp is missing"
	}
	exp, err := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	if err != nil {
		return "authorization failed"
	}
	if exp != 0 && exp < f.now().Unix() {
		return "signature expired"
	}
	if !hmac.Equal([]byte(f.sign(p, exp)), []byte(sign)) {
		return "authorization failed"
	}
	return ""
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomRunes is the server's util.RandStringRunes: n letters, as its
// download session ids are.
func randomRunes(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// reply writes the server's envelope, always with HTTP 200.
func reply(w http.ResponseWriter, code int, data any, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	body := map[string]any{"code": code, "msg": msg}
	if data != nil {
		body["data"] = data
	}
	json.NewEncoder(w).Encode(body)
}

func objectJSON(n *node) map[string]any {
	t := "file"
	if n.dir {
		t = "dir"
	}
	return map[string]any{"id": n.id, "name": n.name, "path": pathOf(n.parent), "thumb": false,
		"size": n.size(), "type": t, "date": n.date.Format(time.RFC3339Nano),
		"create_date": n.created.Format(time.RFC3339Nano), "source_enabled": false}
}

func sortedKids(n *node) []*node {
	out := append([]*node(nil), n.kids...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].dir != out[j].dir {
			return out[i].dir
		}
		return out[i].name < out[j].name
	})
	return out
}
