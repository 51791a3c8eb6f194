package agg

import "github.com/upicdc/upicdc/store"

// step folds one change-feed row into a transaction's contribution. prev is
// the contribution before (the zero value, not Live, if never seen).
// update_preimage rows carry nothing new and are ignored by the caller.
func step(prev store.Contribution, t store.ChangeType, r *store.Row) store.Contribution {
	switch t {
	case store.Delete:
		return store.Contribution{MerchantID: r.MerchantID, Status: r.Status, Live: false}
	case store.Insert:
		// A (re-)insert starts afresh: history before a delete is gone.
		prev = store.Contribution{}
	case store.UpdatePostimage:
		if !prev.Live {
			prev = store.Contribution{}
		}
	}
	c := store.Contribution{MerchantID: r.MerchantID, Sale: prev.Sale, Refund: prev.Refund, Status: r.Status, Live: true}
	switch r.Status {
	case store.StatusCompleted:
		c.Sale = r.Amount
	case store.StatusRefunded:
		c.Refund = r.Amount
	}
	return c
}

// delta is a change to one merchant's aggregate.
type delta struct {
	sales, refunds store.Paise
	counts         [5]int64 // indexed by store.Status
	seen           bool     // the merchant must have a row even if all zero
}

func (d *delta) add(c store.Contribution, sign int64) {
	if !c.Live {
		return
	}
	d.sales += store.Paise(sign) * c.Sale
	d.refunds += store.Paise(sign) * c.Refund
	if int(c.Status) < len(d.counts) {
		d.counts[c.Status] += sign
	}
}

// apply returns a with d applied.
func (d *delta) apply(a store.Aggregate) store.Aggregate {
	a.TotalSales += d.sales
	a.TotalRefunds -= d.refunds
	a.NetSales = a.TotalSales + a.TotalRefunds
	a.Initiated += d.counts[store.StatusInitiated]
	a.Completed += d.counts[store.StatusCompleted]
	a.Failed += d.counts[store.StatusFailed]
	a.Refunded += d.counts[store.StatusRefunded]
	return a
}
