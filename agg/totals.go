package agg

import (
	"context"
	"slices"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// TotalsTable is aggregated_upi_transactions: each merchant's totals.
const TotalsTable = "aggregated_upi_transactions"

// totals keeps aggregated_upi_transactions. Per merchant m:
// total_sales = Σ sale(t), total_refunds = −Σ refund(t), net_sales their
// sum, over m's live transactions; counts of live transactions by current
// status; the raw version that last changed the row. A merchant has a row,
// zeros allowed, once any of its transactions was seen.
type totals struct{}

const (
	tMerchant = iota
	tSales
	tRefunds
	tNet
	tInitiated
	tCompleted
	tFailed
	tRefunded
	tLastRaw
	tColumns
)

func (totals) Def() store.TableDef {
	return store.TableDef{
		Name:    TotalsTable,
		Doc:     "per merchant: sales, refunds and net sales of its live transactions",
		Derived: true,
		Schema: store.Schema{KeyColumns: 1, Columns: []store.Column{
			{Name: "merchant_id", Type: store.String, Doc: "the merchant (the key)"},
			{Name: "total_sales", Type: store.Money, Doc: "Σ amount of each transaction's newest completed image"},
			{Name: "total_refunds", Type: store.Money, Doc: "−Σ amount of each transaction's newest refunded image"},
			{Name: "net_sales", Type: store.Money, Doc: "total_sales + total_refunds"},
			{Name: "initiated_count", Type: store.Int, Doc: "live transactions now initiated"},
			{Name: "completed_count", Type: store.Int, Doc: "live transactions now completed"},
			{Name: "failed_count", Type: store.Int, Doc: "live transactions now failed"},
			{Name: "refunded_count", Type: store.Int, Doc: "live transactions now refunded"},
			{Name: "last_raw_version", Type: store.Int, Doc: "the raw table version that last changed this row"},
		}},
	}
}

func (totals) Bookkeeping() []string { return []string{"last_raw_version"} }

// totalsDelta is a change to one merchant's row.
type totalsDelta struct {
	sales, refunds store.Paise
	counts         [5]int64 // indexed by cdc.Status
}

func (d *totalsDelta) add(c *Contribution, sign int64) {
	if !c.Live {
		return
	}
	if c.HasSale {
		d.sales += store.Paise(sign) * c.Sale
	}
	if c.HasRefund {
		d.refunds += store.Paise(sign) * c.Refund
	}
	if int(c.Status) < len(d.counts) {
		d.counts[c.Status] += sign
	}
}

func (d *totalsDelta) apply(r store.Row) {
	r[tSales].Int += int64(d.sales)
	r[tRefunds].Int -= int64(d.refunds)
	r[tNet].Int = r[tSales].Int + r[tRefunds].Int
	r[tInitiated].Int += d.counts[cdc.StatusInitiated]
	r[tCompleted].Int += d.counts[cdc.StatusCompleted]
	r[tFailed].Int += d.counts[cdc.StatusFailed]
	r[tRefunded].Int += d.counts[cdc.StatusRefunded]
}

func emptyTotals(m string) store.Row {
	r := make(store.Row, tColumns)
	r[tMerchant] = store.Value{Str: m}
	return r
}

func (totals) Apply(b *Batch, w *store.TableWriter) error {
	deltas := make(map[string]*totalsDelta, len(b.Merchants))
	get := func(m string) *totalsDelta {
		d := deltas[m]
		if d == nil {
			d = &totalsDelta{}
			deltas[m] = d
		}
		return d
	}
	for m := range b.Merchants {
		get(m)
	}
	for i := range b.Txns {
		t := &b.Txns[i]
		if t.OldFound {
			get(t.Old.MerchantID).add(&t.Old, -1)
		}
		get(t.New.MerchantID).add(&t.New, +1)
	}
	merchants := make([]string, 0, len(deltas))
	for m := range deltas {
		merchants = append(merchants, m)
	}
	slices.Sort(merchants)
	keys := make([]store.Row, len(merchants))
	ds := make([]*totalsDelta, len(merchants))
	for i, m := range merchants {
		keys[i], ds[i] = store.Row{{Str: m}}, deltas[m]
	}
	_, err := mergeDeltas(w, keys, ds, func(key, cur store.Row, d **totalsDelta) (store.Row, error) {
		next := emptyTotals(key[0].Str)
		if cur != nil {
			copy(next, cur)
		}
		(*d).apply(next)
		if cur != nil && slices.Equal(cur, next) {
			return cur, nil
		}
		next[tLastRaw].Int = b.RawVersion
		return next, nil
	})
	return err
}

func (totals) Build(u *Universe) ([]store.Row, error) {
	// A single String key's store encoding is the string itself.
	rows := make(map[string]store.Row, len(u.Merchants))
	for m := range u.Merchants {
		rows[m] = emptyTotals(m)
	}
	for c := range u.Txns {
		if !c.Live {
			continue
		}
		r := rows[c.MerchantID]
		if r == nil {
			r = emptyTotals(c.MerchantID)
			rows[c.MerchantID] = r
		}
		var d totalsDelta
		d.add(&c, +1)
		d.apply(r)
	}
	return sortedRows(rows, u.RawVersion, tLastRaw), nil
}

// Aggregate is one row of aggregated_upi_transactions, typed.
type Aggregate struct {
	MerchantID     string
	TotalSales     store.Paise
	TotalRefunds   store.Paise // ≤ 0: refunds are subtracted
	NetSales       store.Paise
	Initiated      int64
	Completed      int64
	Failed         int64
	Refunded       int64
	LastRawVersion int64
}

// AggregateOf converts a row of aggregated_upi_transactions.
func AggregateOf(r store.Row) Aggregate {
	return Aggregate{MerchantID: r[tMerchant].Str, TotalSales: store.Paise(r[tSales].Int),
		TotalRefunds: store.Paise(r[tRefunds].Int), NetSales: store.Paise(r[tNet].Int),
		Initiated: r[tInitiated].Int, Completed: r[tCompleted].Int, Failed: r[tFailed].Int,
		Refunded: r[tRefunded].Int, LastRawVersion: r[tLastRaw].Int}
}

// Totals reads aggregated_upi_transactions at version (< 0: latest), in
// merchant_id order, and the version read.
func Totals(ctx context.Context, db *store.DB, version int64) ([]Aggregate, int64, error) {
	var out []Aggregate
	v, err := db.Scan(ctx, TotalsTable, version, store.KeyRange{}, func(r store.Row) error {
		out = append(out, AggregateOf(r))
		return nil
	})
	return out, v, err
}
