// Package storetest opens real stores for tests: a bbolt file in a test's
// temp dir whose integrity is checked when the test ends, as bbolt's own
// test helpers do.
package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// Open opens (creating) the store in dir and, in t.Cleanup, runs bbolt's
// consistency check and closes it.
func Open(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(context.Background()); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// Fataler is what testing.TB and rapid's *T have in common.
type Fataler interface {
	Helper()
	Fatal(args ...any)
}

// AggregateLines renders the aggregated table at version (< 0: latest) as
// "M001 500 -500 0" lines: merchant_id, total_sales, total_refunds,
// net_sales, the columns of the seed's tables.
func AggregateLines(t Fataler, db *store.DB, version int64) string {
	t.Helper()
	rows, _, err := db.Aggregates(version)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, a := range rows {
		fmt.Fprintf(&b, "%s %s %s %s\n", a.MerchantID, a.TotalSales, a.TotalRefunds, a.NetSales)
	}
	return b.String()
}
