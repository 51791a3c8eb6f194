package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestBackupWhileServing backs up through serve's API under load: files
// keep arriving in its inbox, and the processor runs, for as long as the
// backups take; the restored copy passes check and reconcile.
func TestBackupWhileServing(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data, nil)
	inbox := filepath.Join(data, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var dropped atomic.Int64
	stop := make(chan struct{})
	wg.Go(func() { // load: a stream of files into the inbox until the backups are done
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			dropFile(t, inbox, fmt.Sprintf("l%04d.csv", i), batchFile(fmt.Sprintf("L%04d", i), fmt.Sprintf("M%d", i%3), 500))
			dropped.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	p.eventually("the load to be merged", func() bool { return p.status().RawVersion() >= 5 })
	backup := filepath.Join(t.TempDir(), "live.bak")
	var merged []int64
	for i := range 3 {
		merged = append(merged, p.status().RawVersion())
		out, errOut, code := run(t, []string{"UPICDC_HTTP_LISTEN=" + p.addr}, "--data-dir="+data, "backup", "--out", backup)
		if code != 0 || !strings.Contains(out, "through serve") {
			t.Fatalf("backup %d while serving: exit %d\n%s%s\n%s", i, code, out, errOut, p.log())
		}
	}
	merged = append(merged, p.status().RawVersion())
	close(stop)
	wg.Wait()
	if merged[len(merged)-1] <= merged[0] {
		t.Errorf("no file was merged while the backups ran (raw versions %v)", merged)
	}
	p.eventually("every file merged and processed", func() bool {
		st := p.status()
		return st.Inbox.BacklogFiles == 0 && st.RawVersion() == dropped.Load() && st.Stream.VersionsBehind == 0
	})
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
