package davfs

import (
	"encoding/xml"
	"fmt"
	"strings"

	"golang.org/x/net/webdav"

	"bridge/drivers"
)

// ownCloud's extensions, which rclone (vendor owncloud/nextcloud) uses to
// keep modification times and compare checksums.
var ocChecksums = xml.Name{Space: "http://owncloud.org/ns", Local: "checksums"}

// checksumProp is oc:checksums for an object's real content hashes.
func checksumProp(h drivers.Hashes) (webdav.Property, bool) {
	var sums []string
	if h.SHA1 != "" {
		sums = append(sums, "SHA1:"+h.SHA1)
	}
	if h.MD5 != "" {
		sums = append(sums, "MD5:"+h.MD5)
	}
	if len(sums) == 0 {
		return webdav.Property{}, false
	}
	inner := `<checksum xmlns="http://owncloud.org/ns">` + strings.Join(sums, " ") + `</checksum>`
	return webdav.Property{XMLName: ocChecksums, InnerXML: []byte(inner)}, true
}

// errChecksum is a body that does not match the client's OC-Checksum.
var errChecksum = fmt.Errorf("body does not match OC-Checksum: %w", errBadRequest)

// verifyChecksum checks an OC-Checksum header ("SHA1:hex", "MD5:hex", or
// several separated by spaces) against what was received. Unknown
// algorithms are ignored; a mismatch of a known one is an error.
func verifyChecksum(header string, got drivers.Hashes) error {
	for _, f := range strings.Fields(header) {
		algo, want, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		var have string
		switch strings.ToUpper(algo) {
		case "SHA1":
			have = got.SHA1
		case "MD5":
			have = got.MD5
		default:
			continue
		}
		if !strings.EqualFold(have, want) {
			return errChecksum
		}
	}
	return nil
}
