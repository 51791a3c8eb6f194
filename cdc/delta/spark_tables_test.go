package delta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc/delta"
)

// The tables of testdata/spark were written once by real Spark 4.0 +
// delta-spark 4.0.1 (testdata/make_spark_tables.py); each EXPECTED.json holds
// what Spark itself read from it.

// sparkExpected is a testdata/spark/<table>/EXPECTED.json.
type sparkExpected struct {
	Versions map[string]json.RawMessage `json:"versions"` // rows as JSON lines, or "error: ..."
	Changes  []string                   `json:"changes"`
	History  []struct {
		Version    int64  `json:"version"`
		Operation  string `json:"operation"`
		Timestamp  string `json:"timestamp"`
		EngineInfo string `json:"engineInfo"`
	} `json:"history"`
}

// sparkTable copies testdata/spark/<name> into a temporary directory with
// each commit file's mtime set to the commit time Spark reported (DESCRIBE
// HISTORY: the file's mtime when Spark wrote it; git keeps no mtimes).
func sparkTable(t *testing.T, name string) (string, sparkExpected) {
	t.Helper()
	src := filepath.Join("testdata", "spark", name)
	var exp sparkExpected
	data, err := os.ReadFile(filepath.Join(src, "EXPECTED.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatal(err)
	}
	dir := copyTable(t, src)
	mtimes := map[int64]int64{}
	for _, h := range exp.History {
		mtimes[h.Version] = parseTime(t, h.Timestamp).UnixMilli()
	}
	setCommitMtimes(t, dir, mtimes)
	return dir, exp
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// canonicalJSON re-encodes a JSON text with sorted keys; it fails the test
// on invalid JSON (such as a bare NaN).
func canonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", s, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// rowJSON renders a row as a JSON object of the schema's columns.
func rowJSON(schema delta.Schema, r delta.Row, extra ...delta.NamedValue) string {
	s := make(delta.Struct, 0, len(r)+len(extra))
	for i, f := range schema {
		s = append(s, delta.NamedValue{Name: f.Name, Value: r[i]})
	}
	return string(delta.AppendJSON(nil, append(s, extra...), time.UTC))
}

func (e sparkExpected) rowsAt(t *testing.T, v int64) []string {
	t.Helper()
	var rows []string
	if err := json.Unmarshal(e.Versions[strconv.FormatInt(v, 10)], &rows); err != nil {
		t.Fatalf("EXPECTED.json version %d: %v", v, err)
	}
	for i := range rows {
		rows[i] = canonicalJSON(t, rows[i])
	}
	slices.Sort(rows)
	return rows
}

func readRowsJSON(t *testing.T, tbl *delta.Table, v int64) (*delta.Snapshot, []string) {
	t.Helper()
	s, err := tbl.Snapshot(v)
	if err != nil {
		t.Fatalf("snapshot %d: %v", v, err)
	}
	var got []string
	if err := s.Rows(context.Background(), func(r delta.Row) error {
		got = append(got, canonicalJSON(t, rowJSON(s.Schema, r)))
		return nil
	}); err != nil {
		t.Fatalf("rows at %d: %v", v, err)
	}
	slices.Sort(got)
	return s, got
}

// TestSparkNestedColumns reads struct, array and map columns (nested in each
// other, null at every level, empty), NaN and infinite doubles and
// timestamp_ntz as Spark does, at every version and in the change feed,
// _commit_timestamp included.
func TestSparkNestedColumns(t *testing.T) {
	dir, exp := sparkTable(t, "nested")
	tbl, err := delta.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for v := range int64(len(exp.History)) {
		_, got := readRowsJSON(t, tbl, v)
		equalLines(t, "rows at version "+strconv.FormatInt(v, 10), got, exp.rowsAt(t, v))
	}
	var got []string
	schema, err := tbl.Changes(context.Background(), 0, -1, func(c delta.Change) error {
		got = append(got, canonicalJSON(t, rowJSON(nil, nil, append(namedRow(tbl, t, c.Row),
			delta.NamedValue{Name: "_change_type", Value: c.ChangeType},
			delta.NamedValue{Name: "_commit_version", Value: c.Version},
			delta.NamedValue{Name: "_commit_timestamp", Value: c.Time()})...)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(schema) != 8 {
		t.Errorf("schema: %v", schema.Names())
	}
	want := slices.Clone(exp.Changes)
	for i := range want {
		want[i] = canonicalJSON(t, want[i])
	}
	slices.Sort(got)
	equalLines(t, "change feed", got, want)
}

// namedRow pairs a change row's values with the latest schema's names.
func namedRow(tbl *delta.Table, t *testing.T, r delta.Row) delta.Struct {
	t.Helper()
	s, err := tbl.Snapshot(-1)
	if err != nil {
		t.Fatal(err)
	}
	out := make(delta.Struct, len(r))
	for i, f := range s.Schema {
		out[i] = delta.NamedValue{Name: f.Name, Value: r[i]}
	}
	return out
}

// TestSparkCommitTimestampIsFileTime: on a table without in-commit
// timestamps, Spark's _commit_timestamp is the commit file's modification
// time, which differs from commitInfo.timestamp by milliseconds.
func TestSparkCommitTimestampIsFileTime(t *testing.T) {
	dir, exp := sparkTable(t, "nested")
	tbl, err := delta.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for _, h := range exp.History {
		c, err := tbl.Commit(h.Version)
		if err != nil {
			t.Fatal(err)
		}
		want := parseTime(t, h.Timestamp).UnixMilli()
		if c.Timestamp != want {
			t.Errorf("version %d: _commit_timestamp %s, Spark's %s", h.Version, time.UnixMilli(c.Timestamp).UTC().Format(time.RFC3339Nano), h.Timestamp)
		}
		if *c.CommitInfo.Timestamp != want {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("test table has no commit whose commitInfo.timestamp differs from its file time")
	}
	// A commit file whose mtime is not after its predecessor's: Spark makes
	// it predecessor + 1 ms.
	first := parseTime(t, exp.History[0].Timestamp)
	mtimes := map[int64]int64{}
	for _, h := range exp.History {
		mtimes[h.Version] = parseTime(t, h.Timestamp).UnixMilli()
	}
	mtimes[1] = first.Add(-time.Hour).UnixMilli()
	setCommitMtimes(t, dir, mtimes)
	c, err := tbl.Commit(1)
	if err != nil || c.Timestamp != first.UnixMilli()+1 {
		t.Errorf("non-increasing mtime: _commit_timestamp %d, %v; want %d", c.Timestamp, err, first.UnixMilli()+1)
	}
}

// TestSparkV2Checkpoints reads Spark's V2 checkpoints (UUID-named top-level
// Parquet or JSON file with sidecars in _delta_log/_sidecars), also after the
// commits before them are gone, and V2 content under the classic name.
func TestSparkV2Checkpoints(t *testing.T) {
	for _, name := range []string{"v2cp", "v2cp-json"} {
		t.Run(name, func(t *testing.T) {
			dir, exp := sparkTable(t, name)
			latest := int64(len(exp.History) - 1)
			log := filepath.Join(dir, "_delta_log")
			uuidCPs, err := filepath.Glob(filepath.Join(log, "00000000000000000010.checkpoint.*-*"))
			if err != nil || len(uuidCPs) == 0 {
				t.Fatalf("no V2 checkpoint in the test table (%v)", err)
			}
			tbl, err := delta.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, wantCheckpoint int64) {
				t.Helper()
				for _, v := range []int64{10, latest} {
					s, got := readRowsJSON(t, tbl, v)
					equalLines(t, what+": rows at "+strconv.FormatInt(v, 10), got, exp.rowsAt(t, v))
					if s.Checkpoint != wantCheckpoint {
						t.Errorf("%s: version %d replayed from checkpoint %d, want %d", what, v, s.Checkpoint, wantCheckpoint)
					}
				}
			}
			check("as written", 10)
			if len(exp.rowsAt(t, latest)) != 8 {
				t.Fatalf("test bug: %d rows at %d", len(exp.rowsAt(t, latest)), latest)
			}
			// Log cleanup: only the checkpoint can rebuild version 10.
			for v := range 10 {
				if err := os.Remove(filepath.Join(log, fmt.Sprintf("%020d.json", v))); err != nil {
					t.Fatal(err)
				}
			}
			check("commits 0-9 removed", 10)
			if name == "v2cp" {
				// The same V2 content under the classic name, the only checkpoint.
				for _, p := range uuidCPs[1:] {
					os.Remove(p)
				}
				if err := os.Rename(uuidCPs[0], filepath.Join(log, "00000000000000000010.checkpoint.parquet")); err != nil {
					t.Fatal(err)
				}
				check("classic name", 10)
			}
			// A missing sidecar is an error naming the checkpoint and the sidecar.
			sidecars, _ := filepath.Glob(filepath.Join(log, "_sidecars", "*"))
			for _, p := range sidecars {
				os.Remove(p)
			}
			_, err = tbl.Snapshot(latest)
			if err == nil || !strings.Contains(err.Error(), "00000000000000000010.checkpoint.") || !strings.Contains(err.Error(), "sidecar") {
				t.Errorf("missing sidecar: err = %v", err)
			}
		})
	}
}

// TestTimestampNTZValue: a timestamp_ntz value is a wall-clock time, not an
// instant: no zone moves it.
func TestTimestampNTZValue(t *testing.T) {
	v := delta.TimestampNTZ(time.Date(2030, 6, 30, 23, 59, 59, 999999000, time.UTC))
	kolkata := time.FixedZone("IST", 5*3600+1800)
	if got := string(delta.AppendJSON(nil, v, kolkata)); got != `"2030-06-30T23:59:59.999999"` {
		t.Errorf("JSON in +05:30: %s", got)
	}
	if got := delta.FormatValue(v); got != "2030-06-30T23:59:59.999999" {
		t.Errorf("text: %s", got)
	}
}

// TestSparkVacuumedTable reads a table after Spark's OPTIMIZE and VACUUM
// (VACUUM START/END commits): the versions Spark can read give its rows; the
// ones whose files VACUUM deleted are errors, as in Spark.
func TestSparkVacuumedTable(t *testing.T) {
	dir, exp := sparkTable(t, "vacuum")
	tbl, err := delta.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for v := range int64(len(exp.History)) {
		if strings.HasPrefix(string(exp.Versions[strconv.FormatInt(v, 10)]), `"error`) {
			s, err := tbl.Snapshot(v)
			if err == nil {
				err = s.Rows(context.Background(), func(delta.Row) error { return nil })
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("version %d (files vacuumed): err = %v, want a missing file", v, err)
			}
			continue
		}
		_, got := readRowsJSON(t, tbl, v)
		equalLines(t, "rows at version "+strconv.FormatInt(v, 10), got, exp.rowsAt(t, v))
	}
}
