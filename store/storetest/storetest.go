// Package storetest opens real stores for tests: a bbolt file in a test's
// temp dir whose integrity is checked when the test ends, as bbolt's own
// test helpers do.
package storetest

import (
	"context"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// Open opens (creating) the store in dir with tables declared and, in
// t.Cleanup, runs bbolt's consistency check and closes it.
func Open(t testing.TB, dir string, tables ...store.TableDef) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{Tables: tables})
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
