package delta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

func TestExportTablesOption(t *testing.T) {
	db := openStore(t)
	newWorkload(5).run(t, db, 4, 10)
	t.Run("subset in the given order", func(t *testing.T) {
		dir := t.TempDir()
		res := export(t, db, dir, delta.Options{Tables: []string{agg.WindowsTable, cdc.RawTable}})
		var got []string
		for _, r := range res {
			got = append(got, r.Table)
		}
		if want := []string{agg.WindowsTable, cdc.RawTable}; !slices.Equal(got, want) {
			t.Errorf("exported %v, want %v", got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, agg.TotalsTable)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a table not asked for was exported: %v", err)
		}
	})
	t.Run("unknown table", func(t *testing.T) {
		dir := t.TempDir()
		_, err := delta.Export(context.Background(), db, dir, delta.Options{Tables: []string{cdc.RawTable, "no_such_table"}})
		if !errors.Is(err, store.ErrUnknownTable) {
			t.Fatalf("err = %v, want store.ErrUnknownTable", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("an export with an unknown table wrote %v", entries)
		}
	})
}

// eventsDef is a table no code in package delta knows: a composite key
// with an Int column, and every column type, nullable ones included.
func eventsDef() store.TableDef {
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	return store.TableDef{Name: "events", Schema: store.Schema{KeyColumns: 2, Columns: []store.Column{
		{Name: "site", Type: store.String},
		{Name: "seq", Type: store.Int},
		{Name: "at", Type: store.Timestamp, Zone: kolkata},
		{Name: "ok", Type: store.Bool},
		{Name: "kind", Type: store.Enum, Enum: []string{"click", "view"}},
		{Name: "note", Type: store.String, Nullable: true},
		{Name: "amount", Type: store.Money, Nullable: true},
		{Name: "hits", Type: store.Int, Nullable: true},
		{Name: "seen", Type: store.Timestamp, Nullable: true},
		{Name: "flag", Type: store.Bool, Nullable: true},
	}}}
}

func eventRow(site string, seq, v int64) store.Row {
	r := store.Row{store.S(site), store.I(seq), store.Value{Int: 1_734_775_200_000_000 + v*1_000_001 + seq}, store.B(v%2 == 0),
		store.S([]string{"click", "view"}[(seq+v)&1]), store.S(fmt.Sprintf("note %d/%d", seq, v)), store.M(store.Paise(v*1000 - seq)),
		store.I(v), store.Value{Int: 1_734_775_200_000_000 + v}, store.B(seq%2 == 0)}
	if (seq+v)%3 == 0 { // every nullable column null
		for i := 5; i < len(r); i++ {
			r[i] = store.Null()
		}
	}
	return r
}

// writeEvents commits versions from..to of the events table: each inserts
// new keys, updates some (nulls coming and going) and deletes one.
func writeEvents(t *testing.T, db *store.DB, from, to int64) {
	t.Helper()
	for v := from; v <= to; v++ {
		_, err := db.Write(context.Background(), "events", store.WriteMeta{Operation: "WRITE"}, func(w *store.TableWriter) error {
			for _, site := range []string{"a", "b"} {
				for seq := int64(-2); seq < 6; seq++ {
					key := store.Row{store.S(site), store.I(seq*10 + v%3)}
					cur, found, err := w.Get(key)
					if err != nil {
						return err
					}
					next := eventRow(site, key[1].Int, v)
					switch {
					case found && !cur.Deleted && (seq+v)%5 == 0:
						err = w.Delete(cur.Row, 0)
					case found && !cur.Deleted:
						err = w.Update(cur.Row, next)
					default:
						err = w.Insert(next)
					}
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestExportAnyTable exports a table declared only here: the layout comes
// from the schema, composite keys with Int columns index files, nullable
// columns round-trip nulls, incrementally too.
func TestExportAnyTable(t *testing.T) {
	db := storetest.Open(t, t.TempDir(), eventsDef())
	writeEvents(t, db, 1, 12)
	dir := t.TempDir()
	opts := delta.Options{TargetFileRows: 7}
	export(t, db, dir, opts)
	if got := checkExport(t, db, dir); !slices.Equal(got, []string{"events"}) {
		t.Fatalf("checked %v", got)
	}
	writeEvents(t, db, 13, 23)
	res := export(t, db, dir, opts)
	if res[0].From != 13 || res[0].To != 23 {
		t.Errorf("incremental export wrote %d..%d, want 13..23", res[0].From, res[0].To)
	}
	checkExport(t, db, dir)

	tbl, err := delta.Open(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tbl.Snapshot(-1)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, f := range s.Schema {
		fields = append(fields, fmt.Sprintf("%s %s %v", f.Name, f.Type, f.Nullable))
	}
	want := []string{"site string false", "seq long false", "at timestamp false", "ok boolean false", "kind string false",
		"note string true", "amount decimal(18,2) true", "hits long true", "seen timestamp true", "flag boolean true"}
	if !slices.Equal(fields, want) {
		t.Errorf("Delta schema\n  %s\nwant\n  %s", strings.Join(fields, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestExportParquetLayout pins the Parquet schema of data and change-data
// files: schema order, REQUIRED unless the column is nullable, INT64
// DECIMAL(18,2) money, INT64 TIMESTAMP(MICROS, UTC) (Spark refuses NANOS),
// _change_type last; and the file stats per column.
func TestExportParquetLayout(t *testing.T) {
	db := storetest.Open(t, t.TempDir(), eventsDef())
	writeEvents(t, db, 1, 1)
	dir := t.TempDir()
	export(t, db, dir, delta.Options{})
	tbl, err := delta.Open(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tbl.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 1 {
		t.Fatalf("%d files, want 1", len(s.Files))
	}
	columns := `	required binary site (STRING);
	required int64 seq (INT(64,true));
	required int64 at (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	required boolean ok;
	required binary kind (STRING);
	optional binary note (STRING);
	optional int64 amount (DECIMAL(18,2));
	optional int64 hits (INT(64,true));
	optional int64 seen (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	optional boolean flag;
`
	c, err := tbl.Commit(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CDCs) != 1 {
		t.Fatalf("version 1 has %d cdc files", len(c.CDCs))
	}
	for _, f := range []struct {
		path, want string
	}{
		{s.Files[0].Path, "message spark_schema {\n" + columns + "}"},
		{c.CDCs[0].Path, "message spark_schema {\n" + columns + "\trequired binary _change_type (STRING);\n}"},
	} {
		pf := openParquet(t, filepath.Join(tbl.Dir(), f.path))
		if got := strings.TrimSpace(pf.Schema().String()); got != f.want {
			t.Errorf("%s: Parquet schema\n%s\nwant\n%s", f.path, got, f.want)
		}
		// A dictionary where values repeat: the enum, the two sites and
		// _change_type; not the distinct notes.
		for i, col := range pf.Metadata().RowGroups[0].Columns {
			name := col.MetaData.PathInSchema[0]
			dict := slices.Contains(col.MetaData.Encoding, format.RLEDictionary)
			if want := slices.Contains([]string{"kind", "site", "_change_type"}, name); dict != want {
				t.Errorf("%s: column %d %s: dictionary %v, want %v (encodings %v)", f.path, i, name, dict, want, col.MetaData.Encoding)
			}
		}
	}

	// Stats: every column's null count; min/max of the non-null values,
	// none for booleans (Spark keeps none) or all-null columns.
	var st struct {
		NumRecords int64
		MinValues  map[string]any
		MaxValues  map[string]any
		NullCount  map[string]int64
	}
	if err := json.Unmarshal([]byte(s.Files[0].Stats), &st); err != nil {
		t.Fatal(err)
	}
	var rows []store.Row
	if _, err := db.Scan(context.Background(), "events", 1, store.KeyRange{}, func(r store.Row) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st.NumRecords != int64(len(rows)) {
		t.Errorf("numRecords %d, want %d", st.NumRecords, len(rows))
	}
	nulls := 0
	for _, r := range rows {
		if r[5].Null {
			nulls++
		}
	}
	if nulls == 0 || nulls == len(rows) {
		t.Fatalf("want some null notes at version 1, have %d of %d", nulls, len(rows))
	}
	for _, name := range []string{"site", "seq", "at", "ok", "kind", "note", "amount", "hits", "seen", "flag"} {
		want := int64(0)
		if slices.Contains([]string{"note", "amount", "hits", "seen", "flag"}, name) {
			want = int64(nulls)
		}
		if got, ok := st.NullCount[name]; !ok || got != want {
			t.Errorf("nullCount[%s] = %d (%v), want %d", name, got, ok, want)
		}
		_, hasMin := st.MinValues[name]
		_, hasMax := st.MaxValues[name]
		if isBool := name == "ok" || name == "flag"; hasMin == isBool || hasMax == isBool {
			t.Errorf("%s: min %v, max %v in the stats", name, st.MinValues[name], st.MaxValues[name])
		}
	}
	if got, want := fmt.Sprint(st.MinValues["seq"], " ", st.MaxValues["seq"]), "-19 51"; got != want {
		t.Errorf("seq min max %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(st.MinValues["at"], " ", st.MaxValues["at"]), "2024-12-21T10:00:00.999Z 2024-12-21T10:00:01.001Z"; got != want {
		t.Errorf("at min max %s, want %s (min rounded down, max up to the millisecond)", got, want)
	}
}

func openParquet(t *testing.T, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

// TestExportRefusesChangedSchema: once a table's schema changed in the
// store, an old export of it is refused (its files have the old columns)
// rather than continued with files of another schema.
func TestExportRefusesChangedSchema(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	db, err := store.Open(data, store.Options{Tables: []store.TableDef{eventsDef()}})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, db, 1, 2)
	_, err = delta.Export(context.Background(), db, dir, delta.Options{})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	def := eventsDef()
	def.Schema.Columns = append(def.Schema.Columns, store.Column{Name: "added", Type: store.Int, Nullable: true})
	db = storetest.Open(t, data, def)
	_, err = delta.Export(context.Background(), db, dir, delta.Options{})
	if !errors.Is(err, delta.ErrNotOurTable) || !strings.Contains(err.Error(), "empty directory") {
		t.Errorf("export after a schema change: %v, want ErrNotOurTable saying what to do", err)
	}
}
