package delta_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/cdctest"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/store"
)

var rawOnly = delta.Options{Tables: []string{cdc.RawTable}}

// benchTable is cdctest.Table on a store with every table declared.
func benchTable(b *testing.B, rows int, ordered bool) (*store.DB, *cdctest.Workload) {
	b.Helper()
	db := aggtest.Open(b, b.TempDir(), agg.Config{})
	w := cdctest.NewWorkload(1, ordered)
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	const step = 100_000
	for done := 0; done < rows; done += step {
		if _, err := m.Merge(context.Background(), w.Batch(min(step, rows-done), 0)); err != nil {
			b.Fatal(err)
		}
	}
	return db, w
}

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
			db, _ := benchTable(b, size, false)
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
			db, w := benchTable(b, 1_000_000, ordered)
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
	db, _ := benchTable(b, 1_000_000, false)
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
