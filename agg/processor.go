package agg

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// Tables is what the derived tables are computed with.
	Tables Config
	Logger *slog.Logger
	// Hook, if set, is called at each Step; an error aborts the micro-batch.
	// Tests use it to crash the processor between its steps.
	Hook func(Step) error
}

// Processor is the stream processor for one stream.
type Processor struct {
	db       *store.DB
	opts     Options
	log      *slog.Logger
	derived  []Derived
	err      error
	prepared bool // Prepare found every derived table current
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
// versions. With nothing new it returns Committed=false. A derived table
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
		res = BatchResult{BatchID: cp.BatchID + 1, FromVersion: from, ToVersion: to, Behind: tx.SourceLatest() - to}
		n, merchants, err := p.batch(tx, from, to)
		if err != nil {
			return err
		}
		res.ChangeRows, res.Merchants = n, merchants
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

// batch folds raw versions from..to into contributions and every derived
// table.
func (p *Processor) batch(tx *store.ProcessTx, from, to int64) (int64, int, error) {
	touched := make(map[string]*TxnChange)
	seen := make(map[string]bool) // merchants that must have a row
	var n int64
	var key []byte
	err := tx.SourceChanges(from, to, func(sc store.Change) error {
		n++
		if sc.Type == store.UpdatePreimage {
			return nil
		}
		r := cdc.RowOf(sc.Row) // its strings are the change row's own: safe to keep
		t := touched[r.TransactionID]
		if t == nil {
			t = &TxnChange{ID: r.TransactionID}
			key = append(key[:0], r.TransactionID...)
			if v := tx.State(key); v != nil {
				old, err := decodeContribution(v)
				if err != nil {
					return fmt.Errorf("contribution of %q: %w", r.TransactionID, err)
				}
				t.Old, t.OldFound = old, true
			}
			t.New = t.Old
			touched[r.TransactionID] = t
		}
		t.New = step(t.New, sc.Type, &r)
		seen[r.MerchantID] = true
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if err := p.hook(StepRead); err != nil {
		return 0, 0, err
	}
	b := &Batch{Txns: make([]TxnChange, 0, len(touched)), Merchants: seen, RawVersion: to, At: time.Now()}
	for _, t := range touched {
		b.Txns = append(b.Txns, *t)
	}
	slices.SortFunc(b.Txns, func(a, b TxnChange) int { return strings.Compare(a.ID, b.ID) })
	if err := p.hook(StepComputed); err != nil {
		return 0, 0, err
	}
	var buf []byte
	for i := range b.Txns {
		buf = appendContribution(buf[:0], &b.Txns[i].New)
		key = append(key[:0], b.Txns[i].ID...)
		if err := tx.PutState(key, buf); err != nil {
			return 0, 0, err
		}
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
			return 0, 0, err
		}
		if needed[name] {
			w.RecordChanges()
		}
		if err := d.Apply(b, w); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		if needed[name] {
			if b.Changes == nil {
				b.Changes = map[string][]store.Change{}
			}
			b.Changes[name] = w.Changes()
		}
	}
	return n, len(seen), nil
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
