package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `upicdc audit` lists one row per file outcome of `ingest`, filtered by
// --outcome and --since.
func TestAuditCommand(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + filepath.Join(dir, "data")
	b := "../../examples/batches/"
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT9,a@x,M1,12.345,2024-12-21 10:00:00,completed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runOK(t, dd, "ingest", b+"batch1.csv", b+"batch2.csv")
	runOK(t, dd, "ingest", b+"batch1.csv")
	if _, _, code := run(t, nil, dd, "ingest", bad); code == 0 {
		t.Fatal("ingest of a bad file succeeded")
	}
	var rows []map[string]any
	decode(t, runOK(t, dd, "--format=json", "audit"), &rows)
	var got []string
	for _, r := range rows {
		got = append(got, r["file"].(string)+" "+r["outcome"].(string))
	}
	if strings.Join(got, ", ") != "batch1.csv merged, batch2.csv merged, batch1.csv duplicate, bad.csv rejected" {
		t.Fatalf("audit: %v", got)
	}
	if rows[1]["raw_version"] != 2.0 || rows[1]["updated"] != 2.0 || rows[1]["inserted"] != 1.0 || rows[0]["file_initiated"] != 3000.0 || rows[0]["origin"] != "ingest" {
		t.Errorf("batch rows: %v", rows[:2])
	}
	out := runOK(t, dd, "--format=csv", "audit", "--outcome=rejected")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "bad.csv,") || !strings.Contains(out, "12.345") {
		t.Errorf("audit --outcome=rejected:\n%s", out)
	}
	if out := runOK(t, dd, "--format=csv", "audit", "--since=2999-01-01"); strings.Count(out, "\n") != 1 {
		t.Errorf("audit --since in the future:\n%s", out)
	}
	if _, errOut, code := run(t, nil, dd, "audit", "--outcome=lost"); code != 2 || !strings.Contains(errOut, "--outcome") {
		t.Errorf("audit --outcome=lost: exit %d %q", code, errOut)
	}
}
