package agg_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWindowBoundaries(t *testing.T) {
	ny, ist := zone(t, "America/New_York"), zone(t, "Asia/Kolkata")
	at := func(loc *time.Location, s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		size       string
		loc        *time.Location
		t          time.Time
		start, end string // RFC 3339 in the zone
		hours      float64
	}{
		{"IST day", "1d", ist, at(ist, "2024-12-21 23:59"), "2024-12-21T00:00:00+05:30", "2024-12-22T00:00:00+05:30", 24},
		{"IST day just after UTC midnight", "1d", ist, time.Date(2024, 12, 21, 18, 31, 0, 0, time.UTC), "2024-12-22T00:00:00+05:30", "2024-12-23T00:00:00+05:30", 24},
		{"IST hour on the half hour of UTC", "1h", ist, at(ist, "2024-12-21 10:59"), "2024-12-21T10:00:00+05:30", "2024-12-21T11:00:00+05:30", 1},
		{"ISO week starts Monday", "1w", ist, at(ist, "2024-12-22 12:00"), "2024-12-16T00:00:00+05:30", "2024-12-23T00:00:00+05:30", 168},
		{"Monday is its own week", "1w", ist, at(ist, "2024-12-23 00:00"), "2024-12-23T00:00:00+05:30", "2024-12-30T00:00:00+05:30", 168},
		{"spring forward: a 23-hour day", "1d", ny, at(ny, "2024-03-10 12:00"), "2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00", 23},
		{"fall back: a 25-hour day", "1d", ny, at(ny, "2024-11-03 23:30"), "2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00", 25},
		{"fall back: first 01:00 hour", "1h", ny, time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC), "2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", 1},
		{"fall back: repeated 01:00 hour", "1h", ny, time.Date(2024, 11, 3, 6, 30, 0, 0, time.UTC), "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00", 1},
		{"week across spring forward", "1w", ny, at(ny, "2024-03-10 12:00"), "2024-03-04T00:00:00-05:00", "2024-03-11T00:00:00-04:00", 167},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end := agg.Window(tc.size, tc.t.UnixMicro(), tc.loc)
			if got := start.Format(time.RFC3339); got != tc.start {
				t.Errorf("start %s, want %s", got, tc.start)
			}
			if got := end.Format(time.RFC3339); got != tc.end {
				t.Errorf("end %s, want %s", got, tc.end)
			}
			if h := end.Sub(start).Hours(); h != tc.hours {
				t.Errorf("%v hours, want %v", h, tc.hours)
			}
			if tc.t.Before(start) || !tc.t.Before(end) {
				t.Errorf("%s not in [%s, %s)", tc.t, start, end)
			}
		})
	}
}

// windowLines renders merchant_window_aggregates of one size at version:
// "M001 2024-12-21T00:00:00+05:30 500 -500 0 1 1" (merchant, start, sales,
// refunds, net, counts).
func windowLines(t testing.TB, db *store.DB, size string, version int64) string {
	t.Helper()
	info, err := db.Table(agg.WindowsTable)
	if err != nil {
		t.Fatal(err)
	}
	zone := info.Schema.Columns[2].Zone
	var b strings.Builder
	if _, err := db.Scan(context.Background(), agg.WindowsTable, version, store.KeyRange{}, func(r store.Row) error {
		if r[1].Str == size {
			fmt.Fprintf(&b, "%s %s %s %s %s %d %d\n", r[0].Str, r[2].Time().In(zone).Format(time.RFC3339),
				r[4].Paise(), r[5].Paise(), r[6].Paise(), r[7].Int, r[8].Int)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSeedDailyWindows(t *testing.T) {
	db := openStore(t, t.TempDir())
	p := agg.NewProcessor(db, agg.Options{})
	for i := 1; i <= 3; i++ {
		ingestSeed(t, db, i)
		if _, err := p.RunAvailableNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := "M001 2024-12-21T00:00:00+05:30 500 -500 0 1 1\nM003 2024-12-21T00:00:00+05:30 1500 0 1500 1 0\n"
	if got := windowLines(t, db, "1d", -1); got != want {
		t.Errorf("daily windows after batch 3:\n%s\nwant\n%s", got, want)
	}
	mustReconcile(t, db)
}

// ingestCSV MERGEs rows (without header) as one file.
func ingestCSV(t testing.TB, db *store.DB, name string, rows ...string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	body := "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func TestLateAndCorrectedRowsMoveBetweenWindows(t *testing.T) {
	db := aggtest.Open(t, t.TempDir(), agg.Config{WindowSizes: []string{"1d"}, Zone: time.UTC})
	p := agg.NewProcessor(db, agg.Options{Tables: agg.Config{WindowSizes: []string{"1d"}, Zone: time.UTC}})
	run := func() {
		t.Helper()
		if _, err := p.RunAvailableNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		rep, err := agg.Reconcile(context.Background(), db, "", agg.Config{WindowSizes: []string{"1d"}, Zone: time.UTC})
		if err != nil || !rep.OK() {
			t.Fatalf("reconcile: %v %+v", err, rep.Differences)
		}
	}
	ingestCSV(t, db, "a.csv", "T1,u,M1,100,2024-12-01 10:00:00,completed", "T2,u,M1,50,2024-12-01 11:00:00,completed")
	run()
	if got, want := windowLines(t, db, "1d", -1), "M1 2024-12-01T00:00:00Z 150 0 150 2 0\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// T1 completes again, three weeks later, with a corrected amount: its
	// sale leaves Dec 1 for Dec 22. T2 is refunded a day later.
	ingestCSV(t, db, "b.csv", "T1,u,M1,120,2024-12-22 09:00:00,completed", "T2,u,M1,50,2024-12-02 08:00:00,refunded")
	run()
	want := "M1 2024-12-01T00:00:00Z 50 0 50 1 0\nM1 2024-12-02T00:00:00Z 0 -50 -50 0 1\nM1 2024-12-22T00:00:00Z 120 0 120 1 0\n"
	if got := windowLines(t, db, "1d", -1); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// The same for T2's sale moving to a new merchant: the Dec 1 window of M1
	// empties and is deleted.
	ingestCSV(t, db, "c.csv", "T2,u,M2,50,2024-12-03 08:00:00,refunded")
	run()
	want = "M1 2024-12-22T00:00:00Z 120 0 120 1 0\nM2 2024-12-01T00:00:00Z 50 0 50 1 0\nM2 2024-12-03T00:00:00Z 0 -50 -50 0 1\n"
	if got := windowLines(t, db, "1d", -1); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	var changes []string
	if err := db.Changes(context.Background(), agg.WindowsTable, 3, 3, func(c store.Change) error {
		changes = append(changes, fmt.Sprintf("%s %s %s %s", c.Type, c.Row[0].Str, c.Row[2].Time().Format("01-02"), c.Row[6].Paise()))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantChanges := "delete M1 12-01 50,delete M1 12-02 -50,insert M2 12-01 50,insert M2 12-03 -50"
	if got := strings.Join(changes, ","); got != wantChanges {
		t.Errorf("window changes of version 3:\n got %s\nwant %s", got, wantChanges)
	}
}

// workload ingests a few weeks of sales, refunds and corrections.
func workload(t testing.TB, db *store.DB, p *agg.Processor) {
	t.Helper()
	for f := 0; f < 6; f++ {
		var rows []string
		for i := 0; i < 40; i++ {
			day := 1 + (i*7+f*3)%27
			status := []string{"completed", "refunded", "initiated", "completed"}[(i+f)%4]
			rows = append(rows, fmt.Sprintf("T%02d,u,M%d,%d.%02d,2024-11-%02d %02d:15:00,%s", (i*3+f)%50, (i+f)%4, 10+i, f, day, (i*5)%24, status))
		}
		ingestCSV(t, db, fmt.Sprintf("w%d.csv", f), rows...)
		if p != nil {
			if _, err := p.RunAvailableNow(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestBackfillOfANewSizeEqualsHavingItFromTheStart(t *testing.T) {
	ist := zone(t, "Asia/Kolkata")
	daily := agg.Config{WindowSizes: []string{"1d"}, Zone: ist}
	both := agg.Config{WindowSizes: []string{"1d", "1w"}, Zone: ist}

	fromStart := aggtest.Open(t, t.TempDir(), both)
	workload(t, fromStart, agg.NewProcessor(fromStart, agg.Options{Tables: both}))

	dir := t.TempDir()
	db, err := agg.Open(dir, daily, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	workload(t, db, agg.NewProcessor(db, agg.Options{Tables: daily}))
	if got := windowLines(t, db, "1w", -1); got != "" {
		t.Fatalf("weekly windows before they were configured: %q", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = aggtest.Open(t, dir, both)
	p := agg.NewProcessor(db, agg.Options{Tables: both})
	rebuilt, err := p.Prepare(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rebuilt) != "[merchant_window_aggregates]" {
		t.Errorf("rebuilt %v", rebuilt)
	}
	for _, size := range []string{"1d", "1w"} {
		if got, want := windowLines(t, db, size, -1), windowLines(t, fromStart, size, -1); got != want || want == "" {
			t.Errorf("%s windows after backfill:\n%s\nfrom the start:\n%s", size, got, want)
		}
	}
	h, err := db.History(agg.WindowsTable)
	if err != nil {
		t.Fatal(err)
	}
	last := h[len(h)-1]
	if last.Operation != "BACKFILL" || last.OperationParameters["properties.windows.sizes"] != "1d,1w" || last.OperationMetrics["numTargetRowsUpdated"] != 0 {
		t.Errorf("backfill commit %+v", last)
	}
	if again, _ := p.Prepare(context.Background()); len(again) != 0 {
		t.Errorf("second Prepare rebuilt %v", again)
	}
	rep, err := agg.Reconcile(context.Background(), db, "", both)
	if err != nil || !rep.OK() {
		t.Errorf("reconcile after backfill: %v %+v", err, rep.Differences)
	}
}

func TestReprocessAfterATimezoneChange(t *testing.T) {
	utc := agg.Config{WindowSizes: []string{"1d"}, Zone: time.UTC}
	ny := agg.Config{WindowSizes: []string{"1d"}, Zone: zone(t, "America/New_York")}
	want := aggtest.Open(t, t.TempDir(), ny)
	workload(t, want, agg.NewProcessor(want, agg.Options{Tables: ny}))

	dir := t.TempDir()
	db, err := agg.Open(dir, utc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	workload(t, db, agg.NewProcessor(db, agg.Options{Tables: utc}))
	before, _ := db.LatestVersion(agg.WindowsTable)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = aggtest.Open(t, dir, ny)
	p := agg.NewProcessor(db, agg.Options{Tables: ny})
	if _, err := p.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, w := windowLines(t, db, "1d", -1), windowLines(t, want, "1d", -1); got != w {
		t.Errorf("after the zone change:\n%s\nwant\n%s", got, w)
	}
	// The rebuild's change feed holds the differences; the old version
	// still reads as it was.
	var n int
	if err := db.Changes(context.Background(), agg.WindowsTable, before+1, before+1, func(store.Change) error { n++; return nil }); err != nil || n == 0 {
		t.Errorf("rebuild change rows: %d, %v", n, err)
	}
	// An explicit reprocess with nothing to change commits an empty version.
	res, err := p.Reprocess(context.Background(), agg.WindowsTable)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != before+2 || res.Inserted+res.Updated+res.Deleted != 0 {
		t.Errorf("reprocess %+v", res)
	}
	if _, err := p.Reprocess(context.Background(), "nope"); err == nil {
		t.Error("reprocess of an unknown table accepted")
	}
	rep, err := agg.Reconcile(context.Background(), db, "", ny)
	if err != nil || !rep.OK() {
		t.Errorf("reconcile: %v %+v", err, rep.Differences)
	}
}
