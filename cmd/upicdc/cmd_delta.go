package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/internal/progress"
	"github.com/upicdc/upicdc/store/render"
)

// deltaCommands are the Delta Lake export and reader commands.
func deltaCommands(a *app) []*cobra.Command {
	return []*cobra.Command{newExportCommand(a), newDeltaShowCommand(a), newDeltaChangesCommand(a)}
}

type exportOptions struct {
	out      string
	table    string
	fileRows int
	vacuum   bool
	retain   time.Duration
}

func newExportCommand(a *app) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export [--out DIR] [--table T] [--vacuum [--retain DURATION]]",
		Short: "Write the tables as Delta Lake tables (incremental: only versions not yet exported)",
		Long: `Writes each table as a Delta Lake table DIR/<table>/ whose version N is the store's version N:
Parquet data files (copy-on-write), _change_data files with the change feed, _delta_log
commits with commitInfo, and a checkpoint every 10 versions. Spark, delta-rs and DuckDB read it,
including the change data feed (readChangeFeed, table_changes).

Exporting again writes only the versions that are new. An interrupted export leaves each table
readable at its last complete version; the next export finishes the job.
DIR defaults to export.dir (or <data_dir>/export).

With --vacuum, after the export each table's files that no version within --retain (default
168h; the version current at the retention's start is kept too) references are removed: old
data files and _change_data files. Every retained version and change-feed range stays readable
by any reader; the _delta_log is cut at the oldest retained version first, so no reader lists a
version whose files are gone. Files no commit names (an export being written) go only once
they are older than the retention.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := delta.Options{TargetFileRows: o.fileRows, Logger: a.log}
			if o.fileRows < 0 {
				return usageError{fmt.Errorf("--target-file-rows %d: must be positive", o.fileRows)}
			}
			if cmd.Flags().Changed("retain") && !o.vacuum {
				return usageError{errors.New("--retain is the retention of --vacuum; add --vacuum")}
			}
			if o.retain < 0 {
				return usageError{fmt.Errorf("--retain %s: must not be negative", o.retain)}
			}
			out := a.abs(o.out)
			if out == "" {
				out = a.cfg.ExportDir()
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			if o.table != "" {
				if _, err := schemaOf(db, o.table); err != nil {
					return err
				}
				opts.Tables = []string{o.table}
			}
			line := progress.OnTerminal(a.stderr) // nil unless stderr is a terminal
			if line != nil {
				opts.Progress = exportProgress(line)
			}
			results, err := delta.Export(cmd.Context(), db, out, opts)
			line.Clear()
			if errors.Is(err, delta.ErrNotOurTable) {
				return err // running again cannot help; the error says what to do
			}
			if err != nil {
				return fmt.Errorf("%w (what was exported stays readable; run export again to finish)", err)
			}
			cols := []string{"table", "from_version", "to_version", "change_rows", "files_added", "rows_written", "dir"}
			vacuumed := map[string]delta.VacuumResult{}
			if o.vacuum {
				names := make([]string, len(results))
				for i, r := range results {
					names[i] = r.Table
				}
				vs, err := delta.VacuumAll(cmd.Context(), out, names, delta.VacuumOptions{Retain: o.retain, Logger: a.log})
				if err != nil {
					return fmt.Errorf("%w (the export is complete; every version the log lists stays readable)", err)
				}
				for _, v := range vs {
					vacuumed[v.Table] = v
				}
				cols = append(cols, "oldest_version", "files_removed", "bytes_removed")
			}
			res := render.NewTable(cols...)
			for _, r := range results {
				from, to := render.Null(), render.Null()
				if r.To >= r.From {
					from, to = render.Int(r.From), render.Int(r.To)
				}
				cells := []render.Cell{render.String(r.Table), from, to, render.Int(r.ChangeRows), render.Int(int64(r.FilesAdded)), render.Int(r.RowsWritten), render.String(r.Dir)}
				if o.vacuum {
					v := vacuumed[r.Table]
					cells = append(cells, render.Int(v.Oldest), render.Int(int64(v.FilesRemoved)), render.Int(v.BytesRemoved))
				}
				res.Add(cells...)
			}
			return a.print(res)
		},
	}
	cmd.Flags().StringVar(&o.out, "out", "", "export directory (default: export.dir, or <data_dir>/export)")
	cmd.Flags().StringVar(&o.table, "table", "", "export only this table: "+tableNames())
	cmd.Flags().BoolVar(&o.vacuum, "vacuum", false, "after the export, remove the files no version within --retain needs")
	cmd.Flags().DurationVar(&o.retain, "retain", delta.DefaultVacuumRetain, "with --vacuum: keep the versions committed within this duration")
	cmd.Flags().IntVar(&o.fileRows, "target-file-rows", delta.DefaultTargetFileRows, "most rows per Parquet data file (the target file size)")
	return cmd
}

// exportProgress shows each exported version on line; a table's last one
// is always drawn.
func exportProgress(line *progress.Line) func(delta.Progress) {
	return func(p delta.Progress) {
		draw := line.Update
		if p.Version == p.Latest {
			draw = line.Show
		}
		draw("export %s: version %d of %d", p.Table, p.Version, p.Latest)
	}
}

// valueCell renders a Delta value as store/render renders the store's:
// numbers as JSON numbers (decimals exact; NaN and infinities as the
// strings "NaN", "Infinity", "-Infinity"), NULL as JSON null (empty text),
// timestamps as RFC 3339 in UTC, timestamp_ntz as its wall-clock time
// without a zone, and struct, array and map values as JSON (objects and
// arrays; the same JSON text in table and csv).
func valueCell(v any) render.Cell {
	switch x := v.(type) {
	case nil:
		return render.Null()
	case int64:
		return render.Int(x)
	case bool:
		return render.Bool(x)
	case float64, delta.Decimal, delta.Struct, delta.Array, delta.Map:
		j := delta.AppendJSON(nil, x, time.UTC)
		text := string(j)
		if f, ok := x.(float64); ok {
			text = delta.FormatValue(f)
		}
		return render.Raw(text, j)
	case time.Time:
		return render.Time(x.UTC())
	}
	return render.String(delta.FormatValue(v))
}

func newDeltaShowCommand(a *app) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "delta-show DIR [--version V]",
		Short: "Show a Delta Lake table's rows at a version (any Delta table, not only upicdc's)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tbl, err := delta.Open(args[0])
			if err != nil {
				return err
			}
			s, err := tbl.Snapshot(version)
			if err != nil {
				return err
			}
			out := render.NewTable(s.Schema.Names()...)
			err = s.Rows(cmd.Context(), func(r delta.Row) error {
				cells := make([]render.Cell, len(r))
				for i, v := range r {
					cells[i] = valueCell(v)
				}
				out.Add(cells...)
				return nil
			})
			if err != nil {
				return err
			}
			return a.print(out)
		},
	}
	cmd.Flags().Int64Var(&version, "version", -1, "table version to read (default: latest)")
	return cmd
}

func newDeltaChangesCommand(a *app) *cobra.Command {
	var from, to int64
	cmd := &cobra.Command{
		Use:   "delta-changes DIR --from V [--to V]",
		Short: "Show a Delta Lake table's change data feed for versions V..V (like table_changes)",
		Long: `Prints the change data feed of versions --from..--to (inclusive; default --to: latest) of any
Delta table with delta.enableChangeDataFeed: a version's _change_data files when it has them,
else its added files as inserts and removed files as deletes. Columns: the table's columns
plus _change_type, _commit_version and _commit_timestamp (the in-commit timestamp, else
commitInfo.timestamp, else the commit file's modification time).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("from") {
				return usageError{fmt.Errorf("--from is required")}
			}
			tbl, err := delta.Open(args[0])
			if err != nil {
				return err
			}
			var rows [][]render.Cell
			schema, err := tbl.Changes(cmd.Context(), from, to, func(c delta.Change) error {
				cells := make([]render.Cell, 0, len(c.Row)+3)
				for _, v := range c.Row {
					cells = append(cells, valueCell(v))
				}
				rows = append(rows, append(cells, render.String(c.ChangeType), render.Int(c.Version), render.CommitTime(c.Timestamp)))
				return nil
			})
			if err != nil {
				return err
			}
			out := &render.Table{Columns: append(schema.Names(), "_change_type", "_commit_version", "_commit_timestamp"), Rows: rows}
			return a.print(out)
		},
	}
	cmd.Flags().Int64Var(&from, "from", 0, "first version (inclusive)")
	cmd.Flags().Int64Var(&to, "to", -1, "last version (inclusive; default: latest)")
	return cmd
}
