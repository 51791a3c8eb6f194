package daemon_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon"
)

// dropAs renames a complete file into dir under name from a short temporary
// name (a long name plus ".tmp" would not fit the file system).
func dropAs(t *testing.T, dir, name string, body []byte) {
	t.Helper()
	f, err := os.CreateTemp(dir, ".drop-*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestInboxLongNames: a refused file with a 255-byte name (the longest the
// file system allows) is rejected with its reason beside it, and a 255-byte
// name taken twice lands in processed/ twice; nothing is left to retry.
func TestInboxLongNames(t *testing.T) {
	cfg := testConfig(t)
	d := start(t, daemon.Options{Config: cfg})
	inbox := cfg.InboxDir()
	long := strings.Repeat("n", 251) + ".csv"
	bad := []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT9,u,M9,1.234,2024-12-21 10:00:00,completed\n")
	dropAs(t, inbox, long, bad)
	rejected := filepath.Join(inbox, daemon.RejectedDir)
	waitFor(t, "the long name to be rejected", func() bool { return len(names(t, rejected)) == 2 })
	got := names(t, rejected)
	errorFile := got[0]
	if !strings.HasSuffix(errorFile, ".error") {
		errorFile = got[1]
	}
	file := strings.TrimSuffix(errorFile, ".error")
	if !slices.Contains(got, file) || !strings.HasPrefix(file, strings.Repeat("n", 200)) {
		t.Errorf("rejected/ = %q, want the file (recognisably named) and FILE.error", got)
	}
	if msg := string(read(t, filepath.Join(rejected, errorFile))); !strings.Contains(msg, long) || !strings.Contains(msg, "has more than 2 decimals") {
		t.Errorf("%s = %q, want the original name and the reason", errorFile, msg)
	}
	if got := read(t, filepath.Join(rejected, file)); !bytes.Equal(got, bad) {
		t.Errorf("rejected file holds %q", got)
	}

	for i, b := range []string{"batch1.csv", "batch2.csv"} {
		dropAs(t, inbox, long, read(t, batches+b))
		waitFor(t, b+" under the long name to be processed", func() bool {
			return len(names(t, filepath.Join(inbox, daemon.ProcessedDir))) == i+1
		})
	}
	st := settled(t, d)
	if st.Version(cdc.RawTable) != 2 || st.LastError != nil {
		t.Errorf("raw version %d, last error %+v; want both files merged and no error", st.Version(cdc.RawTable), st.LastError)
	}
	for _, n := range names(t, inbox) {
		if n != daemon.ProcessedDir && n != daemon.RejectedDir {
			t.Errorf("%s left in the inbox", n)
		}
	}
}
