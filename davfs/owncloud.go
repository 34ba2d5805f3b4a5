package davfs

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/webdav"

	"bridge/drivers"
)

// ownCloud's extensions, which rclone (vendor owncloud/nextcloud) uses to
// keep modification times and compare checksums.
var ocChecksums = xml.Name{Space: "http://owncloud.org/ns", Local: "checksums"}

// checksumProp is oc:checksums for an object's real content hashes.
func checksumProp(h drivers.Hashes) (webdav.Property, bool) {
	inner := appendChecksums(nil, h)
	if len(inner) == 0 {
		return webdav.Property{}, false
	}
	return webdav.Property{XMLName: ocChecksums, InnerXML: inner}, true
}

// appendChecksums appends oc:checksums' content for h, or nothing when h
// holds no hash.
func appendChecksums(b []byte, h drivers.Hashes) []byte {
	if h.SHA1 == "" && h.MD5 == "" {
		return b
	}
	b = append(b, `<checksum xmlns="http://owncloud.org/ns">`...)
	if h.SHA1 != "" {
		b = append(b, "SHA1:"...)
		b = append(b, h.SHA1...)
	}
	if h.MD5 != "" {
		if h.SHA1 != "" {
			b = append(b, ' ')
		}
		b = append(b, "MD5:"...)
		b = append(b, h.MD5...)
	}
	return append(b, `</checksum>`...)
}

// checksumsKey marks a PROPFIND that names oc:checksums: only then are
// missing hashes computed (by a drivers.Hasher), since that reads the file.
type checksumsKey struct{}

// namesChecksums reports whether a PROPFIND body asks for oc:checksums by
// name (allprop does not: computing every file's hashes for it would read
// the whole folder).
func namesChecksums(body []byte) bool {
	if !bytes.Contains(body, []byte("checksums")) {
		return false
	}
	var pf propfindBody
	if xml.Unmarshal(body, &pf) != nil || pf.Prop == nil {
		return false
	}
	return slices.Contains(*pf.Prop, ocChecksums)
}

// hashesFor returns obj's hashes, computing and keeping them through the
// driver when the request asked for checksums and some are unknown (an
// upload verified with one OC-Checksum kept only that one; rclone check
// compares by md5 where both are offered).
func (s *Server) hashesFor(ctx context.Context, t target, obj drivers.Object) drivers.Hashes {
	complete := obj.Hashes.MD5 != "" && obj.Hashes.SHA1 != ""
	if t.m == nil || complete || obj.IsDir || isPending(obj) {
		return obj.Hashes
	}
	want, _ := ctx.Value(checksumsKey{}).(bool)
	h, ok := t.m.drv.d.(drivers.Hasher)
	if !want || !ok {
		return obj.Hashes
	}
	got, err := h.Hash(withCall(ctx, t.m.path, OpHash), drivers.Ref{Path: t.rel, Object: obj})
	t.m.drv.done(OpHash, err)
	if err != nil {
		s.log.Warn().Str("path", t.full).Str("error", err.Error()).Msg("checksums unavailable")
		return obj.Hashes
	}
	return got
}

// errChecksum is a body that does not match the client's OC-Checksum.
var errChecksum = fmt.Errorf("body does not match OC-Checksum: %w", errBadRequest)

// checksumsAsked are the hashes an OC-Checksum header names, which the
// upload must compute to verify them.
func checksumsAsked(header string) drivers.HashSet {
	var set drivers.HashSet
	for _, f := range strings.Fields(header) {
		algo, _, _ := strings.Cut(f, ":")
		switch strings.ToUpper(algo) {
		case "SHA1":
			set |= drivers.HashSHA1
		case "MD5":
			set |= drivers.HashMD5
		}
	}
	return set
}

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
