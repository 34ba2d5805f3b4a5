package davfs

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"bridge/drivers"
)

// MountHealth is one mount's state for /healthz.
type MountHealth struct {
	Path string `json:"path"`
	OK   bool   `json:"ok"`
	// NeedsLogin: the provider refused the stored credentials; run
	// `bridge login` again.
	NeedsLogin bool   `json:"needs_login,omitempty"`
	Error      string `json:"error,omitempty"` // the error's kind only
}

// healthTTL bounds how often /healthz reaches the providers.
const healthTTL = 15 * time.Second

type healthCache struct {
	mu  sync.Mutex
	at  time.Time
	out []MountHealth
}

// Health checks every mount's credentials: with the driver's Checker where
// it has one, else by asking for its root. Results are reused briefly so a
// busy health probe does not become load on the providers.
func (s *Server) Health(ctx context.Context) []MountHealth {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if time.Since(s.health.at) < healthTTL && s.health.out != nil {
		return s.health.out
	}
	out := make([]MountHealth, 0, len(s.order))
	for _, p := range s.order {
		m := s.mounts[p]
		var err error
		if c, ok := m.drv.d.(drivers.Checker); ok {
			err = c.Check(ctx)
			m.drv.done("check", err)
		} else {
			_, err = m.drv.Root(ctx)
		}
		h := MountHealth{Path: p, OK: err == nil}
		if err != nil {
			_, h.Error = statusOf(err)
			h.NeedsLogin = errors.Is(err, drivers.ErrAuthExpired)
		}
		out = append(out, h)
	}
	s.health.at, s.health.out = time.Now(), out
	return out
}

// progressMin is the size from which uploads to a provider log progress.
const progressMin = 8 << 20

// progressReader logs each tenth of an upload the driver has read, so a
// long upload to a slow provider shows it is alive.
type progressReader struct {
	r      io.ReaderAt
	size   int64
	read   atomic.Int64
	logged atomic.Int64 // tenths already logged
	log    zerolog.Logger
	start  time.Time
}

func (p *progressReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	total := p.read.Add(int64(n))
	tenth := min(total*10/p.size, 10)
	for {
		done := p.logged.Load()
		if tenth <= done || !p.logged.CompareAndSwap(done, tenth) {
			break
		}
		p.log.Info().Int64("sent", min(total, p.size)).Int64("size", p.size).Int64("percent", tenth*10).
			Dur("elapsed", time.Since(p.start)).Msg("upload progress")
	}
	return n, err
}
