package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/store"
)

var seedRule = agg.Rule{Name: "high_refund_ratio", Window: "1d", When: "refunds_count >= 1 && refund_ratio >= 0.5"}

var seedFiles = []string{
	"T001,upi1@bank,M001,500.0,2024-12-21 10:00:00,initiated\nT002,upi2@bank,M002,1000.0,2024-12-21 10:05:00,initiated",
	"T001,upi1@bank,M001,500.0,2024-12-21 10:15:00,completed\nT002,upi2@bank,M002,1000.0,2024-12-21 10:20:00,failed",
	"T001,upi1@bank,M001,500.0,2024-12-21 10:30:00,refunded",
	"T005,upi5@bank,M001,2000.00,2024-12-21 11:00:00,completed", // resolves
}

// alertStore is a store with the seed rule, and a function that merges
// the next seed file and runs the processor.
func alertStore(t *testing.T) (*store.DB, func()) {
	t.Helper()
	cfg := agg.Config{WindowSizes: []string{"1d"}, Rules: []agg.Rule{seedRule}}
	db := aggtest.Open(t, t.TempDir(), cfg)
	p := agg.NewProcessor(db, agg.Options{Tables: cfg})
	next := 0
	return db, func() {
		t.Helper()
		path := filepath.Join(t.TempDir(), fmt.Sprintf("b%d.csv", next))
		body := "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" + seedFiles[next] + "\n"
		next++
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), path); err != nil {
			t.Fatal(err)
		}
		if _, err := p.RunAvailableNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

type received struct {
	key, sig string
	body     []byte
}

// receiver is a webhook that fails the first `fail` requests.
type receiver struct {
	mu   sync.Mutex
	fail int
	got  []received
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, received{key: r.Header.Get("Idempotency-Key"), sig: r.Header.Get("X-Upicdc-Signature"), body: body})
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func noSleep(context.Context, time.Duration) error { return nil }

// Each transition reaches the webhook signed, with the same idempotency key
// on every retry; the position moves only after the webhook acknowledged.
func TestWebhookSignatureAndIdempotencyKey(t *testing.T) {
	db, next := alertStore(t)
	for range 3 {
		next()
	}
	rc := &receiver{fail: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n := newNotifier(db, config.AlertsConfig{Webhooks: []config.WebhookConfig{{URL: srv.URL, Secret: "s3cret"}}, MaxAttempts: 5, RetryBackoff: time.Millisecond}, discard(), nil)
	n.sleep = noSleep
	if got, err := n.run(context.Background()); err != nil || got != 1 {
		t.Fatalf("run: %d %v", got, err)
	}
	if len(rc.got) != 3 {
		t.Fatalf("%d requests, want 3 (two failures, then the ack)", len(rc.got))
	}
	for _, r := range rc.got {
		if r.key != rc.got[0].key || !strings.HasPrefix(r.key, "merchant_alerts:") {
			t.Errorf("idempotency key %q, want %q on every retry", r.key, rc.got[0].key)
		}
		if r.sig != Signature("s3cret", r.body) {
			t.Errorf("signature %q does not match the body", r.sig)
		}
	}
	var tr Transition
	if err := json.Unmarshal(rc.got[2].body, &tr); err != nil || tr.Rule != "high_refund_ratio" || tr.MerchantID != "M001" || tr.State != agg.AlertFiring {
		t.Errorf("body %s (%v)", rc.got[2].body, err)
	}
	// Nothing new: nothing sent. The resolve comes as its own transition.
	if got, _ := n.run(context.Background()); got != 0 || len(rc.got) != 3 {
		t.Fatalf("rerun delivered %d", got)
	}
	next()
	if got, err := n.run(context.Background()); err != nil || got != 1 || len(rc.got) != 4 {
		t.Fatalf("resolve: %d %v (%d requests)", got, err, len(rc.got))
	}
	if err := json.Unmarshal(rc.got[3].body, &tr); err != nil || tr.State != agg.AlertResolved || rc.got[3].key == rc.got[0].key {
		t.Errorf("resolve body %s key %s", rc.got[3].body, rc.got[3].key)
	}
}

// A notifier stopped after the webhook got a transition but before it
// stored its position delivers it again with the same key: at least once.
func TestNotifierStoppedMidDeliveryRedelivers(t *testing.T) {
	db, next := alertStore(t)
	for range 4 {
		next()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		keys []string
	)
	stopAfter := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if len(keys) == stopAfter {
			cancel() // the process dies while the target answers
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg := config.AlertsConfig{Webhooks: []config.WebhookConfig{{URL: srv.URL}}, MaxAttempts: 3, RetryBackoff: time.Millisecond}
	n := newNotifier(db, cfg, discard(), nil)
	_, _ = n.run(ctx) // stopped somewhere around the second transition
	n = newNotifier(db, cfg, discard(), nil)
	if _, err := n.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, k := range keys {
		seen[k]++
	}
	if len(seen) != 2 {
		t.Fatalf("keys %v: want both transitions delivered", keys)
	}
	if len(keys) < 2 {
		t.Fatalf("keys %v", keys)
	}
}

// After max_attempts a transition is a dead letter, counted and kept; the
// notifier moves on; redeliver sends it once the target is back.
func TestDeadLettersAndRedeliver(t *testing.T) {
	db, next := alertStore(t)
	for range 3 {
		next()
	}
	down := &receiver{fail: 1 << 30}
	srv := httptest.NewServer(down)
	cfg := config.AlertsConfig{Webhooks: []config.WebhookConfig{{URL: srv.URL}}, MaxAttempts: 3, RetryBackoff: time.Millisecond}
	n := newNotifier(db, cfg, discard(), nil)
	n.sleep = noSleep
	if got, err := n.run(context.Background()); err != nil || got != 1 || len(down.got) != 3 {
		t.Fatalf("run: %d %v, %d attempts", got, err, len(down.got))
	}
	srv.Close()
	dead, err := db.DeadLetters(NotifierConsumer)
	if err != nil || len(dead) != 1 || dead[0].Attempts != 3 || dead[0].Target != "webhook:"+srv.URL || !strings.Contains(dead[0].LastError, "503") {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	up := &receiver{}
	srv2 := httptest.NewServer(up)
	defer srv2.Close()
	// The dead letter names the target it failed on; redeliver tries it
	// there (the same URL is configured again on a new port here).
	dead[0].Target = "webhook:" + srv2.URL
	if err := db.DeleteDeadLetter(NotifierConsumer, dead[0].ID, "webhook:"+srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := db.PutDeadLetter(NotifierConsumer, dead[0]); err != nil {
		t.Fatal(err)
	}
	delivered, left, err := Redeliver(context.Background(), db, config.AlertsConfig{Webhooks: []config.WebhookConfig{{URL: srv2.URL}}, MaxAttempts: 3, RetryBackoff: time.Millisecond}, discard())
	if err != nil || delivered != 1 || left != 0 || len(up.got) != 1 || up.got[0].key != dead[0].ID {
		t.Fatalf("redeliver: %d delivered, %d left, %v; got %+v", delivered, left, err, up.got)
	}
	if dead, _ := db.DeadLetters(NotifierConsumer); len(dead) != 0 {
		t.Errorf("dead letters after redeliver: %+v", dead)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAlertmanager runs the real prometheus-alertmanager on a free
// loopback port and returns its base URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("prometheus-alertmanager is not installed (.ci/run installs it)")
			}
			t.Skip("prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)")
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type amGot struct {
	Labels   map[string]string `json:"labels"`
	EndsAt   time.Time         `json:"endsAt"`
	StartsAt time.Time         `json:"startsAt"`
	Status   struct {
		State string `json:"state"`
	} `json:"status"`
}

func amAlerts(t *testing.T, base string) []amGot {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amGot
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A real Alertmanager shows the seed alert firing after batch 3, then
// resolved (endsAt passed) after the fourth file.
func TestAlertmanagerShowsFiringThenResolved(t *testing.T) {
	base := startAlertmanager(t)
	db, next := alertStore(t)
	for range 3 {
		next()
	}
	n := newNotifier(db, config.AlertsConfig{Alertmanager: config.AlertmanagerConfig{URL: base}, MaxAttempts: 3, RetryBackoff: 10 * time.Millisecond}, discard(), nil)
	if got, err := n.run(context.Background()); err != nil || got != 1 {
		t.Fatalf("run: %d %v", got, err)
	}
	got := amAlerts(t, base)
	if len(got) != 1 || got[0].Labels["alertname"] != "high_refund_ratio" || got[0].Labels["merchant_id"] != "M001" ||
		got[0].Labels["window"] != "1d" || got[0].Labels["severity"] != "warning" || got[0].Status.State != "active" {
		t.Fatalf("alertmanager alerts after batch 3: %+v", got)
	}
	next()
	if got, err := n.run(context.Background()); err != nil || got != 1 {
		t.Fatalf("run: %d %v", got, err)
	}
	got = amAlerts(t, base)
	resolved := len(got) == 0 || (len(got) == 1 && !got[0].EndsAt.After(time.Now()) && got[0].Status.State != "active")
	if !resolved {
		t.Fatalf("alertmanager alerts after the resolving file: %+v", got)
	}
	t.Logf("alertmanager after resolve: %+v", got)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
