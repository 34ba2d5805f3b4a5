package locks

import (
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// supportedLock lists the two kinds of lock a System grants. Each element
// declares the DAV: prefix, so the string fits in any answer.
const supportedLock = `<D:lockentry xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>` +
	`<D:lockentry xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`

// SupportedLockXML returns the content of the DAV:supportedlock property:
// exclusive and shared write locks.
func SupportedLockXML() string { return supportedLock }

// LockDiscoveryXML returns the content of a DAV:lockdiscovery property, and
// of the one in a LOCK answer: a DAV:activelock for each lock, its timeout
// the whole seconds left at now. Each element declares the DAV: prefix, so
// the string fits in any answer.
func LockDiscoveryXML(locks []Lock, now time.Time) string {
	var b strings.Builder
	for _, l := range locks {
		b.WriteString(`<D:activelock xmlns:D="DAV:"><D:lockscope><D:`)
		b.WriteString(l.Scope.String())
		b.WriteString(`/></D:lockscope><D:locktype><D:write/></D:locktype><D:depth>`)
		b.WriteString(l.Depth.String())
		b.WriteString(`</D:depth>`)
		if l.OwnerXML != "" {
			b.WriteString(`<D:owner>`)
			b.WriteString(ownerXML(l.OwnerXML))
			b.WriteString(`</D:owner>`)
		}
		b.WriteString(`<D:timeout>Second-`)
		b.WriteString(strconv.FormatInt(secondsLeft(l.Expires, now), 10))
		b.WriteString(`</D:timeout><D:locktoken><D:href>`)
		b.WriteString(escape(l.Token))
		b.WriteString(`</D:href></D:locktoken><D:lockroot><D:href>`)
		b.WriteString(escape((&url.URL{Path: l.Root}).EscapedPath()))
		b.WriteString(`</D:href></D:lockroot></D:activelock>`)
	}
	return b.String()
}

// secondsLeft rounds up, so a lock just granted shows the timeout granted.
func secondsLeft(expires, now time.Time) int64 {
	left := expires.Sub(now)
	if left <= 0 {
		return 0
	}
	return int64((left + time.Second - 1) / time.Second)
}

// ownerXML returns the client's owner XML as given when it is a
// well-formed fragment, and as escaped text when not: it is shown to
// everyone who looks at the resource, and must not be able to break or add
// to their answers.
func ownerXML(s string) string {
	if wellFormed(s) {
		return s
	}
	return escape(s)
}

// wellFormed reports whether s is balanced XML content without
// declarations or processing instructions.
func wellFormed(s string) bool {
	d := xml.NewDecoder(strings.NewReader(s))
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return depth == 0
		}
		if err != nil {
			return false
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.Directive, xml.ProcInst:
			return false
		}
	}
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
