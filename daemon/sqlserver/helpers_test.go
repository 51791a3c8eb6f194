package sqlserver_test

import (
	"context"
	"io/fs"
	"path"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/examples"
	"github.com/upicdc/upicdc/store"
)

// seedStore is a store holding the seed's three batches, processed after
// each: raw versions 1..3 and the derived tables' versions 1..3.
func seedStore(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	zone, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agg.Config{WindowSizes: []string{"1d", "1w"}, Zone: zone}
	db := aggtest.Open(t, t.TempDir(), cfg)
	m := cdc.NewMerger(db, cdc.ParseOptions{Location: time.UTC}, nil)
	p := agg.NewProcessor(db, agg.Options{Stream: "merchant_aggregates", MaxVersionsPerTrigger: 100, Tables: cfg})
	for _, name := range examples.SeedBatches() {
		data, err := fs.ReadFile(examples.Batches, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.IngestData(ctx, path.Base(name), data); err != nil {
			t.Fatal(err)
		}
		if _, err := p.RunAvailableNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
