package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
)

// writeSlowly creates path in place (no rename) and writes a header and rows
// rows to it, pausing between rows, as a slow producer does.
func writeSlowly(path string, file, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for r := range rows {
		line := fmt.Sprintf("S%d-%03d,u%d,M%d,%d,2024-12-21 10:00:00,completed\n", file, r, r, file, 100+r)
		if r == 0 {
			line = csvHeader + line
		}
		if _, err := f.WriteString(line); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // the producer is slow; the inbox must not care how slow
	}
	return f.Close()
}

// TestInboxSlowWriterLosesNoRow: files created in the inbox and written row
// by row in place are not taken while they change: only once their size and
// modification time stayed the same for inbox.settle (on the daemon's clock,
// here a fake one that moves only when the test says). Every row is merged.
func TestInboxSlowWriterLosesNoRow(t *testing.T) {
	clock, cfg, d := openOnFakeClock(t, time.Hour)
	const files, rows = 6, 30
	var wg sync.WaitGroup
	errs := make([]error, files)
	for i := range files {
		wg.Go(func() { errs[i] = writeSlowly(filepath.Join(cfg.InboxDir(), fmt.Sprintf("slow%d.csv", i)), i, rows) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	processed := filepath.Join(cfg.InboxDir(), ProcessedDir)
	countProcessed := func() int {
		es, err := os.ReadDir(processed)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	// The daemon's clock has not moved: no file has been quiet for settle.
	if st, err := d.Status(); err != nil || st.Version(cdc.RawTable) != 0 || countProcessed() != 0 {
		t.Fatalf("raw version %d (%v), %d files in processed/: a file was taken while being written", st.Version(cdc.RawTable), err, countProcessed())
	} else if st.Inbox.BacklogFiles != files {
		t.Errorf("backlog %d, want the %d waiting files counted", st.Inbox.BacklogFiles, files)
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not a timing assumption
	for countProcessed() < files {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d files taken after they settled", countProcessed(), files)
		}
		clock.Advance(cfg.Inbox.Settle)
		time.Sleep(time.Millisecond)
	}
	if rejected, _ := os.ReadDir(filepath.Join(cfg.InboxDir(), RejectedDir)); len(rejected) != 0 {
		t.Errorf("rejected: %v", rejected)
	}
	h, err := d.DB().History("raw_upi_transactions_v1")
	if err != nil {
		t.Fatal(err)
	}
	var inserted int64
	for _, c := range h[1:] {
		inserted += c.OperationMetrics["numTargetRowsInserted"]
	}
	if len(h) != files+1 || inserted != files*rows {
		t.Errorf("%d commits inserting %d rows, want %d commits of %d rows each: rows were lost", len(h)-1, inserted, files, rows)
	}
}

// TestInboxTakesRenamedFilesAtOnce: a file renamed from a temporary name in
// the inbox is complete: it is taken without waiting for inbox.settle.
func TestInboxTakesRenamedFilesAtOnce(t *testing.T) {
	_, cfg, d := openOnFakeClock(t, time.Hour)
	tmp := filepath.Join(cfg.InboxDir(), "b1.csv.partial")
	if err := os.WriteFile(tmp, []byte(csvHeader+"T1,u1,M1,100,2024-12-21 10:00:00,completed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cfg.InboxDir(), "b1.csv")); err != nil {
		t.Fatal(err)
	}
	// The fake clock never moves in this test.
	waitUntil(t, func() bool {
		_, err := os.Stat(filepath.Join(cfg.InboxDir(), ProcessedDir, "b1.csv"))
		return err == nil
	})
	if st, err := d.Status(); err != nil || st.Version(cdc.RawTable) != 1 {
		t.Errorf("raw version %d (%v), want 1", st.Version(cdc.RawTable), err)
	}
}

// TestRefused: the reject-or-retry decision is made from the error's type:
// any *cdc.ParseError (whatever kind it wraps, including kinds this package
// has never heard of) and the inbox's own badFileError reject the file;
// everything else (the store, the disk, shutdown) is retried.
func TestRefused(t *testing.T) {
	errNewKind := errors.New("a kind of bad input added after this test was written")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"parse error of an unknown kind", &cdc.ParseError{File: "b.csv", Pos: 3, Err: errNewKind}, true},
		{"wrapped parse error", fmt.Errorf("ingest %w", &cdc.ParseError{File: "b.csv", Err: cdc.ErrMalformed}), true},
		{"symbolic link", &badFileError{Name: "l.csv", Reason: "is a symbolic link"}, true},
		{"unreadable", fmt.Errorf("take: %w", &badFileError{Name: "u.csv", Reason: "cannot be read", Err: fs.ErrPermission}), true},
		{"disk full", fmt.Errorf("ingest b.csv: commit: %w", syscall.ENOSPC), false},
		{"store permission", fmt.Errorf("ingest b.csv: %w", &fs.PathError{Op: "open", Path: "upicdc.db", Err: fs.ErrPermission}), false},
		{"shutdown", fmt.Errorf("ingest b.csv: %w", context.Canceled), false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := refused(tc.err); got != tc.want {
				t.Errorf("refused(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestInboxUnreadableFileIsRejected: a file the daemon may not read is the
// file's fault: it goes to rejected/ with the reason, and is not retried.
func TestInboxUnreadableFileIsRejected(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	_, cfg, _ := openOnFakeClock(t, time.Hour)
	tmp := filepath.Join(cfg.InboxDir(), ".secret.csv")
	if err := os.WriteFile(tmp, []byte(csvHeader), 0o000); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cfg.InboxDir(), "secret.csv")); err != nil {
		t.Fatal(err)
	}
	errFile := filepath.Join(cfg.InboxDir(), RejectedDir, "secret.csv.error")
	waitUntil(t, func() bool { _, err := os.Stat(errFile); return err == nil })
	if b, err := os.ReadFile(errFile); err != nil || !strings.Contains(string(b), "cannot be read") {
		t.Errorf("secret.csv.error = %q, %v", b, err)
	}
}
