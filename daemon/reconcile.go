package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
)

// reconcileMetrics are the scheduled reconcile's metrics.
type reconcileMetrics struct {
	differences prometheus.Gauge
	runs        *prometheus.CounterVec
}

func newReconcileMetrics(reg prometheus.Registerer) (*reconcileMetrics, error) {
	m := &reconcileMetrics{
		differences: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "upicdc", Name: "reconcile_differences",
			Help: "Differences the last scheduled reconcile found (reconcile.schedule); 0 before the first run."}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "upicdc", Name: "reconciles_total",
			Help: "Scheduled reconciles, by result (ok, differences, error)."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.differences, m.runs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	for _, r := range []string{"ok", "differences", "error"} {
		m.runs.WithLabelValues(r)
	}
	return m, nil
}

// reconcileLoop reconciles whenever reconcile.schedule fires. The
// recomputation reads one bbolt snapshot (a read transaction): MERGEs and
// micro-batches go on beside it. Only its results are written: an audit
// row, and the reconcile_differences alert when its state changes.
func (d *Daemon) reconcileLoop(ctx context.Context) error {
	return d.cronLoop(ctx, config.Config.ReconcileSchedule, func(config.Config) bool {
		if _, err := d.reconcileOnce(ctx, d.workCtx); err != nil {
			if ctx.Err() != nil {
				return false // shutting down: the run was cut short
			}
			d.recon.runs.WithLabelValues("error").Inc()
			d.setError("reconcile", err)
			d.log.Error("scheduled reconcile failed", "component", "reconcile", "err", err)
			return true
		}
		d.clearError("reconcile")
		return true
	})
}

// reconcileOnce runs one reconcile and records it: a pipeline_audit row
// (outcome reconcile), upicdc_reconcile_differences, and the built-in
// alert reconcile_differences (fired on differences, resolved by a clean
// run), delivered by the notifier like the rules' alerts.
// The recomputation reads under readCtx (a shutdown ends it at once); its
// results are written under ctx.
func (d *Daemon) reconcileOnce(readCtx, ctx context.Context) (agg.Report, error) {
	stream := d.config().Stream.Name
	start := time.Now()
	rep, err := agg.ReconcileCopy(readCtx, d.db, d.config().DataDir, stream, d.tables)
	if err != nil {
		return rep, err
	}
	took := time.Since(start)
	n := len(rep.Differences)
	d.recon.differences.Set(float64(n))
	result := "ok"
	reason := fmt.Sprintf("%d differences (%d transactions, %d merchants, raw version %d)", n, rep.Transactions, rep.Merchants, rep.RawVersion)
	if n > 0 {
		result = "differences"
		first := rep.Differences[0]
		reason += fmt.Sprintf("; first: %s %s %s: stored %s, expected %s", first.Table, first.Key, first.Column, first.Stored, first.Expected)
	}
	d.recon.runs.WithLabelValues(result).Inc()
	if err := cdc.RecordAudit(ctx, d.db, &cdc.Audit{Outcome: cdc.OutcomeReconcile, Origin: "reconcile",
		RawVersion: rep.RawVersion, RowsRead: rep.ChangeRows, Differences: int64(n), Reason: reason, Duration: took}); err != nil {
		return rep, err
	}
	if _, err := agg.RecordReconcileAlert(ctx, d.db, stream, rep, d.clock.Now()); err != nil {
		return rep, err
	}
	level := d.log.Info
	if n > 0 {
		level = d.log.Error
	}
	level("scheduled reconcile done", "component", "reconcile", "differences", n, "raw_version", rep.RawVersion,
		"change_rows", rep.ChangeRows, "took", took)
	return rep, nil
}
