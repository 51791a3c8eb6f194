package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const csvHeader = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n"

// TestLastErrorClearsOnRecovery: /api/v1/status shows when the last error
// happened, and stops showing it once the component that failed succeeds.
func TestLastErrorClearsOnRecovery(t *testing.T) {
	clock, cfg, d := openOnFakeClock(t, time.Minute)
	inbox := cfg.InboxDir()
	// A file where processed/ should be: the move after the commit fails,
	// as it would on a full disk.
	processed := filepath.Join(inbox, ProcessedDir)
	if err := os.Remove(processed); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(processed, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(inbox, ".b1.csv.tmp")
	if err := os.WriteFile(tmp, []byte(csvHeader+"T1,u1,M1,100,2024-12-21 10:00:00,completed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, "b1.csv")); err != nil {
		t.Fatal(err)
	}
	status := func() Status {
		t.Helper()
		st, err := d.Status()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitUntil(t, func() bool { return status().LastError != nil })
	failedAt := clock.Now()
	st := status()
	if st.LastError.Component != "inbox" || !st.LastError.Time.Equal(failedAt) || !strings.Contains(st.LastError.Message, ProcessedDir) {
		t.Errorf("last_error %+v, want the inbox's failure at %v", st.LastError, failedAt)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		LastError struct {
			Time string `json:"time"`
		} `json:"last_error"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if at, err := time.Parse(time.RFC3339, doc.LastError.Time); err != nil || !at.Equal(failedAt) {
		t.Errorf("last_error.time %q (%v), want %v in RFC 3339", doc.LastError.Time, err, failedAt)
	}

	// The operator clears the way; the next poll takes the file.
	if err := os.Remove(processed); err != nil {
		t.Fatal(err)
	}
	clock.waitDeadline(t, failedAt.Add(cfg.Inbox.PollInterval))
	clock.Advance(cfg.Inbox.PollInterval)
	waitUntil(t, func() bool {
		_, err := os.Stat(filepath.Join(processed, "b1.csv"))
		return err == nil
	})
	waitUntil(t, func() bool { return status().LastError == nil })
}
