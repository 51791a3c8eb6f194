package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/store"
)

// NotifierConsumer is the alert notifier's consumer name in the store (its
// position in merchant_alerts' change feed and its dead letters).
const NotifierConsumer = "alerts-notifier"

// Transition is one change of an alert's state, as delivered to webhooks
// (and kept in dead letters).
type Transition struct {
	// ID is the transition's idempotency key: merchant_alerts' version and
	// the alert's key; the same on every retry.
	ID          string          `json:"id"`
	Rule        string          `json:"rule"`
	Severity    string          `json:"severity"`
	MerchantID  string          `json:"merchant_id"`
	WindowSize  string          `json:"window_size"`
	WindowStart time.Time       `json:"window_start"`
	State       string          `json:"state"`
	FiredAt     time.Time       `json:"fired_at"`
	ResolvedAt  *time.Time      `json:"resolved_at"`
	Value       json.RawMessage `json:"value"`
	RawVersion  int64           `json:"raw_version"`
	Version     int64           `json:"version"`
}

// TransitionOf is the transition a change of merchant_alerts records.
func TransitionOf(c store.Change) Transition {
	a := agg.AlertOf(c.Row)
	return Transition{
		ID:   fmt.Sprintf("%s:%d:%s:%s:%s", agg.AlertsTable, c.Version, a.Rule, a.MerchantID, a.WindowStart.Format(time.RFC3339)),
		Rule: a.Rule, Severity: a.Severity, MerchantID: a.MerchantID, WindowSize: a.WindowSize, WindowStart: a.WindowStart,
		State: a.State, FiredAt: a.FiredAt, ResolvedAt: a.ResolvedAt, Value: a.Value, RawVersion: a.RawVersion, Version: c.Version,
	}
}

// target is somewhere transitions are delivered.
type target struct {
	name    string // "alertmanager" or "webhook:<url>"
	deliver func(ctx context.Context, t Transition) error
}

// notifier delivers merchant_alerts' transitions to the targets at least
// once: it reads the table's change feed from its stored position, tries
// each transition on each target with backoff, keeps a dead letter after
// max_attempts, and advances its position only after that.
type notifier struct {
	db          *store.DB
	log         *slog.Logger
	targets     []target
	maxAttempts int
	backoff     time.Duration
	sleep       func(ctx context.Context, d time.Duration) error
	deliveries  *prometheus.CounterVec // target, result: success, failure, dead
}

func newNotifier(db *store.DB, cfg config.AlertsConfig, log *slog.Logger, deliveries *prometheus.CounterVec) *notifier {
	client := &http.Client{Timeout: 10 * time.Second}
	n := &notifier{db: db, log: log, maxAttempts: cfg.MaxAttempts, backoff: cfg.RetryBackoff, deliveries: deliveries, sleep: sleepCtx}
	if n.maxAttempts < 1 {
		n.maxAttempts = 1
	}
	if cfg.Alertmanager.URL != "" {
		u := strings.TrimRight(cfg.Alertmanager.URL, "/") + "/api/v2/alerts"
		n.targets = append(n.targets, target{name: "alertmanager", deliver: func(ctx context.Context, t Transition) error {
			return postAlertmanager(ctx, client, u, t)
		}})
	}
	for _, w := range cfg.Webhooks {
		w := w
		n.targets = append(n.targets, target{name: "webhook:" + w.URL, deliver: func(ctx context.Context, t Transition) error {
			return postWebhook(ctx, client, w.URL, w.Secret, t)
		}})
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// run delivers every transition past the stored position; it returns how
// many it handled.
func (n *notifier) run(ctx context.Context) (int, error) {
	if len(n.targets) == 0 {
		return 0, nil
	}
	pos, ok, err := n.db.ConsumerPosition(NotifierConsumer)
	if err != nil {
		return 0, err
	}
	if !ok {
		pos = store.Position{Version: 1}
	}
	latest, err := n.db.LatestVersion(agg.AlertsTable)
	if err != nil {
		return 0, err
	}
	handled := 0
	for v := pos.Version; v <= latest; v++ {
		var changes []store.Change
		if err := n.db.Changes(ctx, agg.AlertsTable, v, v, func(c store.Change) error {
			c.Row = append(store.Row(nil), c.Row...)
			changes = append(changes, c)
			return nil
		}); err != nil {
			return handled, err
		}
		from := int64(0)
		if v == pos.Version {
			from = pos.Index
		}
		for i := from; i < int64(len(changes)); i++ {
			if changes[i].Type == store.UpdatePreimage {
				continue
			}
			t := TransitionOf(changes[i])
			for _, tg := range n.targets {
				if err := n.deliver(ctx, tg, t); err != nil {
					return handled, err
				}
			}
			handled++
			if err := n.db.SetConsumerPosition(NotifierConsumer, store.Position{Table: agg.AlertsTable, Version: v, Index: i + 1}); err != nil {
				return handled, err
			}
		}
		if err := n.db.SetConsumerPosition(NotifierConsumer, store.Position{Table: agg.AlertsTable, Version: v + 1}); err != nil {
			return handled, err
		}
	}
	return handled, nil
}

// deliver tries t on tg up to maxAttempts times, then keeps a dead letter.
// Only a cancelled context is an error.
func (n *notifier) deliver(ctx context.Context, tg target, t Transition) error {
	wait := n.backoff
	var last error
	for attempt := 1; attempt <= n.maxAttempts; attempt++ {
		if last = tg.deliver(ctx, t); last == nil {
			n.count(tg.name, "success")
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n.count(tg.name, "failure")
		n.log.Warn("alert delivery failed", "target", tg.name, "id", t.ID, "attempt", attempt, "err", last)
		if attempt == n.maxAttempts {
			break
		}
		if err := n.sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, time.Minute)
	}
	data, _ := json.Marshal(t) // plain fields: cannot fail
	n.count(tg.name, "dead")
	n.log.Error("alert delivery gave up: kept as a dead letter (upicdc alerts --redeliver)", "target", tg.name, "id", t.ID, "err", last)
	return n.db.PutDeadLetter(NotifierConsumer, store.DeadLetter{ID: t.ID, Target: tg.name, Attempts: n.maxAttempts,
		LastError: last.Error(), At: time.Now().UnixMilli(), Data: data})
}

func (n *notifier) count(target, result string) {
	if n.deliveries != nil {
		n.deliveries.WithLabelValues(target, result).Inc()
	}
}

// redeliver tries every dead letter once on its target, removing those
// delivered. It returns how many were delivered and how many remain.
func (n *notifier) redeliver(ctx context.Context) (delivered, left int, err error) {
	dead, err := n.db.DeadLetters(NotifierConsumer)
	if err != nil {
		return 0, 0, err
	}
	byName := map[string]target{}
	for _, tg := range n.targets {
		byName[tg.name] = tg
	}
	for _, d := range dead {
		tg, ok := byName[d.Target]
		var t Transition
		if !ok || json.Unmarshal(d.Data, &t) != nil {
			left++ // a target no longer configured: keep it
			continue
		}
		if err := tg.deliver(ctx, t); err != nil {
			n.count(tg.name, "failure")
			left++
			d.Attempts++
			d.LastError = err.Error()
			if err := n.db.PutDeadLetter(NotifierConsumer, d); err != nil {
				return delivered, left, err
			}
			continue
		}
		n.count(tg.name, "success")
		delivered++
		if err := n.db.DeleteDeadLetter(NotifierConsumer, d.ID, d.Target); err != nil {
			return delivered, left, err
		}
	}
	return delivered, left, nil
}

// Redeliver tries the dead letters of the alert notifier once more, with
// the targets of cfg (what `upicdc alerts --redeliver` runs).
func Redeliver(ctx context.Context, db *store.DB, cfg config.AlertsConfig, log *slog.Logger) (delivered, left int, err error) {
	return newNotifier(db, cfg, log, nil).redeliver(ctx)
}

// httpStatusError is a target's answer other than 2xx.
type httpStatusError struct {
	status int
	body   string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func post(ctx context.Context, client *http.Client, url string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return &httpStatusError{status: resp.StatusCode, body: strings.TrimSpace(string(msg))}
	}
	return nil
}

// Signature is the X-Upicdc-Signature of body under secret.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func postWebhook(ctx context.Context, client *http.Client, url, secret string, t Transition) error {
	body, err := json.Marshal(t)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Idempotency-Key", t.ID)
	if secret != "" {
		h.Set("X-Upicdc-Signature", Signature(secret, body))
	}
	return post(ctx, client, url, body, h)
}

// amAlert is an alert of Alertmanager's v2 API.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      *time.Time        `json:"endsAt,omitempty"`
}

func postAlertmanager(ctx context.Context, client *http.Client, url string, t Transition) error {
	a := amAlert{
		Labels: map[string]string{"alertname": t.Rule, "merchant_id": t.MerchantID, "window": t.WindowSize,
			"window_start": t.WindowStart.Format(time.RFC3339), "severity": t.Severity},
		Annotations: map[string]string{"value": string(t.Value), "raw_version": fmt.Sprint(t.RawVersion), "id": t.ID},
		StartsAt:    t.FiredAt,
	}
	var vals map[string]any
	if json.Unmarshal(t.Value, &vals) == nil {
		for k, v := range vals {
			a.Annotations[k] = fmt.Sprint(v)
		}
	}
	if t.State == agg.AlertResolved && t.ResolvedAt != nil {
		a.EndsAt = t.ResolvedAt
	}
	body, err := json.Marshal([]amAlert{a})
	if err != nil {
		return err
	}
	return post(ctx, client, url, body, http.Header{})
}

// notifyInterval is how often the notifier looks for new transitions.
const notifyInterval = 500 * time.Millisecond

// newAlerting builds the notifier and registers the alert metrics:
// upicdc_alerts_firing{rule} (read from merchant_alerts at scrape time) and
// upicdc_alert_deliveries_total{target,result}.
func newAlerting(reg prometheus.Registerer, db *store.DB, cfg config.AlertsConfig, rules []agg.Rule, log *slog.Logger) (*notifier, error) {
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "upicdc", Name: "alert_deliveries_total",
		Help: "Alert transition deliveries, by target and result (success, failure: an attempt failed, dead: given up, kept as a dead letter)."},
		[]string{"target", "result"})
	if err := reg.Register(deliveries); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	names := []string{agg.ReconcileRule}
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if err := reg.Register(firingCollector{db: db, rules: names, desc: prometheus.NewDesc("upicdc_alerts_firing",
		"Alerts of merchant_alerts now firing, by rule.", []string{"rule"}, nil)}); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return newNotifier(db, cfg, log, deliveries), nil
}

// firingCollector counts the firing alerts per rule at scrape time.
type firingCollector struct {
	db    *store.DB
	rules []string
	desc  *prometheus.Desc
}

func (c firingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c firingCollector) Collect(ch chan<- prometheus.Metric) {
	n := map[string]float64{}
	for _, r := range c.rules {
		n[r] = 0
	}
	_, err := c.db.Scan(context.Background(), agg.AlertsTable, -1, store.KeyRange{}, func(r store.Row) error {
		if a := agg.AlertOf(r); a.State == agg.AlertFiring {
			n[a.Rule]++
		}
		return nil
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for rule, v := range n {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, rule)
	}
}

// loop delivers new transitions until ctx ends. A failure to read the
// store is logged and retried; delivery failures are retried by deliver.
func (n *notifier) loop(ctx context.Context) error {
	if len(n.targets) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(notifyInterval)
	defer t.Stop()
	for {
		if _, err := n.run(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("alert notifier", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
