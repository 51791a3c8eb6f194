package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

func day(d int) store.Value { return store.T(time.Date(2024, 12, d, 0, 0, 0, 0, time.UTC)) }

// process commits one micro-batch of stream "s" that writes rows into
// by_owner.
func process(t *testing.T, db *store.DB, to int64, rows ...store.Row) store.Checkpoint {
	t.Helper()
	cp, ok, err := db.Process(context.Background(), "s", "items", func(tx *store.ProcessTx) error {
		w, err := tx.Table("by_owner")
		if err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := w.Upsert(r); err != nil {
				return err
			}
		}
		tx.Commit(to, nil, nil)
		return nil
	})
	if err != nil || !ok {
		t.Fatalf("process: %v (committed %v)", err, ok)
	}
	return cp
}

func TestKeyRangeScansACompositeKey(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "a", row("A", "o", 1, 0, "new"))
	process(t, db, 1,
		store.Row{store.S("a"), day(1), store.M(1), store.Null()},
		store.Row{store.S("a"), day(2), store.M(2), store.S("x")},
		store.Row{store.S("a"), day(3), store.M(3), store.Null()},
		store.Row{store.S("ab"), day(1), store.M(4), store.Null()},
		store.Row{store.S("b"), day(2), store.M(5), store.Null()},
	)
	ctx := context.Background()
	scan := func(kr store.KeyRange) string {
		var out []string
		if _, err := db.Scan(ctx, "by_owner", -1, kr, func(r store.Row) error {
			out = append(out, fmt.Sprintf("%s/%d", r[0].Str, r[1].Time().Day()))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	d2, d3 := day(2), day(3)
	for _, tc := range []struct {
		name string
		kr   store.KeyRange
		want string
	}{
		{"all", store.KeyRange{}, "a/1 a/2 a/3 ab/1 b/2"},
		{"prefix a is not ab", store.KeyRange{Prefix: store.Row{store.S("a")}}, "a/1 a/2 a/3"},
		{"from", store.KeyRange{Prefix: store.Row{store.S("a")}, From: &d2}, "a/2 a/3"},
		{"to", store.KeyRange{Prefix: store.Row{store.S("a")}, To: &d2}, "a/1 a/2"},
		{"from to", store.KeyRange{Prefix: store.Row{store.S("a")}, From: &d2, To: &d3}, "a/2 a/3"},
		{"exact", store.KeyRange{Prefix: store.Row{store.S("a"), day(2)}}, "a/2"},
		{"none", store.KeyRange{Prefix: store.Row{store.S("c")}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scan(tc.kr); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	r, found, err := db.Get("by_owner", -1, store.Row{store.S("a"), day(2)})
	if err != nil || !found || r[3].Str != "x" || r[2].Paise() != 2 {
		t.Errorf("get: %v %v %v", r, found, err)
	}
	if r, _, _ := db.Get("by_owner", -1, store.Row{store.S("a"), day(1)}); !r[3].Null {
		t.Errorf("null column read back as %+v", r[3])
	}
}

func TestVersionAsOf(t *testing.T) {
	now := time.Date(2024, 12, 21, 10, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stamps []time.Time
	for i := 1; i <= 3; i++ {
		now = now.Add(time.Minute)
		ci := merge(t, db, fmt.Sprint(i), row(fmt.Sprint("T", i), "o", 1, i, "new"))
		stamps = append(stamps, ci.Time())
	}
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{stamps[0], 1}, {stamps[0].Add(30 * time.Second), 1}, {stamps[1], 2}, {stamps[2].Add(-time.Millisecond), 2},
		{stamps[2], 3}, {stamps[2].Add(time.Hour), 3}, {stamps[0].Add(-time.Minute), 0},
	} {
		if got, err := db.VersionAsOf("items", tc.at); err != nil || got != tc.want {
			t.Errorf("as of %s: %d, %v; want %d", tc.at, got, err, tc.want)
		}
	}
	_, err = db.VersionAsOf("items", stamps[0].Add(-2*time.Minute))
	var before *store.BeforeFirstCommitError
	if !errors.As(err, &before) {
		t.Errorf("before the first commit: %v", err)
	}
}

// TestSchemaChangeKeepsHistory: a table whose columns change keeps its
// history readable; old images read with their own schema, projected onto
// the new one by column name.
func TestSchemaChangeKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef}})
	if err != nil {
		t.Fatal(err)
	}
	merge(t, db, "a", row("A", "o", 100, 0, "new"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := itemsDef
	v2.Schema.Columns = append([]store.Column{}, itemsDef.Schema.Columns[:2]...)
	v2.Schema.Columns = append(v2.Schema.Columns, store.Column{Name: "tag", Type: store.String, Nullable: true}, itemsDef.Schema.Columns[2])
	db, err = store.Open(dir, store.Options{Tables: []store.TableDef{v2}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.Write(ctx, "items", store.WriteMeta{Operation: "WRITE"}, func(w *store.TableWriter) error {
		_, err := w.Upsert(store.Row{store.S("B"), store.S("p"), store.S("t"), store.M(7)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := db.Scan(ctx, "items", -1, store.KeyRange{}, func(r store.Row) error {
		got = append(got, fmt.Sprintf("%s %s %v %s", r[0].Str, r[1].Str, r[2].Null, r[3].Paise()))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "[A o true 1 B p false 0.07]"; fmt.Sprint(got) != want {
		t.Errorf("rows %v, want %s", got, want)
	}
	changeKey := itemsDef
	changeKey.Schema.Columns = append([]store.Column{{Name: "other", Type: store.String}}, itemsDef.Schema.Columns...)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(dir, store.Options{Tables: []store.TableDef{changeKey}}); !errors.Is(err, store.ErrFormat) {
		t.Errorf("key change: %v, want ErrFormat", err)
	}
	storetest.Open(t, dir) // still a sound file
}

func TestProcessCommitsEveryWrittenTableWithItsCheckpoint(t *testing.T) {
	db := open(t, t.TempDir())
	merge(t, db, "a", row("A", "o", 1, 0, "new"))
	merge(t, db, "b", row("B", "o", 1, 0, "new"))
	cp := process(t, db, 2, store.Row{store.S("o"), day(1), store.M(2), store.Null()})
	if cp.SourceVersion != 2 || cp.BatchID != 0 || cp.Versions["by_owner"] != 1 {
		t.Errorf("checkpoint %+v", cp)
	}
	h, err := db.History("by_owner")
	if err != nil {
		t.Fatal(err)
	}
	if last := h[len(h)-1]; last.Txn == nil || last.Txn.AppID != "s" || last.Txn.Version != 0 || last.Operation != "STREAMING UPDATE" {
		t.Errorf("commit %+v", last)
	}
	// A rebuild commits a version without moving the source version, and
	// records the table's new properties.
	_, ok, err := db.Process(context.Background(), "s", "items", func(tx *store.ProcessTx) error {
		w, err := tx.Table("by_owner")
		if err != nil {
			return err
		}
		if _, err := w.Upsert(store.Row{store.S("o"), day(1), store.M(3), store.Null()}); err != nil {
			return err
		}
		tx.SetProperties("by_owner", map[string]string{"k": "v"})
		tx.Rebuilt("REPROCESS", nil, nil)
		return nil
	})
	if err != nil || !ok {
		t.Fatal(err)
	}
	cp, _ = db.Checkpoint("s")
	props, _ := db.Properties("by_owner")
	if cp.SourceVersion != 2 || cp.BatchID != 0 || cp.Versions["by_owner"] != 2 || props["k"] != "v" {
		t.Errorf("after rebuild: %+v %v", cp, props)
	}
	// Committing beyond the source's latest version is refused.
	_, _, err = db.Process(context.Background(), "s", "items", func(tx *store.ProcessTx) error {
		tx.Commit(9, nil, nil)
		return nil
	})
	if err == nil {
		t.Error("commit past the source's latest version accepted")
	}
	// A source table cannot be written as a derived one.
	_, _, err = db.Process(context.Background(), "s", "items", func(tx *store.ProcessTx) error {
		_, err := tx.Table("items")
		return err
	})
	if err == nil {
		t.Error("source table written by a stream")
	}
}

func TestEnumAndNullAreChecked(t *testing.T) {
	db := open(t, t.TempDir())
	for _, r := range []store.Row{
		row("A", "o", 1, 0, "bogus"),
		{store.S("A"), store.Null(), store.M(1), day(1), store.S("new")},
		{store.S("A")},
	} {
		_, err := db.Write(context.Background(), "items", store.WriteMeta{Operation: "WRITE"}, func(w *store.TableWriter) error {
			return w.Insert(r)
		})
		if err == nil {
			t.Errorf("row %v accepted", r)
		}
	}
	if v, _ := db.LatestVersion("items"); v != 0 {
		t.Errorf("refused rows left version %d", v)
	}
}
