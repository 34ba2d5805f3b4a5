// Package fakemounts starts provider fakes as a bridge mount would reach
// them and writes ready-to-run bridge configurations for them. It is shared
// by the fakeprovider command (one fake) and the demo (all of them), so a
// provider added here shows up in both.
package fakemounts

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"sort"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"

	cloudrevefake "bridge/tests/fakes/cloudreve"
	disktopfake "bridge/tests/fakes/disktop"
	"bridge/tests/fakes/faults"
)

// Provider is one runnable fake, named after the driver that talks to it.
type Provider struct {
	Name  string // the driver name, also the mount path /Name
	Title string // the provider as people know it
	// Start returns the fake, with its fault layer set to cfg, for a
	// server that will listen at baseURL.
	Start func(baseURL string, cfg faults.Config) (Started, error)
}

// Started is a running fake.
type Started struct {
	Handler http.Handler
	// Options are the mount options that reach the fake without any
	// interactive login.
	Options map[string]any
	// Close releases what the fake keeps on disk (its files' content);
	// nil when it keeps nothing there.
	Close func()
}

// Release calls Close if there is one.
func (s Started) Release() {
	if s.Close != nil {
		s.Close()
	}
}

// Providers lists every runnable fake, sorted by name.
func Providers() []Provider {
	ps := []Provider{
		{Name: "cloudreve", Title: "Cloudreve v3", Start: startCloudreve},
		{Name: "disktop", Title: "Disk.Top", Start: startDisktop},
		{Name: "disccloud", Title: "DiscCloud (YetiShare)", Start: startDisccloud},
		{Name: "gokuai", Title: "Gokuai 够快云库", Start: startGokuai},
		{Name: "terabox", Title: "TeraBox", Start: startTerabox},
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// Lookup finds a provider by name.
func Lookup(name string) (Provider, bool) {
	for _, p := range Providers() {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// Names are the providers' names, sorted.
func Names() []string {
	var out []string
	for _, p := range Providers() {
		out = append(out, p.Name)
	}
	return out
}

// startCloudreve serves the Cloudreve fake with its one user, whose
// credentials are the mount options (the driver logs in by itself).
func startCloudreve(baseURL string, cfg faults.Config) (Started, error) {
	f := cloudrevefake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	return Started{Handler: f.Handler(), Options: map[string]any{"base_url": baseURL, "username": f.User, "password": f.Password},
		Close: func() { f.Close() }}, nil
}

// startDisktop serves the Disk.Top fake; its mount options carry a refresh
// token issued for the test client, so no interactive login is needed (the
// driver rotates it into its state dir at once).
func startDisktop(baseURL string, cfg faults.Config) (Started, error) {
	f := disktopfake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	_, refresh := f.IssueToken()
	return Started{Handler: f.Handler(), Options: map[string]any{
		"client_id":     f.ClientID,
		"client_secret": f.ClientSecret,
		"api_base":      baseURL,
		"refresh_token": refresh,
	}, Close: func() { f.Close() }}, nil
}

// User is the one account of a written configuration.
const User = "admin"

// Password is BRIDGE_PASSWORD, as the bridge's no-config mode takes it, or
// a random one; random reports which.
func Password() (password string, random bool, err error) {
	if p := os.Getenv("BRIDGE_PASSWORD"); p != "" {
		return p, false, nil
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), true, nil
}

// Config is what a written configuration holds: the [server] keys a
// throwaway bridge needs, one user who sees every mount, and the mounts.
type Config struct {
	Listen   string
	StateDir string // absolute: the bridge may be started from anywhere
	TempDir  string
	// ShutdownTimeout, when set, replaces the 30 s the bridge grants
	// running requests after a stop signal.
	ShutdownTimeout string
	LogFormat       string // "" keeps the bridge's default (json)
	Password        string // hashed with bcrypt into the file
	Mounts          []Mount
}

// Mount is one [[mounts]] entry.
type Mount struct {
	Path    string
	Driver  string
	Options map[string]any
}

// file is the TOML layout, in the order the bridge's example uses.
type file struct {
	Server struct {
		Listen          string `toml:"listen"`
		StateDir        string `toml:"state_dir"`
		TempDir         string `toml:"temp_dir,omitempty"`
		ShutdownTimeout string `toml:"shutdown_timeout,omitempty"`
		LogFormat       string `toml:"log_format,omitempty"`
	} `toml:"server"`
	Users  []fileUser  `toml:"users"`
	Mounts []fileMount `toml:"mounts"`
}

type fileUser struct {
	Name         string   `toml:"name"`
	PasswordHash string   `toml:"password_hash"`
	Mounts       []string `toml:"mounts"`
}

type fileMount struct {
	Path    string         `toml:"path"`
	Driver  string         `toml:"driver"`
	Options map[string]any `toml:"options"`
}

// Write writes c as a bridge configuration file, readable by its owner
// only: it holds the fakes' secrets and a password hash.
func Write(name string, c Config) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var f file
	f.Server.Listen = c.Listen
	f.Server.StateDir = c.StateDir
	f.Server.TempDir = c.TempDir
	f.Server.ShutdownTimeout = c.ShutdownTimeout
	f.Server.LogFormat = c.LogFormat
	f.Users = []fileUser{{Name: User, PasswordHash: string(hash), Mounts: []string{"*"}}}
	for _, m := range c.Mounts {
		f.Mounts = append(f.Mounts, fileMount(m))
	}
	var buf bytes.Buffer
	buf.WriteString("# Written for provider fakes that live only while the command that\n" +
		"# wrote this file runs. Run it with: go run . -config FILE\n\n")
	if err := toml.NewEncoder(&buf).Encode(f); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
