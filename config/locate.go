package config

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	arrayHeader = regexp.MustCompile(`^\s*\[\[\s*([^\]]+?)\s*\]\]`)
	tableHeader = regexp.MustCompile(`^\s*\[\s*([^\]]+?)\s*\]`)
	keyLine     = regexp.MustCompile(`^\s*("[^"]*"|[A-Za-z0-9_\-]+)\s*=`)
)

// locate finds the line (1-based) where key, written as toml's keys with
// array indexes ("mounts[1].options.root"), is set; 0 if not found. It
// scans lines, which is enough for configuration files (no multi-line
// values are used for keys we report). BurntSushi/toml keeps key positions
// private, hence this.
func locate(src []byte, key string) int {
	if len(src) == 0 || key == "" {
		return 0
	}
	counts := map[string]int{}
	table := ""
	headerLine := 0
	for i, line := range strings.Split(string(src), "\n") {
		n := i + 1
		if m := arrayHeader.FindStringSubmatch(line); m != nil {
			name := strings.ReplaceAll(m[1], " ", "")
			table = fmt.Sprintf("%s[%d]", name, counts[name])
			counts[name]++
			headerLine = n
		} else if m := tableHeader.FindStringSubmatch(line); m != nil {
			table = indexed(strings.ReplaceAll(m[1], " ", ""), counts)
			headerLine = n
		} else if m := keyLine.FindStringSubmatch(line); m != nil {
			k := strings.Trim(m[1], `"`)
			full := k
			if table != "" {
				full = table + "." + k
			}
			if full == key {
				return n
			}
			continue
		} else {
			continue
		}
		if table == key {
			return headerLine
		}
	}
	// A whole table or array element ("mounts[1]") is on its header.
	return 0
}

// indexed turns "mounts.options" into "mounts[N].options" using the index of
// the last [[mounts]] seen.
func indexed(name string, counts map[string]int) string {
	parts := strings.Split(name, ".")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], ".")
		if c, ok := counts[prefix]; ok && c > 0 {
			parts[i] = fmt.Sprintf("%s[%d]", parts[i], c-1)
		}
	}
	return strings.Join(parts, ".")
}
