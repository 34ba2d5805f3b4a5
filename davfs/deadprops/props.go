package deadprops

import (
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"time"

	"golang.org/x/net/webdav"
)

// Props is what davfs needs of a property store, so that it takes either
// Store (props.db, one process) or RedisStore (the shared Redis, several
// instances behind a load balancer) with the same behaviour.
type Props interface {
	// Get returns the dead properties of path (nil when it has none).
	Get(path string) (map[xml.Name]webdav.Property, error)
	// Patch applies PROPPATCH instructions to path, all or none; over
	// Limits it stores nothing and answers ErrFull.
	Patch(path string, patches []webdav.Proppatch) error
	// Delete forgets path and everything below it.
	Delete(path string) error
	// Copy gives dst's subtree the records of src's, replacing dst's.
	Copy(src, dst string) error
	// Move is Copy, then src's records are forgotten.
	Move(src, dst string) error
	// CopyProps is Copy of the dead properties only.
	CopyProps(src, dst string) error
	// AnyIn reports whether path or anything below it has properties.
	AnyIn(path string) (bool, error)
	// SetModTime keeps t as the modification time of the file at path.
	SetModTime(path string, t time.Time, size int64) error
	// ModTimes returns the kept times of the files directly in dir.
	ModTimes(dir string) (map[string]ModTime, error)
	// ModTimeAt returns the kept time of the file at path, if any.
	ModTimeAt(path string) (ModTime, bool, error)
	// SetPatchedTime keeps a time set by PROPPATCH on an empty file.
	SetPatchedTime(path string, t time.Time) error
	// PatchedTime returns what SetPatchedTime kept for path, if any.
	PatchedTime(path string) (time.Time, bool, error)
	// ClearPatchedTime forgets it.
	ClearPatchedTime(path string) error
	// Limits bounds what PROPPATCH may bring in.
	Limits() Limits
}

var (
	_ Props = (*Store)(nil)
	_ Props = (*RedisStore)(nil)
)

// The three kinds of record both stores keep per path, named as props.db's
// buckets.
const (
	kindProps   = "deadprops"
	kindTimes   = "modtimes"
	kindPatched = "patchedtimes"
)

var (
	allKinds   = []string{kindProps, kindTimes, kindPatched}
	propsKinds = []string{kindProps}
)

// Record is one entry of a store, for copying everything a store holds
// into another (bridge migrate-state, state_dir to Redis and back):
// a path and exactly one of Props, ModTime and Patched.
type Record struct {
	Path    string
	Props   map[xml.Name]webdav.Property // dead properties
	ModTime *ModTime                     // a kept modification time
	Patched *time.Time                   // a time set by PROPPATCH on an empty file
}

// Exporter is a store whose records can be read out whole.
type Exporter interface {
	// Export calls fn for every record, stopping at fn's first error. It
	// is not a snapshot: run it while no bridge writes to the store.
	Export(fn func(Record) error) error
}

// Importer is a store that records can be written into.
type Importer interface {
	// Import stores rec as it is, replacing what rec.Path had of its kind.
	// Limits do not apply: a migration must not drop what was accepted.
	Import(rec Record) error
}

// CopyAll imports every record of src into dst and returns how many it
// copied: migrate-state's whole work, in either direction.
func CopyAll(dst Importer, src Exporter) (int, error) {
	n := 0
	err := src.Export(func(rec Record) error {
		if err := dst.Import(rec); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("deadprops: copy after %d records: %w", n, err)
	}
	return n, nil
}

// decodeRecord reads a record as both stores keep it (the same bytes).
func decodeRecord(kind, path string, v []byte) (Record, error) {
	rec := Record{Path: path}
	switch kind {
	case kindProps:
		props, err := decode(v)
		if err != nil {
			return rec, fmt.Errorf("%s: %w", path, err)
		}
		rec.Props = props
	case kindTimes:
		mt, ok := decodeModTime(v)
		if !ok {
			return rec, fmt.Errorf("deadprops: %s: corrupt modification time (%d bytes)", path, len(v))
		}
		rec.ModTime = &mt
	case kindPatched:
		t, ok := decodePatched(v)
		if !ok {
			return rec, fmt.Errorf("deadprops: %s: corrupt patched time (%d bytes)", path, len(v))
		}
		rec.Patched = &t
	}
	return rec, nil
}

// encodeRecord is decodeRecord's reverse: the kind and bytes to store.
func encodeRecord(rec Record) (kind string, v []byte, err error) {
	set := 0
	if rec.Props != nil {
		set++
		kind = kindProps
		if v, err = encode(rec.Props); err != nil {
			return "", nil, fmt.Errorf("deadprops: %s: %w", rec.Path, err)
		}
	}
	if rec.ModTime != nil {
		set++
		kind, v = kindTimes, encodeModTime(rec.ModTime.Time, rec.ModTime.Size)
	}
	if rec.Patched != nil {
		set++
		kind, v = kindPatched, encodePatched(*rec.Patched)
	}
	if set != 1 {
		return "", nil, fmt.Errorf("deadprops: record of %s holds %d kinds, not one", rec.Path, set)
	}
	return kind, v, nil
}

// encodeModTime writes a kept time: 8 bytes of Unix nanoseconds, 8 of size.
func encodeModTime(t time.Time, size int64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], uint64(size))
	return v
}

// encodePatched writes a patched time: 8 bytes of Unix nanoseconds.
func encodePatched(t time.Time) []byte {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(t.UnixNano()))
	return v
}

func decodePatched(v []byte) (time.Time, bool) {
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// apply changes props by patches, checking the result against lim the way
// both stores do: over a limit (and larger than before, so that a resource
// over limits lowered since can still shrink) it answers ErrFull.
func apply(path string, props map[xml.Name]webdav.Property, patches []webdav.Proppatch, lim Limits) error {
	oldCount, oldBytes := len(props), total(props)
	for _, patch := range patches {
		for _, p := range patch.Props {
			if patch.Remove {
				delete(props, p.XMLName)
			} else {
				props[p.XMLName] = p
			}
		}
	}
	if n := len(props); n > lim.ResourceProps && n > oldCount {
		return fmt.Errorf("%s: %d properties, the limit is %d: %w", path, n, lim.ResourceProps, ErrFull)
	}
	if n := total(props); n > lim.ResourceBytes && n > oldBytes {
		return fmt.Errorf("%s: %d bytes of properties, the limit is %d: %w", path, n, lim.ResourceBytes, ErrFull)
	}
	return nil
}
