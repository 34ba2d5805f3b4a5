// Package deadprops stores WebDAV dead properties (those set by PROPPATCH)
// per share path in an embedded bbolt database under state_dir, so they
// survive restarts and follow MOVE and COPY. Keys are share paths
// ("/local/a/b.txt"); a folder's subtree is every key below "path/".
package deadprops

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/webdav"
)

var bucket = []byte("deadprops")

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
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
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
		b := tx.Bucket(bucket)
		return subtree(b, path, func(k, _ []byte) error { return b.Delete(k) })
	})
}

// Copy gives dst (and its subtree) the properties of src's, replacing
// whatever dst had.
func (s *Store) Copy(src, dst string) error { return s.transfer(src, dst, false) }

// Move is Copy, then src's properties are forgotten.
func (s *Store) Move(src, dst string) error { return s.transfer(src, dst, true) }

func (s *Store) transfer(src, dst string, move bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if err := subtree(b, dst, func(k, _ []byte) error { return b.Delete(k) }); err != nil {
			return err
		}
		return subtree(b, src, func(k, v []byte) error {
			nk := append([]byte(dst), k[len(src):]...)
			if err := b.Put(nk, v); err != nil {
				return err
			}
			if move {
				return b.Delete(k)
			}
			return nil
		})
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
