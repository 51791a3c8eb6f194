package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/config"
)

// Backoff bounds for retrying a micro-batch that failed (a store error, not
// a data error: the processor has no data errors).
const (
	minRetry = time.Second
	maxRetry = time.Minute
)

// scheduler decides when micro-batches run. It is the only caller of run, so
// two micro-batches never overlap: a trigger that comes due while a batch is
// running is served right after it (Spark's processing-time trigger does the
// same and warns that the batch fell behind).
type scheduler struct {
	clock Clock
	log   *slog.Logger
	// trigger returns the current stream.trigger (it changes on reload).
	trigger func() config.Trigger
	// changed is signalled when the trigger was reloaded.
	changed <-chan struct{}
	// data is signalled when a raw commit landed (drives the "0s" trigger).
	data <-chan struct{}
	// run runs one micro-batch. It is called with no context: it must
	// finish the batch it started even during shutdown (the daemon bounds
	// that with shutdown_timeout).
	run func() (agg.BatchResult, error)
	// ready is called once, after the first catch-up.
	ready func()
	// failed is called with each failed micro-batch's error.
	failed func(error)

	retry time.Duration // current backoff; 0 after a success
}

// loop runs until ctx is done: first a catch-up with everything already in
// the raw table (like a Spark query's first batch, whatever its trigger),
// then micro-batches as the trigger says.
func (s *scheduler) loop(ctx context.Context) error {
	last := s.clock.Now()
	if !s.catchUp(ctx) {
		return nil
	}
	s.ready()
	availableNowDone := true // the catch-up above was availableNow's run
	reloaded := false        // the trigger changed since the last batch
	for {
		trig := s.trigger()
		var (
			timer Timer = stopped{}
			data  <-chan struct{}
			now   = s.clock.Now()
		)
		switch trig.Kind {
		case config.TriggerInterval:
			if trig.Interval == 0 {
				data = s.data
			} else {
				due := last.Add(trig.Interval)
				if late := now.Sub(due); late > 0 && !reloaded {
					s.log.Warn("micro-batch trigger fell behind: the previous batch ran longer than the trigger interval; starting the next one now",
						"trigger", trig.String(), "late_by", late)
				}
				timer = s.clock.NewTimer(max(0, due.Sub(now)))
			}
		case config.TriggerCron:
			timer = s.clock.NewTimer(max(0, trig.Schedule.Next(now).Sub(now)))
		case config.TriggerAvailableNow:
			if !availableNowDone {
				// Reloaded into availableNow: catch up once, then stop.
				if availableNowDone = s.catchUp(ctx); !availableNowDone {
					return nil // ctx ended
				}
				s.log.Info("stream processor caught up and stopped (trigger availableNow)")
				continue
			}
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-s.changed:
			timer.Stop()
			availableNowDone, reloaded = false, true
			continue
		case <-timer.C():
		case <-data:
			timer.Stop()
		}
		last, reloaded = s.clock.Now(), false
		if trig.Kind == config.TriggerInterval && trig.Interval == 0 {
			s.catchUp(ctx)
			continue
		}
		s.once()
	}
}

// once runs one micro-batch and reports whether it succeeded.
func (s *scheduler) once() (agg.BatchResult, bool) {
	res, err := s.run()
	if err != nil {
		s.failed(err)
		if s.retry == 0 {
			s.retry = minRetry
		} else {
			s.retry = min(2*s.retry, maxRetry)
		}
		return res, false
	}
	s.retry = 0
	return res, true
}

// catchUp runs micro-batches until the processor has caught up, retrying
// failures with backoff. It returns false if ctx ended first.
func (s *scheduler) catchUp(ctx context.Context) bool {
	for ctx.Err() == nil {
		res, ok := s.once()
		if ok && (!res.Committed || res.Behind == 0) {
			return true
		}
		if !ok {
			t := s.clock.NewTimer(s.retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C():
			}
		}
	}
	return false
}
