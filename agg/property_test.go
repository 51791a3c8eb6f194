package agg_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// modelRow is one generated input line.
type modelRow struct {
	id, merchant string
	amount       store.Paise
	minute       int
	status       string
	del          bool
}

func (r modelRow) csv() string {
	ts := time.Date(2024, 12, 21, 10, 0, 0, 0, time.UTC).Add(time.Duration(r.minute) * 17 * time.Hour).Format("2006-01-02 15:04:05")
	if r.del {
		return fmt.Sprintf("%s,,,,%s,,delete", r.id, ts)
	}
	return fmt.Sprintf("%s,upi-%s@bank,%s,%s,%s,%s,upsert", r.id, r.id, r.merchant, r.amount.Decimal(), ts, r.status)
}

// model is a deliberately naive recomputation of DESIGN.md: it keeps each
// transaction's images since its last (re)insert and derives the
// aggregates from them at the end.
type model struct {
	txns      map[string]*modelTxn
	merchants map[string]bool
}

type modelTxn struct {
	cur     modelRow
	live    bool
	deleted int // minute of the delete, when !live
	images  []modelRow
}

func newModel() *model {
	return &model{txns: map[string]*modelTxn{}, merchants: map[string]bool{}}
}

func (m *model) apply(rows []modelRow) {
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := strings.Compare(rows[a].id, rows[b].id); c != 0 {
			return c
		}
		return cmp.Compare(rows[a].minute, rows[b].minute)
	})
	for _, i := range order {
		r := rows[i]
		t := m.txns[r.id]
		switch {
		case r.del:
			if t == nil || !t.live || r.minute < t.cur.minute {
				continue // nothing to delete, or stale
			}
			t.live, t.deleted, t.images = false, r.minute, nil
		case t == nil:
			m.txns[r.id] = &modelTxn{cur: r, live: true, images: []modelRow{r}}
			m.merchants[r.merchant] = true
		case !t.live:
			if r.minute < t.deleted {
				continue
			}
			*t = modelTxn{cur: r, live: true, images: []modelRow{r}}
			m.merchants[r.merchant] = true
		case r.minute < t.cur.minute || r == t.cur:
			continue // stale or identical
		default:
			t.cur = r
			t.images = append(t.images, r)
			m.merchants[r.merchant] = true
		}
	}
}

func (m *model) table() string {
	type tot struct{ sales, refunds store.Paise }
	tots := map[string]*tot{}
	for mer := range m.merchants {
		tots[mer] = &tot{}
	}
	for _, t := range m.txns {
		if !t.live {
			continue
		}
		x := tots[t.cur.merchant]
		for i := len(t.images) - 1; i >= 0; i-- {
			if t.images[i].status == "completed" {
				x.sales += t.images[i].amount
				break
			}
		}
		for i := len(t.images) - 1; i >= 0; i-- {
			if t.images[i].status == "refunded" {
				x.refunds += t.images[i].amount
				break
			}
		}
	}
	names := make([]string, 0, len(tots))
	for mer := range tots {
		names = append(names, mer)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, mer := range names {
		x := tots[mer]
		fmt.Fprintf(&b, "%s %s %s %s\n", mer, x.sales, -x.refunds, x.sales-x.refunds)
	}
	return b.String()
}

// TestAggregatesMatchRecomputation: whatever the batches and whenever the
// processor runs (and however many versions a trigger takes), the
// aggregates equal the naive recomputation and reconcile finds nothing.
func TestAggregatesMatchRecomputation(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "upicdc-prop-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		db, err := agg.Open(filepath.Join(dir, "data"), agg.Config{}, store.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		ctx := context.Background()
		merger := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
		proc := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: rapid.IntRange(1, 3).Draw(rt, "maxVersions")})
		m := newModel()

		genRow := rapid.Custom(func(t *rapid.T) modelRow {
			return modelRow{
				id:       rapid.SampledFrom([]string{"T1", "T2", "T3", "T4", "T5"}).Draw(t, "id"),
				merchant: rapid.SampledFrom([]string{"M1", "M2", "M3"}).Draw(t, "merchant"),
				amount:   rapid.SampledFrom([]store.Paise{0, 1, 50000, 50050, 150000}).Draw(t, "amount"),
				minute:   rapid.IntRange(0, 30).Draw(t, "minute"),
				status:   rapid.SampledFrom([]string{"initiated", "completed", "failed", "refunded"}).Draw(t, "status"),
				del:      rapid.Float64Range(0, 1).Draw(t, "p") < 0.12,
			}
		})
		var sent []string
		nBatches := rapid.IntRange(1, 8).Draw(rt, "batches")
		for b := 0; b < nBatches; b++ {
			var body string
			var rows []modelRow
			if len(sent) > 0 && rapid.Float64Range(0, 1).Draw(rt, "resend") < 0.1 {
				body = rapid.SampledFrom(sent).Draw(rt, "resent") // same content, new name: applies nothing
			} else {
				rows = rapid.SliceOfN(genRow, 0, 6).Draw(rt, "rows")
				lines := []string{"transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,op"}
				for _, r := range rows {
					lines = append(lines, r.csv())
				}
				body = strings.Join(lines, "\n") + "\n"
				sent = append(sent, body)
			}
			p := filepath.Join(dir, fmt.Sprintf("batch-%d.csv", b))
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				rt.Fatal(err)
			}
			res, err := merger.IngestFile(ctx, p)
			if err != nil {
				rt.Fatalf("ingest: %v\n%s", err, body)
			}
			if !res.Duplicate {
				m.apply(rows)
			}
			switch rapid.IntRange(0, 2).Draw(rt, "process") {
			case 1:
				if _, err := proc.RunOnce(ctx); err != nil {
					rt.Fatal(err)
				}
			case 2:
				if _, err := proc.RunAvailableNow(ctx); err != nil {
					rt.Fatal(err)
				}
				if got, want := aggtest.AggregateLines(rt, db, -1), m.table(); got != want {
					rt.Fatalf("after batch %d:\ngot\n%s\nwant\n%s", b, got, want)
				}
			}
		}
		if _, err := proc.RunAvailableNow(ctx); err != nil {
			rt.Fatal(err)
		}
		if got, want := aggtest.AggregateLines(rt, db, -1), m.table(); got != want {
			rt.Fatalf("final:\ngot\n%s\nwant\n%s", got, want)
		}
		rep, err := agg.Reconcile(ctx, db, "", agg.Config{})
		if err != nil {
			rt.Fatal(err)
		}
		if !rep.OK() {
			rt.Fatalf("reconcile: %+v", rep.Differences)
		}
		// The raw table's rows equal the model's live transactions.
		var live []string
		if _, err := cdc.ScanRows(ctx, db, -1, func(r cdc.Row) error {
			live = append(live, r.TransactionID+" "+r.Status.String())
			return nil
		}); err != nil {
			rt.Fatal(err)
		}
		var want []string
		for id, t := range m.txns {
			if t.live {
				want = append(want, id+" "+t.cur.status)
			}
		}
		slices.Sort(want)
		if strings.Join(live, ",") != strings.Join(want, ",") {
			rt.Fatalf("raw rows %v, want %v", live, want)
		}
	})
}
