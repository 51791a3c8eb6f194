package agg_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/examples"
	"github.com/upicdc/upicdc/store"
)

func openStore(t testing.TB, dir string) *store.DB { return aggtest.Open(t, dir, agg.Config{}) }

// ingestSeed MERGEs the seed's batch n (1-based) from the examples.
func ingestSeed(t testing.TB, db *store.DB, n int) {
	t.Helper()
	name := examples.SeedBatches()[n-1]
	data, err := fs.ReadFile(examples.Batches, name)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), path.Base(name))
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// seedTables are the seed's aggregate tables after batches 1, 2 and 3.
var seedTables = []string{
	"M001 0 0 0\nM002 0 0 0\nM003 0 0 0\n",
	"M001 500 0 500\nM002 0 0 0\nM003 0 0 0\nM004 0 0 0\n",
	"M001 500 -500 0\nM002 0 0 0\nM003 1500 0 1500\nM004 0 0 0\n",
}

func mustReconcile(t testing.TB, db *store.DB) agg.Report {
	t.Helper()
	rep, err := agg.Reconcile(context.Background(), db, "", agg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("reconcile found differences: %+v", rep.Differences)
	}
	return rep
}

func TestSeedExample(t *testing.T) {
	db := openStore(t, t.TempDir())
	p := agg.NewProcessor(db, agg.Options{})
	for i, want := range seedTables {
		ingestSeed(t, db, i+1)
		res, err := p.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Committed || res.BatchID != int64(i) || res.AggVersion != int64(i+1) {
			t.Errorf("batch %d: %+v", i+1, res)
		}
		if got := aggtest.AggregateLines(t, db, -1); got != want {
			t.Errorf("after batch %d:\ngot\n%s\nwant\n%s", i+1, got, want)
		}
		mustReconcile(t, db)
	}
	// Time travel: every earlier version still reads as it was.
	for i, want := range seedTables {
		if got := aggtest.AggregateLines(t, db, int64(i+1)); got != want {
			t.Errorf("aggregates --version %d:\ngot\n%s\nwant\n%s", i+1, got, want)
		}
	}
	// Caught up: another trigger commits nothing.
	if res, err := p.RunOnce(context.Background()); err != nil || res.Committed {
		t.Errorf("idle trigger: %+v, %v", res, err)
	}
	// The aggregated table's commits carry the txn identifier.
	hist, err := db.History(agg.TotalsTable)
	if err != nil {
		t.Fatal(err)
	}
	for v := 1; v < len(hist); v++ {
		if hist[v].Txn == nil || hist[v].Txn.AppID != agg.DefaultStream || hist[v].Txn.Version != int64(v-1) {
			t.Errorf("version %d txn %+v", v, hist[v].Txn)
		}
	}
	// Its change feed: batch 3 updates M001 and M003 only.
	var got []string
	err = db.Changes(context.Background(), agg.TotalsTable, 3, 3, func(c store.Change) error {
		a := agg.AggregateOf(c.Row)
		got = append(got, c.Type.String()+" "+a.MerchantID+" "+a.NetSales.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "update_preimage M001 500,update_postimage M001 0,update_preimage M003 0,update_postimage M003 1500"
	if strings.Join(got, ",") != want {
		t.Errorf("aggregate changes of version 3:\ngot  %s\nwant %s", strings.Join(got, ","), want)
	}
}

func TestMaxVersionsPerTrigger(t *testing.T) {
	db := openStore(t, t.TempDir())
	for i := 1; i <= 3; i++ {
		ingestSeed(t, db, i)
	}
	p := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 2})
	batches, err := p.RunAvailableNow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 2 || batches[0].ToVersion != 2 || batches[1].FromVersion != 3 || batches[0].Behind != 1 {
		t.Errorf("batches %+v, want 1..2 then 3..3", batches)
	}
	if got := aggtest.AggregateLines(t, db, -1); got != seedTables[2] {
		t.Errorf("got\n%s", got)
	}
	if got := aggtest.AggregateLines(t, db, 1); got != seedTables[1] {
		t.Errorf("aggregated version 1 (raw 1..2):\ngot\n%s\nwant\n%s", got, seedTables[1])
	}
}

// TestHookErrorRollsBack: a micro-batch that fails at any step leaves no trace.
func TestHookErrorRollsBack(t *testing.T) {
	for _, step := range []agg.Step{agg.StepRead, agg.StepComputed, agg.StepWritten} {
		t.Run(string(step), func(t *testing.T) {
			db := openStore(t, t.TempDir())
			ingestSeed(t, db, 1)
			failing := agg.NewProcessor(db, agg.Options{Hook: func(s agg.Step) error {
				if s == step {
					return fmt.Errorf("injected")
				}
				return nil
			}})
			if _, err := failing.RunOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("err = %v", err)
			}
			cp, err := db.Checkpoint(agg.DefaultStream)
			if err != nil {
				t.Fatal(err)
			}
			if cp.BatchID != -1 || cp.SourceVersion != 0 {
				t.Errorf("checkpoint moved: %+v", cp)
			}
			if v, _ := db.LatestVersion(agg.TotalsTable); v != 0 {
				t.Errorf("aggregated table at version %d", v)
			}
			if _, err := agg.NewProcessor(db, agg.Options{}).RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := aggtest.AggregateLines(t, db, -1); got != seedTables[0] {
				t.Errorf("got\n%s", got)
			}
			mustReconcile(t, db)
		})
	}
}

// vandalise writes a wrong aggregate for M001 through a second stream, the
// way a buggy writer would.
func vandalise(t *testing.T, db *store.DB) {
	t.Helper()
	_, ok, err := db.Process(context.Background(), "vandal", cdc.RawTable, func(tx *store.ProcessTx) error {
		w, err := tx.Table(agg.TotalsTable)
		if err != nil {
			return err
		}
		cur, _, err := w.Get(store.Row{store.S("M001")})
		if err != nil {
			return err
		}
		next := slices.Clone(cur.Row)
		next[1].Int += 99900 // total_sales
		next[3].Int += 99900 // net_sales
		if err := w.Update(cur.Row, next); err != nil {
			return err
		}
		tx.Commit(1, nil, nil)
		return nil
	})
	if err != nil || !ok {
		t.Fatalf("vandal commit: %v, %v", ok, err)
	}
}

func TestReconcileFindsDifferences(t *testing.T) {
	db := openStore(t, t.TempDir())
	p := agg.NewProcessor(db, agg.Options{})
	ingestSeed(t, db, 1)
	ingestSeed(t, db, 2)
	if _, err := p.RunAvailableNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	vandalise(t, db)
	ingestSeed(t, db, 3)
	if _, err := p.RunAvailableNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := agg.Reconcile(context.Background(), db, "", agg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// The stored totals differ from the recomputation, and the windows
	// (which the vandal left alone) no longer sum to the totals.
	want := []agg.Difference{
		{Table: agg.TotalsTable, Key: "M001", Column: "total_sales", Stored: "1499", Expected: "500"},
		{Table: agg.TotalsTable, Key: "M001", Column: "net_sales", Stored: "999", Expected: "0"},
		{Table: agg.WindowsTable, Key: "M001,1d", Column: "Σ total_sales", Stored: "500", Expected: "1499 (aggregated_upi_transactions)"},
		{Table: agg.WindowsTable, Key: "M001,1d", Column: "Σ net_sales", Stored: "0", Expected: "999 (aggregated_upi_transactions)"},
		{Table: agg.WindowsTable, Key: "M001,1w", Column: "Σ total_sales", Stored: "500", Expected: "1499 (aggregated_upi_transactions)"},
		{Table: agg.WindowsTable, Key: "M001,1w", Column: "Σ net_sales", Stored: "0", Expected: "999 (aggregated_upi_transactions)"},
	}
	if fmt.Sprint(rep.Differences) != fmt.Sprint(want) {
		t.Errorf("differences\n got %+v\nwant %+v", rep.Differences, want)
	}
}

// TestMaxRowsPerTrigger: a micro-batch ends with the raw version that
// reaches MaxRowsPerTrigger change rows; a version larger than the bound is
// still one micro-batch; the aggregates come out as without the bound.
func TestMaxRowsPerTrigger(t *testing.T) {
	ctx := context.Background()
	ingest := func(db *store.DB) {
		m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
		// Versions of 3, 3, 10 and 2 rows; the last updates version 3's.
		for v, n := range []int{3, 3, 10, 2} {
			lines := []string{"transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status"}
			for i := range n {
				id, status := fmt.Sprintf("T%d-%02d", v, i), "completed"
				if v == 3 {
					id, status = fmt.Sprintf("T2-%02d", i), "refunded"
				}
				lines = append(lines, fmt.Sprintf("%s,u@bank,M%d,%d.00,2024-12-21 10:%02d:00,%s", id, i%3, 10*(i+1), i+v, status))
			}
			if _, err := m.IngestData(ctx, fmt.Sprintf("v%d.csv", v), []byte(strings.Join(lines, "\n")+"\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(maxRows int64) (*store.DB, []string) {
		db := openStore(t, t.TempDir())
		ingest(db)
		batches, err := agg.NewProcessor(db, agg.Options{MaxRowsPerTrigger: maxRows}).RunAvailableNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range batches {
			got = append(got, fmt.Sprintf("%d..%d:%d", b.FromVersion, b.ToVersion, b.ChangeRows))
		}
		return db, got
	}
	bounded, got := run(5)
	// 3 < 5, then 6 >= 5: versions 1..2; version 3 alone holds 10; then 4
	// (2 updates: a preimage and a postimage each).
	if want := []string{"1..2:6", "3..3:10", "4..4:4"}; !slices.Equal(got, want) {
		t.Errorf("micro-batches %v, want %v", got, want)
	}
	unbounded, got := run(-1)
	if want := []string{"1..4:20"}; !slices.Equal(got, want) {
		t.Errorf("unbounded: micro-batches %v, want %v", got, want)
	}
	if a, b := aggtest.AggregateLines(t, bounded, -1), aggtest.AggregateLines(t, unbounded, -1); a != b {
		t.Errorf("bounded micro-batches:\n%s\nunbounded:\n%s", a, b)
	}
	mustReconcile(t, bounded)
}
