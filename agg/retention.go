package agg

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// Retention and the derived tables.
//
// A vacuum removes the raw change feed below the raw table's horizon; the
// derived tables are recomputed (reconcile, backfill, reprocess) from every
// transaction's contribution, which depends on the transaction's whole
// history (a refunded transaction still counts the sale of its completed
// image). So the stream keeps a baseline: every transaction's contribution
// as of the horizon, and every merchant seen up to it. The store folds it
// forward with foldBaseline in the same bbolt transaction that moves the
// horizon, so baseline and horizon always agree; recomputing starts from
// the baseline and replays the change feed after the horizon.

// Baseline keys: a transaction's contribution, a merchant seen.
const (
	baselineTxn      = 't'
	baselineMerchant = 'm'
)

// baseline is a stream's baseline, decoded.
type baseline struct {
	version   int64
	txns      map[string]*expected
	merchants map[string]bool
}

func emptyBaseline() *baseline {
	return &baseline{txns: map[string]*expected{}, merchants: map[string]bool{}}
}

// loadBaseline reads a baseline through walk (Snapshot.Baseline or
// ProcessTx.Baseline).
func loadBaseline(walk func(fn func(k, v []byte) error) (int64, error)) (*baseline, error) {
	b := emptyBaseline()
	v, err := walk(func(k, v []byte) error {
		if len(k) == 0 {
			return fmt.Errorf("%w: empty baseline key", store.ErrCorrupt)
		}
		switch k[0] {
		case baselineTxn:
			c, err := decodeContribution(v)
			if err != nil {
				return fmt.Errorf("baseline of %q: %w", k[1:], err)
			}
			id := string(k[1:])
			b.txns[id] = expectedOf(id, c)
		case baselineMerchant:
			b.merchants[string(k[1:])] = true
		default:
			return fmt.Errorf("%w: baseline key %q", store.ErrCorrupt, k)
		}
		return nil
	})
	b.version = v
	return b, err
}

// foldBaseline moves a stream's baseline over the raw versions a vacuum is
// about to remove, with reconcile's replay rules.
func foldBaseline(b *store.BaselineTx) error {
	touched := map[string]*expected{}
	merchants := map[string]bool{}
	var key []byte
	err := b.Changes(func(sc store.Change) error { // no preimages
		r := cdc.RowOf(sc.Row)
		e := touched[r.TransactionID]
		if e == nil {
			key = append(append(key[:0], baselineTxn), r.TransactionID...)
			e = &expected{}
			if v := b.Get(key); v != nil {
				c, err := decodeContribution(v)
				if err != nil {
					return fmt.Errorf("baseline of %q: %w", r.TransactionID, err)
				}
				e = expectedOf(r.TransactionID, c)
			}
			touched[r.TransactionID] = e
		}
		e.apply(sc.Type, r)
		merchants[r.MerchantID] = true
		return nil
	})
	if err != nil {
		return err
	}
	var buf []byte
	for _, id := range slices.Sorted(maps.Keys(touched)) {
		c := touched[id].contribution()
		buf = appendContribution(buf[:0], &c)
		key = append(append(key[:0], baselineTxn), id...)
		if err := b.Put(key, buf); err != nil {
			return err
		}
	}
	for _, m := range slices.Sorted(maps.Keys(merchants)) {
		key = append(append(key[:0], baselineMerchant), m...)
		if b.Get(key) == nil {
			if err := b.Put(key, []byte{1}); err != nil {
				return err
			}
		}
	}
	return nil
}

// VacuumOptions configures Vacuum.
type VacuumOptions struct {
	// Stream is the processor's stream (default DefaultStream). One that
	// has never run holds the raw table's whole change feed.
	Stream string
	Policy store.Retention
	// Consumers are positions kept outside the store (the Delta export's).
	Consumers []store.Consumer
	// Hook, if set, runs inside each table's transaction before it commits
	// (tests crash there).
	Hook func(table string) error
}

// Vacuum applies the retention policy to every table of db: see
// store.DB.Vacuum. The stream's baseline moves with the raw table's
// horizon.
func Vacuum(ctx context.Context, db *store.DB, opts VacuumOptions) ([]store.TableVacuum, error) {
	consumers, err := Consumers(db, opts.Stream, opts.Consumers)
	if err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	res, err := db.Vacuum(ctx, store.VacuumOptions{Policy: opts.Policy, Consumers: consumers, Hook: opts.Hook,
		Baseline: foldBaseline})
	if err != nil {
		return res, fmt.Errorf("vacuum: %w", err)
	}
	return res, nil
}

// Consumers returns the consumer positions retention must respect besides
// those the store keeps: extra, and the stream if it has never committed
// (the store knows a stream once it has a checkpoint).
func Consumers(db *store.DB, stream string, extra []store.Consumer) ([]store.Consumer, error) {
	if stream == "" {
		stream = DefaultStream
	}
	cp, err := db.Checkpoint(stream)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(extra)
	if cp.Source == "" {
		out = append(out, store.Consumer{Name: stream, Kind: "stream", Table: cdc.RawTable, Version: cp.SourceVersion + 1})
	}
	return out, nil
}
