package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/fsnotify/fsnotify"

	"github.com/upicdc/upicdc/config"
)

// liveKeys are the configuration keys a reload applies to the running
// daemon. Every other key (data_dir, http.listen, inbox.dir, stream.name,
// input.timezone, log.format, export.dir) is fixed for the process's
// lifetime: a reload that changes one reports it as needing a restart.
func liveKeys() map[string]func(dst *config.Config, src config.Config) {
	return map[string]func(dst *config.Config, src config.Config){
		"log.level":           func(d *config.Config, s config.Config) { d.Log.Level = s.Log.Level },
		"inbox.poll_interval": func(d *config.Config, s config.Config) { d.Inbox.PollInterval = s.Inbox.PollInterval },
		"inbox.settle":        func(d *config.Config, s config.Config) { d.Inbox.Settle = s.Inbox.Settle },
		"stream.trigger":      func(d *config.Config, s config.Config) { d.Stream.Trigger = s.Stream.Trigger },
		"stream.max_versions_per_trigger": func(d *config.Config, s config.Config) {
			d.Stream.MaxVersionsPerTrigger = s.Stream.MaxVersionsPerTrigger
		},
		"stream.max_rows_per_trigger": func(d *config.Config, s config.Config) {
			d.Stream.MaxRowsPerTrigger = s.Stream.MaxRowsPerTrigger
		},
		"export.schedule":  func(d *config.Config, s config.Config) { d.Export.Schedule = s.Export.Schedule },
		"shutdown_timeout": func(d *config.Config, s config.Config) { d.ShutdownTimeout = s.ShutdownTimeout },
	}
}

// errNoLoad is the reload error when Options.Load is nil.
var errNoLoad = errors.New("reload: this daemon was started without a way to re-read its configuration")

// Reload asks the daemon to re-read its configuration (what SIGHUP does).
// It returns at once; the reload is logged, counted in
// upicdc_config_reloads_total and visible in /api/v1/status.
func (d *Daemon) Reload() { signal(d.reload) }

// reloadLoop serves Reload requests one at a time.
func (d *Daemon) reloadLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.reload:
		}
		d.sdNotify(sddaemon.SdNotifyReloading + "\n" + sddaemon.SdNotifyMonotonicUsec())
		err := d.reloadOnce()
		if err != nil {
			d.metrics.reloads.WithLabelValues("failure").Inc()
			d.setError("config", err)
			d.log.Error("configuration not reloaded; keeping the running configuration", "err", err)
		} else {
			d.clearError("config")
			d.metrics.reloads.WithLabelValues("success").Inc()
		}
		if d.ready.Load() {
			d.sdNotify(sddaemon.SdNotifyReady)
		}
	}
}

func (d *Daemon) reloadOnce() error {
	if d.opts.Load == nil {
		return errNoLoad
	}
	next, err := d.opts.Load()
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	changed, restart, err := d.apply(next)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if len(restart) > 0 {
		d.log.Warn("configuration reloaded, but some changed keys only take effect after a restart",
			"needs_restart", restart)
	}
	d.log.Info("configuration reloaded", "changed", changed, "trigger", d.config().Stream.Trigger)
	return nil
}

// apply makes next the running configuration for the keys that can change
// live, and returns the keys it changed and those that differ but need a
// restart.
func (d *Daemon) apply(next config.Config) (changed, restart []string, err error) {
	trig, err := next.StreamTrigger()
	if err != nil {
		return nil, nil, err
	}
	sched, err := next.ExportSchedule()
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	cur := d.cfg
	eff := cur
	live := liveKeys()
	oldS, newS := cur.Settings(), next.Settings()
	for i := range oldS {
		if oldS[i].Value == newS[i].Value {
			continue
		}
		if set, ok := live[oldS[i].Key]; ok {
			set(&eff, next)
			changed = append(changed, oldS[i].Key)
		} else {
			restart = append(restart, oldS[i].Key)
		}
	}
	d.cfg = eff
	d.trigger, d.exportSched = trig, sched
	d.pendingRestart = restart
	d.lastReload = d.clock.Now()
	d.mu.Unlock()

	if d.opts.LogLevel != nil {
		d.opts.LogLevel.Set(eff.Log.SlogLevel())
	}
	if cur.Stream.Trigger != eff.Stream.Trigger {
		signal(d.triggerChanged)
	}
	if cur.Inbox.PollInterval != eff.Inbox.PollInterval || cur.Inbox.Settle != eff.Inbox.Settle {
		signal(d.pollChanged)
	}
	if cur.Export.Schedule != eff.Export.Schedule {
		signal(d.exportChanged)
	}
	return changed, restart, nil
}

// reloadDebounce lets an editor finish writing (several events) before the
// file is read.
const reloadDebounce = 200 * time.Millisecond

// configWatcher reloads when the config file changes. It watches the
// directory, not the file: editors and config managers replace files by
// renaming a new one over them, which ends a watch on the file itself.
type configWatcher struct {
	file string
	w    *fsnotify.Watcher
}

func newConfigWatcher(file string) (*configWatcher, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("watch config file: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config file: %w", err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch config file %s: %w", file, err)
	}
	return &configWatcher{file: abs, w: w}, nil
}

func (c *configWatcher) close() error { return c.w.Close() }

func (c *configWatcher) loop(ctx context.Context, clock Clock, reload func(), log *slog.Logger) error {
	var pending Timer = stopped{}
	for {
		select {
		case <-ctx.Done():
			pending.Stop()
			return nil
		case ev, ok := <-c.w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != c.file || !ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Rename) {
				continue
			}
			pending.Stop()
			pending = clock.NewTimer(reloadDebounce)
		case err, ok := <-c.w.Errors:
			if ok {
				log.Warn("config file watcher error", "err", err)
			}
		case <-pending.C():
			pending = stopped{}
			log.Info("config file changed; reloading", "file", c.file)
			reload()
		}
	}
}
