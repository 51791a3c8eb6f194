package delta_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/cdctest"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/store"
)

var rawOnly = delta.Options{Tables: []store.Table{store.RawTable}}

// BenchmarkExportFull exports a raw table built by 100k-row MERGEs into an
// empty directory: every version's data, change-data and commit files.
// rows/s counts the table's rows.
func BenchmarkExportFull(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if os.Getenv("UPICDC_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("table=%dk", size/1000), func(b *testing.B) {
			db, _ := cdctest.Table(b, size, false)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				b.StartTimer()
				if _, err := delta.Export(context.Background(), db, dir, rawOnly); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkExportIncremental exports one new 100k-row MERGE (half updates,
// half inserts) of a 1M-row table that was exported before: the time of an
// `upicdc export` run, including rebuilding the key → file map from the
// table's files and the copy-on-write rewrites. rows/s counts the MERGE's
// rows.
func BenchmarkExportIncremental(b *testing.B) {
	for _, ordered := range []bool{false, true} {
		ids := map[bool]string{false: "random", true: "ordered"}[ordered]
		b.Run(fmt.Sprintf("table=1000k/file=100k/ids=%s", ids), func(b *testing.B) {
			db, w := cdctest.Table(b, 1_000_000, ordered)
			dir := b.TempDir()
			if _, err := delta.Export(context.Background(), db, dir, rawOnly); err != nil {
				b.Fatal(err)
			}
			m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
			var rewritten int64
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				if _, err := m.Merge(context.Background(), w.Batch(100_000, 0.5)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := delta.Export(context.Background(), db, dir, rawOnly)
				if err != nil {
					b.Fatal(err)
				}
				rewritten += res[0].RowsWritten
			}
			b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(rewritten)/float64(b.N), "data-rows-written/op")
		})
	}
}

// BenchmarkExportNothingNew is an export run with no new version on a
// 1M-row table: the fixed cost of a run (reading the log and the key column
// of every live file to rebuild the key → file map).
func BenchmarkExportNothingNew(b *testing.B) {
	db, _ := cdctest.Table(b, 1_000_000, false)
	dir := b.TempDir()
	if _, err := delta.Export(context.Background(), db, dir, rawOnly); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := delta.Export(context.Background(), db, dir, rawOnly); err != nil {
			b.Fatal(err)
		}
	}
}
