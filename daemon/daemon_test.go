package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
)

const batches = "../examples/batches/"

// seedFinal is the seed's table after its three batches.
const seedFinal = "M001 500 -500 0\nM002 0 0 0\nM003 1500 0 1500\nM004 0 0 0\n"

// testConfig is a daemon config in a temp dir: HTTP on a free port,
// trigger 0s, and a poll interval long enough that only file-system events
// drive the inbox.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SQL.Listen = "127.0.0.1:0"
	cfg.Stream.Trigger = "0s"
	cfg.Inbox.PollInterval = time.Hour
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

// start opens a daemon and closes it (checking the store) at cleanup.
func start(t *testing.T, opts daemon.Options) *daemon.Daemon {
	t.Helper()
	if opts.StoreTimeout == 0 {
		opts.StoreTimeout = 100 * time.Millisecond
	}
	d := daemon.New(opts)
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		// bbolt's consistency check, once the daemon has let go of the file
		// (Tx.Check races with a concurrent writer's freelist).
		db, err := store.Open(opts.Config.DataDir, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Check(context.Background()); err != nil {
			t.Errorf("store check: %v", err)
		}
	})
	return d
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(t *testing.T, d *daemon.Daemon) daemon.Status {
	t.Helper()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// settled waits until the inbox is empty and the aggregates caught up.
func settled(t *testing.T, d *daemon.Daemon) daemon.Status {
	t.Helper()
	var st daemon.Status
	waitFor(t, "the inbox to drain and the processor to catch up", func() bool {
		st = status(t, d)
		return st.Ready && st.Inbox.BacklogFiles == 0 && st.Stream.VersionsBehind == 0 && st.Version(agg.TotalsTable) == st.Stream.Checkpoint.Versions[agg.TotalsTable]
	})
	return st
}

// drop writes a file into dir the way writers must: under a temporary name,
// then renamed, with the given modification time.
func drop(t *testing.T, dir, name string, body []byte, mtime time.Time) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sources(t *testing.T, db *store.DB) []string {
	t.Helper()
	h, err := db.History(cdc.RawTable)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range h {
		if c.Source != nil {
			out = append(out, c.Source.Name)
		}
	}
	return out
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestInboxTakesWaitingFilesOldestFirst(t *testing.T) {
	cfg := testConfig(t)
	inbox := cfg.InboxDir()
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	// Name order is the reverse of age order: age decides.
	base := time.Now().Add(-time.Hour)
	drop(t, inbox, "c.csv", read(t, batches+"batch1.csv"), base)
	drop(t, inbox, "b.jsonl", read(t, batches+"batch2.jsonl"), base.Add(time.Minute))
	drop(t, inbox, "a.csv", read(t, batches+"batch3.csv"), base.Add(2*time.Minute))
	// Not batches (yet): skipped and left alone.
	ignoredNames := []string{".hidden.csv", "upload.csv.tmp", "upload.csv.partial", "UPLOAD.CSV.TMP"}
	for _, n := range ignoredNames {
		if err := os.WriteFile(filepath.Join(inbox, n), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(inbox, "subdir.csv"), 0o755); err != nil {
		t.Fatal(err)
	}

	d := start(t, daemon.Options{Config: cfg})
	st := settled(t, d)
	if got, want := sources(t, d.DB()), []string{"c.csv", "b.jsonl", "a.csv"}; !slices.Equal(got, want) {
		t.Errorf("commit order %v, want %v (oldest first)", got, want)
	}
	if got := aggtest.AggregateLines(t, d.DB(), -1); got != seedFinal {
		t.Errorf("aggregates:\n%s\nwant\n%s", got, seedFinal)
	}
	if got, want := names(t, filepath.Join(inbox, daemon.ProcessedDir)), []string{"a.csv", "b.jsonl", "c.csv"}; !slices.Equal(got, want) {
		t.Errorf("processed/ = %v, want %v", got, want)
	}
	left := names(t, inbox)
	for _, n := range ignoredNames {
		if !slices.Contains(left, n) {
			t.Errorf("%s was taken; it must be ignored", n)
		}
	}
	if st.Version(cdc.RawTable) != 3 || st.Stream.Checkpoint.RawVersion != 3 || st.Stream.VersionsBehind != 0 {
		t.Errorf("status: raw %d agg %d checkpoint %+v", st.Version(cdc.RawTable), st.Version(agg.TotalsTable), st.Stream.Checkpoint)
	}
}

func TestInboxWatchesForNewFiles(t *testing.T) {
	cfg := testConfig(t)
	d := start(t, daemon.Options{Config: cfg})
	waitFor(t, "ready", func() bool { return status(t, d).Ready })
	for i, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		drop(t, cfg.InboxDir(), b, read(t, batches+b), time.Time{})
		waitFor(t, b+" to be processed", func() bool { return status(t, d).Version(agg.TotalsTable) == int64(i+1) })
	}
	settled(t, d)
	if got := aggtest.AggregateLines(t, d.DB(), -1); got != seedFinal {
		t.Errorf("aggregates:\n%s\nwant\n%s", got, seedFinal)
	}
	var st daemon.Status
	if code := get(t, d, "/api/v1/status", &st); code != 200 || !st.Ready || st.Version(cdc.RawTable) != 3 || st.Stream.Trigger != "0s" {
		t.Errorf("/api/v1/status: %d %+v", code, st)
	}
	var ready map[string]string
	if code := get(t, d, "/readyz", &ready); code != 200 || ready["status"] != "ready" {
		t.Errorf("/readyz: %d %v", code, ready)
	}
}

func TestInboxRejectsWithReason(t *testing.T) {
	cfg := testConfig(t)
	d := start(t, daemon.Options{Config: cfg})
	inbox := cfg.InboxDir()
	rejected := filepath.Join(inbox, daemon.RejectedDir)
	good := read(t, batches+"batch1.csv")
	bad := []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT9,u,M9,1.234,2024-12-21 10:00:00,completed\n")
	base := time.Now().Add(-time.Hour)
	drop(t, inbox, "bad.csv", bad, base)
	drop(t, inbox, "notes.txt", []byte("hello"), base.Add(time.Second))
	drop(t, inbox, "good.csv", good, base.Add(2*time.Second))
	waitFor(t, "the first three files", func() bool {
		return len(names(t, rejected)) == 4 && len(names(t, filepath.Join(inbox, daemon.ProcessedDir))) == 1
	})
	// The same name refused again gets a suffix; nothing is overwritten.
	drop(t, inbox, "bad.csv", append(bad, '\n'), time.Time{})
	waitFor(t, "the second bad.csv", func() bool { return len(names(t, rejected)) == 6 })

	want := map[string]string{
		"bad.csv.error":   `bad.csv: line 2: transaction_amount: "1.234" has more than 2 decimals`,
		"bad-1.csv.error": `bad.csv: line 2: transaction_amount`,
		"notes.txt.error": `unsupported format: extension ".txt"`,
	}
	for name, msg := range want {
		if got := string(read(t, filepath.Join(rejected, name))); !strings.Contains(got, msg) {
			t.Errorf("%s = %q, want it to contain %q", name, got, msg)
		}
	}
	for _, n := range []string{"bad.csv", "bad-1.csv", "notes.txt"} {
		if _, err := os.Stat(filepath.Join(rejected, n)); err != nil {
			t.Errorf("rejected/%s: %v", n, err)
		}
	}
	if got := sources(t, d.DB()); !slices.Equal(got, []string{"good.csv"}) {
		t.Errorf("commits %v: a refused file must change nothing", got)
	}
}

func TestInboxCrashBetweenCommitAndMove(t *testing.T) {
	cfg := testConfig(t)
	// A previous daemon committed batch1.csv and died before moving it.
	db, err := agg.Open(cfg.DataDir, agg.Config{}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := read(t, batches+"batch1.csv")
	tmp := filepath.Join(t.TempDir(), "batch1.csv")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ingestWith(db, tmp); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.InboxDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	drop(t, cfg.InboxDir(), "batch1.csv", body, time.Time{})
	// An earlier file of the same name is in processed/ already.
	if err := os.MkdirAll(filepath.Join(cfg.InboxDir(), daemon.ProcessedDir), 0o755); err != nil {
		t.Fatal(err)
	}
	drop(t, filepath.Join(cfg.InboxDir(), daemon.ProcessedDir), "batch1.csv", []byte("older"), time.Time{})

	d := start(t, daemon.Options{Config: cfg})
	st := settled(t, d)
	if st.Version(cdc.RawTable) != 1 {
		t.Errorf("raw version %d, want 1: the file must not be applied twice", st.Version(cdc.RawTable))
	}
	got := names(t, filepath.Join(cfg.InboxDir(), daemon.ProcessedDir))
	if want := []string{"batch1-1.csv", "batch1.csv"}; !slices.Equal(got, want) {
		t.Errorf("processed/ = %v, want %v", got, want)
	}
}

func TestSecondDaemonFailsFast(t *testing.T) {
	cfg := testConfig(t)
	start(t, daemon.Options{Config: cfg})
	second := daemon.New(daemon.Options{Config: cfg, StoreTimeout: 50 * time.Millisecond})
	// ErrLocked comes only from the store's lock timeout: Open gave up
	// instead of waiting (a hang would trip the test timeout).
	err := second.Open(context.Background())
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v, want store.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another upicdc") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

func TestReload(t *testing.T) {
	cfg := testConfig(t)
	next := cfg
	next.Stream.Trigger = "7s"
	next.Stream.MaxVersionsPerTrigger = 5
	next.HTTP.Listen = "127.0.0.1:9"
	next.Log.Level = "debug"
	calls := make(chan struct{}, 10)
	var loadErr error
	level := new(slog.LevelVar)
	d := start(t, daemon.Options{Config: cfg, LogLevel: level, Load: func() (config.Config, error) {
		calls <- struct{}{}
		return next, loadErr
	}})
	d.Reload()
	waitFor(t, "the new trigger", func() bool { return status(t, d).Stream.Trigger == "7s" })
	st := status(t, d)
	if st.Stream.MaxVersionsPerTrigger != 5 {
		t.Errorf("max_versions_per_trigger %d, want 5", st.Stream.MaxVersionsPerTrigger)
	}
	if !slices.Equal(st.PendingRestart, []string{"http.listen"}) {
		t.Errorf("pending_restart %v, want [http.listen]", st.PendingRestart)
	}
	if st.LastReload == nil {
		t.Error("last_reload not set")
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after reloading log.level: debug", level.Level())
	}
	// A bad reload keeps the running configuration and says why.
	loadErr = errors.New("config x.yaml: stream.trigger: \"5x\" is not a duration")
	<-calls
	d.Reload()
	waitFor(t, "the failed reload", func() bool {
		st := status(t, d)
		return st.LastError != nil && st.LastError.Component == "config"
	})
	if st := status(t, d); st.Stream.Trigger != "7s" || !strings.Contains(st.LastError.Message, "5x") {
		t.Errorf("after a bad reload: trigger %q, last error %+v", st.Stream.Trigger, st.LastError)
	}
	// A good reload clears it.
	loadErr = nil
	<-calls
	d.Reload()
	waitFor(t, "the error to clear after a good reload", func() bool { return status(t, d).LastError == nil })
}

func TestConfigFileChangeReloads(t *testing.T) {
	cfg := testConfig(t)
	file := filepath.Join(t.TempDir(), "upicdc.yaml")
	write := func(trigger string) {
		drop(t, filepath.Dir(file), filepath.Base(file), []byte("stream:\n  trigger: "+trigger+"\n"), time.Time{})
	}
	write("5s")
	load := func() (config.Config, error) {
		c, err := config.Load(config.LoadOptions{File: file, LookupEnv: func(string) (string, bool) { return "", false }})
		c.DataDir, c.HTTP.Listen, c.Inbox.PollInterval = cfg.DataDir, cfg.HTTP.Listen, cfg.Inbox.PollInterval
		return c, err
	}
	d := start(t, daemon.Options{Config: cfg, Load: load, ConfigFile: file})
	write("250ms")
	waitFor(t, "the config file change to be applied", func() bool { return status(t, d).Stream.Trigger == "250ms" })
}

// get fetches an API path and decodes its JSON body.
func get(t *testing.T, d *daemon.Daemon, path string, into any) int {
	t.Helper()
	resp, err := http.Get("http://" + d.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); into != nil && !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode
}

func TestAvailableNowStopsAfterTheCatchUp(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.Trigger = "availableNow"
	if err := os.MkdirAll(cfg.InboxDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	drop(t, cfg.InboxDir(), "batch1.csv", read(t, batches+"batch1.csv"), time.Now().Add(-time.Minute))
	d := start(t, daemon.Options{Config: cfg})
	// The file at start is merged, and the catch-up may or may not include
	// it (the inbox and the processor start together); later files are
	// merged but not processed.
	waitFor(t, "ready", func() bool { return status(t, d).Ready })
	drop(t, cfg.InboxDir(), "batch2.csv", read(t, batches+"batch2.csv"), time.Time{})
	waitFor(t, "batch2.csv merged", func() bool { return status(t, d).Version(cdc.RawTable) == 2 })
	st := status(t, d)
	if st.Stream.State != "stopped" || st.Stream.VersionsBehind < 1 || st.Stream.Checkpoint.RawVersion > 1 {
		t.Errorf("stream %+v: want stopped, behind, checkpoint at most raw version 1", st.Stream)
	}
	if st.Stream.LagSeconds < 0 {
		t.Errorf("lag_seconds %v", st.Stream.LagSeconds)
	}
	resp, err := http.Get("http://" + d.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(b)
	want := fmt.Sprintf("upicdc_stream_lag_versions %d\n", st.Stream.VersionsBehind)
	if !strings.Contains(m, want) || !strings.Contains(m, "upicdc_raw_version 2\n") {
		t.Errorf("/metrics lacks %q or upicdc_raw_version 2", want)
	}
}

// TestDaemonKeepsTheConfiguredWindows runs the daemon with windows.sizes
// [1h] and windows.timezone UTC: the processor keeps exactly those windows,
// and /api/v1/status and /metrics list every table with its version.
func TestDaemonKeepsTheConfiguredWindows(t *testing.T) {
	cfg := testConfig(t)
	cfg.Windows.Sizes, cfg.Windows.Timezone = []string{"1h"}, "UTC"
	d := start(t, daemon.Options{Config: cfg})
	for _, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		drop(t, cfg.InboxDir(), b, read(t, batches+b), time.Time{})
	}
	waitFor(t, "the three batches to be processed", func() bool {
		st := status(t, d)
		return st.Version(cdc.RawTable) == 3 && st.Stream.Checkpoint.RawVersion == 3
	})
	var windows struct {
		Windows []map[string]any `json:"windows"`
	}
	if code := get(t, d, "/api/v1/merchants/M003/windows", &windows); code != 200 || len(windows.Windows) != 1 {
		t.Fatalf("M003 windows: %d %v", code, windows.Windows)
	}
	if w := windows.Windows[0]; w["window_size"] != "1h" || w["window_start"] != "2024-12-21T10:00:00Z" || w["total_sales"] != 1500.0 {
		t.Errorf("M003's window %v, want the 1h window of 10:00 UTC with 1500", w)
	}

	var st struct {
		Tables []daemon.TableStatus `json:"tables"`
		Stream struct {
			Checkpoint struct {
				Versions map[string]int64 `json:"versions"`
			} `json:"checkpoint"`
		} `json:"stream"`
	}
	if code := get(t, d, "/api/v1/status", &st); code != 200 {
		t.Fatalf("/api/v1/status: %d", code)
	}
	want := []daemon.TableStatus{
		{Name: cdc.RawTable, Version: 3},
		{Name: agg.TotalsTable, Derived: true, Version: st.Stream.Checkpoint.Versions[agg.TotalsTable]},
		{Name: agg.WindowsTable, Derived: true, Version: st.Stream.Checkpoint.Versions[agg.WindowsTable]},
		{Name: agg.AlertsTable, Derived: true, Version: st.Stream.Checkpoint.Versions[agg.AlertsTable]},
		{Name: cdc.AuditTable, Version: 3}, // one row per merged file
	}
	if !slices.Equal(st.Tables, want) || want[2].Version < 1 {
		t.Errorf("status tables %+v, want %+v", st.Tables, want)
	}
	resp, err := http.Get("http://" + d.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, tbl := range want {
		if line := fmt.Sprintf("upicdc_table_version{table=%q} %d\n", tbl.Name, tbl.Version); !strings.Contains(string(b), line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
