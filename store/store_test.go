package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

func open(t testing.TB, dir string) *store.DB { return storetest.Open(t, dir) }

func row(id, merchant string, amount store.Paise, minute int, s store.Status) store.Row {
	return store.Row{TransactionID: id, UPIID: "u@" + id, MerchantID: merchant, Amount: amount,
		Time: time.Date(2024, 12, 21, 10, minute, 0, 0, time.UTC).UnixMicro(), Status: s}
}

// merge commits one version that inserts or updates rows (sorted by id).
func merge(t testing.TB, db *store.DB, name string, rows ...store.Row) store.CommitInfo {
	t.Helper()
	ci, err := db.Merge(context.Background(), store.MergeMeta{Source: store.Source{Name: name}, SHA256: sha256.Sum256([]byte(name)), SourceRows: int64(len(rows))},
		func(tx *store.MergeTx) error {
			for _, r := range rows {
				cur, found, err := tx.Current(r.TransactionID)
				if err != nil {
					return err
				}
				if found && !cur.Deleted {
					err = tx.Update(cur.Row, r)
				} else {
					err = tx.Insert(r)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

func TestNewStoreHasVersionZero(t *testing.T) {
	db := open(t, t.TempDir())
	for _, tb := range store.Tables() {
		h, err := db.History(tb)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Version != 0 || h[0].Operation != "CREATE TABLE" || h[0].OperationParameters["delta.enableChangeDataFeed"] != "true" {
			t.Errorf("%s history %+v", tb, h)
		}
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	// ErrLocked comes only from bbolt's lock timeout: the open gave up
	// instead of waiting for the lock (a hang would trip the test timeout).
	_, err := store.Open(dir, store.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestReadOnlyOpenOfMissingStore(t *testing.T) {
	_, err := store.Open(t.TempDir(), store.Options{ReadOnly: true})
	if !errors.Is(err, store.ErrNoStore) {
		t.Fatalf("err = %v, want ErrNoStore", err)
	}
}

func TestTimeTravelAndHistory(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "a", row("A", "M1", 100, 0, store.StatusInitiated), row("B", "M1", 200, 0, store.StatusInitiated))
	merge(t, db, "b", row("A", "M1", 100, 5, store.StatusCompleted))
	merge(t, db, "c", row("A", "M2", 150, 9, store.StatusRefunded), row("C", "M3", 5, 9, store.StatusFailed))
	ctx := context.Background()
	snapshot := func(v int64) string {
		var s string
		if _, err := db.ScanRows(ctx, v, func(r store.Row) error {
			s += fmt.Sprintf("%s:%s:%s ", r.TransactionID, r.MerchantID, r.Status)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for v, want := range []string{
		"",
		"A:M1:initiated B:M1:initiated ",
		"A:M1:completed B:M1:initiated ",
		"A:M2:refunded B:M1:initiated C:M3:failed ",
	} {
		if got := snapshot(int64(v)); got != want {
			t.Errorf("version %d: %q, want %q", v, got, want)
		}
	}
	h, err := db.TxnHistory("A")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Version != 1 || h[1].Version != 2 || h[2].Version != 3 || h[2].Row.MerchantID != "M2" {
		t.Errorf("history of A: %+v", h)
	}
	if _, err := db.TxnHistory("Z"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown transaction: %v", err)
	}
	if _, err := db.ScanRows(ctx, 9, func(store.Row) error { return nil }); !errors.Is(err, store.ErrVersionNotFound) {
		t.Errorf("future version: %v", err)
	}
	if err := db.Changes(ctx, 4, -1, func(store.Change) error { return nil }); !errors.Is(err, store.ErrVersionNotFound) {
		t.Errorf("changes from a future version: %v", err)
	}
	if err := db.Changes(ctx, 3, 2, func(store.Change) error { return nil }); err == nil {
		t.Error("changes with to < from accepted")
	}
	var n int
	if err := db.Changes(ctx, 2, 99, func(store.Change) error { n++; return nil }); err != nil || n != 5 {
		t.Errorf("changes 2..99 (clamped): %d rows, %v; want 5", n, err)
	}
}

func TestMergeTxRefusesUnsortedKeys(t *testing.T) {
	db := open(t, t.TempDir())
	_, err := db.Merge(context.Background(), store.MergeMeta{Source: store.Source{Name: "x"}}, func(tx *store.MergeTx) error {
		if err := tx.Insert(row("B", "M", 1, 0, store.StatusInitiated)); err != nil {
			return err
		}
		return tx.Insert(row("A", "M", 1, 0, store.StatusInitiated))
	})
	if !errors.Is(err, store.ErrOutOfOrder) {
		t.Fatalf("err = %v, want ErrOutOfOrder", err)
	}
	if v, _ := db.LatestVersion(store.RawTable); v != 0 {
		t.Errorf("failed merge left version %d", v)
	}
}

func TestPaiseFormatting(t *testing.T) {
	for _, tc := range []struct {
		p          store.Paise
		str, fixed string
	}{
		{0, "0", "0.00"}, {50000, "500", "500.00"}, {50050, "500.50", "500.50"}, {5, "0.05", "0.05"},
		{-50000, "-500", "-500.00"}, {-1, "-0.01", "-0.01"}, {store.MaxPaise, "9999999999999999.99", "9999999999999999.99"},
	} {
		if got := tc.p.String(); got != tc.str {
			t.Errorf("String(%d) = %q, want %q", tc.p, got, tc.str)
		}
		if got := tc.p.Decimal(); got != tc.fixed {
			t.Errorf("Decimal(%d) = %q, want %q", tc.p, got, tc.fixed)
		}
	}
}

// TestReadersDoNotBlockTheWriter holds a change-feed read open in the middle
// of its iteration while a MERGE commits: bbolt's MVCC lets the writer go
// on, and the reader keeps seeing the snapshot it started with.
func TestReadersDoNotBlockTheWriter(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "a", row("A", "M1", 100, 0, store.StatusInitiated), row("B", "M1", 200, 0, store.StatusInitiated))
	inRead, release := make(chan struct{}), make(chan struct{})
	readDone := make(chan []string)
	go func() {
		var seen []string
		err := db.Changes(context.Background(), 0, -1, func(c store.Change) error {
			if len(seen) == 0 {
				close(inRead)
				<-release
			}
			seen = append(seen, fmt.Sprint(c.Version, c.Row.TransactionID))
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		readDone <- seen
	}()
	<-inRead
	ci := merge(t, db, "b", row("C", "M2", 5, 1, store.StatusFailed)) // must not wait for the reader
	close(release)
	if got := fmt.Sprint(<-readDone); got != "[1A 1B]" {
		t.Errorf("reader saw %s, want its snapshot [1A 1B]", got)
	}
	if ci.Version != 2 {
		t.Errorf("writer committed version %d", ci.Version)
	}
}

func TestProgress(t *testing.T) {
	db := open(t, t.TempDir())
	p, err := db.Progress("s")
	if err != nil {
		t.Fatal(err)
	}
	if p.RawVersion != 0 || p.AggVersion != 0 || p.Checkpoint.BatchID != -1 || p.OldestPending != 0 {
		t.Errorf("new store: %+v", p)
	}
	first := merge(t, db, "a", row("A", "M1", 100, 0, store.StatusInitiated))
	merge(t, db, "b", row("B", "M1", 100, 0, store.StatusInitiated))
	if p, err = db.Progress("s"); err != nil {
		t.Fatal(err)
	}
	if p.RawVersion != 2 || p.OldestPending != first.Timestamp {
		t.Errorf("two versions behind: %+v, want oldest pending %d", p, first.Timestamp)
	}
}
