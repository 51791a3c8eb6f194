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
	"github.com/upicdc/upicdc/store/render"
)

func (a *app) merger(db *store.DB) *cdc.Merger {
	return cdc.NewMerger(db, cdc.ParseOptions{Location: a.loc}, a.log)
}

func (a *app) processor(db *store.DB) *agg.Processor {
	return agg.NewProcessor(db, agg.Options{
		Stream:                a.cfg.Stream.Name,
		MaxVersionsPerTrigger: a.cfg.Stream.MaxVersionsPerTrigger,
		MaxRowsPerTrigger:     int64(a.cfg.Stream.MaxRowsPerTrigger),
		Tables:                a.tables,
		Logger:                a.log,
	})
}

func ingestColumns() []string {
	return []string{"file", "version", "rows", "inserted", "updated", "deleted", "stale", "noop", "result"}
}

func ingestRow(r cdc.Result) []render.Cell {
	outcome := "merged"
	switch {
	case r.Duplicate:
		outcome = fmt.Sprintf("duplicate of %s (version %d): nothing applied", r.Previous.Name, r.Previous.Version)
	case r.Empty:
		outcome = "no rows: nothing to commit"
	}
	return []render.Cell{render.String(r.File), render.Int(r.Version), render.Int(int64(r.Rows)), render.Int(r.Stats.Inserted),
		render.Int(r.Stats.Updated), render.Int(r.Stats.Deleted), render.Int(r.Stats.Stale), render.Int(r.Stats.NoOp), render.String(outcome)}
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
			out := render.NewTable(ingestColumns()...)
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
				out.Add(ingestRow(res)...)
			}
			if len(out.Rows) > 0 || ingestErr == nil {
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
		cp.BatchID, cp.SourceVersion, agg.TotalsTable, cp.Versions[agg.TotalsTable])}
}

func newProcessCommand(a *app) *cobra.Command {
	var availableNow bool
	cmd := &cobra.Command{
		Use:   "process [--available-now]",
		Short: "Run the stream processor until it has caught up, then exit",
		Long: `Reads the raw table's change feed from the stream's checkpoint and updates every derived
table (the merchant aggregates and windows), in micro-batches of at most stream.max_versions_per_trigger raw versions and
(unless one version alone has more) stream.max_rows_per_trigger change rows, each committed atomically with its checkpoint. Stops once it has caught up with the raw table as it
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
			out := render.NewTable("batch_id", "raw_from", "raw_to", "agg_version", "versions", "change_rows", "merchants_written", "duration_ms")
			for _, b := range batches {
				out.Add(render.Int(b.BatchID), render.Int(b.FromVersion), render.Int(b.ToVersion), render.Int(b.AggVersion),
					render.JSON(b.Versions), render.Int(b.ChangeRows), render.Int(int64(b.Merchants)), render.Int(b.Duration.Milliseconds()))
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

func newReprocessCommand(a *app) *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "reprocess --table T",
		Short: "Rebuild one derived table from the raw history and commit it as a new version",
		Long: `Recomputes a derived table from the raw table's whole change feed, up to the stream's
checkpoint, and commits the result as a new version of the table (operation REPROCESS) in one
transaction: its change feed carries exactly what differed from what it held. Use it after a
bug fix, or to prove nothing differs (then the new version changes no row).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if table == "" {
				return usageError{fmt.Errorf("--table is required (a derived table)")}
			}
			db, err := a.openStore(false)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := a.processor(db).Reprocess(cmd.Context(), table)
			if err != nil {
				return tableError(err)
			}
			out := render.NewTable("table", "version", "raw_version", "inserted", "updated", "deleted")
			out.Add(render.String(res.Table), render.Int(res.Version), render.Int(res.RawVersion),
				render.Int(res.Inserted), render.Int(res.Updated), render.Int(res.Deleted))
			return a.print(out)
		},
	}
	cmd.Flags().StringVar(&table, "table", "", "the derived table to rebuild: "+derivedNames())
	return cmd
}

// derivedNames lists the derived tables, for help texts.
func derivedNames() string {
	ds, err := agg.Tables(agg.Config{})
	if err != nil {
		return ""
	}
	out := ""
	for i, d := range ds {
		if i > 0 {
			out += ", "
		}
		out += d.Def().Name
	}
	return out
}
