package davfs

import (
	"fmt"
	"net/http"
	"testing"

	"bridge/drivers"
)

// A driver's reason reaches the client with its kind's status; any other
// provider detail stays in the bridge.
func TestStatusOfReasonsAndDetails(t *testing.T) {
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("gokuai: put: %w", drivers.WithReason(drivers.ErrPermission, "the mount root holds libraries; write inside one")),
			http.StatusForbidden, "the mount root holds libraries; write inside one: permission denied"},
		{fmt.Errorf("GET https://p.example/x?token=SECRET: %w", drivers.ErrNotFound), http.StatusNotFound, "not found"},
		{fmt.Errorf("wrapped twice: %w", fmt.Errorf("x: %w", drivers.WithReason(drivers.ErrInvalidName, "names may not start with a dot"))),
			http.StatusBadRequest, "names may not start with a dot: name not allowed by the provider"},
	}
	for _, c := range cases {
		status, msg := statusOf(c.err)
		if status != c.status || msg != c.msg {
			t.Errorf("statusOf(%v) = %d %q, want %d %q", c.err, status, msg, c.status, c.msg)
		}
	}
}
