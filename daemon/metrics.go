package daemon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// metrics are the daemon's Prometheus metrics. Values that live in the store
// (versions, lag) are read at scrape time by GaugeFuncs, so they are never
// stale; counters are counted where things happen.
type metrics struct {
	filesIngested *prometheus.CounterVec // result: merged, duplicate, empty
	filesRejected prometheus.Counter
	ingestErrors  prometheus.Counter
	rowsMerged    *prometheus.CounterVec // kind: inserted, updated, deleted, stale, noop
	staleRows     prometheus.Counter
	commits       *prometheus.CounterVec // table
	batchDuration prometheus.Histogram
	batchErrors   prometheus.Counter
	batchRows     prometheus.Counter
	reloads       *prometheus.CounterVec // result: success, failure
	exports       *prometheus.CounterVec // result: success, failure
	// compactions counts scheduled compactions by result (compacted,
	// skipped, failed); compactionPause is the newest one's pauses.
	compactions     *prometheus.CounterVec
	compactionPause *prometheus.GaugeVec // paused: writers, all
}

// gauges are the scrape-time values the daemon provides.
type gauges struct {
	// version returns a table's latest version.
	version                 func(table string) float64
	lagVersions, lagSeconds func() float64
	backlog, oldestAge      func() float64
	ready                   func() float64
}

func newMetrics(reg prometheus.Registerer, g gauges, tables []store.TableInfo) (*metrics, error) {
	const ns = "upicdc"
	m := &metrics{
		filesIngested: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "inbox", Name: "files_ingested_total",
			Help: "Inbox files taken and moved to processed/, by result (merged, duplicate, empty)."}, []string{"result"}),
		filesRejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "inbox", Name: "files_rejected_total",
			Help: "Inbox files refused and moved to rejected/ with a .error file."}),
		ingestErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "inbox", Name: "errors_total",
			Help: "Inbox files that could not be ingested for a reason other than their content (left in the inbox and retried)."}),
		rowsMerged: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "merge", Name: "rows_total",
			Help: "Input rows MERGEd into the raw table, by outcome (inserted, updated, deleted, stale, noop)."}, []string{"kind"}),
		staleRows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "merge", Name: "stale_rows_total",
			Help: "Input rows skipped because the stored row is newer (out-of-order delivery)."}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "commits_total",
			Help: "Commits (new table versions) written by this process, by table."}, []string{"table"}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "stream", Name: "microbatch_duration_seconds",
			Help:    "Duration of committed micro-batches of the stream processor.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}),
		batchErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "stream", Name: "microbatch_errors_total",
			Help: "Micro-batches that failed (rolled back; retried)."}),
		batchRows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "stream", Name: "change_rows_total",
			Help: "Raw change-feed rows read by committed micro-batches."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP or a changed config file), by result."}, []string{"result"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "exports_total",
			Help: "Scheduled Delta exports (export.schedule), by result."}, []string{"result"}),
		compactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "store", Name: "compactions_total",
			Help: "Scheduled online compactions (retention.compact), by result (compacted, skipped, failed)."}, []string{"result"}),
		compactionPause: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "store", Name: "compaction_pause_seconds",
			Help: "The newest online compaction's pause: how long writes waited (paused=writers: the copy and the swap) and every transaction did (paused=all: the swap)."}, []string{"paused"}),
	}
	gauge := func(subsystem, name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: subsystem, Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		m.filesIngested, m.filesRejected, m.ingestErrors, m.rowsMerged, m.staleRows, m.commits,
		m.batchDuration, m.batchErrors, m.batchRows, m.reloads, m.exports, m.compactions, m.compactionPause,
		gauge("raw", "version", "Latest version of raw_upi_transactions_v1.", func() float64 { return g.version(cdc.RawTable) }),
		gauge("agg", "version", "Latest version of aggregated_upi_transactions.", func() float64 { return g.version(agg.TotalsTable) }),
		gauge("stream", "lag_versions", "Raw table versions the stream processor has not processed yet.", g.lagVersions),
		gauge("stream", "lag_seconds", "Age of the oldest raw commit the stream processor has not processed yet (0 when caught up).", g.lagSeconds),
		gauge("inbox", "backlog_files", "Files waiting in the inbox.", g.backlog),
		gauge("inbox", "oldest_file_age_seconds", "Age (by modification time) of the oldest file waiting in the inbox (0 when empty).", g.oldestAge),
		gauge("", "ready", "1 once the store is open and the first catch-up is done.", g.ready),
	}
	for _, t := range tables {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "table", Name: "version",
			Help: "Latest version of each table.", ConstLabels: prometheus.Labels{"table": t.Name}},
			func() float64 { return g.version(t.Name) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	// Pre-create the label values people alert on, so they read 0, not absent.
	for _, r := range []string{"merged", "duplicate", "empty"} {
		m.filesIngested.WithLabelValues(r)
	}
	for _, k := range []string{"inserted", "updated", "deleted", "stale", "noop"} {
		m.rowsMerged.WithLabelValues(k)
	}
	for _, r := range []string{"compacted", "skipped", "failed"} {
		m.compactions.WithLabelValues(r)
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
		m.exports.WithLabelValues(r)
	}
	return m, nil
}

// ingested counts one file taken from the inbox.
func (m *metrics) ingested(r cdc.Result) {
	switch {
	case r.Duplicate:
		m.filesIngested.WithLabelValues("duplicate").Inc()
		return
	case r.Empty:
		m.filesIngested.WithLabelValues("empty").Inc()
		return
	}
	m.filesIngested.WithLabelValues("merged").Inc()
	m.commits.WithLabelValues(cdc.RawTable).Inc()
	m.rowsMerged.WithLabelValues("inserted").Add(float64(r.Stats.Inserted))
	m.rowsMerged.WithLabelValues("updated").Add(float64(r.Stats.Updated))
	m.rowsMerged.WithLabelValues("deleted").Add(float64(r.Stats.Deleted))
	m.rowsMerged.WithLabelValues("stale").Add(float64(r.Stats.Stale))
	m.rowsMerged.WithLabelValues("noop").Add(float64(r.Stats.NoOp))
	m.staleRows.Add(float64(r.Stats.Stale))
}
