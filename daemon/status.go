package daemon

import (
	"fmt"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/store"
)

// Status is what /api/v1/status reports.
type Status struct {
	Ready     bool      `json:"ready"`
	StartedAt time.Time `json:"started_at"`
	// Tables are every table of the store with its latest version, in the
	// store's order (the raw table first).
	Tables         []TableStatus  `json:"tables"`
	Stream         StreamStatus   `json:"stream"`
	Inbox          InboxStatus    `json:"inbox"`
	Export         ExportStatus   `json:"export"`
	Retention      *RetentionJSON `json:"retention"`
	LastError      *ErrorInfo     `json:"last_error"`
	LastReload     *time.Time     `json:"last_reload"`
	PendingRestart []string       `json:"pending_restart"`
}

// TableStatus is one table's part of Status.
type TableStatus struct {
	Name    string `json:"name"`
	Derived bool   `json:"derived"`
	Version int64  `json:"version"`
}

// Version returns the latest version of the named table (-1: no such
// table).
func (s Status) Version(table string) int64 {
	for _, t := range s.Tables {
		if t.Name == table {
			return t.Version
		}
	}
	return -1
}

// StreamStatus is the stream processor's part of Status.
type StreamStatus struct {
	Name                  string `json:"name"`
	Trigger               string `json:"trigger"`
	TriggerKind           string `json:"trigger_kind"`
	MaxVersionsPerTrigger int    `json:"max_versions_per_trigger"`
	MaxRowsPerTrigger     int    `json:"max_rows_per_trigger"`
	// State is "catching_up" (before the first catch-up is done), "running",
	// or "stopped" (trigger availableNow: the catch-up is the only run).
	State          string           `json:"state"`
	Checkpoint     CheckpointStatus `json:"checkpoint"`
	VersionsBehind int64            `json:"versions_behind"`
	LagSeconds     float64          `json:"lag_seconds"`
}

// CheckpointStatus is a stream checkpoint.
type CheckpointStatus struct {
	BatchID int64 `json:"batch_id"`
	// RawVersion is the raw version processed through.
	RawVersion int64 `json:"raw_version"`
	// Versions are the derived tables' versions at the checkpoint.
	Versions  map[string]int64 `json:"versions"`
	UpdatedAt *time.Time       `json:"updated_at"`
}

// InboxStatus is the inbox's part of Status.
type InboxStatus struct {
	Dir                  string  `json:"dir"`
	BacklogFiles         int     `json:"backlog_files"`
	OldestFileAgeSeconds float64 `json:"oldest_file_age_seconds"`
}

// ExportStatus is the export schedule's part of Status.
type ExportStatus struct {
	Schedule string     `json:"schedule"`
	Next     *time.Time `json:"next"`
}

// lagInfo is the stream processor's progress against the raw table.
type lagInfo struct {
	latest map[string]int64 // every table's latest version
	cp     store.Checkpoint
	behind int64
	lag    time.Duration
}

// lagInfo reads the stream's progress in one store transaction, so the
// checkpoint and the latest versions always belong together.
func (d *Daemon) lagInfo() (lagInfo, error) {
	p, err := d.db.Progress(d.config().Stream.Name, cdc.RawTable)
	if err != nil {
		return lagInfo{}, err
	}
	l := lagInfo{latest: p.Latest, cp: p.Checkpoint}
	l.behind = max(0, p.SourceVersion-l.cp.SourceVersion)
	if p.OldestPending > 0 {
		l.lag = max(0, d.clock.Now().Sub(time.UnixMilli(p.OldestPending)))
	}
	return l, nil
}

// Status reports the daemon's state. It reads the store (short read
// transactions that never block the writer).
func (d *Daemon) Status() (Status, error) {
	// The inbox first: a file leaves the backlog only after its commit, so
	// an empty backlog here means every taken file is in the versions read
	// below.
	backlog, oldest := d.inbox.state()
	l, err := d.lagInfo()
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	now := d.clock.Now()
	d.mu.Lock()
	cfg, trig, sched := d.cfg, d.trigger, d.exportSched
	st := Status{
		Ready:          d.ready.Load(),
		StartedAt:      d.startedAt.UTC(),
		LastError:      d.lastError(),
		PendingRestart: append([]string{}, d.pendingRestart...),
	}
	if !d.lastReload.IsZero() {
		t := d.lastReload.UTC()
		st.LastReload = &t
	}
	d.mu.Unlock()
	for _, t := range d.db.Tables() {
		st.Tables = append(st.Tables, TableStatus{Name: t.Name, Derived: t.Derived, Version: l.latest[t.Name]})
	}

	state := "running"
	switch {
	case !st.Ready:
		state = "catching_up"
	case trig.Kind == config.TriggerAvailableNow:
		state = "stopped"
	}
	cp := CheckpointStatus{BatchID: l.cp.BatchID, RawVersion: l.cp.SourceVersion, Versions: l.cp.Versions}
	if cp.Versions == nil {
		cp.Versions = map[string]int64{}
	}
	if l.cp.UpdatedAt > 0 {
		t := time.UnixMilli(l.cp.UpdatedAt).UTC()
		cp.UpdatedAt = &t
	}
	st.Stream = StreamStatus{
		Name: cfg.Stream.Name, Trigger: trig.String(), TriggerKind: trig.Kind.String(),
		MaxVersionsPerTrigger: cfg.Stream.MaxVersionsPerTrigger, MaxRowsPerTrigger: cfg.Stream.MaxRowsPerTrigger,
		State: state, Checkpoint: cp, VersionsBehind: l.behind, LagSeconds: l.lag.Seconds(),
	}
	st.Inbox = InboxStatus{Dir: d.inboxDir(), BacklogFiles: backlog}
	if !oldest.IsZero() {
		st.Inbox.OldestFileAgeSeconds = max(0, now.Sub(oldest).Seconds())
	}
	if st.Retention, err = d.retentionStatus(cfg, now); err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	st.Export.Schedule = cfg.Export.Schedule
	if sched != nil {
		t := sched.Next(now).UTC()
		st.Export.Next = &t
	}
	return st, nil
}

// gauges returns the scrape-time metric values.
func (d *Daemon) gauges() gauges {
	lag := func(f func(lagInfo) float64) func() float64 {
		return func() float64 {
			l, err := d.lagInfo()
			if err != nil {
				return -1
			}
			return f(l)
		}
	}
	return gauges{
		version: func(table string) float64 {
			l, err := d.lagInfo()
			if err != nil {
				return -1
			}
			return float64(l.latest[table])
		},
		lagVersions: lag(func(l lagInfo) float64 { return float64(l.behind) }),
		lagSeconds:  lag(func(l lagInfo) float64 { return l.lag.Seconds() }),
		backlog: func() float64 {
			n, _ := d.inbox.state()
			return float64(n)
		},
		oldestAge: func() float64 {
			_, oldest := d.inbox.state()
			if oldest.IsZero() {
				return 0
			}
			return max(0, d.clock.Now().Sub(oldest).Seconds())
		},
		ready: func() float64 {
			if d.ready.Load() {
				return 1
			}
			return 0
		},
	}
}
