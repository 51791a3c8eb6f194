package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// TestUsageErrorsExit2 runs the real binary with mistakes in how it is
// called: each exits 2 with one clean line on stderr.
func TestUsageErrorsExit2(t *testing.T) {
	data := t.TempDir()
	runOK(t, "--data-dir="+data, "demo")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"aggregate"}, `upicdc: unknown command "aggregate" (did you mean "aggregates"?)` + "\n"},
		{[]string{"--data-dir", data, "aggregate", "--version", "1"}, `upicdc: unknown command "aggregate" (did you mean "aggregates"?)` + "\n"},
		{[]string{"frobnicate"}, `upicdc: unknown command "frobnicate" (see "upicdc --help")` + "\n"},
		{[]string{"config", "shw"}, `upicdc: unknown command "shw" for "upicdc config" (did you mean "show"?)` + "\n"},
		{[]string{"txn"}, "upicdc: txn: accepts 1 arg(s), received 0 (usage: upicdc txn ID)\n"},
		{[]string{"--data-dir", data, "process", "extra"}, "upicdc: process: unknown command \"extra\" for \"upicdc process\" (usage: upicdc process [--available-now])\n"},
		{[]string{"--data-dir", data, "aggregates", "--version", "-1"}, "upicdc: --version -1: versions start at 0 (leave --version out for the latest)\n"},
		{[]string{"--data-dir", data, "changes", "--table", "raw_upi_transactions_v1", "--from", "-2"}, "upicdc: --from -2: versions start at 0\n"},
		{[]string{"aggregates", "--nope"}, "upicdc: unknown flag: --nope\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, nil, tc.args...)
			if code != 2 || errOut != tc.want || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2, stderr %q", code, errOut, out, tc.want)
			}
		})
	}
	// Not usage errors: a version that does not exist is a failure (1), and
	// no subcommand shows the help.
	if _, errOut, code := run(t, nil, "--data-dir", data, "aggregates", "--version", "99"); code != 1 {
		t.Errorf("--version 99: exit %d, %q", code, errOut)
	}
	if out, _, code := run(t, nil, "config"); code != 0 || !strings.Contains(out, "show") {
		t.Errorf("config: exit %d\n%s", code, out)
	}
}

// TestUnknownEnvVarRefused: a mistyped UPICDC_* variable stops the binary
// with a suggestion; the test suite's own variables do not.
func TestUnknownEnvVarRefused(t *testing.T) {
	data := t.TempDir()
	_, errOut, code := run(t, []string{"UPICDC_STREAM_TRGGER=1s"}, "--data-dir", data, "config", "show")
	if want := "upicdc: config: environment variable UPICDC_STREAM_TRGGER: unknown key (did you mean UPICDC_STREAM_TRIGGER?)\n"; code != 1 || errOut != want {
		t.Errorf("exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
	if _, errOut, code := run(t, []string{"UPICDC_BENCH_10M=1", "UPICDC_SERVE_LATENCY=1", "UPICDC_INTEROP_VENV=/x"}, "--data-dir", data, "config", "show"); code != 0 {
		t.Errorf("test-suite variables: exit %d, %q", code, errOut)
	}
}

// TestConfigShowResolvesDirs: inbox.dir and export.dir show the directories
// used, not the empty string that means "under data_dir".
func TestConfigShowResolvesDirs(t *testing.T) {
	data := t.TempDir()
	var rows []map[string]string
	decode(t, runOK(t, "--data-dir", data, "config", "show", "--format=json"), &rows)
	got := map[string]string{}
	for _, r := range rows {
		got[r["key"]] = r["value"]
	}
	if got["inbox.dir"] != filepath.Join(data, "inbox") || got["export.dir"] != filepath.Join(data, "export") {
		t.Errorf("inbox.dir %q, export.dir %q", got["inbox.dir"], got["export.dir"])
	}
	_, errOut, code := run(t, []string{"UPICDC_INBOX_DIR=/srv/in"}, "--data-dir", data, "config", "show")
	if code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ := run(t, []string{"UPICDC_INBOX_DIR=/srv/in"}, "--data-dir", data, "config", "show", "--format=csv")
	if !strings.Contains(out, "inbox.dir,/srv/in\n") || !strings.Contains(out, "export.dir,"+filepath.Join(data, "export")+"\n") {
		t.Errorf("config show with UPICDC_INBOX_DIR:\n%s", out)
	}
}

// TestMissingDataDir: process refuses a data dir without a store (a typo
// must not print an empty table and exit 0); ingest creates one and says so.
func TestMissingDataDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo")
	out, errOut, code := run(t, nil, "--data-dir", missing, "process")
	if code != 1 || out != "" || !strings.Contains(errOut, store.ErrNoStore.Error()) {
		t.Errorf("process: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("process created %s (%v)", missing, err)
	}
	out, errOut, code = run(t, nil, "--data-dir", missing, "ingest", "../../examples/batches/batch1.csv")
	if code != 0 || errOut != "upicdc: created a new store in "+missing+"\n" || !strings.Contains(out, "batch1.csv") {
		t.Errorf("ingest: exit %d, stderr %q\n%s", code, errOut, out)
	}
	// The second time there is a store: nothing to say.
	if _, errOut, code := run(t, nil, "--data-dir", missing, "ingest", "../../examples/batches/batch2.csv"); code != 0 || errOut != "" {
		t.Errorf("second ingest: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := run(t, nil, "--data-dir", missing, "process"); code != 0 || errOut != "" {
		t.Errorf("process: exit %d, stderr %q", code, errOut)
	}
}

func TestBenchRetentionScenario(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "size.svg")
	rows := decodeRows(t, runOK(t, "--format", "json", "bench", "--scenario", "retention", "--days", "4", "--retain-days", "1",
		"--day-rows", "1500", "--svg", svg))
	if len(rows) != 4 {
		t.Fatalf("%d days reported: %v", len(rows), rows)
	}
	last := rows[3]
	for _, col := range []string{"csv_bytes", "store_off", "store_retained", "retained_used", "store_compacted"} {
		if v, ok := last[col].(float64); !ok || v <= 0 {
			t.Errorf("day 4 %s = %v", col, last[col])
		}
	}
	// Retention and compaction keep the store smaller than keeping everything.
	if last["store_compacted"].(float64) >= last["store_off"].(float64) || last["retained_used"].(float64) > last["store_retained"].(float64) {
		t.Errorf("day 4: %v", last)
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "<svg") || strings.Count(string(data), "<polyline") != 5 {
		t.Errorf("plot:\n%s", data)
	}
	if _, _, code := run(t, nil, "bench", "--scenario", "nope"); code != 2 {
		t.Errorf("unknown scenario: exit %d, want 2", code)
	}
}
