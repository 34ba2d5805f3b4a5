package config

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var known = []string{"local", "disktop"}

func hash(t *testing.T) string {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseValid(t *testing.T) {
	src := `
[server]
listen = "127.0.0.1:9999"
cache_ttl = "5s"

[[users]]
name = "alice"
password_hash = "` + hash(t) + `"
mounts = ["*"]

[[mounts]]
path = "/local"
driver = "local"
[mounts.options]
root = "${ROOT}"
`
	c, err := Parse("c.toml", []byte(src), env(map[string]string{"ROOT": `/srv/da"ta`}), known)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:9999" || c.Server.CacheTTL.Seconds() != 5 || c.Mounts[0].Download != DownloadProxy {
		t.Fatalf("parsed %+v", c.Server)
	}
	var opts struct {
		Root string `toml:"root"`
	}
	if err := c.DecodeOptions(0, &opts); err != nil || opts.Root != `/srv/da"ta` {
		t.Fatalf("options %+v, %v", opts, err)
	}
}

func TestEveryProblemNamedWithLine(t *testing.T) {
	src := `[server]
listen = "x"
colour = "blue"

[[users]]
name = "bob"
password_hash = "plain"
mounts = ["/nowhere"]

[[mounts]]
path = "/a"
driver = "local"

[[mounts]]
path = "/a"
driver = "gdrive"
download = "teleport"
[mounts.options]
token = "${MISSING_TOKEN}"
`
	_, err := Parse("c.toml", []byte(src), env(nil), known)
	probs, ok := err.(Problems)
	if !ok {
		t.Fatalf("error %v is not Problems", err)
	}
	text := probs.Error()
	for _, want := range []string{
		"line 3: server.colour: unknown key",
		"line 7: users[0].password_hash: is not a bcrypt hash",
		`line 8: users[0].mounts: no mount at "/nowhere"`,
		`line 15: mounts[1].path: duplicate mount path "/a"`,
		`line 16: mounts[1].driver: unknown driver "gdrive"`,
		`line 17: mounts[1].download: must be`,
		"line 19: ${MISSING_TOKEN}: environment variable MISSING_TOKEN is not set",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestUnknownOptionKey(t *testing.T) {
	src := `[[users]]
name = "a"
password_hash = "` + hash(t) + `"
mounts = ["*"]
[[mounts]]
path = "/l"
driver = "local"
[mounts.options]
root = "/x"
rot = "/y"
`
	c, err := Parse("c.toml", []byte(src), env(nil), known)
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Root string `toml:"root"`
	}
	err = c.DecodeOptions(0, &opts)
	if err == nil || !strings.Contains(err.Error(), "line 10: mounts[0].options.rot: unknown key for driver local") {
		t.Fatalf("got %v", err)
	}
}

func TestNoUsersIsAnError(t *testing.T) {
	_, err := Parse("c.toml", []byte("[[mounts]]\npath = \"/l\"\ndriver = \"local\"\n"), env(nil), known)
	if err == nil || !strings.Contains(err.Error(), "never serves without authentication") {
		t.Fatalf("got %v", err)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("c.toml", []byte("[server]\nlisten = \n"), env(nil), known)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("got %v", err)
	}
}

func TestCommentsAreNotExpanded(t *testing.T) {
	src := "# use ${NAME} for secrets\n[[users]] # ${ALSO_NOT}\nname = \"a#${WHO}\"\npassword_hash = \"" + hash(t) + "\"\nmounts = [\"*\"]\n"
	c, err := Parse("c.toml", []byte(src), env(map[string]string{"WHO": "b"}), known)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users[0].Name != "a#b" {
		t.Fatalf("name %q", c.Users[0].Name)
	}
}

func TestCacheTTLAtLeastOneSecond(t *testing.T) {
	src := "[server]\ncache_ttl = \"10ms\"\n[[users]]\nname = \"a\"\npassword_hash = \"" + hash(t) + "\"\nmounts = [\"*\"]\n"
	_, err := Parse("c.toml", []byte(src), env(nil), known)
	if err == nil || !strings.Contains(err.Error(), "line 2: server.cache_ttl: must be at least 1s") {
		t.Fatalf("got %v", err)
	}
}

func TestPropLimits(t *testing.T) {
	users := "[[users]]\nname = \"a\"\npassword_hash = \"" + hash(t) + "\"\nmounts = [\"*\"]\n"
	c, err := Parse("c.toml", []byte(users), env(nil), known)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxProppatchBytes != 64<<10 || c.Server.MaxPropsBytes != 256<<10 {
		t.Fatalf("defaults: %d %d", c.Server.MaxProppatchBytes, c.Server.MaxPropsBytes)
	}
	c, err = Parse("c.toml", []byte("[server]\nmax_proppatch_bytes = 4096\nmax_props_bytes = 1048576\n"+users), env(nil), known)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxProppatchBytes != 4096 || c.Server.MaxPropsBytes != 1<<20 {
		t.Fatalf("set: %d %d", c.Server.MaxProppatchBytes, c.Server.MaxPropsBytes)
	}
	_, err = Parse("c.toml", []byte("[server]\nmax_proppatch_bytes = -1\nmax_props_bytes = 100\n"+users), env(nil), known)
	for _, want := range []string{"line 2: server.max_proppatch_bytes: must be at least 1024", "line 3: server.max_props_bytes: must be at least 1024"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestMaxLockTimeout(t *testing.T) {
	users := "[[users]]\nname = \"a\"\npassword_hash = \"" + hash(t) + "\"\nmounts = [\"*\"]\n"
	c, err := Parse("c.toml", []byte(users), env(nil), known)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxLockTimeout.Duration != time.Hour {
		t.Fatalf("default max_lock_timeout %v, want 1h", c.Server.MaxLockTimeout.Duration)
	}
	c, err = Parse("c.toml", []byte("[server]\nmax_lock_timeout = \"10m\"\n"+users), env(nil), known)
	if err != nil || c.Server.MaxLockTimeout.Duration != 10*time.Minute {
		t.Fatalf("max_lock_timeout = \"10m\": %v, %v", c.Server.MaxLockTimeout.Duration, err)
	}
	_, err = Parse("c.toml", []byte("[server]\nmax_lock_timeout = \"10ms\"\n"+users), env(nil), known)
	if err == nil || !strings.Contains(err.Error(), "line 2: server.max_lock_timeout: must be at least 1s") {
		t.Fatalf("got %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	users := "[[users]]\nname = \"a\"\npassword_hash = \"" + hash(t) + "\"\nmounts = [\"*\"]\n"
	c, err := Parse("c.toml", []byte(users), env(nil), known)
	if err != nil {
		t.Fatal(err)
	}
	if nets, err := c.Server.TrustedProxyNets(); err != nil || len(nets) != 0 {
		t.Fatalf("default: %v, %v; want none", nets, err)
	}
	c, err = Parse("c.toml", []byte("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\", \"::1\", \"::ffff:192.168.0.0/112\"]\n"+users), env(nil), known)
	if err != nil {
		t.Fatal(err)
	}
	nets, err := c.Server.TrustedProxyNets()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nets {
		got = append(got, n.String())
	}
	if want := "127.0.0.1/32 10.0.0.0/8 fd00::/8 ::1/128 192.168.0.0/16"; strings.Join(got, " ") != want {
		t.Fatalf("parsed %v, want %s", got, want)
	}
	src := "[server]\nlisten = \"127.0.0.1:1\"\ntrusted_proxies = [\n  \"10.0.0.0/33\",\n]\n" + users
	_, err = Parse("c.toml", []byte(src), env(nil), known)
	if err == nil || !strings.Contains(err.Error(), `line 3: server.trusted_proxies: "10.0.0.0/33" is not an IP address or CIDR`) {
		t.Fatalf("bad CIDR: %v", err)
	}
	for bad, msg := range map[string]string{
		`"proxy.example.com"`: `"proxy.example.com" is not an IP address or CIDR`,
		`"10.0.0.1/8"`:        `"10.0.0.1/8" has bits set past /8 (the network is 10.0.0.0/8)`,
		`"0.0.0.0/0"`:         `would believe every client's X-Forwarded-For`,
		`"::/0"`:              `would believe every client's X-Forwarded-For`,
		`"fe80::1%eth0"`:      `zone`,
		`""`:                  `"" is not an IP address or CIDR`,
		`"10.0.0.1", "x/8"`:   `"x/8" is not an IP address or CIDR`,
		`"10.0.0.0/8"`:        "",
		`"10.0.0.0 /8"`:       `is not an IP address or CIDR`,
	} {
		_, err := Parse("c.toml", []byte("[server]\ntrusted_proxies = ["+bad+"]\n"+users), env(nil), known)
		switch {
		case msg == "" && err != nil:
			t.Errorf("%s: %v", bad, err)
		case msg != "" && (err == nil || !strings.Contains(err.Error(), "line 2: server.trusted_proxies: ") || !strings.Contains(err.Error(), msg)):
			t.Errorf("%s: got %v, want line 2 and %q", bad, err, msg)
		}
	}
	_, err = Parse("c.toml", []byte("[server]\ntrusted_proxies = \"10.0.0.0/8\"\n"+users), env(nil), known)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a string, not a list: %v", err)
	}
}
