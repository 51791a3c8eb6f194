package daemon

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/upicdc/upicdc/config"
)

// scheduleRecheck is how often a cron loop re-reads its schedule (a reload
// may change it) while waiting.
const scheduleRecheck = time.Minute

// cronLoop calls run each time the schedule that schedule reads from the
// current configuration fires, until ctx ends. A schedule that is empty or
// bad waits, re-read every scheduleRecheck; run's error is its own to
// report (run returns false to stop the loop: shutting down).
func (d *Daemon) cronLoop(ctx context.Context, schedule func(config.Config) (cron.Schedule, error), run func(config.Config) bool) error {
	var next time.Time
	for {
		cfg := d.config()
		sched, err := schedule(cfg)
		now := d.clock.Now()
		wait := scheduleRecheck
		switch {
		case err != nil || sched == nil:
			next = time.Time{}
		case next.IsZero():
			next = sched.Next(now)
		}
		if !next.IsZero() {
			wait = min(wait, max(0, next.Sub(now)))
		}
		timer := d.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		}
		if next.IsZero() || d.clock.Now().Before(next) {
			continue
		}
		next = time.Time{}
		if !run(cfg) {
			return nil
		}
	}
}
