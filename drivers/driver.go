// Package drivers holds the contract between the WebDAV layer (package davfs)
// and one cloud provider. A driver is small: it lists folders, hands out
// download links (or opens streams), uploads finished temp files and performs
// folder operations server-side. Everything shared — path resolution, the
// listing cache, range reading, upload buffering, status codes — lives above
// it in davfs, so drivers stay thin (as gocloud.dev's blob/driver and
// rclone's backends do).
//
// Paths given to a driver are mount-relative, cleaned, slash-separated and
// absolute ("/" is the mount root, "/a/b.txt" a file). Every Ref also carries
// the Object the bridge last listed for that path, so id-based providers need
// no path cache of their own: a Ref's ID is the provider's id.
package drivers

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"
)

// Object is one file or folder as the provider lists it.
type Object struct {
	Name    string    // base name, never empty except for the root
	Size    int64     // bytes; 0 for folders
	ModTime time.Time // zero when the provider has no times
	IsDir   bool
	ID      string // the provider's id; for path-based providers may equal the path
	// Hashes holds content hashes only when they are real hashes of the
	// bytes (lowercase hex). A provider's opaque "hash" that is not md5 or
	// sha1 of the content must not be put here.
	Hashes Hashes
}

// Hashes are lowercase hex content hashes; an empty field means unknown.
type Hashes struct {
	MD5  string
	SHA1 string
}

// HashSet names kinds of content hash.
type HashSet uint8

// The hashes the bridge can compute while an upload arrives.
const (
	HashMD5 HashSet = 1 << iota
	HashSHA1
)

// Has reports whether s includes every hash of k.
func (s HashSet) Has(k HashSet) bool { return s&k == k }

// Ref names an object by its mount-relative path together with what the
// bridge last knew of it (at least its ID and IsDir).
type Ref struct {
	Path string
	Object
}

// Link is where an object's bytes can be fetched with an HTTP GET (and Range).
type Link struct {
	URL    string
	Header http.Header // extra request headers the provider requires
	// Expires is when the URL stops working, as the provider's answer says
	// (never a guess); zero means it does not expire. A link whose lifetime
	// the provider does not tell has Expires set to when it was asked for:
	// it serves the request at hand and is neither cached nor redirected to.
	Expires time.Time
	// ClientSafe reports that URL and Header carry no long-lived secret of
	// the account (a signed, expiring URL does not), so the link may be handed
	// to a WebDAV client in a redirect.
	ClientSafe bool
}

// Upload is a finished temp file ready to be sent to the provider: its size
// and hashes are known before the first byte goes out, so drivers can use
// dedup ("instant upload") protocols and fixed-size chunks.
type Upload struct {
	Body io.ReaderAt
	Size int64
	// Hashes of Body: those the driver declared in Features.UploadHashes,
	// and those the client asked the bridge to verify (OC-Checksum). The
	// others are empty: hashing costs more CPU than the disk write, so no
	// hash is computed that nobody needs.
	Hashes  Hashes
	ModTime time.Time // the client's modification time, zero if none
	// Replaces is the existing object of the same name that this upload
	// overwrites, or nil. A driver must not lose it if the upload fails.
	Replaces *Object
	// Path is the temp file holding Body on this machine, when there is
	// one. A driver storing on a local disk may take the file by renaming
	// it instead of copying Body; the bridge removes it afterwards if it is
	// still there.
	Path string
}

// Quota is the account's storage; a negative field is unknown.
type Quota struct {
	Total int64
	Used  int64
	Free  int64
}

// Features declares what a provider can do server-side. The bridge falls
// back (recursive copy, copy+delete, streamed copy) or answers the right
// WebDAV status for anything a driver does not declare; it never pretends.
type Features struct {
	// CopyFile and CopyDir: Copy works on files / on whole folders.
	CopyFile bool
	CopyDir  bool
	// Move: Move works across folders (Rename is always required).
	Move bool
	// Links: Link works; otherwise the driver implements Opener.
	Links bool
	// EmptyFiles: the provider stores 0-byte files.
	EmptyFiles bool
	// SetModTime: Put honours Upload.ModTime.
	SetModTime bool
	// Quota: Quota reports real figures.
	Quota bool
	// MaxFileSize is the largest file the provider accepts; 0 means no limit.
	MaxFileSize int64
	// ListsByPath: List needs only the folder's path (Ref.Path, IsDir),
	// not its ID, and fails with ErrNotFound for a path that is not a
	// folder; every method accepts a folder Ref without an ID (the driver
	// looks the ID up when it needs one). The bridge then lists a cold
	// folder directly instead of listing each of its ancestors first.
	ListsByPath bool
	// ReadOnly, when set, says why nothing can be written to this mount (a
	// share link someone else owns): the bridge refuses every write with 403
	// and this reason before calling the driver, and OPTIONS offers no
	// writing method. The driver's write methods may then return
	// ErrPermission without further work.
	ReadOnly string
	// ProxyOnly, when set, says why this provider's links must never be
	// handed to a WebDAV client (they carry the account's token, or a
	// dead one answers with a page instead of an error): download =
	// "redirect" is refused for the mount with this reason.
	ProxyOnly string
	// UploadHashes are the hashes Put needs in Upload.Hashes (for a dedup
	// or integrity protocol); the bridge computes them while the body
	// arrives. Per-block hashes are the driver's own business.
	UploadHashes HashSet
	// KeepsUploadFile: Put may keep the file at Upload.Path as the stored
	// file (a rename) and sync it. The bridge then has the buffer written
	// to disk as it fills, so that the sync before the rename finds
	// little left to write.
	KeepsUploadFile bool
}

// Driver is one provider account (or one folder of it) mounted at a path.
//
// Methods return errors wrapping the sentinel kinds of errors.go so that the
// bridge can map them to WebDAV status codes in one place. Every call takes
// the request's context and must stop when it is cancelled.
type Driver interface {
	// Features is called once when the mount is set up.
	Features() Features

	// Root returns the mount's root folder (its ID in particular).
	Root(ctx context.Context) (Object, error)

	// List returns every entry of the folder dir, all pages joined.
	List(ctx context.Context, dir Ref) ([]Object, error)

	// Link returns a download link for file (Features.Links).
	Link(ctx context.Context, file Ref) (Link, error)

	// Mkdir creates the folder name inside parent and returns it. It fails
	// with ErrExist if the name is taken.
	Mkdir(ctx context.Context, parent Ref, name string) (Object, error)

	// Rename gives obj a new name in its own folder.
	Rename(ctx context.Context, obj Ref, newName string) (Object, error)

	// Move moves obj into the folder dstParent under newName (which may
	// equal the old name). The destination name is free when it is called.
	// Drivers without a one-call move+rename do two calls themselves.
	Move(ctx context.Context, obj Ref, dstParent Ref, newName string) (Object, error)

	// Copy copies obj (a file, or a folder with all its content when
	// Features.CopyDir) into dstParent under newName, which is free.
	Copy(ctx context.Context, obj Ref, dstParent Ref, newName string) (Object, error)

	// Remove deletes obj; a folder goes with all its content.
	Remove(ctx context.Context, obj Ref) error

	// Put stores up as the file name inside parent. When up.Replaces is set
	// the old file must survive a failed upload, and no partial object may
	// be left visible.
	Put(ctx context.Context, parent Ref, name string, up Upload) (Object, error)

	// Quota reports the account's storage (Features.Quota).
	Quota(ctx context.Context) (Quota, error)
}

// Opener is implemented by drivers that serve bytes themselves instead of
// through links (Features.Links false), such as the local driver.
type Opener interface {
	// Open returns length bytes of file from offset on (length < 0: to the
	// end). The stream is read sequentially and closed by the caller.
	Open(ctx context.Context, file Ref, offset, length int64) (io.ReadCloser, error)
}

// Closer is implemented by drivers that hold resources (background token
// refreshers, idle connections) to be released when the bridge stops.
type Closer interface {
	Close() error
}

// Loginer is implemented by drivers whose account is authorized
// interactively (OAuth device code, authorization code with PKCE). The
// `bridge login MOUNT` command calls it; it prints what the user must do to
// out (a code, a URL, a QR code), waits, and stores the tokens under the
// mount's state directory.
type Loginer interface {
	Login(ctx context.Context, out io.Writer, opts LoginOptions) error
}

// LoginOptions selects the interactive flow.
type LoginOptions struct {
	// AuthCode selects the authorization-code flow with PKCE on a loopback
	// redirect URI instead of the device-code flow.
	AuthCode bool
	// In is where a flow that asks the user for something (a username
	// and password) reads the answers; nil means none can be asked.
	In io.Reader
}

// Checker is implemented by drivers that can tell cheaply whether their
// credentials work (for /healthz). It returns nil, or an error wrapping
// ErrAuthExpired when the mount needs `bridge login` again.
type Checker interface {
	Check(ctx context.Context) error
}

// ModTimeSetter is implemented by drivers that can change an existing
// object's modification time (Explorer and Finder set it with PROPPATCH
// after writing). Drivers without it keep such times as dead properties.
type ModTimeSetter interface {
	SetModTime(ctx context.Context, obj Ref, t time.Time) (Object, error)
}

// Hasher is implemented by drivers that can compute a file's content
// hashes on demand and keep them (the local driver, in an xattr). The
// bridge calls it only when a client asks for checksums of a file that has
// none yet, never on an upload's path.
type Hasher interface {
	Hash(ctx context.Context, file Ref) (Hashes, error)
}

// FileOpener is implemented by drivers whose files are local files: the
// bridge serves them with http.ServeContent straight from the *os.File, so
// the kernel can send them without copying (sendfile).
type FileOpener interface {
	OpenFile(ctx context.Context, file Ref) (*os.File, error)
}

// LinkChecker is implemented by drivers whose dead or refused download
// links do not answer with an HTTP error status: a Cloudreve server answers
// HTTP 200 with its JSON error, a YetiShare site HTTP 200 with an HTML page.
// The bridge has already checked the answer's status, Content-Range and
// Content-Length against what it asked; CheckDownload sees that answer and
// up to the first 512 bytes of its body (head), and returns an error saying
// why it is the provider's error rather than the file. The bridge then
// drops the link and asks for a fresh one.
type LinkChecker interface {
	CheckDownload(resp *http.Response, head []byte) error
}

// DirQuotaer is implemented by drivers whose storage is counted per
// folder rather than per account (a Gokuai mount holds several libraries,
// each with its own size). The bridge asks it for the quota of the folder
// a PROPFIND names; ErrNotSupported there falls back to Quota.
type DirQuotaer interface {
	DirQuota(ctx context.Context, dir Ref) (Quota, error)
}

// URLImporter is implemented by drivers whose provider can fetch a file
// from a URL by itself (a YetiShare site's url_upload_add). A COPY from
// another mount whose Link is ClientSafe then costs the bridge no
// bandwidth: the provider downloads the source link. The driver waits for
// the transfer to finish and checks the result's size; it returns
// ErrNotSupported when the provider refuses the URL, and the bridge then
// streams the copy itself.
type URLImporter interface {
	ImportURL(ctx context.Context, parent Ref, name string, src Link, size int64) (Object, error)
}

// ServerCopier is implemented by drivers that can take an object of
// another mount into their own storage server-side: a TeraBox account
// saving what a TeraBox share link shows (share/transfer), so no byte
// passes through the bridge. The bridge offers it every COPY from another
// mount before streaming; CopyFrom returns ErrNotSupported when it cannot
// take that source (another provider, another account), and the bridge
// then copies as usual. src is the other mount's driver, obj the object
// there (a file, or a folder with all its content). The destination name
// is free when it is called.
type ServerCopier interface {
	CopyFrom(ctx context.Context, src Driver, obj Ref, dstParent Ref, newName string) (Object, error)
}
