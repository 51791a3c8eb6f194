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
	if len(res) != 3 || res[0]["table"] != "raw_upi_transactions_v1" || res[2]["table"] != "merchant_window_aggregates" ||
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
	rows := decodeRows(t, runOK(t, "--format", "json", "delta-changes", filepath.Join(fixtures, "cdf-table"), "--from", "0"))
	if len(rows) != 23 || rows[0]["_commit_timestamp"] != "2023-12-22T17:10:18.828Z" {
		t.Errorf("cdf-table change feed: %d rows, first %v", len(rows), rows[0])
	}
}
