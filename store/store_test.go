package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// The store knows no domain: its tests use a table of their own. "items"
// is a source table; "by_owner" a derived one, with a composite key.
var (
	itemsDef = store.TableDef{Name: "items", Schema: store.Schema{KeyColumns: 1, Columns: []store.Column{
		{Name: "id", Type: store.String},
		{Name: "owner", Type: store.String},
		{Name: "amount", Type: store.Money},
		{Name: "at", Type: store.Timestamp},
		{Name: "state", Type: store.Enum, Enum: []string{"new", "done", "void"}},
	}}}
	byOwnerDef = store.TableDef{Name: "by_owner", Derived: true, Schema: store.Schema{KeyColumns: 2, Columns: []store.Column{
		{Name: "owner", Type: store.String},
		{Name: "day", Type: store.Timestamp},
		{Name: "total", Type: store.Money},
		{Name: "note", Type: store.String, Nullable: true},
	}}}
)

func open(t testing.TB, dir string) *store.DB { return storetest.Open(t, dir, itemsDef, byOwnerDef) }

func row(id, owner string, amount store.Paise, minute int, state string) store.Row {
	return store.Row{store.S(id), store.S(owner), store.M(amount),
		store.T(time.Date(2024, 12, 21, 10, minute, 0, 0, time.UTC)), store.S(state)}
}

// merge commits one version that inserts or updates rows (sorted by id).
func merge(t testing.TB, db *store.DB, name string, rows ...store.Row) store.CommitInfo {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	ci, err := db.Write(context.Background(), "items", store.WriteMeta{Operation: "MERGE", Source: &store.Source{Name: name}, SHA256: &sum},
		func(w *store.TableWriter) error {
			for _, r := range rows {
				if _, err := w.Upsert(r); err != nil {
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
	for _, tb := range db.Tables() {
		h, err := db.History(tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Version != 0 || h[0].Operation != "CREATE TABLE" || h[0].OperationParameters["delta.enableChangeDataFeed"] != "true" {
			t.Errorf("%s history %+v", tb.Name, h)
		}
	}
}

// TestCreationLeavesAWholeStore: a new store file appears whole (bbolt
// initialises it under a temporary name first), so a crash while creating
// it leaves that temporary file, which the next open ignores, and not an
// empty store file it would refuse as damaged.
func TestCreationLeavesAWholeStore(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, store.FileName+".new-123")
	if err := os.WriteFile(leftover, nil, 0o600); err != nil { // a crash after creating it
		t.Fatal(err)
	}
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{store.FileName, store.FileName + ".new-123"}; !slices.Equal(names, want) {
		t.Errorf("data dir holds %v, want %v", names, want)
	}
	fi, err := os.Stat(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || fi.Size() == 0 {
		t.Errorf("store file: mode %v, %d bytes", fi.Mode().Perm(), fi.Size())
	}
	ro, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	_ = ro.Close()
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
	merge(t, db, "a", row("A", "M1", 100, 0, "new"), row("B", "M1", 200, 0, "new"))
	merge(t, db, "b", row("A", "M1", 100, 5, "done"))
	merge(t, db, "c", row("A", "M2", 150, 9, "void"), row("C", "M3", 5, 9, "void"))
	ctx := context.Background()
	snapshot := func(v int64) string {
		var s string
		if _, err := db.Scan(ctx, "items", v, store.KeyRange{}, func(r store.Row) error {
			s += fmt.Sprintf("%s:%s:%s ", r[0].Str, r[1].Str, r[4].Str)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for v, want := range []string{
		"",
		"A:M1:new B:M1:new ",
		"A:M1:done B:M1:new ",
		"A:M2:void B:M1:new C:M3:void ",
	} {
		if got := snapshot(int64(v)); got != want {
			t.Errorf("version %d: %q, want %q", v, got, want)
		}
	}
	h, err := db.KeyHistory("items", store.Row{store.S("A")})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Version != 1 || h[1].Version != 2 || h[2].Version != 3 || h[2].Row[1].Str != "M2" {
		t.Errorf("history of A: %+v", h)
	}
	if _, err := db.KeyHistory("items", store.Row{store.S("Z")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown transaction: %v", err)
	}
	if _, err := db.Scan(ctx, "items", 9, store.KeyRange{}, func(store.Row) error { return nil }); !errors.Is(err, store.ErrVersionNotFound) {
		t.Errorf("future version: %v", err)
	}
	if err := db.Changes(ctx, "items", 4, -1, func(store.Change) error { return nil }); !errors.Is(err, store.ErrVersionNotFound) {
		t.Errorf("changes from a future version: %v", err)
	}
	if err := db.Changes(ctx, "items", 3, 2, func(store.Change) error { return nil }); err == nil {
		t.Error("changes with to < from accepted")
	}
	var n int
	if err := db.Changes(ctx, "items", 2, 99, func(store.Change) error { n++; return nil }); err != nil || n != 5 {
		t.Errorf("changes 2..99 (clamped): %d rows, %v; want 5", n, err)
	}
}

func TestWriterRefusesUnsortedKeys(t *testing.T) {
	db := open(t, t.TempDir())
	_, err := db.Write(context.Background(), "items", store.WriteMeta{Operation: "WRITE"}, func(tx *store.TableWriter) error {
		if err := tx.Insert(row("B", "M", 1, 0, "new")); err != nil {
			return err
		}
		return tx.Insert(row("A", "M", 1, 0, "new"))
	})
	if !errors.Is(err, store.ErrOutOfOrder) {
		t.Fatalf("err = %v, want ErrOutOfOrder", err)
	}
	if v, _ := db.LatestVersion("items"); v != 0 {
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
	merge(t, db, "a", row("A", "M1", 100, 0, "new"), row("B", "M1", 200, 0, "new"))
	inRead, release := make(chan struct{}), make(chan struct{})
	readDone := make(chan []string)
	go func() {
		var seen []string
		err := db.Changes(context.Background(), "items", 0, -1, func(c store.Change) error {
			if len(seen) == 0 {
				close(inRead)
				<-release
			}
			seen = append(seen, fmt.Sprint(c.Version, c.Row[0].Str))
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		readDone <- seen
	}()
	<-inRead
	ci := merge(t, db, "b", row("C", "M2", 5, 1, "void")) // must not wait for the reader
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
	p, err := db.Progress("s", "items")
	if err != nil {
		t.Fatal(err)
	}
	if p.SourceVersion != 0 || p.Latest["by_owner"] != 0 || p.Checkpoint.BatchID != -1 || p.OldestPending != 0 {
		t.Errorf("new store: %+v", p)
	}
	first := merge(t, db, "a", row("A", "M1", 100, 0, "new"))
	merge(t, db, "b", row("B", "M1", 100, 0, "new"))
	if p, err = db.Progress("s", "items"); err != nil {
		t.Fatal(err)
	}
	if p.SourceVersion != 2 || p.OldestPending != first.Timestamp {
		t.Errorf("two versions behind: %+v, want oldest pending %d", p, first.Timestamp)
	}
}
