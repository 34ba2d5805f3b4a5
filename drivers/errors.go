package drivers

import (
	"errors"
	"fmt"
	"time"
)

// The kinds of failure a driver reports. Drivers classify provider errors
// into these (wrapping them: fmt.Errorf("list %s: %w", p, drivers.ErrNotFound))
// and davfs maps them to WebDAV status codes in one table.
var (
	ErrNotFound     = errors.New("not found")
	ErrExist        = errors.New("already exists")
	ErrPermission   = errors.New("permission denied")
	ErrQuota        = errors.New("storage quota exceeded")
	ErrTooLarge     = errors.New("file too large")
	ErrInvalidName  = errors.New("name not allowed by the provider")
	ErrNotSupported = errors.New("operation not supported by the provider")
	ErrRateLimited  = errors.New("rate limited by the provider")
	ErrAuthExpired  = errors.New("provider authorization expired or revoked")
	ErrUnavailable  = errors.New("provider unavailable")
	// ErrStateUnavailable: the state several bridge instances share
	// (server.shared_state) could not be reached (503).
	ErrStateUnavailable = errors.New("shared state unavailable")
)

// RetryError carries the wait the provider asked for (Retry-After, or a
// rate-limit reset) along with the error kind it wraps.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryError) Unwrap() error { return e.Err }

// WithRetryAfter wraps err with a retry delay.
func WithRetryAfter(err error, after time.Duration) error {
	return &RetryError{Err: err, After: after}
}

// RetryAfter returns the retry delay attached to err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) && re.After > 0 {
		return re.After, true
	}
	return 0, false
}

// Reason is a refusal explained in words a WebDAV client may read: the
// bridge sends Text with the status of Kind (the provider's own detail,
// which may hold URLs or ids, never leaves the bridge). Text must name no
// secret.
type Reason struct {
	Kind error
	Text string
}

func (r *Reason) Error() string { return r.Text + ": " + r.Kind.Error() }

func (r *Reason) Unwrap() error { return r.Kind }

// WithReason is a refusal of the given kind with a text for the client.
func WithReason(kind error, text string) error { return &Reason{Kind: kind, Text: text} }
