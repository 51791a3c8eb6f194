package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// seedStore builds a real store with the binary (the seed's three batches,
// processed) and returns the bytes of its file.
func seedStore(t *testing.T) []byte {
	t.Helper()
	data := t.TempDir()
	dd := "--data-dir=" + data
	b := "../../examples/batches/"
	runOK(t, dd, "ingest", b+"batch1.csv", b+"batch2.csv", b+"batch3.csv")
	runOK(t, dd, "process")
	body, err := os.ReadFile(filepath.Join(data, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestEveryCommandRefusesADamagedStore damages copies of a real store in
// each way storetest knows and runs every command that opens the store
// against each: a non-zero exit, one line on stderr naming the file, no Go
// panic or fault trace, and the file's bytes unchanged.
func TestEveryCommandRefusesADamagedStore(t *testing.T) {
	good := seedStore(t)
	newFile := filepath.Join(t.TempDir(), "new.csv")
	if err := os.WriteFile(newFile, []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT900,u,M9,1,2024-12-21 11:00:00,initiated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"ingest", newFile},
		{"process"},
		{"aggregates"},
		{"history"},
		{"changes", "--table=raw_upi_transactions_v1", "--from=0"},
		{"txn", "T001"},
		{"stale", "1"},
		{"reconcile"},
		{"export", "--out=" + filepath.Join(t.TempDir(), "export")},
		{"check"},
		{"serve"},
	}
	for _, d := range storetest.Damages() {
		t.Run(string(d), func(t *testing.T) {
			data := t.TempDir()
			path := filepath.Join(data, store.FileName)
			if err := os.WriteFile(path, good, 0o640); err != nil {
				t.Fatal(err)
			}
			storetest.Apply(t, path, d)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, args := range commands {
				out, errOut, code := run(t, []string{"UPICDC_HTTP_LISTEN=127.0.0.1:0", "UPICDC_SQL_LISTEN=127.0.0.1:0"}, append([]string{"--data-dir=" + data}, args...)...)
				name := strings.Join(args[:1], " ")
				if code == 0 {
					t.Errorf("%s: exit 0 on a damaged store\nstdout:\n%s", name, out)
				}
				if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, path) {
					t.Errorf("%s: stderr is not one line naming %s:\n%s", name, path, errOut)
				}
				want := " is damaged ("
				if d == storetest.Emptied {
					want = " is empty: not a upicdc store (restore it from a backup)"
				}
				if !strings.Contains(errOut, want) {
					t.Errorf("%s: stderr %q lacks %q", name, errOut, want)
				}
				for _, bad := range []string{"panic", "goroutine", "SIGSEGV", "SIGBUS", "fault"} {
					if strings.Contains(out+errOut, bad) {
						t.Errorf("%s: output mentions %q:\n%s\n%s", name, bad, out, errOut)
					}
				}
				after, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(before, after) {
					t.Fatalf("%s wrote into the damaged file", name)
				}
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	good := seedStore(t)
	data := t.TempDir()
	dd := "--data-dir=" + data
	path := filepath.Join(data, store.FileName)
	if err := os.WriteFile(path, good, 0o640); err != nil {
		t.Fatal(err)
	}
	out := runOK(t, dd, "check")
	for _, want := range []string{
		"store file " + path + ": meta pages, size and page trees: ok",
		"bbolt consistency check: ok",
		"against aggregated_upi_transactions version 1, merchant_window_aggregates version 1, merchant_alerts version 1: 0 difference(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check on a sound store lacks %q:\n%s", want, out)
		}
	}
	if out := runOK(t, dd, "check", "--format=json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("check --format=json on a sound store: %s", out)
	}

	// Damage: the findings on stdout, one line on stderr, exit 1.
	storetest.Apply(t, path, storetest.ZeroedMeta1)
	out, errOut, code := run(t, nil, dd, "check")
	if code != 1 || !strings.Contains(out, "meta page 1: zeroed") || !strings.Contains(errOut, "check: "+path+" is damaged (1 problem(s), listed above: meta page 1: zeroed): restore it from a backup") {
		t.Errorf("check on a damaged store: exit %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

func TestCheckReportsReconcileDifferences(t *testing.T) {
	data := t.TempDir()
	dd := "--data-dir=" + data
	runOK(t, dd, "ingest", "../../examples/batches/batch1.csv")
	runOK(t, dd, "process")
	db, err := agg.Open(data, agg.Config{}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A rogue writer changes M002's row behind the processor's back.
	_, _, err = db.Process(context.Background(), "rogue", cdc.RawTable, func(tx *store.ProcessTx) error {
		w, err := tx.Table(agg.TotalsTable)
		if err != nil {
			return err
		}
		cur, _, err := w.Get(store.Row{store.S("M002")})
		if err != nil {
			return err
		}
		next := slices.Clone(cur.Row)
		next[6].Int++ // failed_count
		if err := w.Update(cur.Row, next); err != nil {
			return err
		}
		tx.Commit(1, nil, nil)
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, dd, "ingest", "../../examples/batches/batch2.csv")
	runOK(t, dd, "process")
	out, errOut, code := run(t, nil, dd, "check")
	if code != 1 || !strings.Contains(out, "bbolt consistency check: ok") || !strings.Contains(out, "M002 failed_count") || !strings.Contains(errOut, "differ") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
}
