package drivers

import "errors"

// kinds are the error kinds of the contract (errors.go).
var kinds = []error{ErrNotFound, ErrExist, ErrPermission, ErrQuota, ErrTooLarge, ErrInvalidName,
	ErrNotSupported, ErrRateLimited, ErrAuthExpired, ErrUnavailable}

// HasKind reports whether err wraps one of the contract's kinds (ErrNotFound
// ... ErrUnavailable) already: a driver's classify passes such an error on
// unchanged instead of classifying it again.
func HasKind(err error) bool {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
