package daemon

import "time"

// Clock is the daemon's source of time. Everything that waits (the trigger,
// the inbox rescan, the export schedule) waits on a Clock's timers, so tests
// drive the daemon with a fake clock instead of sleeping.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the daemon uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// stopped is a Timer that never fires, for "nothing to wait for".
type stopped struct{}

func (stopped) C() <-chan time.Time { return nil }
func (stopped) Stop() bool          { return false }

// signal does a non-blocking send on a channel of capacity 1: signals
// coalesce, and a signal sent while nobody waits is kept for the next wait.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
