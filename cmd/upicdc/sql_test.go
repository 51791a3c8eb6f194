package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/upicdc/upicdc/daemon"
)

// TestReadCommandsWhileServing runs every read command on a stopped store
// and again while serve holds it: through the data dir's socket the output,
// stderr and exit status are the same byte for byte.
func TestReadCommandsWhileServing(t *testing.T) {
	data := t.TempDir()
	dd := "--data-dir=" + data
	batches := "../../examples/batches/"
	runOK(t, dd, "ingest", batches+"batch1.csv", batches+"batch2.csv", batches+"batch3.csv")
	runOK(t, dd, "process")

	exportDir := t.TempDir()
	cases := [][]string{
		{"aggregates"},
		{"aggregates", "--version", "1", "--format", "json"},
		{"windows", "--size", "1d", "--merchant", "M001"},
		{"history", "--format", "csv"},
		{"history", "--table", "merchant_window_aggregates"},
		{"changes", "--table", "raw_upi_transactions_v1", "--from", "2"},
		{"txn", "T001"},
		{"txn", "NOPE"}, // an error: same message, same exit status
		{"stale", "1"},
		{"sql", "SELECT merchant_id, net_sales FROM aggregated_upi_transactions AS OF 2 ORDER BY 1"},
		{"sql", "--format", "json", "SELECT window_start AS time, net_sales FROM merchant_window_aggregates WHERE merchant_id='M001' AND window_size='1d' ORDER BY 1"},
		{"sql", "DELETE FROM aggregated_upi_transactions"},
		{"reconcile"},
		{"check"},
		{"windows", "--size", "5m"}, // a usage error (exit 2)
	}
	type result struct {
		out, errOut string
		code        int
	}
	want := make([]result, len(cases))
	for i, args := range cases {
		o, e, c := run(t, nil, append([]string{dd}, args...)...)
		want[i] = result{o, e, c}
	}
	wantExport, _, code := run(t, nil, dd, "export", "--out", filepath.Join(exportDir, "stopped"))
	if code != 0 {
		t.Fatalf("export: exit %d", code)
	}

	p := startServe(t, data, nil)
	sock := filepath.Join(data, daemon.SocketName)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("no command socket: %v\n%s", err, p.log())
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a socket with 0600", sock, fi.Mode())
	}
	for i, args := range cases {
		o, e, c := run(t, nil, append([]string{dd}, args...)...)
		if got := (result{o, e, c}); got != want[i] {
			t.Errorf("upicdc %s while serving:\n got exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr:\n%s",
				strings.Join(args, " "), got.code, got.out, got.errOut, want[i].code, want[i].out, want[i].errOut)
		}
	}
	gotExport, errOut, code := run(t, nil, dd, "export", "--out", filepath.Join(exportDir, "serving"))
	if code != 0 || strings.ReplaceAll(gotExport, "serving", "stopped") != wantExport {
		t.Errorf("export while serving: exit %d\n%s\n%s\nwant\n%s", code, gotExport, errOut, wantExport)
	}

	// ingest writes: while serve runs, the inbox is the way in.
	_, errOut, code = run(t, nil, dd, "ingest", batches+"batch1.csv")
	if code == 0 || !strings.Contains(errOut, filepath.Join(data, "inbox")) {
		t.Errorf("ingest while serving: exit %d, stderr %q; want it to point at the inbox", code, errOut)
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d\n%s", code, p.log())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket outlives serve: %v", err)
	}
}
