//go:build unix

package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon"
)

// TestInboxAuditsEveryOutcome: each file the inbox takes, whatever becomes
// of it, leaves one pipeline_audit row with origin "inbox"; a refused file
// (bad content, or not a regular file) leaves nothing else.
func TestInboxAuditsEveryOutcome(t *testing.T) {
	cfg := testConfig(t)
	inbox := cfg.InboxDir()
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	const head = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n"
	if err := syscall.Mkfifo(filepath.Join(inbox, "pipe.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, daemon.Options{Config: cfg})
	b1 := read(t, batches+"batch1.csv")
	drop(t, inbox, "batch1.csv", b1, time.Time{})
	waitFor(t, "batch1.csv to be merged", func() bool { v, _ := d.DB().LatestVersion(cdc.RawTable); return v == 1 })
	drop(t, inbox, "copy.csv", b1, time.Time{})
	drop(t, inbox, "empty.csv", []byte(head), time.Time{})
	drop(t, inbox, "bad.csv", []byte(head+"T9,a@x,M1,12.345,2024-12-21 10:00:00,completed\n"), time.Time{})
	waitFor(t, "every file to leave the inbox", func() bool {
		return len(names(t, filepath.Join(inbox, daemon.ProcessedDir))) == 3 && len(names(t, filepath.Join(inbox, daemon.RejectedDir))) == 4
	})
	settled(t, d)

	got := map[string]cdc.Audit{}
	if err := cdc.ScanAudit(context.Background(), d.DB(), func(a cdc.Audit) error { got[a.File] = a; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"batch1.csv": "merged", "copy.csv": "duplicate", "empty.csv": "empty", "bad.csv": "rejected", "pipe.csv": "rejected"}
	if len(got) != len(want) {
		t.Errorf("audit rows %+v, want one for each of %v", got, want)
	}
	for file, outcome := range want {
		if a := got[file]; a.Outcome != outcome || a.Origin != "inbox" {
			t.Errorf("%s: outcome %q origin %q, want %q from the inbox", file, a.Outcome, a.Origin, outcome)
		}
	}
	if a := got["batch1.csv"]; a.RawVersion != 1 || a.RowsRead != 3 || a.Inserted != 3 || a.Bytes != int64(len(b1)) || a.FileTotals.Initiated != 300000 || a.Applied != a.FileTotals {
		t.Errorf("batch1.csv: %+v", a)
	}
	if a := got["pipe.csv"]; !strings.Contains(a.Reason, "named pipe") {
		t.Errorf("pipe.csv reason %q", a.Reason)
	}
	if v, _ := d.DB().LatestVersion(cdc.RawTable); v != 1 {
		t.Errorf("raw version %d: only batch1.csv changes data", v)
	}
}
