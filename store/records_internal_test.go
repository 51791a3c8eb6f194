package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var recItems = TableDef{Name: "items", Schema: Schema{KeyColumns: 1, Columns: []Column{
	{Name: "id", Type: String},
	{Name: "owner", Type: String},
	{Name: "amount", Type: Money},
	{Name: "at", Type: Timestamp},
	{Name: "state", Type: Enum, Enum: []string{"new", "done", "void"}},
	{Name: "note", Type: String, Nullable: true},
}}}

// recWorkload writes the same commits to a store whatever record form it
// writes: time-ordered ids, most commits updating recent ones (some
// several times in one commit), deletes and re-inserts, and commits big
// enough that a key's records sit in other chunks than the ones they point
// at. oldForm(v) says whether version v is written in the old form.
func recWorkload(t *testing.T, db *DB, versions int, oldForm func(v int) bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	next := 0 // ids 0..next-1 exist (live or deleted)
	states := []string{"new", "done", "void"}
	ctx := context.Background()
	for v := 1; v <= versions; v++ {
		_, err := db.Write(ctx, "items", WriteMeta{Operation: "TEST"}, func(w *TableWriter) error {
			w.oldForm = oldForm(v)
			// Keys to touch, in key order: updates of the newest 3000, then
			// new ones (which sort after every existing id).
			touch := map[int]int{} // id → steps
			for range 1500 {
				if next > 0 {
					touch[next-1-rng.IntN(min(next, 3000))] += 1 + rng.IntN(3)
				}
			}
			fresh := 800 + rng.IntN(400)
			for i := range fresh {
				touch[next+i] = 1 + rng.IntN(2)
			}
			ids := slices.Sorted(func(yield func(int) bool) {
				for id := range touch {
					if !yield(id) {
						return
					}
				}
			})
			for _, id := range ids {
				key := Row{S(fmt.Sprintf("T%08d", id))}
				for step := range touch[id] {
					cur, found, err := w.Get(key)
					if err != nil {
						return err
					}
					r := Row{key[0], S(fmt.Sprintf("owner-%d", rng.IntN(50))), M(Paise(rng.IntN(1_000_000))),
						I(int64(1_750_000_000_000_000 + v*1_000_000 + step)), S(states[rng.IntN(3)]), Null()}
					if rng.IntN(4) == 0 {
						r[5] = S("n")
					}
					switch {
					case !found || cur.Deleted:
						err = w.Insert(r)
					case rng.IntN(15) == 0:
						err = w.Delete(slices.Clone(cur.Row), int64(v))
					default:
						_, err = w.Upsert(r)
					}
					if err != nil {
						return err
					}
				}
			}
			next += fresh
			return nil
		})
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
}

func recOpen(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.TempDir(), Options{Tables: []TableDef{recItems}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// feedText renders the change feed from..latest, one change a line.
func feedText(t *testing.T, db *DB, from int64) []string {
	t.Helper()
	var out []string
	err := db.Changes(context.Background(), "items", from, -1, func(c Change) error {
		out = append(out, fmt.Sprintf("%d %s %v", c.Version, c.Type, c.Row))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rowsText renders the table's current rows, one a line.
func rowsText(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	if _, err := db.Scan(context.Background(), "items", -1, KeyRange{}, func(r Row) error {
		out = append(out, fmt.Sprint(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPreimages: every update_preimage is the key's previous image in the
// feed itself (the last insert, postimage or delete of the key before it),
// and comes right before its postimage.
func checkPreimages(t *testing.T, db *DB, from int64, before map[string]Row) int {
	t.Helper()
	last := map[string]Row{}
	for k, r := range before {
		last[k] = r
	}
	var pre Row
	n := 0
	err := db.Changes(context.Background(), "items", from, -1, func(c Change) error {
		k := c.Row[0].Str
		switch c.Type {
		case UpdatePreimage:
			if pre != nil {
				return fmt.Errorf("version %d: two preimages in a row", c.Version)
			}
			want, ok := last[k]
			if !ok {
				return fmt.Errorf("version %d key %s: preimage with no previous image", c.Version, k)
			}
			if !rowsEqual(c.Row, want) {
				return fmt.Errorf("version %d key %s: preimage %v, previous image %v", c.Version, k, c.Row, want)
			}
			pre = slices.Clone(c.Row)
			n++
			return nil
		case UpdatePostimage:
			if pre == nil || pre[0].Str != k {
				return fmt.Errorf("version %d key %s: postimage without its preimage", c.Version, k)
			}
		default:
			if pre != nil {
				return fmt.Errorf("version %d key %s: %s after a preimage", c.Version, k, c.Type)
			}
		}
		pre = nil
		last[k] = slices.Clone(c.Row)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func cdfBytes(t *testing.T, db *DB) int64 {
	t.Helper()
	var n int64
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTables).Bucket([]byte("items")).Bucket(subCDF).ForEach(func(_, v []byte) error {
			n += int64(len(v))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func historyText(t *testing.T, db *DB, ids int) []string {
	t.Helper()
	var out []string
	for id := 0; id < ids; id += 7 {
		h, err := db.KeyHistory("items", Row{S(fmt.Sprintf("T%08d", id))})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, rv := range h {
			rv.Timestamp = 0 // each store's own commit time
			out = append(out, fmt.Sprint(rv))
		}
	}
	return out
}

// TestRecordFormsReadAlike: a store written in the old record form (full
// update_preimage records, as the previous release wrote), one written in
// the new form (preimages read from the previous image) and one that
// switched forms half way (an old store a new release writes to) read the
// same: change feed (preimages included), every version, row histories.
// The new form's change feed is smaller.
func TestRecordFormsReadAlike(t *testing.T) {
	const versions = 8
	forms := map[string]func(int) bool{
		"old":   func(int) bool { return true },
		"new":   func(int) bool { return false },
		"mixed": func(v int) bool { return v <= versions/2 },
	}
	dbs := map[string]*DB{}
	for name, f := range forms {
		dbs[name] = recOpen(t)
		recWorkload(t, dbs[name], versions, f)
	}
	want := feedText(t, dbs["old"], 0)
	if len(want) < 20000 {
		t.Fatalf("workload too small: %d changes", len(want))
	}
	for _, name := range []string{"new", "mixed"} {
		if got := feedText(t, dbs[name], 0); !slices.Equal(got, want) {
			t.Errorf("%s form: change feed differs from the old form's (%d vs %d changes)", name, len(got), len(want))
		}
		for v := int64(0); v <= versions; v++ {
			if a, b := scanAll(t, dbs[name], v), scanAll(t, dbs["old"], v); !slices.Equal(a, b) {
				t.Errorf("%s form: table at version %d differs", name, v)
			}
		}
		if a, b := historyText(t, dbs[name], 9000), historyText(t, dbs["old"], 9000); !slices.Equal(a, b) {
			t.Errorf("%s form: key histories differ", name)
		}
	}
	for name, db := range dbs {
		if n := checkPreimages(t, db, 0, nil); n < 5000 {
			t.Errorf("%s form: %d preimages checked", name, n)
		}
		if err := db.Check(context.Background()); err != nil {
			t.Errorf("%s form: %v", name, err)
		}
	}
	oldB, newB := cdfBytes(t, dbs["old"]), cdfBytes(t, dbs["new"])
	t.Logf("change feed: old form %d bytes, new form %d (%.0f%%)", oldB, newB, 100*float64(newB)/float64(oldB))
	if newB >= oldB*3/4 {
		t.Errorf("new form's change feed is %d bytes, old form's %d: want under 3/4", newB, oldB)
	}
}

func scanAll(t *testing.T, db *DB, v int64) []string {
	t.Helper()
	var out []string
	if _, err := db.Scan(context.Background(), "items", v, KeyRange{}, func(r Row) error {
		out = append(out, fmt.Sprint(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPreimagesAfterVacuum: once a vacuum removed the change feed of the
// first versions, an update whose previous image sat in a removed chunk
// still reads its preimage (from the image kept at the horizon), in both
// record forms, and the feed after the horizon is what it was before the
// vacuum.
func TestPreimagesAfterVacuum(t *testing.T) {
	for _, form := range []string{"old", "new", "mixed"} {
		t.Run(form, func(t *testing.T) {
			db := recOpen(t)
			recWorkload(t, db, 4, func(v int) bool { return form == "old" || form == "mixed" && v <= 2 })
			// The images as of version 3, for the check below.
			at3 := map[string]Row{}
			if _, err := db.Scan(context.Background(), "items", 3, KeyRange{}, func(r Row) error {
				at3[r[0].Str] = slices.Clone(r)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// Keys deleted as of version 3: their last image is the delete's
			// (a re-insert follows it).
			live := maps.Clone(at3)
			if err := db.Changes(context.Background(), "items", 0, 3, func(c Change) error {
				if _, ok := live[c.Row[0].Str]; !ok && c.Type == Delete {
					at3[c.Row[0].Str] = slices.Clone(c.Row)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			before := feedText(t, db, 4)
			res, err := db.Vacuum(context.Background(), VacuumOptions{Policy: Retention{Versions: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].To != 3 || res[0].BaseImages == 0 {
				t.Fatalf("vacuum: %+v", res[0])
			}
			if after := feedText(t, db, 4); !slices.Equal(after, before) {
				t.Fatalf("feed of version 4 changed by the vacuum")
			}
			if n := checkPreimages(t, db, 4, at3); n < 1000 {
				t.Errorf("%d preimages checked", n)
			}
			// Writing after the vacuum: an update of a key last changed at or
			// below the horizon keeps its previous image at the horizon.
			recWorkload(t, db, 1, func(int) bool { return form == "old" })
			at4 := map[string]Row{}
			if _, err := db.Scan(context.Background(), "items", 4, KeyRange{}, func(r Row) error {
				at4[r[0].Str] = slices.Clone(r)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			live4 := maps.Clone(at4)
			if err := db.Changes(context.Background(), "items", 4, 4, func(c Change) error {
				if _, ok := live4[c.Row[0].Str]; !ok && c.Type == Delete {
					at4[c.Row[0].Str] = slices.Clone(c.Row)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for k, r := range at3 {
				if _, ok := at4[k]; !ok {
					at4[k] = r
				}
			}
			if n := checkPreimages(t, db, 5, at4); n == 0 {
				t.Error("no preimage after the vacuum")
			}
			if err := db.Check(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestPreimageThatIsNotThePreviousImage: an Update whose before is not the
// key's previous image (no caller of the store does this) keeps the before
// it was given, written out in full.
func TestPreimageThatIsNotThePreviousImage(t *testing.T) {
	db := recOpen(t)
	ctx := context.Background()
	a := Row{S("k"), S("o"), M(1), I(1), S("new"), Null()}
	b := Row{S("k"), S("o"), M(2), I(2), S("done"), Null()}
	other := Row{S("k"), S("x"), M(9), I(9), S("void"), S("?")}
	if _, err := db.Write(ctx, "items", WriteMeta{}, func(w *TableWriter) error { return w.Insert(a) }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write(ctx, "items", WriteMeta{}, func(w *TableWriter) error {
		if _, _, err := w.Get(a); err != nil {
			return err
		}
		return w.Update(other, b)
	}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(feedText(t, db, 2), "\n")
	want := strings.Join([]string{"2 update_preimage " + fmt.Sprint(other), "2 update_postimage " + fmt.Sprint(b)}, "\n")
	if got != want {
		t.Errorf("feed:\n%s\nwant:\n%s", got, want)
	}
}

// TestFeedWithoutPreimages: a reader that leaves preimages out (the stream
// processor, a baseline fold) gets every other change, in both forms,
// without reading a previous image.
func TestFeedWithoutPreimages(t *testing.T) {
	for _, old := range []bool{true, false} {
		db := recOpen(t)
		recWorkload(t, db, 3, func(int) bool { return old })
		var want []string
		for _, line := range feedText(t, db, 0) {
			if !strings.Contains(line, " update_preimage ") {
				want = append(want, line)
			}
		}
		var got []string
		err := db.bolt.View(func(tx *bolt.Tx) error {
			tb, err := tableBucket(tx, "items")
			if err != nil {
				return err
			}
			tab, err := db.table("items")
			if err != nil {
				return err
			}
			return tab.feed(context.Background(), tb, 0, -1, feedOpts{reuse: true, noPreimages: true}, func(c Change) error {
				got = append(got, fmt.Sprintf("%d %s %v", c.Version, c.Type, c.Row))
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("old form %v: %d changes without preimages, want %d", old, len(got), len(want))
		}
	}
}

// TestRecordHeaderSchemaIDs: the one-byte header holds schema ids 0..6;
// larger ids follow it as a varint. Both decode, and a header claiming an
// implied preimage on anything but an update_postimage is refused.
func TestRecordHeaderSchemaIDs(t *testing.T) {
	schemas := make([]Schema, 12)
	for i := range schemas {
		schemas[i] = recItems.Schema
	}
	tab := &table{name: "items", schemas: schemas}
	tab.proj = make([][]int, len(schemas))
	for i := range tab.proj {
		tab.proj[i] = []int{0, 1, 2, 3, 4, 5}
	}
	r := Row{S("k"), S("o"), M(5), T(time.UnixMicro(7)), S("done"), Null()}
	prev := imageRef{version: 3, chunk: 1, offset: 77}
	for _, id := range []uint64{0, 6, 7, 11} {
		var e encoder
		e.record(&schemas[id], id, UpdatePostimage, []byte("k"), r, &prev, true, 0)
		d := decoder{b: e.b}
		img, err := tab.decodeRecord(&d)
		if err != nil || len(d.b) != 0 {
			t.Fatalf("id %d: %v (%d bytes left)", id, err, len(d.b))
		}
		if img.typ != UpdatePostimage || !img.implied || img.prev != prev || !rowsEqual(img.row, r) {
			t.Errorf("id %d: decoded %+v", id, img)
		}
	}
	var e encoder
	e.record(&schemas[0], 0, Insert, []byte("k"), r, nil, true, 0)
	d := decoder{b: e.b}
	if _, err := tab.decodeRecord(&d); !errors.Is(err, ErrCorrupt) {
		t.Errorf("implied preimage on an insert: %v, want ErrCorrupt", err)
	}
}

// TestCompactTimestamps: putTime round-trips every int64, and takes 4 bytes
// 5 bytes for a time of 2025 to the second, 6 to the millisecond (a plain
// varint: 8).
func TestCompactTimestamps(t *testing.T) {
	vals := []int64{0, 1, -1, timeEpoch, timeEpoch + 1, timeEpoch - 1, timeEpoch + 1000, timeEpoch - 1_000_000,
		1<<63 - 1, -1 << 63, 1<<62 + 5, -1<<62 - 5, 1 << 61, -(1 << 61)}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		vals = append(vals, int64(rng.Uint64()), timeEpoch+rng.Int64N(1<<50)-1<<49, (timeEpoch+rng.Int64N(1<<40))/1000*1000)
	}
	for _, v := range vals {
		var e encoder
		e.putTime(v)
		d := decoder{b: e.b}
		if got := d.getTime(); got != v || d.err != nil || len(d.b) != 0 {
			t.Fatalf("putTime(%d) decodes to %d (%v, %d bytes left)", v, got, d.err, len(d.b))
		}
	}
	for _, c := range []struct {
		at   time.Time
		size int
	}{
		{time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), 5},
		{time.Date(2025, 6, 1, 10, 0, 0, 123_000_000, time.UTC), 6},
	} {
		var e encoder
		e.putTime(c.at.UnixMicro())
		if len(e.b) != c.size {
			t.Errorf("%v: %d bytes, want %d", c.at, len(e.b), c.size)
		}
	}
}

// TestRowsFormat2StillReads: rows values of format 2 (plain varint
// timestamps, as earlier releases wrote) read as format 3's do, also once a
// new release updates some of them.
func TestRowsFormat2StillReads(t *testing.T) {
	ctx := context.Background()
	db := recOpen(t)
	at := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	put := func(old bool, rows ...Row) {
		t.Helper()
		if _, err := db.Write(ctx, "items", WriteMeta{}, func(w *TableWriter) error {
			w.oldForm = old
			for _, r := range rows {
				if _, err := w.Upsert(r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	a := Row{S("a"), S("o"), M(1), T(at), S("new"), Null()}
	b := Row{S("b"), S("o"), M(2), T(at.Add(time.Microsecond)), S("done"), S("x")}
	put(true, a, b)
	formats := func() string {
		var out []string
		if err := db.bolt.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTables).Bucket([]byte("items")).Bucket(subRows).ForEach(func(k, v []byte) error {
				out = append(out, fmt.Sprintf("%s:%d", k, v[0]))
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	if got := formats(); got != "a:2 b:2" {
		t.Fatalf("rows formats %s", got)
	}
	b2 := slices.Clone(b)
	b2[2] = M(3)
	put(false, b2)
	if got := formats(); got != "a:2 b:3" {
		t.Fatalf("rows formats %s", got)
	}
	for _, want := range []Row{a, b2} {
		got, found, err := db.Get("items", -1, want[:1])
		if err != nil || !found || !rowsEqual(got, want) {
			t.Errorf("get %s: %v %v %v, want %v", want[0].Str, got, found, err, want)
		}
	}
	if got := strings.Join(feedText(t, db, 0), "\n"); got != strings.Join([]string{
		"1 insert " + fmt.Sprint(a), "1 insert " + fmt.Sprint(b),
		"2 update_preimage " + fmt.Sprint(b), "2 update_postimage " + fmt.Sprint(b2)}, "\n") {
		t.Errorf("feed:\n%s", got)
	}
}

// TestChunksFitTheirPages: a change-feed chunk, with bbolt's page header,
// leaf element and key, fits the 64 KiB of pages it is sized for instead of
// spilling a few bytes into one page more.
func TestChunksFitTheirPages(t *testing.T) {
	db := recOpen(t)
	recWorkload(t, db, 6, func(int) bool { return false })
	ps := db.bolt.gate.current().Info().PageSize
	limit := (chunkTarget+ps-1)/ps*ps - 16 - 16 - 12
	n := 0
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTables).Bucket([]byte("items")).Bucket(subCDF).ForEach(func(k, v []byte) error {
			n++
			if len(v) > limit {
				t.Errorf("chunk %x: %d bytes, more than the %d its pages hold", k, len(v), limit)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("%d chunks", n)
	}
}
