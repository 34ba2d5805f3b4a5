package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"bridge/config"
)

// TestReadmeNamesTheGoVersionOfGoMod: the README's first instruction
// must hold on a fresh machine.
func TestReadmeNamesTheGoVersionOfGoMod(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod names no go version")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "With Go " + string(m[1]) + " or newer"; !strings.Contains(string(readme), want) {
		t.Fatalf("README lacks %q (go.mod says go %s)", want, m[1])
	}
}

// TestReadmeLinksStayInTheRepository: a relative link in the README must
// resolve inside a clone (the provider documents live outside it).
func TestReadmeLinksStayInTheRepository(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllSubmatch(readme, -1) {
		link := string(m[1])
		if strings.Contains(link, "://") {
			continue
		}
		if _, err := os.Stat(link); err != nil {
			t.Errorf("README links to %s, which a clone does not have", link)
		}
	}
}

// TestReadmeListsEveryConfigKeyAndDriver: the configuration table names
// every [server] key the config package reads, and the drivers table
// every driver.
func TestReadmeListsEveryConfigKeyAndDriver(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	typ := reflect.TypeOf(config.Server{})
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		if !strings.Contains(text, "`server."+key+"`") && !strings.Contains(text, "`server."+key+"`,") {
			t.Errorf("the README's configuration table lacks server.%s", key)
		}
	}
	for _, name := range driverNames() {
		if !strings.Contains(text, "| `"+name+"` |") {
			t.Errorf("the README's drivers table lacks %s", name)
		}
	}
}
