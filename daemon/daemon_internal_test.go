package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/store"
)

func TestIgnored(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"batch.csv", false},
		{"batch.jsonl", false},
		{"notes.txt", false}, // taken, and rejected with a reason
		{".batch.csv", true},
		{"batch.csv.tmp", true},
		{"batch.csv.TMP", true},
		{"batch.csv.partial", true},
		{"batch.partial.csv", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ignored(tc.name); got != tc.want {
				t.Errorf("ignored(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestFreeName(t *testing.T) {
	dir := t.TempDir()
	long, longUsed := strings.Repeat("l", 251)+".csv", strings.Repeat("u", 251)+".csv"
	for _, n := range []string{"a.csv", "a-1.csv", "b.csv.error", "noext", longUsed} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, extra, want string }{
		{"a.csv", "", "a-2.csv"},
		{"new.csv", "", "new.csv"},
		{"b.csv", ".error", "b-1.csv"}, // its .error name is taken
		{"b.csv", "", "b.csv"},
		{"noext", "", "noext-1"},
		{long, "", long},                     // fits
		{long, ".error", fitName(long, 249)}, // LONG.error would not
		{longUsed, "", fitName(longUsed[:251]+"-1.csv", 255)},
	}
	for _, tc := range tests {
		got := freeName(dir, tc.name, tc.extra)
		if got != tc.want {
			t.Errorf("freeName(%q, %q) = %q, want %q", tc.name, tc.extra, got, tc.want)
		}
		if len(got)+len(tc.extra) > maxName {
			t.Errorf("freeName(%q, %q) = %q: with %q it is %d bytes, more than %d", tc.name, tc.extra, got, tc.extra, len(got)+len(tc.extra), maxName)
		}
	}
}

// TestFitName: a name too long is shortened to the limit, keeping its start
// and extension and whole characters, and two long names stay apart.
func TestFitName(t *testing.T) {
	long := strings.Repeat("n", 300) + ".csv"
	got := fitName(long, 255)
	if len(got) != 255 || !strings.HasPrefix(got, strings.Repeat("n", 200)) || !strings.HasSuffix(got, ".csv") {
		t.Errorf("fitName(300 n + .csv) = %q (%d bytes)", got, len(got))
	}
	if other := fitName(strings.Repeat("n", 301)+".csv", 255); other == got {
		t.Errorf("two long names shortened alike: %q", got)
	}
	if got := fitName("short.csv", 255); got != "short.csv" {
		t.Errorf("fitName(short.csv) = %q", got)
	}
	utf := strings.Repeat("é", 130) + ".csv" // 264 bytes
	got = fitName(utf, 255)
	if len(got) > 255 || !utf8.ValidString(got) || !strings.HasSuffix(got, ".csv") {
		t.Errorf("fitName(130 é + .csv) = %q (%d bytes, valid UTF-8 %v)", got, len(got), utf8.ValidString(got))
	}
	dotted := "a." + strings.Repeat("x", 300)
	if got := fitName(dotted, 249); len(got) > 249 || !strings.HasPrefix(got, "a.xxx") {
		t.Errorf("fitName(a.xxx…) = %q (%d bytes)", got, len(got))
	}
}

// TestExportSchedule runs the whole daemon on a fake clock: export.schedule
// calls Export when it fires, and a reload turns it off.
func TestExportSchedule(t *testing.T) {
	clock := newFakeClock()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SQL.Listen = "127.0.0.1:0"
	cfg.Stream.Trigger = "0s"
	cfg.Export.Schedule = "@every 1h"
	exports := make(chan time.Time, 10)
	next := cfg
	next.Export.Schedule = ""
	var (
		mu       sync.Mutex
		notified []string
	)
	d := New(Options{
		Config: cfg, Clock: clock,
		Export: func(context.Context, *store.DB) error { exports <- clock.Now(); return nil },
		Load:   func() (config.Config, error) { return next, nil },
		Notify: func(s string) error { mu.Lock(); notified = append(notified, s); mu.Unlock(); return nil },
	})
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	// Armed: the export schedule and the inbox poll; the first catch-up
	// (and its READY=1) runs beside them.
	clock.waitTimers(t, 2)
	waitUntil(t, func() bool { st, _ := d.Status(); return st.Ready })
	clock.Advance(time.Hour)
	select {
	case at := <-exports:
		if at.Sub(start) != time.Hour {
			t.Errorf("export at %v, want 1h", at.Sub(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no export after the schedule fired")
	}
	d.Reload()
	waitUntil(t, func() bool { st, _ := d.Status(); return st.Export.Schedule == "" && st.LastReload != nil })
	clock.Advance(3 * time.Hour)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if len(exports) != 0 {
		t.Errorf("%d exports after the schedule was removed", len(exports))
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(notified, "READY=1") || notified[len(notified)-1] != "STOPPING=1" {
		t.Errorf("notified %q", notified)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// shutdownHarness runs a daemon on a fake clock whose micro-batches stop
// inside their bbolt transaction (agg.StepWritten) until the test lets go.
type shutdownHarness struct {
	d        *Daemon
	clock    *fakeClock
	cfg      config.Config
	inBatch  chan struct{}
	release  chan struct{}
	stopping chan struct{}
}

func newShutdownHarness(t *testing.T) *shutdownHarness {
	t.Helper()
	h := &shutdownHarness{
		clock: newFakeClock(), inBatch: make(chan struct{}, 10), release: make(chan struct{}),
		stopping: make(chan struct{}),
	}
	h.cfg = config.Default()
	h.cfg.DataDir = t.TempDir()
	h.cfg.HTTP.Listen = "127.0.0.1:0"
	h.cfg.SQL.Listen = "127.0.0.1:0"
	h.cfg.Stream.Trigger = "0s"
	h.cfg.ShutdownTimeout = time.Minute
	var once sync.Once
	h.d = New(Options{Config: h.cfg, Clock: h.clock, Notify: func(s string) error {
		if s == "STOPPING=1" {
			once.Do(func() { close(h.stopping) })
		}
		return nil
	}})
	h.d.batchHook = func(s agg.Step) error {
		if s != agg.StepWritten {
			return nil
		}
		h.inBatch <- struct{}{}
		select {
		case <-h.release:
			return nil
		case <-h.d.workCtx.Done():
			return h.d.workCtx.Err()
		}
	}
	if err := h.d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("../examples/batches/batch1.csv")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(h.cfg.InboxDir(), ".batch1.csv.tmp")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.cfg.InboxDir(), "batch1.csv")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.inBatch:
	case <-time.After(10 * time.Second):
		t.Fatal("no micro-batch started")
	}
	return h
}

// close calls Close in the background and waits until it has begun.
func (h *shutdownHarness) close(t *testing.T) chan error {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- h.d.Close() }()
	select {
	case <-h.stopping:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not begin")
	}
	return closed
}

func (h *shutdownHarness) checkpoint(t *testing.T) int64 {
	t.Helper()
	db, err := store.Open(h.cfg.DataDir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, err := db.Checkpoint(h.cfg.Stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	return cp.SourceVersion
}

func TestCloseFinishesTheCurrentMicroBatch(t *testing.T) {
	h := newShutdownHarness(t)
	closed := h.close(t)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a micro-batch was running", err)
	default:
	}
	close(h.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := h.checkpoint(t); got != 1 {
		t.Errorf("checkpoint at raw version %d, want 1: the batch must be finished", got)
	}
}

func TestCloseCancelsWorkAfterTheShutdownTimeout(t *testing.T) {
	h := newShutdownHarness(t)
	closed := h.close(t)
	h.clock.waitDeadline(t, h.clock.Now().Add(h.cfg.ShutdownTimeout))
	h.clock.Advance(h.cfg.ShutdownTimeout)
	err := <-closed
	if err == nil || !strings.Contains(err.Error(), "shutdown_timeout") {
		t.Fatalf("Close: %v, want the shutdown timeout reported", err)
	}
	if got := h.checkpoint(t); got != 0 {
		t.Errorf("checkpoint at raw version %d, want 0: the cancelled batch must roll back", got)
	}
}

// TestInboxRescanFindsFilesWithoutEvents: with the file-system watch gone
// (as when the kernel's event queue overflows), a file renamed into the
// inbox is found by the periodic rescan alone, and taken once settled.
func TestInboxRescanFindsFilesWithoutEvents(t *testing.T) {
	clock, cfg, d := openOnFakeClock(t, time.Minute)
	if err := d.inbox.watcher.Remove(cfg.InboxDir()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the watch's removal event pass
	src := filepath.Join(t.TempDir(), "b1.csv")
	body := "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT1,u1,M1,100,2024-12-21 10:00:00,completed\n"
	if err := os.WriteFile(src, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, filepath.Join(cfg.InboxDir(), "b1.csv")); err != nil {
		t.Fatal(err)
	}
	rawVersion := func() int64 {
		st, err := d.Status()
		if err != nil {
			t.Fatal(err)
		}
		return st.Version(cdc.RawTable)
	}
	time.Sleep(100 * time.Millisecond)
	if v := rawVersion(); v != 0 {
		t.Fatalf("file taken without events or a poll (raw version %d): the watch was not off", v)
	}
	clock.Advance(cfg.Inbox.PollInterval)
	// Without its events the inbox cannot tell the file was renamed: it is
	// taken once it kept its size and modification time for inbox.settle.
	clock.waitDeadline(t, clock.Now().Add(cfg.Inbox.Settle))
	if v := rawVersion(); v != 0 {
		t.Fatalf("file taken before it settled (raw version %d)", v)
	}
	clock.Advance(cfg.Inbox.Settle)
	for i := 0; rawVersion() != 1; i++ {
		if i == 2000 {
			t.Fatal("the rescan did not take the file")
		}
		time.Sleep(time.Millisecond)
	}
	// The move to processed/ follows the commit.
	for i := 0; ; i++ {
		_, err := os.Stat(filepath.Join(cfg.InboxDir(), ProcessedDir, "b1.csv"))
		if err == nil {
			break
		}
		if i == 2000 {
			t.Fatalf("not moved to processed/: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// openOnFakeClock opens a daemon with trigger 0s and the given inbox poll
// interval on a fake clock that starts now (file times are real), and closes
// it when the test ends.
func openOnFakeClock(t *testing.T, poll time.Duration) (*fakeClock, config.Config, *Daemon) {
	t.Helper()
	clock := newFakeClockAt(time.Now())
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SQL.Listen = "127.0.0.1:0"
	cfg.Stream.Trigger = "0s"
	cfg.Inbox.PollInterval = poll
	d := New(Options{Config: cfg, Clock: clock})
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return clock, cfg, d
}
