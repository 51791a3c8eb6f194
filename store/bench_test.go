package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// BenchmarkTxnHistory looks up one transaction's history (3 images) in a
// table of 1M transactions.
func BenchmarkTxnHistory(b *testing.B) {
	db := open(b, b.TempDir())
	const n, per = 1_000_000, 100_000
	statuses := []store.Status{store.StatusInitiated, store.StatusCompleted, store.StatusRefunded}
	for v := 0; v < n/per; v++ {
		_, err := db.Merge(context.Background(), store.MergeMeta{Source: store.Source{Name: fmt.Sprint(v)}, SHA256: sha256.Sum256([]byte(fmt.Sprint(v)))},
			func(tx *store.MergeTx) error {
				for i := v * per; i < (v+1)*per; i++ {
					if err := tx.Insert(row(fmt.Sprintf("T%08d", i), "M1", 100, 0, store.StatusInitiated)); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			b.Fatal(err)
		}
	}
	// Two more images for a sample of ids.
	for s := 1; s < 3; s++ {
		_, err := db.Merge(context.Background(), store.MergeMeta{Source: store.Source{Name: fmt.Sprint("u", s)}, SHA256: sha256.Sum256([]byte(fmt.Sprint("u", s)))},
			func(tx *store.MergeTx) error {
				for i := 0; i < n; i += 97 {
					id := fmt.Sprintf("T%08d", i)
					cur, _, err := tx.Current(id)
					if err != nil {
						return err
					}
					if err := tx.Update(cur.Row, row(id, "M1", 100, s, statuses[s])); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("T%08d", (i*97*7919)%n/97*97)
		i++
		h, err := db.TxnHistory(id)
		if err != nil {
			b.Fatal(err)
		}
		if len(h) != 3 {
			b.Fatalf("%s: %d images", id, len(h))
		}
	}
}
