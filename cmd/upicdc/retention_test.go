package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRetentionEndToEnd: consumers hold the horizon, vacuum removes the
// change feed below it, reads below it are refused naming it, the store
// still passes check and reconcile, and backup, restore and compact keep
// it so.
func TestRetentionEndToEnd(t *testing.T) {
	data := t.TempDir()
	dd := "--data-dir=" + data
	env := []string{"UPICDC_RETENTION_VERSIONS=1", "UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER=1"}
	runEnv := func(args ...string) (string, string, int) { return run(t, env, append([]string{dd}, args...)...) }
	okEnv := func(args ...string) string {
		t.Helper()
		out, errOut, code := runEnv(args...)
		if code != 0 {
			t.Fatalf("upicdc %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	batches := "../../examples/batches/"
	okEnv("ingest", batches+"batch1.csv", batches+"batch2.csv", batches+"batch3.csv")
	okEnv("process", "--available-now")
	before := okEnv("aggregates")

	okEnv("consumers", "add", "reader", "--at", "2")
	var st []map[string]any
	decode(t, okEnv("retention", "--format=json"), &st)
	if st[0]["table"] != "raw_upi_transactions_v1" || jsonText(st[0]["vacuum_to"]) != "1" || st[0]["held_by"] != "reader" ||
		!strings.Contains(st[0]["consumers"].(string), "reader (registered) at 2") || !strings.Contains(st[0]["consumers"].(string), "merchant_aggregates (stream) at 4") {
		t.Fatalf("retention before vacuum: %v", st[0])
	}
	if jsonText(st[0]["reclaimable_bytes"]) == "0" {
		t.Errorf("nothing reclaimable: %v", st[0])
	}
	out := okEnv("vacuum")
	if !strings.Contains(out, "raw_upi_transactions_v1") {
		t.Errorf("vacuum output:\n%s", out)
	}
	okEnv("consumers", "remove", "reader")
	okEnv("vacuum")
	decode(t, okEnv("retention", "--format=json"), &st)
	if jsonText(st[0]["horizon"]) != "2" {
		t.Fatalf("raw horizon after the consumer left: %v", st[0])
	}

	_, errOut, code := runEnv("changes", "--table", "raw_upi_transactions_v1", "--from", "1")
	if code == 0 || !strings.Contains(errOut, "below the retention horizon (version 2)") {
		t.Errorf("changes below the horizon: exit %d: %s", code, errOut)
	}
	_, errOut, code = runEnv("aggregates", "--version", "1")
	if code == 0 || !strings.Contains(errOut, "retention horizon") {
		t.Errorf("aggregates below the horizon: exit %d: %s", code, errOut)
	}
	if got := okEnv("aggregates"); got != before {
		t.Errorf("aggregates after vacuum:\n%s\nwant\n%s", got, before)
	}
	if txn := okEnv("txn", "T002"); !strings.Contains(txn, "failed") {
		t.Errorf("txn T002, last changed before the horizon:\n%s", txn)
	}
	okEnv("reconcile")
	okEnv("check")

	// backup, restore into an empty data dir, compact.
	backup := filepath.Join(t.TempDir(), "upicdc.bak")
	okEnv("backup", "--out", backup)
	restored := t.TempDir()
	runOK(t, "--data-dir="+restored, "restore", "--from", backup)
	if _, errOut, code := run(t, nil, "--data-dir="+restored, "restore", "--from", backup); code == 0 || !strings.Contains(errOut, "already has a store") {
		t.Errorf("restore over a store: exit %d: %s", code, errOut)
	}
	runOK(t, "--data-dir="+restored, "check")
	runOK(t, "--data-dir="+restored, "reconcile")
	if got := runOK(t, "--data-dir="+restored, "aggregates"); got != before {
		t.Errorf("restored aggregates:\n%s", got)
	}
	if out := okEnv("compact"); !strings.Contains(out, "compacted") {
		t.Errorf("compact: %s", out)
	}
	okEnv("check")
	okEnv("reconcile")
	if got := okEnv("aggregates"); got != before {
		t.Errorf("aggregates after compact:\n%s", got)
	}
}

// TestBackupWhileServing backs up through serve's API while files keep
// arriving in its inbox; the restored copy passes check and reconcile.
func TestBackupWhileServing(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data, nil)
	inbox := filepath.Join(data, "inbox")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // load: a stream of files into the inbox
		defer wg.Done()
		for i := range 40 {
			body := fmt.Sprintf("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nL%03d,u@bank,M%d,%d.00,2024-12-21 10:%02d:00,completed\n", i, i%3, i+1, i%60)
			tmp := filepath.Join(inbox, fmt.Sprintf(".l%03d.tmp", i))
			if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(inbox, fmt.Sprintf("l%03d.csv", i))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	backup := filepath.Join(t.TempDir(), "live.bak")
	for i := range 3 {
		out, errOut, code := run(t, []string{"UPICDC_HTTP_LISTEN=" + p.addr}, "--data-dir="+data, "backup", "--out", backup)
		if code != 0 || !strings.Contains(out, "through serve") {
			t.Fatalf("backup %d while serving: exit %d\n%s%s\n%s", i, code, out, errOut, p.log())
		}
	}
	wg.Wait()
	var st struct {
		Retention struct {
			Tables []struct {
				Table     string `json:"table"`
				Consumers []struct {
					Name    string `json:"name"`
					Version int64  `json:"version"`
				} `json:"consumers"`
			} `json:"tables"`
		} `json:"retention"`
	}
	if code := p.get("/api/v1/status", &st); code != 200 || len(st.Retention.Tables) != 5 ||
		st.Retention.Tables[0].Table != "raw_upi_transactions_v1" || len(st.Retention.Tables[0].Consumers) != 1 {
		t.Errorf("status retention: %d %+v", code, st.Retention)
	}
	restored := t.TempDir()
	runOK(t, "--data-dir="+restored, "restore", "--from", backup)
	runOK(t, "--data-dir="+restored, "check")
	runOK(t, "--data-dir="+restored, "reconcile")
}
