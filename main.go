// Command bridge serves several cloud drives as one WebDAV share.
//
//	bridge [serve] [-config FILE]      run the server (the default command)
//	bridge hash-password               read a password on stdin, print its bcrypt hash
//	bridge check-config FILE           report every problem of a configuration file
//	bridge login [-config FILE] [-auth-code] MOUNT
//	                                   authorize a mount's provider account interactively
//	bridge version                     print the version
//
// With no configuration file it serves ./data through the local driver on
// 127.0.0.1:8080, for the user admin with the password in BRIDGE_PASSWORD or
// a random one printed at start.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"

	"bridge/config"
	"bridge/drivers"
	"bridge/drivers/cloudreve"
	"bridge/drivers/disccloud"
	"bridge/drivers/disktop"
	"bridge/drivers/gokuai"
	"bridge/drivers/local"
	"bridge/drivers/terabox"
	"bridge/metrics"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// driverFactories is the table of drivers by name. There is no global
// registry: adding a driver means adding a line here.
func driverFactories() map[string]drivers.Factory {
	return map[string]drivers.Factory{
		local.Name:     local.New,
		disktop.Name:   disktop.New,
		cloudreve.Name: cloudreve.New,
		disccloud.Name: disccloud.New,
		gokuai.Name:    gokuai.New,
		terabox.Name:   terabox.New,
	}
}

func driverNames() []string {
	var names []string
	for n := range driverFactories() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

const usage = `bridge serves several cloud drives as one WebDAV share.

Usage:
  bridge [serve] [-config FILE]     run the server (default command)
  bridge hash-password              read a password on stdin, print its bcrypt hash
  bridge check-config FILE          report every problem of a configuration file
  bridge login [-config FILE] [-auth-code] MOUNT
                                    authorize a mount's provider account
  bridge migrate-state -config FILE -to redis|dir [-overwrite]
                                    copy tokens, sessions and dead properties from
                                    state_dir into server.shared_state, or back
  bridge version                    print the version

Without -config, ./data is served through the local driver on 127.0.0.1:8080
(-listen ADDR or BRIDGE_LISTEN to change it) for the user "admin"; the
password is BRIDGE_PASSWORD, or a random one that is printed once at start.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its inputs made explicit, for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, stdout, stderr)
	case "hash-password":
		err = hashPasswordCmd(stdin, stdout)
	case "check-config":
		err = checkConfigCmd(ctx, args, stdout)
	case "login":
		err = loginCmd(ctx, args, stdin, stdout, stderr)
	case "migrate-state":
		err = migrateStateCmd(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "bridge", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "bridge: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "bridge %s: %v\n", cmd, err)
			return 2
		}
		fmt.Fprintf(stderr, "bridge %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bridge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func hashPasswordCmd(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return usageError{"empty password on stdin"}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	fmt.Fprintln(stdout, string(hash))
	return nil
}

func checkConfigCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageError{"usage: bridge check-config FILE"}
	}
	c, err := config.Load(args[0], driverNames())
	if err == nil {
		err = checkMountOptions(ctx, c)
	}
	var probs config.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintf(stdout, "%s: %s\n", args[0], p)
		}
		return fmt.Errorf("%d problem(s) in %s", len(probs), args[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d mounts, %d users)\n", args[0], len(c.Mounts), len(c.Users))
	return nil
}

func loginCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("login", stderr)
	file := fs.String("config", "", "configuration file")
	authCode := fs.Bool("auth-code", false, "use the authorization-code flow with PKCE on a loopback redirect instead of the device code")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *file == "" {
		return usageError{"usage: bridge login -config FILE [-auth-code] MOUNT"}
	}
	c, err := config.Load(*file, driverNames())
	if err != nil {
		return err
	}
	shared, err := openShared(ctx, c)
	if err != nil {
		return err
	}
	if shared != nil {
		defer shared.Close() // the tokens go where every instance reads them
	}
	for i, m := range c.Mounts {
		if m.Path != fs.Arg(0) {
			continue
		}
		drv, err := newDriver(ctx, c, i, newLogger(c.Server, stderr), metrics.New(), shared)
		if err != nil {
			return err
		}
		if cl, ok := drv.(drivers.Closer); ok {
			defer cl.Close()
		}
		l, ok := drv.(drivers.Loginer)
		if !ok {
			return fmt.Errorf("mount %s (driver %s) has no interactive login", m.Path, m.Driver)
		}
		return l.Login(ctx, stdout, drivers.LoginOptions{AuthCode: *authCode, In: stdin})
	}
	return usageError{fmt.Sprintf("no mount %q in %s", fs.Arg(0), *file)}
}
