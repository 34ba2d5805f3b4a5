package drivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recordingTB keeps what Errorf reports instead of failing the test.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestAssertNoSecrets(t *testing.T) {
	var logs LogBuffer
	fmt.Fprintln(&logs, `{"level":"info","msg":"listed /"}`)
	fmt.Fprintln(&logs, `{"level":"warn","url":"https://x/?token=tok-123456"}`)
	rec := &recordingTB{TB: t}
	if !logs.AssertNoSecrets(rec, []string{"", "other"}, errors.New("boom"), nil) || len(rec.errs) != 0 {
		t.Fatalf("no secret present: %q", rec.errs)
	}
	if logs.AssertNoSecrets(rec, []string{"tok-123456", "key-9"}, fmt.Errorf("refused key-9")) || len(rec.errs) != 2 {
		t.Fatalf("two secrets present, reports %q", rec.errs)
	}
	for _, e := range rec.errs {
		if strings.Contains(e, "tok-123456") || strings.Contains(e, "key-9") {
			t.Fatalf("the report repeats the secret: %q", e)
		}
	}
	if !strings.Contains(rec.errs[0], "tok-...") || !strings.Contains(rec.errs[0], "token=<secret>") ||
		strings.Contains(rec.errs[0], "listed /") {
		t.Fatalf("the report should name the secret's start and show only its line: %q", rec.errs[0])
	}
}

func TestClockAndSharedClock(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	c := NewClock(start)
	restarts := 0
	p := SharedClock(restarter(func() { restarts++ }), c)
	p.Advance(time.Minute)
	p.Restart()
	if !c.Now().Equal(start.Add(time.Minute)) || restarts != 1 {
		t.Fatalf("now %v, %d restarts", c.Now(), restarts)
	}
}

type restarter func()

func (r restarter) Restart() { r() }

func TestWaits(t *testing.T) {
	var w Waits
	var seen []time.Duration
	w.OnWait(func(d time.Duration) { seen = append(seen, d) })
	if err := w.Sleep(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	w.OnWait(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Sleep(ctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
	if got := w.Asked(); len(got) != 2 || got[0] != time.Hour || got[1] != time.Second || len(seen) != 1 {
		t.Fatalf("asked %v, hook saw %v", got, seen)
	}
}

func TestMergeOptions(t *testing.T) {
	base := map[string]any{"a": 1, "b": 2}
	got := MergeOptions(base, map[string]any{"b": nil, "c": 3})
	if fmt.Sprint(got) != "map[a:1 c:3]" || fmt.Sprint(base) != "map[a:1 b:2]" {
		t.Fatalf("merged %v, base now %v", got, base)
	}
}
