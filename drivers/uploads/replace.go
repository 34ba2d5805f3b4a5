package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"

	"github.com/rs/zerolog"

	"bridge/drivers"
)

// TempName is a hidden name for an upload's temporary twin of name, unique
// enough never to meet another (random), keeping the extension for
// providers that look at it.
func TempName(name string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return ".bridge-" + hex.EncodeToString(b) + path.Ext(name)
}

// Renamer is what Replace needs of a driver (every drivers.Driver is one).
type Renamer interface {
	Rename(ctx context.Context, obj drivers.Ref, newName string) (drivers.Object, error)
	Remove(ctx context.Context, obj drivers.Ref) error
}

// Replace stores new content under name in parent, where old is the file it
// replaces, for providers that refuse a taken name or would rename the
// newcomer: upload sends the content under a temporary name; then old is
// renamed aside, the new file renamed into place, and old removed.
//
// Whatever fails, the name keeps the old file or the new one, never
// nothing, and no temporary object is left visible: a failed upload leaves
// only the old file; a failed final rename puts the old file back. The steps
// after the upload finish even when the client goes away, since stopping
// half way would leave the name without a file.
func Replace(ctx context.Context, d Renamer, parent drivers.Ref, name string, old drivers.Object,
	upload func(ctx context.Context, tmpName string) (drivers.Object, error), log zerolog.Logger) (drivers.Object, error) {
	tmp := TempName(name)
	fresh, err := upload(ctx, tmp)
	if err != nil {
		return drivers.Object{}, err
	}
	ctx = context.WithoutCancel(ctx)
	freshRef := drivers.Ref{Path: path.Join(parent.Path, tmp), Object: fresh}
	oldRef := drivers.Ref{Path: path.Join(parent.Path, name), Object: old}

	asideName := TempName(name)
	aside, err := d.Rename(ctx, oldRef, asideName)
	switch {
	case errors.Is(err, drivers.ErrNotFound):
		aside = drivers.Object{} // the old file is gone already: nothing to keep
	case err != nil:
		discard(ctx, d, freshRef, log)
		return drivers.Object{}, fmt.Errorf("set the old file aside: %w", err)
	}
	placed, err := d.Rename(ctx, freshRef, name)
	if err != nil {
		if aside.ID != "" {
			asideRef := drivers.Ref{Path: path.Join(parent.Path, asideName), Object: aside}
			if _, rerr := d.Rename(ctx, asideRef, name); rerr != nil {
				log.Error().Str("path", oldRef.Path).Str("kept_as", asideName).Str("error", rerr.Error()).
					Msg("overwrite failed and the old file could not get its name back")
			}
		}
		discard(ctx, d, freshRef, log)
		return drivers.Object{}, fmt.Errorf("give the new file its name: %w", err)
	}
	if aside.ID != "" {
		discard(ctx, d, drivers.Ref{Path: path.Join(parent.Path, asideName), Object: aside}, log)
	}
	return placed, nil
}

// discard removes a temporary object, logging (not failing) when it cannot.
func discard(ctx context.Context, d Renamer, obj drivers.Ref, log zerolog.Logger) {
	if err := d.Remove(ctx, obj); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		log.Warn().Str("path", obj.Path).Str("error", err.Error()).Msg("temporary object left behind")
	}
}
