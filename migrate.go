package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"bridge/cluster"
	"bridge/config"
	"bridge/davfs/deadprops"
	"bridge/drivers"
)

// stateRecords are the records drivers keep in their drivers.State: OAuth
// tokens, session cookies and tokens, a TeraBox share's session.
var stateRecords = []string{"token.json", "session.json", "share.json"}

// migrateStateCmd copies a single process's state (state_dir) into the
// Redis of server.shared_state, or back: every mount's tokens and
// sessions, and every dead property and kept modification time. Locks,
// pending entries, throttling counters and caches are not state worth
// keeping across a restart and are not copied. Run it while no bridge
// instance is serving: a token refreshed during the copy would be lost.
func migrateStateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate-state", stderr)
	file := fs.String("config", "", "configuration file naming state_dir and shared_state")
	to := fs.String("to", "", `"redis": state_dir into shared_state; "dir": shared_state into state_dir`)
	overwrite := fs.Bool("overwrite", false, "replace records the destination has already")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || (*to != "redis" && *to != "dir") || fs.NArg() > 0 {
		return usageError{"usage: bridge migrate-state -config FILE -to redis|dir [-overwrite]"}
	}
	c, err := config.Load(*file, driverNames())
	if err != nil {
		return err
	}
	if c.Server.SharedState == "" {
		return fmt.Errorf("%s sets no server.shared_state: there is nothing to migrate to or from", *file)
	}
	r, err := cluster.Open(ctx, c.Server.SharedState, c.Server.SharedPrefix)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := os.MkdirAll(c.Server.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	props, err := deadprops.Open(filepath.Join(c.Server.StateDir, "props.db"))
	if err != nil {
		return err
	}
	defer props.Close()
	shared := deadprops.OpenRedis(r)

	type pair struct {
		mount    string
		from, to drivers.State
	}
	var pairs []pair
	for _, m := range c.Mounts {
		dir := mountStateDir(c.Server.StateDir, m.Path)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("mount %s: state dir: %w", m.Path, err)
		}
		p := pair{mount: m.Path, from: drivers.DirState(dir), to: r.MountState(m.Path)}
		if *to == "dir" {
			p.from, p.to = p.to, p.from
		}
		pairs = append(pairs, p)
	}
	// Refuse before copying anything: half a migration over live records
	// could pair one mount's new token with another's old one.
	if !*overwrite {
		for _, p := range pairs {
			for _, name := range stateRecords {
				have, err := p.to.Load(ctx, name)
				if err != nil {
					return err
				}
				src, err := p.from.Load(ctx, name)
				if err != nil {
					return err
				}
				if have != nil && src != nil && string(have) != string(src) {
					return fmt.Errorf("mount %s: the destination has a different %s already (-overwrite replaces it)", p.mount, name)
				}
			}
		}
	}
	records := 0
	for _, p := range pairs {
		for _, name := range stateRecords {
			b, err := p.from.Load(ctx, name)
			if err != nil {
				return err
			}
			if b == nil {
				continue
			}
			if err := p.to.Save(ctx, name, b); err != nil {
				return fmt.Errorf("mount %s: %s: %w", p.mount, name, err)
			}
			records++
		}
	}
	var n int
	if *to == "redis" {
		n, err = deadprops.CopyAll(shared, props)
	} else {
		n, err = deadprops.CopyAll(props, shared)
	}
	if err != nil {
		return err
	}
	where := map[string]string{"redis": c.Server.SharedState, "dir": c.Server.StateDir}
	fmt.Fprintf(stdout, "copied %d token and session records of %d mounts and %d property records into %s\n",
		records, len(pairs), n, redactURL(where[*to]))
	return nil
}

// redactURL hides a password in a Redis URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
