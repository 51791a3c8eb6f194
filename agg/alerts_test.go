package agg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// highRefunds is the seed rule.
var highRefunds = agg.Rule{Name: "high_refund_ratio", Window: "1d", When: "refunds_count >= 1 && refund_ratio >= 0.5"}

func alertsCfg(rules ...agg.Rule) agg.Config {
	return agg.Config{WindowSizes: []string{"1d"}, Rules: rules}
}

// alertLines renders merchant_alerts as "rule merchant window_start state" lines.
func alertLines(t testing.TB, db *store.DB) string {
	t.Helper()
	var b strings.Builder
	if _, err := db.Scan(context.Background(), agg.AlertsTable, -1, store.KeyRange{}, func(r store.Row) error {
		fmt.Fprintf(&b, "%s %s %s %s\n", r[0].Str, r[1].Str, r[2].Time().UTC().Format(time.RFC3339), r[5].Str)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// transitions renders merchant_alerts' change feed (no preimages) as
// "version type rule merchant state" lines.
func transitions(t storetest.Fataler, db *store.DB) string {
	t.Helper()
	last, err := db.LatestVersion(agg.AlertsTable)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if last < 1 {
		return ""
	}
	if err := db.Changes(context.Background(), agg.AlertsTable, 1, last, func(c store.Change) error {
		if c.Type != store.UpdatePreimage {
			fmt.Fprintf(&b, "%s %s %s %s\n", c.Type, c.Row[0].Str, c.Row[1].Str, c.Row[5].Str)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func reconcileCfg(t storetest.Fataler, db *store.DB, cfg agg.Config) {
	t.Helper()
	rep, err := agg.Reconcile(context.Background(), db, "", cfg)
	if err != nil || !rep.OK() {
		t.Fatal(fmt.Sprintf("reconcile: %v %+v", err, rep.Differences))
	}
}

// The "done when": on the seed's three batches the rule fires for
// M001 after batch 3; a fourth file with a new 2000.00 completed sale the
// same day resolves it. Each transition is one change of merchant_alerts.
func TestSeedHighRefundRatioFiresAndResolves(t *testing.T) {
	cfg := alertsCfg(highRefunds)
	db := aggtest.Open(t, t.TempDir(), cfg)
	p := agg.NewProcessor(db, agg.Options{Tables: cfg})
	run := func() {
		t.Helper()
		if _, err := p.RunAvailableNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		reconcileCfg(t, db, cfg)
	}
	for i := 1; i <= 2; i++ {
		ingestSeed(t, db, i)
		run()
		if got := alertLines(t, db); got != "" {
			t.Fatalf("alerts after batch %d:\n%s", i, got)
		}
	}
	ingestSeed(t, db, 3)
	run()
	if got, want := alertLines(t, db), "high_refund_ratio M001 2024-12-20T18:30:00Z firing\n"; got != want {
		t.Fatalf("alerts after batch 3:\n%s\nwant\n%s", got, want)
	}
	ingestCSV(t, db, "batch4.csv", "T005,upi5@bank,M001,2000.00,2024-12-21 11:00:00,completed")
	run()
	if got, want := alertLines(t, db), "high_refund_ratio M001 2024-12-20T18:30:00Z resolved\n"; got != want {
		t.Fatalf("alerts after batch 4:\n%s\nwant\n%s", got, want)
	}
	if got, want := transitions(t, db), "insert high_refund_ratio M001 firing\nupdate_postimage high_refund_ratio M001 resolved\n"; got != want {
		t.Errorf("transitions:\n%s\nwant\n%s", got, want)
	}
	// The values at the transitions.
	rows := map[string]store.Row{}
	if err := db.Changes(context.Background(), agg.AlertsTable, 1, 99, func(c store.Change) error {
		if c.Type != store.UpdatePreimage {
			rows[c.Row[5].Str] = c.Row
		}
		return nil
	}); err != nil && !errors.Is(err, store.ErrVersionNotFound) {
		t.Fatal(err)
	}
	if v := rows["firing"][8].Str; !strings.Contains(v, `"total_refunds":"-500.00"`) || !strings.Contains(v, `"refund_ratio":1`) {
		t.Errorf("firing value %s", v)
	}
	if r := rows["resolved"]; r[7].Null || r[7].Int < r[6].Int || r[9].Int != 4 {
		t.Errorf("resolved row %v", r)
	}
}

// A rule that does not compile, is not a bool, names an unknown window or
// repeats a name is refused, naming the rule.
func TestBadRulesAreRefusedNamingTheRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule agg.Rule
		want error
	}{
		{"syntax", agg.Rule{Name: "r1", Window: "1d", When: "refunds_count >="}, agg.ErrRuleExpr},
		{"unknown variable", agg.Rule{Name: "r2", Window: "1d", When: "refunds > 1"}, agg.ErrRuleExpr},
		{"not a bool", agg.Rule{Name: "r3", Window: "1d", When: "refunds_count + 1"}, agg.ErrRuleExpr},
		{"type error", agg.Rule{Name: "r4", Window: "1d", When: "refund_ratio > 1"}, agg.ErrRuleExpr},
		{"window not kept", agg.Rule{Name: "r5", Window: "1h", When: "true"}, agg.ErrRuleWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agg.Tables(alertsCfg(tc.rule))
			var re *agg.RuleError
			if !errors.As(err, &re) || re.Rule != tc.rule.Name || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want a RuleError for %s (%v)", err, tc.rule.Name, tc.want)
			}
			if !strings.Contains(err.Error(), tc.rule.Name) {
				t.Errorf("%v does not name the rule", err)
			}
		})
	}
	if _, err := agg.Tables(alertsCfg(highRefunds, highRefunds)); err == nil {
		t.Error("a rule named twice accepted")
	}
}

// Changing the rules rebuilds merchant_alerts, writing only the
// transitions the change causes: an alert that still fires is not written
// again (so it is not delivered again); a removed rule's alerts resolve.
func TestRuleChangeRebuildWritesOnlyRealTransitions(t *testing.T) {
	dir := t.TempDir()
	cfg := alertsCfg(highRefunds)
	db := aggtest.Open(t, dir, cfg)
	for i := 1; i <= 3; i++ {
		ingestSeed(t, db, i)
	}
	if _, err := agg.NewProcessor(db, agg.Options{Tables: cfg}).RunAvailableNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := transitions(t, db)

	anySale := agg.Rule{Name: "any_sale", Window: "1d", When: "sales_count >= 1", Severity: "info"}
	cfg2 := alertsCfg(highRefunds, anySale)
	p := agg.NewProcessor(db, agg.Options{Tables: cfg2})
	rebuilt, err := p.Prepare(context.Background())
	if err != nil || len(rebuilt) != 1 || rebuilt[0] != agg.AlertsTable {
		t.Fatalf("prepare: %v %v", rebuilt, err)
	}
	want := before + "insert any_sale M001 firing\ninsert any_sale M003 firing\n"
	if got := transitions(t, db); got != want {
		t.Errorf("after adding a rule:\n%s\nwant\n%s", got, want)
	}
	reconcileCfg(t, db, cfg2)

	cfg3 := alertsCfg(anySale)
	if _, err := agg.NewProcessor(db, agg.Options{Tables: cfg3}).Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	want += "update_postimage high_refund_ratio M001 resolved\n"
	if got := transitions(t, db); got != want {
		t.Errorf("after removing a rule:\n%s\nwant\n%s", got, want)
	}
	reconcileCfg(t, db, cfg3)
}

// Under random workloads and batchings, after every micro-batch the firing
// alerts are exactly the windows the rules hold for, and each alert's
// change feed alternates firing, resolved, firing...: a transition is
// written once, never repeated.
func TestAlertTransitionsExactlyOnceProperty(t *testing.T) {
	twoSales := agg.Rule{Name: "two_sales", Window: "1d", When: "sales_count >= 2 && net_sales > 100.0"}
	cfg := agg.Config{WindowSizes: []string{"1d"}, Zone: time.UTC, Rules: []agg.Rule{highRefunds, twoSales}}
	holds := map[string]func(r store.Row) bool{
		"high_refund_ratio": func(r store.Row) bool {
			return r[8].Int >= 1 && r[4].Int != 0 && float64(-r[5].Int)/float64(r[4].Int) >= 0.5
		},
		"two_sales": func(r store.Row) bool { return r[7].Int >= 2 && r[6].Int > 10000 },
	}
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		dir := t.TempDir()
		db := aggtest.Open(t, dir, cfg)
		merger := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
		proc := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: rapid.IntRange(1, 3).Draw(rt, "maxVersions"), Tables: cfg})
		genRow := rapid.Custom(func(t *rapid.T) modelRow {
			return modelRow{
				id:       rapid.SampledFrom([]string{"T1", "T2", "T3", "T4", "T5"}).Draw(t, "id"),
				merchant: rapid.SampledFrom([]string{"M1", "M2"}).Draw(t, "merchant"),
				amount:   rapid.SampledFrom([]store.Paise{1, 50000, 150000}).Draw(t, "amount"),
				minute:   rapid.IntRange(0, 3).Draw(t, "minute"),
				status:   rapid.SampledFrom([]string{"initiated", "completed", "refunded"}).Draw(t, "status"),
				del:      rapid.Float64Range(0, 1).Draw(t, "p") < 0.1,
			}
		})
		check := func() {
			want := map[string]bool{}
			if _, err := db.Scan(ctx, agg.WindowsTable, -1, store.KeyRange{}, func(r store.Row) error {
				for name, h := range holds {
					if h(r) {
						want[name+" "+r[0].Str+" "+fmt.Sprint(r[2].Int)] = true
					}
				}
				return nil
			}); err != nil {
				rt.Fatal(err)
			}
			got := map[string]bool{}
			if _, err := db.Scan(ctx, agg.AlertsTable, -1, store.KeyRange{}, func(r store.Row) error {
				if r[5].Str == agg.AlertFiring {
					got[r[0].Str+" "+r[1].Str+" "+fmt.Sprint(r[2].Int)] = true
				}
				return nil
			}); err != nil {
				rt.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				rt.Fatalf("firing %v, want %v", got, want)
			}
		}
		for b := range rapid.IntRange(1, 8).Draw(rt, "batches") {
			rows := rapid.SliceOfN(genRow, 1, 5).Draw(rt, "rows")
			lines := []string{"transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,op"}
			for _, r := range rows {
				lines = append(lines, r.csv())
			}
			p := filepath.Join(dir, fmt.Sprintf("batch-%d.csv", b))
			if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				rt.Fatal(err)
			}
			if _, err := merger.IngestFile(ctx, p); err != nil {
				rt.Fatal(err)
			}
			if rapid.Bool().Draw(rt, "process") {
				if _, err := proc.RunAvailableNow(ctx); err != nil {
					rt.Fatal(err)
				}
				check()
			}
		}
		if _, err := proc.RunAvailableNow(ctx); err != nil {
			rt.Fatal(err)
		}
		check()
		reconcileCfg(rt, db, cfg)
		// Each alert alternates: insert firing, then resolved, firing, ...
		last := map[string]string{}
		lv, _ := db.LatestVersion(agg.AlertsTable)
		if lv > 0 {
			if err := db.Changes(ctx, agg.AlertsTable, 1, lv, func(c store.Change) error {
				if c.Type == store.UpdatePreimage {
					return nil
				}
				k := c.Row[0].Str + " " + c.Row[1].Str + " " + fmt.Sprint(c.Row[2].Int)
				prev, seen := last[k]
				switch {
				case !seen && (c.Type != store.Insert || c.Row[5].Str != agg.AlertFiring):
					rt.Fatalf("%s: first change %s %s", k, c.Type, c.Row[5].Str)
				case seen && (c.Type != store.UpdatePostimage || c.Row[5].Str == prev):
					rt.Fatalf("%s: %s after %s (%s)", k, c.Row[5].Str, prev, c.Type)
				}
				last[k] = c.Row[5].Str
				return nil
			}); err != nil {
				rt.Fatal(err)
			}
		}
	})
}

// Killing the processor at every step of every micro-batch of the seed and
// a fourth batch, then restarting it, writes each transition exactly once:
// the change feed of merchant_alerts is the one an uninterrupted run writes.
func TestAlertsKilledBetweenSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	cfg := alertsCfg(highRefunds)
	load := func(t *testing.T, db *store.DB) {
		for i := 1; i <= 3; i++ {
			ingestSeed(t, db, i)
		}
		ingestCSV(t, db, "batch4.csv", "T005,upi5@bank,M001,2000.00,2024-12-21 11:00:00,completed")
	}
	clean := aggtest.Open(t, t.TempDir(), cfg)
	load(t, clean)
	if _, err := agg.NewProcessor(clean, agg.Options{MaxVersionsPerTrigger: 1, Tables: cfg}).RunAvailableNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := transitions(t, clean)
	if want == "" {
		t.Fatal("the workload has no transitions")
	}
	for _, step := range []agg.Step{agg.StepRead, agg.StepComputed, agg.StepWritten, agg.StepCommit} {
		for _, at := range []int{2, 3} { // the batches that fire and resolve
			t.Run(fmt.Sprintf("%s/batch%d", step, at), func(t *testing.T) {
				dir := t.TempDir()
				db, err := agg.Open(dir, cfg, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				load(t, db)
				db.Close()
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStep+"="+string(step),
					envCrashAt+"="+strconv.Itoa(at), envCrashAlerts+"=1")
				out, err := cmd.CombinedOutput()
				if !storetest.KilledBySIGKILL(cmd.ProcessState) {
					t.Fatalf("child not killed by SIGKILL: %v\n%s", err, out)
				}
				db = aggtest.Open(t, dir, cfg)
				reconcileCfg(t, db, cfg)
				if _, err := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 1, Tables: cfg}).RunAvailableNow(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := transitions(t, db); got != want {
					t.Errorf("transitions after the kill and restart:\n%s\nwant\n%s", got, want)
				}
				reconcileCfg(t, db, cfg)
			})
		}
	}
}
