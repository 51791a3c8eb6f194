package store

import (
	"bytes"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Handing the mapping's pages back in the middle of a read loses nothing:
// slices into the mapping taken before it still hold their bytes, and the
// change feed and the rows read after it are what they were. A meter
// releases once its budget is read and starts counting again.
func TestReleaseMappedKeepsReadsIntact(t *testing.T) {
	db := recOpen(t)
	recWorkload(t, db, 4, func(int) bool { return false })
	wantFeed, wantRows := feedText(t, db, 1), rowsText(t, db)
	if len(wantFeed) == 0 || len(wantRows) == 0 {
		t.Fatalf("workload wrote %d change rows and %d rows", len(wantFeed), len(wantRows))
	}

	if err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, "items")
		if err != nil {
			return err
		}
		var mapped, copies [][]byte
		c := tb.Bucket(subCDF).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			mapped, copies = append(mapped, v), append(copies, slices.Clone(v))
		}
		m := mappedMeter{tx: tx}
		m.touch(residentBudget - 1)
		if m.touched != residentBudget-1 {
			t.Errorf("meter at %d after %d bytes", m.touched, residentBudget-1)
		}
		m.touch(1) // releases
		if m.touched != 0 {
			t.Errorf("meter at %d after its budget, want 0 (released)", m.touched)
		}
		for i := range mapped {
			if !bytes.Equal(mapped[i], copies[i]) {
				t.Fatalf("chunk %d changed after the mapping was released", i)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The readers release as they go; with the pages just handed back,
	// they read the same.
	if err := db.bolt.View(func(tx *bolt.Tx) error { releaseMapped(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := feedText(t, db, 1); !slices.Equal(got, wantFeed) {
		t.Errorf("change feed after release differs: %d rows, want %d", len(got), len(wantFeed))
	}
	if gotRows := rowsText(t, db); !slices.Equal(gotRows, wantRows) {
		t.Errorf("rows after release differ: %d, want %d", len(gotRows), len(wantRows))
	}
}
