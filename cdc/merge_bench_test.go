package cdc_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/cdctest"
)

// BenchmarkMerge MERGEs 100k-row files (half updates of existing rows, half
// new rows) into a table that starts at 1M (and, with UPICDC_BENCH_10M=1,
// 10M) rows, with random ids (worst case) and time-ordered ids (UPI-like).
// rows/s is the number that matters.
func BenchmarkMerge(b *testing.B) {
	sizes := []int{1_000_000}
	if os.Getenv("UPICDC_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, size := range sizes {
		for _, ordered := range []bool{false, true} {
			ids := map[bool]string{false: "random", true: "ordered"}[ordered]
			b.Run(fmt.Sprintf("table=%dk/file=100k/ids=%s", size/1000, ids), func(b *testing.B) {
				benchMerge(b, size, ordered)
			})
		}
	}
}

func benchMerge(b *testing.B, size int, ordered bool) {
	db, w := cdctest.Table(b, size, ordered)
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for b.Loop() {
		b.StopTimer()
		batch := w.Batch(100_000, 0.5)
		b.StartTimer()
		if _, err := m.Merge(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		rows += len(batch.Rows)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
