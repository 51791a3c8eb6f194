package daemon

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when a test calls Advance.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	at    time.Time
	ch    chan time.Time
	armed bool
}

func newFakeClock() *fakeClock { return newFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

// newFakeClockAt starts a fake clock at start (time.Now() when file
// modification times must make sense to the code under test).
func newFakeClockAt(start time.Time) *fakeClock {
	c := &fakeClock{now: start}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1), armed: true}
	if d <= 0 {
		t.armed = false
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.cond.Broadcast()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	t.c.prune()
	return was
}

// prune drops timers that fired or were stopped. Callers hold mu.
func (c *fakeClock) prune() {
	live := c.timers[:0]
	for _, t := range c.timers {
		if t.armed {
			live = append(live, t)
		}
	}
	c.timers = live
}

// Advance moves time forward by d and fires the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.armed && !t.at.After(c.now) {
			t.armed = false
			t.ch <- c.now
		}
	}
	c.prune()
}

// waitTimers blocks until n timers are armed: the code under test is then
// waiting, and Advance cannot race with it creating its next timer.
func (c *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		for len(c.timers) < n {
			c.cond.Wait()
		}
		c.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a hang guard, not a timing assumption
		t.Fatalf("timed out waiting for %d armed timer(s)", n)
	}
}

// waitDeadline blocks until a timer is armed for at.
func (c *fakeClock) waitDeadline(t *testing.T, at time.Time) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for {
			for _, tm := range c.timers {
				if tm.at.Equal(at) {
					close(done)
					return
				}
			}
			c.cond.Wait()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a hang guard, not a timing assumption
		t.Fatalf("timed out waiting for a timer at %v", at)
	}
}

// next returns the earliest armed timer's deadline.
func (c *fakeClock) next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	for _, t := range c.timers {
		if at.IsZero() || t.at.Before(at) {
			at = t.at
		}
	}
	return at, !at.IsZero()
}
