// Command demo serves every provider fake and a local folder through one
// bridge, so that anyone can try all the drivers with one command and no
// account:
//
//	go run ./tests/demo
//	go run ./tests/demo -listen 127.0.0.1:9090 -hostile
//
// It starts each fake of tests/demo/fakemounts on a loopback port in this
// process, builds the bridge from the module it runs in (the fakes stay out
// of the product binary), writes a configuration for it into a temporary
// folder (one user, admin, with BRIDGE_PASSWORD or a random password; one
// mount per fake and /local over an empty folder), runs it, and prints the
// URL, the user, the password and every mount. Ctrl-C (or SIGTERM) stops
// the bridge, then the fakes, and removes the temporary folder with
// everything uploaded: nothing outlives the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"bridge/tests/demo/fakemounts"
	"bridge/tests/fakes/faults"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run is main with its inputs made explicit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address the bridge listens on")
	hostile := fs.Bool("hostile", false, "run every fake in the hostile fault profile (60 s tokens and links, a rate limit, 5xx, cut downloads)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var profile faults.Config
	if *hostile {
		profile = faults.Hostile()
	}
	password, random, err := fakemounts.Password()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bridge-demo-*")
	if err != nil {
		return fmt.Errorf("temp folder: %w", err)
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintln(stderr, "demo: building the bridge ...")
	bin := filepath.Join(tmp, "bridge")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %w\n%s", root, err, out)
	}

	fakes, mounts, err := startFakes(profile)
	defer func() {
		for _, f := range fakes {
			f.srv.Close()
			f.started.Release()
		}
	}()
	if err != nil {
		return err
	}
	mounts = append(mounts, fakemounts.Mount{Path: "/local", Driver: "local",
		Options: map[string]any{"root": filepath.Join(tmp, "local")}})
	cfgFile := filepath.Join(tmp, "config.toml")
	err = fakemounts.Write(cfgFile, fakemounts.Config{
		Listen:          *listen,
		StateDir:        filepath.Join(tmp, "state"),
		TempDir:         filepath.Join(tmp, "tmp"),
		ShutdownTimeout: "5s", // a demo's uploads are not worth a long wait
		LogFormat:       "console",
		Password:        password,
		Mounts:          mounts,
	})
	if err != nil {
		return err
	}

	// The bridge's log goes to stderr, this command's own lines to stdout.
	cmd := exec.Command(bin, "serve", "-config", cfgFile)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the bridge: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopBridge(cmd, exited, stderr)

	base := "http://" + *listen
	if err := waitReady(ctx, base, exited); err != nil {
		return err
	}
	shown := password
	if !random {
		shown = "(the value of BRIDGE_PASSWORD)"
	}
	fmt.Fprintf(stdout, "demo: WebDAV bridge at %s/\n", base)
	fmt.Fprintf(stdout, "demo: user %s, password %s\n", fakemounts.User, shown)
	for _, f := range fakes {
		fmt.Fprintf(stdout, "mount /%s: %s/%s/ (%s fake at %s%s)\n", f.name, base, f.name, f.title, f.url, hostileNote(*hostile))
	}
	fmt.Fprintf(stdout, "mount /local: %s/local/ (a local folder in %s)\n", base, tmp)
	fmt.Fprintf(stdout, "demo: try: rclone lsjson :webdav:/disktop --webdav-url %s --webdav-user %s --webdav-pass \"$(rclone obscure PASSWORD)\"\n", base, fakemounts.User)
	fmt.Fprintf(stdout, "demo: Ctrl-C stops the bridge and the fakes and removes %s\n", tmp)

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		exited <- err // for stopBridge
		return fmt.Errorf("the bridge exited: %v", err)
	}
}

func hostileNote(hostile bool) string {
	if hostile {
		return ", hostile"
	}
	return ""
}

// fake is one running provider fake.
type fake struct {
	name, title, url string
	srv              *http.Server
	started          fakemounts.Started
}

// startFakes serves every provider fake on its own loopback port, each in
// the fault profile given, and returns them with their mounts. Fakes
// started before an error are returned too, for the caller to close.
func startFakes(profile faults.Config) ([]fake, []fakemounts.Mount, error) {
	var fakes []fake
	var mounts []fakemounts.Mount
	for _, p := range fakemounts.Providers() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fakes, nil, fmt.Errorf("%s fake: listen: %w", p.Name, err)
		}
		url := "http://" + ln.Addr().String()
		started, err := p.Start(url, profile)
		if err != nil {
			ln.Close()
			return fakes, nil, fmt.Errorf("%s fake: %w", p.Name, err)
		}
		srv := &http.Server{Handler: started.Handler}
		go srv.Serve(ln)
		fakes = append(fakes, fake{name: p.Name, title: p.Title, url: url, srv: srv, started: started})
		mounts = append(mounts, fakemounts.Mount{Path: "/" + p.Name, Driver: p.Name, Options: started.Options})
	}
	return fakes, mounts, nil
}

// waitReady polls the bridge's /healthz until it answers 200 (every mount
// reached its fake), the bridge exits, or 30 s have passed.
func waitReady(ctx context.Context, base string, exited chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the bridge exited before it was ready: %v", err)
		case <-ctx.Done():
			return nil // stopping anyway
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return fmt.Errorf("the bridge at %s was not ready within 30 s: %s", base, last)
}

// stopBridge stops the bridge as an operator would (SIGINT), and kills it
// if it is still running after its shutdown timeout and some slack.
func stopBridge(cmd *exec.Cmd, exited chan error, stderr io.Writer) {
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			fmt.Fprintln(stderr, "demo: the bridge stopped:", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		fmt.Fprintln(stderr, "demo: the bridge did not stop within 15 s of SIGINT: killed")
	}
}

// moduleRoot is the folder of the bridge module's go.mod, found from the
// working folder upwards, so the demo runs from anywhere inside the tree.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working folder: %w", err)
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isBridgeModule(mod) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module bridge in the working folder or above it: run the demo inside the bridge's source tree")
		}
		dir = parent
	}
}

// isBridgeModule reports whether a go.mod declares module bridge.
func isBridgeModule(mod []byte) bool {
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == "bridge"
		}
	}
	return false
}
