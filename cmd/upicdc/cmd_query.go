package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// tableNames lists the registered tables (raw first), for help texts.
func tableNames() string {
	defs, err := agg.Defs(agg.Config{})
	if err != nil {
		return cdc.RawTable
	}
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

// schemaOf returns a table's schema; an unknown table is a usage error
// that lists the store's tables.
func schemaOf(db *store.DB, table string) (*store.Schema, error) {
	t, err := db.Table(table)
	if err != nil {
		return nil, tableError(err)
	}
	return &t.Schema, nil
}

// scanTable renders the rows of table at version that kr selects and keep
// accepts (nil: all).
func (a *app) scanTable(cmd *cobra.Command, db *store.DB, table string, version int64, kr store.KeyRange, keep func(store.Row) bool) (*render.Table, error) {
	sch, err := schemaOf(db, table)
	if err != nil {
		return nil, err
	}
	out := render.Rows(sch)
	_, err = db.Scan(cmd.Context(), table, version, kr, func(r store.Row) error {
		if keep == nil || keep(r) {
			out.Add(render.Row(sch, r)...)
		}
		return nil
	})
	return out, err
}

func newAggregatesCommand(a *app) *cobra.Command {
	var vf versionFlags
	cmd := &cobra.Command{
		Use:   "aggregates [--version N | --as-of TIME]",
		Short: "Show the merchant aggregates (aggregated_upi_transactions), now, at a version or as of a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := vf.check(); err != nil {
				return err
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			version, err := vf.resolve(a, db, agg.TotalsTable)
			if err != nil {
				return err
			}
			out, err := a.scanTable(cmd, db, agg.TotalsTable, version, store.KeyRange{}, nil)
			if err != nil {
				return err
			}
			return a.print(out)
		},
	}
	vf.add(cmd, true)
	return cmd
}

type windowsOptions struct {
	size, merchant, from, to string
	vf                       versionFlags
}

func newWindowsCommand(a *app) *cobra.Command {
	var o windowsOptions
	cmd := &cobra.Command{
		Use:   "windows [--size 1d] [--merchant M] [--from TIME] [--to TIME] [--version N | --as-of TIME]",
		Short: "Show the windowed merchant aggregates (merchant_window_aggregates)",
		Long: `Prints rows of merchant_window_aggregates: per merchant, window size (windows.sizes) and
window start (in windows.timezone), the sales and refunds that landed in the window.

--from and --to keep the windows that overlap [--from, --to]; a time without a zone, or a
date alone (2024-12-21: its midnight), is read in the windows' zone. With --merchant and
--size the rows are read as one key range.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.windows(cmd, &o) },
	}
	cmd.Flags().StringVar(&o.size, "size", "", "window size: "+strings.Join(agg.WindowSizes(), ", ")+" (default: every size)")
	cmd.Flags().StringVar(&o.merchant, "merchant", "", "only this merchant_id")
	cmd.Flags().StringVar(&o.from, "from", "", "only windows that end after this time")
	cmd.Flags().StringVar(&o.to, "to", "", "only windows that start at or before this time")
	o.vf.add(cmd, true)
	return cmd
}

func (a *app) windows(cmd *cobra.Command, o *windowsOptions) error {
	if err := o.vf.check(); err != nil {
		return err
	}
	if o.size != "" && !slices.Contains(agg.WindowSizes(), o.size) {
		return usageError{fmt.Errorf("--size %q: want one of %s", o.size, strings.Join(agg.WindowSizes(), ", "))}
	}
	db, err := a.openStore(true)
	if err != nil {
		return err
	}
	defer a.closeStore(db)
	sch, err := schemaOf(db, agg.WindowsTable)
	if err != nil {
		return err
	}
	iSize, iStart, iEnd := sch.Index("window_size"), sch.Index("window_start"), sch.Index("window_end")
	if iSize < 0 || iStart < 0 || iEnd < 0 {
		return fmt.Errorf("%s: unexpected columns %v", agg.WindowsTable, render.Names(sch))
	}
	zone := sch.Columns[iStart].Zone
	if zone == nil {
		zone = time.UTC
	}
	var from, to *time.Time
	for _, f := range []struct {
		name, val string
		dst       **time.Time
	}{{"--from", o.from, &from}, {"--to", o.to, &to}} {
		if f.val == "" {
			continue
		}
		t, err := parseTime(f.name, f.val, zone)
		if err != nil {
			return err
		}
		*f.dst = &t
	}
	if from != nil && to != nil && to.Before(*from) {
		return usageError{fmt.Errorf("--to %s is before --from %s", o.to, o.from)}
	}
	version, err := o.vf.resolve(a, db, agg.WindowsTable)
	if err != nil {
		return err
	}
	// The key is (merchant_id, window_size, window_start): a merchant and a
	// size make a prefix, and then --from/--to bound window_start.
	var kr store.KeyRange
	if o.merchant != "" {
		kr.Prefix = store.Row{store.S(o.merchant)}
		if o.size != "" {
			kr.Prefix = append(kr.Prefix, store.S(o.size))
			if from != nil {
				start, _ := agg.Window(o.size, from.UnixMicro(), zone)
				v := store.T(start)
				kr.From = &v
			}
			if to != nil {
				v := store.T(*to)
				kr.To = &v
			}
		}
	}
	out, err := a.scanTable(cmd, db, agg.WindowsTable, version, kr, func(r store.Row) bool {
		return (o.size == "" || r[iSize].Str == o.size) &&
			(from == nil || r[iEnd].Int > from.UnixMicro()) &&
			(to == nil || r[iStart].Int <= to.UnixMicro())
	})
	if err != nil {
		return err
	}
	return a.print(out)
}

func tableFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "table", cdc.RawTable, "table: "+tableNames())
}

func newHistoryCommand(a *app) *cobra.Command {
	var (
		table string
		vf    versionFlags
	)
	cmd := &cobra.Command{
		Use:   "history [--table T] [--as-of TIME]",
		Short: "Show a table's commits (like DESCRIBE HISTORY); with --as-of, those committed by then",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			if _, err := schemaOf(db, table); err != nil {
				return err
			}
			upTo, err := vf.resolve(a, db, table)
			if err != nil {
				return err
			}
			commits, err := db.History(table)
			if err != nil {
				return err
			}
			out := render.History()
			for _, c := range commits {
				if upTo >= 0 && c.Version > upTo {
					break
				}
				out.Add(render.Commit(c)...)
			}
			return a.print(out)
		},
	}
	tableFlag(cmd, &table)
	vf.add(cmd, false)
	return cmd
}

type changesOptions struct {
	table              string
	from, to           int64
	fromTime, toTime   string
	hasFrom, hasToTime bool
}

func newChangesCommand(a *app) *cobra.Command {
	var o changesOptions
	cmd := &cobra.Command{
		Use:   "changes --table T (--from V | --from-time TIME) [--to V | --to-time TIME]",
		Short: "Show a table's change data feed for a version or time range (like table_changes)",
		Long: `Prints the change feed rows of versions --from..--to (inclusive; default --to: latest) in
commit order: every data column plus _change_type (insert, update_preimage, update_postimage,
delete), _commit_version and _commit_timestamp.

--from-time and --to-time select the versions by commit time instead (Spark's table_changes with
timestamps): from the first version committed at or after --from-time, to the last committed at
or before --to-time. Times are RFC 3339, or 2024-12-21 10:00:00 read in input.timezone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.changes(cmd, &o) },
	}
	tableFlag(cmd, &o.table)
	cmd.Flags().Int64Var(&o.from, "from", 0, "first version (inclusive)")
	cmd.Flags().Int64Var(&o.to, "to", -1, "last version (inclusive; default: latest)")
	cmd.Flags().StringVar(&o.fromTime, "from-time", "", "first version: the first committed at or after this time")
	cmd.Flags().StringVar(&o.toTime, "to-time", "", "last version: the last committed at or before this time")
	return cmd
}

func (a *app) changes(cmd *cobra.Command, o *changesOptions) error {
	fl := cmd.Flags()
	switch {
	case fl.Changed("from") && fl.Changed("from-time"):
		return usageError{errors.New("--from and --from-time: give one of them, not both")}
	case fl.Changed("to") && fl.Changed("to-time"):
		return usageError{errors.New("--to and --to-time: give one of them, not both")}
	case !fl.Changed("from") && !fl.Changed("from-time"):
		return usageError{errors.New("--from (a version) or --from-time is required")}
	}
	var fromT, toT time.Time
	var err error
	if fl.Changed("from-time") {
		if fromT, err = parseTime("--from-time", o.fromTime, a.loc); err != nil {
			return err
		}
	}
	if fl.Changed("to-time") {
		if toT, err = parseTime("--to-time", o.toTime, a.loc); err != nil {
			return err
		}
	}
	db, err := a.openStore(true)
	if err != nil {
		return err
	}
	defer a.closeStore(db)
	sch, err := schemaOf(db, o.table)
	if err != nil {
		return err
	}
	from, to := o.from, o.to
	if fl.Changed("from-time") {
		if from, err = firstVersionFrom(db, o.table, fromT); err != nil {
			return fmt.Errorf("--from-time %s: %w", o.fromTime, err)
		}
	}
	if fl.Changed("to-time") {
		if to, err = db.VersionAsOf(o.table, toT); err != nil {
			return fmt.Errorf("--to-time %s: %w", o.toTime, err)
		}
	}
	out := render.Changes(sch)
	if to < 0 || from <= to {
		err = db.Changes(cmd.Context(), o.table, from, to, func(c store.Change) error {
			out.Add(render.Change(sch, c)...)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return a.print(out)
}

// firstVersionFrom returns the first version of table committed at or
// after t.
func firstVersionFrom(db *store.DB, table string, t time.Time) (int64, error) {
	v, err := db.VersionAsOf(table, t)
	if err != nil {
		return 0, err
	}
	ci, err := db.Commit(table, v)
	if err != nil {
		return 0, err
	}
	if ci.Timestamp*1000 >= t.UnixMicro() {
		return v, nil // committed exactly at t
	}
	latest, err := db.LatestVersion(table)
	if err != nil {
		return 0, err
	}
	if v == latest {
		return 0, fmt.Errorf("%s has no commit at or after it (the latest, version %d, was committed at %s)",
			table, v, ci.Time().Format(render.MilliLayout))
	}
	return v + 1, nil
}

func newTxnCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "txn ID",
		Short: "Show every version of one transaction",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			sch, err := schemaOf(db, cdc.RawTable)
			if err != nil {
				return err
			}
			versions, err := db.KeyHistory(cdc.RawTable, store.Row{store.S(args[0])})
			if err != nil {
				return err
			}
			out := render.Versions(sch)
			for _, v := range versions {
				// A raw row's delete is ordered by its transaction_time.
				out.Add(render.Version(sch, v, "transaction_time")...)
			}
			return a.print(out)
		},
	}
}

func newStaleCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "stale VERSION",
		Short: "List the rows a MERGE skipped as out of order (older than the stored row)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("version %q: not a number", args[0])}
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			sch, err := schemaOf(db, cdc.RawTable)
			if err != nil {
				return err
			}
			rows, err := cdc.StaleRows(cmd.Context(), db, v)
			if err != nil {
				return err
			}
			out := render.NewTable(append(append([]string{"line", "op"}, render.Names(sch)...), "stored_time")...)
			// stored_time is a transaction_time (or a delete's): shown like it.
			timeCol := store.Column{Type: store.Timestamp}
			if i := sch.Index("transaction_time"); i >= 0 {
				timeCol = sch.Columns[i]
			}
			var buf store.Row
			for _, s := range rows {
				buf = s.Row.Values(buf)
				cells := append([]render.Cell{render.Int(int64(s.Pos)), render.String(s.Op)}, render.Row(sch, buf)...)
				out.Add(append(cells, render.Value(&timeCol, store.I(s.StoredTime)))...)
			}
			return a.print(out)
		},
	}
}
