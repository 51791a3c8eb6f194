package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
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
// prefetched, and an empty announcement is no prefetch at all.
func TestPrefetchMisuse(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Tables: []TableDef{recItems}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	none := func(func(Row) bool) {}
	one := func(yield func(Row) bool) { yield(Row{S("a")}) }
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
