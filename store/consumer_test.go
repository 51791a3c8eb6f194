package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// A writer asked to record its changes hands back what it wrote, in order,
// after-images only: what a later derived table of the same micro-batch
// builds on.
func TestTableWriterRecordsItsChanges(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "a", row("A", "o", 1, 0, "new"))
	merge(t, db, "b", row("B", "o", 1, 0, "new"))
	first := store.Row{store.S("o"), day(1), store.M(2), store.Null()}
	process(t, db, 1, first)
	var got []store.Change
	_, ok, err := db.Process(context.Background(), "s", "items", func(tx *store.ProcessTx) error {
		w, err := tx.Table("by_owner")
		if err != nil {
			return err
		}
		w.RecordChanges()
		if _, err := w.Upsert(store.Row{store.S("o"), day(1), store.M(5), store.Null()}); err != nil {
			return err
		}
		if _, err := w.Upsert(store.Row{store.S("p"), day(2), store.M(7), store.Null()}); err != nil {
			return err
		}
		got = w.Changes()
		tx.Commit(2, nil, nil)
		return nil
	})
	if err != nil || !ok {
		t.Fatalf("process: %v (committed %v)", err, ok)
	}
	if len(got) != 2 {
		t.Fatalf("got %d changes, want 2: %+v", len(got), got)
	}
	if got[0].Type != store.UpdatePostimage || got[0].Row[2].Int != 5 || got[1].Type != store.Insert || got[1].Row[0].Str != "p" {
		t.Errorf("changes %+v", got)
	}
}

// A consumer's position and dead letters survive a reopen.
func TestConsumerPositionAndDeadLetters(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db.ConsumerPosition("n"); err != nil || ok {
		t.Fatalf("fresh position: ok %v err %v", ok, err)
	}
	if err := db.SetConsumerPosition("n", store.Position{Version: 3, Index: 2}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"webhook:a", "alertmanager"} {
		if err := db.PutDeadLetter("n", store.DeadLetter{ID: "v3-k", Target: target, Attempts: 5, Data: json.RawMessage(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteDeadLetter("n", "v3-k", "webhook:a"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir)
	p, ok, err := db.ConsumerPosition("n")
	if err != nil || !ok || p != (store.Position{Version: 3, Index: 2}) {
		t.Errorf("position %+v ok %v err %v", p, ok, err)
	}
	dead, err := db.DeadLetters("n")
	if err != nil || len(dead) != 1 || dead[0].Target != "alertmanager" || string(dead[0].Data) != `{"x":1}` {
		t.Errorf("dead letters %+v err %v", dead, err)
	}
}
