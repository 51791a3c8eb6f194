package daemon_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/daemon"
)

// pendingMetrics are metrics the operator files use that another part of
// the daemon registers (the alerts: upicdc_alerts_firing{rule}, with
// rule="reconcile_differences" for reconcile). While a build lacks them
// they are not required; once /metrics has them they are checked like the
// rest.
var pendingMetrics = map[string]bool{"upicdc_alerts_firing": true}

// scrapedMetrics returns the metric names a real daemon's /metrics offers
// (a histogram's _bucket, _sum and _count included).
func scrapedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	cfg := testConfig(t)
	d := start(t, daemon.Options{Config: cfg})
	// A batch, so that vectors without preset labels (commits by table)
	// have a series.
	if err := os.MkdirAll(cfg.InboxDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	drop(t, cfg.InboxDir(), "batch1.csv", read(t, batches+"batch1.csv"), time.Time{})
	waitFor(t, "the batch", func() bool { return status(t, d).Version(agg.TotalsTable) == 1 })
	resp, err := http.Get("http://" + d.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+s] = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("only %d metrics scraped: %v", len(names), names)
	}
	return names
}

var metricRE = regexp.MustCompile(`\bupicdc_[a-z_]+\b`)

// checkNames fails for a metric an expression names that the daemon lacks.
func checkNames(t *testing.T, where, expr string, have map[string]bool) {
	t.Helper()
	for _, m := range metricRE.FindAllString(expr, -1) {
		if !have[m] && !pendingMetrics[m] {
			t.Errorf("%s: %s names %s, which the daemon does not export", where, expr, m)
		}
	}
}

// TestOperatorFiles checks examples/grafana and examples/prometheus against
// the metrics a real daemon exports (promtool checks the rules' syntax and
// runs their unit tests in .ci/run).
func TestOperatorFiles(t *testing.T) {
	have := scrapedMetrics(t)

	raw, err := os.ReadFile("../examples/grafana/upicdc-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the Grafana dashboard is not JSON: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without uid or panels: %+v", dash)
	}
	ids := map[int]bool{}
	titles := ""
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		titles += strings.ToLower(p.Title) + "\n"
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !metricRE.MatchString(q.Expr) {
				t.Errorf("panel %q: %q names no upicdc metric", p.Title, q.Expr)
			}
			checkNames(t, "grafana panel "+p.Title, q.Expr, have)
		}
	}
	for _, want := range []string{"lag", "files per second", "rows per second", "micro-batch latency", "rejected files", "alerts firing", "reconcile differences"} {
		if !strings.Contains(titles, want) {
			t.Errorf("no panel about %q in\n%s", want, titles)
		}
	}

	rules, err := os.ReadFile("../examples/prometheus/upicdc-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, line := range strings.Split(string(rules), "\n") {
		line = strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(line, "- alert: "); ok {
			alerts = append(alerts, a)
		}
		if e, ok := strings.CutPrefix(line, "expr: "); ok {
			checkNames(t, "rule "+alerts[len(alerts)-1], e, have)
		}
	}
	for _, want := range []string{"UpicdcDown", "UpicdcStreamLagging", "UpicdcFilesRejected", "UpicdcReconcileDifferences"} {
		if !strings.Contains(strings.Join(alerts, " "), want) {
			t.Errorf("no alert %s in %v", want, alerts)
		}
	}
}
