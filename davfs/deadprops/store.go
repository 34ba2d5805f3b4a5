// Package deadprops stores WebDAV dead properties (those set by PROPPATCH)
// per share path in an embedded bbolt database under state_dir, so they
// survive restarts and follow MOVE and COPY. Keys are share paths
// ("/local/a/b.txt"); a folder's subtree is every key below "path/".
//
// Beside them it keeps the modification times the bridge remembers for
// files of providers that cannot store a client's time (see ModTimes), and
// the times clients set by PROPPATCH on empty files (see PatchedTime); they
// follow MOVE and COPY and go with DELETE the same way.
//
// bbolt never gives space back to the file system, so what one client can
// put in is bounded (see Limits): a PROPPATCH that would take a resource's
// properties over them is refused whole, with ErrFull.
//
// Several bridge instances behind a load balancer share one RedisStore
// instead (server.shared_state); davfs takes either through Props, and
// CopyAll moves everything from one to the other (bridge migrate-state).
package deadprops

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/webdav"
)

var (
	bucket        = []byte(kindProps)
	timesBucket   = []byte(kindTimes)
	patchedBucket = []byte(kindPatched)
	buckets       = [][]byte{bucket, timesBucket, patchedBucket}
)

// Limits bound what PROPPATCH may bring in. A zero field takes its
// default (DefaultLimits).
type Limits struct {
	// RequestBytes caps a PROPPATCH request body; davfs enforces it before
	// the body is parsed, since x/net holds all of it in memory.
	RequestBytes int64
	// ResourceBytes caps the dead properties of one resource in total
	// (names, languages and values), ResourceProps their number.
	ResourceBytes int64
	ResourceProps int
}

// DefaultLimits: far above what Explorer, Finder, Office or litmus store
// (a few hundred bytes per file), far below what would hurt.
var DefaultLimits = Limits{RequestBytes: 64 << 10, ResourceBytes: 256 << 10, ResourceProps: 256}

// orDefault fills the zero fields of l from DefaultLimits.
func (l Limits) orDefault() Limits {
	if l.RequestBytes <= 0 {
		l.RequestBytes = DefaultLimits.RequestBytes
	}
	if l.ResourceBytes <= 0 {
		l.ResourceBytes = DefaultLimits.ResourceBytes
	}
	if l.ResourceProps <= 0 {
		l.ResourceProps = DefaultLimits.ResourceProps
	}
	return l
}

// ErrFull is a Patch that would take a resource's properties over Limits;
// nothing of it was stored.
var ErrFull = errors.New("deadprops: the properties of the resource would exceed the limit")

// Store is the property database. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	limits Limits
}

// Open opens (or creates) the database file. Only one process may hold it.
func Open(file string) (*Store, error) {
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("deadprops: open %s: %w", file, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("deadprops: %w", err)
	}
	return &Store{db: db, limits: DefaultLimits}, nil
}

// WithLimits returns the store with limits l (zero fields: the default),
// over the same database.
func (s *Store) WithLimits(l Limits) *Store {
	return &Store{db: s.db, limits: l.orDefault()}
}

// Limits returns the store's limits.
func (s *Store) Limits() Limits { return s.limits.orDefault() }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// stored is one property as kept on disk.
type stored struct {
	Space    string `json:"s"`
	Local    string `json:"l"`
	Lang     string `json:"g,omitempty"`
	InnerXML []byte `json:"x"`
}

func decode(v []byte) (map[xml.Name]webdav.Property, error) {
	var list []stored
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("deadprops: corrupt entry: %w", err)
	}
	out := make(map[xml.Name]webdav.Property, len(list))
	for _, p := range list {
		n := xml.Name{Space: p.Space, Local: p.Local}
		out[n] = webdav.Property{XMLName: n, Lang: p.Lang, InnerXML: p.InnerXML}
	}
	return out, nil
}

func encode(props map[xml.Name]webdav.Property) ([]byte, error) {
	list := make([]stored, 0, len(props))
	for n, p := range props {
		list = append(list, stored{Space: n.Space, Local: n.Local, Lang: p.Lang, InnerXML: p.InnerXML})
	}
	return json.Marshal(list)
}

// Get returns the properties of path (nil when it has none).
func (s *Store) Get(path string) (map[xml.Name]webdav.Property, error) {
	var out map[xml.Name]webdav.Property
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(path))
		if v == nil {
			return nil
		}
		var err error
		out, err = decode(v)
		return err
	})
	return out, err
}

// size is what a property counts against Limits.ResourceBytes.
func size(p webdav.Property) int64 {
	return int64(len(p.XMLName.Space) + len(p.XMLName.Local) + len(p.Lang) + len(p.InnerXML))
}

func total(props map[xml.Name]webdav.Property) int64 {
	var n int64
	for _, p := range props {
		n += size(p)
	}
	return n
}

// Patch applies PROPPATCH instructions to path in one transaction: all of
// them or none. When the result would exceed the store's limits (and is
// larger than what path holds, so that a resource over limits lowered since
// can still shrink), nothing is stored and the error wraps ErrFull.
func (s *Store) Patch(path string, patches []webdav.Proppatch) error {
	lim := s.Limits()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		props := map[xml.Name]webdav.Property{}
		if v := b.Get([]byte(path)); v != nil {
			var err error
			if props, err = decode(v); err != nil {
				return err
			}
		}
		if err := apply(path, props, patches, lim); err != nil {
			return err
		}
		if len(props) == 0 {
			return b.Delete([]byte(path))
		}
		v, err := encode(props)
		if err != nil {
			return err
		}
		return b.Put([]byte(path), v)
	})
}

// subtree calls fn for path and every key below it.
func subtree(b *bolt.Bucket, path string, fn func(k, v []byte) error) error {
	var keys, vals [][]byte
	if v := b.Get([]byte(path)); v != nil {
		keys, vals = append(keys, []byte(path)), append(vals, v)
	}
	prefix := []byte(path + "/")
	if path == "/" {
		prefix = []byte("/")
	}
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if bytes.Equal(k, []byte(path)) {
			continue
		}
		keys = append(keys, append([]byte(nil), k...))
		vals = append(vals, append([]byte(nil), v...))
	}
	for i := range keys {
		if err := fn(keys[i], vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Delete forgets path and everything below it.
func (s *Store) Delete(path string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			b := tx.Bucket(name)
			if err := subtree(b, path, func(k, _ []byte) error { return b.Delete(k) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Copy gives dst (and its subtree) the properties and kept times of src's,
// replacing whatever dst had.
func (s *Store) Copy(src, dst string) error { return s.transfer(src, dst, false, buckets) }

// Move is Copy, then src's properties are forgotten.
func (s *Store) Move(src, dst string) error { return s.transfer(src, dst, true, buckets) }

// CopyProps is Copy of the dead properties only, for a copy to another
// mount: there the upload itself set the kept times.
func (s *Store) CopyProps(src, dst string) error {
	return s.transfer(src, dst, false, [][]byte{bucket})
}

func (s *Store) transfer(src, dst string, move bool, names [][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range names {
			b := tx.Bucket(name)
			if err := subtree(b, dst, func(k, _ []byte) error { return b.Delete(k) }); err != nil {
				return err
			}
			err := subtree(b, src, func(k, v []byte) error {
				nk := append([]byte(dst), k[len(src):]...)
				if err := b.Put(nk, v); err != nil {
					return err
				}
				if move {
					return b.Delete(k)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// AnyIn reports whether path or anything below it has properties: one
// cursor seek, so that a listing without any can skip per-entry lookups.
func (s *Store) AnyIn(path string) (bool, error) {
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(path)) != nil {
			found = true
			return nil
		}
		prefix := []byte(path + "/")
		if path == "/" {
			prefix = []byte("/")
		}
		k, _ := b.Cursor().Seek(prefix)
		found = k != nil && bytes.HasPrefix(k, prefix)
		return nil
	})
	return found, err
}

// ModTime is a modification time the bridge keeps for a file, with the
// file's size then: a record whose size no longer matches the file's is
// stale (the file was replaced behind the bridge's back) and is ignored.
type ModTime struct {
	Time time.Time
	Size int64
}

// decodeModTime reads a record: 8 bytes of Unix nanoseconds, 8 of size.
func decodeModTime(v []byte) (ModTime, bool) {
	if len(v) != 16 {
		return ModTime{}, false
	}
	return ModTime{
		Time: time.Unix(0, int64(binary.BigEndian.Uint64(v))),
		Size: int64(binary.BigEndian.Uint64(v[8:])),
	}, true
}

// SetModTime keeps t as the modification time of the file at path, whose
// size is size.
func (s *Store) SetModTime(path string, t time.Time, size int64) error {
	v := encodeModTime(t, size)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(timesBucket).Put([]byte(path), v)
	})
}

// ModTimes returns the kept times of the files directly inside the folder
// dir, by name: one read transaction for a whole listing, skipping over
// the records of subfolders.
func (s *Store) ModTimes(dir string) (map[string]ModTime, error) {
	prefix := []byte(strings.TrimSuffix(dir, "/") + "/")
	out := map[string]ModTime{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(timesBucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); {
			name := k[len(prefix):]
			if i := bytes.IndexByte(name, '/'); i >= 0 {
				// A subfolder's records: seek past them ('0' follows '/').
				next := append(append([]byte(nil), k[:len(prefix)+i]...), '0')
				k, v = c.Seek(next)
				continue
			}
			if mt, ok := decodeModTime(v); ok {
				out[string(name)] = mt
			}
			k, v = c.Next()
		}
		return nil
	})
	return out, err
}

// ModTimeAt returns the kept time of the file at path, if there is one.
func (s *Store) ModTimeAt(path string) (ModTime, bool, error) {
	var mt ModTime
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		mt, found = decodeModTime(tx.Bucket(timesBucket).Get([]byte(path)))
		return nil
	})
	return mt, found, err
}

// Explorer creates a file empty, sets its times by PROPPATCH, and only then
// sends the content with a PUT that carries no time: the upload would give
// the file its own time. The time set on the empty file is kept here until
// the content arrives (davfs applies it to that PUT).

// SetPatchedTime keeps t as the time a client set by PROPPATCH on the
// empty file at path.
func (s *Store) SetPatchedTime(path string, t time.Time) error {
	v := encodePatched(t)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(patchedBucket).Put([]byte(path), v)
	})
}

// PatchedTime returns the time kept by SetPatchedTime for path, if any.
func (s *Store) PatchedTime(path string) (time.Time, bool, error) {
	var t time.Time
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		t, found = decodePatched(tx.Bucket(patchedBucket).Get([]byte(path)))
		return nil
	})
	return t, found, err
}

// ClearPatchedTime forgets the time kept for path: its content arrived.
func (s *Store) ClearPatchedTime(path string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(patchedBucket).Delete([]byte(path))
	})
}

// Export calls fn for every record, in one read transaction; fn must not
// write to s.
func (s *Store) Export(fn func(Record) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				rec, err := decodeRecord(string(name), string(k), v)
				if err != nil {
					return err
				}
				return fn(rec)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Import stores rec as it is, whatever the limits.
func (s *Store) Import(rec Record) error {
	kind, v, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(kind)).Put([]byte(rec.Path), v)
	})
	if err != nil {
		return fmt.Errorf("deadprops: import %s: %w", rec.Path, err)
	}
	return nil
}
