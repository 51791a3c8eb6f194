package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
)

// seedCorrupted builds cfg's store with the seed's three batches
// processed, then changes M002's failed_count in the stream's own
// aggregates version behind the processor's back.
func seedCorrupted(t *testing.T, cfg config.Config) {
	t.Helper()
	tables, err := daemon.AggConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := agg.Open(cfg.DataDir, tables, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	for _, b := range []string{"batch1.csv", "batch2.csv", "batch3.csv"} {
		if _, err := m.IngestFile(ctx, batches+b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := agg.NewProcessor(db, agg.Options{Stream: cfg.Stream.Name, Tables: tables}).RunAvailableNow(ctx); err != nil {
		t.Fatal(err)
	}
	_, ok, err := db.Process(ctx, cfg.Stream.Name, cdc.RawTable, func(tx *store.ProcessTx) error {
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
		tx.Rebuilt("ROGUE", nil, nil)
		return nil
	})
	if err != nil || !ok {
		t.Fatalf("corrupt: %v %v", ok, err)
	}
}

// webhookSink records the transitions a webhook receives.
type webhookSink struct {
	mu   sync.Mutex
	got  []daemon.Transition
	keys []string
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var tr daemon.Transition
	if err := json.Unmarshal(body, &tr); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, tr)
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	s.mu.Unlock()
}

func (s *webhookSink) firing(rule string) (daemon.Transition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tr := range s.got {
		if tr.Rule == rule && tr.State == agg.AlertFiring {
			return tr, true
		}
	}
	return daemon.Transition{}, false
}

// TestScheduledReconcileRaisesTheAlert: serve's scheduled reconcile finds
// a corrupted aggregate, records the run in pipeline_audit, sets
// upicdc_reconcile_differences and fires reconcile_differences, which the
// notifier delivers to the webhook like any rule's alert; the next runs
// find the alert already firing and deliver nothing more.
func TestScheduledReconcileRaisesTheAlert(t *testing.T) {
	sink := &webhookSink{}
	hook := httptest.NewServer(sink)
	t.Cleanup(hook.Close)
	cfg := testConfig(t)
	cfg.Reconcile.Schedule = "@every 1s"
	cfg.Alerts.Webhooks = []config.WebhookConfig{{URL: hook.URL}}
	seedCorrupted(t, cfg)

	d := start(t, daemon.Options{Config: cfg})
	waitFor(t, "the reconcile alert at the webhook", func() bool { _, ok := sink.firing(agg.ReconcileRule); return ok })
	tr, _ := sink.firing(agg.ReconcileRule)
	var v agg.ReconcileAlertValue
	if err := json.Unmarshal(tr.Value, &v); err != nil || v.Differences == 0 || !strings.Contains(v.First, "M002") || tr.Severity != agg.ReconcileSeverity {
		t.Errorf("transition %+v (value %+v, %v)", tr, v, err)
	}
	var runs []cdc.Audit
	waitFor(t, "two reconcile runs in the audit", func() bool {
		runs = runs[:0]
		if err := cdc.ScanAudit(context.Background(), d.DB(), func(a cdc.Audit) error {
			if a.Outcome == cdc.OutcomeReconcile {
				runs = append(runs, a)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return len(runs) >= 2
	})
	for _, a := range runs {
		// The alert's own row in merchant_alerts is no difference.
		if a.Differences != runs[0].Differences {
			t.Errorf("run %d found %d differences, the first %d", a.ID, a.Differences, runs[0].Differences)
		}
		if a.Differences == 0 || a.Origin != "reconcile" || !strings.Contains(a.Reason, "M002") || a.RawVersion != 3 {
			t.Errorf("audit row %+v", a)
		}
	}
	resp, err := http.Get("http://" + d.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var line string
	for l := range strings.Lines(string(body)) {
		if strings.HasPrefix(l, "upicdc_reconcile_differences ") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" || line == "upicdc_reconcile_differences 0" {
		t.Errorf("metric: %q", line)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	n := 0
	for _, tr := range sink.got {
		if tr.Rule == agg.ReconcileRule {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d reconcile transitions delivered after %d runs, want 1 (it stays firing)", n, len(runs))
	}
}
