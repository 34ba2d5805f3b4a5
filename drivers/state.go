package drivers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// State keeps a mount's small private records: tokens, session cookies,
// share session keys. With one bridge process it is a folder (DirState);
// with several instances behind a load balancer it is the shared Redis
// (package cluster), so that a credential one instance renews is the one
// every instance uses, and only one instance renews it at a time.
type State interface {
	// Load returns the record name, or nil and no error when there is
	// none.
	Load(ctx context.Context, name string) ([]byte, error)
	// Save replaces the record name durably before it returns: a rotated
	// refresh token that is not saved loses the account.
	Save(ctx context.Context, name string, data []byte) error
	// Lease makes the caller the one that renews the credential name
	// (refresh, login), for as long as it holds the lease: ok is false
	// while another process holds it, and the caller then waits for that
	// one's result (Load) instead of renewing too. A lease whose holder
	// dies expires by itself within ttl. release ends it.
	Lease(ctx context.Context, name string, ttl time.Duration) (release func(), ok bool, err error)
	// Shared reports whether other processes use the same records, so
	// that what is in memory may be older than what Load returns.
	Shared() bool
}

// DirState is the single-process State: one file per record in a folder
// (mode 0600, written atomically). Leases are always granted: callers
// already renew once per process.
type DirState string

// Load reads the file dir/name.
func (d DirState) Load(_ context.Context, name string) ([]byte, error) {
	if d == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(string(d), name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", name, err)
	}
	return b, nil
}

// Save writes the file dir/name atomically with mode 0600.
func (d DirState) Save(_ context.Context, name string, data []byte) error {
	if d == "" {
		return nil // a driver built without state (tests): memory only
	}
	return WriteFileAtomic(filepath.Join(string(d), name), data)
}

// Lease always grants: one process renews through its own single flight.
func (d DirState) Lease(context.Context, string, time.Duration) (func(), bool, error) {
	return func() {}, true, nil
}

// Shared is false: nobody else writes the folder (but `bridge login`).
func (d DirState) Shared() bool { return false }

// Path is the folder, for records that are not secrets (a QR code image).
func (d DirState) Path() string { return string(d) }

// WriteFileAtomic writes data to file with mode 0600: temp file in the same
// folder, fsync, rename, fsync of the folder.
func WriteFileAtomic(file string, data []byte) error {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+strings.TrimPrefix(filepath.Base(file), ".")+"-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
