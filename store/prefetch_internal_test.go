package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPrefetch: a commit whose keys were looked up ahead by Prefetch
// writes what the same commit writes without: with runs and without, for
// announced lists that skip keys the commit writes, add keys it does not
// (present and absent), repeat keys, and come out of order.
func TestPrefetch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy runPolicy
	}{
		{"runs", runPolicy{minKeys: 1, share: 8, maxRuns: 4, stepKeys: 150}},
		{"rows tree", runPolicy{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := openRunsPair(t, tc.policy)
			shapes := rand.New(rand.NewPCG(7, 11))
			rp.prefetch = func(ids []string) []string {
				var out []string
				for i, id := range ids {
					switch shapes.IntN(10) {
					case 0: // not announced: the writer looks it up itself
					case 1:
						out = append(out, id, id)
					default:
						out = append(out, id)
					}
					if i%5 == 0 {
						out = append(out, rp.key(shapes.IntN(4000))) // some exist, some never
					}
				}
				if shapes.IntN(3) == 0 {
					shapes.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
				}
				return out
			}
			for i := range 20 {
				rp.commit()
				rp.same(fmt.Sprintf("after commit %d", i+1))
			}
			if runs, _, _ := runsOf(t, rp.dut); tc.policy.minKeys > 0 && len(runs) == 0 {
				t.Fatal("no commit wrote a run: the runs case tests nothing of them")
			}
		})
	}
}

// TestPrefetchMisuse: Prefetch is refused once the writer has put a row or
// prefetched, and an empty announcement, or one into an empty table, is no
// prefetch at all.
func TestPrefetchMisuse(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Tables: []TableDef{recItems}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	none := func(func(Row) bool) {}
	one := func(yield func(Row) bool) { yield(Row{S("a")}) }
	_, err = db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
		if err := w.Prefetch(one); err != nil || w.pre != nil {
			return fmt.Errorf("prefetch into an empty table: %v, prefetcher %v", err, w.pre)
		}
		return w.Insert(Row{S("a"), S("o"), M(Paise(1)), I(1), S("new"), Null()})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
		if err := w.Prefetch(none); err != nil || w.pre != nil {
			return fmt.Errorf("empty prefetch: %v, prefetcher %v", err, w.pre)
		}
		if err := w.Prefetch(one); err != nil {
			return err
		}
		if err := w.Prefetch(one); err == nil {
			return fmt.Errorf("a second Prefetch was taken")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
		if err := w.Insert(Row{S("b"), S("o"), M(Paise(1)), I(1), S("new"), Null()}); err != nil {
			return err
		}
		if err := w.Prefetch(one); err == nil {
			return fmt.Errorf("a Prefetch after a put was taken")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPrefetchOnADamagedPage: pages of the rows tree that only the
// prefetcher reads are damaged while the store is open. Its goroutine
// meets them first; the commit must fail with the store's damage error,
// and the process must go on.
func TestPrefetchOnADamagedPage(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Tables: []TableDef{recItems}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := func(i int) Row { return Row{S(fmt.Sprintf("T%08d", i))} }
	const n = 5000
	if _, err := db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
		for i := range n {
			if err := w.Insert(Row{key(i)[0], S("o"), M(Paise(i)), I(1), S("new"), Null()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The rows tree's root is a branch: zero the headers of its children
	// but the last, whose last key the writer reads when it starts.
	var root, pageSize int64
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, "items")
		if err != nil {
			return err
		}
		root, pageSize = int64(tb.Bucket(subRows).Root()), int64(tx.DB().Info().PageSize)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(db.Path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, pageSize)
	if _, err := f.ReadAt(page, root*pageSize); err != nil {
		t.Fatal(err)
	}
	const branchFlag = 0x01
	flags, count := binary.LittleEndian.Uint16(page[8:]), int(binary.LittleEndian.Uint16(page[10:]))
	if flags != branchFlag || count < 3 {
		t.Fatalf("the rows tree's root (page %d) has flags %#x and %d entries: not the tree this test needs", root, flags, count)
	}
	zero := make([]byte, 16)
	for i := range count - 1 {
		child := int64(binary.LittleEndian.Uint64(page[16+16*i+8:]))
		if _, err := f.WriteAt(zero, child*pageSize); err != nil {
			t.Fatal(err)
		}
	}

	_, err = db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
		if err := w.Prefetch(func(yield func(Row) bool) {
			for i := range n {
				if !yield(key(i)) {
					return
				}
			}
		}); err != nil {
			return err
		}
		for i := range n {
			if _, _, err := w.Get(key(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("a prefetching commit over damaged pages: %v, want ErrDamaged", err)
	}
}
