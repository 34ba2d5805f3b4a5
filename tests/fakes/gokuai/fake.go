// Package gokuaifake is a strict fake of the Gokuai (够快云库) m-api
// (../shared/providers/gokuai.md and the Gokuai section of NOTES.md), for
// tests and for trying a mount without an account.
//
// What it checks on every call: the signature (HMAC-SHA1 over the sorted
// parameter values with the client secret; filehash and filesize sent but
// never signed; empty values either kept or skipped, as official clients
// disagree), the dateline's freshness, the access token, the HTTP method,
// the API version in the path, and every required parameter.
//
// Choices where the documents are silent (one strict reading each):
//   - Errors are {"error_code": N, "error_msg": ...} with HTTP status N/100:
//     40001 bad or missing parameter, 40002 invalid file name, 40101
//     unknown access token, 40102 expired access token, 40103 bad
//     signature, 40104 dateline outside the window (both HTTP 401, so a
//     client refreshing on every 401 is caught looping), 40301 the library
//     root cannot be changed, 40302 library full, 40401 no such file or
//     folder, 40402 no such library, 40403 no such upload session, 40901
//     name taken, 40902 upload offset or finish out of order (with
//     "expect"), 40005 CRC32 mismatch, 40006 content does not match
//     filehash. Every answer carries a Date header on the fake's clock.
//   - The token endpoint (/m-api/oauth2/token2) answers RFC 6749-style
//     {error, error_description}: invalid_grant (wrong password, refresh
//     token used, expired or unknown), invalid_client, invalid_sign,
//     invalid_dateline, all HTTP 400 except the signature ones (401).
//     Refresh tokens are single use and the access token they came with
//     dies with them. Access tokens live an hour (Faults.TokenTTL wins).
//   - A restart forgets access tokens, upload sessions and the key that
//     signs download links; refresh tokens, files and create_file
//     registrations are in the database and stay.
//   - Paths (fullpath) are relative to the library root, "/"-separated,
//     without a leading or trailing slash; "" is the root. A file and a
//     folder cannot share a name.
//   - file/ls gives at most PageMax entries whatever size asks; count is
//     the number of entries in the folder (not in the page). order
//     filename sorts by name; the default is last modification, newest
//     first. file/open's filesize is a JSON string (as documented), ls
//     gives create_member_id as a string, info as a number.
//   - file/ls of a fullpath that is not a folder is no error (the
//     document does not say; the harshest reading): a path that is
//     nothing lists as an empty folder (count 0), a file's path as that
//     file alone, so a client must not take a listing as proof that a
//     folder exists. A fullpath with an empty, "." or ".." segment is
//     40401 (no way out of the library).
//   - create_folder answers {hash, fullpath}; with overwrite=1 (the
//     default) an existing folder is answered as if made, with 0 it gets
//     a new name "name(2)". A file's name answers 40901 with overwrite=1.
//   - create_file: a filehash known anywhere (same sha1 and size) is
//     state 1 at once, and so is an empty file. Otherwise state 0: the
//     name is decided at upload_finish, where overwrite=1 replaces the
//     old file (it keeps its content until then) and overwrite=0 keeps
//     both, the newcomer renamed "name(2).ext" — which the fake records
//     (Twins). "server" is "host:port/up,host:port/up" without a scheme
//     when the fake is served over plain http.
//   - The upload server takes parts strictly in order: a range starting
//     anywhere but at the bytes received answers 409 {"expect": "N"}.
//     Parts are at most MaxPartSize bytes. upload_finish answers 202 the
//     first FinishPolls times it is asked for a complete upload, then
//     200 {hash, fullpath, filehash, filesize}, and 200 again for a
//     finished session. upload_init for a pathhash with an open session
//     returns that session (resume); for a finished one it answers 202.
//   - copy and move refuse a name taken at the target (40901), except
//     copy with overwrite=1 over a file. move refuses target_mount_id.
//     copy, move, rename and del answer HTTP 200 with an empty body.
//   - Download links (file/open uris) live 10 minutes (Faults.LinkTTL
//     wins), honour Range and serve the version they were made for; a
//     dead or forged link answers 403 JSON.
//
// Content is kept in temp files (one per distinct content), removed by
// Close; metadata lives in memory.
package gokuaifake

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"bridge/tests/fakes/faults"
)

// Error codes of the fake (see the package comment).
const (
	CodeBadParam      = 40001
	CodeBadName       = 40002
	CodeBadCRC        = 40005
	CodeBadHash       = 40006
	CodeBadToken      = 40101
	CodeTokenExpired  = 40102
	CodeBadSign       = 40103
	CodeStaleDateline = 40104
	CodeLibraryRoot   = 40301
	CodeQuota         = 40302
	CodeNotFound      = 40401
	CodeNoLibrary     = 40402
	CodeNoSession     = 40403
	CodeExists        = 40901
	CodeOffset        = 40902
)

// Lifetimes where the document gives one or none.
const (
	AccessTTL  = time.Hour
	LinkTTL    = 10 * time.Minute // "下载地址有效期10分钟"
	PendingTTL = 24 * time.Hour   // a create_file registration
)

// Mount ids of the two libraries New makes.
const (
	PersonalMount = 1
	TeamMount     = 2
)

// Names of the two libraries New makes.
const (
	PersonalName = "个人文件"
	TeamName     = "Team"
)

// blob is one distinct content, kept in a temp file.
type blob struct {
	file string
	size int64
	sha1 string
}

type node struct {
	hash     string // the file's unique id, kept by rename and move
	dir      bool
	name     string
	parent   *node
	kids     map[string]*node
	blob     *blob
	created  time.Time
	modified time.Time
	lib      *library
}

type library struct {
	mountID, orgID, entID, orgType int
	name                           string
	total                          int64
	root                           *node
}

type token struct {
	access, refresh string
	expires         time.Time
	refreshExpires  time.Time // zero: none
	used            bool      // the refresh token was spent
}

// pending is what create_file registers for a state-0 upload.
type pending struct {
	hash      string
	lib       *library
	fullpath  string
	filehash  string
	size      int64
	overwrite bool
	expires   time.Time
	done      map[string]any // the finish answer, once finished
}

type session struct {
	mu       sync.Mutex // held by the call using the session
	id       string
	p        *pending
	file     *os.File
	received int64
	polls    int
	done     map[string]any
}

// Fake is the provider, served by Handler through its fault layer
// (Faults). Calls, Fail and Cut name endpoints: token, mount, ls, info,
// download (file/open), dl (the links), create_folder, create_file,
// upload_server, web_upload, upload_init, upload_part, upload_req,
// upload_finish, upload_abort, copy, move, rename, del, search.
type Fake struct {
	mu sync.Mutex

	// Faults is the fault layer every endpoint is served through: the
	// clock, lifetimes, rate limit, random failures and restarts.
	Faults *faults.Layer

	// ClientID and ClientSecret are the app's; Username and Password the
	// account's.
	ClientID, ClientSecret string
	Username, Password     string
	// PageMax is the most entries file/ls gives per page.
	PageMax int
	// MaxPartSize is the largest part upload_part takes.
	MaxPartSize int64
	// FinishPolls is how many times upload_finish answers 202 (merging)
	// for a complete upload before it answers 200.
	FinishPolls int
	// DatelineWindow is how far a dateline may be from the fake's clock.
	DatelineWindow time.Duration

	dir     string
	baseURL string
	linkKey []byte
	libs    []*library
	byHash  map[string]*node
	blobs   map[string]*blob // by sha1+size
	tokens  map[string]*token
	refresh map[string]*token
	pending map[string]*pending
	upSess  map[string]*session
	secrets []string
	twins   []string
	grants  map[string]int
	// counters for tests
	uploadBytes  int64
	conflicts    int
	loseNextPart bool
}

// New makes a fake with a personal library and a team library, both empty.
func New() *Fake {
	dir, err := os.MkdirTemp("", "gokuai-fake-*")
	if err != nil {
		panic(fmt.Sprintf("gokuai fake: temp dir: %v", err))
	}
	f := &Fake{
		Faults:         faults.New(faults.Config{}),
		ClientID:       "bridge-gokuai-app",
		ClientSecret:   randomHex(11),
		Username:       "bridge@example.com",
		Password:       "fake-password-" + randomHex(4),
		PageMax:        100,
		MaxPartSize:    10 << 20,
		FinishPolls:    1,
		DatelineWindow: 2 * time.Minute,
		dir:            dir,
		linkKey:        newKey(),
		byHash:         map[string]*node{},
		blobs:          map[string]*blob{},
		tokens:         map[string]*token{},
		refresh:        map[string]*token{},
		pending:        map[string]*pending{},
		upSess:         map[string]*session{},
		grants:         map[string]int{},
	}
	f.Faults.SetErrorWriter(f.writeFault)
	f.Faults.OnRestart(f.restart)
	f.AddLibrary(PersonalName, 20<<30)
	f.AddLibrary(TeamName, 50<<30)
	f.libs[0].orgType = 0
	f.libs[1].entID, f.libs[1].orgType = 7, 1
	return f
}

// Close removes the fake's temp files.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.upSess {
		if s.done == nil {
			s.file.Close()
		}
	}
	return os.RemoveAll(f.dir)
}

// AddLibrary adds a library (name may repeat another's) of total bytes and
// returns its mount id.
func (f *Fake) AddLibrary(name string, total int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := len(f.libs) + 1
	lib := &library{mountID: id, orgID: 100 + id, entID: 7, orgType: 1, name: name, total: total}
	lib.root = &node{dir: true, kids: map[string]*node{}, lib: lib, hash: randomHex(20), created: f.now(), modified: f.now()}
	f.libs = append(f.libs, lib)
	return id
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

// restart forgets what the service keeps in memory.
func (f *Fake) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]*token{}
	for _, s := range f.upSess {
		if s.done == nil { // a finished session's file is a blob now
			s.file.Close()
			os.Remove(s.file.Name())
		}
	}
	f.upSess = map[string]*session{}
	f.linkKey = newKey()
}

// SetClock replaces the fake's clock (the fault layer's).
func (f *Fake) SetClock(now func() time.Time) { f.Faults.SetClock(now) }

// Advance moves the fake's clock forward by d.
func (f *Fake) Advance(d time.Duration) { f.Faults.Advance(d) }

func (f *Fake) now() time.Time { return f.Faults.Now() }

// SetBaseURL tells the fake where it is served (for links and the upload
// server it hands out).
func (f *Fake) SetBaseURL(u string) {
	f.mu.Lock()
	f.baseURL = strings.TrimSuffix(u, "/")
	f.mu.Unlock()
}

// Calls returns how often each endpoint was called (failed calls too).
func (f *Fake) Calls() map[string]int { return f.Faults.Calls() }

// Fail makes the next count calls of endpoint answer status.
func (f *Fake) Fail(endpoint string, status, count int) { f.Faults.Fail(endpoint, status, count) }

// Cut makes the next count calls of endpoint break off half way through
// their answer (after acting).
func (f *Fake) Cut(endpoint string, count int) { f.Faults.Cut(endpoint, count) }

// Secrets returns every credential the fake knows or handed out, so tests
// can check that none reaches a log.
func (f *Fake) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{f.ClientSecret, f.Password, md5hex(f.Password)}, f.secrets...)
}

// UploadBytes is how many content bytes the upload endpoints received.
func (f *Fake) UploadBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.uploadBytes
}

// Conflicts counts upload_part answers 409 (wrong offset).
func (f *Fake) Conflicts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conflicts
}

// Twins lists the files stored under a changed name because their name
// was taken and overwrite was not 1 (library name + "/" + fullpath).
func (f *Fake) Twins() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.twins...)
}

// Grants counts token endpoint successes by grant_type.
func (f *Fake) Grants() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.grants {
		out[k] = v
	}
	return out
}

// OpenUploads counts upload sessions neither finished nor aborted.
func (f *Fake) OpenUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.upSess {
		if s.done == nil {
			n++
		}
	}
	return n
}

// LoseNextPart makes the next upload_part be acknowledged but not kept, as
// a server that lost it does: the part after it then answers 409.
func (f *Fake) LoseNextPart() {
	f.mu.Lock()
	f.loseNextPart = true
	f.mu.Unlock()
}

// IssueToken makes a token pair, as a password login would, and returns
// (access, refresh).
func (f *Fake) IssueToken() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.issue()
	return t.access, t.refresh
}

// ExpireAccessTokens makes every access token expired (refresh tokens live).
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.expires = f.now().Add(-time.Second)
	}
}

// RevokeRefreshTokens kills every refresh token and access token.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = map[string]*token{}
	f.tokens = map[string]*token{}
}

func (f *Fake) issue() *token {
	now := f.now()
	t := &token{access: "gk-at-" + randomHex(16), refresh: "gk-rt-" + randomHex(16),
		expires: now.Add(f.Faults.TokenTTL(AccessTTL))}
	if ttl := f.Faults.RefreshTTL(); ttl > 0 {
		t.refreshExpires = now.Add(ttl)
	}
	f.tokens[t.access] = t
	f.refresh[t.refresh] = t
	f.secrets = append(f.secrets, t.access, t.refresh)
	return t
}

// libByMount finds a library.
func (f *Fake) libByMount(id int) *library {
	for _, l := range f.libs {
		if l.mountID == id {
			return l
		}
	}
	return nil
}

// lookup resolves a fullpath in lib ("" is the root); nil when missing or
// malformed.
func lookup(lib *library, fullpath string) *node {
	if fullpath == "" {
		return lib.root
	}
	if !validPath(fullpath) {
		return nil
	}
	cur := lib.root
	for _, seg := range strings.Split(fullpath, "/") {
		if !cur.dir {
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

// validPath: no leading or trailing slash, no empty, "." or ".." segment.
func validPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// validName refuses what Gokuai's clients refuse: the characters Windows
// forbids, control characters, dot names, names over 255 bytes.
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
var ForbiddenNames = []string{"a:b", "what?", "star*", "pipe|x", `quo"te`, "less<", "more>", `back\slash`, "tab\tname"}

func fullpathOf(n *node) string {
	var segs []string
	for c := n; c != nil && c.parent != nil; c = c.parent {
		segs = append([]string{c.name}, segs...)
	}
	return strings.Join(segs, "/")
}

func within(n, base *node) bool {
	for c := n; c != nil; c = c.parent {
		if c == base {
			return true
		}
	}
	return false
}

func (f *Fake) newNode(parent *node, name string, dir bool, b *blob) *node {
	now := f.now()
	n := &node{hash: randomHex(20), dir: dir, name: name, parent: parent, blob: b, created: now, modified: now, lib: parent.lib}
	if dir {
		n.kids = map[string]*node{}
	}
	parent.kids[name] = n
	parent.modified = now
	f.byHash[n.hash] = n
	return n
}

func (f *Fake) drop(n *node) {
	for _, k := range n.kids {
		f.drop(k)
	}
	if n.parent != nil {
		delete(n.parent.kids, n.name)
		n.parent.modified = f.now()
	}
	delete(f.byHash, n.hash)
}

// setLib moves n's subtree into lib (after a move between libraries).
func setLib(n *node, lib *library) {
	n.lib = lib
	for _, k := range n.kids {
		setLib(k, lib)
	}
}

// used is the bytes of lib's files.
func used(lib *library) int64 {
	var total int64
	var walk func(n *node)
	walk = func(n *node) {
		if n.blob != nil {
			total += n.blob.size
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(lib.root)
	return total
}

// twinName is the name overwrite=0 gives a newcomer whose name is taken:
// "a(2).txt", "a(3).txt"...
func twinName(dir *node, name string) string {
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if ext == name { // ".hidden"
		base, ext = name, ""
	}
	for i := 2; ; i++ {
		cand := fmt.Sprintf("%s(%d)%s", base, i, ext)
		if _, taken := dir.kids[cand]; !taken {
			return cand
		}
	}
}

// storeBlob registers the content of a finished temp file (taking it), or
// the known blob of the same content (removing the file).
func (f *Fake) storeBlob(file string, size int64, sum string) *blob {
	key := fmt.Sprintf("%s:%d", sum, size)
	if b, ok := f.blobs[key]; ok {
		os.Remove(file)
		return b
	}
	b := &blob{file: file, size: size, sha1: sum}
	f.blobs[key] = b
	return b
}

// blobFromBytes stores content (tests, web_upload of small files).
func (f *Fake) blobFromBytes(content []byte) (*blob, error) {
	tmp, err := os.CreateTemp(f.dir, "blob-*")
	if err != nil {
		return nil, err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	sum := sha1.Sum(content)
	return f.storeBlob(tmp.Name(), int64(len(content)), hex.EncodeToString(sum[:])), nil
}

func (f *Fake) knownBlob(sum string, size int64) *blob {
	if size == 0 {
		b, _ := f.blobFromBytes(nil)
		return b
	}
	return f.blobs[fmt.Sprintf("%s:%d", sum, size)]
}

// Put stores a file in the library of mount id behind the driver's back,
// making folders as needed.
func (f *Fake) Put(mountID int, fullpath string, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.libByMount(mountID)
	dir := lib.root
	segs := strings.Split(fullpath, "/")
	for _, seg := range segs[:len(segs)-1] {
		next, ok := dir.kids[seg]
		if !ok {
			next = f.newNode(dir, seg, true, nil)
		}
		dir = next
	}
	b, err := f.blobFromBytes(content)
	if err != nil {
		panic(err)
	}
	if old, ok := dir.kids[segs[len(segs)-1]]; ok {
		f.drop(old)
	}
	f.newNode(dir, segs[len(segs)-1], false, b)
}

// LibraryFile returns the content of the file at fullpath in a library.
func (f *Fake) LibraryFile(mountID int, fullpath string) ([]byte, bool) {
	f.mu.Lock()
	lib := f.libByMount(mountID)
	var n *node
	if lib != nil {
		n = lookup(lib, fullpath)
	}
	f.mu.Unlock()
	if n == nil || n.dir {
		return nil, false
	}
	b, err := os.ReadFile(n.blob.file)
	return b, err == nil
}

// File returns the content at p as a mount of every library sees it:
// "/<library name>/<fullpath>" (the libraries New makes have unique
// names).
func (f *Fake) File(p string) ([]byte, bool) {
	p = strings.TrimPrefix(p, "/")
	name, rest, _ := strings.Cut(p, "/")
	f.mu.Lock()
	id := 0
	for _, l := range f.libs {
		if l.name == name {
			id = l.mountID
			break
		}
	}
	f.mu.Unlock()
	return f.LibraryFile(id, rest)
}

// Exists reports whether a file or folder is at fullpath in a library.
func (f *Fake) Exists(mountID int, fullpath string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	lib := f.libByMount(mountID)
	return lib != nil && fullpath != "" && lookup(lib, fullpath) != nil
}

// Names lists the entries of a folder of a library, sorted.
func (f *Fake) Names(mountID int, fullpath string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	if lib := f.libByMount(mountID); lib != nil {
		if n := lookup(lib, fullpath); n != nil {
			for k := range n.kids {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
