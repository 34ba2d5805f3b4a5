package teraboxfake

import (
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// account is one TeraBox user: its uk and its own tree, with the app
// folder inside it. The main account's tree is Fake.root; every other
// account (NewAccount) has a tree of its own, so a share of one account's
// files is saved into another's (share/transfer) as on the real service.
type account struct {
	uk   int64
	root *node
	app  *node
}

// Account is a user of the fake other than the main one: a friend who
// shares files (Share), or a second login that mounts a share. Only the
// share endpoints, uinfo and the OAuth ones serve its tokens; the file
// endpoints (list, filemetas, filemanager, precreate, create, download,
// superfile2) serve the main account alone and refuse its tokens with
// errno -6, so mount it only as a share.
type Account struct {
	f *Fake
	a *account
	// UK is the account's user id (uinfo's uk, tokeninfo's user_id, the
	// uk of its shares).
	UK int64
}

// mainAccount is the main account (f.mu held).
func (f *Fake) mainAccount() *account {
	return &account{uk: f.UserID, root: f.root, app: f.appRoot}
}

// NewAccount makes another user with an empty app folder of its own.
func (f *Fake) NewAccount() *Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.otherUK += 1_000_003
	a := &account{uk: f.UserID + f.otherUK}
	a.root = f.newNode(nil, "", true)
	apps := f.newNode(a.root, "From: Other Applications", true)
	a.app = f.newNode(apps, f.AppName+"-", true)
	return &Account{f: f, a: a, UK: a.uk}
}

// IssueToken makes a token pair of this account, as its finished login
// would, and returns (access, refresh).
func (a *Account) IssueToken() (string, string) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	t := a.f.issue(time.Time{})
	t.acct = a.a
	return t.access, t.refresh
}

// AppDir is the account's app folder's full path.
func (a *Account) AppDir() string {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	return fullPath(a.a.app)
}

// Put stores a file at a path below the account's app folder, making
// folders as needed.
func (a *Account) Put(p string, content []byte) {
	f := a.f
	b, err := f.blobFrom(strings.NewReader(string(content)))
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.mkdirAll(a.a.app, path.Dir(path.Clean("/"+p)))
	name := path.Base(p)
	if old, ok := dir.kids[name]; ok {
		f.drop(old)
	}
	f.newNode(dir, name, false).blob = b
}

// Mkdir makes a folder below the account's app folder (and its parents).
func (a *Account) Mkdir(p string) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	a.f.mkdirAll(a.a.app, p)
}

// Delete removes a file or folder below the account's app folder.
func (a *Account) Delete(p string) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	if n := lookup(a.a.app, p); n != nil && n != a.a.app {
		a.f.drop(n)
	}
}

// File returns the content of a file below the account's app folder.
func (a *Account) File(p string) ([]byte, bool) {
	a.f.mu.Lock()
	n := lookup(a.a.app, p)
	a.f.mu.Unlock()
	if n == nil || n.dir {
		return nil, false
	}
	b, err := os.ReadFile(n.blob.file)
	return b, err == nil
}

// Names lists a folder below the account's app folder, sorted.
func (a *Account) Names(p string) []string {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	return names(lookup(a.a.app, p))
}

// Share shares the file or folder at a path below the account's app
// folder with an extraction code (pwd: 4 digits or lowercase letters, or
// "" for none) and returns the share link, https://…/s/1<surl>.
func (a *Account) Share(p, pwd string) string { return a.f.share(a.a, p, pwd) }

// names lists a folder's entries, sorted (f.mu held).
func names(n *node) []string {
	if n == nil || !n.dir {
		return nil
	}
	out := make([]string, 0, len(n.kids))
	for name := range n.kids {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// tokenAccount is the account whose access token r carries, nil for the
// main account or an unknown token.
func (f *Fake) tokenAccount(r *http.Request) *account {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tokens[r.URL.Query().Get("access_tokens")]; t != nil {
		return t.acct
	}
	return nil
}

// accountOf is r's account, the main one included (f.mu held).
func (f *Fake) accountOf(r *http.Request) *account {
	if t := f.tokens[r.URL.Query().Get("access_tokens")]; t != nil && t.acct != nil {
		return t.acct
	}
	return f.mainAccount()
}

// ukOf is a token's user id (f.mu held).
func (f *Fake) ukOf(t *token) int64 {
	if t.acct != nil {
		return t.acct.uk
	}
	return f.UserID
}
