package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// retentionEnv makes serve vacuum to the newest version every second and
// then compact (retention.compact is on by default).
var retentionEnv = []string{"UPICDC_RETENTION_VERSIONS=1", "UPICDC_RETENTION_SCHEDULE=@every 1s"}

// seedCompactStore ingests files of the same rows rows into data (offline) and
// processes them: a store whose change feed a vacuum mostly frees. It
// returns the files' paths.
func seedCompactStore(t *testing.T, data string, files, rows int) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("seed%03d.csv", i))
		if err := os.WriteFile(p, updateFile(i, rows), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	runOK(t, append([]string{"--data-dir=" + data, "ingest"}, paths...)...)
	runOK(t, "--data-dir="+data, "process", "--available-now")
	return paths
}

// updateFile is the i-th version of the same rows transactions: each file
// updates every one of them (a later time, another amount), so the change
// feed grows with every file and the table does not.
func updateFile(i, rows int) []byte {
	var b strings.Builder
	b.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
	for r := range rows {
		fmt.Fprintf(&b, "S-%05d,u%d@bank,M%02d,%d.%02d,2024-12-21 %02d:%02d:%02d,completed\n", r, r, r%50, 1+(r+i)%900, r%100, i%24, r/60%60, r%60)
	}
	return []byte(b.String())
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

var compactedRE = regexp.MustCompile(`msg="store compacted online".* bytes_before=(\d+) bytes_after=(\d+) writers_paused=(\S+) paused=(\S+) took=(\S+)`)

// TestServeCompactsUnderLoad: files keep arriving in the inbox while serve
// vacuums and compacts on its schedule. The compaction shrinks the file,
// status and metrics show it, and nothing is lost: every file is merged
// once, and the aggregates are those of the same files ingested offline.
func TestServeCompactsUnderLoad(t *testing.T) {
	data := t.TempDir()
	seeds := seedCompactStore(t, data, 8, 3000)
	p := startServe(t, data, retentionEnv)
	inbox := filepath.Join(data, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var dropped atomic.Int64
	stop := make(chan struct{})
	loadDir := t.TempDir()
	wg.Go(func() { // load: a file every few milliseconds until told to stop
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("load%04d.csv", i)
			body := batchFile(fmt.Sprintf("L%04d", i), fmt.Sprintf("M%02d", i%7), 200)
			if err := os.WriteFile(filepath.Join(loadDir, name), body, 0o644); err != nil {
				t.Error(err)
				return
			}
			dropFile(t, inbox, name, body)
			dropped.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	})
	p.eventually("a scheduled compaction", func() bool { return compactedRE.MatchString(p.log()) })
	n := dropped.Load()
	p.eventually("more files after the compaction", func() bool { return dropped.Load() >= n+10 })
	close(stop)
	wg.Wait()
	files := int64(len(seeds)) + dropped.Load()
	p.eventually("every file merged and processed", func() bool {
		st := p.status()
		return st.Inbox.BacklogFiles == 0 && st.RawVersion() == files && st.Stream.VersionsBehind == 0
	})
	var st struct {
		Retention struct {
			Compact        bool `json:"compact"`
			LastCompaction *struct {
				Result      string  `json:"result"`
				BytesBefore int64   `json:"bytes_before"`
				BytesAfter  int64   `json:"bytes_after"`
				Writers     float64 `json:"writers_paused_seconds"`
				All         float64 `json:"paused_seconds"`
			} `json:"last_compaction"`
		} `json:"retention"`
	}
	p.get("/api/v1/status", &st)
	if !st.Retention.Compact || st.Retention.LastCompaction == nil || st.Retention.LastCompaction.Result == "failed" {
		t.Errorf("status retention: %+v", st.Retention)
	}
	m := compactedRE.FindStringSubmatch(p.log())
	before, _ := strconv.ParseInt(m[1], 10, 64)
	after, _ := strconv.ParseInt(m[2], 10, 64)
	if after >= before {
		t.Errorf("the compaction did not shrink the file: %s", m[0])
	}
	metrics := p.text("/metrics")
	if !regexp.MustCompile(`upicdc_store_compactions_total\{result="compacted"\} [1-9]`).MatchString(metrics) ||
		!strings.Contains(metrics, `upicdc_store_compaction_pause_seconds{paused="writers"}`) {
		t.Errorf("metrics lack the compaction:\n%s", metrics)
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.log())
	}
	if strings.Contains(p.log(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", p.log())
	}
	runOK(t, "--data-dir="+data, "check")
	runOK(t, "--data-dir="+data, "reconcile")
	if got := len(dirNames(t, filepath.Join(inbox, "processed"))); int64(got) != dropped.Load() {
		t.Errorf("processed/ has %d files, %d were dropped", got, dropped.Load())
	}
	// The same files ingested offline give the same aggregates.
	control := t.TempDir()
	loads, err := filepath.Glob(filepath.Join(loadDir, "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, append([]string{"--data-dir=" + control, "ingest"}, append(seeds, loads...)...)...)
	runOK(t, "--data-dir="+control, "process", "--available-now")
	// (last_raw_version depends on the order files came in: left out.)
	totals := func(dir string) string {
		var b strings.Builder
		for _, r := range decodeRows(t, runOK(t, "--data-dir="+dir, "--format=json", "aggregates")) {
			delete(r, "last_raw_version")
			fmt.Fprintln(&b, r)
		}
		return b.String()
	}
	if got, want := totals(data), totals(control); got != want {
		t.Errorf("aggregates after compacting under load:\n%s\nwant\n%s", got, want)
	}
	t.Logf("%d files; %s", files, m[0])
}

// TestServeKilledDuringCompaction SIGKILLs serve at varied moments of its
// scheduled vacuum and compaction: the store then passes check and
// reconcile, reads the same, and the next serve finishes the job.
func TestServeKilledDuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a store and kills serve repeatedly")
	}
	tmpl := t.TempDir()
	seedCompactStore(t, tmpl, 12, 8000)
	want := runOK(t, "--data-dir="+tmpl, "aggregates")
	db, err := os.ReadFile(filepath.Join(tmpl, "upicdc.db"))
	if err != nil {
		t.Fatal(err)
	}
	copyStore := func() string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "upicdc.db"), db, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	vacuumed := regexp.MustCompile(`msg="scheduled vacuum done"`)
	// One undisturbed run says how long vacuum and compaction take here.
	p := startServe(t, copyStore(), retentionEnv)
	p.eventually("a compaction", func() bool { return compactedRE.MatchString(p.log()) })
	took, err := time.ParseDuration(compactedRE.FindStringSubmatch(p.log())[5])
	if err != nil {
		t.Fatal(err)
	}
	p.stop(syscall.SIGTERM)
	during := 0
	fractions := []float64{0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.2, 2, 4}
	for _, f := range fractions {
		data := copyStore()
		p := startServe(t, data, retentionEnv)
		p.eventually("the vacuum", func() bool { return vacuumed.MatchString(p.log()) })
		time.Sleep(time.Duration(f * float64(took)))
		p.stop(syscall.SIGKILL)
		if !compactedRE.MatchString(p.log()) {
			during++
		}
		runOK(t, "--data-dir="+data, "check")
		runOK(t, "--data-dir="+data, "reconcile")
		if got := runOK(t, "--data-dir="+data, "aggregates"); got != want {
			t.Fatalf("killed %.1f×%s after the vacuum: aggregates differ\n%s", f, took, got)
		}
		// The next serve finishes the job.
		before := fileSize(t, filepath.Join(data, "upicdc.db"))
		p2 := startServe(t, data, retentionEnv)
		p2.eventually("the compaction, or nothing left to compact", func() bool {
			l := p2.log()
			return compactedRE.MatchString(l) || strings.Contains(l, "scheduled compaction skipped: few free pages")
		})
		if code := p2.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d\n%s", code, p2.log())
		}
		if m := compactedRE.FindStringSubmatch(p2.log()); m != nil && fileSize(t, filepath.Join(data, "upicdc.db")) >= before {
			t.Errorf("the compaction after the kill did not shrink the file: %s", m[0])
		}
		runOK(t, "--data-dir="+data, "check")
		if got := runOK(t, "--data-dir="+data, "aggregates"); got != want {
			t.Fatalf("after the restart: aggregates differ\n%s", got)
		}
	}
	t.Logf("a compaction takes %s here; %d of %d kills came before it finished", took, during, len(fractions))
	if during == 0 {
		t.Log("no kill landed inside the compaction this time")
	}
}

// TestExportVacuumKilled SIGKILLs `upicdc export --vacuum` at varied
// moments: every version the Delta log still lists reads as before the
// kill, the latest always, and a rerun completes.
func TestExportVacuumKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills export repeatedly")
	}
	data, tmplOut := t.TempDir(), filepath.Join(t.TempDir(), "delta")
	runOK(t, "--data-dir", data, "demo")
	for i := range 4 { // more versions, each exported
		dir := t.TempDir()
		p := filepath.Join(dir, fmt.Sprintf("more%d.csv", i))
		if err := os.WriteFile(p, batchFile(fmt.Sprintf("X%d", i), fmt.Sprintf("M%02d", i%3), 500), 0o644); err != nil {
			t.Fatal(err)
		}
		runOK(t, "--data-dir", data, "ingest", p)
		runOK(t, "--data-dir", data, "process", "--available-now")
		runOK(t, "--data-dir", data, "export", "--out", tmplOut)
	}
	tables := []string{"raw_upi_transactions_v1", "aggregated_upi_transactions"}
	notKept := regexp.MustCompile(`cannot be rebuilt|version not found`)
	latest := map[string]int{}
	wantAt := map[string]map[int]string{}
	for _, tb := range tables {
		wantAt[tb] = map[int]string{}
		for v := 0; ; v++ {
			out, _, code := run(t, nil, "--format", "json", "delta-show", filepath.Join(tmplOut, tb), "--version", strconv.Itoa(v))
			if code != 0 {
				break
			}
			wantAt[tb][v] = out
			latest[tb] = v
		}
		if latest[tb] < 4 {
			t.Fatalf("%s has versions up to %d", tb, latest[tb])
		}
	}
	// How long an export --vacuum takes here.
	// A copy keeps the commits' mtimes (their timestamps, which export checks).
	copyOut := func() string {
		out := t.TempDir()
		if b, err := exec.Command("cp", "-a", tmplOut+"/.", out).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, b)
		}
		return out
	}
	out := copyOut()
	start := time.Now()
	runOK(t, "--data-dir", data, "export", "--out", out, "--vacuum", "--retain", "0s")
	took := time.Since(start)
	for _, f := range []float64{0.3, 0.6, 0.85, 1} {
		out := copyOut()
		cmd := exec.Command(binary, "--data-dir", data, "export", "--out", out, "--vacuum", "--retain", "0s")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(f * float64(took)))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		verify := func(when string) {
			t.Helper()
			for _, tb := range tables {
				for v := 0; v <= latest[tb]; v++ {
					got, errOut, code := run(t, nil, "--format", "json", "delta-show", filepath.Join(out, tb), "--version", strconv.Itoa(v))
					switch {
					case code == 0 && got != wantAt[tb][v]:
						t.Errorf("%s: %s version %d reads differently", when, tb, v)
					case code != 0 && v == latest[tb]:
						t.Errorf("%s: %s latest version %d unreadable: %s", when, tb, v, errOut)
					case code != 0 && !notKept.MatchString(errOut):
						t.Errorf("%s: %s version %d fails other than as not kept: %s", when, tb, v, errOut)
					}
				}
			}
		}
		verify(fmt.Sprintf("killed at %.1f×%s", f, took))
		runOK(t, "--data-dir", data, "export", "--out", out, "--vacuum", "--retain", "0s")
		verify("after the rerun")
	}
}
