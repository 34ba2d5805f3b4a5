package auth

import (
	"context"
	"fmt"
	"time"
)

// leasePoll is how often an instance waiting for another's refresh or
// login looks for its result.
const leasePoll = 100 * time.Millisecond

// leaseOrResult makes the caller the one that renews a credential shared
// by several bridge instances, or lets it take another's renewal: it
// takes the lease and returns its release, or, while another instance
// holds it, polls settled every leasePoll and returns a nil release once
// settled reports that the holder's result is there. what names the
// renewal in the error of a caller that stops waiting.
func leaseOrResult(ctx context.Context, lease func(context.Context) (func(), bool, error), settled func() bool, what string) (func(), error) {
	for {
		release, ok, err := lease(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			return release, nil
		}
		select {
		case <-time.After(leasePoll):
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another instance's %s: %w", what, ctx.Err())
		}
		if settled() {
			return nil, nil
		}
	}
}
