package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// BenchmarkTxnHistory looks up one row's history (3 images) in a
// table of 1M transactions.
func BenchmarkTxnHistory(b *testing.B) {
	db := open(b, b.TempDir())
	const n, per = 1_000_000, 100_000
	states := []string{"new", "done", "void"}
	for v := 0; v < n/per; v++ {
		_, err := db.Write(context.Background(), "items", store.WriteMeta{Operation: "WRITE"},
			func(tx *store.TableWriter) error {
				for i := v * per; i < (v+1)*per; i++ {
					if err := tx.Insert(row(fmt.Sprintf("T%08d", i), "M1", 100, 0, "new")); err != nil {
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
		_, err := db.Write(context.Background(), "items", store.WriteMeta{Operation: "WRITE"},
			func(tx *store.TableWriter) error {
				for i := 0; i < n; i += 97 {
					id := fmt.Sprintf("T%08d", i)
					cur, _, err := tx.Get(store.Row{store.S(id)})
					if err != nil {
						return err
					}
					if err := tx.Update(cur.Row, row(id, "M1", 100, s, states[s])); err != nil {
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
		h, err := db.KeyHistory("items", store.Row{store.S(id)})
		if err != nil {
			b.Fatal(err)
		}
		if len(h) != 3 {
			b.Fatalf("%s: %d images", id, len(h))
		}
	}
}
