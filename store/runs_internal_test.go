package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// runsPair is the same workload written to a store without runs (the
// reference) and to one whose commits write runs (the store under test).
type runsPair struct {
	t        *testing.T
	ref, dut *DB
	rng      *rand.Rand
	versions int64
	// prefetch, when set, gives the keys the store under test announces
	// with Prefetch before a commit of ids (see TestPrefetch).
	prefetch func(ids []string) []string
}

// clock is a store clock that moves 1s a call, the same in both stores.
func clock() func() time.Time {
	at := time.UnixMilli(1_750_000_000_000)
	return func() time.Time {
		at = at.Add(time.Second)
		return at
	}
}

func openRunsPair(t *testing.T, p runPolicy) *runsPair {
	t.Helper()
	rp := &runsPair{t: t, rng: rand.New(rand.NewPCG(3, 5))}
	var err error
	rp.ref, err = Open(t.TempDir(), Options{Tables: []TableDef{recItems}, RunMinKeys: -1, Now: clock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.ref.Close(); rp.dut.Close() })
	rp.dut, err = Open(t.TempDir(), Options{Tables: []TableDef{recItems}, Now: clock()})
	if err != nil {
		t.Fatal(err)
	}
	rp.dut.runs = p
	return rp
}

// reopen closes and opens both stores (an open reads the clock too).
func (rp *runsPair) reopen() {
	rp.t.Helper()
	p := rp.dut.runs
	for _, db := range []**DB{&rp.ref, &rp.dut} {
		path := filepath.Dir((*db).Path())
		opts := Options{Tables: []TableDef{recItems}, RunMinKeys: (*db).runs.minKeys, Now: (*db).now}
		if err := (*db).Close(); err != nil {
			rp.t.Fatal(err)
		}
		var err error
		if *db, err = Open(path, opts); err != nil {
			rp.t.Fatal(err)
		}
	}
	rp.dut.runs = p
}

// commit writes one commit of random keys to both stores: inserts, updates
// (some several times in the commit), deletes and re-inserts.
func (rp *runsPair) commit() {
	rp.t.Helper()
	keys := map[string]int{} // key → steps
	for range 250 {
		keys[rp.key(rp.rng.IntN(3000))] = 1 + rp.rng.IntN(3)
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range keys {
			if !yield(id) {
				return
			}
		}
	})
	seed := rp.rng.Uint64()
	for _, db := range []*DB{rp.ref, rp.dut} {
		rng := rand.New(rand.NewPCG(seed, 1))
		_, err := db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
			if db == rp.dut && rp.prefetch != nil {
				if err := w.Prefetch(func(yield func(Row) bool) {
					for _, k := range rp.prefetch(ids) {
						if !yield(Row{S(k)}) {
							return
						}
					}
				}); err != nil {
					return err
				}
			}
			for _, id := range ids {
				key := Row{S(id)}
				for step := range keys[id] {
					cur, found, err := w.Get(key)
					if err != nil {
						return err
					}
					r := Row{key[0], S(fmt.Sprintf("owner-%d", rng.IntN(50))), M(Paise(rng.IntN(1_000_000))),
						I(int64(1_750_000_000_000_000 + int(rp.versions)*1_000_000 + step)), S("new"), Null()}
					switch {
					case !found || cur.Deleted:
						err = w.Insert(r)
					case rng.IntN(8) == 0:
						err = w.Delete(slices.Clone(cur.Row), rp.versions)
					default:
						_, err = w.Upsert(r)
					}
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			rp.t.Fatalf("commit: %v", err)
		}
	}
	rp.versions++
}

// key is the key of transaction i: random, not in the order of i.
func (rp *runsPair) key(i int) string { return fmt.Sprintf("K%08x", uint32(i)*2654435761) }

// same fails the test unless both stores read alike: the latest rows and
// an older version's, the change feed, and a sample of key histories.
func (rp *runsPair) same(when string) {
	rp.t.Helper()
	ctx := context.Background()
	scan := func(db *DB, version int64) []Row {
		var out []Row
		if _, err := db.Scan(ctx, "items", version, KeyRange{}, func(r Row) error {
			out = append(out, slices.Clone(r))
			return nil
		}); err != nil {
			rp.t.Fatalf("%s: scan at %d: %v", when, version, err)
		}
		return out
	}
	versions := []int64{-1}
	if rp.versions > 1 {
		versions = append(versions, 1+rp.rng.Int64N(rp.versions))
	}
	for _, v := range versions {
		if a, b := scan(rp.ref, v), scan(rp.dut, v); !reflect.DeepEqual(a, b) {
			rp.t.Fatalf("%s: version %d: %d rows with runs, %d without, or they differ", when, v, len(b), len(a))
		}
	}
	feed := func(db *DB) []Change {
		var out []Change
		if err := db.Changes(ctx, "items", 1, -1, func(c Change) error {
			c.Row = slices.Clone(c.Row)
			out = append(out, c)
			return nil
		}); err != nil {
			rp.t.Fatalf("%s: changes: %v", when, err)
		}
		return out
	}
	if a, b := feed(rp.ref), feed(rp.dut); !reflect.DeepEqual(a, b) {
		for i := range min(len(a), len(b)) {
			if !reflect.DeepEqual(a[i], b[i]) {
				rp.t.Fatalf("%s: the change feeds differ at row %d: %v with runs, %v without", when, i, b[i], a[i])
			}
		}
		rp.t.Fatalf("%s: the change feeds differ: %d rows with runs, %d without", when, len(b), len(a))
	}
	for range 30 {
		key := Row{S(rp.key(rp.rng.IntN(3000)))}
		a, errA := rp.ref.KeyHistory("items", key)
		b, errB := rp.dut.KeyHistory("items", key)
		if fmt.Sprint(errA) != fmt.Sprint(errB) || !reflect.DeepEqual(a, b) {
			rp.t.Fatalf("%s: history of %v: %v, %v with runs; %v, %v without", when, key, b, errB, a, errA)
		}
	}
}

// runsOf returns the versions of the table's runs and the sweep's state.
func runsOf(t *testing.T, db *DB) (runs []int64, sweeping bool, mainKeys uint64) {
	t.Helper()
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, "items")
		if err != nil {
			return err
		}
		ix, err := openIndex(tb)
		if err != nil {
			return err
		}
		for _, r := range ix.runs {
			runs = append(runs, r.version)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		sweeping = tb.Bucket(subMeta).Get(keySweep) != nil
		mainKeys = tb.Bucket(subRows).Sequence()
		return nil
	})
	return runs, sweeping, mainKeys
}

// keysOf counts the keys of the reference store's rows tree.
func keysOf(t *testing.T, db *DB) uint64 {
	t.Helper()
	var n int
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		n = tb.Bucket(subRows).Stats().KeyN
		return nil
	})
	return uint64(n)
}

// TestRunsReadAsOneTree: with commits written to runs, every read (rows at
// the latest and older versions, the change feed, key histories) is what
// the same commits give written to the rows tree: while runs pile up, in
// the middle of a sweep, after a reopen there, and once the sweep is done.
func TestRunsReadAsOneTree(t *testing.T) {
	rp := openRunsPair(t, runPolicy{minKeys: 1, share: 0, maxRuns: 1 << 30, stepKeys: 150})
	for i := range 14 {
		rp.commit()
		rp.same(fmt.Sprintf("after commit %d", i+1))
	}
	runs, sweeping, _ := runsOf(t, rp.dut)
	// The first commit, into an empty table, appended its keys, so the
	// second went to the rows tree too; it scattered its new keys.
	if len(runs) != 12 || runs[11] != 3 || sweeping {
		t.Fatalf("runs %v (sweeping %v), want the 12 of versions 3..14", runs, sweeping)
	}

	// One step of a sweep, then a stop (a crash between steps is no more).
	rp.dut.runs.maxRuns = 12
	moved, more, err := rp.dut.sweepStep("items")
	if err != nil || moved != 150 || !more {
		t.Fatalf("sweep step: moved %d, more %v, err %v; want 150 and more", moved, more, err)
	}
	rp.same("after one sweep step")
	rp.reopen()
	rp.same("reopened in the middle of a sweep")
	if _, sweeping, _ := runsOf(t, rp.dut); !sweeping {
		t.Fatal("the sweep's state is gone after a reopen")
	}

	// The next commit writes a run of its own, and finishes the sweep.
	rp.commit()
	rp.same("after the commit that finished the sweep")
	runs, sweeping, mainKeys := runsOf(t, rp.dut)
	if !slices.Equal(runs, []int64{15}) || sweeping {
		t.Fatalf("after the sweep: runs %v (sweeping %v), want only the newest commit's, 15", runs, sweeping)
	}
	if want := keysOf(t, rp.ref) - uint64(len(newKeysOfRun(t, rp.dut, 15))); mainKeys != want {
		t.Errorf("the rows tree counts %d keys, has %d", mainKeys, want)
	}

	// Sweeps at the default share: each commit's run is swept when due.
	rp.dut.runs.share, rp.dut.runs.maxRuns = 8, 16
	for i := range 10 {
		rp.commit()
		rp.same(fmt.Sprintf("default share, commit %d", i+1))
	}
}

// newKeysOfRun returns the keys of run version that the rows tree lacks.
func newKeysOfRun(t *testing.T, db *DB, version int64) []string {
	t.Helper()
	var out []string
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		main := tb.Bucket(subRows)
		return tb.Bucket(subRuns).Bucket(be64(version)).ForEach(func(k, _ []byte) error {
			if main.Get(k) == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out
}

// TestRunsCountKeysOfAnOlderStore: a store written before the rows tree's
// key count was kept has none (bbolt's sequence 0); the first commit
// counts the keys and the runs start once there are enough.
func TestRunsCountKeysOfAnOlderStore(t *testing.T) {
	rp := openRunsPair(t, runPolicy{minKeys: 2000, share: 8, maxRuns: 16, stepKeys: 1000})
	for range 12 {
		rp.commit()
	}
	if runs, _, _ := runsOf(t, rp.dut); len(runs) != 0 {
		t.Fatalf("runs %v below minKeys", runs)
	}
	if err := rp.dut.bolt.Update(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		return tb.Bucket(subRows).SetSequence(0)
	}); err != nil {
		t.Fatal(err)
	}
	rp.dut.runs.minKeys = int64(keysOf(t, rp.ref)) // reached exactly when counted right
	rp.commit()
	rp.same("after the count")
	if runs, _, _ := runsOf(t, rp.dut); len(runs) != 1 {
		t.Fatalf("runs %v: the commit after the count should have written one", runs)
	}
	if _, _, mainKeys := runsOf(t, rp.dut); int64(mainKeys) != rp.dut.runs.minKeys {
		t.Errorf("counted %d keys, the rows tree has %d", mainKeys, rp.dut.runs.minKeys)
	}
}

// TestBloom: a filter never misses a key it holds and lets few others by.
func TestBloom(t *testing.T) {
	var hashes []uint64
	for i := range 20_000 {
		hashes = append(hashes, keyHash(fmt.Appendf(nil, "TXN%016x", uint64(i)*0x9e3779b97f4a7c15)))
	}
	b := newBloom(hashes)
	for i, h := range hashes {
		if !b.has(h) {
			t.Fatalf("key %d missed", i)
		}
	}
	false_ := 0
	const probes = 100_000
	for i := range probes {
		if b.has(keyHash(fmt.Appendf(nil, "absent-%d", i))) {
			false_++
		}
	}
	if rate := float64(false_) / probes; rate > 0.02 {
		t.Errorf("false positive rate %.4f, want about 0.01", rate)
	}
	if !validBloom(nil).has(1) || !validBloom([]byte{7}).has(1) || !validBloom(b[:len(b)-1]).has(1) {
		t.Error("a missing, short or cut filter must let every key by")
	}
	// Filters are stored: the hash must never change.
	if h := keyHash([]byte("T00000001")); h != 0x38b2bffdfc19c59b {
		t.Errorf("keyHash changed: %#x", h)
	}
}

// TestRunsOnlyForScatteredKeys: commits whose new keys grow with time (as
// UPI RRNs do) write the rows tree, however big it is; once a commit
// scatters its new keys among the tree's, the next ones write runs.
func TestRunsOnlyForScatteredKeys(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Tables: []TableDef{recItems}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.runs = runPolicy{minKeys: 1, share: 0, maxRuns: 100, stepKeys: 100}
	owner := "o"
	write := func(ids ...int) {
		t.Helper()
		slices.Sort(ids)
		if _, err := db.Write(context.Background(), "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
			for _, id := range ids {
				if _, err := w.Upsert(Row{S(fmt.Sprintf("T%08d", id)), S(owner), M(Paise(id)), I(int64(id)), S("new"), Null()}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	next := 0
	for range 5 { // new ids after every existing one, and updates of recent ones
		ids := []int{}
		for i := range 100 {
			ids = append(ids, next+i)
		}
		for i := range 50 {
			ids = append(ids, next-1-i*2)
		}
		if next == 0 {
			ids = ids[:100]
		}
		write(ids...)
		next += 100
	}
	if runs, _, _ := runsOf(t, db); len(runs) != 0 {
		t.Fatalf("time-ordered commits wrote runs %v", runs)
	}
	write(1_000_000, 1_000_001) // appended: still the rows tree
	odd := []int{}
	for i := range 100 {
		odd = append(odd, 2*i*5+1) // new ids among the existing ones
	}
	write(odd...)
	if runs, _, _ := runsOf(t, db); len(runs) != 0 {
		t.Fatalf("runs %v before a commit had scattered its keys", runs)
	}
	owner = "p" // updates
	write(3, 5, 7)
	if runs, _, _ := runsOf(t, db); !slices.Equal(runs, []int64{8}) {
		t.Fatalf("runs %v, want the run of version 8, after the scattered commit 7", runs)
	}
}

// TestSweepTroubles: a sweep that fails (here on a damaged sweep state) is
// logged and leaves the commit that made it due standing; one whose
// context is done stops between steps and the next commit finishes it; a
// runs bucket holding something that is no run is reported as damage.
func TestSweepTroubles(t *testing.T) {
	var logged strings.Builder
	rp := openRunsPair(t, runPolicy{minKeys: 1, share: 0, maxRuns: 1 << 30, stepKeys: 100})
	rp.dut.log = slog.New(slog.NewTextHandler(&logged, nil))
	for range 6 {
		rp.commit()
	}
	rp.dut.runs.maxRuns = 4 // due
	if err := rp.dut.bolt.Update(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		return tb.Bucket(subMeta).Put(keySweep, []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	rp.commit()
	rp.same("after a commit whose sweep failed")
	if !strings.Contains(logged.String(), "runs not swept") || !strings.Contains(logged.String(), "sweep state of 3 bytes") {
		t.Errorf("the failed sweep was not logged: %q", logged.String())
	}
	if runs, _, _ := runsOf(t, rp.dut); len(runs) != 5 { // commits 1 and 2 went to the rows tree
		t.Fatalf("runs %v after a failed sweep, want the runs of versions 3..7 kept", runs)
	}

	if err := rp.dut.bolt.Update(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		return tb.Bucket(subMeta).Delete(keySweep)
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rp.dut.sweep(ctx, "items"); err != nil {
		t.Fatal(err)
	}
	if runs, sweeping, _ := runsOf(t, rp.dut); len(runs) != 5 || sweeping {
		t.Fatalf("a sweep with its context done moved something: runs %v, sweeping %v", runs, sweeping)
	}
	rp.commit() // sweeps, now that nothing stops it
	rp.same("after the commit that swept")
	if runs, sweeping, _ := runsOf(t, rp.dut); len(runs) != 0 || sweeping {
		t.Fatalf("runs %v, sweeping %v after a whole sweep", runs, sweeping)
	}

	if err := rp.dut.bolt.Update(func(tx *bolt.Tx) error {
		tb, _ := tableBucket(tx, "items")
		rb, err := tb.CreateBucketIfNotExists(subRuns)
		if err != nil {
			return err
		}
		return rb.Put([]byte("not a run"), []byte("x"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.dut.Scan(context.Background(), "items", -1, KeyRange{}, func(Row) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("scan over a damaged runs bucket: %v, want ErrCorrupt", err)
	}
}
