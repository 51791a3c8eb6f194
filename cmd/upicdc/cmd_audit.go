package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

func newAuditCommand(a *app) *cobra.Command {
	var since, outcome string
	cmd := &cobra.Command{
		Use:   "audit [--since TIME] [--outcome merged|duplicate|empty|rejected|reconcile|all]",
		Short: "Show the pipeline audit (pipeline_audit): one row per file outcome and reconcile run",
		Long: `Prints pipeline_audit, oldest first: for every file ingest or the inbox took, whether it was
merged, a duplicate, empty or rejected (and why), its size, sha256, rows read, what the MERGE did
(inserted, updated, deleted, stale, no-op), the raw version it became, control totals (amounts per
status in the file, and of the rows applied) and how long it took; and one row per scheduled
reconcile run (outcome reconcile, with its number of differences).

--since TIME keeps rows recorded at or after TIME (RFC 3339, "2024-12-21 10:00:00" or a date,
read in the configured timezone).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cdc.AuditOutcomeOK(outcome) {
				return usageError{fmt.Errorf("--outcome %q: want one of %s or all", outcome, strings.Join(cdc.AuditOutcomes, ", "))}
			}
			f := cdc.AuditFilter{Outcome: outcome}
			if since != "" {
				t, err := parseTime("--since", since, a.loc)
				if err != nil {
					return err
				}
				f.Since = t
			}
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer db.Close()
			out, err := a.scanTable(cmd, db, cdc.AuditTable, -1, store.KeyRange{}, f.Keep)
			if err != nil {
				return err
			}
			return a.print(out)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only rows recorded at or after this time")
	cmd.Flags().StringVar(&outcome, "outcome", "all", "merged, duplicate, empty, rejected, reconcile or all")
	return cmd
}
