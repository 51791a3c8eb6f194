package agg_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/examples"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

func openStore(t testing.TB, dir string) *store.DB { return storetest.Open(t, dir) }

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
	rep, err := agg.Reconcile(context.Background(), db, "")
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
		if got := storetest.AggregateLines(t, db, -1); got != want {
			t.Errorf("after batch %d:\ngot\n%s\nwant\n%s", i+1, got, want)
		}
		mustReconcile(t, db)
	}
	// Time travel: every earlier version still reads as it was.
	for i, want := range seedTables {
		if got := storetest.AggregateLines(t, db, int64(i+1)); got != want {
			t.Errorf("aggregates --version %d:\ngot\n%s\nwant\n%s", i+1, got, want)
		}
	}
	// Caught up: another trigger commits nothing.
	if res, err := p.RunOnce(context.Background()); err != nil || res.Committed {
		t.Errorf("idle trigger: %+v, %v", res, err)
	}
	// The aggregated table's commits carry the txn identifier.
	hist, err := db.History(store.AggTable)
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
	err = db.AggChanges(context.Background(), 3, 3, func(c store.AggChange) error {
		got = append(got, c.Type.String()+" "+c.Agg.MerchantID+" "+c.Agg.NetSales.String())
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
	if got := storetest.AggregateLines(t, db, -1); got != seedTables[2] {
		t.Errorf("got\n%s", got)
	}
	if got := storetest.AggregateLines(t, db, 1); got != seedTables[1] {
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
			if cp.BatchID != -1 || cp.RawVersion != 0 {
				t.Errorf("checkpoint moved: %+v", cp)
			}
			if v, _ := db.LatestVersion(store.AggTable); v != 0 {
				t.Errorf("aggregated table at version %d", v)
			}
			if _, err := agg.NewProcessor(db, agg.Options{}).RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := storetest.AggregateLines(t, db, -1); got != seedTables[0] {
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
	_, ok, err := db.Process(context.Background(), "vandal", func(tx *store.ProcessTx) error {
		a, _, err := tx.Aggregate("M001")
		if err != nil {
			return err
		}
		a.TotalSales += 99900
		a.NetSales += 99900
		if err := tx.PutAggregate(a); err != nil {
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
	rep, err := agg.Reconcile(context.Background(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []agg.Difference{
		{Table: store.AggTable, Key: "M001", Column: "total_sales", Stored: "1499", Expected: "500"},
		{Table: store.AggTable, Key: "M001", Column: "net_sales", Stored: "999", Expected: "0"},
	}
	if fmt.Sprint(rep.Differences) != fmt.Sprint(want) {
		t.Errorf("differences\n got %+v\nwant %+v", rep.Differences, want)
	}
}
