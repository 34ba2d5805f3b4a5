package drivers

import (
	"context"
	"fmt"
	"path"
)

// Unproven reports a listing by path that a provider whose document is
// silent may also give for a path that is not a folder: nothing, or a
// file's path as that file alone. A driver that declares ListsByPath on
// such a provider checks the folder (FindInParent, or a metadata call)
// before answering such a listing.
func Unproven(dir string, objs []Object) bool {
	return len(objs) == 0 || len(objs) == 1 && !objs[0].IsDir && objs[0].Name == path.Base(dir)
}

// FindInParent finds the object at p (a file or a folder, as isDir says)
// in its parent's listing, made by list: the proof that a folder exists,
// or the ID of a folder known by its path alone. p is not the root.
func FindInParent(ctx context.Context, p string, isDir bool, list func(context.Context, Ref) ([]Object, error)) (Object, error) {
	p = path.Clean("/" + p)
	parent := path.Dir(p)
	objs, err := list(ctx, Ref{Path: parent, Object: Object{Name: path.Base(parent), IsDir: true}})
	if err != nil {
		return Object{}, err
	}
	for _, o := range objs {
		if o.Name == path.Base(p) && o.IsDir == isDir {
			return o, nil
		}
	}
	return Object{}, fmt.Errorf("%s: %w", p, ErrNotFound)
}
