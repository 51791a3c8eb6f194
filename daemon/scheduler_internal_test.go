package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/config"
)

// schedHarness runs a scheduler on a fake clock with a scripted micro-batch.
type schedHarness struct {
	t     *testing.T
	clock *fakeClock
	start time.Time

	mu      sync.Mutex
	trig    config.Trigger
	script  func(n int) (agg.BatchResult, time.Duration, error) // result and how long the batch takes
	nRuns   int
	readyAt time.Time
	fails   int

	changed, data chan struct{}
	runs          chan time.Duration // start of each run, relative to start
	cancel        context.CancelFunc
	done          chan error
}

func newSchedHarness(t *testing.T, trigger string, script func(n int) (agg.BatchResult, time.Duration, error)) *schedHarness {
	t.Helper()
	trig, err := config.ParseTrigger(trigger)
	if err != nil {
		t.Fatal(err)
	}
	h := &schedHarness{
		t: t, clock: newFakeClock(), trig: trig, script: script,
		changed: make(chan struct{}, 1), data: make(chan struct{}, 1),
		runs: make(chan time.Duration, 100), done: make(chan error, 1),
	}
	h.start = h.clock.Now()
	s := &scheduler{
		clock: h.clock,
		log:   slog.New(slog.DiscardHandler),
		trigger: func() config.Trigger {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.trig
		},
		changed: h.changed,
		data:    h.data,
		run: func() (agg.BatchResult, error) {
			h.mu.Lock()
			n := h.nRuns
			h.nRuns++
			h.mu.Unlock()
			h.runs <- h.clock.Now().Sub(h.start)
			res, took, err := h.script(n)
			if took > 0 {
				h.clock.Advance(took)
			}
			return res, err
		},
		ready: func() {
			h.mu.Lock()
			h.readyAt = h.clock.Now()
			h.mu.Unlock()
		},
		failed: func(error) {
			h.mu.Lock()
			h.fails++
			h.mu.Unlock()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- s.loop(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

// stop ends the loop and returns how many batches ran in all.
func (h *schedHarness) stop() int {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("loop: %v", err)
		}
		h.done <- nil // let a second stop return too
	case <-time.After(10 * time.Second):
		h.t.Fatal("scheduler did not stop")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nRuns
}

// nextRun waits for the next batch to start and returns when it started.
func (h *schedHarness) nextRun() time.Duration {
	h.t.Helper()
	select {
	case d := <-h.runs:
		return d
	case <-time.After(10 * time.Second): // hang guard only
		h.t.Fatal("no micro-batch started")
		return 0
	}
}

// fire waits for the scheduler to arm its timer and moves the clock to it.
func (h *schedHarness) fire() {
	h.t.Helper()
	h.clock.waitTimers(h.t, 1)
	at, _ := h.clock.next()
	h.clock.Advance(at.Sub(h.clock.Now()))
}

func (h *schedHarness) setTrigger(s string) {
	h.t.Helper()
	trig, err := config.ParseTrigger(s)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.trig = trig
	h.mu.Unlock()
	h.changed <- struct{}{}
}

func caughtUp(int) (agg.BatchResult, time.Duration, error) { return agg.BatchResult{}, 0, nil }

func TestSchedulerInterval(t *testing.T) {
	// Batches take 1s, except the third, which takes 25s: the next trigger
	// is then overdue and runs at once, never alongside the long one.
	h := newSchedHarness(t, "10s", func(n int) (agg.BatchResult, time.Duration, error) {
		if n == 2 {
			return agg.BatchResult{Committed: true}, 25 * time.Second, nil
		}
		return agg.BatchResult{Committed: true}, time.Second, nil
	})
	var got []time.Duration
	got = append(got, h.nextRun()) // the start's catch-up
	for range 4 {
		if len(got) != 3 { // after the long batch the next one needs no timer
			h.fire()
		}
		got = append(got, h.nextRun())
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 45 * time.Second, 55 * time.Second}
	if !equalDurations(got, want) {
		t.Errorf("batch starts %v, want %v", got, want)
	}
}

func TestSchedulerZeroRunsWhenDataArrives(t *testing.T) {
	// After a commit lands, batches run back to back until caught up.
	behind := []int64{2, 1, 0}
	h := newSchedHarness(t, "0s", func(n int) (agg.BatchResult, time.Duration, error) {
		if n == 0 {
			return agg.BatchResult{}, 0, nil // start: nothing yet
		}
		return agg.BatchResult{Committed: true, Behind: behind[(n-1)%3]}, 0, nil
	})
	h.nextRun()
	h.data <- struct{}{}
	for range 3 {
		h.nextRun()
	}
	h.data <- struct{}{}
	for range 3 {
		h.nextRun()
	}
	if n := h.stop(); n != 7 {
		t.Errorf("%d batches, want 7 (no batch without data)", n)
	}
	if len(h.clock.timers) != 0 {
		t.Errorf("the 0s trigger armed timers: %d", len(h.clock.timers))
	}
}

func TestSchedulerCatchUpBeforeReady(t *testing.T) {
	// A backlog at start is processed batch after batch (whatever the
	// trigger), and only then is the daemon ready.
	h := newSchedHarness(t, "1h", func(n int) (agg.BatchResult, time.Duration, error) {
		return agg.BatchResult{Committed: true, Behind: int64(3 - n)}, time.Second, nil
	})
	for range 4 {
		h.nextRun()
	}
	h.clock.waitTimers(t, 1) // now waiting for the hour
	h.mu.Lock()
	readyAt := h.readyAt.Sub(h.start)
	h.mu.Unlock()
	if readyAt != 4*time.Second {
		t.Errorf("ready at %v, want after the 4 catch-up batches (4s)", readyAt)
	}
	h.fire()
	if got := h.nextRun(); got != time.Hour {
		t.Errorf("first triggered batch at %v, want 1h after the catch-up began", got)
	}
}

func TestSchedulerCron(t *testing.T) {
	h := newSchedHarness(t, "@every 1m", caughtUp)
	h.nextRun()
	var got []time.Duration
	for range 3 {
		h.fire()
		got = append(got, h.nextRun())
	}
	if want := []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}; !equalDurations(got, want) {
		t.Errorf("cron batches at %v, want %v", got, want)
	}
}

func TestSchedulerAvailableNowStopsThenReloadResumes(t *testing.T) {
	h := newSchedHarness(t, "availableNow", func(n int) (agg.BatchResult, time.Duration, error) {
		if n < 2 {
			return agg.BatchResult{Committed: true, Behind: int64(1 - n)}, 0, nil
		}
		return agg.BatchResult{}, 0, nil
	})
	h.nextRun()
	h.nextRun() // caught up: the processor stops
	h.data <- struct{}{}
	h.clock.Advance(time.Hour)
	select {
	case d := <-h.runs:
		t.Fatalf("a batch ran at %v after availableNow caught up", d)
	default:
	}
	// The interval since the last batch has long passed: the first batch
	// runs at once, the next one an interval later.
	h.setTrigger("5s")
	if got := h.nextRun(); got != time.Hour {
		t.Errorf("after reload to 5s, batch at %v, want 1h (overdue)", got)
	}
	h.fire()
	if got := h.nextRun(); got != time.Hour+5*time.Second {
		t.Errorf("next batch at %v, want 1h5s", got)
	}
}

func TestSchedulerReloadIntervalTakesEffect(t *testing.T) {
	h := newSchedHarness(t, "1m", caughtUp)
	h.nextRun()
	h.clock.waitTimers(t, 1)
	h.setTrigger("2s")
	h.clock.waitDeadline(t, h.start.Add(2*time.Second)) // the 1m timer is gone
	h.fire()
	if got := h.nextRun(); got != 2*time.Second {
		t.Errorf("after reload to 2s, batch at %v, want 2s", got)
	}
	h.fire()
	if got := h.nextRun(); got != 4*time.Second {
		t.Errorf("next batch at %v, want 4s", got)
	}
}

func TestSchedulerRetriesWithBackoff(t *testing.T) {
	errDisk := errors.New("disk on fire")
	h := newSchedHarness(t, "0s", func(n int) (agg.BatchResult, time.Duration, error) {
		if n < 3 {
			return agg.BatchResult{}, 0, errDisk
		}
		return agg.BatchResult{}, 0, nil
	})
	got := []time.Duration{h.nextRun()}
	for range 3 {
		h.fire()
		got = append(got, h.nextRun())
	}
	if want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}; !equalDurations(got, want) {
		t.Errorf("retries at %v, want %v (1s, 2s, 4s backoff)", got, want)
	}
	h.stop()
	if h.fails != 3 || h.readyAt.Sub(h.start) != 7*time.Second {
		t.Errorf("fails=%d readyAt=%v, want 3 and 7s", h.fails, h.readyAt.Sub(h.start))
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
