package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The "done when", through the binary: with the rule
// refunds_count >= 1 && refund_ratio >= 0.5 on 1d, `upicdc alerts` shows
// M001 firing after the seed's batch 3; a fourth file with a new 2000.00
// completed sale for M001 the same day resolves it.
func TestAlertsCommandSeed(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "upicdc.yaml")
	if err := os.WriteFile(conf, []byte(`data_dir: `+filepath.Join(dir, "data")+`
windows:
  sizes: [1d]
alerts:
  rules:
    - name: high_refund_ratio
      window: 1d
      when: refunds_count >= 1 && refund_ratio >= 0.5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := "--config=" + conf
	b := "../../examples/batches/"
	for i := 1; i <= 2; i++ {
		runOK(t, c, "ingest", b+"batch"+string(rune('0'+i))+".csv")
		runOK(t, c, "process")
		if out := runOK(t, c, "--format=csv", "alerts"); strings.Count(out, "\n") != 1 {
			t.Fatalf("alerts after batch %d:\n%s", i, out)
		}
	}
	runOK(t, c, "ingest", b+"batch3.csv")
	runOK(t, c, "process")
	out := runOK(t, c, "--format=csv", "alerts", "--state=firing")
	if !strings.HasPrefix(out, "rule,merchant_id,window_start,window_size,severity,state,fired_at,resolved_at,value,raw_version\n") ||
		!strings.Contains(out, "high_refund_ratio,M001,2024-12-21T00:00:00+05:30,1d,warning,firing,") {
		t.Fatalf("alerts after batch 3:\n%s", out)
	}
	batch4 := filepath.Join(dir, "batch4.csv")
	if err := os.WriteFile(batch4, []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT005,upi5@bank,M001,2000.00,2024-12-21 11:00:00,completed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runOK(t, c, "ingest", batch4)
	runOK(t, c, "process")
	if out := runOK(t, c, "--format=csv", "alerts", "--state=firing"); strings.Count(out, "\n") != 1 {
		t.Fatalf("firing alerts after batch 4:\n%s", out)
	}
	if out := runOK(t, c, "--format=csv", "alerts", "--state=resolved"); !strings.Contains(out, "high_refund_ratio,M001,2024-12-21T00:00:00+05:30,1d,warning,resolved,") {
		t.Fatalf("resolved alerts after batch 4:\n%s", out)
	}
	// With no target configured nothing is dead: redeliver has nothing to do.
	if out := runOK(t, c, "--format=csv", "alerts", "--redeliver"); out != "delivered,dead_letters_left\n0,0\n" {
		t.Errorf("redeliver: %q", out)
	}
}

// windows.sizes: [] keeps no windows: merchant_window_aggregates stays
// empty while the totals are the seed's, reconcile passes, and a rule on a
// window is refused saying why.
func TestNoWindows(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "upicdc.yaml")
	if err := os.WriteFile(conf, []byte("data_dir: "+filepath.Join(dir, "data")+"\nwindows:\n  sizes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := "--config=" + conf
	for _, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		runOK(t, c, "ingest", "../../examples/batches/"+b)
		runOK(t, c, "process")
	}
	if out := runOK(t, c, "--format=csv", "windows"); strings.Count(out, "\n") != 1 {
		t.Errorf("windows with windows.sizes []:\n%s", out)
	}
	out := runOK(t, c, "--format=csv", "aggregates")
	for _, want := range []string{"M001,500,-500,0,", "M002,0,0,0,", "M003,1500,0,1500,"} {
		if !strings.Contains(out, "\n"+want) {
			t.Errorf("aggregates lack %q:\n%s", want, out)
		}
	}
	runOK(t, c, "reconcile")
	rule := filepath.Join(dir, "rule.yaml")
	if err := os.WriteFile(rule, []byte("data_dir: "+filepath.Join(dir, "data")+"\nwindows:\n  sizes: []\nalerts:\n  rules:\n    - {name: r, window: 1d, when: \"refunds_count >= 1\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, nil, "--config="+rule, "process")
	if code == 0 || !strings.Contains(errOut, `alerts.rules[r].window: "1d" is no window: windows.sizes is empty`) {
		t.Errorf("a rule on a window with no windows: exit %d, %s", code, errOut)
	}
}

// A rule that does not compile is refused at start, naming the rule.
func TestBadRuleRefusedAtStart(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "upicdc.yaml")
	if err := os.WriteFile(conf, []byte("windows:\n  sizes: [1d]\nalerts:\n  rules:\n    - {name: broken, window: 1d, when: \"refunds_count >=\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, nil, "--config="+conf, "alerts")
	if code == 0 || !strings.Contains(errOut, "alerts.rules[broken]") || !strings.Contains(errOut, `alert rule "broken"`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestDeliverySurvivesKill9: serve is SIGKILLed while a webhook delivery is
// in flight (the receiver holds the request). After a restart every
// transition reaches the receiver at least once, each always with the same
// Idempotency-Key: the outbox is merchant_alerts' change feed and the
// notifier's position moves only after an acknowledgement.
func TestDeliverySurvivesKill9(t *testing.T) {
	var (
		mu   sync.Mutex
		keys = map[string]int{} // idempotency key → deliveries
		hold = true             // while set, requests are held until release closes
	)
	release := make(chan struct{})
	received := make(chan string, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		keys[key]++
		held := hold
		mu.Unlock()
		select {
		case received <- key:
		default:
		}
		if held {
			<-release // serve dies while we hold it: no acknowledgement reaches it
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	defer close(release)

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "upicdc.yaml")
	if err := os.WriteFile(conf, []byte(`windows:
  sizes: [1d]
alerts:
  retry_backoff: 100ms
  rules:
    - name: high_refund_ratio
      window: 1d
      when: refunds_count >= 1 && refund_ratio >= 0.5
  webhooks:
    - url: `+recv.URL+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	b := "../../examples/batches/"
	runOK(t, "--config="+conf, "--data-dir="+data, "ingest", b+"batch1.csv", b+"batch2.csv", b+"batch3.csv")

	p := startServe(t, data, nil, "--config="+conf)
	var first string
	select {
	case first = <-received: // the firing transition, held
	case <-time.After(60 * time.Second):
		t.Fatalf("no delivery of the firing transition:\n%s", p.log())
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	mu.Lock()
	hold = false
	mu.Unlock()

	p = startServe(t, data, nil, "--config="+conf)
	defer p.stop(syscall.SIGTERM)
	batch4 := filepath.Join(dir, "batch4.csv")
	if err := os.WriteFile(batch4, []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT005,upi5@bank,M001,2000.00,2024-12-21 11:00:00,completed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dropFile(t, filepath.Join(data, "inbox"), "batch4.csv", mustRead(t, batch4))
	p.eventually("the firing transition again and the resolving one", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return keys[first] >= 2 && len(keys) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	for k, n := range keys {
		if !strings.HasPrefix(k, "merchant_alerts:") || n < 1 {
			t.Errorf("key %q delivered %d times", k, n)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
