package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

func newVacuumCommand(a *app) *cobra.Command {
	var compact bool
	cmd := &cobra.Command{
		Use:   "vacuum",
		Short: "Remove the change feed older than retention.history / retention.versions that no consumer still needs",
		Long: `Moves each table's retention horizon as far as retention.history and
retention.versions allow, but never past a version that a consumer has not
consumed: the stream's checkpoint, the Delta export under export.dir, or a
consumer registered with "upicdc consumers add". The change feed of versions
up to the horizon is removed; every table stays readable at the horizon and
later, the raw table keeps the latest image of every transaction, and
reconcile recomputes from the baseline kept at the horizon. With
--compact the store file is then rewritten without its free pages.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openExisting()
			if err != nil {
				return err
			}
			res, err := daemon.Vacuum(cmd.Context(), db, a.cfg)
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if daemon.RetentionPolicy(a.cfg).Off() {
				fmt.Fprintln(a.stderr, "upicdc: retention.history and retention.versions are both 0: nothing is removed")
			}
			out := render.NewTable("table", "horizon_before", "horizon", "held_by", "chunks_removed", "bytes_removed", "base_images")
			for _, r := range res {
				out.Add(render.String(r.Table), render.Int(r.From), render.Int(r.To), render.String(r.HeldBy),
					render.Int(int64(r.Chunks)), render.Int(r.Bytes), render.Int(int64(r.BaseImages)))
			}
			if err := a.print(out); err != nil {
				return err
			}
			if compact {
				return a.compact(cmd)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&compact, "compact", false, "then rewrite the store file without its free pages (see upicdc compact)")
	return cmd
}

func newRetentionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "retention",
		Short: "Show each table's retention horizon, its consumers' positions and the bytes a vacuum would reclaim",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := daemon.RetentionStatus(db, a.cfg, time.Now())
			if err != nil {
				return err
			}
			out := render.NewTable("table", "latest", "horizon", "vacuum_to", "held_by", "change_feed_bytes", "reclaimable_bytes", "consumers")
			for _, t := range st {
				cs := ""
				for i, c := range t.Consumers {
					if i > 0 {
						cs += ", "
					}
					cs += fmt.Sprintf("%s (%s) at %d", c.Name, c.Kind, c.Version)
				}
				out.Add(render.String(t.Table), render.Int(t.Latest), render.Int(t.Horizon), render.Int(t.Target), render.String(t.HeldBy),
					render.Int(t.ChangeFeedBytes), render.Int(t.Reclaimable), render.String(cs))
			}
			return a.print(out)
		},
	}
}

func newConsumersCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consumers",
		Short: "Register, list and remove readers of the change feed that retention must wait for",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var at int64
	var table string
	add := &cobra.Command{
		Use:   "add NAME --at VERSION",
		Short: "Register (or move) a consumer: VERSION is the oldest version it has not read yet",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("at") {
				return usageError{errors.New("consumers add: --at VERSION is required (the oldest version NAME has not read yet)")}
			}
			db, err := a.openExisting()
			if err != nil {
				return err
			}
			err = db.SetConsumer(args[0], table, at)
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return tableError(err)
			}
			fmt.Fprintf(a.stdout, "consumer %s of %s registered at version %d: vacuum keeps its change feed from there on\n", args[0], table, at)
			return nil
		},
	}
	add.Flags().Int64Var(&at, "at", 0, "the oldest version the consumer has not read yet")
	add.Flags().StringVar(&table, "table", cdc.RawTable, "the table it reads")
	list := &cobra.Command{
		Use:   "list",
		Short: "List every consumer: the stream, registered consumers and the Delta export",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			cs, err := db.Consumers()
			if err != nil {
				return err
			}
			exp, err := daemon.ExportConsumers(a.cfg.ExportDir(), db)
			if err != nil {
				return err
			}
			out := render.NewTable("name", "kind", "table", "version", "updated_at")
			for _, c := range append(cs, exp...) {
				updated := render.Null()
				if c.UpdatedAt > 0 {
					updated = render.CommitTime(c.UpdatedAt)
				}
				out.Add(render.String(c.Name), render.String(c.Kind), render.String(c.Table), render.Int(c.Version), updated)
			}
			return a.print(out)
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a registered consumer: vacuum no longer waits for it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openExisting()
			if err != nil {
				return err
			}
			err = db.RemoveConsumer(args[0])
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, store.ErrNoConsumer) {
				return usageError{err}
			}
			return err
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
