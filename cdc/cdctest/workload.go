// Package cdctest generates MERGE workloads for benchmarks and tests: UPI-like
// batches of new transactions and status updates of existing ones.
package cdctest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// Workload makes batches deterministically from a seed.
type Workload struct {
	rng     *rand.Rand
	ids     []string
	clock   int64
	serial  int
	ordered bool
}

// NewWorkload returns a workload. ordered makes ids increase with time, as
// UPI RRNs do, with updates among the newest 200k transactions: the
// realistic case, where a B+tree (and a Delta table's files) see locality.
// Otherwise ids are random and updates pick any transaction: the worst case.
func NewWorkload(seed uint64, ordered bool) *Workload {
	return &Workload{rng: rand.New(rand.NewPCG(seed, 7)), clock: 1_734_775_200_000_000, ordered: ordered}
}

func (w *Workload) newID() string {
	w.serial++
	if w.ordered {
		return fmt.Sprintf("%012d", 400_000_000_000+w.serial)
	}
	return fmt.Sprintf("TXN%016x", w.rng.Uint64())
}

func (w *Workload) pick() string {
	if w.ordered {
		return w.ids[len(w.ids)-1-w.rng.IntN(min(len(w.ids), 200_000))]
	}
	return w.ids[w.rng.IntN(len(w.ids))]
}

// Batch returns a parsed batch of n rows: a share updateFrac of them update
// existing transactions to completed (one in ten to refunded), the rest are
// new initiated transactions. Every batch has distinct content (sha256).
func (w *Workload) Batch(n int, updateFrac float64) *cdc.Batch {
	rows := make([]cdc.Input, n)
	for i := range rows {
		w.clock += 1000
		var id string
		status := cdc.StatusInitiated
		if len(w.ids) > 0 && w.rng.Float64() < updateFrac {
			id = w.pick()
			status = cdc.StatusCompleted
			if w.rng.IntN(10) == 0 {
				status = cdc.StatusRefunded
			}
		} else {
			id = w.newID()
			w.ids = append(w.ids, id)
		}
		rows[i] = cdc.Input{Pos: i + 2, Op: cdc.OpUpsert, Row: cdc.Row{
			TransactionID: id,
			UPIID:         "user" + strconv.Itoa(w.rng.IntN(1_000_000)) + "@bank",
			MerchantID:    "M" + strconv.Itoa(w.rng.IntN(5000)),
			Amount:        store.Paise(100 + w.rng.Int64N(1_000_000)),
			Time:          w.clock,
			Status:        status,
		}}
	}
	w.serial++
	name := fmt.Sprintf("bench-%d.csv", w.serial)
	return &cdc.Batch{Name: name, Format: cdc.FormatCSV, Rows: rows,
		SHA256: sha256.Sum256([]byte(name + strconv.FormatUint(w.rng.Uint64(), 10)))}
}

// Table returns a store in a temp dir holding rows new transactions from a
// fresh workload (merged in 100k-row files), and that workload, to go on
// with updates of those transactions.
func Table(tb testing.TB, rows int, ordered bool) (*store.DB, *Workload) {
	tb.Helper()
	db, err := store.Open(tb.TempDir(), store.Options{Tables: []store.TableDef{cdc.RawDef()}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	w := NewWorkload(1, ordered)
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	const step = 100_000
	for done := 0; done < rows; done += step {
		if _, err := m.Merge(context.Background(), w.Batch(min(step, rows-done), 0)); err != nil {
			tb.Fatal(err)
		}
	}
	return db, w
}
