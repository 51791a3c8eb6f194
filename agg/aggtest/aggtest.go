// Package aggtest holds helpers for tests of the derived tables: a store
// with every table declared, and the seed-shaped rendering of the totals.
package aggtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// Open opens (creating) a store in dir with every table of cfg declared;
// bbolt's check runs when the test ends.
func Open(t testing.TB, dir string, cfg agg.Config) *store.DB {
	t.Helper()
	defs, err := agg.Defs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Open(t, dir, defs...)
}

// AggregateLines renders aggregated_upi_transactions at version (< 0:
// latest) as "M001 500 -500 0" lines: merchant_id, total_sales,
// total_refunds, net_sales, the columns of the seed's tables.
func AggregateLines(t storetest.Fataler, db *store.DB, version int64) string {
	t.Helper()
	rows, _, err := agg.Totals(context.Background(), db, version)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, a := range rows {
		fmt.Fprintf(&b, "%s %s %s %s\n", a.MerchantID, a.TotalSales, a.TotalRefunds, a.NetSales)
	}
	return b.String()
}
