package drivers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestHasKind(t *testing.T) {
	for _, k := range kinds {
		if !HasKind(fmt.Errorf("list /a: %w", k)) || !HasKind(WithRetryAfter(k, time.Second)) {
			t.Errorf("%v: not found when wrapped", k)
		}
	}
	for _, err := range []error{nil, errors.New("boom"), context.Canceled, fmt.Errorf("x: %w", context.DeadlineExceeded)} {
		if HasKind(err) {
			t.Errorf("%v: has no kind", err)
		}
	}
}
