package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
)

// scanText renders table items at version v.
func scanText(t *testing.T, db *store.DB, v int64) string {
	t.Helper()
	var out []string
	if _, err := db.Scan(context.Background(), "items", v, store.KeyRange{}, func(r store.Row) error {
		out = append(out, fmt.Sprintf("%s:%s:%d", r[0].Str, r[4].Str, r[2].Int))
		return nil
	}); err != nil {
		t.Fatalf("scan at %d: %v", v, err)
	}
	return strings.Join(out, " ")
}

func changesText(t *testing.T, db *store.DB, from int64) (string, error) {
	t.Helper()
	var out []string
	err := db.Changes(context.Background(), "items", from, -1, func(c store.Change) error {
		out = append(out, fmt.Sprintf("%d:%s:%s", c.Version, c.Type, c.Row[0].Str))
		return nil
	})
	return strings.Join(out, " "), err
}

func historyVersions(t *testing.T, db *store.DB, key string) string {
	t.Helper()
	h, err := db.KeyHistory("items", store.Row{store.S(key)})
	if err != nil {
		t.Fatalf("history of %s: %v", key, err)
	}
	var out []string
	for _, rv := range h {
		s := fmt.Sprintf("%d:%s", rv.Version, rv.Row[4].Str)
		if rv.Deleted {
			s += "(deleted)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func deleteItem(t *testing.T, db *store.DB, id string) {
	t.Helper()
	_, err := db.Write(context.Background(), "items", store.WriteMeta{Operation: "DELETE"}, func(w *store.TableWriter) error {
		cur, found, err := w.Get(store.Row{store.S(id)})
		if err != nil || !found {
			return fmt.Errorf("get %s: %v %v", id, found, err)
		}
		return w.Delete(cur.Row, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVacuumKeepsTheStateAtTheHorizon removes the change feed below a
// horizon: the table reads the same at the horizon and later, the current
// image of a key last changed long ago stays, history stops at the horizon,
// and reads below it are refused naming the horizon.
func TestVacuumKeepsTheStateAtTheHorizon(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := context.Background()
	merge(t, db, "v1", row("A", "o", 100, 0, "new"), row("B", "o", 200, 0, "new"), row("C", "o", 300, 0, "new"), row("E", "o", 50, 0, "new"))
	merge(t, db, "v2", row("A", "o", 100, 1, "done"))
	merge(t, db, "v3", row("B", "o", 200, 2, "done"))
	merge(t, db, "v4", row("C", "o", 300, 3, "void"), row("D", "o", 400, 3, "new"))
	deleteItem(t, db, "E") // v5
	merge(t, db, "v6", row("B", "o", 200, 4, "void"))
	before := map[int64]string{}
	for v := int64(3); v <= 6; v++ {
		before[v] = scanText(t, db, v)
	}
	feed4, err := changesText(t, db, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := historyVersions(t, db, "A"); got != "1:new 2:done" {
		t.Fatalf("history of A before vacuum: %s", got)
	}

	res, err := db.Vacuum(ctx, store.VacuumOptions{Policy: store.Retention{Versions: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Table != "items" || res[0].From != 0 || res[0].To != 3 || res[0].Chunks == 0 {
		t.Fatalf("vacuum of items: %+v", res[0])
	}
	if h, _ := db.Horizon("items"); h != 3 {
		t.Fatalf("horizon %d, want 3", h)
	}
	for v := int64(3); v <= 6; v++ {
		if got := scanText(t, db, v); got != before[v] {
			t.Errorf("version %d after vacuum: %q, want %q", v, got, before[v])
		}
	}
	if got, err := changesText(t, db, 4); err != nil || got != feed4 {
		t.Errorf("changes from 4 after vacuum: %q, %v; want %q", got, err, feed4)
	}
	var below *store.BelowHorizonError
	if _, err := changesText(t, db, 3); !errors.As(err, &below) || below.Horizon != 3 || !strings.Contains(err.Error(), "horizon (version 3)") {
		t.Errorf("changes from 3: %v, want a BelowHorizonError naming version 3", err)
	}
	if _, err := db.Scan(ctx, "items", 2, store.KeyRange{}, func(store.Row) error { return nil }); !errors.Is(err, store.ErrBelowHorizon) {
		t.Errorf("scan at 2: %v, want ErrBelowHorizon", err)
	}
	if err := db.Notes(ctx, "items", 1, func([]byte) error { return nil }); !errors.Is(err, store.ErrBelowHorizon) {
		t.Errorf("notes of 1: %v, want ErrBelowHorizon", err)
	}
	for key, want := range map[string]string{
		"A": "2:done",               // last changed below the horizon: its latest image
		"B": "3:done 6:void",        // changed at the horizon and after
		"C": "1:new 4:void",         // the image at the horizon, then what came after
		"D": "4:new",                // born after the horizon
		"E": "1:new 5:new(deleted)", // deleted after the horizon
	} {
		if got := historyVersions(t, db, key); got != want {
			t.Errorf("history of %s after vacuum: %q, want %q", key, got, want)
		}
	}

	// A write after the vacuum to a key last changed below the horizon:
	// reading at the versions in between still shows its old image.
	merge(t, db, "v7", row("A", "o", 100, 5, "void"))
	if got := scanText(t, db, 6); got != before[6] {
		t.Errorf("version 6 after a write of A: %q, want %q", got, before[6])
	}
	if got := historyVersions(t, db, "A"); got != "2:done 7:void" {
		t.Errorf("history of A after a write: %q", got)
	}
	// A second vacuum moves past that write's base image and keeps the rest.
	at6, at7 := scanText(t, db, 6), scanText(t, db, 7)
	if _, err := db.Vacuum(ctx, store.VacuumOptions{Policy: store.Retention{Versions: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := scanText(t, db, 6); got != at6 {
		t.Errorf("version 6 after the second vacuum: %q, want %q", got, at6)
	}
	if got := scanText(t, db, 7); got != at7 {
		t.Errorf("version 7 after the second vacuum: %q, want %q", got, at7)
	}
	if got := historyVersions(t, db, "C"); got != "4:void" {
		t.Errorf("history of C after the second vacuum: %q", got)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestVacuumNeverPassesAConsumer: a registered consumer, a stream's
// checkpoint and a position passed in each hold the horizon below the
// oldest version they have not consumed.
func TestVacuumNeverPassesAConsumer(t *testing.T) {
	ctx := context.Background()
	all := store.Retention{Versions: 0, History: time.Nanosecond} // policy alone would remove everything
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, db *store.DB) []store.Consumer
		want  int64
		held  string
	}{
		{"registered consumer", func(t *testing.T, db *store.DB) []store.Consumer {
			if err := db.SetConsumer("reader", "items", 3); err != nil {
				t.Fatal(err)
			}
			return nil
		}, 2, "reader"},
		{"stream behind", func(t *testing.T, db *store.DB) []store.Consumer {
			process(t, db, 2)
			return nil
		}, 2, "s"},
		{"position passed in", func(t *testing.T, db *store.DB) []store.Consumer {
			return []store.Consumer{{Name: "export", Kind: "export", Table: "items", Version: 2}}
		}, 1, "export"},
		{"nobody", func(t *testing.T, db *store.DB) []store.Consumer { return nil }, 4, "latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, t.TempDir())
			for i := range 4 {
				merge(t, db, fmt.Sprint(i), row("A", "o", store.Paise(i+1), i, "new"))
			}
			extra := tc.setup(t, db)
			var folded []string
			res, err := db.Vacuum(ctx, store.VacuumOptions{Policy: all, Now: time.Now().Add(time.Hour), Consumers: extra,
				Baseline: func(b *store.BaselineTx) error {
					from, to := b.Range()
					folded = append(folded, fmt.Sprintf("%s:%d..%d", b.Stream(), from, to))
					return b.Changes(func(c store.Change) error {
						return b.Put([]byte(c.Row[0].Str), []byte(fmt.Sprint(c.Version)))
					})
				}})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].To != tc.want || res[0].HeldBy != tc.held {
				t.Fatalf("items vacuumed to %d held by %q, want %d held by %q", res[0].To, res[0].HeldBy, tc.want, tc.held)
			}
			if tc.name == "stream behind" {
				if strings.Join(folded, ",") != "s:1..2" {
					t.Errorf("baselines folded: %v", folded)
				}
				snap, err := db.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				defer snap.Close()
				var got string
				h, err := snap.Baseline("s", func(k, v []byte) error { got += string(k) + "=" + string(v); return nil })
				if err != nil || h != 2 || got != "A=2" {
					t.Errorf("baseline: %q at %d, %v", got, h, err)
				}
			}
			// What the consumer has not consumed is still readable.
			if _, err := changesText(t, db, tc.want+1); err != nil && tc.want < 4 {
				t.Errorf("changes from %d: %v", tc.want+1, err)
			}
		})
	}
}

func TestConsumers(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "a", row("A", "o", 1, 0, "new"))
	merge(t, db, "b", row("A", "o", 2, 0, "new"))
	if err := db.SetConsumer("reader", "items", 9); err == nil {
		t.Error("a position past the next version was accepted")
	}
	if err := db.SetConsumer("reader", "nope", 1); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("unknown table: %v", err)
	}
	if err := db.SetConsumer("reader", "items", 1); err != nil {
		t.Fatal(err)
	}
	process(t, db, 1)
	// A delivering consumer (the alert notifier's kind) holds the feed too,
	// from its position.
	if err := db.SetConsumerPosition("notifier", store.Position{Table: "items", Version: 2, Index: 1}); err != nil {
		t.Fatal(err)
	}
	cs, err := db.Consumers()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, fmt.Sprintf("%s/%s/%s@%d", c.Name, c.Kind, c.Table, c.Version))
	}
	if want := "notifier/delivery/items@2 reader/registered/items@1 s/stream/items@2"; strings.Join(got, " ") != want {
		t.Errorf("consumers %v, want %s", got, want)
	}
	if err := db.RemoveConsumer("reader"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveConsumer("reader"); !errors.Is(err, store.ErrNoConsumer) {
		t.Errorf("second remove: %v", err)
	}
	if _, err := db.Vacuum(context.Background(), store.VacuumOptions{Policy: store.Retention{Versions: 1},
		Baseline: func(*store.BaselineTx) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	var below *store.BelowHorizonError
	if err := db.SetConsumer("late", "items", 1); !errors.As(err, &below) {
		t.Errorf("registering below the horizon: %v", err)
	}
}

func TestRetentionStatusReportsReclaimableBytes(t *testing.T) {
	db := open(t, t.TempDir())
	for i := range 5 {
		merge(t, db, fmt.Sprint(i), row(fmt.Sprint("K", i), "o", 1, i, "new"))
	}
	st, err := db.RetentionStatus(store.Retention{Versions: 2}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	items := st[0]
	if items.Table != "items" || items.Horizon != 0 || items.Target != 3 || items.Reclaimable <= 0 || items.Reclaimable >= items.ChangeFeedBytes {
		t.Fatalf("status %+v", items)
	}
	res, err := db.Vacuum(context.Background(), store.VacuumOptions{Policy: store.Retention{Versions: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Bytes != items.Reclaimable {
		t.Errorf("vacuum removed %d bytes, status said %d", res[0].Bytes, items.Reclaimable)
	}
	if st, _ = db.RetentionStatus(store.Retention{Versions: 2}, time.Now(), nil); st[0].Reclaimable != 0 || st[0].Horizon != 3 {
		t.Errorf("after vacuum: %+v", st[0])
	}
}
