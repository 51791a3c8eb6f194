package delta_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/examples"
	"github.com/upicdc/upicdc/store"
)

// testTables computes every window size, so the windows table gets rows
// of each.
var testTables = agg.Config{WindowSizes: []string{"1h", "1d", "1w"}}

func openStore(t testing.TB) *store.DB {
	t.Helper()
	return aggtest.Open(t, filepath.Join(t.TempDir(), "data"), testTables)
}

// workload MERGEs random batches into db and runs the processor after each:
// inserts, updates (several steps of one transaction in one batch too),
// deletes, re-inserts after a delete, and stale rows. transaction_time
// moves up to 20 minutes a row, so the rows spread over many hourly and
// some daily windows.
type workload struct {
	rng   *rand.Rand
	clock int64 // transaction_time, micros; rows move forward
	n     int
	keys  []string
}

func newWorkload(seed uint64) *workload {
	return &workload{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clock: time.Date(2024, 12, 21, 10, 0, 0, 0, time.UTC).UnixMicro()}
}

func (w *workload) batch(rows int) *cdc.Batch {
	statuses := []cdc.Status{cdc.StatusInitiated, cdc.StatusCompleted, cdc.StatusFailed, cdc.StatusRefunded}
	var in []cdc.Input
	for i := 0; i < rows; i++ {
		w.clock += int64(w.rng.IntN(1_200_000_000)) + 1 // sub-second parts exercise micro precision
		var id string
		if len(w.keys) == 0 || w.rng.IntN(3) == 0 {
			w.n++
			id = fmt.Sprintf("T%05d", w.n)
			w.keys = append(w.keys, id)
		} else {
			id = w.keys[w.rng.IntN(len(w.keys))]
		}
		row := cdc.Row{
			TransactionID: id,
			UPIID:         fmt.Sprintf("user%d@upi", w.rng.IntN(50)),
			MerchantID:    fmt.Sprintf("M%03d", w.rng.IntN(7)),
			Amount:        store.Paise(w.rng.Int64N(1_000_000)),
			Time:          w.clock,
			Status:        statuses[w.rng.IntN(len(statuses))],
		}
		op := cdc.OpUpsert
		switch r := w.rng.IntN(10); {
		case r == 0:
			op = cdc.OpDelete
		case r == 1:
			row.Time -= 3_600_000_000 // probably stale
		}
		in = append(in, cdc.Input{Pos: i + 2, Op: op, Row: row})
	}
	name := fmt.Sprintf("batch-%d.csv", w.clock)
	return &cdc.Batch{Name: name, Path: name, Format: cdc.FormatCSV, SHA256: sha256.Sum256([]byte(name)), Rows: in}
}

func (w *workload) run(t *testing.T, db *store.DB, batches, rows int) {
	t.Helper()
	ctx := context.Background()
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	p := agg.NewProcessor(db, agg.Options{Tables: testTables})
	for i := 0; i < batches; i++ {
		if _, err := m.Merge(ctx, w.batch(1+w.rng.IntN(rows))); err != nil {
			t.Fatal(err)
		}
		if w.rng.IntN(4) != 0 { // sometimes the processor lags and catches up over two raw versions
			if _, err := p.RunAvailableNow(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := p.RunAvailableNow(ctx); err != nil {
		t.Fatal(err)
	}
}

// valueText renders a store value the way rowText renders what the Delta
// reader returns for it: decimals with two places, timestamps RFC 3339 UTC.
func valueText(c store.Column, v store.Value) string {
	if v.Null {
		return "null"
	}
	switch c.Type {
	case store.String, store.Enum:
		return v.Str
	case store.Money:
		return v.Paise().Decimal()
	case store.Timestamp:
		return delta.FormatValue(v.Time())
	case store.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return itoa(v.Int)
}

func storeLine(s store.Schema, r store.Row) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = valueText(s.Columns[i], v)
	}
	return strings.Join(parts, "|")
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func tableSchema(t *testing.T, db *store.DB, table string) store.Schema {
	t.Helper()
	info, err := db.Table(table)
	if err != nil {
		t.Fatal(err)
	}
	return info.Schema
}

// storeLines returns a table's rows at version v as sorted lines.
func storeLines(t *testing.T, db *store.DB, table string, v int64) []string {
	t.Helper()
	s := tableSchema(t, db, table)
	var out []string
	if _, err := db.Scan(context.Background(), table, v, store.KeyRange{}, func(r store.Row) error {
		out = append(out, storeLine(s, r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// deltaChangeLines reads a Delta change feed in order (not sorted).
func deltaChangeLines(t *testing.T, tbl *delta.Table, from, to int64) []string {
	t.Helper()
	var out []string
	if _, err := tbl.Changes(context.Background(), from, to, func(c delta.Change) error {
		out = append(out, rowText(c.Row)+"|"+c.ChangeType+"|"+itoa(c.Version)+"|"+itoa(c.Timestamp))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func storeChangeLines(t *testing.T, db *store.DB, table string, from, to int64) []string {
	t.Helper()
	s := tableSchema(t, db, table)
	var out []string
	if err := db.Changes(context.Background(), table, from, to, func(c store.Change) error {
		out = append(out, storeLine(s, c.Row)+"|"+c.Type.String()+"|"+itoa(c.Version)+"|"+itoa(c.Timestamp))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkExport asserts that the exported tables equal the store at every
// version: snapshot rows, change feed (in order, with _commit_version and
// _commit_timestamp), commit timestamps, commit file mtimes and txn actions.
// It returns the tables it checked.
func checkExport(t *testing.T, db *store.DB, dir string) []string {
	t.Helper()
	var checked []string
	for _, info := range db.Tables() {
		table := info.Name
		checked = append(checked, table)
		tbl, err := delta.Open(filepath.Join(dir, table))
		if err != nil {
			t.Fatal(err)
		}
		latest, err := db.LatestVersion(table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tbl.LatestVersion()
		if err != nil || got != latest {
			t.Fatalf("%s: Delta latest %d, %v; store latest %d", table, got, err, latest)
		}
		for v := int64(0); v <= latest; v++ {
			s, rows := snapshotRows(t, tbl, v)
			if want := storeLines(t, db, table, v); !slices.Equal(rows, want) {
				t.Fatalf("%s version %d: Delta rows\n  %s\nstore rows\n  %s", table, v, strings.Join(rows, "\n  "), strings.Join(want, "\n  "))
			}
			if got := s.Schema.Names(); !slices.Equal(got, columnNames(info.Schema)) {
				t.Errorf("%s version %d: Delta columns %v, store %v", table, v, got, columnNames(info.Schema))
			}
			ci, err := db.Commit(table, v)
			if err != nil {
				t.Fatal(err)
			}
			if s.Timestamp != ci.Timestamp {
				t.Errorf("%s version %d: timestamp %d, store %d", table, v, s.Timestamp, ci.Timestamp)
			}
			st, err := os.Stat(filepath.Join(tbl.Dir(), "_delta_log", fmt.Sprintf("%020d.json", v)))
			if err != nil || st.ModTime().UnixMilli() != ci.Timestamp {
				t.Errorf("%s version %d: commit file mtime %v, %v; want %d", table, v, st.ModTime(), err, ci.Timestamp)
			}
			if ci.Txn != nil {
				if txn, ok := s.Txns[ci.Txn.AppID]; !ok || txn.Version != ci.Txn.Version {
					t.Errorf("%s version %d: txns %+v, want %+v", table, v, s.Txns, ci.Txn)
				}
			}
			if v >= 10 && s.Checkpoint != v/10*10 {
				t.Errorf("%s version %d: replay started at checkpoint %d", table, v, s.Checkpoint)
			}
		}
		for _, r := range [][2]int64{{0, latest}, {latest / 2, latest}, {latest, latest}, {1, 1}} {
			got, want := deltaChangeLines(t, tbl, r[0], r[1]), storeChangeLines(t, db, table, r[0], r[1])
			if !slices.Equal(got, want) {
				t.Errorf("%s changes %d..%d: Delta\n  %s\nstore\n  %s", table, r[0], r[1], strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	}
	return checked
}

func columnNames(s store.Schema) []string {
	out := make([]string, len(s.Columns))
	for i, c := range s.Columns {
		out[i] = c.Name
	}
	return out
}

func export(t *testing.T, db *store.DB, dir string, opts delta.Options) []delta.Result {
	t.Helper()
	res, err := delta.Export(context.Background(), db, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestExportRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seed      uint64
		fileRows  int
		batches   int
		batchRows int
	}{
		{"small files", 1, 5, 24, 12},
		{"one file", 2, 1000, 23, 30},
		{"many rows", 3, 40, 15, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t)
			newWorkload(tc.seed).run(t, db, tc.batches, tc.batchRows)
			dir := t.TempDir()
			res := export(t, db, dir, delta.Options{TargetFileRows: tc.fileRows})
			want := []string{cdc.RawTable, agg.TotalsTable, agg.WindowsTable, agg.AlertsTable, cdc.AuditTable}
			if got := checkExport(t, db, dir); !slices.Equal(got, want) {
				t.Errorf("checked tables %v, want %v", got, want)
			}
			var names []string
			for _, r := range res {
				names = append(names, r.Table)
			}
			if !slices.Equal(names, want) {
				t.Errorf("exported %v, want %v in that order", names, want)
			}
			// The windows table is not trivial: rows of every size and
			// more than one file of them once files are small.
			windows := storeLines(t, db, agg.WindowsTable, -1)
			for _, size := range testTables.WindowSizes {
				if !slices.ContainsFunc(windows, func(l string) bool { return strings.Contains(l, "|"+size+"|") }) {
					t.Errorf("no %s window in %d window rows", size, len(windows))
				}
			}
			if w := res[2]; tc.fileRows < 50 && w.FilesAdded < 2 {
				t.Errorf("windows export added %d files", w.FilesAdded)
			}
		})
	}
}

func TestExportIncremental(t *testing.T) {
	db := openStore(t)
	w := newWorkload(7)
	w.run(t, db, 12, 20)
	dir := t.TempDir()
	opts := delta.Options{TargetFileRows: 8}
	first := export(t, db, dir, opts)
	checkExport(t, db, dir)

	// Nothing new: nothing written.
	again := export(t, db, dir, opts)
	for _, r := range again {
		if r.From <= r.To || r.FilesAdded != 0 {
			t.Errorf("re-export with no new versions: %+v", r)
		}
	}
	w.run(t, db, 11, 20)
	second := export(t, db, dir, opts)
	for i, r := range second {
		if r.From != first[i].To+1 {
			t.Errorf("%s: second export started at %d, want %d", r.Table, r.From, first[i].To+1)
		}
	}
	checkExport(t, db, dir)
}

func TestExportResumesAfterCrash(t *testing.T) {
	db := openStore(t)
	newWorkload(11).run(t, db, 22, 15)
	dir := t.TempDir()
	opts := delta.Options{TargetFileRows: 6}
	export(t, db, dir, opts)
	raw := filepath.Join(dir, cdc.RawTable, "_delta_log")

	// A crash before version 21's commit: its data files exist, its commit
	// does not. A crash between version 20's commit and its checkpoint.
	for _, name := range []string{"00000000000000000022.json", "00000000000000000021.json", "00000000000000000020.checkpoint.parquet", "_last_checkpoint"} {
		if err := os.Remove(filepath.Join(raw, name)); err != nil {
			t.Fatal(err)
		}
	}
	tbl, err := delta.Open(filepath.Join(dir, cdc.RawTable))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := tbl.LatestVersion(); err != nil || v != 20 {
		t.Fatalf("after the crash the table is at %d, %v; want 20", v, err)
	}
	if _, rows := snapshotRows(t, tbl, 20); !slices.Equal(rows, storeLines(t, db, cdc.RawTable, 20)) {
		t.Fatal("table not readable at its last complete version")
	}
	res := export(t, db, dir, opts)
	if res[0].From != 21 {
		t.Errorf("resumed at %d, want 21", res[0].From)
	}
	if _, err := os.Stat(filepath.Join(raw, "00000000000000000020.checkpoint.parquet")); err != nil {
		t.Errorf("the missing checkpoint was not written: %v", err)
	}
	checkExport(t, db, dir)
}

func TestExportRefusesForeignTable(t *testing.T) {
	db1, db2 := openStore(t), openStore(t)
	newWorkload(1).run(t, db1, 3, 5)
	newWorkload(2).run(t, db2, 3, 5)
	dir := t.TempDir()
	export(t, db1, dir, delta.Options{})
	if _, err := delta.Export(context.Background(), db2, dir, delta.Options{}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("export of another store into the same directory: err = %v", err)
	}
}

// seedStore is the demo: the seed's three batches, the processor after
// each, with the default table configuration.
func seedStore(t *testing.T) *store.DB {
	t.Helper()
	db := aggtest.Open(t, filepath.Join(t.TempDir(), "data"), agg.Config{})
	p := agg.NewProcessor(db, agg.Options{})
	for _, name := range examples.SeedBatches() {
		data, err := fs.ReadFile(examples.Batches, name)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), path.Base(name))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		if _, err := p.RunAvailableNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// TestExportRefusesAfterForeignCommits: Spark's VACUUM on an export adds
// VACUUM START/END commits (testdata/spark/foreign-vacuum: what real Spark
// 4.0 wrote on the seed demo's export). The next export cannot append the
// store's versions after them; it says who wrote which version and what to
// do, instead of suggesting a retry that can never succeed.
func TestExportRefusesAfterForeignCommits(t *testing.T) {
	db := seedStore(t)
	dir := t.TempDir()
	export(t, db, dir, delta.Options{Tables: []string{cdc.RawTable}})
	logDir := filepath.Join(dir, cdc.RawTable, "_delta_log")
	foreign, err := filepath.Glob(filepath.Join("testdata", "spark", "foreign-vacuum", "*.json"))
	if err != nil || len(foreign) != 2 {
		t.Fatalf("foreign commits: %v, %v", foreign, err)
	}
	for _, p := range foreign {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(logDir, filepath.Base(p)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = delta.Export(context.Background(), db, dir, delta.Options{Tables: []string{cdc.RawTable}})
	if !errors.Is(err, delta.ErrNotOurTable) {
		t.Fatalf("export after Spark's VACUUM: err = %v, want ErrNotOurTable", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"version 4 by Apache-Spark/4.0", "(VACUUM START, 20", "version 5 by Apache-Spark/4.0", "(VACUUM END, 20",
		"only writer", "fresh directory", "00000000000000000004.json .. ", "00000000000000000005.json", "version 3",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if regexp.MustCompile(`(^|\D)1\d{12}(\D|$)`).MatchString(msg) {
		t.Errorf("error has an epoch-ms timestamp, want RFC 3339: %s", msg)
	}
	// Doing what it says works: remove the foreign commits, export again.
	for _, p := range foreign {
		if err := os.Remove(filepath.Join(logDir, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	export(t, db, dir, delta.Options{Tables: []string{cdc.RawTable}})
}

// TestExportMismatchTimestampsAreRFC3339: the store-mismatch error shows
// times as RFC 3339, not epoch milliseconds.
func TestExportMismatchTimestampsAreRFC3339(t *testing.T) {
	db := seedStore(t)
	dir := t.TempDir()
	export(t, db, dir, delta.Options{Tables: []string{cdc.RawTable}})
	commit := filepath.Join(dir, cdc.RawTable, "_delta_log", "00000000000000000003.json")
	mt := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC) // after the commits before it: not monotonized away
	if err := os.Chtimes(commit, mt, mt); err != nil {
		t.Fatal(err)
	}
	_, err := delta.Export(context.Background(), db, dir, delta.Options{Tables: []string{cdc.RawTable}})
	if !errors.Is(err, delta.ErrNotOurTable) || !strings.Contains(err.Error(), "committed at 2031-02-03T04:05:06.000Z") {
		t.Errorf("err = %v", err)
	}
}
