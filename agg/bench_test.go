package agg_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// BenchmarkProcessor measures the stream processor over a raw change feed of
// 1.5M rows: 5 versions of 100k new transactions, then 5 versions each
// updating 100k random existing ones (status changes, 5000 merchants,
// random-looking ids). Each iteration processes the whole feed from an
// untouched copy of the store, 10 versions per trigger.
func BenchmarkProcessor(b *testing.B) {
	src := b.TempDir()
	db, err := agg.Open(src, agg.Config{}, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var ids []string
	statuses := []cdc.Status{cdc.StatusCompleted, cdc.StatusFailed, cdc.StatusRefunded}
	for v := 0; v < 10; v++ {
		rows := make([]cdc.Row, 0, 100_000)
		seen := map[string]bool{}
		for len(rows) < 100_000 {
			var r cdc.Row
			if v < 5 {
				r = cdc.Row{TransactionID: fmt.Sprintf("TXN%016x", rng.Uint64()), UPIID: "u@bank",
					MerchantID: fmt.Sprintf("M%04d", rng.IntN(5000)), Amount: store.Paise(rng.Int64N(1e6)),
					Time: int64(v), Status: cdc.StatusInitiated}
				ids = append(ids, r.TransactionID)
			} else {
				r.TransactionID = ids[rng.IntN(len(ids))]
			}
			if seen[r.TransactionID] {
				continue
			}
			seen[r.TransactionID] = true
			rows = append(rows, r)
		}
		slices.SortFunc(rows, func(a, b cdc.Row) int {
			if a.TransactionID < b.TransactionID {
				return -1
			}
			return 1
		})
		name := fmt.Sprint("v", v)
		_, err := cdc.Merge(context.Background(), db, cdc.MergeMeta{Source: store.Source{Name: name}, SHA256: sha256.Sum256([]byte(name))},
			func(tx *cdc.MergeTx) error {
				for _, r := range rows {
					if v < 5 {
						if err := tx.Insert(r); err != nil {
							return err
						}
						continue
					}
					cur, _, err := tx.Current(r.TransactionID)
					if err != nil {
						return err
					}
					next := cur.Row
					next.Status, next.Time = statuses[rng.IntN(3)], int64(v)
					if err := tx.Update(cur.Row, next); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			b.Fatal(err)
		}
	}
	db.Close()

	b.ReportAllocs()
	b.ResetTimer()
	var rows int64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		copyFile(b, filepath.Join(src, store.FileName), filepath.Join(dir, store.FileName))
		db, err := agg.Open(dir, agg.Config{}, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		batches, err := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 10}).RunAvailableNow(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, r := range batches {
			rows += r.ChangeRows
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "changerows/s")
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}
