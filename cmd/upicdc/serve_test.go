package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveProc is a running `upicdc serve`.
type serveProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	data string

	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{} // closed when the process exited
	code   int
}

var addrRE = regexp.MustCompile(`^upicdc serve: listening on http://(\S+) `)

// startServe starts the real binary's serve on a free port with trigger
// 0s (env entries override) and waits until it listens.
func startServe(t *testing.T, data string, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--data-dir", data}, args...)...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"UPICDC_HTTP_LISTEN=127.0.0.1:0",
		"UPICDC_SQL_LISTEN=127.0.0.1:0",
		"UPICDC_STREAM_TRIGGER=0s",
		"UPICDC_SHUTDOWN_TIMEOUT=20s",
	}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{t: t, cmd: cmd, data: data, done: make(chan struct{})}
	addrc := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-addrc:
	case <-p.done:
		t.Fatalf("serve exited with %d before listening:\n%s", p.code, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not report its address:\n%s", p.log())
	}
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// get fetches an API path; it decodes a 200's JSON body into into.
func (p *serveProc) get(path string, into any) int {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		p.t.Fatalf("GET %s: %v\n%s", path, err, p.log())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, into); err != nil {
			p.t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode
}

// text fetches a path's body as text.
func (p *serveProc) text(path string) string {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// stop sends sig and returns the exit code.
func (p *serveProc) stop(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("serve did not exit after %v:\n%s", sig, p.log())
	}
	return p.code
}

// eventually polls cond with a bounded deadline.
func (p *serveProc) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s\n%s", what, p.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type serveStatus struct {
	Ready  bool `json:"ready"`
	Tables []struct {
		Name    string `json:"name"`
		Version int64  `json:"version"`
	} `json:"tables"`
	Stream struct {
		Trigger        string `json:"trigger"`
		VersionsBehind int64  `json:"versions_behind"`
	} `json:"stream"`
	Inbox struct {
		BacklogFiles int `json:"backlog_files"`
	} `json:"inbox"`
	PendingRestart []string `json:"pending_restart"`
}

// RawVersion is the raw table's latest version.
func (st serveStatus) RawVersion() int64 {
	for _, t := range st.Tables {
		if t.Name == "raw_upi_transactions_v1" {
			return t.Version
		}
	}
	return -1
}

func (p *serveProc) status() serveStatus {
	p.t.Helper()
	var st serveStatus
	if code := p.get("/api/v1/status", &st); code != 200 {
		p.t.Fatalf("status: %d", code)
	}
	return st
}

// merchantsTable returns /api/v1/merchants as "M001 500 -500 0" lines.
func (p *serveProc) merchantsTable() string {
	p.t.Helper()
	var out struct {
		Merchants []map[string]json.RawMessage `json:"merchants"`
	}
	if code := p.get("/api/v1/merchants", &out); code != 200 {
		p.t.Fatalf("merchants: %d", code)
	}
	var b strings.Builder
	for _, m := range out.Merchants {
		var id string
		_ = json.Unmarshal(m["merchant_id"], &id)
		fmt.Fprintf(&b, "%s %s %s %s\n", id, m["total_sales"], m["total_refunds"], m["net_sales"])
	}
	return b.String()
}

// dropFile puts a batch into the inbox as writers must: write under a
// temporary name, then rename.
func dropFile(t *testing.T, inbox, name string, body []byte) {
	t.Helper()
	tmp := filepath.Join(inbox, name+".partial")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestServeEndToEnd(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data, []string{"UPICDC_EXPORT_SCHEDULE=@every 1s"})
	inbox := filepath.Join(data, "inbox")
	p.eventually("ready", func() bool { return p.get("/readyz", nil) == 200 })

	want := []string{
		"M001 0 0 0\nM002 0 0 0\nM003 0 0 0\n",
		"M001 500 0 500\nM002 0 0 0\nM003 0 0 0\nM004 0 0 0\n",
		"M001 500 -500 0\nM002 0 0 0\nM003 1500 0 1500\nM004 0 0 0\n",
	}
	for i, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		body, err := os.ReadFile("../../examples/batches/" + b)
		if err != nil {
			t.Fatal(err)
		}
		dropFile(t, inbox, b, body)
		p.eventually("the seed's table after "+b, func() bool { return p.merchantsTable() == want[i] })
	}
	if got := dirNames(t, filepath.Join(inbox, "processed")); !slices.Equal(got, []string{"batch1.csv", "batch2.csv", "batch3.csv"}) {
		t.Errorf("processed/ = %v", got)
	}

	dropFile(t, inbox, "bad.csv", []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT9,u9,M9,10,2024-12-21 10:00:00,pending\n"))
	rejected := filepath.Join(inbox, "rejected")
	p.eventually("bad.csv in rejected/", func() bool { return len(dirNames(t, rejected)) == 2 })
	msg, err := os.ReadFile(filepath.Join(rejected, "bad.csv.error"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg), "bad.csv: line 2: transaction_status") {
		t.Errorf("bad.csv.error = %q", msg)
	}

	// A micro-batch's metrics are counted just after its commit is visible:
	// wait for them rather than racing the last batch.
	wantMetrics := []string{
		`upicdc_inbox_files_ingested_total{result="merged"} 3`,
		`upicdc_inbox_files_rejected_total 1`,
		`upicdc_commits_total{table="raw_upi_transactions_v1"} 3`,
		`upicdc_commits_total{table="aggregated_upi_transactions"} 3`,
		`upicdc_merge_rows_total{kind="inserted"} 4`,
		`upicdc_merge_rows_total{kind="updated"} 4`,
		`upicdc_raw_version 3`,
		`upicdc_stream_lag_versions 0`,
		`upicdc_inbox_backlog_files 0`,
		`upicdc_stream_microbatch_duration_seconds_count 3`,
		`upicdc_ready 1`,
	}
	var missing []string
	p.eventually("the metrics of three files and three micro-batches", func() bool {
		metrics := p.text("/metrics")
		missing = missing[:0]
		for _, line := range wantMetrics {
			if !strings.Contains(metrics, line+"\n") {
				missing = append(missing, line)
			}
		}
		return len(missing) == 0
	})
	for _, line := range missing {
		t.Errorf("/metrics lacks %q", line)
	}
	var txn struct {
		Versions []map[string]any `json:"versions"`
	}
	if code := p.get("/api/v1/transactions/T001", &txn); code != 200 || len(txn.Versions) != 3 {
		t.Errorf("T001: %d, %d versions", code, len(txn.Versions))
	}
	if code := p.get("/api/v1/tables/nope/history", nil); code != 404 {
		t.Errorf("unknown table: %d", code)
	}
	// export.schedule writes the Delta tables up to the latest versions.
	for _, table := range []string{"raw_upi_transactions_v1", "aggregated_upi_transactions"} {
		commit := filepath.Join(data, "export", table, "_delta_log", "00000000000000000003.json")
		p.eventually("the scheduled export of "+table, func() bool { _, err := os.Stat(commit); return err == nil })
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), "scheduled export done") {
		t.Errorf("no scheduled export logged:\n%s", p.log())
	}
	// The store is released and consistent.
	runOK(t, "--data-dir="+data, "reconcile")
}

// batchFile returns a CSV batch of n new transactions for merchant m.
func batchFile(prefix, merchant string, n int) []byte {
	var b strings.Builder
	b.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%05d,u%d@bank,%s,%d.%02d,2024-12-21 10:%02d:%02d,completed\n", prefix, i, i, merchant, 1+i%900, i%100, i/60%60, i%60)
	}
	return []byte(b.String())
}

func TestServeSIGTERMDuringAStreamOfFiles(t *testing.T) { testStopDuringAStream(t, syscall.SIGTERM) }

// TestServeSIGKILLDuringAStreamOfFiles kills the daemon at an arbitrary
// instant — maybe inside a MERGE, between a commit and the file's move, or
// inside a micro-batch — and checks that the restart loses nothing and
// applies nothing twice.
func TestServeSIGKILLDuringAStreamOfFiles(t *testing.T) { testStopDuringAStream(t, syscall.SIGKILL) }

func testStopDuringAStream(t *testing.T, sig syscall.Signal) {
	data := t.TempDir()
	inbox := filepath.Join(data, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 60
	p := startServe(t, data, nil)
	p.eventually("ready", func() bool { return p.status().Ready })
	var wg sync.WaitGroup
	wg.Add(1)
	var dropErr error
	go func() {
		defer wg.Done()
		for i := range files {
			name := fmt.Sprintf("f%03d.csv", i)
			tmp := filepath.Join(inbox, name+".tmp")
			if dropErr = os.WriteFile(tmp, batchFile(fmt.Sprintf("F%03d", i), fmt.Sprintf("M%02d", i%7), 300), 0o644); dropErr != nil {
				return
			}
			if dropErr = os.Rename(tmp, filepath.Join(inbox, name)); dropErr != nil {
				return
			}
		}
	}()
	p.eventually("some files to be merged", func() bool { return p.status().RawVersion() >= 5 })
	code := p.stop(sig)
	wg.Wait()
	if dropErr != nil {
		t.Fatal(dropErr)
	}
	if sig == syscall.SIGTERM {
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM\n%s", code, p.log())
		}
		if !strings.Contains(p.log(), `msg=stopped`) {
			t.Errorf("no clean stop logged:\n%s", p.log())
		}
	}
	processed := dirNames(t, filepath.Join(inbox, "processed"))
	waiting := dirNames(t, inbox)
	if len(processed)+len(waiting) != files || len(processed) == 0 {
		t.Fatalf("%d processed + %d waiting, want %d files in all", len(processed), len(waiting), files)
	}

	// Restart: the rest is taken, nothing twice.
	p2 := startServe(t, data, nil)
	p2.eventually("every file to be processed", func() bool {
		st := p2.status()
		return st.Ready && st.Inbox.BacklogFiles == 0 && st.RawVersion() == files && st.Stream.VersionsBehind == 0
	})
	if got := dirNames(t, filepath.Join(inbox, "processed")); len(got) != files {
		t.Errorf("processed/ has %d files, want %d", len(got), files)
	}
	if code := p2.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d after SIGINT\n%s", code, p2.log())
	}
	var hist []map[string]any
	if err := json.Unmarshal([]byte(runOK(t, "--data-dir="+data, "--format=json", "history")), &hist); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, h := range hist[1:] {
		src := fmt.Sprint(h["source"])
		if seen[src] {
			t.Errorf("applied twice: %s", src)
		}
		seen[src] = true
	}
	if len(seen) != files {
		t.Errorf("%d commits, want %d", len(seen), files)
	}
	runOK(t, "--data-dir="+data, "reconcile")
}

func TestServeSIGHUPReloadsTheTrigger(t *testing.T) {
	data := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "upicdc.yaml")
	if err := os.WriteFile(cfgFile, []byte("stream:\n  trigger: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notify := listenNotify(t)
	// The file sets the trigger; the environment must not.
	p := startServe(t, data, []string{"UPICDC_STREAM_TRIGGER=", "NOTIFY_SOCKET=" + notify.path, "WATCHDOG_USEC=100000"}, "--config", cfgFile)
	p.eventually("ready", func() bool { return p.status().Ready })
	if got := p.status().Stream.Trigger; got != "5s" {
		t.Fatalf("trigger %q, want 5s", got)
	}
	// Rewrite the file in place (the watcher may see it too) and send SIGHUP.
	if err := os.WriteFile(cfgFile, []byte("stream:\n  trigger: 1m30s\ninbox:\n  dir: "+filepath.Join(data, "elsewhere")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.eventually("the new trigger in /api/v1/status", func() bool { return p.status().Stream.Trigger == "1m30s" })
	if got := p.status().PendingRestart; !slices.Equal(got, []string{"inbox.dir"}) {
		t.Errorf("pending_restart %v, want [inbox.dir]", got)
	}
	p.eventually("the SIGHUP log line", func() bool { return strings.Contains(p.log(), "SIGHUP: reloading") })
	p.eventually("a watchdog ping (WATCHDOG_USEC is set)", func() bool { return slices.Contains(notify.states(), "WATCHDOG=1") })
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d\n%s", code, p.log())
	}
	// systemd saw: ready, then reloading and ready again (once per reload:
	// SIGHUP and maybe the file watcher), then stopping.
	p.eventually("STOPPING=1", func() bool {
		st := notify.states()
		return len(st) > 0 && strings.HasPrefix(st[len(st)-1], "STOPPING=1")
	})
	states := notify.states()
	want := []string{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}
	i := 0
	for _, s := range states {
		if i < len(want) && strings.HasPrefix(s, want[i]) {
			i++
		}
	}
	if i != len(want) {
		t.Errorf("sd_notify states %q, want %q in that order", states, want)
	}
}

// notifySocket is a fake systemd notification socket.
type notifySocket struct {
	path string
	mu   sync.Mutex
	got  []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.got = append(n.got, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifySocket) states() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}

func TestServeSecondInstanceFailsFast(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data, nil)
	// That message comes only from the store's lock timeout: the second
	// serve gave up instead of waiting (a hang would trip the test timeout).
	_, errOut, code := run(t, []string{"UPICDC_HTTP_LISTEN=127.0.0.1:0", "UPICDC_SQL_LISTEN=127.0.0.1:0"}, "serve", "--data-dir", data)
	if code != 1 || !strings.Contains(errOut, "in use by another upicdc process") {
		t.Errorf("second serve: exit %d, stderr %q", code, errOut)
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestServeLatency measures file drop → aggregate visible through the API
// with trigger 0s. It is slow, so it runs only with UPICDC_SERVE_LATENCY=1
// (UPICDC_SERVE_LATENCY_FILES and _ROWS change its size):
//
//	UPICDC_SERVE_LATENCY=1 go test ./cmd/upicdc -run TestServeLatency -v
func TestServeLatency(t *testing.T) {
	if os.Getenv("UPICDC_SERVE_LATENCY") == "" {
		t.Skip("set UPICDC_SERVE_LATENCY=1 to measure")
	}
	files, rows := envInt("UPICDC_SERVE_LATENCY_FILES", 200), envInt("UPICDC_SERVE_LATENCY_ROWS", 1000)
	data := t.TempDir()
	p := startServe(t, data, []string{"UPICDC_LOG_LEVEL=warn"})
	inbox := filepath.Join(data, "inbox")
	p.eventually("ready", func() bool { return p.get("/readyz", nil) == 200 })
	bodies := make([][]byte, files)
	for i := range files {
		// Each file's rows belong to a merchant of their own, so its
		// aggregate row appears exactly when the file's batch commits.
		bodies[i] = batchFile(fmt.Sprintf("L%04d", i), fmt.Sprintf("L%04d", i), rows)
	}
	lat := make([]time.Duration, 0, files)
	for i := range files {
		path := fmt.Sprintf("/api/v1/merchants/L%04d", i)
		start := time.Now()
		dropFile(t, inbox, fmt.Sprintf("l%04d.csv", i), bodies[i])
		for p.get(path, nil) != 200 {
			if time.Since(start) > time.Minute {
				t.Fatalf("file %d not visible after a minute\n%s", i, p.log())
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	t.Logf("file drop -> aggregate visible, trigger 0s, %d files of %d rows: p50 %v, p90 %v, p99 %v, max %v",
		files, rows, q(0.50).Round(10*time.Microsecond), q(0.90).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v <= 0 {
		return def
	}
	return v
}

// TestServeSystemdExample checks that the systemd example's config loads and
// its unit keeps the directives the README promises.
func TestServeSystemdExample(t *testing.T) {
	out := runOK(t, "--config", "../../examples/systemd/upicdc.yaml", "config", "show", "--format=csv")
	for _, want := range []string{"data_dir,/var/lib/upicdc", "stream.trigger,5s", "http.listen,127.0.0.1:8080"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	unit, err := os.ReadFile("../../examples/systemd/upicdc.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "ExecStart=/usr/local/bin/upicdc serve --config /etc/upicdc/upicdc.yaml",
		"ExecReload=/bin/kill -HUP $MAINPID", "User=upicdc", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/upicdc", "PrivateTmp=yes", "WatchdogSec=",
	} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("upicdc.service lacks %q", want)
		}
	}
}
