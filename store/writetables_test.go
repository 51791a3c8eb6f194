package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// logDef is a second source table, written in the same commit as items.
var logDef = store.TableDef{Name: "log", Schema: store.Schema{KeyColumns: 1, Columns: []store.Column{
	{Name: "id", Type: store.Int},
	{Name: "what", Type: store.String},
}}}

func TestWriteTablesCommitsEveryTableInOneTransaction(t *testing.T) {
	db := storetest.Open(t, t.TempDir(), itemsDef, byOwnerDef, logDef)
	ctx := context.Background()
	sum := sha256.Sum256([]byte("a.csv"))
	cis, err := db.WriteTables(ctx, func(tx *store.WriteTx) error {
		items, err := tx.Table("items", store.WriteMeta{Operation: "MERGE", Source: &store.Source{Name: "a.csv"}, SHA256: &sum})
		if err != nil {
			return err
		}
		if err := items.Insert(row("A", "o", 1, 0, "new")); err != nil {
			return err
		}
		log, err := tx.Table("log", store.WriteMeta{Operation: "WRITE", Metrics: map[string]int64{"x": 7}})
		if err != nil {
			return err
		}
		return log.Insert(store.Row{{Int: items.Version()}, store.S("merged")})
	})
	if err != nil {
		t.Fatal(err)
	}
	if cis["items"].Version != 1 || cis["log"].Version != 1 || cis["log"].Operation != "WRITE" || cis["log"].OperationMetrics["x"] != 7 ||
		cis["items"].OperationMetrics["numTargetRowsInserted"] != 1 || cis["log"].OperationMetrics["numTargetRowsInserted"] != 1 {
		t.Fatalf("commits: %+v", cis)
	}
	if rec, found, err := db.IngestedFile(sum); err != nil || !found || rec.Version != 1 {
		t.Fatalf("ledger: %+v %v %v", rec, found, err)
	}
	// A second commit failing half-way writes neither table.
	boom := errors.New("boom")
	_, err = db.WriteTables(ctx, func(tx *store.WriteTx) error {
		log, err := tx.Table("log", store.WriteMeta{Operation: "WRITE"})
		if err != nil {
			return err
		}
		if err := log.Insert(store.Row{{Int: 2}, store.S("rejected")}); err != nil {
			return err
		}
		if _, err := tx.Table("items", store.WriteMeta{Operation: "MERGE", SHA256: &sum}); err != nil {
			return err // already ingested
		}
		return boom
	})
	if !errors.Is(err, store.ErrAlreadyIngested) {
		t.Fatalf("second commit: %v", err)
	}
	for _, name := range []string{"items", "log"} {
		if v, err := db.LatestVersion(name); err != nil || v != 1 {
			t.Fatalf("%s latest %d %v", name, v, err)
		}
	}
}
