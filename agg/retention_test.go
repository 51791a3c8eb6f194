package agg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// TestVacuumKeepsAggregatesExact: whatever the batches, whenever the
// processor runs and whenever a vacuum removes the change feed below what
// the stream has consumed, the aggregates equal the naive recomputation,
// reconcile (from the baseline at the horizon) finds nothing, a rebuild
// from the baseline gives the same tables, and the horizon never passes
// the stream's checkpoint.
func TestVacuumKeepsAggregatesExact(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "upicdc-vacuum-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		cfg := agg.Config{WindowSizes: []string{"1d", "1w"}}
		db, err := agg.Open(filepath.Join(dir, "data"), cfg, store.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		ctx := context.Background()
		merger := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
		proc := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: rapid.IntRange(1, 3).Draw(rt, "maxVersions"), Tables: cfg})
		m := newModel()
		genRow := rapid.Custom(func(t *rapid.T) modelRow {
			return modelRow{
				id:       rapid.SampledFrom([]string{"T1", "T2", "T3", "T4", "T5", "T6"}).Draw(t, "id"),
				merchant: rapid.SampledFrom([]string{"M1", "M2", "M3"}).Draw(t, "merchant"),
				amount:   rapid.SampledFrom([]store.Paise{0, 1, 50000, 150000}).Draw(t, "amount"),
				minute:   rapid.IntRange(0, 30).Draw(t, "minute"),
				status:   rapid.SampledFrom([]string{"initiated", "completed", "failed", "refunded"}).Draw(t, "status"),
				del:      rapid.Float64Range(0, 1).Draw(t, "p") < 0.12,
			}
		})
		nBatches := rapid.IntRange(2, 10).Draw(rt, "batches")
		for b := 0; b < nBatches; b++ {
			rows := rapid.SliceOfN(genRow, 1, 6).Draw(rt, "rows")
			lines := []string{"transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,op"}
			for _, r := range rows {
				lines = append(lines, r.csv())
			}
			if _, err := merger.IngestData(ctx, fmt.Sprintf("batch-%d.csv", b), []byte(strings.Join(lines, "\n")+"\n")); err != nil {
				rt.Fatal(err)
			}
			m.apply(rows)
			if rapid.Bool().Draw(rt, "process") {
				if _, err := proc.RunOnce(ctx); err != nil {
					rt.Fatal(err)
				}
			}
			if rapid.Bool().Draw(rt, "vacuum") {
				keep := rapid.Int64Range(0, 2).Draw(rt, "keep")
				if _, err := agg.Vacuum(ctx, db, agg.VacuumOptions{Policy: store.Retention{Versions: keep + 1}}); err != nil {
					rt.Fatal(err)
				}
				cp, err := db.Checkpoint(agg.DefaultStream)
				if err != nil {
					rt.Fatal(err)
				}
				if h, _ := db.Horizon(cdc.RawTable); h > cp.SourceVersion {
					rt.Fatalf("raw horizon %d passed the stream's checkpoint %d", h, cp.SourceVersion)
				}
				rep, err := agg.Reconcile(ctx, db, "", cfg)
				if err != nil {
					rt.Fatal(err)
				}
				if !rep.OK() {
					rt.Fatalf("reconcile after vacuum (horizon %d): %+v", rep.Horizon, rep.Differences)
				}
			}
		}
		if _, err := proc.RunAvailableNow(ctx); err != nil {
			rt.Fatal(err)
		}
		if _, err := agg.Vacuum(ctx, db, agg.VacuumOptions{Policy: store.Retention{Versions: 1}}); err != nil {
			rt.Fatal(err)
		}
		if got, want := aggtest.AggregateLines(rt, db, -1), m.table(); got != want {
			rt.Fatalf("final:\ngot\n%s\nwant\n%s", got, want)
		}
		rep, err := agg.Reconcile(ctx, db, "", cfg)
		if err != nil {
			rt.Fatal(err)
		}
		if !rep.OK() {
			rt.Fatalf("reconcile: %+v", rep.Differences)
		}
		for _, table := range []string{agg.TotalsTable, agg.WindowsTable} {
			res, err := proc.Reprocess(ctx, table)
			if err != nil {
				rt.Fatal(err)
			}
			if res.Inserted+res.Updated+res.Deleted != 0 {
				rt.Fatalf("a rebuild from the baseline changed %s: %+v", table, res)
			}
		}
	})
}

// TestVacuumRefusesReadsBelowTheHorizon: aggregates and changes below the
// horizon are refused with an error naming it.
func TestVacuumRefusesReadsBelowTheHorizon(t *testing.T) {
	db := openStore(t, t.TempDir())
	ctx := context.Background()
	proc := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 1})
	for n := 1; n <= 3; n++ {
		ingestSeed(t, db, n)
		if _, err := proc.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := agg.Vacuum(ctx, db, agg.VacuumOptions{Policy: store.Retention{Versions: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Table != cdc.RawTable || res[0].To != 2 || res[1].To < 1 {
		t.Fatalf("vacuum: %+v", res)
	}
	if got := aggtest.AggregateLines(t, db, -1); got != seedTables[2] {
		t.Errorf("aggregates after vacuum:\n%s", got)
	}
	var below *store.BelowHorizonError
	if _, _, err := agg.Totals(ctx, db, 1); !errors.As(err, &below) || !strings.Contains(err.Error(), "retention horizon") {
		t.Errorf("aggregates at version 1: %v", err)
	}
	if err := db.Changes(ctx, cdc.RawTable, 1, -1, func(store.Change) error { return nil }); !errors.As(err, &below) || below.Horizon != 2 {
		t.Errorf("changes from 1: %v", err)
	}
	mustReconcile(t, db)
}
