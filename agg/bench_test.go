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
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// BenchmarkProcessor measures the stream processor over a raw change feed of
// 1.5M rows: 5 versions of 100k new transactions, then 5 versions each
// updating 100k random existing ones (status changes; 10,000 merchants;
// random-looking ids; transaction times spread over the 10 hours the
// versions cover, updates later than their inserts). Each iteration
// processes the whole feed from an untouched copy of the store, 10
// versions per trigger, with the window sizes of the sub-benchmark.
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
					MerchantID: fmt.Sprintf("M%05d", rng.IntN(10_000)), Amount: store.Paise(rng.Int64N(1e6)),
					Time: benchTime(v, rng), Status: cdc.StatusInitiated}
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
					next.Status, next.Time = statuses[rng.IntN(3)], max(cur.Row.Time, benchTime(v, rng))
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

	threeRules := []agg.Rule{
		{Name: "high_refund_ratio", Window: "1d", When: "refunds_count >= 3 && refund_ratio > 0.2"},
		{Name: "weekly_refunds", Window: "1w", When: "refunds_count >= 10"},
		{Name: "big_day", Window: "1d", When: "net_sales > 50000.0 && sales_count >= 5"},
	}
	for _, bc := range []struct {
		name  string
		sizes []string
		rules []agg.Rule
	}{
		{"windows=none", []string{}, nil},
		{"windows=1d,1w", []string{"1d", "1w"}, nil},
		{"windows=1d,1w/rules=3", []string{"1d", "1w"}, threeRules},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := agg.Config{WindowSizes: bc.sizes, Rules: bc.rules}
			b.ReportAllocs()
			var rows int64
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				copyFile(b, filepath.Join(src, store.FileName), filepath.Join(dir, store.FileName))
				db, err := agg.Open(dir, cfg, store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				p := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 10, Tables: cfg})
				if _, err := p.Prepare(context.Background()); err != nil { // the copy was made with the default sizes
					b.Fatal(err)
				}
				b.StartTimer()
				cpu0 := cpuTime(b)
				batches, err := p.RunAvailableNow(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime(b) - cpu0
				b.StopTimer()
				for _, r := range batches {
					rows += r.ChangeRows
				}
				db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "changerows/s")
			// Per CPU second (all threads, the garbage collector's too): on
			// a shared machine it moves far less than the wall clock.
			b.ReportMetric(float64(rows)/cpu.Seconds(), "changerows/cpu-s")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchTime is a transaction_time in the hour of version v of the
// benchmark's feed.
func benchTime(v int, rng *rand.Rand) int64 {
	base := time.Date(2024, 12, 21, 8, 0, 0, 0, time.UTC).Add(time.Duration(v) * time.Hour)
	return base.Add(time.Duration(rng.Int64N(int64(time.Hour)))).UnixMicro()
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
