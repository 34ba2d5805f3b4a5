// Command fakeprovider serves one provider's fake on its own, so that anyone
// can try a mount without a cloud account and so that checks from outside the
// Go test suite can reach a fake:
//
//	go run ./tests/fakeprovider -provider disktop -addr 127.0.0.1:9001
//	go run ./tests/fakeprovider -provider disktop -token-ttl 120s -rate-limit 20 -link-ttl 60s
//	go run ./tests/fakeprovider -provider cloudreve -hostile -error-rate 0
//
// The fault flags (-token-ttl, -refresh-ttl, -link-ttl, -rate-limit,
// -error-rate, -cut-rate, -latency, -fault-seed) set the fake's fault
// layer; -hostile starts from the hostile profile, and flags given with it
// still win. It prints one JSON line {"base_url": ..., "mount_options":
// {...}, "restart_url": ...}, where mount_options is a complete
// [mounts.options] table for that driver which works without any
// interactive login, then serves until interrupted. A POST to restart_url
// restarts the fake (it forgets what its service keeps in memory).
//
// With -config-out FILE it also writes a complete bridge configuration for
// the fake (one user, admin, whose password it prints on stderr, and the
// mount) so that `go run . -config FILE` serves it at once. Its state
// folder is a temporary one, removed when the fake stops: the fake's
// tokens die with it, and a stale token kept in state would outlive them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"bridge/tests/demo/fakemounts"
	"bridge/tests/fakes/faults"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

// run is main with its inputs made explicit, for tests; ready, when set,
// receives the fake's base URL once it serves and the config is written.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("fakeprovider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	provider := fs.String("provider", "", "which fake to serve: "+strings.Join(fakemounts.Names(), ", "))
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	hostile := fs.Bool("hostile", false, "start from the hostile fault profile (short tokens and links, a rate limit, 5xx, cut downloads); fault flags still override it")
	configOut := fs.String("config-out", "", "also write a ready-to-run bridge configuration for this fake to this file")
	var cfg faults.Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if *hostile {
		var err error
		if cfg, err = overHostile(fs); err != nil {
			return usageError{err}
		}
	}
	p, ok := fakemounts.Lookup(*provider)
	if !ok {
		return usageError{fmt.Errorf("unknown -provider %q (have: %s)", *provider, strings.Join(fakemounts.Names(), ", "))}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	baseURL := "http://" + ln.Addr().String()
	started, err := p.Start(baseURL, cfg)
	if err != nil {
		return fmt.Errorf("start %s fake: %w", p.Name, err)
	}
	defer started.Release()
	handler, opts := started.Handler, started.Options
	line, _ := json.Marshal(map[string]any{"base_url": baseURL, "mount_options": opts,
		"restart_url": baseURL + faults.RestartPath})
	fmt.Fprintln(stdout, string(line))
	if *configOut != "" {
		cleanup, err := writeConfig(*configOut, p.Name, opts, stderr)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	if ready != nil {
		ready <- baseURL
	}

	srv := &http.Server{Handler: handler}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// writeConfig writes the bridge configuration for the fake's mount to name
// and tells on stderr (stdout keeps its one JSON line) how to run it. The
// returned cleanup removes the configuration's temporary state folder.
func writeConfig(name, provider string, opts map[string]any, stderr io.Writer) (cleanup func(), err error) {
	password, random, err := fakemounts.Password()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bridge-fake-"+provider+"-*")
	if err != nil {
		return nil, fmt.Errorf("state folder: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	err = fakemounts.Write(name, fakemounts.Config{
		Listen:   "127.0.0.1:8080",
		StateDir: filepath.Join(dir, "state"),
		TempDir:  filepath.Join(dir, "tmp"),
		Password: password,
		Mounts:   []fakemounts.Mount{{Path: "/" + provider, Driver: provider, Options: opts}},
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	shown := password
	if !random {
		shown = "the value of BRIDGE_PASSWORD"
	}
	fmt.Fprintf(stderr, "fakeprovider: wrote %s; run the bridge with: go run . -config %s\n", name, name)
	fmt.Fprintf(stderr, "fakeprovider: it serves http://127.0.0.1:8080/%s/ for user %s, password %s\n", provider, fakemounts.User, shown)
	return cleanup, nil
}

// overHostile is the hostile profile with the fault flags given on the
// command line (parsed in fs) applied over it: a flag's default would
// otherwise undo the profile.
func overHostile(fs *flag.FlagSet) (faults.Config, error) {
	cfg := faults.Hostile()
	over := flag.NewFlagSet("hostile", flag.ContinueOnError)
	cfg.RegisterFlags(over)
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if over.Lookup(fl.Name) != nil && err == nil {
			if e := over.Set(fl.Name, fl.Value.String()); e != nil {
				err = fmt.Errorf("-%s over -hostile: %w", fl.Name, e)
			}
		}
	})
	return cfg, err
}
