package agg

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// DefaultStream is the stream name used when none is configured.
const DefaultStream = "merchant_aggregates"

// Step names a point inside a micro-batch, for Options.Hook.
type Step string

// The points a micro-batch passes. A crash at any of them must neither lose
// nor double count (tests kill the process there).
const (
	StepRead     Step = "read"     // change feed read, nothing computed
	StepComputed Step = "computed" // contributions and deltas computed in memory
	StepWritten  Step = "written"  // rows written inside the bbolt transaction, not committed
	StepCommit   Step = "commit"   // bbolt transaction committed
)

// Options configures a Processor.
type Options struct {
	// Stream is the checkpoint name and the Delta txn appId.
	Stream string
	// MaxVersionsPerTrigger bounds the raw versions one micro-batch reads.
	MaxVersionsPerTrigger int
	// MaxRowsPerTrigger bounds the change rows one micro-batch reads: it
	// ends with the first raw version that reaches the bound (a single
	// version larger than that is still one micro-batch). It bounds the
	// processor's memory whatever the backlog. 0: DefaultMaxRowsPerTrigger;
	// < 0: no bound.
	MaxRowsPerTrigger int64
	// Tables is what the derived tables are computed with.
	Tables Config
	Logger *slog.Logger
	// Hook, if set, is called at each Step; an error aborts the micro-batch.
	// Tests use it to crash the processor between its steps.
	Hook func(Step) error
}

// DefaultMaxRowsPerTrigger is Options.MaxRowsPerTrigger's default.
const DefaultMaxRowsPerTrigger = 1_000_000

// Processor is the stream processor for one stream.
type Processor struct {
	db       *store.DB
	opts     Options
	log      *slog.Logger
	derived  []Derived
	err      error
	prepared bool // Prepare found every derived table current
	// A micro-batch's transactions and their index, kept between
	// micro-batches so a catch-up does not grow them afresh each time.
	txns  []TxnChange
	index map[string]int32
}

// NewProcessor returns a processor with defaults filled in. A bad
// Options.Tables is reported by the first call that runs.
func NewProcessor(db *store.DB, opts Options) *Processor {
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.MaxVersionsPerTrigger <= 0 {
		opts.MaxVersionsPerTrigger = 100
	}
	if opts.MaxRowsPerTrigger == 0 {
		opts.MaxRowsPerTrigger = DefaultMaxRowsPerTrigger
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Processor{db: db, opts: opts, log: opts.Logger}
	p.derived, p.err = Tables(opts.Tables)
	return p
}

// BatchResult describes one micro-batch.
type BatchResult struct {
	Committed   bool // false: nothing new to process
	BatchID     int64
	FromVersion int64 // raw versions read
	ToVersion   int64
	// Versions are the derived tables' new versions.
	Versions   map[string]int64
	AggVersion int64 // aggregated_upi_transactions' new version
	ChangeRows int64 // raw change-feed rows read
	Merchants  int   // merchants touched
	Duration   time.Duration
	Behind     int64 // raw versions still unprocessed after this batch
}

func (p *Processor) hook(s Step) error {
	if p.opts.Hook == nil {
		return nil
	}
	if err := p.opts.Hook(s); err != nil {
		return fmt.Errorf("hook at %s: %w", s, err)
	}
	return nil
}

// RunOnce runs one micro-batch over at most MaxVersionsPerTrigger new raw
// versions and, unless one version alone holds more, MaxRowsPerTrigger
// change rows. With nothing new it returns Committed=false. A derived table
// whose stored parameters differ from the configured ones is rebuilt
// first (see Prepare).
func (p *Processor) RunOnce(ctx context.Context) (BatchResult, error) {
	if !p.prepared {
		if _, err := p.Prepare(ctx); err != nil {
			return BatchResult{}, err
		}
		p.prepared = true
	}
	start := time.Now()
	var res BatchResult
	cp, committed, err := p.db.Process(ctx, p.opts.Stream, cdc.RawTable, func(tx *store.ProcessTx) error {
		cp := tx.Checkpoint()
		from := cp.SourceVersion + 1
		to := min(tx.SourceLatest(), cp.SourceVersion+int64(p.opts.MaxVersionsPerTrigger))
		if from > to {
			return nil // caught up: no commit
		}
		to, n, merchants, err := p.batch(tx, from, to)
		if err != nil {
			return err
		}
		res = BatchResult{BatchID: cp.BatchID + 1, FromVersion: from, ToVersion: to, Behind: tx.SourceLatest() - to,
			ChangeRows: n, Merchants: merchants}
		if err := p.hook(StepWritten); err != nil {
			return err
		}
		tx.Commit(to, map[string]string{"source": cdc.RawTable}, map[string]int64{
			"numSourceRows":     n,
			"numSourceVersions": to - from + 1,
		})
		return nil
	})
	if err != nil {
		return BatchResult{}, fmt.Errorf("process: %w", err)
	}
	if !committed {
		return BatchResult{}, nil
	}
	res.Committed = true
	res.Versions = cp.Versions
	res.AggVersion = cp.Versions[TotalsTable]
	res.Duration = time.Since(start)
	if err := p.hook(StepCommit); err != nil {
		return res, err
	}
	p.log.Info("micro-batch committed", "stream", p.opts.Stream, "batch", res.BatchID,
		"raw_versions", fmt.Sprintf("%d..%d", res.FromVersion, res.ToVersion), "agg_version", res.AggVersion,
		"change_rows", res.ChangeRows, "merchants", res.Merchants, "duration", res.Duration, "behind", res.Behind)
	return res, nil
}

// batch folds raw versions from..to (or fewer, see MaxRowsPerTrigger)
// into every derived table. A transaction's contribution before the batch
// is folded from its earlier images, reached through the raw change feed's
// history chain (see earlier): the batch writes nothing but the derived
// tables' rows. It returns the last raw version read, the change rows read
// and the merchants touched.
func (p *Processor) batch(tx *store.ProcessTx, from, to int64) (int64, int64, int, error) {
	// Transactions are at most the change rows read; sizing the buffers
	// up front spares growing a million-entry slice and map.
	est := tx.SourceRows(from, to)
	if p.opts.MaxRowsPerTrigger > 0 {
		est = min(est, p.opts.MaxRowsPerTrigger)
	}
	// After a catch-up, a daemon's micro-batches are small: do not hold a
	// catch-up's buffers for ever.
	if c := int64(cap(p.txns)); p.index == nil || c < est || c > 4*max(est, 4096) {
		p.index = make(map[string]int32, est)
		p.txns = make([]TxnChange, 0, est)
	}
	index, txns := p.index, p.txns[:0]
	clear(index)
	defer func() {
		// Keep the storage, not what it points at.
		clear(txns)
		p.txns = txns[:0]
		clear(index)
	}()
	extra := map[string]bool{} // merchants a transaction named in between
	var w walker
	feed := store.FeedOptions{From: from, To: to, MaxRows: p.opts.MaxRowsPerTrigger, Columns: contributionColumns()}
	last, n, err := tx.SourceFeed(feed, func(rec *store.FeedRecord) error {
		r := cdc.RowOf(rec.Row) // its strings are its own: safe to keep
		i, ok := index[r.TransactionID]
		if !ok {
			t := TxnChange{ID: r.TransactionID}
			if rec.HasEarlier() {
				old, err := w.before(tx, rec, r.TransactionID)
				if err != nil {
					return fmt.Errorf("contribution of %q: %w", r.TransactionID, err)
				}
				t.Old, t.OldFound = old, true
			}
			t.New = t.Old
			i = int32(len(txns))
			index[r.TransactionID] = i
			txns = append(txns, t)
		} else if m := txns[i].New.MerchantID; m != r.MerchantID && m != txns[i].Old.MerchantID {
			extra[m] = true // moved on within the batch: still a merchant seen
		}
		t := &txns[i]
		t.New = step(t.New, rec.Type, &r)
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	if err := p.hook(StepRead); err != nil {
		return 0, 0, 0, err
	}
	seen := extra
	for i := range txns {
		seen[txns[i].New.MerchantID] = true
		if txns[i].OldFound {
			seen[txns[i].Old.MerchantID] = true
		}
	}
	b := &Batch{Txns: txns, Merchants: seen, RawVersion: last, At: time.Now()}
	if err := p.hook(StepComputed); err != nil {
		return 0, 0, 0, err
	}
	needed := map[string]bool{}
	for _, d := range p.derived {
		if in, ok := d.(inputs); ok {
			for _, name := range in.Inputs() {
				needed[name] = true
			}
		}
	}
	for _, d := range p.derived {
		name := d.Def().Name
		w, err := tx.Table(name)
		if err != nil {
			return 0, 0, 0, err
		}
		if needed[name] {
			w.RecordChanges()
		}
		if err := d.Apply(b, w); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		if needed[name] {
			if b.Changes == nil {
				b.Changes = map[string][]store.Change{}
			}
			b.Changes[name] = w.Changes()
		}
	}
	return last, n, len(seen), nil
}

// walker folds a transaction's contribution before a micro-batch from its
// earlier images.
type walker struct {
	imgs []earlierImage
	key  []byte
}

type earlierImage struct {
	typ store.ChangeType
	row cdc.Row
}

// before returns the contribution of transaction id before rec, its first
// record in the micro-batch. It walks the images before rec newest first
// until a (re-)insert or a delete (nothing before one counts), or until
// the newest completed and refunded images are both found, then folds them
// oldest first as the processor did when it read them. A walk that
// reaches the retention horizon starts from the stream's baseline there.
func (w *walker) before(tx *store.ProcessTx, rec *store.FeedRecord, id string) (Contribution, error) {
	w.imgs = w.imgs[:0]
	var sale, refund bool
	horizon, err := tx.Earlier(rec, func(t store.ChangeType, row store.Row) (bool, error) {
		r := cdc.RowOf(row)
		w.imgs = append(w.imgs, earlierImage{t, r})
		sale = sale || r.Status == cdc.StatusCompleted
		refund = refund || r.Status == cdc.StatusRefunded
		return t == store.UpdatePostimage && !(sale && refund), nil
	})
	if err != nil {
		return Contribution{}, err
	}
	var c Contribution
	if horizon {
		w.key = append(append(w.key[:0], baselineTxn), id...)
		v := tx.BaselineValue(w.key)
		if v == nil {
			return c, fmt.Errorf("%w: its history reaches the retention horizon, and the baseline has no contribution for it", store.ErrCorrupt)
		}
		if c, err = decodeContribution(v); err != nil {
			return c, fmt.Errorf("baseline: %w", err)
		}
	}
	for i := len(w.imgs) - 1; i >= 0; i-- {
		c = step(c, w.imgs[i].typ, &w.imgs[i].row)
	}
	return c, nil
}

// RunAvailableNow runs micro-batches until the processor has caught up with
// the raw table as it was when it started (Spark's Trigger.AvailableNow).
func (p *Processor) RunAvailableNow(ctx context.Context) ([]BatchResult, error) {
	target, err := p.db.LatestVersion(cdc.RawTable)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	var out []BatchResult
	for {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		res, err := p.RunOnce(ctx)
		if err != nil {
			return out, err
		}
		if !res.Committed {
			return out, nil
		}
		out = append(out, res)
		if res.ToVersion >= target {
			return out, nil
		}
	}
}

// Stream returns the processor's stream name.
func (p *Processor) Stream() string { return p.opts.Stream }
