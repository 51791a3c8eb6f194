package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// TestSourceFeedAndEarlier: SourceFeed reads a version range without
// preimages, stops at a version boundary once MaxRows is reached, leaves
// the columns it was not asked for zero; Earlier walks a record's key back
// through its earlier images, newest first, down to the first, or to the
// retention horizon; a reader that stops early stops the walk.
func TestSourceFeedAndEarlier(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "v1", row("A", "o1", 100, 1, "new"), row("B", "o1", 200, 1, "new"))
	merge(t, db, "v2", row("A", "o2", 100, 2, "done"))
	merge(t, db, "v3", row("A", "o3", 100, 3, "void"), row("C", "o1", 300, 3, "new"))

	type seen struct{ feed, earlier []string }
	run := func(o store.FeedOptions, stopAfter int) (seen, int64, int64) {
		var s seen
		var last, n int64
		_, _, err := db.Process(context.Background(), "feedtest", "items", func(tx *store.ProcessTx) error {
			var err error
			last, n, err = tx.SourceFeed(o, func(r *store.FeedRecord) error {
				s.feed = append(s.feed, fmt.Sprintf("%d:%s:%s/%s/%d", r.Version, r.Type, r.Row[0].Str, r.Row[1].Str, r.Row[2].Int))
				if !r.HasEarlier() {
					return nil
				}
				k := 0
				_, err := tx.Earlier(r, func(ct store.ChangeType, row store.Row) (bool, error) {
					s.earlier = append(s.earlier, fmt.Sprintf("%s<-%s:%q/%s", r.Row[0].Str, ct, row[0].Str, row[1].Str))
					k++
					return stopAfter == 0 || k < stopAfter, nil
				})
				return err
			})
			return err // no Commit: nothing is written
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, last, n
	}

	s, last, n := run(store.FeedOptions{From: 3, To: 3}, 0)
	if want := []string{"3:update_postimage:A/o3/100", "3:insert:C/o1/300"}; !slices.Equal(s.feed, want) {
		t.Errorf("feed of version 3: %v, want %v", s.feed, want)
	}
	// Earlier's rows leave the key column zero (it is the record's).
	if want := []string{`A<-update_postimage:""/o2`, `A<-insert:""/o1`}; !slices.Equal(s.earlier, want) {
		t.Errorf("A's earlier images: %v, want %v", s.earlier, want)
	}
	if last != 3 || n != 3 {
		t.Errorf("version 3: last %d, %d change rows (a preimage counted); want 3, 3", last, n)
	}

	s, _, _ = run(store.FeedOptions{From: 3, To: 3}, 1)
	if want := []string{`A<-update_postimage:""/o2`}; !slices.Equal(s.earlier, want) {
		t.Errorf("a walk stopped after one image: %v", s.earlier)
	}

	// Two rows by version 1 reach MaxRows 2: the feed ends there.
	s, last, n = run(store.FeedOptions{From: 1, To: 3, MaxRows: 2}, 0)
	if last != 1 || n != 2 || len(s.feed) != 2 {
		t.Errorf("MaxRows 2: last %d, %d rows, feed %v; want version 1, 2 rows", last, n, s.feed)
	}
	// Version 2 alone (2 change rows) is more than MaxRows 1: still whole.
	_, last, n = run(store.FeedOptions{From: 2, To: 3, MaxRows: 1}, 0)
	if last != 2 || n != 2 {
		t.Errorf("MaxRows 1 from version 2: last %d, %d rows; want 2, 2", last, n)
	}

	// Columns: only id and amount are decoded.
	s, _, _ = run(store.FeedOptions{From: 1, To: 1, Columns: []string{"id", "amount"}}, 0)
	if want := []string{"1:insert:A//100", "1:insert:B//200"}; !slices.Equal(s.feed, want) {
		t.Errorf("feed with columns id, amount: %v, want %v", s.feed, want)
	}
	if _, _, err := db.Process(context.Background(), "feedtest", "items", func(tx *store.ProcessTx) error {
		_, _, err := tx.SourceFeed(store.FeedOptions{From: 1, To: 1, Columns: []string{"nope"}}, func(*store.FeedRecord) error { return nil })
		return err
	}); err == nil {
		t.Error("an unknown column was accepted")
	}

	// After a vacuum to version 2, A's history past its version-3 record
	// is gone: the walk reports the horizon instead of an image, and
	// there is no baseline (no stream has folded one).
	if _, err := db.Vacuum(context.Background(), store.VacuumOptions{Policy: store.Retention{Versions: 1}}); err != nil {
		t.Fatal(err)
	}
	walks := 0
	if _, _, err := db.Process(context.Background(), "feedtest", "items", func(tx *store.ProcessTx) error {
		_, _, err := tx.SourceFeed(store.FeedOptions{From: 3, To: 3}, func(r *store.FeedRecord) error {
			if !r.HasEarlier() {
				return nil
			}
			walks++
			images := 0
			horizon, err := tx.Earlier(r, func(store.ChangeType, store.Row) (bool, error) { images++; return true, nil })
			if err != nil || !horizon || images != 0 {
				t.Errorf("walk past the horizon: horizon %v, %d images, err %v; want the horizon at once", horizon, images, err)
			}
			if v := tx.BaselineValue([]byte("A")); v != nil {
				t.Errorf("baseline of A: %q, want none", v)
			}
			return nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if walks != 1 {
		t.Errorf("%d walks after the vacuum, want A's one", walks)
	}
}
