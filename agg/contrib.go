package agg

import (
	"encoding/binary"
	"fmt"
	"iter"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// Contribution is what one transaction currently adds to the derived
// tables, a function of its images so far. Computing it per transaction
// (before a micro-batch from its earlier images, after from those plus the
// batch's) is what makes replays and no-op updates unable to double count:
// a new image replaces the old contribution, it never adds to it.
type Contribution struct {
	MerchantID string
	// Sale is the amount of the transaction's newest completed image
	// (HasSale: it had one) and SaleTime its transaction_time (µs).
	Sale     store.Paise
	SaleTime int64
	// Refund, RefundTime, HasRefund: the same for refunded images.
	Refund     store.Paise
	RefundTime int64
	// The flags last: a micro-batch holds two contributions for each of up
	// to a million transactions, and this order needs no padding.
	HasSale   bool
	HasRefund bool
	Status    cdc.Status // current status
	Live      bool       // false once deleted
}

// contributionColumns are the raw columns a contribution is folded from
// (all but upi_id).
func contributionColumns() []string {
	return []string{"transaction_id", "merchant_id", "transaction_amount", "transaction_time", "transaction_status"}
}

// step folds one change-feed row into a transaction's contribution. prev is
// the contribution before (the zero value, not Live, if never seen).
// update_preimage rows carry nothing new and are ignored by the caller.
func step(prev Contribution, t store.ChangeType, r *cdc.Row) Contribution {
	switch t {
	case store.Delete:
		return Contribution{MerchantID: r.MerchantID, Status: r.Status, Live: false}
	case store.Insert:
		// A (re-)insert starts afresh: history before a delete is gone.
		prev = Contribution{}
	case store.UpdatePostimage:
		if !prev.Live {
			prev = Contribution{}
		}
	}
	c := prev
	c.MerchantID, c.Status, c.Live = r.MerchantID, r.Status, true
	switch r.Status {
	case cdc.StatusCompleted:
		c.HasSale, c.Sale, c.SaleTime = true, r.Amount, r.Time
	case cdc.StatusRefunded:
		c.HasRefund, c.Refund, c.RefundTime = true, r.Amount, r.Time
	}
	return c
}

const (
	contribFormat byte = 2
	cSale         byte = 1 << 0
	cRefund       byte = 1 << 1
	cLive         byte = 1 << 2
)

func appendContribution(dst []byte, c *Contribution) []byte {
	var flags byte
	if c.HasSale {
		flags |= cSale
	}
	if c.HasRefund {
		flags |= cRefund
	}
	if c.Live {
		flags |= cLive
	}
	dst = append(dst, contribFormat, flags, byte(c.Status))
	dst = binary.AppendUvarint(dst, uint64(len(c.MerchantID)))
	dst = append(dst, c.MerchantID...)
	if c.HasSale {
		dst = binary.AppendVarint(dst, int64(c.Sale))
		dst = binary.AppendVarint(dst, c.SaleTime)
	}
	if c.HasRefund {
		dst = binary.AppendVarint(dst, int64(c.Refund))
		dst = binary.AppendVarint(dst, c.RefundTime)
	}
	return dst
}

func decodeContribution(v []byte) (Contribution, error) {
	bad := fmt.Errorf("%w: contribution %x", store.ErrCorrupt, v)
	if len(v) < 4 || v[0] != contribFormat {
		return Contribution{}, bad
	}
	flags := v[1]
	c := Contribution{Status: cdc.Status(v[2]), HasSale: flags&cSale != 0, HasRefund: flags&cRefund != 0, Live: flags&cLive != 0}
	v = v[3:]
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return c, bad
	}
	c.MerchantID = string(v[k : k+int(n)])
	v = v[k+int(n):]
	next := func() int64 {
		x, k := binary.Varint(v)
		if k <= 0 {
			v = nil
			return 0
		}
		v = v[k:]
		return x
	}
	if c.HasSale {
		c.Sale, c.SaleTime = store.Paise(next()), next()
	}
	if c.HasRefund {
		c.Refund, c.RefundTime = store.Paise(next()), next()
	}
	if v == nil && (c.HasSale || c.HasRefund) {
		return c, bad
	}
	return c, nil
}

// TxnChange is one transaction touched by a micro-batch: its contribution
// before (Old, if OldFound) and after.
type TxnChange struct {
	ID       string
	Old      Contribution
	New      Contribution
	OldFound bool
}

// Batch is what a micro-batch hands each derived table.
type Batch struct {
	// Txns are the touched transactions, in the order the batch first read them.
	Txns []TxnChange
	// Merchants are every merchant_id the batch's change rows named: each
	// must have a row in the merchant tables, zeros allowed.
	Merchants map[string]bool
	// RawVersion is the newest raw version the batch read.
	RawVersion int64
	// Changes are the rows the batch wrote to the derived tables applied
	// before this one that it names in Inputs (table → changes, after-images
	// and deletes, in key order): a derived table can build on another.
	Changes map[string][]store.Change
	// At is when the micro-batch runs.
	At time.Time
}

// inputs is implemented by a derived table that builds on the changes
// earlier tables made in the same micro-batch (see Batch.Changes).
type inputs interface {
	Inputs() []string
}

// buildFrom is implemented by a derived table whose rows depend on their
// own history (when an alert fired): a rebuild or reconcile gives it the
// rows the table holds.
type buildFrom interface {
	BuildFrom(u *Universe, have []store.Row) ([]store.Row, error)
}

// build computes d from u, given what it holds.
func build(d Derived, u *Universe, have []store.Row) ([]store.Row, error) {
	if b, ok := d.(buildFrom); ok {
		return b.BuildFrom(u, have)
	}
	return d.Build(u)
}

// Universe is every transaction's contribution, recomputed from the raw
// history, and every merchant ever seen: what a derived table is built from
// by reconcile, backfill and reprocess.
type Universe struct {
	Txns      iter.Seq[Contribution] // in no particular order
	Merchants map[string]bool
	// RawVersion is the raw version the universe was recomputed at.
	RawVersion int64
}
