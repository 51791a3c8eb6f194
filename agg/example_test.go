package agg_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// Example embeds the engine: MERGE a batch file into the raw table, run the
// stream processor, read the merchant aggregates.
func Example() {
	dir, err := os.MkdirTemp("", "upicdc-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := agg.Open(filepath.Join(dir, "data"), agg.Config{}, store.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	batch := filepath.Join(dir, "batch.csv")
	csv := "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" +
		"T001,upi1@bank,M001,500.00,2024-12-21 10:15:00,completed\n" +
		"T002,upi2@bank,M001,120.50,2024-12-21 10:20:00,refunded\n"
	if err := os.WriteFile(batch, []byte(csv), 0o600); err != nil {
		panic(err)
	}
	ctx := context.Background()
	res, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(ctx, batch)
	if err != nil {
		panic(err)
	}
	fmt.Println("raw version", res.Version, "inserted", res.Stats.Inserted)

	if _, err := agg.NewProcessor(db, agg.Options{}).RunAvailableNow(ctx); err != nil {
		panic(err)
	}
	rows, version, err := agg.Totals(context.Background(), db, -1)
	if err != nil {
		panic(err)
	}
	for _, a := range rows {
		fmt.Println("aggregates version", version, a.MerchantID, a.TotalSales, a.TotalRefunds, a.NetSales)
	}
	// Output:
	// raw version 1 inserted 2
	// aggregates version 1 M001 500 -120.50 379.50
}
