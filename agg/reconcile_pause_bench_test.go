package agg_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/cdctest"
	"github.com/upicdc/upicdc/store"
)

// BenchmarkReconcilePause measures what a reconcile (serve's
// reconcile.schedule) costs ingestion on a store of 1M transactions: the
// latency of 1,000-row MERGEs (each followed by a micro-batch) on their
// own, then while a reconcile runs beside them on its snapshot. Reported:
// the reconcile's time and the MERGE+micro-batch latencies (median, max)
// without and with it.
func BenchmarkReconcilePause(b *testing.B) {
	ctx := context.Background()
	db, err := agg.Open(b.TempDir(), agg.Config{}, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	w := cdctest.NewWorkload(7, false)
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	for range 10 {
		if _, err := m.Merge(ctx, w.Batch(100_000, 0)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := agg.NewProcessor(db, agg.Options{}).RunAvailableNow(ctx); err != nil {
		b.Fatal(err)
	}
	// serve opens the store it finds: reopen, as it would.
	dir := filepath.Dir(db.Path())
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if db, err = agg.Open(dir, agg.Config{}, store.Options{}); err != nil {
		b.Fatal(err)
	}
	m = cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	p := agg.NewProcessor(db, agg.Options{})
	fileSize := func() int64 {
		info, err := os.Stat(db.Path())
		if err != nil {
			b.Fatal(err)
		}
		return info.Size()
	}
	b.Logf("store file %d MiB", fileSize()>>20)
	step := func() time.Duration {
		start := time.Now()
		if _, err := m.Merge(ctx, w.Batch(1000, 0.5)); err != nil {
			b.Fatal(err)
		}
		if _, err := p.RunAvailableNow(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for b.Loop() {
		var alone, beside []time.Duration
		for range 30 {
			alone = append(alone, step())
		}
		done := make(chan error, 1)
		start := time.Now()
		var took time.Duration
		go func() {
			rep, err := agg.ReconcileCopy(ctx, db, dir, "", agg.Config{})
			took = time.Since(start)
			if err == nil && !rep.OK() {
				b.Errorf("differences: %v", rep.Differences[:1])
			}
			done <- err
		}()
	running:
		for {
			beside = append(beside, step())
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				break running
			default:
			}
		}
		slices.Sort(alone)
		slices.Sort(beside)
		b.ReportMetric(took.Seconds(), "reconcile_s")
		b.ReportMetric(float64(alone[len(alone)/2].Milliseconds()), "alone_p50_ms")
		b.ReportMetric(float64(alone[len(alone)-1].Milliseconds()), "alone_max_ms")
		b.ReportMetric(float64(beside[len(beside)/2].Milliseconds()), "beside_p50_ms")
		b.ReportMetric(float64(beside[len(beside)-1].Milliseconds()), "beside_max_ms")
		b.Logf("store file now %d MiB", fileSize()>>20)
		b.Logf("reconcile %v; %d MERGE+batch steps beside it: p50 %v max %v; alone: p50 %v max %v",
			took, len(beside), beside[len(beside)/2], beside[len(beside)-1], alone[len(alone)/2], alone[len(alone)-1])
	}
}
