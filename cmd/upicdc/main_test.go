package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// binary is the real upicdc, built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "upicdc-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "upicdc")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("build upicdc: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run executes the real binary; env entries are added to a clean environment.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run %v: %v", args, err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// runOK runs the binary and fails the test on a non-zero exit.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, nil, args...)
	if code != 0 {
		t.Fatalf("upicdc %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// runIn runs the command in-process, as cobra tests do.
func runIn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut, nil)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestDemoGolden(t *testing.T) {
	out, err := runIn(t, "demo")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "demo.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("demo output differs from %s:\n%s", golden, out)
	}
}

// TestDemoPrintsTheSeedTables compares the demo's three tables with the
// tables in the seed document itself, when the shared folder is beside the
// repository.
func TestDemoPrintsTheSeedTables(t *testing.T) {
	matches, _ := filepath.Glob("../../../shared/seed/*.txt")
	if len(matches) == 0 {
		t.Skip("shared/seed not beside the repository")
	}
	seed, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	// The seed's per-batch tables are the first three Markdown tables that
	// start with "| merchant_id |".
	tables := regexp.MustCompile(`(?m)^\| merchant_id \|.*\n(?:\|.*\n)+`).FindAllString(string(seed), -1)
	if len(tables) < 3 {
		t.Fatalf("found %d tables in the seed", len(tables))
	}
	out := runOK(t, "demo")
	for i, table := range tables[:3] {
		if !strings.Contains(out, table) {
			t.Errorf("demo output lacks the seed's table %d:\n%s\noutput:\n%s", i+1, table, out)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	data := t.TempDir()
	dd := "--data-dir=" + data
	batches := "../../examples/batches/"

	// JSON Lines batches give the seed's final table too.
	out := runOK(t, dd, "ingest", batches+"batch1.jsonl", batches+"batch2.jsonl", batches+"batch3.jsonl")
	if !strings.Contains(out, "batch3.jsonl") {
		t.Errorf("ingest output:\n%s", out)
	}
	runOK(t, dd, "process", "--available-now")
	var aggs []map[string]any
	decode(t, runOK(t, dd, "aggregates", "--format=json"), &aggs)
	got := ""
	for _, a := range aggs {
		got += a["merchant_id"].(string) + " " + jsonText(a["total_sales"]) + " " + jsonText(a["total_refunds"]) + " " + jsonText(a["net_sales"]) + "\n"
	}
	if want := "M001 500 -500 0\nM002 0 0 0\nM003 1500 0 1500\nM004 0 0 0\n"; got != want {
		t.Errorf("aggregates:\n%s\nwant\n%s", got, want)
	}

	// Resending the same content under another name applies nothing.
	copyPath := filepath.Join(t.TempDir(), "again.csv")
	body, _ := os.ReadFile(batches + "batch3.csv")
	if err := os.WriteFile(copyPath, body, 0o600); err != nil {
		t.Fatal(err)
	}
	first := runOK(t, dd, "ingest", batches+"batch3.csv")
	second := runOK(t, dd, "ingest", copyPath)
	if !strings.Contains(second, "duplicate of batch3.csv (version 4)") || !strings.Contains(first, "merged") {
		t.Errorf("resend:\n%s\n%s", first, second)
	}

	// A bad file: non-zero exit, one line naming file, line and field; nothing changes.
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT9,u,M9,1,2024-12-21 10:00:00,initiated\nT10,u,M9,1.234,2024-12-21 10:00:00,initiated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, nil, dd, "ingest", bad)
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("bad file: exit %d, stderr %q", code, errOut)
	}
	for _, w := range []string{"bad.csv", "line 3", "transaction_amount"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr %q lacks %q", errOut, w)
		}
	}
	// Files after a refused one are not attempted: file order matters.
	later := filepath.Join(t.TempDir(), "later.csv")
	if err := os.WriteFile(later, []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT11,u,M9,1,2024-12-21 11:00:00,initiated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, nil, dd, "ingest", bad, later)
	if code == 0 || !strings.Contains(errOut, "1 later file(s) not attempted") {
		t.Errorf("bad then good file: exit %d, stderr %q", code, errOut)
	}

	var history []map[string]any
	decode(t, runOK(t, dd, "history", "--format=json"), &history)
	if len(history) != 5 { // versions 0..4: the duplicate and the bad file added none
		t.Errorf("history has %d versions, want 5", len(history))
	}
	for _, k := range []string{"version", "timestamp", "operation", "operationParameters", "operationMetrics"} {
		if _, ok := history[1][k]; !ok {
			t.Errorf("history row lacks %q: %v", k, history[1])
		}
	}

	var changes []map[string]any
	decode(t, runOK(t, dd, "changes", "--table=raw_upi_transactions_v1", "--from=2", "--to=2", "--format=json"), &changes)
	if len(changes) != 5 {
		t.Fatalf("version 2 has %d change rows, want 5", len(changes))
	}
	for _, k := range []string{"transaction_id", "upi_id", "merchant_id", "transaction_amount", "transaction_time", "transaction_status", "_change_type", "_commit_version", "_commit_timestamp"} {
		if _, ok := changes[0][k]; !ok {
			t.Errorf("change row lacks %q: %v", k, changes[0])
		}
	}
	if v, ok := changes[0]["_commit_version"].(float64); !ok || v != 2 {
		t.Errorf("_commit_version %v", changes[0]["_commit_version"])
	}
	csvOut := runOK(t, dd, "changes", "--table=aggregated_upi_transactions", "--from=1", "--format=csv")
	if !strings.HasPrefix(csvOut, "merchant_id,total_sales,total_refunds,net_sales,") {
		t.Errorf("csv changes:\n%s", csvOut)
	}

	txnOut := runOK(t, dd, "txn", "T001")
	if strings.Count(txnOut, "T001") != 3 {
		t.Errorf("txn T001:\n%s", txnOut)
	}
	if _, errOut, code := run(t, nil, dd, "txn", "T404"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("txn T404: exit %d, %q", code, errOut)
	}
	if out := runOK(t, dd, "reconcile"); !strings.Contains(out, "0 difference(s)") {
		t.Errorf("reconcile: %s", out)
	}
	if _, errOut, code := run(t, nil, dd, "history", "--format=xml"); code != 2 || !strings.Contains(errOut, "--format") {
		t.Errorf("--format=xml: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, nil, dd, "changes", "--table=nope", "--from=0"); code != 2 || !strings.Contains(errOut, "unknown table") {
		t.Errorf("unknown table: exit %d, %q", code, errOut)
	}
	// The data dir can come from the environment.
	if out, _, code := run(t, []string{"UPICDC_DATA_DIR=" + data}, "aggregates", "--version=1"); code != 0 || !strings.Contains(out, "M003") {
		t.Errorf("UPICDC_DATA_DIR: exit %d\n%s", code, out)
	}
}

func TestReadCommandsNeedAStore(t *testing.T) {
	_, errOut, code := run(t, nil, "--data-dir="+t.TempDir(), "aggregates")
	if code == 0 || !strings.Contains(errOut, "no upicdc store here yet") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

func TestLockedStoreFailsFast(t *testing.T) {
	data := t.TempDir()
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, errOut, code := run(t, nil, "--data-dir="+data, "ingest", "../../examples/batches/batch1.csv")
	if code == 0 || !strings.Contains(errOut, "in use by another upicdc process") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "upicdc.yaml")
	if err := os.WriteFile(cfg, []byte("stream:\n  trigger: 5x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, nil, "--config="+cfg, "aggregates")
	if code == 0 || !strings.Contains(errOut, "stream.trigger") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

// num renders a JSON number as the seed's tables do.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestReconcileExitsNonZeroOnDifferences(t *testing.T) {
	data := t.TempDir()
	dd := "--data-dir=" + data
	runOK(t, dd, "ingest", "../../examples/batches/batch1.csv")
	runOK(t, dd, "process")
	// A rogue writer changes M002's row behind the processor's back.
	rogueWrite(t, data)
	runOK(t, dd, "ingest", "../../examples/batches/batch2.csv")
	runOK(t, dd, "process")
	out, errOut, code := run(t, nil, dd, "reconcile")
	if code != 1 || !strings.Contains(out, "M002") || !strings.Contains(out, "failed_count") || !strings.Contains(errOut, "differ") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

func TestBenchCommand(t *testing.T) {
	out := runOK(t, "bench", "--table-rows=3000", "--file-rows=1000", "--files=2", "--lookups=100", "--format=json")
	var rows []map[string]any
	decode(t, out, &rows)
	if len(rows) != 4 {
		t.Fatalf("bench printed %d phases, want 4:\n%s", len(rows), out)
	}
	// 3000 inserts, then 2 files of 1000 rows (about half updates): the
	// processor reads every change row those made.
	if rows[0]["rows"].(float64) != 3000 || rows[1]["rows"].(float64) != 2000 || rows[2]["rows"].(float64) < 5000 {
		t.Errorf("bench phases:\n%s", out)
	}
	if _, errOut, code := run(t, nil, "bench", "--ids=sorted"); code != 2 || !strings.Contains(errOut, "--ids") {
		t.Errorf("--ids=sorted: exit %d, %q", code, errOut)
	}
}

// corruptM002 adds one to M002's failed_count as a stream of its own
// ("rogue"), which the processor knows nothing of.
func corruptM002(db *store.DB) error {
	_, _, err := db.Process(context.Background(), "rogue", cdc.RawTable, func(tx *store.ProcessTx) error {
		w, err := tx.Table(agg.TotalsTable)
		if err != nil {
			return err
		}
		cur, _, err := w.Get(store.Row{store.S("M002")})
		if err != nil {
			return err
		}
		next := slices.Clone(cur.Row)
		next[w.Schema().Index("failed_count")].Int++
		if err := w.Update(cur.Row, next); err != nil {
			return err
		}
		tx.Commit(1, nil, nil)
		return nil
	})
	return err
}
