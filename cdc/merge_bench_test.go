package cdc_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// workload generates batches like a UPI switch's: new transactions and
// status updates of recent ones, with random-looking ids (the worst case for
// a B+tree: no locality at all).
type workload struct {
	rng    *rand.Rand
	ids    []string
	clock  int64
	serial int
	// ordered makes ids increase with time, as UPI RRNs do, and updates
	// pick among the newest 200k transactions: the realistic case, where
	// the B+tree sees locality. Otherwise ids are random and updates pick
	// any transaction: the worst case.
	ordered bool
}

func newWorkload(seed uint64, ordered bool) *workload {
	return &workload{rng: rand.New(rand.NewPCG(seed, 7)), clock: 1_734_775_200_000_000, ordered: ordered}
}

func (w *workload) newID() string {
	w.serial++
	if w.ordered {
		return fmt.Sprintf("%012d", 400_000_000_000+w.serial)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], w.rng.Uint64())
	return fmt.Sprintf("TXN%016x", b)
}

func (w *workload) pick() string {
	if w.ordered {
		recent := min(len(w.ids), 200_000)
		return w.ids[len(w.ids)-1-w.rng.IntN(recent)]
	}
	return w.ids[w.rng.IntN(len(w.ids))]
}

// batch returns n rows: a share updateFrac of updates of existing ids, the
// rest inserts of new ones.
func (w *workload) batch(n int, updateFrac float64) *cdc.Batch {
	rows := make([]cdc.Input, n)
	for i := range rows {
		w.clock += 1000
		var id string
		status := store.StatusInitiated
		if len(w.ids) > 0 && w.rng.Float64() < updateFrac {
			id = w.pick()
			status = store.StatusCompleted
			if w.rng.IntN(10) == 0 {
				status = store.StatusRefunded
			}
		} else {
			id = w.newID()
			w.ids = append(w.ids, id)
		}
		m := w.rng.IntN(5000)
		rows[i] = cdc.Input{Pos: i + 2, Op: cdc.OpUpsert, Row: store.Row{
			TransactionID: id,
			UPIID:         "user" + strconv.Itoa(w.rng.IntN(1_000_000)) + "@bank",
			MerchantID:    "M" + strconv.Itoa(m),
			Amount:        store.Paise(100 + w.rng.Int64N(1_000_000)),
			Time:          w.clock,
			Status:        status,
		}}
	}
	w.serial++
	return &cdc.Batch{Name: fmt.Sprintf("bench-%d.csv", w.serial), Format: cdc.FormatCSV, Rows: rows,
		SHA256: sha256.Sum256([]byte(strconv.Itoa(w.serial) + strconv.FormatUint(w.rng.Uint64(), 10)))}
}

// benchTable returns a store holding `rows` rows, built once per size and
// process in a temp dir.
func benchTable(b *testing.B, rows int, ordered bool) (*store.DB, *workload) {
	b.Helper()
	dir := b.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	w := newWorkload(1, ordered)
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	const step = 100_000
	for done := 0; done < rows; done += step {
		if _, err := m.Merge(context.Background(), w.batch(min(step, rows-done), 0)); err != nil {
			b.Fatal(err)
		}
	}
	return db, w
}

// BenchmarkMerge MERGEs 100k-row files (half updates of existing rows, half
// new rows) into a table that starts at 1M (and, with UPICDC_BENCH_10M=1,
// 10M) rows, with random ids (worst case) and time-ordered ids (UPI-like).
// rows/s is the number that matters.
func BenchmarkMerge(b *testing.B) {
	sizes := []int{1_000_000}
	if os.Getenv("UPICDC_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, size := range sizes {
		for _, ordered := range []bool{false, true} {
			ids := map[bool]string{false: "random", true: "ordered"}[ordered]
			b.Run(fmt.Sprintf("table=%dk/file=100k/ids=%s", size/1000, ids), func(b *testing.B) {
				benchMerge(b, size, ordered)
			})
		}
	}
}

func benchMerge(b *testing.B, size int, ordered bool) {
	db, w := benchTable(b, size, ordered)
	m := cdc.NewMerger(db, cdc.ParseOptions{}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for b.Loop() {
		b.StopTimer()
		batch := w.batch(100_000, 0.5)
		b.StartTimer()
		if _, err := m.Merge(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		rows += len(batch.Rows)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
