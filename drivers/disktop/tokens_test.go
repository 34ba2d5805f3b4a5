package disktop

import (
	"context"
	"testing"
	"time"

	"bridge/drivers/drivertest"
	"bridge/tests/fakes/faults"
)

// TestShortTokensAreNotRefreshedPerCall: a service issuing 120-second
// access tokens, under ten simulated minutes of traffic (a call every 5 s
// of its clock), costs at most 6 refreshes (each rotating the refresh
// token and rewriting token.json), not one per call.
func TestShortTokensAreNotRefreshedPerCall(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.fake.Faults.SetConfig(faults.Config{TokenTTL: 120 * time.Second})
	ctx := context.Background()
	r := drivertest.Root(t, e.drv)
	start := e.fake.Calls()["token"]
	for step := time.Duration(0); step < 10*time.Minute; step += 5 * time.Second {
		if _, err := e.drv.List(ctx, r); err != nil {
			t.Fatalf("at %v: %v", step, err)
		}
		e.clock.Advance(5 * time.Second)
	}
	if n := e.fake.Calls()["token"] - start; n > 6 || n < 5 {
		t.Fatalf("%d refreshes of 120-second tokens in 10 minutes, want 5 or 6", n)
	}
	if n := e.fake.Calls()["list"]; n != 120 {
		t.Fatalf("%d listings, want 120: a call was refused and retried", n)
	}
}
