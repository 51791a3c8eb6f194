package agg

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

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
	Logger                *slog.Logger
	// Hook, if set, is called at each Step; an error aborts the micro-batch.
	// Tests use it to crash the processor between its steps.
	Hook func(Step) error
}

// Processor is the stream processor for one stream.
type Processor struct {
	db   *store.DB
	opts Options
	log  *slog.Logger
}

// NewProcessor returns a processor with defaults filled in.
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
	return &Processor{db: db, opts: opts, log: opts.Logger}
}

// BatchResult describes one micro-batch.
type BatchResult struct {
	Committed   bool // false: nothing new to process
	BatchID     int64
	FromVersion int64 // raw versions read
	ToVersion   int64
	AggVersion  int64
	ChangeRows  int64 // raw change-feed rows read
	Merchants   int   // aggregate rows written
	Duration    time.Duration
	Behind      int64 // raw versions still unprocessed after this batch
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
// versions. With nothing new it returns Committed=false.
func (p *Processor) RunOnce(ctx context.Context) (BatchResult, error) {
	start := time.Now()
	var res BatchResult
	ci, committed, err := p.db.Process(ctx, p.opts.Stream, func(tx *store.ProcessTx) error {
		cp := tx.Checkpoint()
		from := cp.RawVersion + 1
		to := min(tx.RawLatest(), cp.RawVersion+int64(p.opts.MaxVersionsPerTrigger))
		if from > to {
			return nil // caught up: no commit
		}
		res = BatchResult{BatchID: cp.BatchID + 1, FromVersion: from, ToVersion: to, AggVersion: tx.AggVersion(), Behind: tx.RawLatest() - to}
		n, merchants, err := p.batch(tx, from, to)
		if err != nil {
			return err
		}
		res.ChangeRows, res.Merchants = n, merchants
		if err := p.hook(StepWritten); err != nil {
			return err
		}
		tx.Commit(to, map[string]string{"source": string(store.RawTable)}, map[string]int64{
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
	res.AggVersion = ci.Version
	res.Duration = time.Since(start)
	if err := p.hook(StepCommit); err != nil {
		return res, err
	}
	p.log.Info("micro-batch committed", "stream", p.opts.Stream, "batch", res.BatchID,
		"raw_versions", fmt.Sprintf("%d..%d", res.FromVersion, res.ToVersion), "agg_version", res.AggVersion,
		"change_rows", res.ChangeRows, "merchants", res.Merchants, "duration", res.Duration, "behind", res.Behind)
	return res, nil
}

// txn is a transaction touched by a micro-batch.
type txn struct {
	old      store.Contribution
	oldFound bool
	cur      store.Contribution
}

// batch folds raw versions from..to into contributions and aggregate rows.
func (p *Processor) batch(tx *store.ProcessTx, from, to int64) (int64, int, error) {
	touched := make(map[string]*txn)
	seen := make(map[string]bool) // merchants that must have a row
	var n int64
	err := tx.RawChanges(from, to, func(c store.Change) error {
		n++
		if c.Type == store.UpdatePreimage {
			return nil
		}
		id := c.Row.TransactionID
		t := touched[id]
		if t == nil {
			old, found, err := tx.Contribution(id)
			if err != nil {
				return err
			}
			t = &txn{old: old, oldFound: found, cur: old}
			touched[id] = t
		}
		t.cur = step(t.cur, c.Type, &c.Row)
		seen[c.Row.MerchantID] = true
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if err := p.hook(StepRead); err != nil {
		return 0, 0, err
	}

	deltas := make(map[string]*delta, len(seen))
	get := func(m string) *delta {
		d := deltas[m]
		if d == nil {
			d = &delta{}
			deltas[m] = d
		}
		return d
	}
	for m := range seen {
		get(m).seen = true
	}
	ids := make([]string, 0, len(touched))
	for id, t := range touched {
		ids = append(ids, id)
		if t.oldFound {
			get(t.old.MerchantID).add(t.old, -1)
		}
		get(t.cur.MerchantID).add(t.cur, +1)
	}
	if err := p.hook(StepComputed); err != nil {
		return 0, 0, err
	}

	slices.Sort(ids)
	for _, id := range ids {
		if err := tx.PutContribution(id, touched[id].cur); err != nil {
			return 0, 0, err
		}
	}
	merchants := make([]string, 0, len(deltas))
	for m := range deltas {
		merchants = append(merchants, m)
	}
	slices.Sort(merchants)
	written := 0
	for _, m := range merchants {
		cur, found, err := tx.Aggregate(m)
		if err != nil {
			return 0, 0, err
		}
		if !found {
			cur = store.Aggregate{MerchantID: m}
		}
		next := deltas[m].apply(cur)
		if found && next == cur {
			continue
		}
		next.LastRawVersion = to
		if err := tx.PutAggregate(next); err != nil {
			return 0, 0, err
		}
		written++
	}
	return n, written, nil
}

// RunAvailableNow runs micro-batches until the processor has caught up with
// the raw table as it was when it started (Spark's Trigger.AvailableNow).
func (p *Processor) RunAvailableNow(ctx context.Context) ([]BatchResult, error) {
	target, err := p.db.LatestVersion(store.RawTable)
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
