package daemon

import (
	"context"
	"errors"

	"github.com/robfig/cron/v3"
)

// errNoExport is what a scheduled export does when the daemon was built
// without an export function.
var errNoExport = errors.New("export.schedule is set but this build has no Delta export; the schedule is ignored")

// exportLoop runs Options.Export whenever export.schedule fires. Exports
// never overlap; one that runs past the next firing delays it (like the
// trigger). The schedule is re-read on reload.
func (d *Daemon) exportLoop(ctx context.Context) error {
	warned := false
	for {
		d.mu.Lock()
		sched := d.exportSched
		d.mu.Unlock()
		var timer Timer = stopped{}
		if sched != nil {
			now := d.clock.Now()
			timer = d.clock.NewTimer(max(0, sched.Next(now).Sub(now)))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-d.exportChanged:
			timer.Stop()
			warned = false
			continue
		case <-timer.C():
		}
		if d.opts.Export == nil {
			if !warned {
				d.log.Warn(errNoExport.Error(), "component", "export")
				warned = true
			}
			continue
		}
		d.runExport(sched)
	}
}

func (d *Daemon) runExport(sched cron.Schedule) {
	start := d.clock.Now()
	d.log.Info("scheduled export starting", "component", "export")
	// The work context: shutdown lets an export in progress finish, until
	// the shutdown timeout.
	if err := d.opts.Export(d.workCtx, d.db); err != nil {
		d.metrics.exports.WithLabelValues("failure").Inc()
		d.setError("export", err)
		d.log.Error("scheduled export failed", "component", "export", "err", err)
		return
	}
	d.clearError("export")
	d.metrics.exports.WithLabelValues("success").Inc()
	d.log.Info("scheduled export done", "component", "export", "duration", d.clock.Now().Sub(start),
		"next", sched.Next(d.clock.Now()))
}
