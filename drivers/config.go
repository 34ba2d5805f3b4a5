package drivers

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"
)

// Config is what a driver's constructor gets from the bridge.
type Config struct {
	// MountPath is where the driver is mounted ("/disktop"); for messages.
	MountPath string
	// StateDir is a directory private to this mount for tokens and cookies.
	// It exists when the constructor runs. Files holding secrets are written
	// with mode 0600, atomically (temp file, fsync, rename).
	StateDir string
	// State keeps the mount's tokens and session records: DirState(StateDir)
	// for one bridge process, the shared Redis for several instances.
	// Drivers keep credentials there, never in StateDir directly; nil
	// means DirState(StateDir).
	State State
	// Decode fills v (a pointer to the driver's options struct, with toml
	// tags) from the mount's [mounts.options] table. Unknown keys are an
	// error naming them.
	Decode func(v any) error
	// HTTPClient is the client to use for provider calls (tests inject
	// one); never nil.
	HTTPClient *http.Client
	// Logger is the mount's logger. Drivers never log secrets.
	Logger zerolog.Logger
	// LoginCommand is the command line that logs this mount in
	// interactively (`bridge login -config FILE /mount`), for the hints
	// drivers with a Loginer give; "" when unknown.
	LoginCommand string
}

// StateOf is cfg.State, or DirState(cfg.StateDir) when unset.
func (cfg Config) StateOf() State {
	if cfg.State != nil {
		return cfg.State
	}
	return DirState(cfg.StateDir)
}

// Factory builds a driver from its configuration. main.go holds the table of
// factories by driver name; there is no global registry.
type Factory func(ctx context.Context, cfg Config) (Driver, error)
