package main

import (
	"fmt"

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
			var ingestErr error
			for i, path := range args {
				res, err := m.IngestFile(cmd.Context(), path)
				if err != nil {
					ingestErr = err
					if rest := len(args) - i - 1; rest > 0 {
						ingestErr = fmt.Errorf("%w (%d later file(s) not attempted)", err, rest)
					}
					break
				}
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
