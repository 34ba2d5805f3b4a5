// Package cloudrevefake is a strict fake of the Cloudreve 3.8 community
// API (../shared/providers/cloudreve-v3.md), behaving like a real 3.8.3
// server where the document is silent (../shared/providers/NOTES.md):
// every answer is HTTP 200 with a JSON code, download URLs are relative,
// chunks must come in order with exact lengths, copy takes one object,
// uploads refuse existing names, and moving a folder into its own
// descendant is accepted (and orphans it), as the real server does.
package cloudrevefake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Codes of the real server (NOTES.md).
const (
	CodeOK             = 0
	CodeTwoFactor      = 203
	CodeLoginRequired  = 401
	CodeBadParams      = 40001
	CodeExists         = 40004
	CodeCredentials    = 40020
	CodeSessionGone    = 40011
	CodeChunkOrder     = 40012
	CodeChunkLength    = 40013
	CodeObjectNotFound = 40016
	CodePolicyMismatch = 40035
	CodeNotFound       = 40044
	CodeTooLarge       = 40049
	CodeNoCapacity     = 40051
	CodeBadName        = 40052
	CodeUploadExists   = 40054
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
	content []byte
	date    time.Time
	created time.Time
	policy  *Policy // folders: the policy uploads into them use
}

type uploadSession struct {
	id       string
	parent   *node
	name     string
	size     int64
	policy   *Policy
	date     time.Time
	next     int   // local: next chunk index
	received int64 // onedrive: bytes received
	data     []byte
	expires  time.Time
	done     bool
}

// Fake is the server.
type Fake struct {
	mu sync.Mutex

	Now        func() time.Time
	ChunkSize  int64 // local policy chunk size (the real default is 25 MiB)
	QuotaBytes int64

	User, Password, TOTPSecret string
	baseURL                    string
	key                        []byte

	local, onedrive *Policy
	root            *node
	byID            map[string]*node // "f:<id>" and "d:<id>": separate id spaces
	nextID          int
	sessions        map[string]bool // cookie -> fully logged in
	pending2FA      map[string]bool // cookie -> waiting for /user/2fa
	uploads         map[string]*uploadSession
	calls           map[string]int
	faults          []*fault
}

type fault struct {
	endpoint string
	code     int // JSON code to answer; 0 with status set: HTTP status
	status   int
	count    int
}

// New makes a fake with one user and an empty drive using the local policy.
func New() *Fake {
	f := &Fake{
		Now: time.Now, ChunkSize: 1 << 20, QuotaBytes: 1 << 40,
		User: "bridge@example.com", Password: "fake-password-1",
		key:      make([]byte, 32),
		byID:     map[string]*node{},
		sessions: map[string]bool{}, pending2FA: map[string]bool{},
		uploads: map[string]*uploadSession{}, calls: map[string]int{},
	}
	rand.Read(f.key)
	f.local = &Policy{ID: "z3hJ", Name: "Default storage policy", Type: "local"}
	f.onedrive = &Policy{ID: "kVfW", Name: "OneDrive", Type: "onedrive"}
	f.root = f.add(nil, "", true, nil)
	f.root.policy = f.local
	return f
}

// SetBaseURL tells the fake where it is served.
func (f *Fake) SetBaseURL(u string) {
	f.mu.Lock()
	f.baseURL = strings.TrimSuffix(u, "/")
	f.mu.Unlock()
}

// UseOneDrive makes uploads into the folder at p (and its new subfolders)
// go through the OneDrive-style policy.
func (f *Fake) UseOneDrive(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mkdirAll(p).policy = f.onedrive
}

// DropSessions forgets every login, as a server restart does.
func (f *Fake) DropSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = map[string]bool{}
	f.pending2FA = map[string]bool{}
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

// FailCode makes the next count calls of endpoint answer a JSON code.
func (f *Fake) FailCode(endpoint string, code, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fault{endpoint: endpoint, code: code, count: count})
}

// FailHTTP makes the next count calls of endpoint answer an HTTP status.
func (f *Fake) FailHTTP(endpoint string, status, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fault{endpoint: endpoint, status: status, count: count})
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

// Put stores a file behind the driver's back, making folders as needed.
func (f *Fake) Put(p string, content []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.mkdirAll(path.Dir(p))
	if old := child(dir, path.Base(p), false); old != nil {
		f.drop(old)
	}
	f.add(dir, path.Base(p), false, content)
}

// File returns the content of the file at p.
func (f *Fake) File(p string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.lookupDir(path.Dir(p))
	if dir == nil {
		return nil, false
	}
	n := child(dir, path.Base(p), false)
	if n == nil {
		return nil, false
	}
	return n.content, true
}

func (f *Fake) add(parent *node, name string, dir bool, content []byte) *node {
	f.nextID++
	n := &node{id: hashid(f.nextID), dir: dir, name: name, parent: parent, content: content, date: f.Now(), created: f.Now()}
	if parent != nil {
		parent.kids = append(parent.kids, n)
		n.policy = parent.policy
	}
	f.byID[key(n)] = n
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

func key(n *node) string {
	if n.dir {
		return "d:" + n.id
	}
	return "f:" + n.id
}

func child(dir *node, name string, isDir bool) *node {
	for _, k := range dir.kids {
		if k.name == name && k.dir == isDir {
			return k
		}
	}
	return nil
}

func (f *Fake) lookupDir(p string) *node {
	cur := f.root
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

func (f *Fake) mkdirAll(p string) *node {
	cur := f.root
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

func (f *Fake) drop(n *node) {
	for _, k := range append([]*node(nil), n.kids...) {
		f.drop(k)
	}
	if p := n.parent; p != nil {
		for i, k := range p.kids {
			if k == n {
				p.kids = append(p.kids[:i], p.kids[i+1:]...)
				break
			}
		}
	}
	delete(f.byID, key(n))
}

func pathOf(n *node) string {
	if n.parent == nil {
		return "/"
	}
	return path.Join(pathOf(n.parent), n.name)
}

func (f *Fake) used() int64 {
	var total int64
	for _, n := range f.byID {
		total += int64(len(n.content))
	}
	return total
}

// validName is the server's rule: none of \ ? * < " : > / | and no
// trailing space (40052).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `\?*<":>/|`) && !strings.HasSuffix(name, " ")
}

// ForbiddenNames are names the server refuses (for the conformance suite).
var ForbiddenNames = []string{"a:b", "what?", "star*", "pipe|x", `quo"te`, "trailing "}

func (f *Fake) sign(k string, exp int64) string {
	m := hmac.New(sha256.New, f.key)
	fmt.Fprintf(m, "%s:%d", k, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
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
		"size": len(n.content), "type": t, "date": n.date.Format(time.RFC3339Nano),
		"create_date": n.created.Format(time.RFC3339Nano), "source_enabled": false}
}

func sortedKids(n *node) []*node {
	out := append([]*node(nil), n.kids...)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
