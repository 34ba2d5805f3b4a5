// Package deadprops stores WebDAV dead properties (those set by PROPPATCH)
// per share path in an embedded bbolt database under state_dir, so they
// survive restarts and follow MOVE and COPY. Keys are share paths
// ("/local/a/b.txt"); a folder's subtree is every key below "path/".
//
// Beside them it keeps the modification times the bridge remembers for
// files of providers that cannot store a client's time (see ModTimes);
// they follow MOVE and COPY and go with DELETE the same way.
package deadprops

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/webdav"
)

var (
	bucket      = []byte("deadprops")
	timesBucket = []byte("modtimes")
	buckets     = [][]byte{bucket, timesBucket}
)

// Store is the property database. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
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
	return &Store{db: db}, nil
}

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

// Patch applies PROPPATCH instructions to path in one transaction: all of
// them or none.
func (s *Store) Patch(path string, patches []webdav.Proppatch) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		props := map[xml.Name]webdav.Property{}
		if v := b.Get([]byte(path)); v != nil {
			var err error
			if props, err = decode(v); err != nil {
				return err
			}
		}
		for _, patch := range patches {
			for _, p := range patch.Props {
				if patch.Remove {
					delete(props, p.XMLName)
				} else {
					props[p.XMLName] = p
				}
			}
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
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], uint64(size))
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
