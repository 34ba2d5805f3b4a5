package terabox

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"bridge/drivers"
)

// Share is a mount of a TeraBox share link (section 3.5 of the document):
// someone's file or folder, browsed and read through the API with this
// mount's own account token (the API needs a logged-in account for
// shares too), never written.
//
// How it talks to TeraBox (the readings the fake enforces, share.go of
// tests/fakes/terabox):
//   - share/verify (surl, the extraction code in the form body) answers
//     the session key as the cookie BOXCLND (URL-escaped; randsk in the
//     body is the same value, used when the cookie is missing). Every
//     other share call carries it: sekey, or spd for shorturlinfo.
//     shorturlinfo then gives the shareid and the owner's uk that
//     share/download and share/transfer need.
//   - The session is verified once and kept in the mount's state folder
//     (share.json, mode 0600), so a restart of the bridge does not verify
//     again. A call the provider refuses with errno -9 (its "spd is
//     incorrect", which is also "not found") is made once more after one
//     new verify (one for all callers); a second -9 is ErrNotFound.
//   - A wrong extraction code (-12) or a link that is gone (105: expired,
//     cancelled, its files deleted) is remembered: until a holdoff has
//     passed (1 minute, doubling up to an hour) every call answers it at
//     once, ErrPermission or ErrNotFound with a reason the client reads,
//     and Check (/healthz) says which; nothing is retried in a loop.
//   - share/list with root=1 lists the shared items and ignores paging
//     (the document says so); a folder is listed by its owner's path, as
//     the listing gave it, page by page until a short page (or one that
//     brings nothing new). Mount paths map onto owner paths through the
//     root listing: /<item>/rest is <item's path>/rest.
//   - Reading: share/download gives a dlink per file; like the account's
//     it needs the access token appended, so it is proxied, never handed
//     to a client (Features.ProxyOnly).
//
// The account's own TeraBox mount (Driver) saves files and folders out of
// a Share server-side (CopyFrom, copyfrom.go).
type Share struct {
	acct *Driver // the account's client: token, hosts, pacer, errors
	link shareLink

	verifyMu sync.Mutex // one verify at a time, for every caller

	mu      sync.Mutex
	sess    shareSession // Sekey "" until verified
	gen     int          // counts the sessions; 0: none yet
	refused error        // the link's refusal (wrong code, gone), until retryAt
	retryAt time.Time
	holdoff time.Duration
	roots   map[string]entry // the shared items by name, as last listed
}

// Holdoffs of a refused link: a wrong code or a dead link does not mend
// itself, so it is asked again rarely.
const (
	firstHoldoff = time.Minute
	maxHoldoff   = time.Hour
)

// shareFile is the session's record in the mount's drivers.State.
const shareFile = "share.json"

// readOnlyReason is what a client is told when it tries to write.
const readOnlyReason = "this mount is a TeraBox share link, which is read-only: copy its files out instead"

// newShare makes the share mount over the account's client d, with the
// session the state folder kept for this link, if any.
func newShare(d *Driver, link shareLink) *Share {
	s := &Share{acct: d, link: link}
	if sess, ok := loadSession(d.records, link.surl); ok {
		s.sess, s.gen = sess, 1
	}
	return s
}

// Features of a share mount: read-only, links proxied as the account's.
func (s *Share) Features() drivers.Features {
	f := s.acct.Features()
	return drivers.Features{Links: true, ProxyOnly: f.ProxyOnly,
		ReadOnly: "it is a TeraBox share link: its files belong to the link's owner and can only be read or copied out"}
}

// Root is the share's top: the shared items. It asks nothing of the
// provider, so a dead link still mounts (and says why on every call).
func (s *Share) Root(ctx context.Context) (drivers.Object, error) {
	return drivers.Object{ID: "share-root", IsDir: true}, nil
}

// readOnly is every write's answer.
func readOnly(op, p string) error {
	return fmt.Errorf("terabox: %s %s: %w", op, p, drivers.WithReason(drivers.ErrPermission, readOnlyReason))
}

// Mkdir is refused: the share is read-only.
func (s *Share) Mkdir(ctx context.Context, parent drivers.Ref, name string) (drivers.Object, error) {
	return drivers.Object{}, readOnly("mkdir", parent.Path+"/"+name)
}

// Rename is refused: the share is read-only.
func (s *Share) Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error) {
	return drivers.Object{}, readOnly("rename", obj.Path)
}

// Move is refused: a share cannot lose files.
func (s *Share) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	return drivers.Object{}, readOnly("move", obj.Path)
}

// Copy is refused: inside a share nothing can be made. Copies out of it
// go to other mounts (CopyFrom, or the bridge's streamed copy).
func (s *Share) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	return drivers.Object{}, readOnly("copy", obj.Path)
}

// Remove is refused: the share is read-only.
func (s *Share) Remove(ctx context.Context, obj drivers.Ref) error {
	return readOnly("remove", obj.Path)
}

// Put is refused: the share is read-only.
func (s *Share) Put(ctx context.Context, parent drivers.Ref, name string, up drivers.Upload) (drivers.Object, error) {
	return drivers.Object{}, readOnly("upload", parent.Path+"/"+name)
}

// Quota: a share has no storage of its own.
func (s *Share) Quota(ctx context.Context) (drivers.Quota, error) {
	return drivers.Quota{}, fmt.Errorf("terabox: a share link has no quota: %w", drivers.ErrNotSupported)
}

// Login logs the mount's account in (drivers.Loginer): a share is read
// with an account's token.
func (s *Share) Login(ctx context.Context, out io.Writer, opts drivers.LoginOptions) error {
	return s.acct.Login(ctx, out, opts)
}

// Check tells /healthz whether the link can be read: the account's token
// works and the link with its code is accepted. A refused link answers
// its remembered refusal without asking again before its holdoff ends.
func (s *Share) Check(ctx context.Context) error {
	if _, err := s.info(ctx); err != nil {
		return fmt.Errorf("terabox: share link: %w", err)
	}
	return nil
}

// The interfaces a share mount offers.
var (
	_ drivers.Driver  = (*Share)(nil)
	_ drivers.Checker = (*Share)(nil)
	_ drivers.Loginer = (*Share)(nil)
)
