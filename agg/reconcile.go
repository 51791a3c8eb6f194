package agg

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// Difference is one value where a stored table disagrees with the
// recomputation (or one of the tables' invariants does not hold).
type Difference struct {
	Table    string
	Key      string // the row's key values, comma-separated
	Column   string
	Stored   string
	Expected string
}

// Report is the outcome of Reconcile.
type Report struct {
	Stream       string
	RawVersion   int64            // raw versions Horizon+1..RawVersion were recomputed
	Horizon      int64            // from the baseline kept at the raw table's horizon (0: from scratch)
	Versions     map[string]int64 // and compared with these derived versions
	ChangeRows   int64
	Transactions int
	Merchants    int
	Differences  []Difference
}

// OK reports whether nothing differed.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// expected is a transaction's state replayed from the change feed, kept
// deliberately apart from the processor's code path (step).
type expected struct {
	row   cdc.Row
	live  bool
	found bool // the raw table's scan met the transaction
	c     Contribution
}

// changeSource is what replay reads: the raw change feed of from..to
// without its update_preimage rows (store.Snapshot.Fold,
// store.ProcessTx.SourceChanges).
type changeSource func(from, to int64, fn func(store.Change) error) error

// apply folds one change-feed row (not an update_preimage) into a
// transaction's replayed state.
func (e *expected) apply(t store.ChangeType, r cdc.Row) {
	switch t {
	case store.Delete:
		*e = expected{row: r}
	case store.Insert:
		*e = expected{row: r, live: true}
	case store.UpdatePostimage:
		e.row, e.live = r, true
	}
	if e.live && r.Status == cdc.StatusCompleted {
		e.c.HasSale, e.c.Sale, e.c.SaleTime = true, r.Amount, r.Time
	}
	if e.live && r.Status == cdc.StatusRefunded {
		e.c.HasRefund, e.c.Refund, e.c.RefundTime = true, r.Amount, r.Time
	}
}

// contribution is what the replayed state contributes.
func (e *expected) contribution() Contribution {
	if !e.live {
		return Contribution{MerchantID: e.row.MerchantID, Status: e.row.Status}
	}
	c := e.c
	c.MerchantID, c.Status, c.Live = e.row.MerchantID, e.row.Status, true
	return c
}

// expectedOf is the replayed state a baseline contribution stands for. Its
// row holds only what the contribution knows (merchant, status): reconcile
// fills in the raw table's image at the horizon.
func expectedOf(id string, c Contribution) *expected {
	return &expected{row: cdc.Row{TransactionID: id, MerchantID: c.MerchantID, Status: c.Status}, live: c.Live, c: c}
}

// replayed is every transaction's replayed state: txns[index[id]].
type replayed struct {
	index map[string]int32
	txns  []expected
}

func (r *replayed) get(id string) *expected {
	if i, ok := r.index[id]; ok {
		return &r.txns[i]
	}
	return nil
}

// replay recomputes every transaction's contribution and current row from
// the baseline (the state at the raw table's horizon, see retention.go)
// and the raw change feed after it up to to. sizeHint is about how many
// transactions to expect (0: unknown): a million-entry map and slice that
// grow step by step cost more than the replay itself.
func replay(src changeSource, base *baseline, to int64, sizeHint int, progress func(rows int64)) (*Universe, *replayed, int64, error) {
	if base == nil {
		base = emptyBaseline()
	}
	hint := max(sizeHint, len(base.txns))
	rs := &replayed{index: make(map[string]int32, hint), txns: make([]expected, 0, hint)}
	for id, e := range base.txns {
		rs.index[id] = int32(len(rs.txns))
		rs.txns = append(rs.txns, *e)
	}
	u := &Universe{Merchants: base.merchants, RawVersion: to}
	merchants := map[string]string{} // one copy of each merchant id
	var n int64
	var err error
	if to > base.version {
		read := func(emit func(store.ChangeType, store.Row) error) error {
			return src(base.version+1, to, func(sc store.Change) error {
				if n++; progress != nil && n%1_000_000 == 0 {
					progress(n)
				}
				return emit(sc.Type, sc.Row)
			})
		}
		err = pipelined(context.Background(), read, func(it *rawItem) error {
			r := it.row
			if m, ok := merchants[r.MerchantID]; ok {
				r.MerchantID = m
			} else {
				merchants[r.MerchantID] = r.MerchantID
				u.Merchants[r.MerchantID] = true
			}
			i, ok := rs.index[r.TransactionID]
			if !ok {
				i = int32(len(rs.txns))
				rs.index[r.TransactionID] = i
				rs.txns = append(rs.txns, expected{})
			} else if id := rs.txns[i].row.TransactionID; id != "" {
				r.TransactionID = id // the index's copy: one per transaction, not one per image
			}
			rs.txns[i].apply(it.typ, r)
			return nil
		})
	}
	// Computed as the derived tables' builds ask, not kept: a million
	// of them would be 56 MB more to allocate and scan.
	u.Txns = func(yield func(Contribution) bool) {
		for i := range rs.txns {
			if !yield(rs.txns[i].contribution()) {
				return
			}
		}
	}
	return u, rs, n, err
}

// Reconcile recomputes every derived table from the raw table's whole change
// feed up to the stream's checkpoint and compares it with the stored tables
// at the checkpoint's versions, all in one consistent snapshot. It also
// replays the raw table's current rows and compares them with the stored
// rows, and checks that every merchant's windows of each size sum to its
// totals. Memory grows with the number of distinct transactions.
func Reconcile(ctx context.Context, db *store.DB, stream string, cfg Config) (Report, error) {
	if stream == "" {
		stream = DefaultStream
	}
	derived, err := Tables(cfg)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	snap, err := db.Snapshot()
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	defer func() { _ = snap.Close() }()
	cp, err := snap.Checkpoint(stream)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	rep := Report{Stream: stream, RawVersion: cp.SourceVersion, Versions: cp.Versions}
	src := func(from, to int64, fn func(store.Change) error) error {
		return snap.Fold(ctx, cdc.RawTable, from, to, fn)
	}
	base, err := loadBaseline(func(fn func(k, v []byte) error) (int64, error) { return snap.Baseline(stream, fn) })
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	rep.Horizon = base.version
	if base.version > 0 {
		// The baseline knows each transaction's contribution; the raw
		// table's image at the horizon is its row, and the two must agree.
		if _, err := snap.Scan(ctx, cdc.RawTable, base.version, store.KeyRange{}, func(sr store.Row) error {
			r := cdc.RowOf(sr)
			e := base.txns[r.TransactionID]
			if e == nil || !e.live || e.row.MerchantID != r.MerchantID || e.row.Status != r.Status {
				want := "absent"
				if e != nil && e.live {
					want = fmt.Sprintf("%s/%s", e.row.MerchantID, e.row.Status)
				}
				rep.Differences = append(rep.Differences, Difference{Table: cdc.RawTable, Key: r.TransactionID,
					Column: fmt.Sprintf("(baseline at version %d)", base.version), Stored: fmt.Sprintf("%s/%s", r.MerchantID, r.Status), Expected: want})
				return nil
			}
			e.row = r
			return nil
		}); err != nil {
			return rep, fmt.Errorf("reconcile: raw table at the horizon: %w", err)
		}
	}
	hint, err := rawRowsHint(snap)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	u, txns, n, err := replay(src, base, cp.SourceVersion, hint, nil)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	rep.ChangeRows, rep.Transactions, rep.Merchants = n, len(txns.txns), len(u.Merchants)

	stored := map[string][]store.Row{}
	for _, d := range derived {
		def := d.Def()
		v, ok := cp.Versions[def.Name]
		if !ok {
			v = 0 // never written by the stream: its creation
		}
		var have []store.Row
		if _, err := snap.Scan(ctx, def.Name, v, store.KeyRange{}, func(r store.Row) error {
			have = append(have, r)
			return nil
		}); err != nil {
			return rep, fmt.Errorf("reconcile %s: %w", def.Name, err)
		}
		stored[def.Name] = have
		want, err := build(d, u, have)
		if err != nil {
			return rep, fmt.Errorf("reconcile %s: %w", def.Name, err)
		}
		rep.Differences = append(rep.Differences, diffRows(def, d.Bookkeeping(), have, want)...)
	}
	for _, d := range derived {
		if w, ok := d.(windows); ok {
			rep.Differences = append(rep.Differences, windowInvariant(w.sizes, stored[TotalsTable], stored[WindowsTable])...)
		}
	}

	// The raw table's stored rows must equal its change feed replayed.
	scanRaw := func(emit func(store.ChangeType, store.Row) error) error {
		_, err := snap.Scan(ctx, cdc.RawTable, cp.SourceVersion, store.KeyRange{}, func(sr store.Row) error { return emit(store.Insert, sr) })
		return err
	}
	if err := pipelined(ctx, scanRaw, func(it *rawItem) error {
		r := it.row
		e := txns.get(r.TransactionID)
		if e != nil {
			e.found = true
		}
		switch {
		case e == nil || !e.live:
			rep.Differences = append(rep.Differences, Difference{Table: cdc.RawTable, Key: r.TransactionID, Column: "(row)", Stored: "present", Expected: "absent"})
		case e.row != r:
			rep.Differences = append(rep.Differences, Difference{Table: cdc.RawTable, Key: r.TransactionID, Column: "(row)", Stored: fmt.Sprint(r), Expected: fmt.Sprint(e.row)})
		}
		return nil
	}); err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	var missing []string
	for id, i := range txns.index {
		if e := &txns.txns[i]; e.live && !e.found {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for _, id := range missing {
		rep.Differences = append(rep.Differences, Difference{Table: cdc.RawTable, Key: id, Column: "(row)", Stored: "absent", Expected: "present"})
	}
	return rep, nil
}

// rawRowsHint is about how many transactions the raw table has seen: the
// rows its commits inserted.
func rawRowsHint(snap *store.Snapshot) (int, error) {
	hist, err := snap.History(cdc.RawTable)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, ci := range hist {
		n += ci.OperationMetrics["numTargetRowsInserted"]
	}
	return int(min(n, 1<<26)), nil
}

// diffRows compares stored rows with expected ones, both in key order.
func diffRows(def store.TableDef, bookkeeping []string, have, want []store.Row) []Difference {
	s := &def.Schema
	var out []Difference
	walkDiff(s, have, want, func(h, w store.Row) {
		switch {
		case w == nil:
			out = append(out, Difference{Table: def.Name, Key: keyText(s, h), Column: "(row)", Stored: "present", Expected: "absent"})
		case h == nil:
			out = append(out, Difference{Table: def.Name, Key: keyText(s, w), Column: "(row)", Stored: "absent", Expected: "present"})
		default:
			for i := s.KeyColumns; i < len(s.Columns); i++ {
				c := s.Columns[i]
				if slices.Contains(bookkeeping, c.Name) || h[i] == w[i] {
					continue
				}
				out = append(out, Difference{Table: def.Name, Key: keyText(s, h), Column: c.Name,
					Stored: valueText(c, h[i]), Expected: valueText(c, w[i])})
			}
		}
	})
	return out
}

// walkDiff walks two key-ordered row lists together, calling fn with each
// key's stored and expected rows (nil where a side lacks the key).
func walkDiff(s *store.Schema, have, want []store.Row, fn func(h, w store.Row)) {
	var hk, wk []byte
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		var c int
		switch {
		case i == len(have):
			c = 1
		case j == len(want):
			c = -1
		default:
			hk, _ = s.EncodeKey(hk[:0], have[i])
			wk, _ = s.EncodeKey(wk[:0], want[j])
			c = compareBytes(hk, wk)
		}
		switch {
		case c < 0:
			fn(have[i], nil)
			i++
		case c > 0:
			fn(nil, want[j])
			j++
		default:
			fn(have[i], want[j])
			i++
			j++
		}
	}
}

func compareBytes(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

func keyText(s *store.Schema, r store.Row) string {
	out := ""
	for i := 0; i < s.KeyColumns; i++ {
		if i > 0 {
			out += ","
		}
		out += valueText(s.Columns[i], r[i])
	}
	return out
}

// valueText renders a value for a difference report.
func valueText(c store.Column, v store.Value) string {
	switch {
	case v.Null:
		return "null"
	case c.Type == store.String || c.Type == store.Enum:
		return v.Str
	case c.Type == store.Money:
		return store.Paise(v.Int).String()
	case c.Type == store.Timestamp:
		zone := c.Zone
		if zone == nil {
			zone = timeUTC
		}
		return v.Time().In(zone).Format(rfc3339Micro)
	default:
		return strconv.FormatInt(v.Int, 10)
	}
}

// windowInvariant checks that, for every merchant and window size, the sum
// of its windows equals its totals row.
func windowInvariant(sizes []string, totalsRows, windowRows []store.Row) []Difference {
	type sums struct{ sales, refunds, net int64 }
	bySize := map[string]map[string]*sums{} // size → merchant → sums
	for _, r := range windowRows {
		m := bySize[r[wSize].Str]
		if m == nil {
			m = map[string]*sums{}
			bySize[r[wSize].Str] = m
		}
		s := m[r[wMerchant].Str]
		if s == nil {
			s = &sums{}
			m[r[wMerchant].Str] = s
		}
		s.sales += r[wSales].Int
		s.refunds += r[wRefunds].Int
		s.net += r[wNet].Int
	}
	var out []Difference
	for size := range bySize {
		if !slices.Contains(sizes, size) {
			out = append(out, Difference{Table: WindowsTable, Key: size, Column: "window_size", Stored: size, Expected: "one of " + strings.Join(sizes, ",")})
		}
	}
	for _, size := range sizes {
		m := bySize[size]
		if m == nil {
			m = map[string]*sums{}
		}
		for _, t := range totalsRows {
			s := m[t[tMerchant].Str]
			if s == nil {
				s = &sums{}
			}
			check := func(col string, got, want int64) {
				if got != want {
					out = append(out, Difference{Table: WindowsTable, Key: t[tMerchant].Str + "," + size,
						Column: "Σ " + col, Stored: store.Paise(got).String(), Expected: store.Paise(want).String() + " (" + TotalsTable + ")"})
				}
			}
			check("total_sales", s.sales, t[tSales].Int)
			check("total_refunds", s.refunds, t[tRefunds].Int)
			check("net_sales", s.net, t[tNet].Int)
			delete(m, t[tMerchant].Str)
		}
		for merchant := range m {
			out = append(out, Difference{Table: WindowsTable, Key: merchant + "," + size, Column: "(merchant)",
				Stored: "has windows", Expected: "no row in " + TotalsTable})
		}
	}
	return out
}
