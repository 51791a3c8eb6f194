package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/examples"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

func newDemoCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the seed's three-batch worked example and print the aggregates after each batch",
		Long: `Ingests the seed's three batches (examples/batches/batch{1,2,3}.csv) into a fresh store,
runs the stream processor after each, and prints the merchant aggregates after each batch,
then the daily windows (merchant_window_aggregates, size 1d) after the last one.
Without --data-dir the store is a temporary directory removed afterwards; with --data-dir the
directory must not hold a store yet, and is kept for you to explore (history, changes, txn).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, cleanup, err := a.freshDataDir(cmd)
			if err != nil {
				return err
			}
			defer cleanup()
			a.cfg.DataDir = dir
			db, err := a.openStore(false)
			if err != nil {
				return err
			}
			defer db.Close()
			m, p := a.merger(db), a.processor(db)
			batchDir := filepath.Join(dir, "demo-batches")
			if err := os.MkdirAll(batchDir, 0o750); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			all := render.NewTable("batch", "merchant_id", "total_sales", "total_refunds", "net_sales")
			for i, name := range examples.SeedBatches() {
				data, err := fs.ReadFile(examples.Batches, name)
				if err != nil {
					return fmt.Errorf("demo: %w", err)
				}
				file := filepath.Join(batchDir, path.Base(name))
				if err := os.WriteFile(file, data, 0o640); err != nil {
					return fmt.Errorf("demo: %w", err)
				}
				res, err := m.IngestFile(cmd.Context(), file)
				if err != nil {
					return err
				}
				if _, err := p.RunAvailableNow(cmd.Context()); err != nil {
					return err
				}
				rows, aggVersion, err := agg.Totals(cmd.Context(), db, -1)
				if err != nil {
					return err
				}
				table := render.NewTable(all.Columns[1:]...)
				for _, x := range rows {
					cells := []render.Cell{render.String(x.MerchantID), render.Money(x.TotalSales), render.Money(x.TotalRefunds), render.Money(x.NetSales)}
					table.Add(cells...)
					all.Add(append([]render.Cell{render.Int(int64(i + 1))}, cells...)...)
				}
				if a.format == render.FormatTable {
					fmt.Fprintf(a.stdout, "Batch %d: %s -> %s version %d, %s version %d\n\n",
						i+1, path.Base(name), cdc.RawTable, res.Version, agg.TotalsTable, aggVersion)
					if err := a.print(table); err != nil {
						return err
					}
					fmt.Fprintln(a.stdout)
				}
			}
			if a.format != render.FormatTable {
				return a.print(all)
			}
			return a.demoWindows(cmd, db)
		},
	}
}

// demoWindows prints the daily windows, as `upicdc windows --size 1d`.
func (a *app) demoWindows(cmd *cobra.Command, db *store.DB) error {
	const size = "1d"
	sch, err := schemaOf(db, agg.WindowsTable)
	if err != nil {
		return err
	}
	iSize, iStart := sch.Index("window_size"), sch.Index("window_start")
	if iSize < 0 || iStart < 0 {
		return fmt.Errorf("%s: unexpected columns %v", agg.WindowsTable, render.Names(sch))
	}
	out := render.Rows(sch)
	version, err := db.Scan(cmd.Context(), agg.WindowsTable, -1, store.KeyRange{}, func(r store.Row) error {
		if r[iSize].Str == size {
			out.Add(render.Row(sch, r)...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Daily windows (%s, %s) after batch %d: %s version %d\n\n",
		size, sch.Columns[iStart].Zone, len(examples.SeedBatches()), agg.WindowsTable, version)
	return a.print(out)
}

// errDifferences makes reconcile exit non-zero when tables disagree.
var errDifferences = errors.New("the stored tables differ from the recomputation")

func newReconcileCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reconcile",
		Short: "Recompute the derived tables from the raw table's whole change feed and compare; exit 1 on any difference",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openStore(true)
			if err != nil {
				return err
			}
			defer a.closeStore(db)
			rep, err := agg.Reconcile(cmd.Context(), db, a.cfg.Stream.Name, a.tables)
			if err != nil {
				return err
			}
			out := render.NewTable("table", "key", "column", "stored", "expected")
			for _, d := range rep.Differences {
				out.Add(render.String(d.Table), render.String(d.Key), render.String(d.Column), render.String(d.Stored), render.String(d.Expected))
			}
			if a.format == render.FormatTable {
				var against []string
				for _, t := range db.Tables() {
					if v, ok := rep.Versions[t.Name]; ok {
						against = append(against, fmt.Sprintf("%s version %d", t.Name, v))
					}
				}
				if len(against) == 0 {
					against = []string{"no derived table versions yet"}
				}
				from := "1"
				if rep.Horizon > 0 {
					from = fmt.Sprintf("%d (from the baseline kept at the retention horizon, version %d)", rep.Horizon+1, rep.Horizon)
				}
				fmt.Fprintf(a.stdout, "stream %s: recomputed raw versions %s..%d (%d change rows, %d transactions, %d merchants) against %s: %d difference(s)\n",
					rep.Stream, from, rep.RawVersion, rep.ChangeRows, rep.Transactions, rep.Merchants, strings.Join(against, ", "), len(rep.Differences))
				if !rep.OK() {
					if err := a.print(out); err != nil {
						return err
					}
				}
			} else if err := a.print(out); err != nil {
				return err
			}
			if !rep.OK() {
				return fmt.Errorf("reconcile: %w (%d)", errDifferences, len(rep.Differences))
			}
			return nil
		},
	}
}

func newConfigCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:         "config",
		Short:       "Inspect the configuration",
		Annotations: map[string]string{"noConfig": "true"},
		// A group: without a subcommand it shows its help; an unknown one
		// is a usage error (cobra would show the help and exit 0).
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, args[0])
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration (defaults < file < UPICDC_* env < flags)",
		Long: `Prints every key with its effective value. inbox.dir and export.dir show the directory
actually used: <data_dir>/inbox and <data_dir>/export unless they are set.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out := render.NewTable("key", "value")
			for _, s := range a.cfg.Settings() {
				switch s.Key {
				case "inbox.dir":
					s.Value = a.cfg.InboxDir()
				case "export.dir":
					s.Value = a.cfg.ExportDir()
				}
				out.Add(render.String(s.Key), render.String(s.Value))
			}
			return a.print(out)
		},
	})
	return cmd
}

// linkVersion is the release version, set only at link time by the
// Makefile's build (-ldflags "-X main.linkVersion=$(git describe)");
// nothing assigns it at run time. Empty: the version comes from the
// module's build info.
var linkVersion string

// buildVersion describes this binary: the release version (linkVersion,
// else the module version Go stamped, else "(devel)"), the VCS revision if
// Go stamped it, and how it was built.
func buildVersion() (version, revision, goVersion, cgo string) {
	version, goVersion, cgo = linkVersion, runtime.Version(), "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" && bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "CGO_ENABLED":
				cgo = s.Value
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	return version, revision, goVersion, cgo
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build's version",
		Long: `Prints the release version (git describe, stamped by ` + "`make build`" + `; else the module
version Go recorded, else "(devel)"), the VCS revision when Go recorded it, the Go version,
the platform and whether cgo was linked in (CGO_ENABLED=0 is the static release build).`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"noConfig": "true"},
		RunE: func(*cobra.Command, []string) error {
			f, err := render.ParseFormat(a.formatFlag) // version reads no config, so load did not parse it
			if err != nil {
				return usageError{fmt.Errorf("--%w", err)}
			}
			a.format = f
			version, revision, goVersion, cgo := buildVersion()
			platform := runtime.GOOS + "/" + runtime.GOARCH
			if a.format == render.FormatTable {
				extra := ""
				if revision != "" {
					extra = "revision " + revision + ", "
				}
				_, err := fmt.Fprintf(a.stdout, "upicdc %s (%s%s %s, CGO_ENABLED=%s)\n", version, extra, goVersion, platform, cgo)
				return err
			}
			out := render.NewTable("version", "revision", "go", "platform", "cgo_enabled")
			out.Add(render.String(version), render.String(revision), render.String(goVersion), render.String(platform), render.String(cgo))
			return a.print(out)
		},
	}
}
