package store

import (
	"context"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// benchFeedStore is a table of 200k time-ordered transactions written over
// 20 commits, each inserting 6k and updating 4k recent ones (the status
// updates UPI files carry), in the old or the new record form.
func benchFeedStore(b *testing.B, oldForm bool) *DB {
	b.Helper()
	db, err := Open(b.TempDir(), Options{Tables: []TableDef{recItems}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	states := []string{"new", "done", "void"}
	next := 0
	for v := 1; v <= 20; v++ {
		_, err := db.Write(context.Background(), "items", WriteMeta{}, func(w *TableWriter) error {
			w.oldForm = oldForm
			if next > 0 {
				for i := max(0, next-8000); i < next; i += 2 {
					key := Row{S(fmt.Sprintf("T%08d", i))}
					cur, _, err := w.Get(key)
					if err != nil {
						return err
					}
					r := Row{key[0], cur.Row[1], cur.Row[2], I(int64(v)), S(states[v%3]), Null()}
					if err := w.Update(cur.Row, r); err != nil {
						return err
					}
				}
			}
			for i := next; i < next+6000; i++ {
				r := Row{S(fmt.Sprintf("T%08d", i)), S(fmt.Sprintf("user%d@bank", i*7919%1_000_000)), M(Paise(i % 100_000)), I(int64(v)), S("new"), Null()}
				if err := w.Insert(r); err != nil {
					return err
				}
			}
			next += 6000
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkFeed reads the whole change feed (200k inserts, 76k updates):
// with preimages (Changes: the new form reads each update's previous
// record) and without (the stream processor).
func BenchmarkFeed(b *testing.B) {
	for _, form := range []string{"old", "new"} {
		db := benchFeedStore(b, form == "old")
		tab, err := db.table("items")
		if err != nil {
			b.Fatal(err)
		}
		for _, opts := range []feedOpts{{reuse: true}, {reuse: true, noPreimages: true}} {
			name := fmt.Sprintf("%s/preimages=%v", form, !opts.noPreimages)
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					n := 0
					err := db.view("items", func(tb *bolt.Bucket, _ *table) error {
						return tab.feed(context.Background(), tb, 0, -1, opts, func(Change) error {
							n++
							return nil
						})
					})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(n), "changes/op")
				}
			})
		}
		b.Run(form+"/history", func(b *testing.B) {
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("T%08d", 110_000+(i*7919)%8000/2*2)
				i++
				if _, err := db.KeyHistory("items", Row{S(id)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
