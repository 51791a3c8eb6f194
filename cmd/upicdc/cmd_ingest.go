package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

func (a *app) merger(db *store.DB) *cdc.Merger {
	return cdc.NewMerger(db, cdc.ParseOptions{Location: a.loc}, a.log)
}

func (a *app) processor(db *store.DB) *agg.Processor {
	return agg.NewProcessor(db, agg.Options{
		Stream:                a.cfg.Stream.Name,
		MaxVersionsPerTrigger: a.cfg.Stream.MaxVersionsPerTrigger,
		Logger:                a.log,
	})
}

func ingestColumns() []string {
	return []string{"file", "version", "rows", "inserted", "updated", "deleted", "stale", "noop", "result"}
}

func ingestRow(r cdc.Result) []cell {
	outcome := "merged"
	switch {
	case r.Duplicate:
		outcome = fmt.Sprintf("duplicate of %s (version %d): nothing applied", r.Previous.Name, r.Previous.Version)
	case r.Empty:
		outcome = "no rows: nothing to commit"
	}
	return []cell{str(r.File), num(r.Version), num(int64(r.Rows)), num(r.Stats.Inserted), num(r.Stats.Updated),
		num(r.Stats.Deleted), num(r.Stats.Stale), num(r.Stats.NoOp), str(outcome)}
}

func newIngestCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ingest FILE...",
		Short: "MERGE batch files into the raw table, one commit (version) per file",
		Long: `Each file (.csv, .jsonl/.ndjson/.json, .parquet) is MERGEd into raw_upi_transactions_v1 as
one commit, in the order given. A file with any bad row is refused whole and changes nothing;
ingest stops at the first refused file. Content already ingested (same sha256, any name) is
reported and skipped. A data dir without a store gets a new one, and ingest says so on stderr.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openOrCreate()
			if err != nil {
				return err
			}
			defer db.Close()
			m := a.merger(db)
			out := &result{columns: ingestColumns()}
			var (
				ingestErr error
				done      []cdc.Result
			)
			for i, path := range args {
				ctx := cmd.Context()
				if err := ctx.Err(); err != nil {
					ingestErr = ingestInterrupted(err, args[i:], done)
					break
				}
				res, err := m.IngestFile(ctx, path)
				if err != nil {
					if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
						// Not the row in hand's fault: the MERGE was
						// cancelled and rolled back.
						ingestErr = ingestInterrupted(err, args[i:], done)
						break
					}
					ingestErr = err
					if rest := len(args) - i - 1; rest > 0 {
						ingestErr = fmt.Errorf("%w (%d later file(s) not attempted)", err, rest)
					}
					break
				}
				done = append(done, res)
				out.add(ingestRow(res)...)
			}
			if len(out.rows) > 0 || ingestErr == nil {
				if err := a.print(out); err != nil {
					return err
				}
			}
			return ingestErr
		},
	}
}

// interruptedError is how a command stopped by SIGINT or SIGTERM fails: it
// says what was kept, rather than naming whatever row or batch was in hand
// when the context was cancelled.
type interruptedError struct {
	kept string // what is committed, and what is not
	err  error  // the cancellation
}

func (e *interruptedError) Error() string { return "interrupted: " + e.kept }
func (e *interruptedError) Unwrap() error { return e.err }

// ingestInterrupted says which files are in and which are not: pending[0]
// was being merged (and was rolled back), the rest were not attempted.
func ingestInterrupted(err error, pending []string, done []cdc.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s was not applied", filepath.Base(pending[0]))
	if n := len(pending) - 1; n > 0 {
		fmt.Fprintf(&b, " (nor %d later file(s))", n)
	}
	var merged, dup []string
	var first, last int64
	for _, r := range done {
		switch {
		case r.Duplicate:
			dup = append(dup, r.File)
		case !r.Empty:
			if len(merged) == 0 {
				first = r.Version
			}
			merged, last = append(merged, r.File), r.Version
		}
	}
	switch len(merged) {
	case 0:
		if len(dup) == 0 {
			b.WriteString("; nothing was ingested")
		}
	case 1:
		fmt.Fprintf(&b, "; %s is in (version %d)", merged[0], first)
	default:
		fmt.Fprintf(&b, "; %s are in (versions %d–%d)", strings.Join(merged, ", "), first, last)
	}
	if len(dup) > 0 {
		fmt.Fprintf(&b, "; %s already ingested before", strings.Join(dup, ", "))
	}
	return &interruptedError{kept: b.String(), err: err}
}

// processInterrupted says how far the stream's committed micro-batches go;
// the one that was running rolled back as a whole.
func (a *app) processInterrupted(db *store.DB, err error) error {
	cp, cerr := db.Checkpoint(a.cfg.Stream.Name)
	if cerr != nil {
		return errors.Join(&interruptedError{kept: "nothing half-applied", err: err}, cerr)
	}
	if cp.BatchID < 0 {
		return &interruptedError{kept: "no micro-batch is committed yet; nothing half-applied", err: err}
	}
	return &interruptedError{err: err, kept: fmt.Sprintf("micro-batches up to %d are committed (raw versions up to %d, %s version %d); nothing half-applied",
		cp.BatchID, cp.RawVersion, store.AggTable, cp.AggVersion)}
}

func newProcessCommand(a *app) *cobra.Command {
	var availableNow bool
	cmd := &cobra.Command{
		Use:   "process [--available-now]",
		Short: "Run the stream processor until it has caught up, then exit",
		Long: `Reads the raw table's change feed from the stream's checkpoint and updates the merchant
aggregates, in micro-batches of at most stream.max_versions_per_trigger raw versions, each
committed atomically with its checkpoint. Stops once it has caught up with the raw table as it
was at start (like Spark's Trigger.AvailableNow, which --available-now names explicitly).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openExisting()
			if err != nil {
				return err
			}
			defer db.Close()
			batches, err := a.processor(db).RunAvailableNow(cmd.Context())
			if ctx := cmd.Context(); err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				err = a.processInterrupted(db, err)
			}
			out := &result{columns: []string{"batch_id", "raw_from", "raw_to", "agg_version", "change_rows", "merchants_written", "duration_ms"}}
			for _, b := range batches {
				out.add(num(b.BatchID), num(b.FromVersion), num(b.ToVersion), num(b.AggVersion),
					num(b.ChangeRows), num(int64(b.Merchants)), num(b.Duration.Milliseconds()))
			}
			if perr := a.print(out); perr != nil && err == nil {
				err = perr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&availableNow, "available-now", true, "process everything available now, then stop (the only mode outside `serve`)")
	return cmd
}
