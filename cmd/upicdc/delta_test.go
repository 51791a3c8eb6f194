package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// decodeRows parses --format json output with numbers as float64, so 500
// (aggregates) and 500.00 (Delta decimal) compare equal.
func decodeRows(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("bad JSON output: %v\n%s", err, out)
	}
	return rows
}

func TestExportThenReadBack(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "delta")
	runOK(t, "--data-dir", data, "demo")
	res := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "export", "--out", out))
	if len(res) != 5 || res[0]["table"] != "raw_upi_transactions_v1" || res[2]["table"] != "merchant_window_aggregates" || res[3]["table"] != "merchant_alerts" ||
		res[4]["table"] != "pipeline_audit" || res[4]["to_version"] != 3.0 || res[4]["rows_written"] != 3.0 ||
		res[0]["to_version"] != 3.0 || res[1]["to_version"] != 3.0 || res[2]["to_version"] != 3.0 {
		t.Fatalf("export result: %v", res)
	}
	raw, aggDir := filepath.Join(out, "raw_upi_transactions_v1"), filepath.Join(out, "aggregated_upi_transactions")
	for v := 0; v <= 3; v++ {
		vs := strconv.Itoa(v)
		want := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "aggregates", "--version", vs))
		got := decodeRows(t, runOK(t, "--format", "json", "delta-show", aggDir, "--version", vs))
		// A Delta table has no row order.
		sort.Slice(got, func(i, j int) bool { return got[i]["merchant_id"].(string) < got[j]["merchant_id"].(string) })
		if !reflect.DeepEqual(got, want) {
			t.Errorf("aggregates at version %d:\n delta-show %v\n aggregates %v", v, got, want)
		}
	}
	for _, tc := range []struct{ table, dir string }{{"raw_upi_transactions_v1", raw}, {"aggregated_upi_transactions", aggDir}} {
		want := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "changes", "--table", tc.table, "--from", "0"))
		got := decodeRows(t, runOK(t, "--format", "json", "delta-changes", tc.dir, "--from", "0"))
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s change feed:\n delta-changes %v\n changes %v", tc.table, got, want)
		}
	}
	// The seed's final table, as a Spark user would see it.
	table := runOK(t, "delta-show", aggDir)
	for _, line := range []string{"| M001        | 500.00      | -500.00       | 0.00      |", "| M003        | 1500.00     | 0.00          | 1500.00   |"} {
		if !strings.Contains(table, line) {
			t.Errorf("delta-show table output lacks %q:\n%s", line, table)
		}
	}
	// Exporting again with nothing new writes nothing (no versions: null).
	again := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "export", "--out", out))
	for _, r := range again {
		if r["from_version"] != nil || r["to_version"] != nil || r["files_added"] != 0.0 {
			t.Errorf("re-export: %v", r)
		}
	}
	csv := runOK(t, "--format", "csv", "delta-changes", raw, "--from", "3", "--to", "3")
	if !strings.HasPrefix(csv, "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,_change_type,_commit_version,_commit_timestamp\n") {
		t.Errorf("csv header: %q", csv)
	}
}

func TestExportOneTable(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	runOK(t, "--data-dir", data, "demo")
	runOK(t, "--data-dir", data, "export", "--out", out, "--table", "aggregated_upi_transactions")
	if _, err := os.Stat(filepath.Join(out, "raw_upi_transactions_v1")); !os.IsNotExist(err) {
		t.Errorf("--table aggregated_upi_transactions also wrote the raw table (%v)", err)
	}
	if _, _, code := run(t, nil, "--data-dir", data, "export", "--out", out, "--table", "nope"); code != 2 {
		t.Errorf("unknown --table: exit %d, want 2", code)
	}
}

func TestDeltaReaderErrors(t *testing.T) {
	empty := t.TempDir()
	_, errOut, code := run(t, nil, "delta-show", empty)
	if code != 1 || !strings.Contains(errOut, "not a Delta table") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("delta-show of an empty dir: exit %d, stderr %q", code, errOut)
	}
	if _, _, code := run(t, nil, "delta-changes", empty); code != 2 {
		t.Errorf("delta-changes without --from: exit %d, want 2", code)
	}
	fixtures := filepath.Join("..", "..", "..", "shared", "fixtures", "delta")
	if _, err := os.Stat(fixtures); err != nil {
		t.Skip("Delta fixtures not found")
	}
	basic := filepath.Join(fixtures, "basic-with-inserts-deletes-checkpoint")
	if rows := decodeRows(t, runOK(t, "--format", "json", "delta-show", basic)); len(rows) != 41 {
		t.Errorf("basic-with-inserts-deletes-checkpoint: %d rows, want 41", len(rows))
	}
	_, errOut, code = run(t, nil, "delta-changes", basic, "--from", "0")
	if code != 1 || !strings.Contains(errOut, "change data feed not enabled") {
		t.Errorf("delta-changes of a non-CDF table: exit %d, stderr %q", code, errOut)
	}
	// Spark's _commit_timestamp (no in-commit timestamps): the commit file's
	// mtime, which git does not keep; set it as the writer had it.
	cdf := filepath.Join(t.TempDir(), "cdf-table")
	if err := os.CopyFS(cdf, os.DirFS(filepath.Join(fixtures, "cdf-table"))); err != nil {
		t.Fatal(err)
	}
	mt := time.UnixMilli(1703265018828) // version 0's commitInfo.timestamp
	if err := os.Chtimes(filepath.Join(cdf, "_delta_log", "00000000000000000000.json"), mt, mt); err != nil {
		t.Fatal(err)
	}
	rows := decodeRows(t, runOK(t, "--format", "json", "delta-changes", cdf, "--from", "0"))
	if len(rows) != 23 || rows[0]["_commit_timestamp"] != "2023-12-22T17:10:18.828Z" {
		t.Errorf("cdf-table change feed: %d rows, first %v", len(rows), rows[0])
	}
}

// TestDeltaShowNestedNaNAndNTZ reads a real Spark table with struct, array
// and map columns, NaN and infinite doubles and timestamp_ntz values, with
// input.timezone +05:30: JSON output must be valid JSON with nested values as
// objects and arrays, NaN/±Inf as strings; timestamps are RFC 3339 in UTC
// as everywhere else (input.timezone is for reading input), timestamp_ntz
// values keep their wall-clock time and get no zone.
func TestDeltaShowNestedNaNAndNTZ(t *testing.T) {
	table := filepath.Join("..", "..", "cdc", "delta", "testdata", "spark", "nested")
	env := []string{"UPICDC_INPUT_TIMEZONE=Asia/Kolkata"}
	out, errOut, code := run(t, env, "--format", "json", "delta-show", table)
	if code != 0 {
		t.Fatalf("delta-show: exit %d: %s", code, errOut)
	}
	byID := map[float64]map[string]any{}
	for _, r := range decodeRows(t, out) { // fails on a bare NaN
		byID[r["id"].(float64)] = r
	}
	one, two := byID[1], byID[2]
	if one == nil || two == nil || len(byID) != 3 {
		t.Fatalf("rows: %v", byID)
	}
	s, _ := one["s"].(map[string]any)
	if s == nil || s["b"] != "uno" || s["t"] != "2024-01-02T03:04:05.123456Z" ||
		!reflect.DeepEqual(s["inner"], map[string]any{"x": 1.5, "amount": 500.25}) {
		t.Errorf("struct column: %#v", one["s"])
	}
	if !reflect.DeepEqual(one["arr"], []any{7.0, 8.0}) || !reflect.DeepEqual(one["m"], map[string]any{"x": 1.0, "y": nil}) ||
		!reflect.DeepEqual(one["arrs"], []any{map[string]any{"k": 10.0, "v": "ten"}, nil}) ||
		!reflect.DeepEqual(one["mi"], map[string]any{"1": []any{"a", nil}, "2": nil}) {
		t.Errorf("array/map columns: %v %v %v %v", one["arr"], one["m"], one["arrs"], one["mi"])
	}
	if one["d"] != "-Infinity" || two["d"] != "Infinity" {
		t.Errorf("infinite doubles: %v, %v", one["d"], two["d"])
	}
	if one["ntz"] != "2030-06-30T23:59:59.999999" {
		t.Errorf("timestamp_ntz: %v, want 2030-06-30T23:59:59.999999", one["ntz"])
	}
	changes, errOut, code := run(t, env, "--format", "json", "delta-changes", table, "--from", "0")
	if code != 0 {
		t.Fatalf("delta-changes: exit %d: %s", code, errOut)
	}
	nan := 0
	for _, r := range decodeRows(t, changes) {
		if r["d"] == "NaN" {
			nan++
		}
	}
	if nan != 2 { // the insert and the update's pre-image of id 1
		t.Errorf("%d change rows with d NaN, want 2:\n%s", nan, changes)
	}
	text, errOut, code := run(t, env, "delta-show", table)
	if code != 0 {
		t.Fatalf("delta-show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{`{"a":1,"b":"uno","t":"2024-01-02T03:04:05.123456Z","inner":{"x":1.5,"amount":500.25}}`, `[7,8]`, "-Infinity", "2030-06-30T23:59:59.999999 "} {
		if !strings.Contains(text, want) {
			t.Errorf("table output lacks %q:\n%s", want, text)
		}
	}
}

// TestExportAfterSparkVacuum: after Spark's VACUUM commits (real ones, from
// cdc/delta/testdata/spark/foreign-vacuum) export is refused with what to
// do, not with "run export again", which could never succeed.
func TestExportAfterSparkVacuum(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	runOK(t, "--data-dir", data, "demo")
	runOK(t, "--data-dir", data, "export", "--out", out)
	foreign, err := filepath.Glob(filepath.Join("..", "..", "cdc", "delta", "testdata", "spark", "foreign-vacuum", "*.json"))
	if err != nil || len(foreign) == 0 {
		t.Fatalf("foreign commits: %v %v", foreign, err)
	}
	for _, p := range foreign {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "raw_upi_transactions_v1", "_delta_log", filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code := run(t, nil, "--data-dir", data, "export", "--out", out)
	if code != 1 || !strings.Contains(errOut, "VACUUM START") || !strings.Contains(errOut, "only writer") || strings.Contains(errOut, "run export again") {
		t.Errorf("export after Spark's VACUUM: exit %d, stderr %q", code, errOut)
	}
}

func TestExportVacuum(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "delta")
	runOK(t, "--data-dir", data, "demo")
	aggDir := filepath.Join(out, "aggregated_upi_transactions")
	runOK(t, "--data-dir", data, "export", "--out", out)
	before, err := filepath.Glob(filepath.Join(aggDir, "*.parquet"))
	if err != nil || len(before) < 2 {
		t.Fatalf("data files before vacuum: %v, %v", before, err)
	}
	if _, _, code := run(t, nil, "--data-dir", data, "export", "--out", out, "--retain", "1h"); code != 2 {
		t.Errorf("--retain without --vacuum: exit %d, want 2", code)
	}
	// A retention of 0 keeps only the latest version.
	res := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "export", "--out", out, "--vacuum", "--retain", "0s"))
	if len(res) != 5 || res[1]["table"] != "aggregated_upi_transactions" || res[1]["oldest_version"] != 3.0 || res[1]["files_removed"].(float64) < 1 {
		t.Fatalf("export --vacuum result: %v", res)
	}
	after, err := filepath.Glob(filepath.Join(aggDir, "*.parquet"))
	if err != nil || len(after) >= len(before) {
		t.Errorf("data files: %d before vacuum, %d after (%v)", len(before), len(after), err)
	}
	want := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "aggregates"))
	got := decodeRows(t, runOK(t, "--format", "json", "delta-show", aggDir))
	sort.Slice(got, func(i, j int) bool { return got[i]["merchant_id"].(string) < got[j]["merchant_id"].(string) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("latest after vacuum:\n delta-show %v\n aggregates %v", got, want)
	}
	wantCh := decodeRows(t, runOK(t, "--data-dir", data, "--format", "json", "changes", "--table", "aggregated_upi_transactions", "--from", "3"))
	gotCh := decodeRows(t, runOK(t, "--format", "json", "delta-changes", aggDir, "--from", "3"))
	if len(wantCh) == 0 || !reflect.DeepEqual(gotCh, wantCh) {
		t.Errorf("change feed of the retained version:\n delta-changes %v\n changes %v", gotCh, wantCh)
	}
	if _, _, code := run(t, nil, "--format", "json", "delta-show", aggDir, "--version", "0"); code == 0 {
		t.Errorf("version 0, vacuumed away, still reads")
	}
}
