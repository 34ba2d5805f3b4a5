package gokuai

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"bridge/drivers"
	"bridge/drivers/uploads"
)

// Move moves obj into dstParent as newName: move inside a library, copy
// with delete_from=1 across libraries (server-side either way). Both keep
// names, so a new name is given first, at the source.
func (d *Driver) Move(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	src, err := d.changeable(ctx, "move", obj.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	dst, err := d.locate(ctx, dstParent.Path)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: move %s to %s: %w", obj.Path, dstParent.Path, err)
	}
	if dst.top {
		return drivers.Object{}, errRoot("move " + obj.Path)
	}
	same := src.lib.MountID == dst.lib.MountID
	if same && parentFull(src.full) == dst.full {
		return d.Rename(ctx, obj, newName)
	}
	return d.transfer(ctx, src, dst, newName, func(cur string) error {
		if same {
			p := mountParams(src, cur)
			p.Set("target_fullpath", dst.full)
			return d.call(ctx, request{method: http.MethodPost, path: "/m-api/1/file/move", params: p})
		}
		return d.copyInto(ctx, src, cur, dst, true)
	})
}

// transfer renames src to newName at the source (through a temporary name
// when newName is taken there), runs op on it, and gives it newName at
// the destination. A failed op gives the source its name back.
func (d *Driver) transfer(ctx context.Context, src, dst loc, newName string, op func(cur string) error) (drivers.Object, error) {
	srcDir, cur, step := parentFull(src.full), src.full, baseName(src.full)
	if newName != step {
		step = newName
		err := d.rename(ctx, src, src.full, step)
		if isExist(err) {
			step = uploads.TempName(newName)
			err = d.rename(ctx, src, src.full, step)
		}
		if err != nil {
			return drivers.Object{}, err
		}
		cur = joinFull(srcDir, step)
	}
	if err := op(cur); err != nil {
		if cur != src.full {
			if rerr := d.rename(context.WithoutCancel(ctx), src, cur, baseName(src.full)); rerr != nil {
				d.log.Error().Str("path", src.full).Str("renamed_to", step).Str("error", rerr.Error()).
					Msg("gokuai: a failed move left the object under its new name")
			}
		}
		return drivers.Object{}, fmt.Errorf("gokuai: move %s: %w", src.full, err)
	}
	landed := joinFull(dst.full, step)
	if step != newName {
		if err := d.rename(ctx, dst, landed, newName); err != nil {
			return drivers.Object{}, err
		}
	}
	return d.info(ctx, dst, joinFull(dst.full, newName))
}

// copyInto copies full (keeping its name) into the folder dst, across
// libraries when dst is in another; deleteFrom removes the source after.
func (d *Driver) copyInto(ctx context.Context, src loc, full string, dst loc, deleteFrom bool) error {
	p := mountParams(src, full)
	p.Set("target_fullpath", dst.full) // "" is the library root: sent empty
	if dst.lib.MountID != src.lib.MountID {
		p.Set("target_mount_id", strconv.Itoa(dst.lib.MountID))
	}
	if deleteFrom {
		p.Set("delete_from", "1")
	}
	return d.call(ctx, request{method: http.MethodPost, path: "/m-api/1/file/copy", params: p})
}

// Copy copies obj into dstParent as newName, server-side, across
// libraries too. copy keeps names: a copy under a new name is made in a
// temporary folder at the destination, renamed there and moved into
// place; the temporary folder goes afterwards.
func (d *Driver) Copy(ctx context.Context, obj, dstParent drivers.Ref, newName string) (drivers.Object, error) {
	src, err := d.changeable(ctx, "copy", obj.Path)
	if err != nil {
		return drivers.Object{}, err
	}
	dst, err := d.locate(ctx, dstParent.Path)
	if err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: copy %s to %s: %w", obj.Path, dstParent.Path, err)
	}
	if dst.top {
		return drivers.Object{}, errRoot("copy " + obj.Path)
	}
	name := baseName(src.full)
	inPlace := src.lib.MountID == dst.lib.MountID && parentFull(src.full) == dst.full
	if newName == name && !inPlace {
		if err := d.copyInto(ctx, src, src.full, dst, false); err != nil {
			return drivers.Object{}, fmt.Errorf("gokuai: copy %s: %w", obj.Path, err)
		}
		return d.info(ctx, dst, joinFull(dst.full, newName))
	}
	tmp := loc{lib: dst.lib, full: joinFull(dst.full, uploads.TempName("copy"))}
	if _, err := d.mkdir(ctx, tmp, tmp.full); err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: copy %s: %w", obj.Path, err)
	}
	defer d.discard(ctx, tmp, tmp.full)
	if err := d.copyInto(ctx, src, src.full, tmp, false); err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: copy %s: %w", obj.Path, err)
	}
	if err := d.rename(ctx, tmp, joinFull(tmp.full, name), newName); err != nil {
		return drivers.Object{}, err
	}
	p := mountParams(tmp, joinFull(tmp.full, newName))
	p.Set("target_fullpath", dst.full)
	if err := d.call(ctx, request{method: http.MethodPost, path: "/m-api/1/file/move", params: p}); err != nil {
		return drivers.Object{}, fmt.Errorf("gokuai: copy %s: %w", obj.Path, err)
	}
	return d.info(ctx, dst, joinFull(dst.full, newName))
}
