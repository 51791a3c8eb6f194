package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/store"
)

// ExportConsumer names the Delta export among the consumers retention
// respects.
const ExportConsumer = "delta-export"

// ExportConsumers returns the Delta export's position in each table it has
// written under dir: the version after the newest it holds. A table never
// exported holds nothing back (an export started after a vacuum says it
// cannot start below the horizon).
func ExportConsumers(dir string, db *store.DB) ([]store.Consumer, error) {
	var out []store.Consumer
	for _, t := range db.Tables() {
		td := filepath.Join(dir, t.Name)
		if _, err := os.Stat(filepath.Join(td, "_delta_log")); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		dt, err := delta.Open(td)
		if err != nil {
			return nil, fmt.Errorf("export position of %s: %w", t.Name, err)
		}
		v, err := dt.LatestVersion()
		if err != nil {
			return nil, fmt.Errorf("export position of %s: %w", t.Name, err)
		}
		out = append(out, store.Consumer{Name: ExportConsumer, Kind: "export", Table: t.Name, Version: v + 1})
	}
	return out, nil
}

// RetentionPolicy is cfg's retention rules.
func RetentionPolicy(cfg config.Config) store.Retention {
	return store.Retention{History: cfg.Retention.History, Versions: int64(cfg.Retention.Versions)}
}

// Vacuum applies cfg's retention to db, respecting the stream, the Delta
// export under cfg.ExportDir() and every registered consumer.
func Vacuum(ctx context.Context, db *store.DB, cfg config.Config) ([]store.TableVacuum, error) {
	exp, err := ExportConsumers(cfg.ExportDir(), db)
	if err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	return agg.Vacuum(ctx, db, agg.VacuumOptions{Stream: cfg.Stream.Name, Policy: RetentionPolicy(cfg), Consumers: exp})
}

// RetentionStatus is every table's retention state under cfg.
func RetentionStatus(db *store.DB, cfg config.Config, now time.Time) ([]store.TableRetention, error) {
	exp, err := ExportConsumers(cfg.ExportDir(), db)
	if err != nil {
		return nil, err
	}
	consumers, err := agg.Consumers(db, cfg.Stream.Name, exp)
	if err != nil {
		return nil, err
	}
	return db.RetentionStatus(RetentionPolicy(cfg), now, consumers)
}

// retentionLoop vacuums whenever retention.schedule fires. A vacuum is one
// bbolt write transaction per table, taking its turn with MERGEs and
// micro-batches.
// With retention.compact, a compaction follows (scheduledCompaction).
func (d *Daemon) retentionLoop(ctx context.Context) error {
	return d.cronLoop(ctx, config.Config.RetentionSchedule, func(cfg config.Config) bool {
		start := d.clock.Now()
		res, err := Vacuum(d.workCtx, d.db, cfg)
		if err != nil {
			d.setError("retention", err)
			d.log.Error("scheduled vacuum failed", "component", "retention", "err", err)
			return true
		}
		d.clearError("retention")
		var removed int64
		for _, r := range res {
			removed += r.Bytes
		}
		d.mu.Lock()
		d.lastVacuum = d.clock.Now()
		d.mu.Unlock()
		d.log.Info("scheduled vacuum done", "component", "retention", "bytes_removed", removed,
			"took", d.clock.Now().Sub(start))
		if cfg.Retention.Compact {
			d.scheduledCompaction(ctx)
		}
		return true
	})
}

// compactMinFree is the share of the file that must be free pages for a
// scheduled compaction to run: below it, the space given back is not
// worth pausing writers for the copy.
const compactMinFree = 0.10

// compactRetries is how many times, compactRetryWait apart, a scheduled
// compaction skipped because a transaction held on (a long reconcile, SQL
// query or backup) is tried again before the next schedule.
const (
	compactRetries   = 3
	compactRetryWait = time.Minute
)

// CompactionJSON is the newest scheduled compaction in /api/v1/status.
type CompactionJSON struct {
	Time        time.Time `json:"time"`
	Result      string    `json:"result"` // compacted, skipped (busy or not enough free pages), failed
	Reason      string    `json:"reason,omitempty"`
	BytesBefore int64     `json:"bytes_before"`
	BytesAfter  int64     `json:"bytes_after"`
	FreeBytes   int64     `json:"free_bytes"`
	// WritersPausedSeconds is how long new writes waited (the copy and the
	// swap); PausedSeconds how long every read and write did (the swap).
	WritersPausedSeconds float64 `json:"writers_paused_seconds"`
	PausedSeconds        float64 `json:"paused_seconds"`
}

// scheduledCompaction compacts the live store after a scheduled vacuum
// when enough of the file is free (store.DB.CompactOnline: the inbox,
// the processor and the other loops wait meanwhile, they do not fail).
func (d *Daemon) scheduledCompaction(ctx context.Context) {
	rec := func(c CompactionJSON) {
		c.Time = d.clock.Now().UTC()
		d.mu.Lock()
		d.lastCompaction = &c
		d.mu.Unlock()
		d.metrics.compactions.WithLabelValues(c.Result).Inc()
	}
	for attempt := 0; ; attempt++ {
		sp, err := d.db.Space()
		if err != nil {
			d.setError("retention", err)
			d.log.Error("scheduled compaction failed", "component", "retention", "err", err)
			rec(CompactionJSON{Result: "failed", Reason: err.Error()})
			return
		}
		if float64(sp.Free) < compactMinFree*float64(sp.File) {
			d.log.Info("scheduled compaction skipped: few free pages", "component", "retention",
				"bytes", sp.File, "free_bytes", sp.Free)
			rec(CompactionJSON{Result: "skipped", Reason: fmt.Sprintf("free pages are %d of %d bytes, under %.0f%%", sp.Free, sp.File, 100*compactMinFree),
				BytesBefore: sp.File, BytesAfter: sp.File, FreeBytes: sp.Free})
			return
		}
		res, err := d.db.CompactOnline(ctx, store.CompactOptions{Logger: d.log.With("component", "retention")})
		c := CompactionJSON{BytesBefore: res.Before, BytesAfter: res.After, FreeBytes: sp.Free,
			WritersPausedSeconds: res.WritersPaused.Seconds(), PausedSeconds: res.Paused.Seconds()}
		switch {
		case err == nil:
			c.Result = "compacted"
			d.clearError("retention")
			d.metrics.compactionPause.WithLabelValues("writers").Set(c.WritersPausedSeconds)
			d.metrics.compactionPause.WithLabelValues("all").Set(c.PausedSeconds)
			rec(c)
			return
		case ctx.Err() != nil:
			return // shutting down
		case errors.Is(err, store.ErrBusy) && attempt < compactRetries:
			d.log.Warn("scheduled compaction skipped, trying again", "component", "retention", "err", err, "in", compactRetryWait)
			t := d.clock.NewTimer(compactRetryWait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			continue
		case errors.Is(err, store.ErrBusy):
			c.Result, c.Reason = "skipped", err.Error()
			d.log.Warn("scheduled compaction skipped", "component", "retention", "err", err)
		default:
			c.Result, c.Reason = "failed", err.Error()
			d.setError("retention", err)
			d.log.Error("scheduled compaction failed", "component", "retention", "err", err)
		}
		rec(c)
		return
	}
}

// RetentionJSON is the retention part of /api/v1/status.
type RetentionJSON struct {
	History        string           `json:"history"`
	Versions       int              `json:"versions"`
	Schedule       string           `json:"schedule"`
	Compact        bool             `json:"compact"`
	LastVacuum     *time.Time       `json:"last_vacuum"`
	LastCompaction *CompactionJSON  `json:"last_compaction"`
	Tables         []TableRetention `json:"tables"`
}

// TableRetention is one table's retention state in /api/v1/status.
type TableRetention struct {
	Table           string           `json:"table"`
	Latest          int64            `json:"latest"`
	Horizon         int64            `json:"horizon"`
	VacuumTo        int64            `json:"vacuum_to"`
	HeldBy          string           `json:"held_by"`
	ChangeFeedBytes int64            `json:"change_feed_bytes"`
	Reclaimable     int64            `json:"reclaimable_bytes"`
	Consumers       []store.Consumer `json:"consumers"`
}

func (d *Daemon) retentionStatus(cfg config.Config, now time.Time) (*RetentionJSON, error) {
	st, err := RetentionStatus(d.db, cfg, now)
	if err != nil {
		return nil, err
	}
	out := &RetentionJSON{History: cfg.Retention.History.String(), Versions: cfg.Retention.Versions, Schedule: cfg.Retention.Schedule,
		Compact: cfg.Retention.Compact}
	d.mu.Lock()
	if !d.lastVacuum.IsZero() {
		t := d.lastVacuum.UTC()
		out.LastVacuum = &t
	}
	if d.lastCompaction != nil {
		c := *d.lastCompaction
		out.LastCompaction = &c
	}
	d.mu.Unlock()
	for _, t := range st {
		cs := t.Consumers
		if cs == nil {
			cs = []store.Consumer{}
		}
		out.Tables = append(out.Tables, TableRetention{Table: t.Table, Latest: t.Latest, Horizon: t.Horizon, VacuumTo: t.Target,
			HeldBy: t.HeldBy, ChangeFeedBytes: t.ChangeFeedBytes, Reclaimable: t.Reclaimable, Consumers: cs})
	}
	return out, nil
}
