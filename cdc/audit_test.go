package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

func auditRows(t *testing.T, db *store.DB) []cdc.Audit {
	t.Helper()
	var out []cdc.Audit
	if err := cdc.ScanAudit(context.Background(), db, func(a cdc.Audit) error { out = append(out, a); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditRecordsEveryFileOutcome(t *testing.T) {
	dir := t.TempDir()
	db := storetest.Open(t, filepath.Join(dir, "data"), cdc.RawDef(), cdc.AuditDef())
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	first := header +
		"T1,a@x,M1,100.00,2024-12-21 10:00:00,completed,\n" +
		"T2,b@x,M1,50.50,2024-12-21 10:01:00,initiated,\n"
	second := header +
		"T1,a@x,M1,100.00,2024-12-21 10:00:00,completed,\n" + // no-op
		"T2,b@x,M1,50.50,2024-12-21 10:00:00,failed,\n" + // stale: older than the stored row
		"T3,c@x,M2,20.00,2024-12-21 10:02:00,refunded,\n" +
		"T1,,,,2024-12-21 10:05:00,,delete\n"
	for _, f := range []struct{ name, body string }{
		{"1.csv", first}, {"2.csv", second}, {"again.csv", first}, {"empty.csv", header},
		{"bad.csv", header + "T9,a@x,M1,12.345,2024-12-21 10:00:00,completed,\n"}, {"b.xlsx", "whatever"},
	} {
		_, err := m.IngestFile(ctx, write(f.name, f.body))
		var pe *cdc.ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("%s: %v", f.name, err)
		}
	}
	if err := m.RecordRejected(ctx, "fifo.csv", 0, errors.New(strings.Repeat("é", 2*cdc.MaxAuditReason))); err != nil {
		t.Fatal(err)
	}

	got := auditRows(t, db)
	if len(got) != 7 {
		t.Fatalf("%d audit rows, want 7: %+v", len(got), got)
	}
	var summary []string
	for i, a := range got {
		if a.ID != int64(i+1) || a.Origin != "ingest" || a.RecordedAt.IsZero() || a.Duration < 0 {
			t.Errorf("row %d: %+v", i, a)
		}
		summary = append(summary, fmt.Sprintf("%s %s v%d read=%d i=%d u=%d d=%d s=%d n=%d",
			a.File, a.Outcome, a.RawVersion, a.RowsRead, a.Inserted, a.Updated, a.Deleted, a.Stale, a.NoOp))
	}
	want := []string{
		"1.csv merged v1 read=2 i=2 u=0 d=0 s=0 n=0",
		"2.csv merged v2 read=4 i=1 u=0 d=1 s=1 n=1",
		"again.csv duplicate v0 read=0 i=0 u=0 d=0 s=0 n=0",
		"empty.csv empty v0 read=0 i=0 u=0 d=0 s=0 n=0",
		"bad.csv rejected v0 read=0 i=0 u=0 d=0 s=0 n=0",
		"b.xlsx rejected v0 read=0 i=0 u=0 d=0 s=0 n=0",
		"fifo.csv rejected v0 read=0 i=0 u=0 d=0 s=0 n=0",
	}
	if strings.Join(summary, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit rows:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}
	one, two, dup, empty, bad, xlsx, fifo := got[0], got[1], got[2], got[3], got[4], got[5], got[6]
	if one.FileTotals != (cdc.StatusTotals{Completed: 10000, Initiated: 5050}) || one.Applied != one.FileTotals {
		t.Errorf("1.csv totals: file %+v applied %+v", one.FileTotals, one.Applied)
	}
	if two.FileTotals != (cdc.StatusTotals{Completed: 10000, Failed: 5050, Refunded: 2000}) || two.Applied != (cdc.StatusTotals{Refunded: 2000}) {
		t.Errorf("2.csv totals: file %+v applied %+v", two.FileTotals, two.Applied)
	}
	if one.SHA256 != itoaHex(sha(first)) || one.Bytes != int64(len(first)) || one.Reason != "" {
		t.Errorf("1.csv: %+v", one)
	}
	if dup.SHA256 != one.SHA256 || !strings.Contains(dup.Reason, "1.csv") {
		t.Errorf("duplicate: %+v", dup)
	}
	if empty.Bytes != int64(len(header)) || empty.SHA256 == "" {
		t.Errorf("empty: %+v", empty)
	}
	if !strings.Contains(bad.Reason, "12.345") || bad.SHA256 == "" {
		t.Errorf("bad.csv: %+v", bad)
	}
	if !strings.Contains(xlsx.Reason, "unsupported format") || xlsx.Bytes != int64(len("whatever")) || xlsx.SHA256 != "" {
		t.Errorf("b.xlsx: %+v", xlsx)
	}
	if len(fifo.Reason) > cdc.MaxAuditReason || !strings.HasSuffix(fifo.Reason, "…") || !strings.HasPrefix(fifo.Reason, "éé") {
		t.Errorf("long reason not bounded: %d bytes", len(fifo.Reason))
	}
	// A rejected file writes nothing but its audit row.
	if v, err := db.LatestVersion(cdc.RawTable); err != nil || v != 2 {
		t.Errorf("raw version %d %v, want 2", v, err)
	}
	if files, err := db.Files(); err != nil || len(files) != 2 {
		t.Errorf("ledger: %v %v", files, err)
	}
	// Each audit row is its own version; a merged file's is committed with
	// its MERGE and says so.
	ci, err := db.Commit(cdc.AuditTable, 2)
	if err != nil || ci.Operation != "WRITE" || ci.OperationParameters["outcome"] != "merged" || ci.OperationParameters["file"] != "2.csv" {
		t.Errorf("audit commit 2: %+v %v", ci, err)
	}
}

func itoaHex(sum [32]byte) string { return fmt.Sprintf("%x", sum) }

func TestAuditIsNotRecordedWithoutItsTable(t *testing.T) {
	db := storetest.Open(t, t.TempDir(), cdc.RawDef())
	p := filepath.Join(t.TempDir(), "a.csv")
	if err := os.WriteFile(p, []byte(header+"T1,a@x,M1,1.00,2024-12-21 10:00:00,completed,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), p); err != nil || res.Version != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestAuditMergeChild is the child of TestAuditKilledWithMerge.
func TestAuditMergeChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestAuditKilledWithMerge")
	}
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{cdc.RawDef(), cdc.AuditDef()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), os.Getenv(envCrashFile)); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// TestAuditKilledWithMerge SIGKILLs a MERGE at assorted moments: the store
// never holds the MERGE without its audit row, nor the audit row without
// the MERGE.
func TestAuditKilledWithMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	const n = 30_000
	var b strings.Builder
	b.WriteString(header)
	for i := range n {
		fmt.Fprintf(&b, "TX%07d,u%d@bank,M%d,%d.%02d,2024-12-21 10:%02d:00,completed,\n", i, i, i%97, i%5000, i%100, i%60)
	}
	src := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(src, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, delay := range []time.Duration{0, 5 * time.Millisecond, 30 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestAuditMergeChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashFile+"="+src)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay) // any outcome is valid; the delay only varies where the kill lands
			_ = cmd.Process.Kill()
			_ = cmd.Wait()

			db, err := store.Open(dir, store.Options{Tables: []store.TableDef{cdc.RawDef(), cdc.AuditDef()}})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Check(context.Background()); err != nil {
				t.Fatalf("bbolt check after kill: %v", err)
			}
			raw, err := db.LatestVersion(cdc.RawTable)
			if err != nil {
				t.Fatal(err)
			}
			rows := auditRows(t, db)
			switch {
			case raw == 0 && len(rows) == 0:
			case raw == 1 && len(rows) == 1 && rows[0].Outcome == cdc.OutcomeMerged && rows[0].RawVersion == 1 && rows[0].Inserted == n:
				committed++
			default:
				t.Fatalf("MERGE and audit apart: raw version %d, audit rows %+v", raw, rows)
			}
		})
	}
	t.Logf("%d of the kills landed after the commit", committed)
}
