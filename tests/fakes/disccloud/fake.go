// Package disccloudfake is a strict fake of a YetiShare site's "File Upload
// API" v2 as DiscCloud runs it (../shared/providers/disccloud-yetishare.md
// and the DiscCloud section of ../shared/providers/NOTES.md).
//
// What the site does and the fake therefore does too:
//   - /authorize takes key1 + key2 (or username + password when
//     AccountLogin is set) and deletes every other token of the account; a
//     token dies after an hour without use (each use renews it), on the
//     fake's clock (SetIdleTTL, or the fault layer's TokenTTL).
//   - Every error is HTTP 200 {"_status":"error","response":"..."}; only
//     unknown routes (404) and wrong methods (405) use real statuses. The
//     fault layer's made-up 429 and 5xx use the document's sample error
//     shape ({"status":"error",...}) with that HTTP status. Numbers are JSON
//     strings where the document's samples have strings; dates are
//     "Y-m-d H:i:s" in the site's zone (Zone), without a zone.
//   - POST fields are trimmed and stripped of HTML tags; query-string
//     parameters are ignored.
//   - /file/upload is one multipart POST (field upload_file). Zero bytes and
//     sizes over the package's max_upload_size are refused (after the body
//     is received, as PHP does); a name taken by a file in the folder
//     (case-insensitively) is renamed "a (2).txt"; an uploaded name loses
//     surrounding spaces, leading dots, double quotes and backslashes
//     (and apostrophes too when StripApostrophes is set: the other reading
//     of "quotes").
//   - /file/edit and /folder/* do not rename on a taken name: two folders of
//     one name, or a folder moved into its own subfolder (which orphans the
//     subtree), are accepted.
//   - The root as a destination of edit/move/copy is the literal "null";
//     "0" is an unknown folder. As a location (listing, create, upload) the
//     root is blank (or "0" for a listing).
//   - /file/delete and /folder/delete move to the trash: trashed objects
//     are no longer listed and count as not found.
//   - The download URL (short URL + ?download_token=, valid LinkTTL)
//     answers 206 only for a range starting after 0; bytes=0-N and suffix
//     ranges get 200 with the whole file; more parallel downloads than the
//     package's concurrent_downloads get 429 (without Retry-After); an
//     unknown or expired token gets HTTP 200 with an HTML page (chunked,
//     no Content-Length, no Content-Disposition). Files are served as
//     attachments.
//   - /file/url_upload_add really fetches the URL (in the background, with
//     its own http.Client); /file/url_upload_status reports it.
//
// Choices where neither document says (the harsher reading each time):
//   - a restart (Faults.Restart, POST /__restart) forgets access tokens and
//     download tokens (a flushed session store); files, folders and
//     scheduled URL uploads stay.
//   - /folder/listing of a missing or trashed folder answers "Could not
//     find folder based on folder_id."; /folder/info reads folder_id (not
//     parent_folder_id, as the page says).
//   - /file/copy names the copy like an upload does ("a (2).txt" when
//     taken).
//   - the package limits upload size (1 GiB) and storage (50 GiB) and
//     allows 4 parallel downloads.
//
// File content lives in temp files (one per file version) under a folder
// that Close removes.
package disccloudfake

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bridge/tests/fakes/faults"
)

// Lifetimes the site uses.
const (
	IdleTTL = time.Hour      // an access token unused this long is dead
	LinkTTL = 24 * time.Hour // a download_token
)

// Messages of the site, as the document lists them.
const (
	MsgNoToken     = "Please provide the access_token param."
	MsgNoAccount   = "Please provide the account_id param."
	MsgBadToken    = "Could not validate access_token and account_id, please reauthenticate or try again."
	MsgBadLogin    = "Could not authenticate user. The username and password may be invalid or your account may be locked from too many failed logins."
	MsgNoFile      = "Could not find file based on file_id."
	MsgNoFolder    = "Could not find folder based on folder_id."
	MsgNoUpload    = "Did not receive uploaded file."
	MsgZeroSize    = "Filesize received was zero."
	MsgNoURLUpload = "Background URL downloading is not enabled on this site."
)

// DateFormat is the API's Y-m-d H:i:s.
const DateFormat = "2006-01-02 15:04:05"

type folder struct {
	id       int
	parent   *folder // nil: the root
	name     string
	added    time.Time
	updated  time.Time
	isPublic string
	trashed  bool
}

type file struct {
	id       int
	folder   *folder // nil: the root
	name     string
	size     int64
	data     string // temp file holding the content
	short    string
	uploaded time.Time
	trashed  bool
}

type token struct {
	lastUsed time.Time
}

type dlToken struct {
	fileID  int
	expires time.Time
}

// scheduled is one url_upload_add.
type scheduled struct {
	id       int
	url      string
	folder   *folder
	status   string // pending, downloading, complete, failed
	created  time.Time
	started  time.Time
	finished time.Time
	total    int64
	file     *file
	err      string
}

// Fake is the site. Calls and faults name endpoints: authorize,
// disable-token, account-info, account-package, listing, folder-create,
// folder-info, folder-edit, folder-move, folder-delete, upload, download
// (the API call handing out links), dl (the download URL itself),
// file-info, file-edit, file-move, file-copy, file-delete, url-upload-add,
// url-upload-status.
type Fake struct {
	// Faults is the fault layer every endpoint is served through.
	Faults *faults.Layer

	// Key1, Key2 (or Username, Password with AccountLogin) authorize the
	// one account, AccountID.
	Key1, Key2         string
	Username, Password string
	AccountLogin       bool
	AccountID          string
	// Zone is the site's time zone: its dates are written in it.
	Zone *time.Location
	// StripApostrophes makes uploads drop ' as well as ".
	StripApostrophes bool

	mu            sync.Mutex
	dir           string
	baseURL       string
	idle          time.Duration
	maxUpload     int64
	maxStorage    int64
	downloadSlots int
	urlUploads    bool
	folders       map[int]*folder
	files         map[int]*file
	nextFolder    int
	nextFile      int
	tokens        map[string]*token
	downloads     map[string]*dlToken
	sched         map[int]*scheduled
	nextSched     int
	activeDL      int
	secrets       []string
	fetch         *http.Client
	bg            sync.WaitGroup
	closed        bool

	uploadBytes atomic.Int64
}

// New makes a site with one empty account. Close removes its content.
func New() *Fake {
	dir, err := os.MkdirTemp("", "disccloudfake-")
	if err != nil {
		panic(fmt.Sprintf("disccloudfake: %v", err))
	}
	f := &Fake{
		Faults:    faults.New(faults.Config{}),
		Key1:      randomHex(32),
		Key2:      randomHex(32),
		Username:  "bridge",
		Password:  "fake-password-" + randomHex(4),
		AccountID: "158642",
		Zone:      time.UTC,
		dir:       dir,
		baseURL:   "http://disccloud.invalid",
		maxUpload: 1 << 30, maxStorage: 50 << 30, downloadSlots: 4, urlUploads: true,
		folders: map[int]*folder{}, files: map[int]*file{},
		nextFolder: 100, nextFile: 1000,
		tokens: map[string]*token{}, downloads: map[string]*dlToken{}, sched: map[int]*scheduled{},
		fetch: &http.Client{Timeout: 10 * time.Minute},
	}
	f.Faults.SetErrorWriter(writeFault)
	f.Faults.OnRestart(f.restart)
	return f
}

// Close waits for URL uploads and removes every file's content.
func (f *Fake) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.bg.Wait()
	return os.RemoveAll(f.dir)
}

// restart forgets the session store: access tokens and download tokens.
func (f *Fake) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]*token{}
	f.downloads = map[string]*dlToken{}
}

// writeFault answers the fault layer's made-up failures in the document's
// sample error shape, with the real HTTP status.
func writeFault(w http.ResponseWriter, r *http.Request, status int, msg string) {
	text := "Server error."
	if status == http.StatusTooManyRequests {
		text = "Maximum API request limit reached. Try to reduce the amount of requests."
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":"error","response":%q,"_datetime":%q}`, text, time.Now().UTC().Format(DateFormat))
}

// SetBaseURL tells the fake where it is served (download and file URLs).
func (f *Fake) SetBaseURL(u string) {
	f.mu.Lock()
	f.baseURL = strings.TrimSuffix(u, "/")
	f.mu.Unlock()
}

// APIBase is the api_base a driver is given.
func (f *Fake) APIBase() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.baseURL + "/api/v2/"
}

// SetClock replaces the fake's clock (the fault layer's).
func (f *Fake) SetClock(now func() time.Time) { f.Faults.SetClock(now) }

// Advance moves the fake's clock forward.
func (f *Fake) Advance(d time.Duration) { f.Faults.Advance(d) }

func (f *Fake) now() time.Time { return f.Faults.Now() }

// SetIdleTTL sets how long an unused access token lives (0: the fault
// layer's TokenTTL, else IdleTTL).
func (f *Fake) SetIdleTTL(d time.Duration) {
	f.mu.Lock()
	f.idle = d
	f.mu.Unlock()
}

func (f *Fake) idleTTL() time.Duration {
	if f.idle > 0 {
		return f.idle
	}
	return f.Faults.TokenTTL(IdleTTL)
}

// SetPackage sets the account package's max_upload_size, max_storage_bytes
// and concurrent_downloads (0: unlimited, as the site writes it).
func (f *Fake) SetPackage(maxUpload, maxStorage int64, downloads int) {
	f.mu.Lock()
	f.maxUpload, f.maxStorage, f.downloadSlots = maxUpload, maxStorage, downloads
	f.mu.Unlock()
}

// SetURLUploads turns background URL downloading on or off.
func (f *Fake) SetURLUploads(on bool) {
	f.mu.Lock()
	f.urlUploads = on
	f.mu.Unlock()
}

// SetFetchClient replaces the client url_upload_add fetches with.
func (f *Fake) SetFetchClient(c *http.Client) {
	f.mu.Lock()
	f.fetch = c
	f.mu.Unlock()
}

// ExpireTokens kills every access token (as an hour without use does).
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	f.tokens = map[string]*token{}
	f.mu.Unlock()
}

// ForgetDownloads kills every download_token.
func (f *Fake) ForgetDownloads() {
	f.mu.Lock()
	f.downloads = map[string]*dlToken{}
	f.mu.Unlock()
}

// Calls returns how often each endpoint was called (failed calls too).
func (f *Fake) Calls() map[string]int { return f.Faults.Calls() }

// UploadBytes is how many body bytes the upload endpoint has received.
func (f *Fake) UploadBytes() int64 { return f.uploadBytes.Load() }

// Secrets returns every credential the fake knows or handed out, so tests
// can check that none reaches a log.
func (f *Fake) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{f.Key1, f.Key2, f.Password}, f.secrets...)
}

// Tokens counts live access tokens.
func (f *Fake) Tokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens)
}

// Put stores a file behind the driver's back (folders made as needed).
func (f *Fake) Put(p string, content []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.mkdirAll(path.Dir(path.Clean("/" + p)))
	name, err := f.store(strings.NewReader(string(content)))
	if err != nil {
		return err
	}
	f.addFile(dir, path.Base(p), int64(len(content)), name)
	return nil
}

// File returns the content at p as a mount sees it (the first of several
// entries of one name).
func (f *Fake) File(p string) ([]byte, bool) {
	f.mu.Lock()
	fl := f.lookupFile(p)
	f.mu.Unlock()
	if fl == nil {
		return nil, false
	}
	b, err := os.ReadFile(fl.data)
	return b, err == nil
}

// Exists reports whether a file (dir false) or folder (dir true) is at p.
func (f *Fake) Exists(p string, dir bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dir {
		d, ok := f.lookupDir(p)
		return ok && d != nil
	}
	return f.lookupFile(p) != nil
}

// Names lists the names in the folder at p (files and folders, sorted,
// duplicates kept), or nil when there is no such folder.
func (f *Fake) Names(p string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, ok := f.lookupDir(p)
	if !ok {
		return nil
	}
	out := []string{}
	for _, d := range f.subfolders(dir) {
		out = append(out, d.name)
	}
	for _, fl := range f.filesIn(dir) {
		out = append(out, fl.name)
	}
	sort.Strings(out)
	return out
}

// Orphans counts folders not trashed that cannot be reached from the root
// (what moving a folder into its own subfolder leaves).
func (f *Fake) Orphans() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.folders {
		if !d.trashed && !f.reachable(d) {
			n++
		}
	}
	return n
}

func (f *Fake) reachable(d *folder) bool {
	seen := map[*folder]bool{}
	for cur := d; cur != nil; cur = cur.parent {
		if seen[cur] || cur.trashed {
			return false
		}
		seen[cur] = true
	}
	return true
}

// alive reports whether a folder (nil: the root) exists and is reachable.
func (f *Fake) alive(d *folder) bool { return d == nil || f.reachable(d) }

func (f *Fake) subfolders(dir *folder) []*folder {
	var out []*folder
	for _, d := range f.folders {
		if d.parent == dir && !d.trashed {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (f *Fake) filesIn(dir *folder) []*file {
	var out []*file
	for _, fl := range f.files {
		if fl.folder == dir && !fl.trashed {
			out = append(out, fl)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// lookupDir resolves a path of folder names (nil, true: the root).
func (f *Fake) lookupDir(p string) (*folder, bool) {
	var cur *folder
	for _, seg := range strings.Split(path.Clean("/"+p), "/") {
		if seg == "" {
			continue
		}
		var next *folder
		for _, d := range f.subfolders(cur) {
			if d.name == seg {
				next = d
				break
			}
		}
		if next == nil {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

func (f *Fake) lookupFile(p string) *file {
	p = path.Clean("/" + p)
	dir, ok := f.lookupDir(path.Dir(p))
	if !ok {
		return nil
	}
	for _, fl := range f.filesIn(dir) {
		if fl.name == path.Base(p) {
			return fl
		}
	}
	return nil
}

func (f *Fake) mkdirAll(p string) *folder {
	var cur *folder
	for _, seg := range strings.Split(path.Clean("/"+p), "/") {
		if seg == "" {
			continue
		}
		var next *folder
		for _, d := range f.subfolders(cur) {
			if d.name == seg {
				next = d
				break
			}
		}
		if next == nil {
			next = f.addFolder(cur, seg)
		}
		cur = next
	}
	return cur
}

func (f *Fake) addFolder(parent *folder, name string) *folder {
	f.nextFolder++
	d := &folder{id: f.nextFolder, parent: parent, name: name, added: f.now(), isPublic: "0"}
	f.folders[d.id] = d
	return d
}

func (f *Fake) addFile(dir *folder, name string, size int64, data string) *file {
	f.nextFile++
	fl := &file{id: f.nextFile, folder: dir, name: name, size: size, data: data,
		short: shortURL(f.nextFile), uploaded: f.now()}
	f.files[fl.id] = fl
	return fl
}

// store writes r to a new temp file and returns its name.
func (f *Fake) store(r io.Reader) (string, error) {
	tf, err := os.CreateTemp(f.dir, "v-")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(tf, r); err != nil {
		tf.Close()
		os.Remove(tf.Name())
		return "", err
	}
	return tf.Name(), tf.Close()
}

// used is the size of every file not trashed.
func (f *Fake) used() int64 {
	var n int64
	for _, fl := range f.files {
		if !fl.trashed {
			n += fl.size
		}
	}
	return n
}

// totalSize is a folder's size with everything below it (a folder moved
// into its own subfolder makes a cycle: each folder counts once).
func (f *Fake) totalSize(d *folder) int64 {
	return f.sizeBelow(d, map[*folder]bool{})
}

func (f *Fake) sizeBelow(d *folder, seen map[*folder]bool) int64 {
	if seen[d] {
		return 0
	}
	seen[d] = true
	var n int64
	for _, fl := range f.filesIn(d) {
		n += fl.size
	}
	for _, sub := range f.subfolders(d) {
		n += f.sizeBelow(sub, seen)
	}
	return n
}

// freeName is the name an upload of name gets in dir: name itself, or
// "name (2).ext", "name (3).ext"... when a file takes it (whatever the
// case).
func (f *Fake) freeName(dir *folder, name string) string {
	taken := func(n string) bool {
		for _, fl := range f.filesIn(dir) {
			if strings.EqualFold(fl.name, n) {
				return true
			}
		}
		return false
	}
	if !taken(name) {
		return name
	}
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for i := 2; ; i++ {
		if n := fmt.Sprintf("%s (%d)%s", base, i, ext); !taken(n) {
			return n
		}
	}
}

// uploadName is what the site makes of an uploaded name.
func (f *Fake) uploadName(name string) string {
	name = strings.ReplaceAll(name, `\`, "")
	name = strings.ReplaceAll(name, `"`, "")
	if f.StripApostrophes {
		name = strings.ReplaceAll(name, "'", "")
	}
	name = strings.TrimFunc(name, func(r rune) bool { return r <= ' ' })
	return strings.TrimLeft(name, ".")
}

// cleanField is what the site does to every POST field: trim it and strip
// HTML tags (PHP's strip_tags: from '<' to the next '>' or the end).
func cleanField(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		var b strings.Builder
		in := false
		for _, r := range v {
			switch {
			case in && r == '>':
				in = false
			case in:
			case r == '<':
				in = true
			default:
				b.WriteRune(r)
			}
		}
		v = b.String()
	}
	return strings.TrimSpace(v)
}

func shortURL(id int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	s := ""
	for v := id*7919 + 3001; v > 0; v /= len(alphabet) {
		s += string(alphabet[v%len(alphabet)])
	}
	return s
}

func randomHex(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = hex[rand.IntN(16)]
	}
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }
