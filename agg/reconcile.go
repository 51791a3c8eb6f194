package agg

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/upicdc/upicdc/store"
)

// Difference is one value where the stored table disagrees with the
// recomputation.
type Difference struct {
	Table    store.Table
	Key      string // merchant_id or transaction_id
	Column   string
	Stored   string
	Expected string
}

// Report is the outcome of Reconcile.
type Report struct {
	Stream       string
	RawVersion   int64 // raw versions 1..RawVersion were recomputed
	AggVersion   int64 // and compared with this aggregated version
	ChangeRows   int64
	Transactions int
	Merchants    int
	Differences  []Difference
}

// OK reports whether nothing differed.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// expected is a transaction's state replayed from the change feed, kept
// deliberately apart from the processor's code path.
type expected struct {
	row          store.Row
	live         bool
	sale, refund store.Paise
}

// Reconcile recomputes the aggregated table from the raw table's whole change
// feed up to the stream's checkpoint and compares it with the stored
// aggregates at the checkpoint's version. It also replays the raw table's
// current rows from its change feed and compares them with the stored rows.
// Memory grows with the number of distinct transactions (~150 B each).
func Reconcile(ctx context.Context, db *store.DB, stream string) (Report, error) {
	if stream == "" {
		stream = DefaultStream
	}
	cp, err := db.Checkpoint(stream)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	rep := Report{Stream: stream, RawVersion: cp.RawVersion, AggVersion: cp.AggVersion}
	txns := make(map[string]*expected)
	merchants := make(map[string]bool)
	if cp.RawVersion > 0 {
		err = db.Changes(ctx, 1, cp.RawVersion, func(c store.Change) error {
			rep.ChangeRows++
			id := c.Row.TransactionID
			e := txns[id]
			if e == nil {
				e = &expected{}
				txns[id] = e
			}
			switch c.Type {
			case store.UpdatePreimage:
				return nil
			case store.Delete:
				*e = expected{row: c.Row}
			case store.Insert:
				*e = expected{row: c.Row, live: true}
			case store.UpdatePostimage:
				e.row, e.live = c.Row, true
			}
			merchants[c.Row.MerchantID] = true
			if e.live && c.Row.Status == store.StatusCompleted {
				e.sale = c.Row.Amount
			}
			if e.live && c.Row.Status == store.StatusRefunded {
				e.refund = c.Row.Amount
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
	}
	rep.Transactions = len(txns)

	want := make(map[string]store.Aggregate, len(merchants))
	for m := range merchants {
		want[m] = store.Aggregate{MerchantID: m}
	}
	for _, e := range txns {
		if !e.live {
			continue
		}
		a := want[e.row.MerchantID]
		a.TotalSales += e.sale
		a.TotalRefunds -= e.refund
		switch e.row.Status {
		case store.StatusInitiated:
			a.Initiated++
		case store.StatusCompleted:
			a.Completed++
		case store.StatusFailed:
			a.Failed++
		case store.StatusRefunded:
			a.Refunded++
		}
		want[e.row.MerchantID] = a
	}
	rep.Merchants = len(want)

	stored, _, err := db.Aggregates(cp.AggVersion)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	have := make(map[string]store.Aggregate, len(stored))
	for _, a := range stored {
		have[a.MerchantID] = a
	}
	keys := make([]string, 0, len(want)+len(have))
	for m := range want {
		keys = append(keys, m)
	}
	for m := range have {
		if _, ok := want[m]; !ok {
			keys = append(keys, m)
		}
	}
	slices.Sort(keys)
	for _, m := range keys {
		w, wok := want[m]
		h, hok := have[m]
		switch {
		case !hok:
			rep.Differences = append(rep.Differences, Difference{Table: store.AggTable, Key: m, Column: "(row)", Stored: "missing", Expected: "present"})
			continue
		case !wok:
			rep.Differences = append(rep.Differences, Difference{Table: store.AggTable, Key: m, Column: "(row)", Stored: "present", Expected: "missing"})
			continue
		}
		w.NetSales = w.TotalSales + w.TotalRefunds
		cmpCol := func(col string, s, e string) {
			if s != e {
				rep.Differences = append(rep.Differences, Difference{Table: store.AggTable, Key: m, Column: col, Stored: s, Expected: e})
			}
		}
		cmpCol("total_sales", h.TotalSales.String(), w.TotalSales.String())
		cmpCol("total_refunds", h.TotalRefunds.String(), w.TotalRefunds.String())
		cmpCol("net_sales", h.NetSales.String(), w.NetSales.String())
		cmpCol("initiated_count", itoa(h.Initiated), itoa(w.Initiated))
		cmpCol("completed_count", itoa(h.Completed), itoa(w.Completed))
		cmpCol("failed_count", itoa(h.Failed), itoa(w.Failed))
		cmpCol("refunded_count", itoa(h.Refunded), itoa(w.Refunded))
	}

	// The raw table's stored rows must equal its change feed replayed.
	found := make(map[string]bool)
	_, err = db.ScanRows(ctx, cp.RawVersion, func(r store.Row) error {
		found[r.TransactionID] = true
		e := txns[r.TransactionID]
		switch {
		case e == nil || !e.live:
			rep.Differences = append(rep.Differences, Difference{Table: store.RawTable, Key: r.TransactionID, Column: "(row)", Stored: "present", Expected: "absent"})
		case e.row != r:
			rep.Differences = append(rep.Differences, Difference{Table: store.RawTable, Key: r.TransactionID, Column: "(row)", Stored: fmt.Sprint(r), Expected: fmt.Sprint(e.row)})
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	var missing []string
	for id, e := range txns {
		if e.live && !found[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for _, id := range missing {
		rep.Differences = append(rep.Differences, Difference{Table: store.RawTable, Key: id, Column: "(row)", Stored: "absent", Expected: "present"})
	}
	return rep, nil
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
