package gokuai

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"bridge/drivers"
	"bridge/drivers/flex"
)

// library is one entry of /account/mount, with the name the mount shows.
type library struct {
	MountID int
	OrgName string
	Name    string // unique among the libraries (uniqueNames)
	Total   int64  // size_org_total; <= 0 is unknown or unlimited
	Used    int64
}

func (l library) quota() drivers.Quota {
	if l.Total <= 0 {
		return drivers.Quota{Total: -1, Used: l.Used, Free: -1}
	}
	return drivers.Quota{Total: l.Total, Used: l.Used, Free: max(l.Total-l.Used, 0)}
}

func libraryID(l library) string { return strconv.Itoa(l.MountID) + ":" }

// libraries returns the account's libraries, from memory when listed
// less than libraryTTL ago unless fresh.
func (d *Driver) libraries(ctx context.Context, fresh bool) ([]library, error) {
	d.libMu.Lock()
	if !fresh && d.libs != nil && d.now().Sub(d.libsAt) < libraryTTL {
		libs := d.libs
		d.libMu.Unlock()
		return libs, nil
	}
	d.libMu.Unlock()
	var out struct {
		List []struct {
			MountID flex.Int `json:"mount_id"`
			OrgName flex.ID  `json:"org_name"`
			Total   flex.Int `json:"size_org_total"`
			Used    flex.Int `json:"size_org_use"`
		} `json:"list"`
	}
	if err := d.call(ctx, request{method: http.MethodGet, path: "/m-api/1/account/mount", params: nil, out: &out}); err != nil {
		return nil, err
	}
	libs := make([]library, 0, len(out.List))
	for _, l := range out.List {
		libs = append(libs, library{MountID: int(l.MountID), OrgName: string(l.OrgName), Total: int64(l.Total), Used: int64(l.Used)})
	}
	uniqueNames(libs)
	d.libMu.Lock()
	d.libs, d.libsAt = libs, d.now()
	d.libMu.Unlock()
	return libs, nil
}

// uniqueNames names the libraries for the mount root: org_name made a
// valid name ("/" and "\" become "_"), the one with the lowest mount id
// keeping a name several share and the others getting " (<mount id>)".
// The names depend only on the libraries, not on the order listed. libs
// ends up sorted by mount id.
func uniqueNames(libs []library) {
	sort.Slice(libs, func(i, j int) bool { return libs[i].MountID < libs[j].MountID })
	taken := map[string]bool{}
	for i := range libs {
		name := strings.TrimSpace(strings.NewReplacer("/", "_", "\\", "_").Replace(libs[i].OrgName))
		if name == "" || name == "." || name == ".." {
			name = "library"
		}
		for taken[name] {
			name = fmt.Sprintf("%s (%d)", name, libs[i].MountID)
		}
		taken[name] = true
		libs[i].Name = name
	}
}

// rootLibrary is the library of option library: by shown name, else by
// org_name.
func (d *Driver) rootLibrary(ctx context.Context) (library, error) {
	for _, fresh := range []bool{false, true} {
		libs, err := d.libraries(ctx, fresh)
		if err != nil {
			return library{}, fmt.Errorf("gokuai: libraries: %w", err)
		}
		for _, l := range libs {
			if l.Name == d.opts.Library {
				return l, nil
			}
		}
		for _, l := range libs {
			if l.OrgName == d.opts.Library {
				return l, nil
			}
		}
		if fresh {
			var names []string
			for _, l := range libs {
				names = append(names, strconv.Quote(l.Name))
			}
			return library{}, fmt.Errorf("gokuai: option library %q names no library of the account (it has %s): %w",
				d.opts.Library, strings.Join(names, ", "), drivers.ErrNotFound)
		}
	}
	panic("unreachable")
}

// loc is where a mount path is on the provider.
type loc struct {
	top  bool    // the mount root of the multi-library view
	lib  library // the library (unless top)
	full string  // the fullpath in it; "" is the library root
}

// libRoot: the path is a library's root (which cannot be changed).
func (l loc) libRoot() bool { return !l.top && l.full == "" }

// parentFull is the fullpath of the folder holding l.full.
func parentFull(full string) string {
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i]
	}
	return ""
}

// locate works out a mount path's library and fullpath.
func (d *Driver) locate(ctx context.Context, p string) (loc, error) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if d.opts.Library != "" {
		lib, err := d.rootLibrary(ctx)
		if err != nil {
			return loc{}, err
		}
		return loc{lib: lib, full: p}, nil
	}
	if p == "" {
		return loc{top: true}, nil
	}
	name, rest, _ := strings.Cut(p, "/")
	for _, fresh := range []bool{false, true} {
		libs, err := d.libraries(ctx, fresh)
		if err != nil {
			return loc{}, err
		}
		for _, l := range libs {
			if l.Name == name {
				return loc{lib: l, full: rest}, nil
			}
		}
	}
	return loc{}, fmt.Errorf("gokuai: no library %q: %w", name, drivers.ErrNotFound)
}

// errRoot is the refusal of a write at the mount root.
func errRoot(op string) error {
	return fmt.Errorf("gokuai: %s: %w", op, drivers.WithReason(drivers.ErrPermission, "the mount root holds libraries; write inside one"))
}

// errLibrary is the refusal of changing a library itself.
func errLibrary(op, p string) error {
	return fmt.Errorf("gokuai: %s %s: %w", op, p, drivers.WithReason(drivers.ErrPermission, "a library is managed on Gokuai's site, not through the bridge"))
}
