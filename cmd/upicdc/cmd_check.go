package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

func newCheckCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check the store file's integrity (bbolt's consistency check) and reconcile the aggregates; exit 1 on any problem",
		Long: `check runs, read-only:

  1. the inspection every command runs when it opens the store: both bbolt meta pages, the
     file's size against the pages they say are in use, and the page tree of every bucket;
  2. bbolt's consistency check (every page in use is reachable or free, none twice);
  3. reconcile: the aggregates recomputed from the raw table's change feed, compared with
     the stored ones.

It prints what each found and exits 1 on any problem. A damaged file has no repair: restore
it from a backup. Differences found by reconcile alone mean the aggregates were written
behind the stream processor's back (see ` + "`upicdc reconcile`" + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := render.NewTable("check", "finding")
			summary := func(format string, args ...any) {
				if a.format == render.FormatTable {
					fmt.Fprintf(a.stdout, format+"\n", args...)
				}
			}
			finish := func(err error) error {
				if len(out.Rows) > 0 || a.format != render.FormatTable {
					if perr := a.print(out); perr != nil {
						return perr
					}
				}
				return err
			}

			db, err := a.openStore(true)
			var damaged *store.DamagedError
			if errors.As(err, &damaged) {
				findings := damaged.Problems
				if damaged.Empty {
					findings = []string{"the file is empty (0 bytes)"}
				}
				for _, p := range findings {
					out.Add(render.String("file"), render.String(p))
				}
				if damaged.More > 0 {
					out.Add(render.String("file"), render.String(fmt.Sprintf("(%d more not listed)", damaged.More)))
				}
				summary("store file %s: damaged, %d problem(s):", damaged.Path, len(findings)+damaged.More)
				return finish(&checkError{damaged: damaged})
			}
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			summary("store file %s: meta pages, size and page trees: ok", db.Path())

			problems, err := db.Consistency(cmd.Context())
			if err != nil {
				return err
			}
			if len(problems) > 0 {
				for _, p := range problems {
					out.Add(render.String("bbolt"), render.String(p))
				}
				summary("bbolt consistency check: %d problem(s); reconcile not run:", len(problems))
				return finish(&checkError{damaged: &store.DamagedError{Path: db.Path(), Problems: problems}})
			}
			summary("bbolt consistency check: ok")

			rep, err := agg.Reconcile(cmd.Context(), db, a.cfg.Stream.Name, a.tables)
			if err != nil {
				return err
			}
			for _, d := range rep.Differences {
				out.Add(render.String("reconcile"), render.String(fmt.Sprintf("%s %s %s: stored %s, expected %s", d.Table, d.Key, d.Column, d.Stored, d.Expected)))
			}
			var against []string
			for _, t := range db.Tables() {
				if v, ok := rep.Versions[t.Name]; ok {
					against = append(against, fmt.Sprintf("%s version %d", t.Name, v))
				}
			}
			summary("reconcile: stream %s: recomputed raw versions 1..%d (%d change rows, %d transactions, %d merchants) against %s: %d difference(s)",
				rep.Stream, rep.RawVersion, rep.ChangeRows, rep.Transactions, rep.Merchants, strings.Join(against, ", "), len(rep.Differences))
			if !rep.OK() {
				return finish(&checkError{differences: len(rep.Differences)})
			}
			return finish(nil)
		},
	}
}

// checkError is check's verdict: the store file is damaged, or the tables
// differ from their recomputation. It matches store.ErrDamaged or
// errDifferences with errors.Is.
type checkError struct {
	damaged     *store.DamagedError
	differences int
}

func (e *checkError) Error() string {
	if e.damaged != nil {
		if e.damaged.Empty {
			return "check: " + e.damaged.Error()
		}
		n := len(e.damaged.Problems) + e.damaged.More
		return fmt.Sprintf("check: %s is damaged (%d problem(s), listed above: %s): restore it from a backup",
			e.damaged.Path, n, strings.Join(e.damaged.Problems[:min(1, len(e.damaged.Problems))], ""))
	}
	return fmt.Sprintf("check: %v (%d difference(s), listed above)", errDifferences, e.differences)
}

func (e *checkError) Unwrap() error {
	if e.damaged != nil {
		return e.damaged
	}
	return errDifferences
}
