package davfs

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/webdav"

	"bridge/drivers"
)

// emptyPrefix finds a namespace prefix declared with an empty name, which
// encoding/xml accepts but XML forbids.
var emptyPrefix = regexp.MustCompile(`xmlns:[A-Za-z_][\w.\-]*\s*=\s*(""|'')`)

// quotaTTL is how long a mount's quota figures are reused.
const quotaTTL = time.Minute

// maxPropfindBody bounds the PROPFIND body the bridge reads itself.
const maxPropfindBody = 1 << 20

var (
	quotaAvailable = xml.Name{Space: "DAV:", Local: "quota-available-bytes"}
	quotaUsed      = xml.Name{Space: "DAV:", Local: "quota-used-bytes"}
)

type quotaCache struct {
	mu sync.Mutex
	q  drivers.Quota
	at time.Time
}

// quota returns the mount's quota, cached for quotaTTL.
func (s *Server) quota(ctx context.Context, m *mount) (drivers.Quota, error) {
	m.quota.mu.Lock()
	if !m.quota.at.IsZero() && time.Since(m.quota.at) < quotaTTL {
		q := m.quota.q
		m.quota.mu.Unlock()
		return q, nil
	}
	m.quota.mu.Unlock()
	v, err := s.shared(ctx, "quota:"+m.path, func(ctx context.Context) (any, error) {
		return m.drv.Quota(ctx)
	})
	if err != nil {
		return drivers.Quota{}, err
	}
	q := v.(drivers.Quota)
	m.quota.mu.Lock()
	m.quota.q, m.quota.at = q, time.Now()
	m.quota.mu.Unlock()
	return q, nil
}

// quotaAt is the quota of the folder t: its own where the driver counts
// storage per folder (drivers.DirQuotaer: a Gokuai library), the mount's
// otherwise.
func (s *Server) quotaAt(ctx context.Context, t target) (drivers.Quota, error) {
	if dq, ok := t.m.drv.d.(drivers.DirQuotaer); ok && t.m.dirQuotas != nil {
		if q, ok := t.m.dirQuotas.Get(t.rel); ok {
			return q, nil
		}
		q, err := dq.DirQuota(withCall(ctx, t.m.path, OpQuota), drivers.Ref{Path: t.rel})
		t.m.drv.done(OpQuota, err)
		if err == nil {
			t.m.dirQuotas.Add(t.rel, q)
		}
		if !errors.Is(err, drivers.ErrNotSupported) {
			return q, err
		}
	}
	return s.quota(ctx, t.m)
}

type quotaKey struct{}

// readPropfind reads the PROPFIND body (bounded) and puts it back for
// x/net. When it names the RFC 4331 quota properties (never in allprop, per
// the RFC) and the mount reports quota, the figures go into the context for
// the folders' DeadProps: a PROPFIND that does not ask for quota never costs
// a quota call.
func (s *Server) readPropfind(r *http.Request, t target) (*http.Request, []byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPropfindBody+1))
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxPropfindBody {
		return nil, nil, errBadRequest
	}
	if emptyPrefix.Match(body) {
		// Namespaces in XML 1.0: a prefix cannot be bound to "".
		return nil, nil, fmt.Errorf("PROPFIND body: empty namespace for a prefix: %w", errBadRequest)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if t.m == nil || !t.m.features.Quota || !bytes.Contains(body, []byte("quota-")) {
		return r, body, nil
	}
	q, err := s.quotaAt(r.Context(), t)
	if err != nil {
		s.log.Warn().Err(err).Str("mount", t.m.path).Msg("quota unavailable")
		return r, body, nil
	}
	return r.WithContext(context.WithValue(r.Context(), quotaKey{}, q)), body, nil
}

// DeadProps implements webdav.DeadPropsHolder for folders: the stored
// dead properties, the locks during a PROPFIND, plus the quota figures when
// the request asked for them.
func (f *dirFile) DeadProps() (map[xml.Name]webdav.Property, error) {
	props, err := f.s.deadProps(f.t.full)
	if err != nil {
		return nil, err
	}
	props = lockDiscoveryProp(f.ctx, props, f.t.full)
	q, ok := f.ctx.Value(quotaKey{}).(drivers.Quota)
	if !ok || f.t.m == nil {
		return props, nil
	}
	if props == nil {
		props = map[xml.Name]webdav.Property{}
	}
	if q.Free >= 0 {
		props[quotaAvailable] = webdav.Property{XMLName: quotaAvailable, InnerXML: []byte(strconv.FormatInt(q.Free, 10))}
	}
	if q.Used >= 0 {
		props[quotaUsed] = webdav.Property{XMLName: quotaUsed, InnerXML: []byte(strconv.FormatInt(q.Used, 10))}
	}
	return props, nil
}

// Patch implements webdav.DeadPropsHolder.
func (f *dirFile) Patch(patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	return f.s.patchProps(f.ctx, f.t, patches)
}

// checkQuota refuses, before its body is read, an upload of size bytes that
// cannot fit in the mount's free space (what it replaces is freed).
func (s *Server) checkQuota(ctx context.Context, t target, size int64) error {
	if t.m == nil || !t.m.features.Quota || size == 0 {
		return nil
	}
	q, err := s.quota(ctx, t.m)
	if err != nil || q.Free < 0 {
		return nil // unknown: let the provider decide
	}
	var replaced int64
	if old, err := s.stat(ctx, t.m, t.rel); err == nil && !old.IsDir {
		replaced = old.Size
	}
	if size-replaced > q.Free {
		return fmt.Errorf("%d bytes, %d free on %s: %w", size, q.Free, t.m.path, drivers.ErrQuota)
	}
	return nil
}
