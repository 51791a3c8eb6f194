package delta_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/examples"
	"github.com/upicdc/upicdc/store"
)

// Export the seed's three batches as Delta tables and read the aggregated
// table back, as Spark would.
func ExampleExport() {
	tmp, _ := os.MkdirTemp("", "delta-example-")
	defer os.RemoveAll(tmp)
	db, err := agg.Open(filepath.Join(tmp, "data"), agg.Config{}, store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	for _, name := range examples.SeedBatches() {
		data, _ := fs.ReadFile(examples.Batches, name)
		file := filepath.Join(tmp, path.Base(name))
		_ = os.WriteFile(file, data, 0o600)
		if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(ctx, file); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := agg.NewProcessor(db, agg.Options{}).RunAvailableNow(ctx); err != nil {
			fmt.Println(err)
			return
		}
	}
	out := filepath.Join(tmp, "export")
	if _, err := delta.Export(ctx, db, out, delta.Options{}); err != nil {
		fmt.Println(err)
		return
	}

	tbl, err := delta.Open(filepath.Join(out, agg.TotalsTable))
	if err != nil {
		fmt.Println(err)
		return
	}
	snap, err := tbl.Snapshot(-1) // the latest version
	if err != nil {
		fmt.Println(err)
		return
	}
	var lines []string
	_ = snap.Rows(ctx, func(r delta.Row) error {
		lines = append(lines, fmt.Sprintf("%s %s %s %s", r[0], delta.FormatValue(r[1]), delta.FormatValue(r[2]), delta.FormatValue(r[3])))
		return nil
	})
	slices.Sort(lines)
	fmt.Println("version", snap.Version)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// version 3
	// M001 500.00 -500.00 0.00
	// M002 0.00 0.00 0.00
	// M003 1500.00 0.00 1500.00
	// M004 0.00 0.00 0.00
}
