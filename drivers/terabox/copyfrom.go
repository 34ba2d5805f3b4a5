package terabox

import (
	"context"
	"fmt"
	"net/http"
	"path"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// CopyFrom implements drivers.ServerCopier: a file or folder of a share
// mount of the same TeraBox account (same client_id, same user, as
// tokeninfo or uinfo tell) is saved into dstParent with share/transfer,
// so no byte passes through the bridge. The item lands under its own name
// (ondup "fail" when that is newName: the name is free; "newcopy"
// otherwise, so a taken old name does not fail the copy) and is renamed
// to newName when that differs; a copy that cannot be renamed is deleted
// again. Any other source is ErrNotSupported: the bridge then streams.
func (d *Driver) CopyFrom(ctx context.Context, src drivers.Driver, obj drivers.Ref, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	op := "save " + obj.Path + " from a share"
	s, ok := src.(*Share)
	switch {
	case !ok:
		return drivers.Object{}, fmt.Errorf("terabox: %s: not a TeraBox share link: %w", op, drivers.ErrNotSupported)
	case path.Clean("/"+obj.Path) == "/":
		return drivers.Object{}, fmt.Errorf("terabox: %s: the share's root is not one item: %w", op, drivers.ErrNotSupported)
	}
	same, err := d.sameAccount(ctx, s.acct)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, err)
	}
	if !same {
		return drivers.Object{}, fmt.Errorf("terabox: %s: the share is mounted with another TeraBox account: %w", op, drivers.ErrNotSupported)
	}
	id, err := s.fsidOf(ctx, obj)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, err)
	}
	dest, err := d.full(ctx, dstParent.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	name := path.Base(path.Clean("/" + obj.Path))
	ondup := "fail"
	if name != newName {
		ondup = "newcopy"
	}
	got, err := s.transfer(ctx, d, id, dest, ondup)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, err)
	}
	landed := got.To
	if landed == "" {
		landed = dest + "/" + name // the answer did not say: where "fail" puts it
	}
	target := dest + "/" + newName
	if landed != target {
		err := d.manage(ctx, "rename", "rename the saved copy", moveItem{Path: landed, NewName: newName})
		if err != nil {
			if derr := d.manage(context.WithoutCancel(ctx), "delete", "delete the saved copy", landed); derr != nil {
				d.log.Warn().Str("path", landed).Str("error", derr.Error()).Msg("terabox: a copy saved from a share is left behind")
			}
			return drivers.Object{}, fmt.Errorf("terabox: %s: %w", op, err)
		}
	}
	e, err := d.stat(ctx, target)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("terabox: %s: the copy: %w", op, err)
	}
	o := e.object()
	o.Name = newName
	return o, nil
}

// sameAccount reports whether other's token is of this driver's TeraBox
// account: the same client_id and the same user.
func (d *Driver) sameAccount(ctx context.Context, other *Driver) (bool, error) {
	mine, err := d.whoami(ctx)
	if err != nil {
		return false, err
	}
	theirs, err := other.whoami(ctx)
	if err != nil {
		return false, err
	}
	return mine == theirs, nil
}

// whoami names the token's account as client_id and user: tokeninfo's
// user_id (asked anyway for the hosts, and kept with them), else uinfo's
// uk. Both mounts ask the same service the same way, so the two names
// compare.
func (d *Driver) whoami(ctx context.Context) (string, error) {
	d.domMu.Lock()
	dom := d.dom
	d.domMu.Unlock()
	if dom.api != "" && d.now().Before(dom.until) && dom.user != "" {
		return or(dom.clientID, d.opts.ClientID) + "/user_id:" + dom.user, nil
	}
	var out struct {
		UK flex.ID `json:"uk"`
	}
	// uinfo also makes sure tokeninfo has been asked (for the hosts).
	if err := d.do(ctx, request{op: "uinfo", method: http.MethodGet, path: "/openapi/uinfo", resend: true}, &out); err != nil {
		return "", err
	}
	d.domMu.Lock()
	dom = d.dom
	d.domMu.Unlock()
	client := or(dom.clientID, d.opts.ClientID)
	if dom.user != "" {
		return client + "/user_id:" + dom.user, nil
	}
	if out.UK == "" {
		return "", fmt.Errorf("terabox: uinfo: no uk in the answer: %w", drivers.ErrUnavailable)
	}
	return client + "/uk:" + string(out.UK), nil
}

// or is v, or def when v is empty.
func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

var _ drivers.ServerCopier = (*Driver)(nil)
