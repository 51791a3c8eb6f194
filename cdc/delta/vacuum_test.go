package delta_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/store"
)

// hourlyStore opens a store whose commits are an hour apart, so that a
// retention picks a version in the middle of a workload.
func hourlyStore(t *testing.T) *store.DB {
	t.Helper()
	defs, err := agg.Defs(testTables)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(filepath.Join(t.TempDir(), "data"), store.Options{Tables: defs, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Hour)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// tableFiles lists the data and change-data files of an exported table,
// relative to its directory.
func tableFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"", "_change_data"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".parquet") {
				out = append(out, filepath.ToSlash(filepath.Join(sub, e.Name())))
			}
		}
	}
	slices.Sort(out)
	return out
}

// referenced returns the files the versions from..latest of tbl need: each
// version's live files and its change-data files (or, without them, the
// files it removes).
func referenced(t *testing.T, tbl *delta.Table, from, latest int64) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for v := from; v <= latest; v++ {
		s, err := tbl.Snapshot(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.Files {
			out[f.Path] = true
		}
		c, err := tbl.Commit(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range c.CDCs {
			out[f.Path] = true
		}
		if len(c.CDCs) == 0 { // its change rows are its adds and removes
			for _, f := range c.Removes {
				out[f.Path] = true
			}
		}
	}
	return out
}

// oldestRetained is the newest version of table committed at or before
// cutoff, or 0.
func oldestRetained(t *testing.T, db *store.DB, table string, cutoff time.Time) int64 {
	t.Helper()
	v, err := db.VersionAsOf(table, cutoff)
	var before *store.BeforeFirstCommitError
	if errors.As(err, &before) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVacuumKeepsEveryRetainedVersion(t *testing.T) {
	ctx := context.Background()
	db := hourlyStore(t)
	w := newWorkload(11)
	w.run(t, db, 30, 25)
	dir := t.TempDir()
	export(t, db, dir, delta.Options{TargetFileRows: 20})

	latest, err := db.LatestVersion(agg.WindowsTable)
	if err != nil {
		t.Fatal(err)
	}
	// Keep about the newer half of the raw table's history; the retention
	// starts between two commits.
	mid, err := db.Commit(agg.WindowsTable, latest/2)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := time.UnixMilli(mid.Timestamp).Add(30 * time.Minute)
	const retain = 72 * time.Hour
	opts := delta.VacuumOptions{Retain: retain, Now: func() time.Time { return cutoff.Add(retain) }}

	type before struct {
		files, gone []string
	}
	want := map[string]before{}
	for _, info := range db.Tables() {
		tdir := filepath.Join(dir, info.Name)
		tbl, err := delta.Open(tdir)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := tbl.LatestVersion()
		if err != nil {
			t.Fatal(err)
		}
		keep := referenced(t, tbl, oldestRetained(t, db, info.Name, cutoff), tl)
		var b before
		b.files = tableFiles(t, tdir)
		for _, f := range b.files {
			if !keep[f] {
				b.gone = append(b.gone, f)
			}
		}
		want[info.Name] = b
	}
	if len(want[agg.WindowsTable].gone) == 0 || len(want[agg.TotalsTable].gone) == 0 {
		t.Fatalf("the workload left nothing to vacuum: %+v", want)
	}

	var names []string
	for _, info := range db.Tables() {
		names = append(names, info.Name)
	}
	res, err := delta.VacuumAll(ctx, dir, names, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(names) {
		t.Fatalf("vacuumed %d tables, want %d", len(res), len(names))
	}
	for _, r := range res {
		oldest := oldestRetained(t, db, r.Table, cutoff)
		if r.Oldest != oldest {
			t.Errorf("%s: oldest retained version %d, want %d", r.Table, r.Oldest, oldest)
		}
		b := want[r.Table]
		if r.FilesRemoved != len(b.gone) {
			t.Errorf("%s: removed %d files, want %d", r.Table, r.FilesRemoved, len(b.gone))
		}
		tdir := filepath.Join(dir, r.Table)
		for _, f := range b.gone {
			if _, err := os.Stat(filepath.Join(tdir, f)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s, which only versions before %d need, is still there (%v)", r.Table, f, oldest, err)
			}
		}
		tbl, err := delta.Open(tdir)
		if err != nil {
			t.Fatal(err)
		}
		// The log starts at the oldest retained version: no reader can take
		// an older version for readable (delta-rs issue #3392).
		if oldest > 0 {
			if _, err := tbl.Snapshot(oldest - 1); err == nil {
				t.Errorf("%s: version %d, older than the retention, still listed", r.Table, oldest-1)
			}
		}
		// Every retained version and change range reads exactly as the store has it.
		tl, err := tbl.LatestVersion()
		if err != nil {
			t.Fatal(err)
		}
		for v := oldest; v <= tl; v++ {
			_, rows := snapshotRows(t, tbl, v)
			if want := storeLines(t, db, r.Table, v); !slices.Equal(rows, want) {
				t.Fatalf("%s version %d after vacuum: Delta rows\n  %s\nstore rows\n  %s", r.Table, v, strings.Join(rows, "\n  "), strings.Join(want, "\n  "))
			}
		}
		for _, rg := range [][2]int64{{oldest, tl}, {oldest, oldest}, {(oldest + tl) / 2, tl}, {tl, tl}} {
			got, want := deltaChangeLines(t, tbl, rg[0], rg[1]), storeChangeLines(t, db, r.Table, rg[0], rg[1])
			if !slices.Equal(got, want) {
				t.Errorf("%s changes %d..%d after vacuum: Delta\n  %s\nstore\n  %s", r.Table, rg[0], rg[1], strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	}

	// The export goes on after a vacuum, and a second vacuum finds nothing.
	w.run(t, db, 3, 25)
	export(t, db, dir, delta.Options{TargetFileRows: 20})
	again, err := delta.Vacuum(ctx, filepath.Join(dir, agg.WindowsTable), opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.LogFilesRemoved != 0 {
		t.Errorf("second vacuum removed %d log files", again.LogFilesRemoved)
	}
	tbl, err := delta.Open(filepath.Join(dir, agg.WindowsTable))
	if err != nil {
		t.Fatal(err)
	}
	_, rows := snapshotRows(t, tbl, -1)
	if want := storeLines(t, db, agg.WindowsTable, -1); !slices.Equal(rows, want) {
		t.Errorf("latest after export following a vacuum: %d rows, store %d", len(rows), len(want))
	}
}

// An unreferenced file newer than the retention's start (an export may be
// writing it) stays; an old one goes.
func TestVacuumSparesFilesBeingWritten(t *testing.T) {
	db := hourlyStore(t)
	newWorkload(12).run(t, db, 4, 10)
	dir := t.TempDir()
	export(t, db, dir, delta.Options{})
	tdir := filepath.Join(dir, agg.TotalsTable)
	fresh := filepath.Join(tdir, "part-00000-fresh-c000.snappy.parquet")
	old := filepath.Join(tdir, "_change_data", "cdc-00000-old.c000.snappy.parquet")
	for _, p := range []string{fresh, old} {
		if err := os.WriteFile(p, []byte("PAR1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if err := os.Chtimes(old, now.Add(-48*time.Hour), now.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := delta.Vacuum(context.Background(), tdir, delta.VacuumOptions{Retain: 24 * time.Hour, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh unreferenced file: %v", err)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old unreferenced file still there: %v", err)
	}
}
