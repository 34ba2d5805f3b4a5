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
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"

	cloudrevefake "bridge/tests/fakes/cloudreve"
	disktopfake "bridge/tests/fakes/disktop"
	"bridge/tests/fakes/faults"
)

// fake is what each provider's fake offers to this command.
type fake struct {
	// start returns the fake's handler, with its fault layer set to cfg,
	// for a server that will listen at baseURL, and the mount options that
	// reach it.
	start func(baseURL string, cfg faults.Config) (http.Handler, map[string]any, error)
}

// fakes is the table of runnable fakes, by driver name.
var fakes = map[string]fake{
	"disktop":   {start: startDisktop},
	"cloudreve": {start: startCloudreve},
}

// startCloudreve serves the Cloudreve fake with its one user, whose
// credentials are the mount options (the driver logs in by itself).
func startCloudreve(baseURL string, cfg faults.Config) (http.Handler, map[string]any, error) {
	f := cloudrevefake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	return f.Handler(), map[string]any{"base_url": baseURL, "username": f.User, "password": f.Password}, nil
}

// startDisktop serves the Disk.Top fake; its mount options carry a refresh
// token issued for the test client, so no interactive login is needed (the
// driver rotates it into its state dir at once).
func startDisktop(baseURL string, cfg faults.Config) (http.Handler, map[string]any, error) {
	f := disktopfake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	_, refresh := f.IssueToken()
	return f.Handler(), map[string]any{
		"client_id":     f.ClientID,
		"client_secret": f.ClientSecret,
		"api_base":      baseURL,
		"refresh_token": refresh,
	}, nil
}

func main() {
	provider := flag.String("provider", "", "which fake to serve: "+strings.Join(names(), ", "))
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	hostile := flag.Bool("hostile", false, "start from the hostile fault profile (short tokens and links, a rate limit, 5xx, cut downloads); fault flags still override it")
	var cfg faults.Config
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	if *hostile {
		var err error
		if cfg, err = overHostile(flag.CommandLine); err != nil {
			fmt.Fprintln(os.Stderr, "fakeprovider:", err)
			os.Exit(2)
		}
	}
	f, ok := fakes[*provider]
	if !ok {
		fmt.Fprintf(os.Stderr, "fakeprovider: unknown -provider %q (have: %s)\n", *provider, strings.Join(names(), ", "))
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
	baseURL := "http://" + ln.Addr().String()
	handler, opts, err := f.start(baseURL, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(map[string]any{"base_url": baseURL, "mount_options": opts,
		"restart_url": baseURL + faults.RestartPath})
	fmt.Println(string(line))

	srv := &http.Server{Handler: handler}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
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

func names() []string {
	var out []string
	for n := range fakes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
