package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/store"
)

// rawColumns are raw_upi_transactions_v1's columns.
func rawColumns() []string {
	return []string{"transaction_id", "upi_id", "merchant_id", "transaction_amount", "transaction_time", "transaction_status"}
}

func (a *app) rawCells(r store.Row) []cell {
	status := ""
	if r.Status != store.StatusInvalid {
		status = r.Status.String()
	}
	return []cell{str(r.TransactionID), str(r.UPIID), str(r.MerchantID), money(r.Amount), timeCell(r.Time, a.loc), str(status)}
}

// aggColumns are aggregated_upi_transactions's columns.
func aggColumns() []string {
	return []string{"merchant_id", "total_sales", "total_refunds", "net_sales",
		"initiated_count", "completed_count", "failed_count", "refunded_count", "last_raw_version"}
}

func aggCells(x store.Aggregate) []cell {
	return []cell{str(x.MerchantID), money(x.TotalSales), money(x.TotalRefunds), money(x.NetSales),
		num(x.Initiated), num(x.Completed), num(x.Failed), num(x.Refunded), num(x.LastRawVersion)}
}

func newAggregatesCommand(a *app) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "aggregates [--version N]",
		Short: "Show the merchant aggregates (aggregated_upi_transactions), now or at a version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			rows, _, err := db.Aggregates(version)
			if err != nil {
				return err
			}
			out := &result{columns: aggColumns()}
			for _, x := range rows {
				out.add(aggCells(x)...)
			}
			return a.print(out)
		},
	}
	cmd.Flags().Int64Var(&version, "version", -1, "table version to read (default: latest)")
	return cmd
}

func tableFlag(cmd *cobra.Command, name *string, def store.Table) {
	cmd.Flags().StringVar(name, "table", string(def), "table: "+string(store.RawTable)+" or "+string(store.AggTable))
}

func newHistoryCommand(a *app) *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "history [--table T]",
		Short: "Show a table's commits (like DESCRIBE HISTORY)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := store.ParseTable(table)
			if err != nil {
				return usageError{err}
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			commits, err := db.History(t)
			if err != nil {
				return err
			}
			out := &result{columns: []string{"version", "timestamp", "operation", "operationParameters", "operationMetrics", "source", "txn"}}
			for _, c := range commits {
				src, txn := str(""), str("")
				if c.Source != nil {
					src = jsonCell(c.Source)
				}
				if c.Txn != nil {
					txn = jsonCell(c.Txn)
				}
				out.add(num(c.Version), commitTimeCell(c.Timestamp, a.loc), str(c.Operation),
					jsonCell(c.OperationParameters), jsonCell(c.OperationMetrics), src, txn)
			}
			return a.print(out)
		},
	}
	tableFlag(cmd, &table, store.RawTable)
	return cmd
}

func newChangesCommand(a *app) *cobra.Command {
	var (
		table    string
		from, to int64
	)
	cmd := &cobra.Command{
		Use:   "changes --table T --from V [--to V]",
		Short: "Show a table's change data feed for a version range (like table_changes)",
		Long: `Prints the change feed rows of versions --from..--to (inclusive; default --to: latest) in
commit order: every data column plus _change_type (insert, update_preimage, update_postimage,
delete), _commit_version and _commit_timestamp.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := store.ParseTable(table)
			if err != nil {
				return usageError{err}
			}
			if !cmd.Flags().Changed("from") {
				return usageError{fmt.Errorf("--from is required")}
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			meta := []string{"_change_type", "_commit_version", "_commit_timestamp"}
			out := &result{}
			if t == store.RawTable {
				out.columns = append(rawColumns(), meta...)
				err = db.Changes(cmd.Context(), from, to, func(c store.Change) error {
					out.add(append(a.rawCells(c.Row), str(c.Type.String()), num(c.Version), commitTimeCell(c.Timestamp, a.loc))...)
					return nil
				})
			} else {
				out.columns = append(aggColumns(), meta...)
				err = db.AggChanges(cmd.Context(), from, to, func(c store.AggChange) error {
					out.add(append(aggCells(c.Agg), str(c.Type.String()), num(c.Version), commitTimeCell(c.Timestamp, a.loc))...)
					return nil
				})
			}
			if err != nil {
				return err
			}
			return a.print(out)
		},
	}
	tableFlag(cmd, &table, store.RawTable)
	cmd.Flags().Int64Var(&from, "from", 0, "first version (inclusive)")
	cmd.Flags().Int64Var(&to, "to", -1, "last version (inclusive; default: latest)")
	return cmd
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
			defer db.Close()
			versions, err := db.TxnHistory(args[0])
			if err != nil {
				return err
			}
			out := &result{columns: append([]string{"_commit_version", "step", "_commit_timestamp", "state"}, rawColumns()...)}
			for _, v := range versions {
				state := "live"
				if v.Deleted {
					state = "deleted at " + timeCell(v.DeletedAt, a.loc).text
				}
				out.add(append([]cell{num(v.Version), num(int64(v.Step)), commitTimeCell(v.Timestamp, a.loc), str(state)}, a.rawCells(v.Row)...)...)
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
			defer db.Close()
			rows, err := db.StaleRows(cmd.Context(), v)
			if err != nil {
				return err
			}
			out := &result{columns: append(append([]string{"line", "op"}, rawColumns()...), "stored_time")}
			for _, s := range rows {
				out.add(append(append([]cell{num(int64(s.Pos)), str(s.Op)}, a.rawCells(s.Row)...), timeCell(s.StoredTime, a.loc))...)
			}
			return a.print(out)
		},
	}
}
